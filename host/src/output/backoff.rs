//! Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
//! Jitter"): each delay is uniform in [0, min(cap, base * 2^attempt)].

use std::time::Duration;

/// Backoff state for one batch.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(30))
    }
}

impl Backoff {
    /// Delays start around `base` and never exceed `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(500));
        for attempt in 0..30u32 {
            let d = b.next_delay();
            let ceiling = Duration::from_millis(10)
                .saturating_mul(1 << attempt.min(20))
                .min(Duration::from_millis(500));
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
            b.attempt = 5;
            seen.insert(b.next_delay().as_micros());
        }
        assert!(
            seen.len() > 10,
            "full jitter must not repeat one delay: {seen:?}"
        );
    }
}
