//! Outputs: each one drains its own buffer on its own task, so a slow or failing destination
//! never stalls the inputs (beyond its buffer's bound) or the other outputs.
//!
//! The runner ([`run_output`]) takes batches from the buffer in order into a flush window
//! ([`window`]): the first batch taken waits up to the output's `batch_timeout` (1 s for the AWS
//! and plugin outputs, Fluent Bit's `Flush`) for the batches behind it, so that a destination
//! gets one request per window rather than one per batch — senders like Docker's fluentd log
//! driver send one event per message, and a fleet of sidecars sending each as it came would make
//! one API call per log line. A window closes early when one tag has a request's worth of events
//! ([`Output::request_limits`]), when it holds [`MAX_MERGED_EVENTS`] events or
//! [`MAX_MERGED_BODY_BYTES`] bytes of bodies, when the buffer closes, or when shutdown begins.
//! The window's batches of one tag are merged into one [`Batch`] (their events concatenated in
//! order) and handed to [`Output::deliver`] as one delivery, tag after tag, one delivery at a
//! time, until it succeeds or is given up. Outputs split what they send by their API's limits,
//! so a merged batch needs no care from them. For the rules below a merged batch is one batch:
//!
//! - each attempt gets the delivery's [`DeliveryProgress`], which the runner owns: the output
//!   marks the events each successful request carried and the events refused for good (each
//!   under its own reason), and sends only the pending ones on the next attempt;
//! - a retryable failure is retried with exponential backoff and full jitter ([`Backoff`],
//!   `[service] retry_backoff_base` / `retry_backoff_cap`), or after the delay the destination
//!   asked for, until the batch's deadline — `retry_until` (default 24 h) after the buffer took
//!   it (the earliest of the merged batches) — or `retry_limit` retries if set. Then the events
//!   not delivered (only those) are counted as `retry_expired` / `retries_exhausted` and go to
//!   the dead-letter destination;
//! - a permanent failure is counted under its reason and goes to the dead-letter destination
//!   ([`dead_letter`]); so do the events a destination rejected one by one, each under its own
//!   reason;
//! - when the only events left are those of destinations failing on their own (one log group
//!   denied, one stream not found), the delivery is set aside with its own retry schedule and
//!   the runner goes on with the next deliveries, whose events for those destinations wait
//!   behind it (order per destination is kept). At most [`MAX_SET_ASIDE_DELIVERIES`] deliveries
//!   ([`MAX_SET_ASIDE_BODY_BYTES`]) are set aside; then no new batch is taken and the buffer
//!   fills. The events set aside are the `output_set_aside_events` gauge;
//! - at shutdown the runner delivers until the shutdown deadline (the end of `grace`). Then it
//!   stops, dropping the attempt in flight but keeping its progress: what was delivered is
//!   counted as sent; with a disk buffer, each batch is told which of its events were delivered
//!   ([`Queued::mark_delivered`]) and the rest stays on disk for the next start; with a memory
//!   buffer, the rest is counted as `shutdown_undelivered`.
//!
//! Otherwise one delivery at a time keeps the order of events per tag; later batches wait
//! while one is in backoff (and the buffer absorbs what arrives meanwhile), other outputs are not
//! affected. A destination that throttles stretches the output's window ([`WindowLength`]),
//! so the output sends less often until it fits the quota. A delivery is done with
//! ([`Queued::done`]) when it is delivered or given up; so after a crash a disk buffer sends
//! the deliveries that were in flight again (at most [`MAX_MERGED_EVENTS`] events each, some of
//! which may have arrived). While a window runs, its batches are acknowledged already (they are
//! in the buffer, on disk with a disk buffer) and a memory buffer counts them against its bound
//! and the router's memory budget until they are delivered.

pub mod aws;
pub mod backoff;
pub mod cloudwatch;
pub mod component;
pub mod dead_letter;
pub mod firehose;
pub mod forward;
pub mod keys;
pub mod kinesis;
pub mod null;
pub mod progress;
pub mod requests;
pub mod s3;
pub mod stdout;
pub mod wasm;
pub mod window;

use crate::buffer::{BufferReader, Queued};
use crate::event::{Batch, now_ns};
use crate::ops::metrics::{Component, Metrics};
use dead_letter::DeadLetter;
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub use backoff::Backoff;
pub use component::{OutputComponent, OutputContext, OutputTask, RunningOutput};
pub use keys::OutputKeys;
pub use progress::{DeliveryProgress, Rejection};
use window::Window;
pub use window::{RequestLimits, WindowLength};

