//! The delivery loop of the AWS record APIs that take a batch of records and answer per record
//! (Firehose PutRecordBatch, Kinesis PutRecords): requests within the API's limits, one after
//! the other; every record accepted marks its events delivered in the runner's
//! [`DeliveryProgress`], so a retry sends only the rest. A call that fails as a whole is retried
//! later (or, refused for good, rejects its events under the destination's reason); of one that
//! succeeds with some records refused, only those are sent again, each counted in
//! `aws_records_failed_total` under its error code.

use super::telemetry::{RecordsFailed, RequestFailed, RequestSent};
use super::{ErrorClass, SdkFailure};
use crate::ops::metrics::{Component, Metrics};
use crate::output::{DeliveryError, DeliveryProgress};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// One record of a request.
pub trait PutRecord {
    /// The indexes of the batch's events it carries.
    fn events(&self) -> &[usize];
    /// What it counts against the request and record size limits.
    fn size(&self) -> usize;
}

/// An API that takes a batch of records and answers per record.
pub trait RecordApi {
    /// Its records.
    type Record: PutRecord + Send + Sync;
    /// The operation, for metrics and logs (`PutRecordBatch`).
    const OPERATION: &'static str;
    /// The service, for messages (`Firehose`).
    const SERVICE: &'static str;
    /// Most records in one request.
    const MAX_RECORDS: usize;
    /// Most bytes ([`PutRecord::size`]) in one request.
    const MAX_BYTES: usize;

    /// What the destination is, for messages (`delivery stream`).
    const KIND: &'static str;

    /// The destination's name.
    fn target(&self) -> &str;
    /// Why the destination refuses for good, and what to check (for the dead letters).
    fn refused(&self, failure: &SdkFailure) -> (&'static str, String);
    /// Send one request: per record, in order, `None` when it was accepted or its error code.
    fn call(
        &self,
        request: &[Self::Record],
    ) -> impl Future<Output = Result<Vec<Option<String>>, SdkFailure>> + Send;
}

/// Take the next request's records from the front of `pending`: at most `max_records` records
/// and `max_bytes` bytes (a single larger record goes alone).
pub fn take_request<R: PutRecord>(
    pending: &mut VecDeque<R>,
    max_records: usize,
    max_bytes: usize,
) -> Vec<R> {
    let mut request = Vec::new();
    let mut bytes = 0;
    while let Some(record) = pending.front() {
        if request.len() == max_records
            || (!request.is_empty() && bytes + record.size() > max_bytes)
        {
            break;
        }
        bytes += record.size();
        request.push(pending.pop_front().expect("checked"));
    }
    request
}

/// Where the telemetry of a delivery goes.
pub struct Telemetry<'a> {
    /// The output's metrics.
    pub metrics: &'a Arc<Metrics>,
    /// The output.
    pub component: &'a Component,
}

/// Send `pending` through `api`, request after request, as the module documentation says.
pub async fn deliver<A: RecordApi>(
    api: &A,
    mut pending: VecDeque<A::Record>,
    progress: &mut DeliveryProgress,
    telemetry: Telemetry<'_>,
) -> Result<(), DeliveryError> {
    let target = api.target();
    let place = format!("{} {target:?}", A::KIND);
    let failed = |failure: &SdkFailure| {
        RequestFailed {
            operation: A::OPERATION,
            failure,
            target,
        }
        .emit(telemetry.metrics, telemetry.component)
    };
    let mut refused = 0usize;
    let mut partial_codes: BTreeMap<String, usize> = BTreeMap::new();
    loop {
        let request = take_request(&mut pending, A::MAX_RECORDS, A::MAX_BYTES);
        if request.is_empty() {
            break;
        }
        let answers = match api.call(&request).await {
            Ok(answers) => answers,
            Err(failure) => {
                failed(&failure);
                if failure.class == ErrorClass::Throttled {
                    progress.throttled();
                }
                if failure.is_retryable() {
                    let left = request.len() + pending.len() + refused;
                    return Err(DeliveryError::Retryable {
                        reason: format!(
                            "{} {} on {place}: {failure} ({left} records of this delivery left)",
                            A::SERVICE,
                            failure.class.reason(),
                        ),
                        after: failure.retry_after,
                    });
                }
                let (reason, detail) = api.refused(&failure);
                progress.reject(
                    request.iter().flat_map(|r| r.events().iter().copied()),
                    reason,
                    || detail,
                );
                continue;
            }
        };
        let mut codes = BTreeMap::new();
        let (mut accepted, mut accepted_bytes) = (0u64, 0u64);
        for (i, record) in request.iter().enumerate() {
            // A missing answer cannot be told apart from a failure: resend (at-least-once).
            match answers.get(i) {
                Some(None) => {
                    progress.delivered(record.events().iter().copied());
                    accepted += 1;
                    accepted_bytes += record.size() as u64;
                }
                Some(Some(code)) => *codes.entry(code.clone()).or_insert(0) += 1,
                None => *codes.entry("MissingResponseEntry".into()).or_insert(0) += 1,
            }
        }
        RequestSent {
            operation: A::OPERATION,
            events: accepted,
            bytes: accepted_bytes,
            target,
        }
        .emit(telemetry.metrics, telemetry.component);
        if codes.is_empty() {
            continue;
        }
        // Records refused one by one are over the stream's throughput.
        progress.throttled();
        let failures = request.len() - accepted as usize;
        RecordsFailed {
            operation: A::OPERATION,
            codes: &codes,
        }
        .emit(telemetry.metrics, telemetry.component);
        failed(&SdkFailure {
            class: ErrorClass::Throttled,
            code: codes.keys().next().cloned(),
            message: format!("{failures} records failed: {codes:?}"),
            status: Some(200),
            retry_after: None,
        });
        for (code, n) in codes {
            *partial_codes.entry(code).or_insert(0) += n;
        }
        refused += failures;
    }
    if refused > 0 {
        return Err(DeliveryError::Retryable {
            reason: format!(
                "{} refused {refused} records of this delivery one by one ({partial_codes:?}); only those are sent again",
                A::SERVICE
            ),
            after: None,
        });
    }
    Ok(())
}
