//! The thread that advances an engine's epoch — the clock of call deadlines — only while
//! plugins run. Parked otherwise: an idle router with plugins then takes no CPU (ticking every
//! millisecond for nothing cost 1.8 % of a core, measured with `/proc/<pid>/stat` over 10 s).
//!
//! Every entry into guest code (instantiation and each export call) holds a [`Ticking`]; the
//! first one unparks the thread if it is parked. The thread ticks while an entry runs, and goes
//! on ticking for a `linger` after the last one ended before it parks: under load, calls come
//! every few hundred microseconds, and waking a parked thread for each one cost more than the
//! ticks (a futex wake and a context switch per call: ≈ 3–7 % of the router's CPU in `perf`
//! with a keep-all filter under `wasm-router bench-load`). A deadline of `n` ticks still
//! means at least `n` ticks of the call's own time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::Duration;

/// The ticker of one engine; stops its thread when dropped.
#[derive(Debug)]
pub struct EpochTicker {
    shared: Arc<Shared>,
    thread: Thread,
}

#[derive(Debug, Default)]
struct Shared {
    /// Guest entries in progress.
    running: AtomicUsize,
    /// Guest entries ever started: the thread sees from it whether any ran while it slept.
    started: AtomicUsize,
    /// Set by the thread before it parks (and checks `running` once more).
    parked: AtomicBool,
    /// Set when the ticker is dropped.
    stop: AtomicBool,
}

/// Held while guest code runs: the epoch advances.
#[must_use = "the epoch advances only while this is held"]
pub struct Ticking<'a>(&'a EpochTicker);

impl EpochTicker {
    /// Start a thread named `name` that calls `tick` every `period` while a [`Ticking`] is held
    /// and for `linger` after the last one was dropped; it ends when `tick` returns false or the
    /// ticker is dropped.
    pub fn start(
        name: &str,
        period: Duration,
        linger: Duration,
        tick: impl Fn() -> bool + Send + 'static,
    ) -> std::io::Result<EpochTicker> {
        let shared = Arc::new(Shared::default());
        let state = shared.clone();
        let linger_ticks = (linger.as_nanos() / period.as_nanos().max(1)) as usize;
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut seen = state.started.load(Ordering::SeqCst);
                // Nothing has run yet: park at once.
                let mut quiet = linger_ticks;
                while !state.stop.load(Ordering::Acquire) {
                    let started = state.started.load(Ordering::SeqCst);
                    if started != seen || state.running.load(Ordering::SeqCst) > 0 {
                        seen = started;
                        quiet = 0;
                    } else if quiet >= linger_ticks {
                        state.parked.store(true, Ordering::SeqCst);
                        // An entry that began before `parked` was set is seen here; one that
                        // begins after sees `parked` and unparks (which makes `park` return
                        // at once if it comes first).
                        if state.running.load(Ordering::SeqCst) == 0
                            && state.started.load(Ordering::SeqCst) == seen
                        {
                            std::thread::park();
                        }
                        state.parked.store(false, Ordering::SeqCst);
                        continue;
                    } else {
                        quiet += 1;
                    }
                    std::thread::sleep(period);
                    if !tick() {
                        return;
                    }
                }
            })?;
        Ok(EpochTicker {
            shared,
            thread: handle.thread().clone(),
        })
    }

    /// Tick until the result is dropped (and for the linger after the last one).
    pub fn ticking(&self) -> Ticking<'_> {
        self.shared.started.fetch_add(1, Ordering::SeqCst);
        if self.shared.running.fetch_add(1, Ordering::SeqCst) == 0
            && self.shared.parked.load(Ordering::SeqCst)
        {
            self.thread.unpark();
        }
        Ticking(self)
    }
}

impl Drop for Ticking<'_> {
    fn drop(&mut self) {
        self.0.shared.running.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// The linger, in 1 ms ticks.
    const LINGER_TICKS: usize = 30;

    fn counting() -> (EpochTicker, Arc<AtomicUsize>) {
        let ticks = Arc::new(AtomicUsize::new(0));
        let counter = ticks.clone();
        let ticker = EpochTicker::start(
            "test-ticker",
            Duration::from_millis(1),
            Duration::from_millis(LINGER_TICKS as u64),
            move || {
                counter.fetch_add(1, Ordering::Relaxed);
                true
            },
        )
        .unwrap();
        (ticker, ticks)
    }

    fn wait_for(what: &str, done: impl Fn() -> bool) {
        let until = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < until, "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn it_ticks_only_while_guest_code_runs() {
        let (ticker, ticks) = counting();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(ticks.load(Ordering::Relaxed), 0, "no tick while idle");
        let (a, b) = (ticker.ticking(), ticker.ticking());
        wait_for("ticks while running", || ticks.load(Ordering::Relaxed) >= 3);
        drop(a);
        let seen = ticks.load(Ordering::Relaxed);
        wait_for("still ticking while one entry runs", || {
            ticks.load(Ordering::Relaxed) > seen
        });
        let at_end = ticks.load(Ordering::Relaxed);
        drop(b);
        // It lingers, then stops: the count holds still for 20 ms (a ticking thread adds one
        // every millisecond).
        wait_for("stops once no entry ran for the linger", || {
            let before = ticks.load(Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(20));
            ticks.load(Ordering::Relaxed) == before
        });
        let stopped = ticks.load(Ordering::Relaxed);
        // The linger is counted in ticks (one per period), so however slowly the thread is
        // scheduled, it ticks that many times after the last entry before it parks.
        assert!(
            stopped - at_end >= LINGER_TICKS,
            "parked after {} ticks, before the linger of {LINGER_TICKS} was over",
            stopped - at_end
        );
        let again = ticker.ticking();
        wait_for("ticks again", || ticks.load(Ordering::Relaxed) > stopped);
        drop(again);
    }
}
