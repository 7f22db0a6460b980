//! Per-instance resource limits: the memory cap (a [`ResourceLimiter`] that also records peak
//! memory), the per-call deadline and the recycling threshold.

use super::config::PluginLimitsConfig;
use crate::config::{ByteSize, DurationStr};
use std::time::Duration;
use wasmtime::ResourceLimiter;

/// Default linear-memory cap per instance.
pub const DEFAULT_MEMORY_BYTES: usize = 64 << 20;
/// Default wall-clock budget of one filter call.
pub const DEFAULT_FILTER_DEADLINE: Duration = Duration::from_millis(50);
/// Default wall-clock budget of one output call (`encode`, `on-response`).
pub const DEFAULT_OUTPUT_DEADLINE: Duration = Duration::from_millis(200);
/// Default number of calls after which an instance is replaced by a fresh one.
pub const DEFAULT_MAX_CALLS: u64 = 100_000;
/// An instance whose memory passes this share of its cap is replaced after its call.
pub const RECYCLE_MEMORY_SHARE: f64 = 0.75;
/// Default fuel of one call on a metering engine (`wasm-router test`): ten billion instructions.
pub const DEFAULT_FUEL_PER_CALL: u64 = 10_000_000_000;
/// Most table elements an instance may hold (Rust guests use a few hundred).
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// The limits every instance of one plugin runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PluginLimits {
    /// Linear memory cap, in bytes, summed over the instance's memories.
    pub memory_bytes: usize,
    /// Wall-clock budget of one call.
    pub deadline: Duration,
    /// Replace an instance after this many calls.
    pub max_calls: u64,
    /// Instructions one call may run on a metering engine (`wasm-router test`); unused
    /// elsewhere.
    pub fuel: u64,
}

impl PluginLimits {
    /// The defaults for a filter.
    pub fn filter_defaults() -> Self {
        PluginLimits {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            deadline: DEFAULT_FILTER_DEADLINE,
            max_calls: DEFAULT_MAX_CALLS,
            fuel: DEFAULT_FUEL_PER_CALL,
        }
    }

    /// The defaults for an output.
    pub fn output_defaults() -> Self {
        PluginLimits {
            deadline: DEFAULT_OUTPUT_DEADLINE,
            ..Self::filter_defaults()
        }
    }

    /// `defaults`, overridden by what `config` sets.
    pub fn from_config(config: &PluginLimitsConfig, defaults: PluginLimits) -> Self {
        PluginLimits {
            memory_bytes: config.memory.map_or(defaults.memory_bytes, |b| {
                usize::try_from(b.0).unwrap_or(usize::MAX)
            }),
            deadline: config.deadline.map_or(defaults.deadline, |d| d.0),
            max_calls: config.max_calls.unwrap_or(defaults.max_calls).max(1),
            fuel: defaults.fuel,
        }
    }

    /// Set one limit from text, as `wasm-router test --limit KEY=VALUE` writes it: `deadline`
    /// (`"200ms"`, `"2s"`), `memory` (`"256MiB"`), `fuel` (instructions per call) or
    /// `max_calls`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let positive = |what: &str| format!("{key}={value}: {what} must be more than 0");
        match key {
            "deadline" => {
                let d = DurationStr::parse(value)?.0;
                if d.is_zero() {
                    return Err(positive("the deadline"));
                }
                self.deadline = d;
            }
            "memory" => {
                let b = ByteSize::parse(value)?.0;
                if b == 0 {
                    return Err(positive("the memory cap"));
                }
                self.memory_bytes = usize::try_from(b).unwrap_or(usize::MAX);
            }
            "fuel" | "max_calls" => {
                let n: u64 = value
                    .replace('_', "")
                    .parse()
                    .map_err(|_| format!("{key}={value}: not a whole number"))?;
                if n == 0 {
                    return Err(positive(key));
                }
                if key == "fuel" {
                    self.fuel = n;
                } else {
                    self.max_calls = n;
                }
            }
            other => {
                return Err(format!(
                    "unknown limit {other:?}: use deadline, memory, fuel or max_calls"
                ));
            }
        }
        Ok(())
    }

    /// Memory above which an instance is recycled after its call.
    pub fn recycle_memory_bytes(&self) -> usize {
        (self.memory_bytes as f64 * RECYCLE_MEMORY_SHARE) as usize
    }
}

/// A plugin asked for more memory than its cap: the call traps with this error.
#[derive(Debug, thiserror::Error)]
#[error(
    "memory cap of {cap} bytes reached: the plugin asked to grow its memory to {requested} bytes"
)]
pub struct MemoryCapExceeded {
    /// The cap.
    pub cap: usize,
    /// What the instance would have had after the growth.
    pub requested: usize,
}

/// The [`ResourceLimiter`] of one store: refuses growth past the cap (trapping the call, so the
/// fault is classified precisely) and records current and peak memory.
#[derive(Debug)]
pub struct MemoryLimiter {
    cap: usize,
    current: usize,
    peak: usize,
}

impl MemoryLimiter {
    /// A limiter with a cap of `cap` bytes.
    pub fn new(cap: usize) -> Self {
        MemoryLimiter {
            cap,
            current: 0,
            peak: 0,
        }
    }

    /// Bytes of linear memory the instance holds now.
    pub fn current(&self) -> usize {
        self.current
    }

    /// Most bytes of linear memory the instance ever held.
    pub fn peak(&self) -> usize {
        self.peak
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = (self.current - current.min(self.current)).saturating_add(desired);
        if total > self.cap {
            return Err(MemoryCapExceeded {
                cap: self.cap,
                requested: total,
            }
            .into());
        }
        self.current = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_cap_traps_and_peak_is_recorded() {
        let mut l = MemoryLimiter::new(4 << 16);
        assert!(l.memory_growing(0, 2 << 16, None).unwrap());
        assert!(l.memory_growing(2 << 16, 3 << 16, None).unwrap());
        // A second memory counts towards the same cap.
        let err = l.memory_growing(0, 2 << 16, None).unwrap_err();
        assert!(err.downcast_ref::<MemoryCapExceeded>().is_some());
        assert_eq!(l.current(), 3 << 16);
        assert_eq!(l.peak(), 3 << 16);
    }

    #[test]
    fn config_overrides_defaults() {
        let c = PluginLimitsConfig {
            memory: Some(crate::config::ByteSize(1 << 20)),
            deadline: None,
            max_calls: Some(0),
        };
        let l = PluginLimits::from_config(&c, PluginLimits::filter_defaults());
        assert_eq!(l.memory_bytes, 1 << 20);
        assert_eq!(l.deadline, DEFAULT_FILTER_DEADLINE);
        assert_eq!(l.max_calls, 1);
        assert_eq!(l.recycle_memory_bytes(), 786_432);
    }

    #[test]
    fn limits_are_set_from_text() {
        let mut l = PluginLimits::filter_defaults();
        l.set("deadline", "2s").unwrap();
        l.set("memory", "256MiB").unwrap();
        l.set("fuel", "1_000_000").unwrap();
        assert_eq!(l.deadline, Duration::from_secs(2));
        assert_eq!(l.memory_bytes, 256 << 20);
        assert_eq!(l.fuel, 1_000_000);
        assert!(l.set("deadline", "0s").unwrap_err().contains("more than 0"));
        assert!(
            l.set("speed", "1")
                .unwrap_err()
                .contains("deadline, memory")
        );
        assert!(l.set("memory", "lots").is_err());
    }
}
