//! `cloudwatch_logs` (also `cloudwatch`): events to CloudWatch Logs with PutLogEvents.
//!
//! Per batch: every event is rendered (whole record as JSON, or `log_key`), given its group
//! and stream from the templates, capped at `max_event_size` (truncated, counted), and dropped
//! and rejected, each under its own reason, before sending when the API would reject it (outside
//! [now − 14 d, now + 2 h], empty, no `log_key`). Each stream's events are sorted and split at
//! the API limits ([`batcher`]). Calls go out one by one and each accepted call marks its events
//! delivered in the runner's [`DeliveryProgress`], so a retry renders and sends only the events
//! not delivered yet. `rejectedLogEventsInfo` of an accepted call rejects those events under the
//! API's reason. Groups and streams are created on first use (when allowed) and remembered; a
//! `ResourceNotFoundException` forgets them and creates them again.
//!
//! A failure of the whole output (throttling, 5xx, network, credentials) stops the attempt: the
//! runner retries it. A failure of one destination — access denied for one group, a group or
//! stream that does not exist and may not be created — only marks that stream's events
//! ([`DeliveryProgress::destination_failed`]); the other streams are still sent, and the runner
//! sets the failing stream's events aside with their own retry schedule.

pub mod batcher;
pub mod config;
pub mod service;
pub mod template;

pub use config::{CloudWatchLogsConfig, CloudWatchSettings};

use crate::event::{Batch, now_ns};
use crate::ops::metrics::{Component, Metrics};
use crate::output::aws::telemetry::{
    EventsTruncated, InvalidUtf8Replaced, RequestFailed, RequestSent,
};
use crate::output::aws::{AwsOverrides, EcsMetadata, ErrorClass, SdkFailure};
use crate::output::{DeliveryError, DeliveryProgress, Output};
use batcher::{LogEvent, PutBatch, TimeCheck};
use config::{NameChoice, StreamNaming};
use service::{CloudWatchService, Rejected};
use std::collections::HashSet;
use std::sync::Arc;
use template::{NameKind, TemplateContext};

/// Groups and streams remembered as existing; past this the memory is cleared (and streams are
/// created again — CreateLogStream on an existing stream is harmless).
pub const MAX_KNOWN_STREAMS: usize = 10_000;

/// Building the output failed.
#[derive(Debug, thiserror::Error)]
pub enum CloudWatchError {
    /// The options are wrong.
    #[error("{0}")]
    Config(String),
}

/// Why one PutLogEvents batch was not delivered.
enum BatchFailure {
    /// The whole output fails (throttling, 5xx, network, credentials): try again later.
    Retry(SdkFailure),
    /// This group or stream fails on its own: its events are set aside, the others go on.
    Destination(String),
    /// Give it up, counted under `reason`.
    Drop {
        reason: &'static str,
        detail: String,
    },
}

/// The `cloudwatch_logs` output.
pub struct CloudWatchLogsOutput {
    settings: Arc<CloudWatchSettings>,
    service: CloudWatchService,
    component: Component,
    metrics: Arc<Metrics>,
    ecs: EcsMetadata,
    uuid: String,
    known_streams: HashSet<(String, String)>,
}

impl CloudWatchLogsOutput {
    /// Build from the config: validate, then create the client (no network I/O yet).
    pub async fn build(
        config: &CloudWatchLogsConfig,
        component: Component,
        metrics: Arc<Metrics>,
        overrides: &AwsOverrides,
    ) -> Result<Self, CloudWatchError> {
        let settings = config.validate().map_err(CloudWatchError::Config)?;
        let sdk = settings
            .connection
            .sdk_config(overrides)
            .await
            .map_err(|e| CloudWatchError::Config(e.to_string()))?;
        for option in &settings.ignored_options {
            tracing::info!(component_id = %component.id, option, "option accepted for Fluent Bit compatibility; it has no effect here");
        }
        let service = CloudWatchService::new(aws_sdk_cloudwatchlogs::Client::new(&sdk), &settings);
        Ok(CloudWatchLogsOutput {
            settings: Arc::new(settings),
            service,
            component,
            metrics,
            ecs: EcsMetadata::from_vars(crate::ecs::var),
            uuid: ksuid_like(),
            known_streams: HashSet::new(),
        })
    }

    /// Use `ecs` for the `$(ecs_*)` variables (instead of the environment).
    pub fn with_ecs_metadata(mut self, ecs: EcsMetadata) -> Self {
        self.ecs = ecs;
        self
    }

