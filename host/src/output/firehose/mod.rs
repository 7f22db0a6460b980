//! `firehose` (also `kinesis_firehose`): events to an Amazon Data Firehose delivery stream
//! with PutRecordBatch.
//!
//! A batch becomes records ([`records`]) and requests within the API limits. A request that
//! fails as a whole is sent again later; one that succeeds with `FailedPutCount > 0` keeps only
//! the records whose entry has an `ErrorCode` — records Firehose accepted are never sent again
//! (Fluent Bit's C plugin resends the whole chunk, fluent/fluent-bit#6369). Left-over records
//! wait in the output until the runner calls again with the same batch.

pub mod config;
pub mod records;

pub use config::{FirehoseConfig, FirehoseSettings};

use crate::event::Batch;
use crate::ops::metrics::{Component, Metrics};
use crate::output::aws::progress::Resume;
use crate::output::aws::telemetry::{
    DropLedger, EventsTruncated, InvalidUtf8Replaced, RequestFailed, RequestSent,
};
use crate::output::aws::{AwsOverrides, SdkFailure};
use crate::output::{DeliveryError, Output};
use aws_sdk_firehose::types::Record;
use aws_smithy_types::Blob;
use records::FirehoseRecord;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Building the output failed.
#[derive(Debug, thiserror::Error)]
pub enum FirehoseError {
    /// The options are wrong.
    #[error("{0}")]
    Config(String),
}

/// What is left of a batch.
#[derive(Debug, Default)]
struct Progress {
    pending: VecDeque<FirehoseRecord>,
    dropped: DropLedger,
}

/// How one PutRecordBatch call went.
enum PutResult {
    /// Every record was accepted.
    Accepted,
    /// These records were refused one by one (retryable) with these error codes.
    PartlyFailed {
        failed: Vec<FirehoseRecord>,
        codes: BTreeMap<String, usize>,
    },
    /// The call failed as a whole; none of `request` was accepted.
    Failed {
        request: Vec<FirehoseRecord>,
        failure: SdkFailure,
    },
}

/// The `firehose` output.
pub struct FirehoseOutput {
    settings: Arc<FirehoseSettings>,
    client: aws_sdk_firehose::Client,
    component: Component,
    metrics: Arc<Metrics>,
    resume: Resume<Progress>,
}

impl FirehoseOutput {
    /// Build from the config: validate, then create the client (no network I/O yet).
    pub async fn build(
        config: &FirehoseConfig,
        component: Component,
        metrics: Arc<Metrics>,
        overrides: &AwsOverrides,
    ) -> Result<Self, FirehoseError> {
        let settings = config.validate().map_err(FirehoseError::Config)?;
        let sdk = settings
            .connection
            .sdk_config(overrides)
            .await
            .map_err(|e| FirehoseError::Config(e.to_string()))?;
        for option in &settings.ignored_options {
            tracing::info!(component_id = %component.id, option, "option accepted for Fluent Bit compatibility; it has no effect here");
        }
        Ok(FirehoseOutput {
            client: aws_sdk_firehose::Client::new(&sdk),
            settings: Arc::new(settings),
            component,
            metrics,
            resume: Resume::default(),
        })
    }

    fn prepare(&self, batch: &Batch) -> Progress {
        let mut dropped = DropLedger::default();
        let (pending, stats) = records::build_records(&self.settings, batch, &mut dropped);
        EventsTruncated {
            count: stats.truncated,
            limit: records::MAX_RECORD_BYTES,
        }
        .emit(&self.metrics, &self.component);
        InvalidUtf8Replaced {
            events: stats.invalid_utf8,
        }
        .emit(&self.metrics, &self.component);
        Progress { pending, dropped }
    }

    /// One PutRecordBatch call.
    fn sent(&self, records: u64, bytes: u64) {
        RequestSent {
            operation: "PutRecordBatch",
            events: records,
            bytes,
            target: &self.settings.delivery_stream,
        }
        .emit(&self.metrics, &self.component);
    }

