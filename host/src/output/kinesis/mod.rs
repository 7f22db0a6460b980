//! `kinesis_streams` (Fluent Bit's C plugin; the Go `kinesis` maps here too): events to an
//! Amazon Kinesis data stream with PutRecords.
//!
//! The pending events of a delivery become records ([`records`]: one per event, with its
//! partition key) and requests within the API limits. Every record Kinesis accepted marks its
//! event delivered in the runner's [`DeliveryProgress`], so a retry sends only the rest: a
//! request that fails as a whole is sent again later; of one that succeeds with
//! `FailedRecordCount > 0` only the records whose entry has an `ErrorCode`
//! (`ProvisionedThroughputExceededException`, `InternalFailure`) are, each counted in
//! `aws_records_failed_total`. A request Kinesis refuses for good (stream not found, KMS key
//! disabled, access denied to the key) rejects its events, which go to the dead letters.

pub mod config;
pub mod records;

pub use config::{KinesisConfig, KinesisSettings};

use crate::event::Batch;
use crate::ops::metrics::{Component, Metrics};
use crate::output::aws::telemetry::{
    InvalidUtf8Replaced, RecordsFailed, RequestFailed, RequestSent,
};
use crate::output::aws::{AwsOverrides, ErrorClass, SdkFailure};
use crate::output::{DeliveryError, DeliveryProgress, Output};
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_smithy_types::Blob;
use records::KinesisRecord;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Building the output failed.
#[derive(Debug, thiserror::Error)]
pub enum KinesisError {
    /// The options are wrong.
    #[error("{0}")]
    Config(String),
}

/// How one PutRecords call went.
enum PutResult {
    /// Every record was accepted.
    Accepted,
    /// These records were refused one by one (retryable), by error code; the others were
    /// accepted.
    PartlyFailed {
        failed: usize,
        codes: BTreeMap<String, usize>,
    },
    /// The call failed as a whole; none of `request` was accepted.
    Failed {
        request: Vec<KinesisRecord>,
        failure: SdkFailure,
    },
}

/// The `kinesis_streams` output.
pub struct KinesisOutput {
    settings: Arc<KinesisSettings>,
    client: aws_sdk_kinesis::Client,
    component: Component,
    metrics: Arc<Metrics>,
}

impl KinesisOutput {
    /// Build from the config: validate, then create the client (no network I/O yet).
    pub async fn build(
        config: &KinesisConfig,
        component: Component,
        metrics: Arc<Metrics>,
        overrides: &AwsOverrides,
    ) -> Result<Self, KinesisError> {
        let settings = config.validate().map_err(KinesisError::Config)?;
        let sdk = settings
            .connection
            .sdk_config(overrides)
            .await
            .map_err(|e| KinesisError::Config(e.to_string()))?;
        for option in &settings.ignored_options {
            tracing::info!(component_id = %component.id, option, "option accepted for Fluent Bit compatibility; it has no effect here");
        }
        Ok(KinesisOutput {
            client: aws_sdk_kinesis::Client::new(&sdk),
            settings: Arc::new(settings),
            component,
            metrics,
        })
    }

    fn prepare(&self, batch: &Batch, progress: &mut DeliveryProgress) -> VecDeque<KinesisRecord> {
        let (pending, stats) = records::build_records(&self.settings, batch, progress);
        if !progress.is_first_attempt() {
            return pending;
        }
        InvalidUtf8Replaced {
            events: stats.invalid_utf8,
        }
        .emit(&self.metrics, &self.component);
        if stats.random_keys > 0 {
            tracing::debug!(component_id = %self.component.id, events = stats.random_keys, "records without the partition_key field got a random partition key");
        }
        pending
    }

    fn sent(&self, records: u64, bytes: u64) {
        RequestSent {
            operation: "PutRecords",
            events: records,
            bytes,
            target: &self.settings.stream,
        }
        .emit(&self.metrics, &self.component);
    }