/// Why a delivery attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again (throttling, 5xx, network), optionally not before `after`. The
    /// events the output marked in its [`DeliveryProgress`] stay marked; the next attempt
    /// sends only the pending ones.
    #[error("{reason} (will retry)")]
    Retryable {
        /// What went wrong.
        reason: String,
        /// A delay the destination asked for.
        after: Option<Duration>,
    },
    /// Trying again cannot help; the events still pending are counted as dropped under
    /// `reason` and go to the dead-letter destination.
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
    /// Deliver the events of `batch` that `progress` says are pending, marking in `progress`
    /// what each request achieved: the events it delivered, the events refused for good (each
    /// under its own reason), the events of a destination that fails on its own. `Ok(())` means
    /// every event still pending was delivered. Called again with the same batch and progress
    /// after a retryable error. The runner may drop the returned future at the shutdown
    /// deadline and keeps what `progress` says by then.
    fn deliver(
        &mut self,
        batch: &Batch,
        progress: &mut DeliveryProgress,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;

    /// A request's worth of events for the destination's API: the flush window of a tag whose
    /// events reach it closes at once (see [`window`]).
    fn request_limits(&self) -> RequestLimits {
        RequestLimits::default()
    }

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

/// Most deliveries set aside at once for failing destinations; past it (or
/// [`MAX_SET_ASIDE_BODY_BYTES`]) the runner takes no new batch until one of them is done, so
/// the buffer fills and its `when_full` policy applies.
pub const MAX_SET_ASIDE_DELIVERIES: usize = 16;

/// Most bytes of event bodies held by deliveries set aside (on top of what a memory buffer
/// already reserves for them, this bounds what a disk buffer's deliveries hold in memory).
pub const MAX_SET_ASIDE_BODY_BYTES: usize = 4 * MAX_MERGED_BODY_BYTES;

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
    /// How long batches wait for the ones behind them (`batch_timeout`), stretched by
    /// throttling.
    pub window: WindowLength,
}

/// Batches of one tag taken from the buffer together and delivered as one.
struct Merged {
    /// The events of every batch taken, in order.
    batch: Batch,
    /// The earliest time the buffer accepted one of them.
    accepted_at_ns: u64,
    /// Bytes of the bodies in `batch`.
    body_bytes: usize,
    /// What the buffer handed out, in order, with how many events each had; their events were
    /// moved into `batch`.
    taken: Vec<(Queued, usize)>,
}

impl Merged {
    fn new(mut first: Queued) -> Self {
        let batch = Batch::new(
            first.batch.tag.clone(),
            std::mem::take(&mut first.batch.events),
        );
        Merged {
            body_bytes: body_bytes(&batch),
            accepted_at_ns: first.accepted_at_ns,
            taken: vec![(first, batch.len())],
            batch,
        }
    }

    /// Add the events of `next` (of the same tag) after the others.
    fn push(&mut self, mut next: Queued) {
        let n = next.batch.len();
        self.body_bytes += body_bytes(&next.batch);
        self.batch.events.append(&mut next.batch.events);
        self.accepted_at_ns = self.accepted_at_ns.min(next.accepted_at_ns);
        self.taken.push((next, n));
    }

    /// Delivered, or given up on and counted: the buffer may forget every batch of it.
    fn done(self) {
        for (queued, _) in self.taken {
            queued.done();
        }
    }

    /// Cut at shutdown with a disk buffer: tell each batch which of its events `delivered`
    /// (sorted indexes into the merged batch) covers, so the next start sends only the others.
    fn keep_on_disk(self, delivered: &[usize]) {
        let mut start = 0;
        for (mut queued, n) in self.taken {
            let end = start + n;
            let from = delivered.partition_point(|&i| i < start);
            let to = delivered.partition_point(|&i| i < end);
            let local: Vec<u32> = delivered[from..to]
                .iter()
                .map(|&i| (i - start) as u32)
                .collect();
            if local.len() == n {
                queued.done();
            } else {
                if !local.is_empty() {
                    queued.mark_delivered(&local);
                }
                drop(queued);
            }
            start = end;
        }
    }
}

fn body_bytes(batch: &Batch) -> usize {
    batch.events.iter().map(|e| e.body.len()).sum()
}

/// One delivery from its first attempt until it is done.
struct Delivery {
    merged: Merged,
    progress: DeliveryProgress,
    backoff: Backoff,
    retries: u32,
    expires_at_ns: u64,
    /// When to try again.
    /// When to try again (tokio's clock, like every timer of the runner).
    next_at: tokio::time::Instant,
    /// Only events of failing destinations are left: the delivery is set aside and the runner
    /// goes on with the next ones.
    set_aside: bool,
    /// Why the events still pending are given up on, when they are.
    given_up: Option<(String, String)>,
}

