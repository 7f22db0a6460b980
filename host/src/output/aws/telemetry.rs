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
use std::collections::BTreeMap;

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
    pub fn emit(&self, metrics: &Metrics, component: &Component) {
        metrics.error(component, self.failure.class.reason());
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
