//! The flush window: how long the first batch the runner takes waits for the ones behind it,
//! so that a destination gets one request per window instead of one per batch.
//!
//! Senders like Docker's fluentd log driver send one event per forward message; sent as they
//! come, each would be its own API call, and a fleet of sidecars would make one call per log
//! line (and be throttled). So the runner ([`super::run_output`]) opens a [`Window`] when it
//! takes a batch and keeps taking batches into it, grouped by tag (each tag's events in order),
//! until one of:
//!
//! - the window's first event has waited the window's length, measured from when the buffer
//!   accepted it (so a disk buffer's backlog after a restart goes out at once);
//! - a group reached the output's [`RequestLimits`] (a request's worth: nothing gains from
//!   waiting), or the window holds [`MAX_MERGED_EVENTS`] events or [`MAX_MERGED_BODY_BYTES`]
//!   bytes of bodies (its memory bound; a memory buffer also keeps counting every batch taken
//!   against its bound and the router's budget until it is delivered);
//! - the buffer is closed, or shutdown begins: every window is sent at once.
//!
//! Each group becomes one delivery. The length is the output's `batch_timeout` (classic
//! `[SERVICE] Flush`), made [`WindowLength`]: each window waits it less up to a tenth at
//! random, so sidecars started together do not send together, and throttling stretches it.

use super::{MAX_MERGED_BODY_BYTES, MAX_MERGED_EVENTS, Merged, body_bytes};
use crate::buffer::{BufferReader, Queued};
use crate::event::now_ns;
use std::time::Duration;
use tokio::time::Instant;

/// A request's worth of events for an output's API: a window group this large goes out at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    /// Most events (records) in one request.
    pub events: usize,
    /// Most bytes of event bodies in one request (msgpack bodies: an estimate of the payload).
    pub body_bytes: usize,
}

impl Default for RequestLimits {
    /// The runner's own bounds, for outputs without a request limit of their own.
    fn default() -> Self {
        RequestLimits {
            events: MAX_MERGED_EVENTS,
            body_bytes: MAX_MERGED_BODY_BYTES,
        }
    }
}

/// The default flush window of outputs whose destination charges (or throttles) per request:
/// the AWS outputs and the plugin outputs. Fluent Bit's `Flush` default.
pub const PER_REQUEST_BATCH_TIMEOUT: Duration = Duration::from_secs(1);

/// Most a window is stretched by throttling, as a multiple of its configured length.
pub const MAX_STRETCH: u32 = 8;

/// The length of an output's flush window: the configured `batch_timeout`, doubled after each
/// attempt the destination throttled (up to [`MAX_STRETCH`] times) and shortened by a quarter
/// after each attempt it did not, down to the configured length: a fleet that hits its quota
/// sends less often until it fits, and comes back slowly. A zero length (send at once) stays
/// zero: the retry backoff alone slows it.
#[derive(Clone, Copy, Debug)]
pub struct WindowLength {
    base: Duration,
    current: Duration,
}

impl WindowLength {
    /// A window of `base`.
    pub fn new(base: Duration) -> Self {
        WindowLength {
            base,
            current: base,
        }
    }

    /// The length now.
    pub fn current(&self) -> Duration {
        self.current
    }

    /// The destination throttled an attempt: wait longer between requests.
    pub fn throttled(&mut self) {
        self.current = (self.current.saturating_mul(2)).min(self.base.saturating_mul(MAX_STRETCH));
    }

    /// An attempt went through unthrottled: come back towards the configured length.
    pub fn relaxed(&mut self) {
        self.current = (self.current - self.current / 4).max(self.base);
    }

    /// How long the next window waits: the length less up to a tenth, at random.
    fn next_wait(&self) -> Duration {
        self.current.mul_f64(1.0 - fastrand::f64() / 10.0)
    }
}

/// Batches taken while one window runs, one group per tag in the order tags first came.
pub(super) struct Window {
    groups: Vec<Merged>,
    events: usize,
    body_bytes: usize,
    /// When the window's first event will have waited the window's length.
    pub(super) closes_at: Instant,
}

