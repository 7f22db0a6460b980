//! The in-memory buffer: a queue of batches bounded by bytes, twice — by the output's own
//! `max_bytes` and by the router-wide [`MemoryBudget`].
//!
//! A pushed batch is first copied into blocks of exactly its size ([`compact`]): the
//! decoder hands out bodies that are slices of the connection's read buffer, and holding those
//! would keep whole read buffers — and the neighbouring requests in them — alive, so the bytes
//! accounted would understate the memory held by up to half. The copy makes the accounting
//! ([`held_bytes`]) what the batch really holds.

use super::budget::{BudgetPermit, MemoryBudget};
use super::{
    AbandonedPush, BufferReader, BufferWriter, PushError, Queued, ReaderKind, Ticket, WhenFull,
    WriterKind,
};
use crate::event::{Batch, Event, now_ns};
use crate::ops::metrics::{Component, Metrics};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc};

/// Most batches a buffer queues, whatever their size (the byte bounds are the real ones).
const MAX_QUEUED_BATCHES: usize = 16 * 1024;

#[derive(Clone)]
pub(crate) struct MemoryWriter {
    tx: mpsc::Sender<Queued>,
    bytes: Arc<Semaphore>,
    max_bytes: usize,
    when_full: WhenFull,
    budget: MemoryBudget,
    component: Component,
    metrics: Arc<Metrics>,
}

pub(crate) struct MemoryReader {
    rx: mpsc::Receiver<Queued>,
    bytes: Arc<Semaphore>,
}

/// The bytes a queued batch holds; released when dropped.
pub(crate) struct Reservation {
    _own: OwnedSemaphorePermit,
    _budget: BudgetPermit,
    events: i64,
    bytes: i64,
    component: Component,
    metrics: Arc<Metrics>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let labels = self.component.labels();
        self.metrics
            .buffer_events
            .get_or_create(&labels)
            .dec_by(self.events);
        self.metrics
            .buffer_bytes
            .get_or_create(&labels)
            .dec_by(self.bytes);
    }
}

/// A buffer holding at most `max_bytes` of batches for `component`, with a budget of its own
/// (for tests and tools; a router shares one budget between its outputs).
pub fn memory_buffer(
    max_bytes: usize,
    when_full: WhenFull,
    component: Component,
    metrics: Arc<Metrics>,
) -> (BufferWriter, BufferReader) {
    let budget = MemoryBudget::new(max_bytes as u64);
    let (w, r) = open(max_bytes, when_full, budget, component, metrics);
    (
        BufferWriter(WriterKind::Memory(w)),
        BufferReader(ReaderKind::Memory(r)),
    )
}

pub(crate) fn open(
    max_bytes: usize,
    when_full: WhenFull,
    budget: MemoryBudget,
    component: Component,
    metrics: Arc<Metrics>,
) -> (MemoryWriter, MemoryReader) {
    let max_bytes = max_bytes.clamp(1, u32::MAX as usize);
    let (tx, rx) = mpsc::channel(MAX_QUEUED_BATCHES);
    let bytes = Arc::new(Semaphore::new(max_bytes));
    let writer = MemoryWriter {
        tx,
        bytes: bytes.clone(),
        max_bytes,
        when_full,
        budget,
        component,
        metrics,
    };
    (writer, MemoryReader { rx, bytes })
}

impl MemoryWriter {
    pub(crate) async fn push(&self, batch: Batch) -> Result<(), PushError> {
        let mut abandoned = AbandonedPush::new(&self.metrics, &self.component, batch.len() as u64);
        let pushed = self.queue(batch).await;
        abandoned.settled();
        pushed
    }

    async fn queue(&self, batch: Batch) -> Result<(), PushError> {
        let events = batch.len() as u64;
        // A batch bigger than the whole bound still goes through, alone.
        let size = held_bytes(&batch).clamp(1, self.max_bytes);
        let permits = match self.when_full {
            WhenFull::Block => {
                let own = self.bytes.clone().acquire_many_owned(size as u32).await;
                match own {
                    Ok(own) => self.budget.acquire(size).await.ok().map(|b| (own, b)),
                    Err(_) => None,
                }
            }
            WhenFull::DropNewest => {
                let own = match self.bytes.clone().try_acquire_many_owned(size as u32) {
                    Ok(p) => Some(p),
                    Err(TryAcquireError::NoPermits) => {
                        return Err(self.dropped(events, "buffer_full", PushError::Full));
                    }
                    Err(TryAcquireError::Closed) => None,
                };
                match own.map(|own| (own, self.budget.try_acquire(size))) {
                    Some((own, Ok(budget))) => Some((own, budget)),
                    Some((_, Err(TryAcquireError::NoPermits))) => {
                        return Err(self.dropped(events, "buffer_full", PushError::Full));
                    }
                    _ => None,
                }
            }
        };
        let Some((own, budget)) = permits else {
            return Err(self.dropped(events, "shutdown_undelivered", PushError::Closed));
        };
        let batch = compact(batch);
        let labels = self.component.labels();
        self.metrics
            .buffer_events
            .get_or_create(&labels)
            .inc_by(events as i64);
        self.metrics
            .buffer_bytes
            .get_or_create(&labels)
            .inc_by(size as i64);
        let queued = Queued {
            batch,
            accepted_at_ns: now_ns(),
            ticket: Ticket::Memory(Reservation {
                _own: own,
                _budget: budget,
                events: events as i64,
                bytes: size as i64,
                component: self.component.clone(),
                metrics: self.metrics.clone(),
            }),
        };
        if self.tx.send(queued).await.is_err() {
            return Err(self.dropped(events, "output_closed", PushError::Closed));
        }
        Ok(())
    }