    /// Render, route, filter and split the pending events of `batch` into PutLogEvents calls;
    /// reject in `progress` those the API would refuse.
    fn prepare(&self, batch: &Batch, progress: &mut DeliveryProgress) -> Vec<PutBatch> {
        let tag = batch.tag_lossy();
        let ctx = TemplateContext {
            tag: &tag,
            ecs: &self.ecs,
            uuid: &self.uuid,
        };
        let settings = &self.settings;
        let per_event_group = settings.group.templates.iter().any(|t| t.uses_record());
        let per_event_stream = match &settings.stream {
            StreamNaming::Templates(c) => c.templates.iter().any(|t| t.uses_record()),
            StreamNaming::Prefix(_) => false,
        };
        let fixed_group =
            (!per_event_group).then(|| choose(&settings.group, NameKind::Group, &ctx, &[]));
        let fixed_stream = (!per_event_stream).then(|| stream_name(&settings.stream, &ctx, &[]));
        let now_ms = (now_ns() / 1_000_000) as i64;
        let mut streams: Vec<((String, String), Vec<LogEvent>)> = Vec::new();
        let (mut truncated, mut lossy) = (0u64, 0u64);
        let mut message = String::new();
        for (index, event) in batch.events.iter().enumerate() {
            if !progress.is_pending(index) {
                continue;
            }
            let timestamp_ms = (event.time_ns / 1_000_000) as i64;
            match batcher::check_time(timestamp_ms, now_ms) {
                TimeCheck::Accepted => {}
                TimeCheck::TooOld => {
                    progress.reject([index], "too_old", || {
                        "older than 14 days: CloudWatch Logs would reject them".into()
                    });
                    continue;
                }
                TimeCheck::TooNew => {
                    progress.reject([index], "too_new", || {
                        "more than 2 hours in the future: CloudWatch Logs would reject them; check the sender's clock".into()
                    });
                    continue;
                }
            }
            message.clear();
            match settings.renderer.render(event, &mut message) {
                Ok(r) => lossy += u64::from(r.invalid_utf8),
                Err(e) => {
                    progress.reject([index], e.reason(), || e.to_string());
                    continue;
                }
            }
            if message.is_empty() {
                progress.reject([index], "empty_message", || {
                    "CloudWatch Logs does not accept empty messages".into()
                });
                continue;
            }
            truncated += u64::from(batcher::truncate_message(
                &mut message,
                settings.max_event_size,
            ));
            let group = fixed_group
                .clone()
                .unwrap_or_else(|| choose(&settings.group, NameKind::Group, &ctx, &event.body));
            let stream = fixed_stream
                .clone()
                .unwrap_or_else(|| stream_name(&settings.stream, &ctx, &event.body));
            let key = (group, stream);
            let log_event = LogEvent {
                index,
                timestamp_ms,
                message: message.clone(),
            };
            match streams.iter_mut().find(|(k, _)| *k == key) {
                Some((_, events)) => events.push(log_event),
                None => streams.push((key, vec![log_event])),
            }
        }
        if progress.is_first_attempt() {
            EventsTruncated {
                count: truncated,
                limit: settings.max_event_size,
            }
            .emit(&self.metrics, &self.component);
            InvalidUtf8Replaced { events: lossy }.emit(&self.metrics, &self.component);
        }
        streams
            .into_iter()
            .flat_map(|((group, stream), events)| batcher::split_stream(&group, &stream, events))
            .collect()
    }

    /// Deliver one PutLogEvents batch, creating its group and stream as needed.
    async fn send(&mut self, batch: &PutBatch) -> Result<Rejected, BatchFailure> {
        let key = (batch.group.clone(), batch.stream.clone());
        if self.settings.auto_create_stream && !self.known_streams.contains(&key) {
            self.ensure_stream(&batch.group, &batch.stream).await?;
        }
        let failure = match self.service.put(batch).await {
            Ok(rejected) => {
                self.sent(batch);
                self.remember(key);
                return Ok(rejected);
            }
            Err(f) => f,
        };
        self.report("PutLogEvents", &failure, batch);
        if failure.class != ErrorClass::ResourceNotFound {
            return Err(classify(failure, "rejected_by_api"));
        }
        self.known_streams.remove(&key);
        if !self.settings.auto_create_stream {
            return Err(BatchFailure::Destination(format!(
                "{failure}: log stream not found; set auto_create_stream = true or create the stream"
            )));
        }
        self.ensure_stream(&batch.group, &batch.stream).await?;
        match self.service.put(batch).await {
            Ok(rejected) => {
                self.sent(batch);
                self.remember(key);
                Ok(rejected)
            }
            Err(f) => {
                self.report("PutLogEvents", &f, batch);
                // Just created: a not-found now is the service catching up.
                Err(if f.class == ErrorClass::ResourceNotFound {
                    BatchFailure::Retry(f)
                } else {
                    classify(f, "rejected_by_api")
                })
            }
        }
    }