impl Window {
    /// A window starting with `first`, taken now, for `length`; with what the buffer holds
    /// ready behind it. Returns the first batch that did not fit, to start the next window.
    pub(super) fn open(
        first: Queued,
        length: &WindowLength,
        buffer: &mut BufferReader,
    ) -> (Self, Option<Queued>) {
        let waited = Duration::from_nanos(now_ns().saturating_sub(first.accepted_at_ns));
        let now = Instant::now();
        let wait = length.next_wait().saturating_sub(waited);
        let mut window = Window {
            groups: Vec::new(),
            events: 0,
            body_bytes: 0,
            // A wait past what Instant can hold is as good as a year: the window then closes
            // when it is full or at shutdown.
            closes_at: now
                .checked_add(wait)
                .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400)),
        };
        window.push(first);
        let rest = window.take_ready(buffer);
        (window, rest)
    }

    /// Take what the buffer holds ready into the window, while it fits; returns the first
    /// batch that did not, to start the next window.
    pub(super) fn take_ready(&mut self, buffer: &mut BufferReader) -> Option<Queued> {
        while !self.is_at_bound() {
            if let Some(rest) = self.push_or_return(buffer.try_pop()?) {
                return Some(rest);
            }
        }
        None
    }

    /// Take `next` into the window if it fits; else return it, to start the next window.
    pub(super) fn push_or_return(&mut self, next: Queued) -> Option<Queued> {
        if self.events + next.batch.len() > MAX_MERGED_EVENTS
            || self.body_bytes + body_bytes(&next.batch) > MAX_MERGED_BODY_BYTES
        {
            return Some(next);
        }
        self.push(next);
        None
    }

    fn push(&mut self, queued: Queued) {
        self.events += queued.batch.len();
        self.body_bytes += body_bytes(&queued.batch);
        match self
            .groups
            .iter_mut()
            .find(|g| g.batch.tag == queued.batch.tag)
        {
            Some(group) => group.push(queued),
            None => self.groups.push(Merged::new(queued)),
        }
    }

    /// Whether the window holds as much as one window may.
    fn is_at_bound(&self) -> bool {
        self.events >= MAX_MERGED_EVENTS || self.body_bytes >= MAX_MERGED_BODY_BYTES
    }

    /// Whether waiting longer gains nothing: a group is a request's worth, or the window is
    /// at its bound.
    pub(super) fn is_full(&self, limits: RequestLimits) -> bool {
        self.is_at_bound()
            || self
                .groups
                .iter()
                .any(|g| g.batch.len() >= limits.events || g.body_bytes >= limits.body_bytes)
    }

    /// The window's groups, one delivery each.
    pub(super) fn into_groups(self) -> Vec<Merged> {
        self.groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_stretches_the_window_and_success_brings_it_back() {
        let mut w = WindowLength::new(Duration::from_secs(1));
        for expected in [2, 4, 8, 8] {
            w.throttled();
            assert_eq!(w.current(), Duration::from_secs(expected));
        }
        for expected_ms in [6_000, 4_500, 3_375] {
            w.relaxed();
            assert_eq!(w.current(), Duration::from_millis(expected_ms));
        }
        for _ in 0..10 {
            w.relaxed();
        }
        assert_eq!(
            w.current(),
            Duration::from_secs(1),
            "never below the configured length"
        );
        let mut zero = WindowLength::new(Duration::ZERO);
        zero.throttled();
        assert_eq!(zero.current(), Duration::ZERO);
    }

    #[test]
    fn each_window_waits_its_length_less_at_most_a_tenth() {
        let w = WindowLength::new(Duration::from_secs(1));
        let waits: Vec<Duration> = (0..200).map(|_| w.next_wait()).collect();
        assert!(
            waits
                .iter()
                .all(|d| *d > Duration::from_millis(900) && *d <= Duration::from_secs(1))
        );
        assert!(
            waits.iter().any(|d| *d != waits[0]),
            "the waits are jittered"
        );
    }
}
