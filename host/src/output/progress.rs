//! [`DeliveryProgress`]: what became of each event of one delivery, owned by the runner and
//! handed to [`Output::deliver`](super::Output::deliver) on every attempt (as Vector's
//! `sinks/util/retries.rs` owns progress through retries, not each sink).
//!
//! An output marks the events each successful request carried ([`delivered`]), the events the
//! destination refused for good, each under its own reason ([`reject`]), and the events whose
//! destination (one log group, one stream, …) is failing on its own ([`destination_failed`]).
//! On the next attempt it sends only the events still [pending](DeliveryProgress::is_pending).
//! Because the runner owns the value, what a delivery achieved survives a retry and also the
//! shutdown deadline, when the runner drops the `deliver` future half-way: then it keeps what was
//! delivered (a disk buffer is told, so the next start sends only the rest) and counts only the
//! rest.
//!
//! [`delivered`]: DeliveryProgress::delivered
//! [`reject`]: DeliveryProgress::reject
//! [`destination_failed`]: DeliveryProgress::destination_failed

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// What became of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EventState {
    /// Not delivered yet.
    Pending,
    /// Not delivered: its destination failed in this attempt (index into `failing`).
    DestinationFailed(u32),
    /// The destination accepted it.
    Delivered,
    /// Refused for good (index into `rejections`).
    Rejected(u32),
}

/// Events refused for one reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// A short snake_case reason for the metric label.
    pub reason: String,
    /// What happened and the fix, for the log and the dead-letter destination.
    pub detail: String,
    /// Indexes of the refused events, in the order they were rejected.
    pub events: Vec<usize>,
}

/// The progress of one delivery (see the module documentation).
#[derive(Debug)]
pub struct DeliveryProgress {
    states: Vec<EventState>,
    rejections: Vec<Rejection>,
    /// Destinations that failed in the current attempt, with the last error.
    failing: Vec<(String, String)>,
    /// Destinations held by older deliveries that are set aside: their events wait.
    blocked: Arc<HashSet<String>>,
    attempts: u32,
    /// Whether the destination throttled a request of the current attempt.
    throttled: bool,
    /// What the output has yet to send of this delivery, kept for its next attempt.
    requests: KeptRequests,
}

/// An output's requests kept between attempts of one delivery (of the output's own type).
#[derive(Default)]
struct KeptRequests(Option<Box<dyn Any + Send + Sync>>);

impl std::fmt::Debug for KeptRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "kept" } else { "none" })
    }
}

impl DeliveryProgress {
    /// Nothing delivered yet of a delivery of `events` events.
    pub fn new(events: usize) -> Self {
        DeliveryProgress {
            states: vec![EventState::Pending; events],
            rejections: Vec::new(),
            failing: Vec::new(),
            blocked: Arc::default(),
            attempts: 0,
            throttled: false,
            requests: KeptRequests::default(),
        }
    }

    /// Keep `requests`, what the output has yet to send of this delivery (encoded requests, say),
    /// for its next attempt. The runner owns them with the rest of the progress: they live as
    /// long as the delivery, set aside or not, and go with it when it is done or given up.
    pub fn keep_requests<T: Any + Send + Sync>(&mut self, requests: T) {
        self.requests = KeptRequests(Some(Box::new(requests)));
    }

    /// The requests the last attempt kept, if it kept any of type `T`.
    pub fn take_requests<T: Any + Send + Sync>(&mut self) -> Option<T> {
        let kept = self.requests.0.take()?;
        kept.downcast().ok().map(|b| *b)
    }

    /// Whether this is the first attempt (so per-event warnings such as truncation are counted
    /// once, not again on every retry).
    pub fn is_first_attempt(&self) -> bool {
        self.attempts <= 1
    }

    /// Whether event `index` still has to be sent.
    pub fn is_pending(&self, index: usize) -> bool {
        matches!(
            self.states.get(index),
            Some(EventState::Pending | EventState::DestinationFailed(_))
        )
    }

