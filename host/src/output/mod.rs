//! Outputs: each one drains its own buffer on its own task, so a slow or failing destination
//! never stalls the inputs (beyond its buffer's bound) or the other outputs.

pub mod null;
pub mod retry;
pub mod stdout;

use crate::buffer::BufferReader;
use crate::event::Batch;
use crate::ops::metrics::{Component, Metrics};
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
    /// Trying again cannot help; the events are counted as dropped under `reason`.
    #[error("{reason}")]
    Permanent {
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
    fn deliver(&mut self, batch: &Batch) -> impl Future<Output = Result<(), DeliveryError>> + Send;

    /// Flush anything the output holds back (e.g. a partly filled file); called at shutdown.
    fn flush(&mut self) -> impl Future<Output = Result<(), DeliveryError>> + Send {
        async { Ok(()) }
    }
}

/// Drain `buffer` into `output` until the buffer is closed and empty.
///
/// Retryable failures are retried with exponential backoff and full jitter until `deadline`
/// (the shutdown deadline, once shutdown begins) has passed; then the batch is counted as
/// dropped under `shutdown_undelivered`.
pub async fn run_output<O: Output>(
    mut output: O,
    mut buffer: BufferReader,
    component: Component,
    metrics: Arc<Metrics>,
    mut deadline: watch::Receiver<Option<Instant>>,
) {
    while let Some(queued) = buffer.pop().await {
        let batch = &queued.batch;
        let mut backoff = Backoff::default();
        loop {
            match output.deliver(batch).await {
                Ok(()) => {
                    metrics.sent(&component, batch.len() as u64);
                    break;
                }
                Err(DeliveryError::Permanent { reason, detail }) => {
                    tracing::warn!(component = %component.id, %detail, "delivery failed permanently");
                    metrics.events_dropped(&component, &reason, batch.len() as u64);
                    break;
                }
                Err(DeliveryError::Retryable { reason, after }) => {
                    metrics.retries.get_or_create(&component.labels()).inc();
                    let wait = after.unwrap_or_else(|| backoff.next_delay());
                    let past_deadline = deadline.borrow().is_some_and(|d| Instant::now() + wait > d);
                    if past_deadline {
                        tracing::warn!(component = %component.id, %reason, "shutdown deadline reached before delivery");
                        metrics.events_dropped(&component, "shutdown_undelivered", batch.len() as u64);
                        break;
                    }
                    tracing::debug!(component = %component.id, %reason, ?wait, "retrying delivery");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = deadline.changed() => {}
                    }
                }
            }
        }
    }
    if let Err(e) = output.flush().await {
        tracing::warn!(component = %component.id, error = %e, "flush at shutdown failed");
    }
}