    fn dropped(&self, events: u64, reason: &str, error: PushError) -> PushError {
        self.metrics.events_dropped(&self.component, reason, events);
        error
    }
}

/// The memory a batch holds once compacted: its tag and bodies, and the event list.
pub fn held_bytes(batch: &Batch) -> usize {
    batch.tag.len()
        + batch.events.iter().map(|e| e.body.len()).sum::<usize>()
        + batch.events.len() * size_of::<Event>()
}

/// Largest allocation [`compact`] makes. Below glibc's initial mmap threshold (128 KiB): large
/// blocks freed by one thread and reused by another are what makes malloc arenas keep memory,
/// and a buffer that fills and drains all day would otherwise pay for it in RSS.
const COMPACT_BLOCK: usize = 64 << 10;

/// `batch` with its tag and bodies copied into blocks of exactly their size (an event larger
/// than `COMPACT_BLOCK`, 64 KiB, gets a block of its own).
pub fn compact(batch: Batch) -> Batch {
    let tag = Bytes::copy_from_slice(&batch.tag);
    let mut events = Vec::with_capacity(batch.events.len());
    let mut rest = &batch.events[..];
    while !rest.is_empty() {
        // The events that fit in one block (at least one).
        let mut n = 0;
        let mut size = 0;
        while n < rest.len() && (n == 0 || size + rest[n].body.len() <= COMPACT_BLOCK) {
            size += rest[n].body.len();
            n += 1;
        }
        let mut block = BytesMut::with_capacity(size);
        for e in &rest[..n] {
            block.extend_from_slice(&e.body);
        }
        let block = block.freeze();
        let mut at = 0;
        for e in &rest[..n] {
            events.push(Event {
                time_ns: e.time_ns,
                body: block.slice(at..at + e.body.len()),
            });
            at += e.body.len();
        }
        rest = &rest[n..];
    }
    Batch::new(tag, events)
}

impl MemoryReader {
    pub(crate) async fn pop(&mut self) -> Option<Queued> {
        self.rx.recv().await
    }

    pub(crate) fn try_pop(&mut self) -> Option<Queued> {
        self.rx.try_recv().ok()
    }

