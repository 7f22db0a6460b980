//! Outputs: each one drains its own buffer on its own task, so a slow or failing destination
//! never stalls the inputs (beyond its buffer's bound) or the other outputs.
//!
//! The runner ([`run_output`]) takes batches from the buffer in order and hands them to
//! [`Output::deliver`] one delivery at a time, until it succeeds or is given up. A delivery is
//! the batch taken plus the batches already waiting behind it with the same tag, merged into one
//! [`Batch`] (their events concatenated in order), up to [`MAX_MERGED_EVENTS`] events and
//! [`MAX_MERGED_BODY_BYTES`] bytes of bodies (a first batch larger than that goes alone). Senders
//! like Docker's fluentd log driver send a few events per request, and without merging each of
//! those would cost a whole round trip to the destination. The runner never waits for more
//! batches to merge; a batch of another tag, or one that would pass a cap, starts the next
//! delivery. Outputs split what they send by their API's limits, so a merged batch needs no care
//! from them; the caps keep a delivery no larger than one Forward-mode request can already be
//! (the forward input's default limit is ~6 MB). For the rules below a merged batch is one batch:
//!
//! - a retryable failure is retried with exponential backoff and full jitter ([`Backoff`],
//!   `[service] retry_backoff_base` / `retry_backoff_cap`), or after the delay the destination
//!   asked for, until the batch's deadline — `retry_until` (default 24 h) after the buffer took
//!   it (the earliest of the merged batches) — or `retry_limit` retries if set. Then its events
//!   are counted as `retry_expired` / `retries_exhausted` and go to the dead-letter destination;
//! - a permanent failure is counted under its reason and goes to the dead-letter destination
//!   ([`dead_letter`]); so do the events a destination rejected one by one;
//! - at shutdown the runner delivers until the shutdown deadline (the end of `grace`). Then it
//!   stops: what a memory buffer still holds is counted as `shutdown_undelivered`; what a disk
//!   buffer holds stays on disk for the next start.
//!
//! One delivery at a time keeps the order of events per output; later batches wait while one is
//! in backoff (and the buffer absorbs what arrives meanwhile), other outputs are not affected.
//! Every batch of a delivery is done with ([`Queued::done`]) together, in order, when the
//! delivery succeeds or is given up; so after a crash a disk buffer sends the whole delivery that
//! was in flight again (at most [`MAX_MERGED_EVENTS`] events, some of which may have arrived).

pub mod aws;
pub mod cloudwatch;
pub mod dead_letter;
pub mod firehose;
pub mod forward;
pub mod http;
pub mod null;
pub mod retry;
pub mod s3;
pub mod stdout;

use crate::buffer::{BufferReader, Queued};
use crate::event::{Batch, now_ns};
use crate::ops::metrics::{Component, Metrics};
use dead_letter::DeadLetter;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub use retry::Backoff;

/// Why a delivery attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again (throttling, 5xx, network), optionally not before `after`.
    #[error("{reason} (will retry)")]
    Retryable {
        /// What went wrong.
        reason: String,
        /// A delay the destination asked for.
        after: Option<Duration>,
    },
    /// Trying again cannot help; the events are counted as dropped under `reason` and go to
    /// the dead-letter destination.
    #[error("{reason}")]
    Permanent {
        /// A short snake_case reason for the metric label.
        reason: String,
        /// Details for the log.
        detail: String,
    },
    /// Every event of the batch was delivered except these (indexes into `batch.events`), which
    /// the destination refused for good: they are counted under `reason` and go to the
    /// dead-letter destination; the batch is done.
    #[error("{reason}: {} events rejected", events.len())]
    Rejected {
        /// Indexes of the refused events.
        events: Vec<usize>,
        /// A short snake_case reason for the metric label.
        reason: String,
        /// Details for the log.
        detail: String,
    },
}

/// A destination for batches.
pub trait Output: Send + 'static {
    /// Deliver every event of `batch`, or say why not. Called again with the same batch on a
    /// retryable error; an implementation that delivered part of it must remember what it sent.
    /// The runner may drop the returned future at the shutdown deadline.
    fn deliver(&mut self, batch: &Batch) -> impl Future<Output = Result<(), DeliveryError>> + Send;

    /// Flush anything the output holds back (e.g. a partly filled file); called at shutdown.
    fn flush(&mut self) -> impl Future<Output = Result<(), DeliveryError>> + Send {
        async { Ok(()) }
    }
}

/// How an output retries.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Ceiling of the first backoff delay.
    pub backoff_base: Duration,
    /// Largest backoff delay.
    pub backoff_cap: Duration,
    /// A batch is retried until this long after its buffer accepted it.
    pub retry_until: Duration,
    /// Most retries of one batch, if limited.
    pub retry_limit: Option<u32>,
}

/// Default `retry_until`.
pub const DEFAULT_RETRY_UNTIL: Duration = Duration::from_secs(24 * 3600);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(30),
            retry_until: DEFAULT_RETRY_UNTIL,
            retry_limit: None,
        }
    }
}

