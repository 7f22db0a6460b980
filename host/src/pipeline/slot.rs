//! [`FilterSlot`]: the filter of one pipeline stage, replaceable while batches flow (hot
//! reload swaps plugins through it, [`crate::topology::reload`]). A batch takes the slot's
//! current filter once and runs through it to the end, so a batch in flight during a swap
//! finishes on the old filter while the next batch uses the new one.

use super::Filter;
use crate::event::Batch;
use std::sync::{Arc, RwLock};

/// The filter of one pipeline stage, replaceable while batches flow.
pub struct FilterSlot {
    current: RwLock<Arc<dyn Filter>>,
}

impl FilterSlot {
    /// A slot holding `filter`.
    pub fn new(filter: Arc<dyn Filter>) -> Arc<FilterSlot> {
        Arc::new(FilterSlot {
            current: RwLock::new(filter),
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
        std::mem::replace(
            &mut *self.current.write().unwrap_or_else(|e| e.into_inner()),
            filter,
        )
    }
}

impl Filter for FilterSlot {
    fn process(&self, batch: Batch) -> Vec<Batch> {
        self.current().process(batch)
    }
}
