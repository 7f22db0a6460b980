//! `firehose` (also `kinesis_firehose`): events to an Amazon Data Firehose delivery stream
//! with PutRecordBatch.
//!
//! The pending events of a delivery become records ([`records`]) and requests within the API
//! limits. Every record Firehose accepted marks its events delivered in the runner's
//! [`DeliveryProgress`], so a retry sends only the rest: a request that fails as a whole is sent
//! again later; of one that succeeds with `FailedPutCount > 0` only the records whose entry has
//! an `ErrorCode` are — records Firehose accepted are never sent again (Fluent Bit's C plugin
//! resends the whole chunk, fluent/fluent-bit#6369).

pub mod config;
pub mod records;

pub use config::{FirehoseConfig, FirehoseSettings};

use crate::event::Batch;
use crate::ops::metrics::{Component, Metrics};
use crate::output::aws::telemetry::{
    EventsTruncated, InvalidUtf8Replaced, RequestFailed, RequestSent,
};
use crate::output::aws::{AwsOverrides, SdkFailure};
use crate::output::{DeliveryError, DeliveryProgress, Output};
use aws_sdk_firehose::types::Record;
use aws_smithy_types::Blob;
use records::FirehoseRecord;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Building the output failed.
#[derive(Debug, thiserror::Error)]
pub enum FirehoseError {
    /// The options are wrong.
    #[error("{0}")]
    Config(String),
}

/// How one PutRecordBatch call went.
enum PutResult {
    /// Every record was accepted.
    Accepted,
    /// These records were refused one by one (retryable) with these error codes; the others
    /// were accepted.
    PartlyFailed {
        failed: usize,
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
        })
    }

    fn prepare(
        &self,
        batch: &Batch,
        progress: &mut DeliveryProgress,
    ) -> std::collections::VecDeque<FirehoseRecord> {
        let (pending, stats) = records::build_records(&self.settings, batch, progress);
        if !progress.is_first_attempt() {
            return pending;
        }
        EventsTruncated {
            count: stats.truncated,
            limit: records::MAX_RECORD_BYTES,
        }
        .emit(&self.metrics, &self.component);
        InvalidUtf8Replaced {
            events: stats.invalid_utf8,
        }
        .emit(&self.metrics, &self.component);
        pending
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

    /// One PutRecordBatch call; the records accepted mark their events delivered.
    async fn put(
        &self,
        request: Vec<FirehoseRecord>,
        progress: &mut DeliveryProgress,
    ) -> PutResult {
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
            progress.delivered(request.iter().flat_map(|r| r.events.iter().copied()));
            return PutResult::Accepted;
        }
        let entries = out.request_responses();
        let mut codes = BTreeMap::new();
        let (mut failed, mut failed_bytes) = (0usize, 0u64);
        for (i, record) in request.iter().enumerate() {
            // A missing entry cannot be told apart from a failure: resend (at-least-once).
            let code = match entries.get(i) {
                Some(entry) if entry.error_code().is_none() && entry.record_id().is_some() => {
                    progress.delivered(record.events.iter().copied());
                    continue;
                }
                Some(entry) => entry.error_code().unwrap_or("UnknownError"),
                None => "MissingResponseEntry",
            };
            *codes.entry(code.to_string()).or_insert(0) += 1;
            failed += 1;
            failed_bytes += record.data.len() as u64;
        }
        self.sent(total_records - failed as u64, total_bytes - failed_bytes);
        if failed == 0 {
            PutResult::Accepted
        } else {
            PutResult::PartlyFailed { failed, codes }
        }
    }
}

impl Output for FirehoseOutput {
    fn request_limits(&self) -> crate::output::RequestLimits {
        crate::output::RequestLimits {
            events: records::MAX_RECORDS_PER_REQUEST,
            body_bytes: records::MAX_REQUEST_BYTES,
        }
    }

    async fn deliver(
        &mut self,
        batch: &Batch,
        progress: &mut DeliveryProgress,
    ) -> Result<(), DeliveryError> {
        let mut pending = self.prepare(batch, progress);
        let mut refused = 0usize;
        let mut partial_codes: BTreeMap<String, usize> = BTreeMap::new();
        loop {
            let request = records::next_request(&mut pending);
            if request.is_empty() {
                break;
            }
            match self.put(request, progress).await {
                PutResult::Accepted => {}
                PutResult::PartlyFailed { failed, codes } => {
                    progress.throttled();
                    let failure = SdkFailure {
                        class: crate::output::aws::ErrorClass::Throttled,
                        code: codes.keys().next().cloned(),
                        message: format!("{failed} records failed: {codes:?}"),
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
                    refused += failed;
                }
                PutResult::Failed { request, failure } => {
                    RequestFailed {
                        operation: "PutRecordBatch",
                        failure: &failure,
                        target: &self.settings.delivery_stream,
                    }
                    .emit(&self.metrics, &self.component);
                    if failure.class == crate::output::aws::ErrorClass::Throttled {
                        progress.throttled();
                    }
                    if failure.is_retryable() {
                        let left = request.len() + pending.len() + refused;
                        return Err(DeliveryError::Retryable {
                            reason: format!(
                                "Firehose {} on delivery stream {:?}: {failure} ({left} records of this delivery left)",
                                failure.class.reason(),
                                self.settings.delivery_stream
                            ),
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
                    progress.reject(
                        request.iter().flat_map(|r| r.events.iter().copied()),
                        reason,
                        || detail,
                    );
                }
            }
        }
        if refused > 0 {
            return Err(DeliveryError::Retryable {
                reason: format!(
                    "Firehose refused {refused} records of this delivery one by one ({partial_codes:?}); only those are sent again"
                ),
                after: None,
            });
        }
        Ok(())
    }
}
impl crate::output::OutputComponent for FirehoseConfig {
    fn default_batch_timeout(&self) -> std::time::Duration {
        crate::output::window::PER_REQUEST_BATCH_TIMEOUT
    }

    fn validate(&self, key: &str, _id: &str, problems: &mut Vec<String>) {
        crate::output::aws::report_problems(key, "firehose", self.validate().map(drop), problems);
    }

    fn build<'a>(
        &'a self,
        cx: crate::output::OutputContext<'a>,
        task: crate::output::OutputTask,
    ) -> crate::output::component::BuildFuture<'a> {
        let aws = crate::output::aws::AwsOverrides::default();
        task.run_built(
            async move { FirehoseOutput::build(self, cx.component, cx.metrics, &aws).await },
        )
    }
}