    /// CreateLogStream, and CreateLogGroup first when the group is missing and that is allowed.
    async fn ensure_stream(&mut self, group: &str, stream: &str) -> Result<(), BatchFailure> {
        let target = format!("group {group:?} stream {stream:?}");
        let failure = match self.service.create_stream(group, stream).await {
            Ok(()) => {
                self.remember((group.to_string(), stream.to_string()));
                return Ok(());
            }
            Err(f) => f,
        };
        RequestFailed {
            operation: "CreateLogStream",
            failure: &failure,
            target: &target,
        }
        .emit(&self.metrics, &self.component);
        if failure.class != ErrorClass::ResourceNotFound {
            return Err(classify(failure, "create_log_stream_failed"));
        }
        if !self.settings.auto_create_group {
            return Err(BatchFailure::Destination(
                "log group does not exist; set auto_create_group = true or create the group".into(),
            ));
        }
        if let Err(f) = self.service.create_group(group).await {
            RequestFailed {
                operation: "CreateLogGroup",
                failure: &f,
                target: &target,
            }
            .emit(&self.metrics, &self.component);
            return Err(classify(f, "create_log_group_failed"));
        }
        match self.service.create_stream(group, stream).await {
            Ok(()) => {
                self.remember((group.to_string(), stream.to_string()));
                Ok(())
            }
            Err(f) => {
                RequestFailed {
                    operation: "CreateLogStream",
                    failure: &f,
                    target: &target,
                }
                .emit(&self.metrics, &self.component);
                Err(if f.class == ErrorClass::ResourceNotFound {
                    BatchFailure::Retry(f)
                } else {
                    classify(f, "create_log_stream_failed")
                })
            }
        }
    }

    fn remember(&mut self, key: (String, String)) {
        if self.known_streams.len() >= MAX_KNOWN_STREAMS {
            self.known_streams.clear();
        }
        self.known_streams.insert(key);
    }

    fn sent(&self, batch: &PutBatch) {
        let target = format!("group {:?} stream {:?}", batch.group, batch.stream);
        RequestSent {
            operation: "PutLogEvents",
            events: batch.events.len() as u64,
            bytes: batch.bytes as u64,
            target: &target,
        }
        .emit(&self.metrics, &self.component);
    }

    fn report(&self, operation: &'static str, failure: &SdkFailure, batch: &PutBatch) {
        let target = format!(
            "group {:?} stream {:?} ({} events)",
            batch.group,
            batch.stream,
            batch.events.len()
        );
        RequestFailed {
            operation,
            failure,
            target: &target,
        }
        .emit(&self.metrics, &self.component);
    }
}

/// Reject in `progress` what the API rejected inside an accepted call.
fn reject_refused(progress: &mut DeliveryProgress, rejected: &Rejected, batch: &PutBatch) {
    let at = |range: &std::ops::Range<usize>| {
        batch.events[range.clone()]
            .iter()
            .map(|e| e.index)
            .collect::<Vec<_>>()
    };
    let place = || format!("group {:?} stream {:?}", batch.group, batch.stream);
    progress.reject(at(&rejected.too_old), "rejected_too_old", || {
        format!(
            "{}: CloudWatch Logs rejected events older than 14 days (tooOldLogEventEndIndex)",
            place()
        )
    });
    progress.reject(at(&rejected.expired), "rejected_expired", || {
        format!("{}: CloudWatch Logs rejected events older than the group's retention (expiredLogEventEndIndex)", place())
    });
    progress.reject(at(&rejected.too_new), "rejected_too_new", || {
        format!("{}: CloudWatch Logs rejected events more than 2 hours ahead (tooNewLogEventStartIndex)", place())
    });
}

/// The key of a group and stream for [`DeliveryProgress::destination_failed`].
fn destination(group: &str, stream: &str) -> String {
    format!("group {group:?} stream {stream:?}")
}

impl Output for CloudWatchLogsOutput {
    fn request_limits(&self) -> crate::output::RequestLimits {
        crate::output::RequestLimits {
            events: batcher::MAX_EVENTS_PER_BATCH,
            body_bytes: batcher::MAX_BATCH_BYTES,
        }
    }