    /// One PutRecords call; the records accepted mark their events delivered.
    async fn put(&self, request: Vec<KinesisRecord>, progress: &mut DeliveryProgress) -> PutResult {
        let total_records = request.len() as u64;
        let total_bytes: u64 = request.iter().map(|r| r.size() as u64).sum();
        let entries = request
            .iter()
            .map(|r| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(r.data.to_vec()))
                    .partition_key(&r.partition_key)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .expect("data and partition key are always set");
        let sent = self
            .client
            .put_records()
            .stream_name(&self.settings.stream)
            .set_records(Some(entries))
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
        if out.failed_record_count().unwrap_or(0) == 0 && out.records().len() == request.len() {
            self.sent(total_records, total_bytes);
            progress.delivered(request.iter().map(|r| r.event));
            return PutResult::Accepted;
        }
        let results = out.records();
        let mut codes = BTreeMap::new();
        let (mut failed, mut failed_bytes) = (0usize, 0u64);
        for (i, record) in request.iter().enumerate() {
            // A missing entry cannot be told apart from a failure: resend (at-least-once).
            let code = match results.get(i) {
                Some(entry)
                    if entry.error_code().is_none() && entry.sequence_number().is_some() =>
                {
                    progress.delivered([record.event]);
                    continue;
                }
                Some(entry) => entry.error_code().unwrap_or("UnknownError"),
                None => "MissingResponseEntry",
            };
            *codes.entry(code.to_string()).or_insert(0) += 1;
            failed += 1;
            failed_bytes += record.size() as u64;
        }
        self.sent(total_records - failed as u64, total_bytes - failed_bytes);
        if failed == 0 {
            PutResult::Accepted
        } else {
            PutResult::PartlyFailed { failed, codes }
        }
    }

    fn failed(&self, failure: &SdkFailure) {
        RequestFailed {
            operation: "PutRecords",
            failure,
            target: &self.settings.stream,
        }
        .emit(&self.metrics, &self.component);
    }
}

impl Output for KinesisOutput {
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
                    RecordsFailed {
                        operation: "PutRecords",
                        codes: &codes,
                    }
                    .emit(&self.metrics, &self.component);
                    self.failed(&SdkFailure {
                        class: ErrorClass::Throttled,
                        code: codes.keys().next().cloned(),
                        message: format!("{failed} records failed: {codes:?}"),
                        status: Some(200),
                        retry_after: None,
                    });
                    for (code, n) in codes {
                        *partial_codes.entry(code).or_insert(0) += n;
                    }
                    refused += failed;
                }
                PutResult::Failed { request, failure } => {
                    self.failed(&failure);
                    if failure.class == ErrorClass::Throttled {
                        progress.throttled();
                    }
                    if failure.is_retryable() {
                        let left = request.len() + pending.len() + refused;
                        return Err(DeliveryError::Retryable {
                            reason: format!(
                                "Kinesis {} on stream {:?}: {failure} ({left} records of this delivery left)",
                                failure.class.reason(),
                                self.settings.stream
                            ),
                            after: failure.retry_after,
                        });
                    }
                    let detail = format!(
                        "stream {:?}: {failure}; check that the stream exists in region {:?}, is ACTIVE, and that its KMS key (if any) is usable",
                        self.settings.stream, self.settings.connection.region
                    );
                    let reason = if failure.class == ErrorClass::ResourceNotFound {
                        "stream_not_found"
                    } else {
                        "rejected_by_api"
                    };
                    progress.reject(request.iter().map(|r| r.event), reason, || detail);
                }
            }
        }
        if refused > 0 {
            return Err(DeliveryError::Retryable {
                reason: format!(
                    "Kinesis refused {refused} records of this delivery one by one ({partial_codes:?}); only those are sent again"
                ),
                after: None,
            });
        }
        Ok(())
    }
}

impl crate::output::OutputComponent for KinesisConfig {
    fn default_batch_timeout(&self) -> std::time::Duration {
        crate::output::window::PER_REQUEST_BATCH_TIMEOUT
    }

    /// Each problem at the key it names first (`outputs[1].aggregation: …`), so a classic
    /// config reports it at that key's `file:line`.
    fn validate(&self, key: &str, _id: &str, problems: &mut Vec<String>) {
        let Err(text) = self.validate() else {
            return;
        };
        problems.extend(text.lines().map(|line| {
            match line.strip_prefix('`').and_then(|rest| rest.split_once('`')) {
                Some((name, _)) => format!("{key}.{name}: {line}"),
                None => format!("{key} (kinesis_streams): {line}"),
            }
        }));
    }

    fn build<'a>(
        &'a self,
        cx: crate::output::OutputContext<'a>,
        task: crate::output::OutputTask,
    ) -> crate::output::component::BuildFuture<'a> {
        let aws = crate::output::aws::AwsOverrides::default();
        task.run_built(
            async move { KinesisOutput::build(self, cx.component, cx.metrics, &aws).await },
        )
    }
}
