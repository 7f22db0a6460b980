//! `kinesis_streams` (Fluent Bit's C plugin; the Go `kinesis` maps here too): events to an
//! Amazon Kinesis data stream with PutRecords.
//!
//! The pending events of a delivery become records ([`records`]: one per event, with its
//! partition key), sent by the loop the record APIs share ([`put_records`]). Every record
//! Kinesis accepted marks its event delivered in the runner's [`DeliveryProgress`], so a retry
//! sends only the rest: a request that fails as a whole is sent again later; of one that
//! succeeds with `FailedRecordCount > 0` only the records whose entry has an `ErrorCode`
//! (`ProvisionedThroughputExceededException`, `InternalFailure`) are, each counted in
//! `aws_records_failed_total`. A request Kinesis refuses for good (stream not found, KMS key
//! disabled, access denied to the key) rejects its events, which go to the dead letters.

pub mod config;
pub mod records;

pub use config::{KinesisConfig, KinesisSettings};

use crate::event::Batch;
use crate::ops::metrics::{Component, Metrics};
use crate::output::aws::put_records::{self, PutRecord, RecordApi, Telemetry};
use crate::output::aws::telemetry::{EventsTruncated, InvalidUtf8Replaced};
use crate::output::aws::{AwsOverrides, ErrorClass, SdkFailure};
use crate::output::{DeliveryError, DeliveryProgress, Output};
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_smithy_types::Blob;
use records::KinesisRecord;
use std::collections::VecDeque;
use std::sync::Arc;

/// Building the output failed.
#[derive(Debug, thiserror::Error)]
pub enum KinesisError {
    /// The options are wrong.
    #[error("{0}")]
    Config(String),
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
        EventsTruncated {
            count: stats.truncated,
            limit: records::MAX_RECORD_BYTES,
        }
        .emit(&self.metrics, &self.component);
        if stats.random_keys > 0 {
            tracing::debug!(component_id = %self.component.id, events = stats.random_keys, "records without the partition_key field got a random partition key");
        }
        pending
    }
}

impl PutRecord for KinesisRecord {
    fn events(&self) -> &[usize] {
        std::slice::from_ref(&self.event)
    }

    fn size(&self) -> usize {
        KinesisRecord::size(self)
    }
}

impl RecordApi for KinesisOutput {
    type Record = KinesisRecord;
    const OPERATION: &'static str = "PutRecords";
    const SERVICE: &'static str = "Kinesis";
    const KIND: &'static str = "stream";
    const MAX_RECORDS: usize = records::MAX_RECORDS_PER_REQUEST;
    const MAX_BYTES: usize = records::MAX_REQUEST_BYTES;

    fn target(&self) -> &str {
        &self.settings.stream
    }

    fn refused(&self, failure: &SdkFailure) -> (&'static str, String) {
        let reason = if failure.class == ErrorClass::ResourceNotFound {
            "stream_not_found"
        } else {
            "rejected_by_api"
        };
        let detail = format!(
            "stream {:?}: {failure}; check that the stream exists in region {:?}, is ACTIVE, and that its KMS key (if any) is usable",
            self.settings.stream, self.settings.connection.region
        );
        (reason, detail)
    }

    async fn call(&self, request: &[KinesisRecord]) -> Result<Vec<Option<String>>, SdkFailure> {
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
        let out = self
            .client
            .put_records()
            .stream_name(&self.settings.stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| SdkFailure::classify(&e))?;
        if out.failed_record_count().unwrap_or(0) == 0 && out.records().len() == request.len() {
            return Ok(vec![None; request.len()]);
        }
        Ok(out
            .records()
            .iter()
            .map(
                |entry| match (entry.error_code(), entry.sequence_number()) {
                    (None, Some(_)) => None,
                    (code, _) => Some(code.unwrap_or("UnknownError").to_string()),
                },
            )
            .collect())
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
        let pending = self.prepare(batch, progress);
        let telemetry = Telemetry {
            metrics: &self.metrics,
            component: &self.component,
        };
        put_records::deliver(&*self, pending, progress, telemetry).await
    }
}

impl crate::output::OutputComponent for KinesisConfig {
    fn default_batch_timeout(&self) -> std::time::Duration {
        crate::output::window::PER_REQUEST_BATCH_TIMEOUT
    }

    fn validate(&self, key: &str, _id: &str, problems: &mut Vec<String>) {
        crate::output::aws::report_problems(
            key,
            "kinesis_streams",
            self.validate().map(drop),
            problems,
        );
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