    async fn put(&self, request: Vec<FirehoseRecord>) -> PutResult {
        let total_records = request.len() as u64;
        let total_bytes: u64 = request.iter().map(|r| r.data.len() as u64).sum();
        let records = request
            .iter()
            .map(|r| Record::builder().data(Blob::new(r.data.to_vec())).build())
            .collect::<Result<Vec<_>, _>>()
            .expect("data is always set");
        let sent = self
            .client
            .put_record_batch()
            .delivery_stream_name(&self.settings.delivery_stream)
            .set_records(Some(records))
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e) => {
                return PutResult::Failed {
                    request,
                    failure: SdkFailure::classify(&e),
                };
            }
        };
        if out.failed_put_count() == 0 {
            self.sent(total_records, total_bytes);
            return PutResult::Accepted;
        }
        let entries = out.request_responses();
        let mut codes = BTreeMap::new();
        let mut failed = Vec::new();
        for (i, record) in request.into_iter().enumerate() {
            // A missing entry cannot be told apart from a failure: resend (at-least-once).
            let code = match entries.get(i) {
                Some(entry) if entry.error_code().is_none() && entry.record_id().is_some() => {
                    continue;
                }
                Some(entry) => entry.error_code().unwrap_or("UnknownError"),
                None => "MissingResponseEntry",
            };
            *codes.entry(code.to_string()).or_insert(0) += 1;
            failed.push(record);
        }
        let failed_bytes: u64 = failed.iter().map(|r| r.data.len() as u64).sum();
        self.sent(
            total_records - failed.len() as u64,
            total_bytes - failed_bytes,
        );
        if failed.is_empty() {
            PutResult::Accepted
        } else {
            PutResult::PartlyFailed { failed, codes }
        }
    }
}

impl Output for FirehoseOutput {
    async fn deliver(&mut self, batch: &Batch) -> Result<(), DeliveryError> {
        let mut progress = match self.resume.take_for(batch) {
            Some(left) => left,
            None => self.prepare(batch),
        };
        let mut retry_later: Vec<FirehoseRecord> = Vec::new();
        let mut partial_codes: BTreeMap<String, usize> = BTreeMap::new();
        loop {
            let request = records::next_request(&mut progress.pending);
            if request.is_empty() {
                break;
            }
            match self.put(request).await {
                PutResult::Accepted => {}
                PutResult::PartlyFailed { failed, codes } => {
                    let failure = SdkFailure {
                        class: crate::output::aws::ErrorClass::Throttled,
                        code: codes.keys().next().cloned(),
                        message: format!("{} records failed: {codes:?}", failed.len()),
                        status: Some(200),
                        retry_after: None,
                    };
                    RequestFailed {
                        operation: "PutRecordBatch",
                        failure: &failure,
                        target: &self.settings.delivery_stream,
                    }
                    .emit(&self.metrics, &self.component);
                    for (code, n) in codes {
                        *partial_codes.entry(code).or_insert(0) += n;
                    }
                    retry_later.extend(failed);
                }
                PutResult::Failed { request, failure } => {
                    RequestFailed {
                        operation: "PutRecordBatch",
                        failure: &failure,
                        target: &self.settings.delivery_stream,
                    }
                    .emit(&self.metrics, &self.component);
                    if failure.is_retryable() {
                        let left = request.len() + progress.pending.len() + retry_later.len();
                        for record in request.into_iter().rev() {
                            progress.pending.push_front(record);
                        }
                        progress.pending.extend(retry_later);
                        let reason = format!(
                            "Firehose {} on delivery stream {:?}: {failure} ({left} records of this batch left)",
                            failure.class.reason(),
                            self.settings.delivery_stream
                        );
                        self.resume.keep(batch, progress);
                        return Err(DeliveryError::Retryable {
                            reason,
                            after: failure.retry_after,
                        });
                    }
                    let detail = format!(
                        "delivery stream {:?}: {failure}; check that the stream exists in region {:?} and accepts direct PUT",
                        self.settings.delivery_stream, self.settings.connection.region
                    );
                    let reason =
                        if failure.class == crate::output::aws::ErrorClass::ResourceNotFound {
                            "delivery_stream_not_found"
                        } else {
                            "rejected_by_api"
                        };
                    progress.dropped.drop_events(
                        request.iter().flat_map(|r| r.events.iter().copied()),
                        reason,
                        || detail,
                    );
                }
            }
        }
        if !retry_later.is_empty() {
            let reason = format!(
                "Firehose refused {} records of this batch one by one ({partial_codes:?}); only those are sent again",
                retry_later.len()
            );
            progress.pending.extend(retry_later);
            self.resume.keep(batch, progress);
            return Err(DeliveryError::Retryable {
                reason,
                after: None,
            });
        }
        progress.dropped.into_result()
    }
}
