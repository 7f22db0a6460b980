//! [`Ctx`]: per-batch context handed to filter functions.

/// Per-batch context: counters added here are summed over the batch and sent to the router
/// once, after the batch (one import call per counter name, not per event).
#[derive(Debug, Default)]
pub struct Ctx {
    counters: Vec<(&'static str, u64)>,
}

impl Ctx {
    /// A fresh context (the SDK makes one per batch; tests make their own).
    pub fn new() -> Ctx {
        Ctx::default()
    }

    /// Adds `value` to the plugin counter `name` (exported as `plugin_<plugin>_<name>`).
    pub fn count(&mut self, name: &'static str, value: u64) {
        match self
            .counters
            .iter_mut()
            .find(|(counter, _)| *counter == name)
        {
            Some((_, total)) => *total = total.saturating_add(value),
            None => self.counters.push((name, value)),
        }
    }

    /// The counts added so far (not yet sent).
    pub fn counts(&self) -> &[(&'static str, u64)] {
        &self.counters
    }

    /// Sends the counts to the router and clears them.
    pub fn flush(&mut self) {
        for (name, value) in self.counters.drain(..) {
            if value > 0 {
                crate::host::counter_add(name, value, &[]);
            }
        }
    }
}
