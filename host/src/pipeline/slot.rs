//! [`FilterSlot`]: the filter of one pipeline stage, replaceable while batches flow (hot
//! reload swaps plugins through it, [`crate::topology::reload`]). A batch takes the slot's
//! current filter once and runs through it to the end, so a batch in flight during a swap
//! finishes on the old filter while the next batch uses the new one. A replaced filter that
//! holds events (multiline groups) is kept until no batch is inside it, then what it holds is
//! passed on at the next expiry tick.

use super::Filter;
use crate::event::Batch;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The filter of one pipeline stage, replaceable while batches flow.
pub struct FilterSlot {
    current: RwLock<Arc<dyn Filter>>,
    /// Replaced filters that hold events, until they are flushed.
    retired: Mutex<Vec<Arc<dyn Filter>>>,
}

impl FilterSlot {
    /// A slot holding `filter`.
    pub fn new(filter: Arc<dyn Filter>) -> Arc<FilterSlot> {
        Arc::new(FilterSlot {
            current: RwLock::new(filter),
            retired: Mutex::default(),
        })
    }

    /// The filter new batches go through.
    pub fn current(&self) -> Arc<dyn Filter> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Make `filter` the one new batches go through; returns the previous one (batches
    /// already inside it finish there).
    pub fn replace(&self, filter: Arc<dyn Filter>) -> Arc<dyn Filter> {
        let old = std::mem::replace(
            &mut *self.current.write().unwrap_or_else(|e| e.into_inner()),
            filter,
        );
        if old.expiry_tick().is_some() {
            self.retired().push(old.clone());
        }
        old
    }

    fn retired(&self) -> std::sync::MutexGuard<'_, Vec<Arc<dyn Filter>>> {
        self.retired.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Filter for FilterSlot {
    fn process(&self, batch: Batch) -> Vec<Batch> {
        self.current().process(batch)
    }

    fn expiry_tick(&self) -> Option<Duration> {
        self.current().expiry_tick()
    }

    fn expire(&self, now: Instant) -> Vec<Batch> {
        let mut out = Vec::new();
        // A retired filter no batch is inside any more (only this list holds it) is flushed.
        self.retired().retain(|old| {
            if Arc::strong_count(old) > 1 {
                return true;
            }
            out.extend(old.flush_held());
            false
        });
        out.extend(self.current().expire(now));
        out
    }

    fn flush_held(&self) -> Vec<Batch> {
        let mut out: Vec<Batch> = self
            .retired()
            .drain(..)
            .flat_map(|old| old.flush_held())
            .collect();
        out.extend(self.current().flush_held());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// Holds every batch until flushed.
    #[derive(Default)]
    struct Holding(Mutex<Vec<Batch>>);
    impl Filter for Holding {
        fn process(&self, batch: Batch) -> Vec<Batch> {
            self.0.lock().unwrap().push(batch);
            Vec::new()
        }
        fn expiry_tick(&self) -> Option<Duration> {
            Some(Duration::from_secs(1))
        }
        fn flush_held(&self) -> Vec<Batch> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    #[test]
    fn a_replaced_filter_that_holds_events_is_flushed_at_the_next_tick() {
        let slot = FilterSlot::new(Arc::new(Holding::default()));
        slot.process(Batch::new(Bytes::from_static(b"old"), Vec::new()));
        drop(slot.replace(Arc::new(Holding::default())));
        slot.process(Batch::new(Bytes::from_static(b"new"), Vec::new()));
        let released = slot.expire(Instant::now());
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].tag, Bytes::from_static(b"old"));
        assert!(slot.expire(Instant::now()).is_empty(), "flushed once");
        assert_eq!(slot.flush_held()[0].tag, Bytes::from_static(b"new"));
    }
}
