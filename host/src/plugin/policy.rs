//! What happens to a batch when a plugin faults (`on_error`), and the circuit breaker that stops
//! calling a plugin that keeps faulting (reference wasm-plugin-hosts.md §3.6).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A plugin's failure policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    /// Pass the batch on unmodified (counted): availability over filtering.
    FailOpen,
    /// Drop the batch (counted under `plugin_fault_<kind>`): nothing unfiltered gets through.
    FailClosed,
    /// Send the batch to the dead-letter queue. Until the router has one, the batch is dropped
    /// and counted under `dead_letter`, and the drop is logged.
    DeadLetter,
}

impl OnError {
    /// Parse a config value (`fail_open`, `fail_closed`, `dead_letter`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fail_open" => Some(OnError::FailOpen),
            "fail_closed" => Some(OnError::FailClosed),
            "dead_letter" => Some(OnError::DeadLetter),
            _ => None,
        }
    }

    /// The policy when the config sets none. A plugin may ask for one in its config schema,
    /// as the SDK's `fail_closed` attribute does: `"x-wasm-router": {"on_error": "fail_closed"}`.
    /// Otherwise: `fail_closed` for redaction plugins (a name starting with `redact`, or a
    /// description that mentions redaction), since passing their input on unfiltered would
    /// leak what they exist to remove; `fail_open` for every other plugin.
    pub fn default_for(plugin_name: &str, description: &str, config_schema: &str) -> Self {
        let requested = serde_json::from_str::<serde_json::Value>(config_schema)
            .ok()
            .and_then(|schema| {
                schema
                    .pointer("/x-wasm-router/on_error")?
                    .as_str()
                    .and_then(OnError::parse)
            });
        if let Some(policy) = requested {
            return policy;
        }
        let name = plugin_name.to_ascii_lowercase();
        let description = description.to_ascii_lowercase();
        if name.starts_with("redact") || description.contains("redact") {
            OnError::FailClosed
        } else {
            OnError::FailOpen
        }
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::FailOpen => "fail_open",
            OnError::FailClosed => "fail_closed",
            OnError::DeadLetter => "dead_letter",
        }
    }
}

/// More faults than this within [`FAULT_WINDOW`] open the circuit.
pub const MAX_FAULTS_PER_WINDOW: usize = 5;
/// The window faults are counted over.
pub const FAULT_WINDOW: Duration = Duration::from_secs(60);
/// How long the circuit first stays open.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// The longest the circuit stays open (the backoff doubles on each failed probe).
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug, PartialEq, Eq)]
enum State {
    Closed,
    Open {
        until: Instant,
        backoff: Duration,
    },
    /// One probe call is allowed; its result closes or reopens the circuit.
    HalfOpen {
        backoff: Duration,
        probing: bool,
    },
}

/// Counts faults and decides whether the plugin may be called.
#[derive(Debug)]
pub struct CircuitBreaker {
    faults: VecDeque<Instant>,
    state: State,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker {
            faults: VecDeque::new(),
            state: State::Closed,
        }
    }
}

impl CircuitBreaker {
    /// May the plugin be called at `now`? While open: no. When the backoff is over, one caller
    /// gets `true` (the probe) and the others `false` until the probe reports.
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.state {
            State::Closed => true,
            State::Open { until, backoff } if now >= until => {
                self.state = State::HalfOpen {
                    backoff,
                    probing: true,
                };
                true
            }
            State::Open { .. } => false,
            State::HalfOpen {
                backoff,
                probing: false,
            } => {
                self.state = State::HalfOpen {
                    backoff,
                    probing: true,
                };
                true
            }
            State::HalfOpen { probing: true, .. } => false,
        }
    }

    /// A call succeeded. Returns true when this closed the circuit.
    pub fn success(&mut self) -> bool {
        if matches!(self.state, State::HalfOpen { .. }) {
            self.state = State::Closed;
            self.faults.clear();
            return true;
        }
        false
    }

    /// A call faulted at `now`. Returns true when this opened the circuit.
    pub fn fault(&mut self, now: Instant) -> bool {
        match self.state {
            State::HalfOpen { backoff, .. } => {
                let backoff = (backoff * 2).min(MAX_BACKOFF);
                self.state = State::Open {
                    until: now + backoff,
                    backoff,
                };
                true
            }
            State::Open { .. } => false,
            State::Closed => {
                self.faults.push_back(now);
                while self
                    .faults
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > FAULT_WINDOW)
                {
                    self.faults.pop_front();
                }
                if self.faults.len() > MAX_FAULTS_PER_WINDOW {
                    self.state = State::Open {
                        until: now + FIRST_BACKOFF,
                        backoff: FIRST_BACKOFF,
                    };
                    return true;
                }
                false
            }
        }
    }

    /// True while calls are refused (open, or half-open with a probe in flight).
    pub fn is_open(&self) -> bool {
        !matches!(self.state, State::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_redaction_fails_closed_by_default() {
        assert_eq!(OnError::parse("dead_letter"), Some(OnError::DeadLetter));
        assert_eq!(OnError::parse("open"), None);
        assert_eq!(
            OnError::default_for("redact", "", "{}"),
            OnError::FailClosed
        );
        assert_eq!(
            OnError::default_for("redact-pii", "", ""),
            OnError::FailClosed
        );
        assert_eq!(
            OnError::default_for("scrub", "Redacts card numbers", "{}"),
            OnError::FailClosed
        );
        assert_eq!(
            OnError::default_for("parse-json", "Parses JSON logs", "{}"),
            OnError::FailOpen
        );
        let asks = r#"{"type": "object", "x-wasm-router": {"on_error": "fail_closed"}}"#;
        assert_eq!(
            OnError::default_for("mask", "Masks secrets", asks),
            OnError::FailClosed
        );
        let asks = r#"{"x-wasm-router": {"on_error": "dead_letter"}}"#;
        assert_eq!(
            OnError::default_for("redact", "", asks),
            OnError::DeadLetter
        );
    }

    #[test]
    fn six_faults_in_a_minute_open_the_circuit_then_one_probe_decides() {
        let t0 = Instant::now();
        let mut c = CircuitBreaker::default();
        for i in 0..5 {
            assert!(!c.fault(t0 + Duration::from_secs(i)));
        }
        assert!(c.allow(t0));
        assert!(c.fault(t0 + Duration::from_secs(5)));
        assert!(!c.allow(t0 + Duration::from_secs(6)));
        // Backoff over: one probe, the others wait.
        let t1 = t0 + Duration::from_secs(11);
        assert!(c.allow(t1));
        assert!(!c.allow(t1));
        // The probe faults: open again for twice as long.
        assert!(c.fault(t1));
        assert!(!c.allow(t1 + Duration::from_secs(9)));
        assert!(c.allow(t1 + Duration::from_secs(10)));
        assert!(c.success());
        assert!(!c.is_open());
        assert!(c.allow(t1 + Duration::from_secs(10)));
    }

    #[test]
    fn faults_spread_over_more_than_a_minute_do_not_open_it() {
        let t0 = Instant::now();
        let mut c = CircuitBreaker::default();
        for i in 0..20 {
            assert!(!c.fault(t0 + Duration::from_secs(i * 15)));
        }
        assert!(!c.is_open());
    }
}
