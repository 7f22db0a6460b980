//! Typed telemetry of the AWS outputs: one struct per thing that happens, each with an `emit`
//! that logs it (once per occurrence, never once per event) and counts it in the router's
//! metrics (`component_errors_total{reason}`, `component_discarded_events_total{reason}`).
//!
//! Events given up on inside a batch the runner handed over are collected in a [`DropLedger`]
//! and returned as [`DeliveryError::Rejected`], so the runner counts them (and dead-letters
//! them) exactly once; [`EventsDropped`] is for drops outside a `deliver` call (S3 uploads).

use super::retry::SdkFailure;
use crate::ops::metrics::{Component, Metrics};
use crate::output::DeliveryError;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

/// Labels of one AWS API call: the output, the operation, and how it ended (`ok` or the
/// [`super::ErrorClass`] reason).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsCallLabels {
    /// The output's id.
    pub component_id: String,
    /// `PutLogEvents`, `PutRecordBatch`, `UploadPart`, ….
    pub operation: String,
    /// `ok`, `throttled`, `server_error`, ….
    pub outcome: String,
}

/// The AWS outputs' own metric families, registered once per registry.
pub struct AwsFamilies {
    /// `aws_requests_total{component_id, operation, outcome}`.
    pub requests: Family<AwsCallLabels, Counter>,
    /// `aws_request_bytes_total{component_id, operation, outcome="ok"}`: payload bytes accepted.
    pub bytes: Family<AwsCallLabels, Counter>,
}

static REGISTERED: Mutex<Vec<(Weak<Metrics>, Arc<AwsFamilies>)>> = Mutex::new(Vec::new());

impl AwsFamilies {
    /// The families of `metrics`, registered on first use.
    pub fn of(metrics: &Arc<Metrics>) -> Arc<AwsFamilies> {
        let mut all = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|(m, _)| m.strong_count() > 0);
        if let Some((_, f)) = all
            .iter()
            .find(|(m, _)| std::ptr::eq(m.as_ptr(), Arc::as_ptr(metrics)))
        {
            return f.clone();
        }
        let f = Arc::new(AwsFamilies {
            requests: Family::default(),
            bytes: Family::default(),
        });
        metrics.with_registry(|r| {
            r.register(
                "aws_requests",
                "AWS API calls by operation and outcome",
                f.requests.clone(),
            );
            r.register(
                "aws_request_bytes",
                "Payload bytes of AWS API calls that succeeded",
                f.bytes.clone(),
            );
        });
        all.push((Arc::downgrade(metrics), f.clone()));
        f
    }

    fn count(&self, component: &Component, operation: &str, outcome: &str, bytes: u64) {
        let labels = AwsCallLabels {
            component_id: component.id.clone(),
            operation: operation.to_string(),
            outcome: outcome.to_string(),
        };
        self.requests.get_or_create(&labels).inc();
        if bytes > 0 {
            self.bytes.get_or_create(&labels).inc_by(bytes);
        }
    }
}

/// An API call succeeded.
pub struct RequestSent<'a> {
    /// The API operation.
    pub operation: &'static str,
    /// Events (or records) it carried.
    pub events: u64,
    /// Payload bytes it carried.
    pub bytes: u64,
    /// What the call was for.
    pub target: &'a str,
}

impl RequestSent<'_> {
    /// Count it (`aws_requests_total{outcome="ok"}`, `aws_request_bytes_total`); log at TRACE.
    pub fn emit(&self, metrics: &Arc<Metrics>, component: &Component) {
        AwsFamilies::of(metrics).count(component, self.operation, "ok", self.bytes);
        tracing::trace!(component_id = %component.id, operation = self.operation, events = self.events, bytes = self.bytes, target = self.target, "AWS call succeeded");
    }
}

/// An API call failed.
pub struct RequestFailed<'a> {
    /// The API operation (`PutLogEvents`, `UploadPart`, …).
    pub operation: &'static str,
    /// The classified failure.
    pub failure: &'a SdkFailure,
    /// What the call was for (`group /ecs/web stream app`, `bucket logs key a/b`).
    pub target: &'a str,
}

impl RequestFailed<'_> {
    /// Count and log it: retryable failures at INFO (they are expected under throttling), the
    /// others at WARN.
    pub fn emit(&self, metrics: &Arc<Metrics>, component: &Component) {
        metrics.error(component, self.failure.class.reason());
        AwsFamilies::of(metrics).count(component, self.operation, self.failure.class.reason(), 0);
        if self.failure.is_retryable() {
            tracing::info!(
                component_id = %component.id,
                operation = self.operation,
                target = self.target,
                error = %self.failure,
                "AWS call failed; will retry"
            );
        } else {
            tracing::warn!(
                component_id = %component.id,
                operation = self.operation,
                target = self.target,
                error = %self.failure,
                "AWS call failed"
            );
        }
    }
}

/// Events given up on, with why and what the operator can do.
pub struct EventsDropped<'a> {
    /// The metric reason (`too_old`, `rejected_too_new`, `log_key_missing`, …).
    pub reason: &'static str,
    /// How many events.
    pub count: u64,
    /// What happened and the fix, for the log.
    pub detail: &'a str,
}

impl EventsDropped<'_> {
    /// Count (under `reason`) and log it.
    pub fn emit(&self, metrics: &Metrics, component: &Component) {
        if self.count == 0 {
            return;
        }
        tracing::warn!(component_id = %component.id, reason = self.reason, count = self.count, detail = self.detail, "dropping events");
        metrics.events_dropped(component, self.reason, self.count);
    }
}

