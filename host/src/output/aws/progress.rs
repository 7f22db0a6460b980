//! Resuming a half-delivered batch. The runner calls `deliver` again with the same batch after
//! a retryable error; an output that split the batch over several API calls keeps what is
//! still unsent, keyed by the batch's fingerprint, and sends only that — never a request the
//! API already accepted. A different batch means the runner gave the old one up (it counts
//! those events), so the leftovers are discarded.

use crate::event::Batch;
use std::hash::{Hash, Hasher};

/// A hash of a batch's tag, times and bodies: equal for the same batch handed over again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchFingerprint(u64);

impl BatchFingerprint {
    /// Fingerprint `batch` (one pass over its bytes).
    pub fn of(batch: &Batch) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        batch.tag.hash(&mut h);
        batch.events.len().hash(&mut h);
        for e in &batch.events {
            e.time_ns.hash(&mut h);
            e.body.hash(&mut h);
        }
        BatchFingerprint(h.finish())
    }
}

/// Work left over from a batch whose delivery failed part-way.
#[derive(Debug)]
pub struct Leftover<W> {
    fingerprint: BatchFingerprint,
    work: W,
}

/// At most one batch's leftovers.
#[derive(Debug)]
pub struct Resume<W> {
    leftover: Option<Leftover<W>>,
}

impl<W> Default for Resume<W> {
    fn default() -> Self {
        Resume { leftover: None }
    }
}

impl<W> Resume<W> {
    /// The unsent work of `batch` if it is the batch that failed last time; `None` for a new
    /// batch (and any other batch's leftovers are dropped). Fingerprints only when there are
    /// leftovers, so the common path costs nothing.
    pub fn take_for(&mut self, batch: &Batch) -> Option<W> {
        let leftover = self.leftover.take()?;
        (leftover.fingerprint == BatchFingerprint::of(batch)).then_some(leftover.work)
    }

    /// Keep `work` (what is still unsent of `batch`) for the next call.
    pub fn keep(&mut self, batch: &Batch, work: W) {
        self.leftover = Some(Leftover {
            fingerprint: BatchFingerprint::of(batch),
            work,
        });
    }

    /// Whether leftovers are held.
    pub fn is_pending(&self) -> bool {
        self.leftover.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use bytes::Bytes;

    fn batch(body: &'static [u8]) -> Batch {
        Batch::new(
            Bytes::from_static(b"app"),
            vec![Event {
                time_ns: 1,
                body: Bytes::from_static(body),
            }],
        )
    }

    #[test]
    fn leftovers_come_back_only_for_the_same_batch() {
        let mut r = Resume::default();
        assert_eq!(r.take_for(&batch(b"\x80")), None::<Vec<u32>>);
        r.keep(&batch(b"\x80"), vec![1, 2]);
        assert!(r.is_pending());
        assert_eq!(r.take_for(&batch(b"\x80")), Some(vec![1, 2]));
        assert!(!r.is_pending());
        r.keep(&batch(b"\x80"), vec![3]);
        assert_eq!(r.take_for(&batch(b"\x81\xa1a\xa1b")), None);
        assert!(!r.is_pending(), "another batch discards the old leftovers");
    }
}
