//! Buffers between the pipeline and each output: bounded, with an explicit policy when full.
//!
//! The pipeline pushes a batch into the buffer of every output whose `match` covers its tag;
//! the input acknowledges the sender once every push returned. A buffer is either in memory
//! ([`memory`]) or on disk ([`disk`]: append-only checksummed segments, recovered on restart).
//! Either way, the output takes batches in order with [`BufferReader::pop`] (or, without waiting,
//! [`BufferReader::try_pop`]: what is ready now) and says when it is finished with one with
//! [`Queued::done`]:
//!
//! - memory: the batch's bytes stay reserved until then — from the output's own `max_bytes` and
//!   from the router-wide [`MemoryBudget`] — so the bound covers what is waiting *and* what is
//!   in flight;
//! - disk: the acked-read pointer moves past the batch, so it is not sent again after a restart.
//!
//! When a bound is hit, `when_full` decides: `block` (the push waits: the forward input reads
//! more slowly and its senders are slowed — never dropped, never disconnected) or
//! `drop_newest` (the push drops its batch and counts it under `buffer_full`). A disk buffer
//! that cannot write (full disk, read-only or failing directory) behaves the same: `block`
//! waits and retries until writing works again, `drop_newest` drops and counts under
//! `buffer_write_failed`. A push that ends because the output closed is never acknowledged.

pub mod budget;
pub mod config;
pub mod disk;
pub mod memory;

pub use budget::{BudgetSource, MemoryBudget};
pub use config::BufferConfig;
pub use disk::{DiskError, DiskOptions};
pub use memory::memory_buffer;

use crate::event::Batch;
use crate::ops::metrics::{Component, Metrics};
use serde::Deserialize;
use std::sync::Arc;

/// What a push does when the buffer is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Wait for room: the input reads more slowly (backpressure). Nothing is dropped.
    #[default]
    Block,
    /// Drop the batch being pushed and count it under `buffer_full`.
    DropNewest,
}

/// When a disk buffer flushes what it wrote to the disk (`fsync`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// Before every push returns (so before the sender's ack): survives power loss. Pushes
    /// waiting at the same time share one fsync.
    Always,
    /// Every `fsync_interval` (default 1 s): survives a crash of the router (the data is in
    /// the kernel's page cache when the sender is acked); a power loss can lose the last interval.
    #[default]
    Interval,
    /// Never: the kernel writes back when it likes. Survives a crash of the router only.
    Never,
}

/// The pipeline's side of an output buffer. Cheap to clone.
#[derive(Clone)]
pub struct BufferWriter(WriterKind);

#[derive(Clone)]
enum WriterKind {
    Memory(memory::MemoryWriter),
    Disk(disk::DiskWriter),
}

/// The output's side of its buffer.
pub struct BufferReader(ReaderKind);

enum ReaderKind {
    Memory(memory::MemoryReader),
    Disk(disk::DiskReader),
}

/// A batch taken from a buffer, until the output calls [`Queued::done`].
///
/// Dropping it without `done` releases a memory buffer's bytes just the same (the caller must
/// have counted the events), but leaves a disk-buffered batch unacknowledged: it is sent again
/// after the next start.
pub struct Queued {
    /// The batch to deliver.
    pub batch: Batch,
    /// When the buffer accepted the batch, in ns since the epoch (kept across restarts by a disk
    /// buffer). Retry deadlines count from here.
    pub accepted_at_ns: u64,
    ticket: Ticket,
}

enum Ticket {
    Memory(memory::Reservation),
    Disk(disk::DiskTicket),
}

impl Queued {
    /// The output is finished with this batch: delivered, or given up on and counted.
    pub fn done(self) {
        match self.ticket {
            Ticket::Memory(reservation) => drop(reservation),
            Ticket::Disk(ticket) => ticket.done(),
        }
    }

    /// These events of this batch (indexes into `batch.events`, ascending) reached the
    /// destination, but the batch is not done (a delivery cut at the shutdown deadline). A disk
    /// buffer persists this (synced per its fsync policy), so that after a restart only the
    /// other events of the batch are read back; a memory buffer has nothing to keep. Calling it
    /// again for the same batch adds to what was marked.
    pub fn mark_delivered(&mut self, delivered: &[u32]) {
        match &self.ticket {
            Ticket::Memory(_) => {}
            Ticket::Disk(ticket) => ticket.mark_delivered(delivered),
        }
    }
}

/// Why a push did not queue its batch. The events were counted as dropped.
///
/// [`Full`](Self::Full) and [`Write`](Self::Write) are the configured `drop_newest` policy at
/// work: the sender may be acknowledged ([`PushError::dropped_by_policy`]). [`Closed`](Self::Closed)
/// is not: the sender must not be acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The buffer was full and its policy is `drop_newest` (counted as `buffer_full`).
    #[error("buffer full")]
    Full,
    /// The output stopped (counted as `shutdown_undelivered` or `output_closed`), including a
    /// push that waited for room or for a failing disk to work again.
    #[error("output closed")]
    Closed,
    /// A disk buffer with `drop_newest` could not write the batch (counted as
    /// `buffer_write_failed`). With `block` a failing write waits and retries instead.
    #[error("buffer write failed: {0}")]
    Write(std::io::Error),
}