/// What an attempt left the delivery in.
enum Step {
    /// Delivered, rejected or given up on: count it and let the buffer forget it.
    Finished,
    /// Try again at `next_at`.
    Again,
    /// The shutdown deadline passed first.
    ShutdownDeadline,
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

/// The destinations held by the deliveries in `older`: younger deliveries must not send to
/// them before these succeed.
fn held_by<'a>(older: impl Iterator<Item = &'a Delivery>) -> Arc<HashSet<String>> {
    Arc::new(
        older
            .filter(|d| d.set_aside)
            .flat_map(|d| d.progress.held_destinations().map(str::to_string))
            .collect(),
    )
}

/// Resolves once shutdown has begun (never, if it never begins).
async fn shutdown_begins(deadline: &mut watch::Receiver<Option<Instant>>) {
    loop {
        if deadline.borrow_and_update().is_some() {
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
    let limits = output.request_limits();
    let mut deadline = runner.deadline.clone();
    let mut begun = runner.deadline.clone();
    let mut cut = false;
    let mut closed = false;
    // Deliveries waiting for their next attempt, oldest first.
    let mut waiting: VecDeque<Delivery> = VecDeque::new();
    // The batches of the flush window that runs, if one does.
    let mut window: Option<Window> = None;
    // The groups of the last window closed, not attempted yet, in order.
    let mut fresh: VecDeque<Merged> = VecDeque::new();
    // A batch taken from the buffer that did not fit the last window: it starts the next one.
    let mut carried: Option<Queued> = None;
    loop {
        let now = tokio::time::Instant::now();
        // Deliveries younger than one that is not set aside (its whole output failed) wait
        // for it: it may hold events of their destinations.
        let eligible = waiting
            .iter()
            .position(|d| !d.set_aside)
            .map_or(waiting.len(), |p| p + 1);
        if let Some(pos) = waiting.iter().take(eligible).position(|d| d.next_at <= now) {
            let blocked = held_by(waiting.iter().take(pos));
            let mut delivery = waiting.remove(pos).expect("position is in range");
            match runner.attempt(&mut output, &mut delivery, blocked).await {
                Step::Finished => runner.finish(delivery).await,
                Step::Again => waiting.insert(pos, delivery),
                Step::ShutdownDeadline => {
                    waiting.insert(pos, delivery);
                    cut = true;
                    break;
                }
            }
            runner.report_set_aside(&waiting);
            continue;
        }
        let set_aside_bytes: usize = waiting.iter().map(|d| d.merged.body_bytes).sum();
        let may_start = waiting.iter().all(|d| d.set_aside)
            && waiting.len() < MAX_SET_ASIDE_DELIVERIES
            && set_aside_bytes < MAX_SET_ASIDE_BODY_BYTES;
        if may_start && let Some(merged) = fresh.pop_front() {
            let mut delivery = runner.start(merged);
            let blocked = held_by(waiting.iter());
            match runner.attempt(&mut output, &mut delivery, blocked).await {
                Step::Finished => runner.finish(delivery).await,
                Step::Again => waiting.push_back(delivery),
                Step::ShutdownDeadline => {
                    waiting.push_back(delivery);
                    cut = true;
                    break;
                }
            }
            runner.report_set_aside(&waiting);
            continue;
        }
        let stopping = closed || begun.borrow().is_some();
        if may_start
            && window.as_ref().is_some_and(|w| {
                stopping || carried.is_some() || w.is_full(limits) || w.closes_at <= now
            })
        {
            fresh.extend(window.take().expect("checked").into_groups());
            continue;
        }
        if may_start
            && window.is_none()
            && let Some(first) = carried.take()
        {
            let (opened, rest) = Window::open(first, &runner.window, &mut buffer);
            window = Some(opened);
            carried = rest;
            continue;
        }
        let may_take = may_start && !closed;
        let closes_at = window.as_ref().filter(|_| may_start).map(|w| w.closes_at);
        let wake = waiting.iter().take(eligible).map(|d| d.next_at).min();
        if !may_take && wake.is_none() && closes_at.is_none() {
            break;
        }
        let next = tokio::select! {
            biased;
            _ = shutdown_deadline(&mut deadline) => { cut = true; break; }
            _ = shutdown_begins(&mut begun), if window.is_some() && !stopping => continue,
            q = buffer.pop(), if may_take => q,
            _ = tokio::time::sleep_until(closes_at.unwrap_or(now)), if closes_at.is_some() => continue,
            _ = tokio::time::sleep_until(wake.unwrap_or(now)), if wake.is_some() => continue,
        };
        let Some(next) = next else {
            closed = true;
            continue;
        };
        match &mut window {
            Some(w) => {
                carried = w.push_or_return(next).or_else(|| w.take_ready(&mut buffer));
            }
            None => {
                let (opened, rest) = Window::open(next, &runner.window, &mut buffer);
                window = Some(opened);
                carried = rest;
            }
        }
    }
    if cut {
        buffer.close();
        let durable = buffer.is_durable();
        for delivery in waiting.drain(..) {
            runner.leave_at_shutdown(delivery, durable);
        }
        let unsent = window.take().map(Window::into_groups).unwrap_or_default();
        for merged in fresh.drain(..).chain(unsent) {
            runner.leave_at_shutdown(runner.start(merged), durable);
        }
        if let Some(queued) = carried.take() {
            runner.leave_at_shutdown(runner.start(Merged::new(queued)), durable);
        }
        if !durable {
            while let Some(queued) = buffer.pop().await {
                runner.leave_at_shutdown(runner.start(Merged::new(queued)), false);
            }
        }
        runner.report_set_aside(&waiting);
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
    /// A delivery of `merged`, not attempted yet.
    fn start(&self, merged: Merged) -> Delivery {
        Delivery {
            expires_at_ns: merged
                .accepted_at_ns
                .saturating_add(self.retry.retry_until.as_nanos() as u64),
            progress: DeliveryProgress::new(merged.batch.len()),
            merged,
            backoff: Backoff::new(self.retry.backoff_base, self.retry.backoff_cap),
            retries: 0,
            next_at: tokio::time::Instant::now(),
            set_aside: false,
            given_up: None,
        }
    }

    /// One attempt of `delivery`, with the destinations in `blocked` held by older deliveries.
    async fn attempt<O: Output>(
        &mut self,
        output: &mut O,
        d: &mut Delivery,
        blocked: Arc<HashSet<String>>,
    ) -> Step {
        d.progress.begin_attempt(blocked);
        let mut deadline = self.deadline.clone();
        let attempt = tokio::select! {
            r = output.deliver(&d.merged.batch, &mut d.progress) => r,
            _ = shutdown_deadline(&mut deadline) => return Step::ShutdownDeadline,
        };
        if d.progress.was_throttled() {
            self.window.throttled();
            tracing::debug!(component = %self.component.id, window = ?self.window.current(), "destination throttled: flush window stretched");
        } else if attempt.is_ok() {
            self.window.relaxed();
        }
        let (reason, after) = match attempt {
            Ok(()) => {
                d.progress.deliver_rest();
                return Step::Finished;
            }
            Err(DeliveryError::Permanent { reason, detail }) => {
                tracing::warn!(component = %self.component.id, %reason, %detail, events = d.progress.pending_count(), "delivery failed permanently");
                self.delivery_failed("permanent");
                d.given_up = Some((reason, detail));
                return Step::Finished;
            }
            Err(DeliveryError::Retryable { reason, after }) => (reason, after),
        };
        if d.progress.is_settled() {
            return Step::Finished;
        }
        d.retries += 1;
        self.metrics
            .retries
            .get_or_create(&self.component.labels())
            .inc();
        if self
            .retry
            .retry_limit
            .is_some_and(|limit| d.retries > limit)
        {
            let detail = format!(
                "gave up after {} retries; last error: {reason}",
                d.retries - 1
            );
            tracing::warn!(component = %self.component.id, %detail, undelivered = d.progress.pending_count(), delivered = d.progress.delivered_count(), "retry limit reached");
            self.delivery_failed("retries_exhausted");
            d.given_up = Some(("retries_exhausted".into(), detail));
            return Step::Finished;
        }
        let now = now_ns();
        if now >= d.expires_at_ns {
            let detail = format!(
                "still failing {:?} after it was buffered; last error: {reason}",
                self.retry.retry_until
            );
            tracing::warn!(component = %self.component.id, %detail, undelivered = d.progress.pending_count(), delivered = d.progress.delivered_count(), "retry deadline reached");
            self.delivery_failed("retry_expired");
            d.given_up = Some(("retry_expired".into(), detail));
            return Step::Finished;
        }
        self.metrics
            .retried_events
            .get_or_create(&self.component.labels())
            .inc_by(d.progress.pending_count() as u64);
        let set_aside = d.progress.only_destinations_failed();
        if set_aside && !d.set_aside {
            let failing = d
                .progress
                .failing_destinations()
                .iter()
                .map(|(dest, error)| format!("{dest}: {error}"))
                .collect::<Vec<_>>()
                .join("; ");
            tracing::warn!(component = %self.component.id, events = d.progress.pending_count(), %failing, "destination failing: its events are set aside and retried on their own; other destinations go on");
        }
        d.set_aside = set_aside;
        let wait = after
            .unwrap_or_else(|| d.backoff.next_delay())
            .min(Duration::from_nanos(d.expires_at_ns - now));
        tracing::debug!(component = %self.component.id, %reason, ?wait, retries = d.retries, set_aside, "retrying delivery");
        d.next_at = tokio::time::Instant::now() + wait;
        Step::Again
    }

    /// Count what became of a finished delivery — delivered, rejected (each under its own
    /// reason), given up (only what was not delivered) — dead-letter what was not delivered and
    /// let the buffer forget it.
    async fn finish(&mut self, d: Delivery) {
        let Delivery {
            merged,
            progress,
            given_up,
            ..
        } = d;
        self.metrics
            .sent(&self.component, progress.delivered_count() as u64);
        if !progress.rejections().is_empty() {
            tracing::warn!(component = %self.component.id, rejected = %progress.rejection_summary(), "destination rejected events");
        }
        for rejection in progress.rejections() {
            let mut events = rejection.events.clone();
            events.sort_unstable();
            self.give_up(&merged.batch, &events, &rejection.reason, &rejection.detail)
                .await;
        }
        if let Some((reason, detail)) = given_up {
            let pending: Vec<usize> = progress.pending().collect();
            self.give_up(&merged.batch, &pending, &reason, &detail)
                .await;
        }
        merged.done();
    }

    /// Count one delivery given up under `reason` (`permanent`, `retries_exhausted`,
    /// `retry_expired`); its events are counted by [`give_up`](Self::give_up).
    fn delivery_failed(&self, reason: &str) {
        self.metrics
            .deliveries_failed
            .get_or_create(&self.component.with_reason(reason))
            .inc();
    }

    /// Count the events of `batch` at `indexes` as dropped under `reason`, and hand them to the
    /// dead-letter destination.
    async fn give_up(&mut self, batch: &Batch, indexes: &[usize], reason: &str, detail: &str) {
        if indexes.is_empty() {
            return;
        }
        self.metrics
            .events_dropped(&self.component, reason, indexes.len() as u64);
        let Some(dead_letter) = &self.dead_letter else {
            return;
        };
        let selected = if indexes.len() == batch.len() {
            batch.clone()
        } else {
            Batch::new(
                batch.tag.clone(),
                indexes.iter().map(|&i| batch.events[i].clone()).collect(),
            )
        };
        let mut deadline = self.deadline.clone();
        tokio::select! {
            _ = dead_letter.send(&self.component, &selected, reason, detail, &self.metrics) => {}
            _ = shutdown_deadline(&mut deadline) => {
                tracing::warn!(component = %self.component.id, events = selected.len(), "dead-letter destination still busy at the shutdown deadline");
                self.metrics.error(&self.component, "dead_letter_failed");
            }
        }
    }

    /// The shutdown deadline passed with `d` not finished. What it delivered is counted and
    /// kept; with a disk buffer the rest stays on disk (rejected events included: they are
    /// rejected, counted and dead-lettered again after the next start), else the rest is
    /// counted — rejected events under their reasons, the others as `shutdown_undelivered`.
    fn leave_at_shutdown(&self, d: Delivery, durable: bool) {
        let delivered = d.progress.delivered_count();
        self.metrics.sent(&self.component, delivered as u64);
        if durable {
            if delivered > 0 {
                tracing::info!(component = %self.component.id, delivered, left = d.merged.batch.len() - delivered, "delivery cut at the shutdown deadline: what it delivered is not sent again");
            }
            let delivered: Vec<usize> = d.progress.delivered_indexes().collect();
            d.merged.keep_on_disk(&delivered);
            return;
        }
        for rejection in d.progress.rejections() {
            self.metrics.events_dropped(
                &self.component,
                &rejection.reason,
                rejection.events.len() as u64,
            );
        }
        self.metrics.events_dropped(
            &self.component,
            "shutdown_undelivered",
            d.progress.pending_count() as u64,
        );
        d.merged.done();
    }

    /// Publish how many events wait in deliveries set aside for failing destinations.
    fn report_set_aside(&self, waiting: &VecDeque<Delivery>) {
        let events: usize = waiting
            .iter()
            .filter(|d| d.set_aside)
            .map(|d| d.progress.pending_count())
            .sum();
        self.metrics
            .set_aside_events
            .get_or_create(&self.component.labels())
            .set(events as i64);
    }
}

#[cfg(test)]
mod tests;
