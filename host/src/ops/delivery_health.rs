//! Delivery health: which outputs are stuck.
//!
//! Liveness (`/api/v1/health`) says the process answers; it must not turn red because a
//! destination is down, or every task of a fleet is replaced when CloudWatch has a bad minute
//! (firelens-aws.md §4 item 12). Delivery health is the separate question: an output is
//! **stuck** when events have been waiting in its buffer for longer than the threshold *and*
//! it has not delivered anything for that long. An output that is idle, or busy but making
//! progress, is healthy.
//!
//! The output runner reports every success through [`Metrics::sent`](super::metrics::Metrics::sent);
//! a sampler ([`DeliveryTracker::sample`], once a second) notes when each buffer became
//! non-empty, so a single event arriving after an hour of silence is not mistaken for an hour
//! without delivery.

use super::metrics::{Component, Metrics};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Stand-in for "never" in the millisecond fields.
const NEVER: u64 = u64::MAX;

/// Delivery progress of every output, in milliseconds since the tracker was created.
#[derive(Debug)]
pub struct DeliveryTracker {
    epoch: Instant,
    outputs: Mutex<HashMap<String, Arc<OutputProgress>>>,
}

#[derive(Debug)]
struct OutputProgress {
    component: Component,
    last_success_ms: AtomicU64,
    waiting_since_ms: AtomicU64,
}

/// The delivery state of one output.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OutputHealth {
    /// The output's id.
    pub component_id: String,
    /// Events waiting in (or in flight from) its buffer.
    pub buffered_events: i64,
    /// Bytes waiting in (or in flight from) its buffer.
    pub buffered_bytes: i64,
    /// Seconds since its last successful delivery; `None` if it never delivered.
    pub seconds_since_last_delivery: Option<f64>,
    /// Seconds its buffer has been non-empty without a break; `None` when empty.
    pub seconds_waiting: Option<f64>,
    /// Waiting and not delivering for at least the threshold.
    pub stuck: bool,
}

/// What `/api/v1/health/delivery` answers.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DeliveryReport {
    /// `"ok"` or `"stuck"`.
    pub status: &'static str,
    /// The threshold in seconds.
    pub stuck_after_seconds: f64,
    /// Every output, in id order.
    pub outputs: Vec<OutputHealth>,
}

impl DeliveryReport {
    /// True when no output is stuck.
    pub fn is_healthy(&self) -> bool {
        self.outputs.iter().all(|o| !o.stuck)
    }
}

impl Default for DeliveryTracker {
    fn default() -> Self {
        DeliveryTracker {
            epoch: Instant::now(),
            outputs: Mutex::new(HashMap::new()),
        }
    }
}

impl DeliveryTracker {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Start tracking `output` (idempotent).
    pub fn track(&self, output: &Component) {
        self.outputs
            .lock()
            .unwrap()
            .entry(output.id.clone())
            .or_insert_with(|| {
                Arc::new(OutputProgress {
                    component: output.clone(),
                    last_success_ms: AtomicU64::new(NEVER),
                    waiting_since_ms: AtomicU64::new(NEVER),
                })
            });
    }

    /// Note a successful delivery by `output` (ignored for outputs not tracked).
    pub fn record_success(&self, output: &Component) {
        let progress = self.outputs.lock().unwrap().get(&output.id).cloned();
        if let Some(p) = progress {
            p.last_success_ms.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    fn progress(&self) -> Vec<Arc<OutputProgress>> {
        let mut all: Vec<_> = self.outputs.lock().unwrap().values().cloned().collect();
        all.sort_by(|a, b| a.component.id.cmp(&b.component.id));
        all
    }

    /// Look at every output's buffer and note when it became non-empty. Called once a second
    /// by the HTTP server, and before every report.
    pub fn sample(&self, metrics: &Metrics) {
        let now = self.now_ms();
        for p in self.progress() {
            let waiting = metrics
                .buffer_events
                .get_or_create(&p.component.labels())
                .get()
                > 0;
            if !waiting {
                p.waiting_since_ms.store(NEVER, Ordering::Relaxed);
            } else if p.waiting_since_ms.load(Ordering::Relaxed) == NEVER {
                p.waiting_since_ms.store(now, Ordering::Relaxed);
            }
        }
    }

    /// The state of every output, judged against `stuck_after`.
    pub fn report(&self, metrics: &Metrics, stuck_after: Duration) -> DeliveryReport {
        self.sample(metrics);
        let now = self.now_ms();
        let secs_since = |ms: u64| (ms != NEVER).then(|| now.saturating_sub(ms) as f64 / 1000.0);
        let threshold_ms = stuck_after.as_millis() as u64;
        let outputs: Vec<OutputHealth> = self
            .progress()
            .iter()
            .map(|p| {
                let labels = p.component.labels();
                let last = p.last_success_ms.load(Ordering::Relaxed);
                let since = p.waiting_since_ms.load(Ordering::Relaxed);
                // Progress counts from the later of: the last success, the buffer filling up.
                let reference = match (last, since) {
                    (_, NEVER) => None,
                    (NEVER, s) => Some(s),
                    (l, s) => Some(l.max(s)),
                };
                OutputHealth {
                    component_id: p.component.id.clone(),
                    buffered_events: metrics.buffer_events.get_or_create(&labels).get(),
                    buffered_bytes: metrics.buffer_bytes.get_or_create(&labels).get(),
                    seconds_since_last_delivery: secs_since(last),
                    seconds_waiting: secs_since(since),
                    stuck: reference.is_some_and(|r| now.saturating_sub(r) >= threshold_ms),
                }
            })
            .collect();
        let healthy = outputs.iter().all(|o| !o.stuck);
        DeliveryReport {
            status: if healthy { "ok" } else { "stuck" },
            stuck_after_seconds: stuck_after.as_secs_f64(),
            outputs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_and_progressing_outputs_are_healthy_waiting_ones_become_stuck() {
        let metrics = Metrics::new();
        let out = Component::output("cw");
        metrics.track_output(&out);
        let tracker = metrics.delivery();
        // Idle: nothing waiting, never delivered.
        let r = tracker.report(&metrics, Duration::ZERO);
        assert!(r.is_healthy(), "{r:?}");
        assert_eq!(r.outputs[0].seconds_since_last_delivery, None);

        // Events wait; a zero threshold makes that stuck at once.
        metrics.buffer_events.get_or_create(&out.labels()).set(5);
        let r = tracker.report(&metrics, Duration::ZERO);
        assert!(!r.is_healthy());
        assert_eq!(r.status, "stuck");
        assert_eq!(r.outputs[0].buffered_events, 5);
        // …but not against a long threshold.
        assert!(
            tracker
                .report(&metrics, Duration::from_secs(3600))
                .is_healthy()
        );

        // Drained: healthy again.
        metrics.sent(&out, 5);
        metrics.buffer_events.get_or_create(&out.labels()).set(0);
        let r = tracker.report(&metrics, Duration::ZERO);
        assert!(r.is_healthy());
        assert!(r.outputs[0].seconds_since_last_delivery.is_some());
    }
}