    async fn deliver(
        &mut self,
        batch: &Batch,
        progress: &mut DeliveryProgress,
    ) -> Result<(), DeliveryError> {
        let puts = self.prepare(batch, progress);
        let total = puts.len();
        for (n, put) in puts.into_iter().enumerate() {
            let indexes = || put.events.iter().map(|e| e.index);
            let dest = destination(&put.group, &put.stream);
            if progress.is_blocked(&dest) {
                progress.destination_failed(indexes(), &dest, || {
                    "waiting behind earlier events of this stream".into()
                });
                continue;
            }
            match self.send(&put).await {
                Ok(rejected) => {
                    reject_refused(progress, &rejected, &put);
                    progress.delivered(indexes());
                }
                Err(BatchFailure::Drop { reason, detail }) => {
                    progress.reject(indexes(), reason, || format!("{dest}: {detail}"));
                }
                Err(BatchFailure::Destination(error)) => {
                    progress.destination_failed(indexes(), &dest, || error);
                }
                Err(BatchFailure::Retry(failure)) => {
                    if failure.class == ErrorClass::Throttled {
                        progress.throttled();
                    }
                    return Err(DeliveryError::Retryable {
                        reason: format!(
                            "CloudWatch Logs {} for {dest}: {failure} ({} of this delivery's PutLogEvents calls left)",
                            failure.class.reason(),
                            total - n
                        ),
                        after: failure.retry_after,
                    });
                }
            }
        }
        match progress.failing_destinations() {
            [] => Ok(()),
            failing => Err(DeliveryError::Retryable {
                reason: format!(
                    "{} log stream(s) failing: {}",
                    failing.len(),
                    failing
                        .iter()
                        .map(|(d, e)| format!("{d}: {e}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                after: None,
            }),
        }
    }
}

/// What a failed call means for its events: access denied concerns the one group (IAM policies
/// name log groups), anything else retryable concerns the whole output.
fn classify(failure: SdkFailure, permanent_reason: &'static str) -> BatchFailure {
    if matches!(
        failure.code.as_deref(),
        Some("AccessDeniedException" | "AccessDenied")
    ) {
        BatchFailure::Destination(failure.to_string())
    } else if failure.is_retryable() {
        BatchFailure::Retry(failure)
    } else {
        BatchFailure::Drop {
            reason: permanent_reason,
            detail: failure.to_string(),
        }
    }
}

/// The first template that renders, else the default.
fn choose(choice: &NameChoice, kind: NameKind, ctx: &TemplateContext<'_>, record: &[u8]) -> String {
    for t in &choice.templates {
        match t.render(kind, ctx, record) {
            Ok(name) => return name,
            Err(e) => tracing::trace!(error = %e, "name template failed; trying the next"),
        }
    }
    template::sanitize(kind, &choice.default)
}

fn stream_name(naming: &StreamNaming, ctx: &TemplateContext<'_>, record: &[u8]) -> String {
    match naming {
        StreamNaming::Prefix(prefix) => {
            template::sanitize(NameKind::Stream, &format!("{prefix}{}", ctx.tag))
        }
        StreamNaming::Templates(choice) => choose(choice, NameKind::Stream, ctx, record),
    }
}

/// `$(uuid)`: one id per output instance, fixed until restart, shaped like the Go plugin's
/// KSUID: 27 base62 characters, time-ordered (6 characters of seconds) then random.
fn ksuid_like() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut secs = now_ns() / 1_000_000_000;
    let mut text = [b'0'; 27];
    for slot in text[..6].iter_mut().rev() {
        *slot = ALPHABET[(secs % 62) as usize];
        secs /= 62;
    }
    for slot in &mut text[6..] {
        *slot = ALPHABET[fastrand::usize(..ALPHABET.len())];
    }
    String::from_utf8(text.to_vec()).expect("base62 is ASCII")
}

impl crate::output::OutputComponent for CloudWatchLogsConfig {
    fn default_batch_timeout(&self) -> std::time::Duration {
        crate::output::window::PER_REQUEST_BATCH_TIMEOUT
    }

    fn validate(&self, key: &str, _id: &str, problems: &mut Vec<String>) {
        crate::output::aws::report_problems(
            key,
            "cloudwatch_logs",
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
        task.run_built(async move {
            CloudWatchLogsOutput::build(self, cx.component, cx.metrics, &aws).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_27_base62_characters() {
        let id = ksuid_like();
        assert_eq!(id.len(), 27);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(id, ksuid_like());
    }
}