/// Events shortened to fit a size limit (delivered, but not whole).
pub struct EventsTruncated {
    /// How many events.
    pub count: u64,
    /// The limit they were cut to, in bytes.
    pub limit: usize,
}

impl EventsTruncated {
    /// Count under `event_truncated` and log once for the lot.
    pub fn emit(&self, metrics: &Metrics, component: &Component) {
        if self.count == 0 {
            return;
        }
        for _ in 0..self.count {
            metrics.error(component, "event_truncated");
        }
        tracing::warn!(component_id = %component.id, count = self.count, limit = self.limit, "events truncated to the size limit");
    }
}

/// Strings whose invalid UTF-8 was replaced by U+FFFD while rendering JSON.
pub struct InvalidUtf8Replaced {
    /// How many events had at least one such string.
    pub events: u64,
}

impl InvalidUtf8Replaced {
    /// Count under `invalid_utf8_replaced` (once per event).
    pub fn emit(&self, metrics: &Metrics, component: &Component) {
        for _ in 0..self.events {
            metrics.error(component, "invalid_utf8_replaced");
        }
        if self.events > 0 {
            tracing::debug!(component_id = %component.id, events = self.events, "invalid UTF-8 replaced by U+FFFD");
        }
    }
}

/// The events of one batch given up on, by index into `batch.events`, with their reasons.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropLedger {
    dropped: Vec<usize>,
    reasons: BTreeMap<&'static str, (u64, String)>,
}

impl DropLedger {
    /// Give up the events at `indexes` for `reason`; `detail` (what happened and the fix) is
    /// kept once per reason.
    pub fn drop_events(
        &mut self,
        indexes: impl IntoIterator<Item = usize>,
        reason: &'static str,
        detail: impl FnOnce() -> String,
    ) {
        let before = self.dropped.len();
        self.dropped.extend(indexes);
        let added = (self.dropped.len() - before) as u64;
        if added == 0 {
            return;
        }
        self.reasons
            .entry(reason)
            .or_insert_with(|| (0, detail()))
            .0 += added;
    }

    /// How many events were given up.
    pub fn len(&self) -> usize {
        self.dropped.len()
    }

    /// Whether nothing was given up.
    pub fn is_empty(&self) -> bool {
        self.dropped.is_empty()
    }

    /// The count for one reason.
    pub fn count(&self, reason: &str) -> u64 {
        self.reasons.get(reason).map_or(0, |(n, _)| *n)
    }

    /// `Ok(())` when nothing was dropped, else [`DeliveryError::Rejected`] with every index.
    /// The metric reason is the most frequent one; the detail lists all of them with counts.
    pub fn into_result(self) -> Result<(), DeliveryError> {
        if self.dropped.is_empty() {
            return Ok(());
        }
        let reason = self
            .reasons
            .iter()
            .max_by_key(|(_, (n, _))| *n)
            .map(|(r, _)| r.to_string())
            .unwrap_or_else(|| "rejected".into());
        let detail = self
            .reasons
            .iter()
            .map(|(r, (n, d))| format!("{n} {r}: {d}"))
            .collect::<Vec<_>>()
            .join("; ");
        Err(DeliveryError::Rejected {
            events: self.dropped,
            reason,
            detail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_by_operation_and_outcome() {
        let metrics = Metrics::new();
        let c = Component::output("cw");
        RequestSent {
            operation: "PutLogEvents",
            events: 3,
            bytes: 120,
            target: "g/s",
        }
        .emit(&metrics, &c);
        let failure = SdkFailure {
            class: super::super::ErrorClass::Throttled,
            code: None,
            message: "slow down".into(),
            status: Some(400),
            retry_after: None,
        };
        RequestFailed {
            operation: "PutLogEvents",
            failure: &failure,
            target: "g/s",
        }
        .emit(&metrics, &c);
        RequestFailed {
            operation: "PutLogEvents",
            failure: &failure,
            target: "g/s",
        }
        .emit(&metrics, &c);
        let text = metrics.encode();
        assert!(text.contains("aws_requests_total{component_id=\"cw\",operation=\"PutLogEvents\",outcome=\"ok\"} 1"), "{text}");
        assert!(text.contains("aws_requests_total{component_id=\"cw\",operation=\"PutLogEvents\",outcome=\"throttled\"} 2"), "{text}");
        assert!(text.contains("aws_request_bytes_total{component_id=\"cw\",operation=\"PutLogEvents\",outcome=\"ok\"} 120"), "{text}");
        assert_eq!(
            text.matches("# HELP aws_requests ").count(),
            1,
            "registered once per registry"
        );
        RequestSent {
            operation: "PutRecordBatch",
            events: 1,
            bytes: 1,
            target: "d",
        }
        .emit(&metrics, &Component::output("fh"));
        assert_eq!(metrics.encode().matches("# HELP aws_requests ").count(), 1);
    }

    #[test]
    fn ledger_reports_every_index_under_the_main_reason() {
        assert!(DropLedger::default().into_result().is_ok());
        let mut l = DropLedger::default();
        l.drop_events([0, 3], "too_old", || "older than 14 days".into());
        l.drop_events([5], "too_new", || "ahead".into());
        l.drop_events([], "never", || unreachable!());
        assert_eq!((l.len(), l.count("too_old"), l.count("never")), (3, 2, 0));
        match l.into_result() {
            Err(DeliveryError::Rejected {
                events,
                reason,
                detail,
            }) => {
                assert_eq!(events, vec![0, 3, 5]);
                assert_eq!(reason, "too_old");
                assert!(
                    detail.contains("2 too_old: older than 14 days")
                        && detail.contains("1 too_new: ahead"),
                    "{detail}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