/// Most events the runner merges into one delivery (a first batch with more goes alone).
pub const MAX_MERGED_EVENTS: usize = 10_000;

/// Most bytes of event bodies the runner merges into one delivery (a first batch with more goes
/// alone).
pub const MAX_MERGED_BODY_BYTES: usize = 4 << 20;

/// Everything the runner of one output needs besides the output and its buffer.
pub struct OutputRunner {
    /// The output's telemetry identity.
    pub component: Component,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// The shutdown deadline, set when shutdown begins.
    pub deadline: watch::Receiver<Option<Instant>>,
    /// How to retry.
    pub retry: RetryPolicy,
    /// Where events that are given up on go, if anywhere.
    pub dead_letter: Option<DeadLetter>,
}

/// How the delivery of one batch ended.
enum Outcome {
    /// Delivered, or given up on and counted: the buffer may forget it.
    Finished,
    /// The shutdown deadline passed first.
    ShutdownDeadline,
}

/// Batches of one tag taken from the buffer together and delivered as one.
struct Merged {
    /// The events of every batch taken, in order.
    batch: Batch,
    /// The earliest time the buffer accepted one of them.
    accepted_at_ns: u64,
    /// Bytes of the bodies in `batch`.
    body_bytes: usize,
    /// What the buffer handed out, in order; their events were moved into `batch`.
    taken: Vec<Queued>,
}

impl Merged {
    fn new(mut first: Queued) -> Self {
        let batch = Batch::new(
            first.batch.tag.clone(),
            std::mem::take(&mut first.batch.events),
        );
        Merged {
            body_bytes: body_bytes(&batch),
            batch,
            accepted_at_ns: first.accepted_at_ns,
            taken: vec![first],
        }
    }

    /// Take the batches already waiting in `buffer` that fit; the first one that does not
    /// (another tag, or past a cap) is returned, to start the next delivery.
    fn gather(first: Queued, buffer: &mut BufferReader) -> (Self, Option<Queued>) {
        let mut merged = Merged::new(first);
        while merged.batch.len() < MAX_MERGED_EVENTS && merged.body_bytes < MAX_MERGED_BODY_BYTES {
            let Some(mut next) = buffer.try_pop() else {
                break;
            };
            let bytes = body_bytes(&next.batch);
            if next.batch.tag != merged.batch.tag
                || merged.batch.len() + next.batch.len() > MAX_MERGED_EVENTS
                || merged.body_bytes + bytes > MAX_MERGED_BODY_BYTES
            {
                return (merged, Some(next));
            }
            merged.batch.events.append(&mut next.batch.events);
            merged.body_bytes += bytes;
            merged.accepted_at_ns = merged.accepted_at_ns.min(next.accepted_at_ns);
            merged.taken.push(next);
        }
        (merged, None)
    }

    /// Delivered, or given up on and counted: the buffer may forget every batch of it.
    fn done(self) {
        for queued in self.taken {
            queued.done();
        }
    }
}

fn body_bytes(batch: &Batch) -> usize {
    batch.events.iter().map(|e| e.body.len()).sum()
}

