//! Typed telemetry of the AWS outputs: one struct per thing that happens, each with an `emit`
//! that logs it (once per occurrence, never once per event) and counts it in the router's
//! metrics (`component_errors_total{reason}`, `component_discarded_events_total{reason}`).
//!
//! Events given up on inside a delivery are rejected in the runner's
//! [`DeliveryProgress`](crate::output::DeliveryProgress), so the runner counts them (and
//! dead-letters them) exactly once, each under its own reason; [`EventsDropped`] is for drops
//! outside a `deliver` call (S3 uploads).

use super::error_class::SdkFailure;
use crate::ops::metrics::{Component, Metrics};
use crate::output::requests;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::Arc;

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
    /// `aws_records_failed_total{component_id, operation, outcome=<error code>}`: records a
    /// call that succeeded refused one by one (PutRecords, PutRecordBatch), each sent again.
    pub records_failed: Family<AwsCallLabels, Counter>,
}

impl AwsFamilies {
    /// The families of `metrics`, registered on first use.
    pub fn of(metrics: &Arc<Metrics>) -> Arc<AwsFamilies> {
        metrics.families(|r| {
            let f = AwsFamilies {
                requests: Family::default(),
                bytes: Family::default(),
                records_failed: Family::default(),
            };
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
            r.register(
                "aws_records_failed",
                "Records refused one by one in a call that succeeded, by error code (each is sent again)",
                f.records_failed.clone(),
            );
            f
        })
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

/// The operations that deliver events, one request per call: counted per destination in
/// `output_requests_total` ([`crate::output::requests`]). S3's calls are not: an object's key is
/// new every time, and its requests follow its own upload sizes, not the flush window.
const DELIVERY_OPERATIONS: [&str; 3] = ["PutLogEvents", "PutRecordBatch", "PutRecords"];

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
        if DELIVERY_OPERATIONS.contains(&self.operation) {
            requests::request_accepted(metrics, component, self.target, self.events);
        }
        tracing::trace!(component_id = %component.id, operation = self.operation, events = self.events, bytes = self.bytes, target = self.target, "AWS call succeeded");
    }
}

/// Records a call that succeeded refused one by one, by error code.
pub struct RecordsFailed<'a> {
    /// The API operation.
    pub operation: &'static str,
    /// Error code → records.
    pub codes: &'a std::collections::BTreeMap<String, usize>,
}

impl RecordsFailed<'_> {
    /// Count them (`aws_records_failed_total{outcome=<code>}`); logged by the caller's
    /// [`RequestFailed`].
    pub fn emit(&self, metrics: &Arc<Metrics>, component: &Component) {
        let families = AwsFamilies::of(metrics);
        for (code, n) in self.codes {
            let labels = AwsCallLabels {
                component_id: component.id.clone(),
                operation: self.operation.to_string(),
                outcome: code.clone(),
            };
            families
                .records_failed
                .get_or_create(&labels)
                .inc_by(*n as u64);
        }
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
        // A call answered 200 with records refused one by one was counted by its RequestSent.
        if DELIVERY_OPERATIONS.contains(&self.operation) && self.failure.status != Some(200) {
            requests::request_failed(metrics, component, self.target);
        }
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

/// Events with strings of invalid UTF-8, written with the private-use mapping (each bad byte as
/// U+E000 + the byte, as Fluent Bit does) while rendering JSON.
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
            tracing::debug!(component_id = %component.id, events = self.events, "invalid UTF-8 mapped to private-use code points U+E080..U+E0FF");
        }
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
}
