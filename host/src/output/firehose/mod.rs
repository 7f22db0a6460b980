//! `firehose` (also `kinesis_firehose`): events to an Amazon Data Firehose delivery stream
//! with PutRecordBatch.
//!
//! The pending events of a delivery become records ([`records`]), sent by the loop the record
//! APIs share ([`put_records`]): every record Firehose accepted marks its events delivered in
//! the runner's [`DeliveryProgress`], so a retry sends only the rest: a request that fails as a
//! whole is sent again later; of one that succeeds with `FailedPutCount > 0` only the records
//! whose entry has an `ErrorCode` are — records Firehose accepted are never sent again (Fluent
//! Bit's C plugin resends the whole chunk, fluent/fluent-bit#6369).

pub mod config;
pub mod records;

pub use config::{FirehoseConfig, FirehoseSettings};

use crate::event::Batch;
use crate::ops::metrics::{Component, Metrics};
use crate::output::aws::put_records::{self, PutRecord, RecordApi, Telemetry};
use crate::output::aws::telemetry::{EventsTruncated, InvalidUtf8Replaced};
use crate::output::aws::{AwsOverrides, ErrorClass, SdkFailure};
use crate::output::{DeliveryError, DeliveryProgress, Output};
use aws_sdk_firehose::types::Record;
use aws_smithy_types::Blob;
use records::FirehoseRecord;
use std::sync::Arc;

/// Building the output failed.
#[derive(Debug, thiserror::Error)]
pub enum FirehoseError {
    /// The options are wrong.
    #[error("{0}")]
    Config(String),
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
}

impl PutRecord for FirehoseRecord {
    fn events(&self) -> &[usize] {
        &self.events
    }

    fn size(&self) -> usize {
        self.data.len()
    }
}

impl RecordApi for FirehoseOutput {
    type Record = FirehoseRecord;
    const OPERATION: &'static str = "PutRecordBatch";
    const SERVICE: &'static str = "Firehose";
    const KIND: &'static str = "delivery stream";
    const MAX_RECORDS: usize = records::MAX_RECORDS_PER_REQUEST;
    const MAX_BYTES: usize = records::MAX_REQUEST_BYTES;

    fn target(&self) -> &str {
        &self.settings.delivery_stream
    }

    fn refused(&self, failure: &SdkFailure) -> (&'static str, String) {
        let reason = if failure.class == ErrorClass::ResourceNotFound {
            "delivery_stream_not_found"
        } else {
            "rejected_by_api"
        };
        let detail = format!(
            "delivery stream {:?}: {failure}; check that the stream exists in region {:?} and accepts direct PUT",
            self.settings.delivery_stream, self.settings.connection.region
        );
        (reason, detail)
    }

    async fn call(&self, request: &[FirehoseRecord]) -> Result<Vec<Option<String>>, SdkFailure> {
        let records = request
            .iter()
            .map(|r| Record::builder().data(Blob::new(r.data.to_vec())).build())
            .collect::<Result<Vec<_>, _>>()
            .expect("data is always set");
        let out = self
            .client
            .put_record_batch()
            .delivery_stream_name(&self.settings.delivery_stream)
            .set_records(Some(records))
            .send()
            .await
            .map_err(|e| SdkFailure::classify(&e))?;
        if out.failed_put_count() == 0 {
            return Ok(vec![None; request.len()]);
        }
        Ok(out
            .request_responses()
            .iter()
            .map(|entry| match (entry.error_code(), entry.record_id()) {
                (None, Some(_)) => None,
                (code, _) => Some(code.unwrap_or("UnknownError").to_string()),
            })
            .collect())
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
        let pending = self.prepare(batch, progress);
        let telemetry = Telemetry {
            metrics: &self.metrics,
            component: &self.component,
        };
        put_records::deliver(&*self, pending, progress, telemetry).await
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