    pub(crate) fn close(&mut self) {
        self.bytes.close();
        self.rx.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::open_buffer;
    use crate::event::Event;
    use bytes::Bytes;

    fn batch(n: usize, body: usize) -> Batch {
        let ev = Event {
            time_ns: 1,
            body: Bytes::from(vec![0x80; body]),
        };
        Batch::new(Bytes::from_static(b"t"), vec![ev; n])
    }

    #[tokio::test]
    async fn drop_newest_counts_what_does_not_fit() {
        let metrics = Metrics::new();
        let out = Component::output("test");
        let (w, mut r) = memory_buffer(1000, WhenFull::DropNewest, out.clone(), metrics.clone());
        w.push(batch(5, 100)).await.unwrap(); // 1 + 5 * (100 + 40) bytes
        assert!(matches!(w.push(batch(5, 100)).await, Err(PushError::Full)));
        assert_eq!(metrics.discarded(&out, "buffer_full"), 5);
        // Once the first batch is delivered its bytes are free again.
        r.pop().await.unwrap().done();
        w.push(batch(5, 100)).await.unwrap();
        assert_eq!(metrics.discarded(&out, "buffer_full"), 5);
    }

    #[tokio::test]
    async fn block_waits_until_the_output_releases_bytes() {
        let metrics = Metrics::new();
        let (w, mut r) = memory_buffer(
            1000,
            WhenFull::Block,
            Component::output("t"),
            metrics.clone(),
        );
        w.push(batch(5, 100)).await.unwrap();
        let w2 = w.clone();
        let pending = tokio::spawn(async move { w2.push(batch(5, 100)).await });
        tokio::task::yield_now().await;
        assert!(!pending.is_finished(), "second push must wait for room");
        let first = r.pop().await.unwrap();
        assert_eq!(first.batch.len(), 5);
        first.done();
        pending.await.unwrap().unwrap();
        assert_eq!(r.pop().await.unwrap().batch.len(), 5);
    }

    #[tokio::test]
    async fn a_batch_larger_than_the_budget_still_passes_alone() {
        let metrics = Metrics::new();
        let (w, mut r) = memory_buffer(100, WhenFull::Block, Component::output("t"), metrics);
        w.push(batch(10, 100)).await.unwrap();
        assert_eq!(r.pop().await.unwrap().batch.len(), 10);
    }

    /// Two outputs with 1000 bytes each under a shared budget of 1200: together they never
    /// hold more than the budget, and a `drop_newest` output drops when the *budget* is
    /// exhausted by the other one. A batch of n events of 100 bytes holds 1 + 140 n bytes.
    #[tokio::test]
    async fn outputs_share_the_global_budget() {
        let metrics = Metrics::new();
        let budget = MemoryBudget::new(1200);
        let kind = |when_full| crate::buffer::BufferKind::Memory {
            max_bytes: 1000,
            when_full,
        };
        let (a, mut ra) = open_buffer(
            &kind(WhenFull::Block),
            &budget,
            Component::output("a"),
            metrics.clone(),
        )
        .unwrap();
        let (b, mut rb) = open_buffer(
            &kind(WhenFull::DropNewest),
            &budget,
            Component::output("b"),
            metrics.clone(),
        )
        .unwrap();
        a.push(batch(6, 100)).await.unwrap();
        assert_eq!(budget.in_use(), 841);
        // b has room of its own (1000) but the budget has only 359 left.
        assert!(matches!(b.push(batch(4, 100)).await, Err(PushError::Full)));
        assert_eq!(metrics.discarded(&Component::output("b"), "buffer_full"), 4);
        b.push(batch(2, 100)).await.unwrap();
        assert_eq!(budget.in_use(), 1122);
        // a blocks on the budget, not on its own bound, until b delivers.
        let a2 = a.clone();
        let pending = tokio::spawn(async move { a2.push(batch(1, 100)).await });
        tokio::task::yield_now().await;
        assert!(!pending.is_finished());
        rb.pop().await.unwrap().done();
        pending.await.unwrap().unwrap();
        assert_eq!(budget.in_use(), 841 + 141);
        ra.pop().await.unwrap().done();
        ra.pop().await.unwrap().done();
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn compacting_keeps_the_batch_and_lets_the_read_buffer_go() {
        let read_buffer = Bytes::from(b"xxTAGyy\x81\xa1a\x01zz\x80".to_vec());
        let events = vec![
            Event {
                time_ns: 1,
                body: read_buffer.slice(7..11),
            },
            Event {
                time_ns: 2,
                body: read_buffer.slice(13..14),
            },
        ];
        let original = Batch::new(read_buffer.slice(2..5), events);
        let compacted = compact(original.clone());
        assert_eq!(compacted, original);
        assert_eq!(held_bytes(&compacted), 3 + 4 + 1 + 2 * size_of::<Event>());
        drop(original);
        // Only this test's handle is left on the read buffer: the batch no longer holds it.
        assert!(read_buffer.is_unique());
    }

    #[tokio::test]
    async fn try_pop_takes_what_is_queued_without_waiting() {
        let metrics = Metrics::new();
        let (w, mut r) = memory_buffer(1 << 20, WhenFull::Block, Component::output("t"), metrics);
        assert!(
            r.try_pop().is_none(),
            "empty, and the writer is still there"
        );
        w.push(batch(1, 10)).await.unwrap();
        w.push(batch(2, 10)).await.unwrap();
        assert_eq!(r.try_pop().unwrap().batch.len(), 1);
        assert_eq!(r.pop().await.unwrap().batch.len(), 2);
        assert!(r.try_pop().is_none());
    }

    /// The input stops waiting (its drain time at shutdown ended): the dropped push's events
    /// were not queued and are counted; a push that returned is not counted again.
    #[tokio::test]
    async fn an_abandoned_push_is_counted() {
        let metrics = Metrics::new();
        let out = Component::output("t");
        let (w, mut r) = memory_buffer(1000, WhenFull::Block, out.clone(), metrics.clone());
        w.push(batch(5, 100)).await.unwrap();
        let w2 = w.clone();
        let pending = tokio::spawn(async move { w2.push(batch(3, 100)).await });
        tokio::task::yield_now().await;
        pending.abort();
        assert!(pending.await.unwrap_err().is_cancelled());
        assert_eq!(metrics.discarded(&out, "shutdown_undelivered"), 3);
        r.pop().await.unwrap().done();
        drop(w);
        assert!(
            r.pop().await.is_none(),
            "the abandoned batch was not queued"
        );
        assert_eq!(metrics.discarded(&out, "shutdown_undelivered"), 3);
    }

    #[tokio::test]
    async fn close_fails_waiting_pushes_and_counts_them() {
        let metrics = Metrics::new();
        let out = Component::output("t");
        let (w, mut r) = memory_buffer(1000, WhenFull::Block, out.clone(), metrics.clone());
        w.push(batch(8, 100)).await.unwrap();
        let w2 = w.clone();
        let pending = tokio::spawn(async move { w2.push(batch(8, 100)).await });
        tokio::task::yield_now().await;
        r.close();
        assert!(matches!(pending.await.unwrap(), Err(PushError::Closed)));
        assert_eq!(metrics.discarded(&out, "shutdown_undelivered"), 8);
        // What was queued before can still be taken.
        assert_eq!(r.pop().await.unwrap().batch.len(), 8);
        drop(w);
        assert!(r.pop().await.is_none());
    }
}
