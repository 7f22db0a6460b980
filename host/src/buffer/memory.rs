//! The in-memory buffer: a bounded queue of batches with a byte budget.

use super::WhenFull;
use crate::event::Batch;
use crate::ops::metrics::{Component, Metrics};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Most batches a buffer queues, whatever their size (the byte budget is the real bound).
const MAX_QUEUED_BATCHES: usize = 16 * 1024;

/// The pipeline's side of an output buffer.
#[derive(Clone)]
pub struct BufferWriter {
    tx: mpsc::Sender<Queued>,
    bytes: Arc<Semaphore>,
    max_bytes: usize,
    when_full: WhenFull,
    component: Component,
    metrics: Arc<Metrics>,
}

/// The output's side of its buffer.
pub struct BufferReader {
    rx: mpsc::Receiver<Queued>,
}

/// A batch taken from a buffer. Its bytes are released when this is dropped, i.e. once the
/// output is done with it.
pub struct Queued {
    /// The batch to deliver.
    pub batch: Batch,
    _reservation: Reservation,
}

struct Reservation {
    _permit: OwnedSemaphorePermit,
    events: i64,
    bytes: i64,
    component: Component,
    metrics: Arc<Metrics>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let labels = self.component.labels();
        self.metrics.buffer_events.get_or_create(&labels).dec_by(self.events);
        self.metrics.buffer_bytes.get_or_create(&labels).dec_by(self.bytes);
    }
}

/// A buffer holding at most `max_bytes` of batches for `component`.
pub fn memory_buffer(
    max_bytes: usize,
    when_full: WhenFull,
    component: Component,
    metrics: Arc<Metrics>,
) -> (BufferWriter, BufferReader) {
    let max_bytes = max_bytes.clamp(1, u32::MAX as usize);
    let (tx, rx) = mpsc::channel(MAX_QUEUED_BATCHES);
    let writer = BufferWriter {
        tx,
        bytes: Arc::new(Semaphore::new(max_bytes)),
        max_bytes,
        when_full,
        component,
        metrics,
    };
    (writer, BufferReader { rx })
}

/// Why a push did not queue its batch. The events were counted as dropped.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The buffer was full and its policy is `drop_newest`.
    #[error("buffer full")]
    Full,
    /// The output stopped.
    #[error("output closed")]
    Closed,
}

impl BufferWriter {
    /// Queue `batch`. With [`WhenFull::Block`] this waits for room; with
    /// [`WhenFull::DropNewest`] a full buffer drops the batch (counted) and returns at once.
    pub async fn push(&self, batch: Batch) -> Result<(), PushError> {
        let events = batch.len() as u64;
        // A batch bigger than the whole budget still goes through, alone.
        let size = batch.byte_size().clamp(1, self.max_bytes);
        let permit = match self.when_full {
            WhenFull::Block => self.bytes.clone().acquire_many_owned(size as u32).await.ok(),
            WhenFull::DropNewest => match self.bytes.clone().try_acquire_many_owned(size as u32) {
                Ok(p) => Some(p),
                Err(tokio::sync::TryAcquireError::NoPermits) => {
                    self.metrics.events_dropped(&self.component, "buffer_full", events);
                    return Err(PushError::Full);
                }
                Err(tokio::sync::TryAcquireError::Closed) => None,
            },
        };
        let Some(permit) = permit else {
            self.metrics.events_dropped(&self.component, "output_closed", events);
            return Err(PushError::Closed);
        };
        let labels = self.component.labels();
        self.metrics.buffer_events.get_or_create(&labels).inc_by(events as i64);
        self.metrics.buffer_bytes.get_or_create(&labels).inc_by(size as i64);
        let queued = Queued {
            batch,
            _reservation: Reservation {
                _permit: permit,
                events: events as i64,
                bytes: size as i64,
                component: self.component.clone(),
                metrics: self.metrics.clone(),
            },
        };
        if self.tx.send(queued).await.is_err() {
            self.metrics.events_dropped(&self.component, "output_closed", events);
            return Err(PushError::Closed);
        }
        Ok(())
    }
}

impl BufferReader {
    /// The next batch, or `None` once every writer is gone and the queue is empty.
    pub async fn pop(&mut self) -> Option<Queued> {
        self.rx.recv().await
    }

    /// Stop accepting pushes; what is queued can still be popped.
    pub fn close(&mut self) {
        self.rx.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use bytes::Bytes;

    fn batch(n: usize, body: usize) -> Batch {
        let ev = Event { time_ns: 1, body: Bytes::from(vec![0x80; body]) };
        Batch::new(Bytes::from_static(b"t"), vec![ev; n])
    }

    #[tokio::test]
    async fn drop_newest_counts_what_does_not_fit() {
        let metrics = Metrics::new();
        let out = Component::output("test");
        let (w, mut r) = memory_buffer(1000, WhenFull::DropNewest, out.clone(), metrics.clone());
        w.push(batch(5, 100)).await.unwrap(); // 5 * 108 + 1 bytes
        assert!(matches!(w.push(batch(5, 100)).await, Err(PushError::Full)));
        assert_eq!(metrics.discarded(&out, "buffer_full"), 5);
        // Once the first batch is delivered its bytes are free again.
        drop(r.pop().await.unwrap());
        w.push(batch(5, 100)).await.unwrap();
        assert_eq!(metrics.discarded(&out, "buffer_full"), 5);
    }

    #[tokio::test]
    async fn block_waits_until_the_output_releases_bytes() {
        let metrics = Metrics::new();
        let (w, mut r) = memory_buffer(1000, WhenFull::Block, Component::output("t"), metrics.clone());
        w.push(batch(5, 100)).await.unwrap();
        let w2 = w.clone();
        let pending = tokio::spawn(async move { w2.push(batch(5, 100)).await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!pending.is_finished(), "second push must wait for room");
        let first = r.pop().await.unwrap();
        assert_eq!(first.batch.len(), 5);
        drop(first);
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
}