    /// Indexes of the events still to send, in order.
    pub fn pending(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.states.len()).filter(|&i| self.is_pending(i))
    }

    /// How many events are still to send.
    pub fn pending_count(&self) -> usize {
        self.pending().count()
    }

    /// Whether every event was delivered or rejected.
    pub fn is_settled(&self) -> bool {
        self.pending().next().is_none()
    }

    /// The destination accepted the events at `indexes`.
    pub fn delivered(&mut self, indexes: impl IntoIterator<Item = usize>) {
        for i in indexes {
            if self.is_pending(i) {
                self.states[i] = EventState::Delivered;
            }
        }
    }

    /// The destination (or the output, before sending) refused the events at `indexes` for
    /// good: they are counted under `reason` and dead-lettered with `detail` (computed once per
    /// reason). Events already delivered or rejected are left as they are.
    pub fn reject(
        &mut self,
        indexes: impl IntoIterator<Item = usize>,
        reason: &str,
        detail: impl FnOnce() -> String,
    ) {
        let mut slot = self.rejections.iter().position(|r| r.reason == reason);
        let mut detail = Some(detail);
        for i in indexes {
            if !self.is_pending(i) {
                continue;
            }
            let at = *slot.get_or_insert_with(|| {
                self.rejections.push(Rejection {
                    reason: reason.to_string(),
                    detail: detail.take().map(|d| d()).unwrap_or_default(),
                    events: Vec::new(),
                });
                self.rejections.len() - 1
            });
            self.rejections[at].events.push(i);
            self.states[i] = EventState::Rejected(at as u32);
        }
    }

    /// Whether events for `destination` must wait: it is held by an older delivery that is set
    /// aside, or it failed earlier in this attempt. Events of one destination are delivered in
    /// order, so the output reports these with [`destination_failed`](Self::destination_failed)
    /// instead of sending them.
    pub fn is_blocked(&self, destination: &str) -> bool {
        self.blocked.contains(destination) || self.failing.iter().any(|(d, _)| d == destination)
    }

    /// The events at `indexes` were not delivered because their `destination` (a key the
    /// output chooses, e.g. group and stream) is failing on its own — access denied, not found,
    /// throttled for that destination only — or [blocked](Self::is_blocked). When every pending
    /// event of a delivery is in that state, the runner sets the delivery aside with its own
    /// retry schedule and goes on with the next ones. Failures that concern the whole output
    /// (network, server errors, credentials) are returned as retryable errors instead.
    pub fn destination_failed(
        &mut self,
        indexes: impl IntoIterator<Item = usize>,
        destination: &str,
        error: impl FnOnce() -> String,
    ) {
        let at = match self.failing.iter().position(|(d, _)| d == destination) {
            Some(at) => at,
            None => {
                self.failing.push((destination.to_string(), error()));
                self.failing.len() - 1
            }
        };
        for i in indexes {
            if self.is_pending(i) {
                self.states[i] = EventState::DestinationFailed(at as u32);
            }
        }
    }

    /// The destination throttled a request of this attempt (a throttling error, HTTP 429, or
    /// records refused for exceeding its throughput): the runner stretches the output's flush
    /// window so that it sends less often ([`crate::output::window`]).
    pub fn throttled(&mut self) {
        self.throttled = true;
    }

    /// Whether the destination throttled a request of the last attempt.
    pub fn was_throttled(&self) -> bool {
        self.throttled
    }

    /// The destinations that failed in the last attempt, with their errors.
    pub fn failing_destinations(&self) -> &[(String, String)] {
        &self.failing
    }

    /// Whether the last attempt left only events of failing destinations pending (and some).
    pub(crate) fn only_destinations_failed(&self) -> bool {
        let mut any = false;
        for s in &self.states {
            match s {
                EventState::Pending => return false,
                EventState::DestinationFailed(_) => any = true,
                _ => {}
            }
        }
        any
    }

    /// Start an attempt with `blocked` destinations: the last attempt's destination failures
    /// are forgotten (those events are pending again).
    pub(crate) fn begin_attempt(&mut self, blocked: Arc<HashSet<String>>) {
        self.attempts += 1;
        self.blocked = blocked;
        self.throttled = false;
        if self.failing.is_empty() {
            return;
        }
        for s in &mut self.states {
            if let EventState::DestinationFailed(_) = s {
                *s = EventState::Pending;
            }
        }
        self.failing.clear();
    }

    /// The destinations the pending events of the last attempt wait for.
    pub(crate) fn held_destinations(&self) -> impl Iterator<Item = &str> {
        let mut used = vec![false; self.failing.len()];
        for s in &self.states {
            if let EventState::DestinationFailed(at) = s {
                used[*at as usize] = true;
            }
        }
        self.failing
            .iter()
            .zip(used)
            .filter(|(_, used)| *used)
            .map(|((d, _), _)| d.as_str())
    }

    /// Mark every pending event delivered (the output said the whole delivery succeeded).
    pub(crate) fn deliver_rest(&mut self) {
        for s in &mut self.states {
            if matches!(s, EventState::Pending | EventState::DestinationFailed(_)) {
                *s = EventState::Delivered;
            }
        }
    }

    /// How many events were delivered.
    pub fn delivered_count(&self) -> usize {
        self.states
            .iter()
            .filter(|s| **s == EventState::Delivered)
            .count()
    }

    /// The events refused so far, by reason.
    pub fn rejections(&self) -> &[Rejection] {
        &self.rejections
    }

    /// Indexes of the events delivered, in order.
    pub(crate) fn delivered_indexes(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.states.len()).filter(|&i| self.states[i] == EventState::Delivered)
    }

    /// The rejections' counts by reason (for logs).
    pub(crate) fn rejection_summary(&self) -> String {
        let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &self.rejections {
            *by_reason.entry(&r.reason).or_default() += r.events.len();
        }
        by_reason
            .iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_keeps_its_own_reason() {
        let mut p = DeliveryProgress::new(6);
        p.reject([0], "too_old", || "old".into());
        p.reject([1, 2], "too_new", || "new".into());
        p.reject([3], "log_key_missing", || "no key".into());
        p.reject([4], "empty_message", || "empty".into());
        p.reject([1, 4], "too_old", || unreachable!("already rejected"));
        p.delivered([5, 0]);
        let counts: Vec<_> = p
            .rejections()
            .iter()
            .map(|r| (r.reason.as_str(), r.events.clone()))
            .collect();
        assert_eq!(
            counts,
            vec![
                ("too_old", vec![0]),
                ("too_new", vec![1, 2]),
                ("log_key_missing", vec![3]),
                ("empty_message", vec![4]),
            ]
        );
        assert_eq!(p.delivered_count(), 1);
        assert!(p.is_settled());
        assert_eq!(
            p.rejection_summary(),
            "1 empty_message, 1 log_key_missing, 2 too_new, 1 too_old"
        );
    }

    #[test]
    fn destination_failures_last_one_attempt() {
        let mut p = DeliveryProgress::new(4);
        p.begin_attempt(Arc::default());
        p.delivered([0]);
        p.destination_failed([1, 2], "denied", || "AccessDenied".into());
        assert!(!p.only_destinations_failed(), "event 3 is plainly pending");
        p.destination_failed([3], "other", || "NotFound".into());
        assert!(p.only_destinations_failed());
        assert_eq!(
            p.held_destinations().collect::<Vec<_>>(),
            ["denied", "other"]
        );
        assert_eq!(p.pending().collect::<Vec<_>>(), [1, 2, 3]);
        p.begin_attempt(Arc::new(HashSet::from(["denied".to_string()])));
        assert!(p.is_blocked("denied") && !p.is_blocked("other"));
        assert!(p.failing_destinations().is_empty());
        assert!(!p.only_destinations_failed());
        p.destination_failed([], "other", || "throttled".into());
        assert!(p.is_blocked("other"), "failed earlier in this attempt");
        p.delivered([3]);
        p.destination_failed([1, 2], "denied", || "blocked".into());
        assert_eq!(p.held_destinations().collect::<Vec<_>>(), ["denied"]);
        assert_eq!(p.delivered_indexes().collect::<Vec<_>>(), [0, 3]);
    }
}