/// Resolves once the shutdown deadline has passed (never, if shutdown never begins).
async fn shutdown_deadline(deadline: &mut watch::Receiver<Option<Instant>>) {
    loop {
        let current = *deadline.borrow_and_update();
        if let Some(at) = current {
            tokio::time::sleep_until(at.into()).await;
            return;
        }
        if deadline.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Drain `buffer` into `output` until the buffer is closed and empty, or the shutdown deadline.
pub async fn run_output<O: Output>(
    mut output: O,
    mut buffer: BufferReader,
    mut runner: OutputRunner,
) {
    let mut deadline = runner.deadline.clone();
    let mut cut = false;
    // A batch taken from the buffer that did not fit the last delivery: it starts the next one.
    let mut carried: Option<Queued> = None;
    loop {
        let first = match carried.take() {
            Some(queued) => queued,
            None => {
                let next = tokio::select! {
                    biased;
                    q = buffer.pop() => q,
                    _ = shutdown_deadline(&mut deadline) => { cut = true; break; }
                };
                let Some(queued) = next else { break };
                queued
            }
        };
        let (merged, rest) = Merged::gather(first, &mut buffer);
        carried = rest;
        match runner
            .deliver(&mut output, &merged.batch, merged.accepted_at_ns)
            .await
        {
            Outcome::Finished => merged.done(),
            Outcome::ShutdownDeadline => {
                runner.leave_at_shutdown(merged, buffer.is_durable());
                cut = true;
                break;
            }
        }
    }
    if cut {
        buffer.close();
        let durable = buffer.is_durable();
        if let Some(queued) = carried.take() {
            runner.leave_at_shutdown(Merged::new(queued), durable);
        }
        if !durable {
            while let Some(queued) = buffer.pop().await {
                runner.leave_at_shutdown(Merged::new(queued), false);
            }
        }
    } else {
        let flushed = tokio::select! {
            r = output.flush() => Some(r),
            _ = shutdown_deadline(&mut deadline) => None,
        };
        match flushed {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                tracing::warn!(component = %runner.component.id, error = %e, "flush at shutdown failed")
            }
            None => {
                tracing::warn!(component = %runner.component.id, "flush at shutdown did not finish within grace")
            }
        }
    }
    buffer.finish();
}

impl OutputRunner {
    /// Deliver one batch, accepted by the buffer at `accepted_at_ns`, with retries; give it up
    /// (counted, dead-lettered) when it cannot be.
    async fn deliver<O: Output>(
        &mut self,
        output: &mut O,
        batch: &Batch,
        accepted_at_ns: u64,
    ) -> Outcome {
        let expires_at_ns = accepted_at_ns.saturating_add(self.retry.retry_until.as_nanos() as u64);
        let mut backoff = Backoff::new(self.retry.backoff_base, self.retry.backoff_cap);
        let mut retries = 0u32;
        let mut deadline = self.deadline.clone();
        loop {
            let attempt = tokio::select! {
                r = output.deliver(batch) => r,
                _ = shutdown_deadline(&mut deadline) => return Outcome::ShutdownDeadline,
            };
            let (reason, after) = match attempt {
                Ok(()) => {
                    self.metrics.sent(&self.component, batch.len() as u64);
                    return Outcome::Finished;
                }
                Err(DeliveryError::Permanent { reason, detail }) => {
                    tracing::warn!(component = %self.component.id, %reason, %detail, events = batch.len(), "delivery failed permanently");
                    self.give_up(batch, None, &reason, &detail).await;
                    return Outcome::Finished;
                }
                Err(DeliveryError::Rejected {
                    events,
                    reason,
                    detail,
                }) => {
                    let mut events = events;
                    events.sort_unstable();
                    events.dedup();
                    events.retain(|&i| i < batch.len());
                    tracing::warn!(component = %self.component.id, %reason, %detail, rejected = events.len(), "destination rejected events");
                    self.metrics
                        .sent(&self.component, (batch.len() - events.len()) as u64);
                    self.give_up(batch, Some(&events), &reason, &detail).await;
                    return Outcome::Finished;
                }
                Err(DeliveryError::Retryable { reason, after }) => (reason, after),
            };
            retries += 1;
            self.metrics
                .retries
                .get_or_create(&self.component.labels())
                .inc();
            if self.retry.retry_limit.is_some_and(|limit| retries > limit) {
                let detail = format!(
                    "gave up after {} retries; last error: {reason}",
                    retries - 1
                );
                tracing::warn!(component = %self.component.id, %detail, "retry limit reached");
                self.give_up(batch, None, "retries_exhausted", &detail)
                    .await;
                return Outcome::Finished;
            }
            let now = now_ns();
            if now >= expires_at_ns {
                let detail = format!(
                    "still failing {:?} after it was buffered; last error: {reason}",
                    self.retry.retry_until
                );
                tracing::warn!(component = %self.component.id, %detail, "retry deadline reached");
                self.give_up(batch, None, "retry_expired", &detail).await;
                return Outcome::Finished;
            }
            let wait = after
                .unwrap_or_else(|| backoff.next_delay())
                .min(Duration::from_nanos(expires_at_ns - now));
            tracing::debug!(component = %self.component.id, %reason, ?wait, retries, "retrying delivery");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown_deadline(&mut deadline) => return Outcome::ShutdownDeadline,
            }
        }
    }

    /// Count the events of `batch` (or only those at `indexes`) as dropped under `reason`, and
    /// hand them to the dead-letter destination.
    async fn give_up(
        &mut self,
        batch: &Batch,
        indexes: Option<&[usize]>,
        reason: &str,
        detail: &str,
    ) {
        let lost = indexes.map_or(batch.len(), |i| i.len()) as u64;
        self.metrics.events_dropped(&self.component, reason, lost);
        let Some(dead_letter) = &self.dead_letter else {
            return;
        };
        let selected;
        let batch = match indexes {
            None => batch,
            Some(indexes) => {
                selected = Batch::new(
                    batch.tag.clone(),
                    indexes.iter().map(|&i| batch.events[i].clone()).collect(),
                );
                &selected
            }
        };
        let mut deadline = self.deadline.clone();
        tokio::select! {
            _ = dead_letter.send(&self.component, batch, reason, detail, &self.metrics) => {}
            _ = shutdown_deadline(&mut deadline) => {
                tracing::warn!(component = %self.component.id, events = batch.len(), "dead-letter destination still busy at the shutdown deadline");
                self.metrics.error(&self.component, "dead_letter_failed");
            }
        }
    }

    /// The shutdown deadline passed with `merged` undelivered.
    fn leave_at_shutdown(&self, merged: Merged, durable: bool) {
        if durable {
            // Not done: it stays in the disk buffer and is delivered after the next start.
            drop(merged);
        } else {
            self.metrics.events_dropped(
                &self.component,
                "shutdown_undelivered",
                merged.batch.len() as u64,
            );
            merged.done();
        }
    }
}

#[cfg(test)]
mod tests;
