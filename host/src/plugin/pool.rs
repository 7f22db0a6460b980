//! A bounded pool of instances of one plugin, so that several connections can run it at once.
//! An instance is taken for one call and given back (or discarded after a fault or when it is
//! due for recycling); when every instance is busy and the pool is at its bound, the caller
//! waits for one — a wait bounded by the call deadline.

use super::fault::Fault;
use super::instance::PluginInstance;
use std::sync::{Condvar, Mutex};

/// Instances of one plugin, at most `max` alive.
pub struct InstancePool {
    state: Mutex<PoolState>,
    freed: Condvar,
    max: usize,
}

struct PoolState {
    idle: Vec<PluginInstance>,
    live: usize,
}

impl InstancePool {
    /// A pool of at most `max` instances (at least one).
    pub fn new(max: usize) -> Self {
        InstancePool {
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                live: 0,
            }),
            freed: Condvar::new(),
            max: max.max(1),
        }
    }

    /// The bound.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Add an instance created elsewhere (the first one, made while the plugin loads).
    pub fn put_new(&self, instance: PluginInstance) {
        let mut state = self.lock();
        state.live += 1;
        state.idle.push(instance);
        drop(state);
        self.freed.notify_one();
    }

    /// An idle instance, or a new one from `create` while under the bound, or else the next
    /// one given back.
    pub fn take(
        &self,
        create: impl FnOnce() -> Result<PluginInstance, Fault>,
    ) -> Result<PluginInstance, Fault> {
        let mut state = self.lock();
        loop {
            if let Some(instance) = state.idle.pop() {
                return Ok(instance);
            }
            if state.live < self.max {
                state.live += 1;
                drop(state);
                return create().inspect_err(|_| self.forget_one());
            }
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Give an instance back for the next call.
    pub fn give_back(&self, instance: PluginInstance) {
        self.lock().idle.push(instance);
        self.freed.notify_one();
    }

    /// Drop an instance (after a fault, or to recycle it); the next `take` creates a new one.
    pub fn discard(&self, instance: PluginInstance) {
        drop(instance);
        self.forget_one();
    }

    fn forget_one(&self) {
        self.lock().live -= 1;
        self.freed.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