impl PushError {
    /// True when the buffer dropped the batch by its `drop_newest` policy (counted): the
    /// sender may be acknowledged, as for any event a configured policy drops.
    pub fn dropped_by_policy(&self) -> bool {
        matches!(self, PushError::Full | PushError::Write(_))
    }
}

impl BufferWriter {
    /// Queue `batch`. With [`WhenFull::Block`] this waits for room; with
    /// [`WhenFull::DropNewest`] a full buffer drops the batch (counted) and returns at once.
    /// A disk buffer returns once the batch is written (and synced per its fsync policy).
    pub async fn push(&self, batch: Batch) -> Result<(), PushError> {
        match &self.0 {
            WriterKind::Memory(w) => w.push(batch).await,
            WriterKind::Disk(w) => w.push(batch).await,
        }
    }
}

impl BufferReader {
    /// The next batch in order, or `None` once every writer is gone and everything was taken.
    pub async fn pop(&mut self) -> Option<Queued> {
        match &mut self.0 {
            ReaderKind::Memory(r) => r.pop().await,
            ReaderKind::Disk(r) => r.pop().await,
        }
    }

    /// The next batch in order if one is ready now, else `None` (the buffer may be empty, or a
    /// disk buffer may have to read its next records first: [`pop`](Self::pop) does that).
    /// Never waits.
    pub fn try_pop(&mut self) -> Option<Queued> {
        match &mut self.0 {
            ReaderKind::Memory(r) => r.try_pop(),
            ReaderKind::Disk(r) => r.try_pop(),
        }
    }

    /// Refuse further pushes (they fail and count as `shutdown_undelivered`, including those
    /// waiting for room); what is queued can still be popped.
    pub fn close(&mut self) {
        match &mut self.0 {
            ReaderKind::Memory(r) => r.close(),
            ReaderKind::Disk(r) => r.close(),
        }
    }

    /// True when what is not delivered survives the process (a disk buffer).
    pub fn is_durable(&self) -> bool {
        matches!(self.0, ReaderKind::Disk(_))
    }

    /// The output is stopping: persist what must be (a disk buffer syncs its ack pointer).
    pub fn finish(self) {
        if let ReaderKind::Disk(r) = self.0 {
            r.finish();
        }
    }
}

/// Counts a push's events as `shutdown_undelivered` if the push is dropped before its batch was
/// queued or counted: its caller stopped waiting (the input's drain time at shutdown ended while
/// the push waited for room), so the events are not in the buffer and their sender was not
/// acknowledged.
pub(crate) struct AbandonedPush<'a> {
    metrics: &'a Metrics,
    component: &'a Component,
    events: u64,
    armed: bool,
}

impl<'a> AbandonedPush<'a> {
    pub(crate) fn new(metrics: &'a Metrics, component: &'a Component, events: u64) -> Self {
        AbandonedPush {
            metrics,
            component,
            events,
            armed: true,
        }
    }

    /// The batch is queued, or its fate is counted elsewhere: nothing to count on drop.
    pub(crate) fn settled(&mut self) {
        self.armed = false;
    }
}

impl Drop for AbandonedPush<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.metrics
                .events_dropped(self.component, "shutdown_undelivered", self.events);
        }
    }
}

/// Open the buffer `kind` for `component`; a memory buffer draws from `budget`.
pub fn open_buffer(
    kind: &BufferKind,
    budget: &MemoryBudget,
    component: Component,
    metrics: Arc<Metrics>,
) -> Result<(BufferWriter, BufferReader), DiskError> {
    match kind {
        BufferKind::Memory {
            max_bytes,
            when_full,
        } => {
            let (w, r) = memory::open(*max_bytes, *when_full, budget.clone(), component, metrics);
            Ok((
                BufferWriter(WriterKind::Memory(w)),
                BufferReader(ReaderKind::Memory(r)),
            ))
        }
        BufferKind::Disk(options) => {
            let (w, r) = disk::open(options, component, metrics)?;
            Ok((
                BufferWriter(WriterKind::Disk(w)),
                BufferReader(ReaderKind::Disk(r)),
            ))
        }
    }
}

/// A validated buffer setup.
#[derive(Clone, Debug)]
pub enum BufferKind {
    /// In memory, at most `max_bytes` (and never more than the router's budget).
    Memory {
        /// The output's own bound.
        max_bytes: usize,
        /// What a push does when full.
        when_full: WhenFull,
    },
    /// On disk.
    Disk(DiskOptions),
}
