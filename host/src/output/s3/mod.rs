//! `s3`: events to S3 objects of newline-delimited JSON (or `log_key` values), optionally
//! gzipped, as Fluent Bit's `s3` output writes them.
//!
//! `deliver` renders a batch, appends it to the tag's open object in `store_dir` and fsyncs:
//! from then on the data is durable, as with Fluent Bit (which also reports success once the
//! data is in its store). An object is closed as soon as the next line would take it past
//! `total_file_size` (or past 10,000 parts of `upload_chunk_size`), so no object is larger —
//! only a single line larger than that makes an object of its own. The uploader ([`upload`])
//! uploads parts of exactly `upload_chunk_size` (the last one smaller) and completes objects when
//! closed or after `upload_timeout`, on its own timer. With compression an object is compressed
//! as one stream once it is closed, and its parts are slices of that stream
//! (`total_file_size` counts the bytes before compression, as Fluent Bit's does). At shutdown
//! every object is completed; what cannot be stays in `store_dir` for the next start.

pub mod config;
pub mod key;
pub mod store;
pub mod upload;

pub use config::{S3Config, S3Settings};

use crate::event::{Batch, now_ns};
use crate::ops::metrics::{Component, Metrics};
use crate::output::aws::AwsOverrides;
use crate::output::aws::telemetry::InvalidUtf8Replaced;
use crate::output::{DeliveryError, DeliveryProgress, Output};
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use key::KeyInputs;
use std::sync::Arc;
use store::{Store, StoreError};
use upload::{PassReport, Shared, Uploader};

/// Building the output failed.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The options are wrong.
    #[error("{0}")]
    Config(String),
    /// `store_dir` cannot be used.
    #[error("store_dir: {0}; make the directory writable or set store_dir to one that is")]
    Store(#[from] StoreError),
}

/// The `s3` output.
pub struct S3Output {
    settings: Arc<S3Settings>,
    shared: Arc<Shared>,
    uploader: Arc<Uploader>,
    task: tokio::task::JoinHandle<()>,
    metrics: Arc<Metrics>,
    component: Component,
}

impl S3Output {
    /// Build from the config: validate, open `store_dir` (recovering what a previous run left),
    /// create the client and start the upload timer.
    pub async fn build(
        config: &S3Config,
        component: Component,
        metrics: Arc<Metrics>,
        overrides: &AwsOverrides,
    ) -> Result<Self, S3Error> {
        let settings = Arc::new(config.validate(&component.id).map_err(S3Error::Config)?);
        for note in &settings.notes {
            tracing::info!(component_id = %component.id, "{note}");
        }
        let sdk = settings
            .connection
            .sdk_config(overrides)
            .await
            .map_err(|e| S3Error::Config(e.to_string()))?;
        let s3_config = aws_sdk_s3::config::Builder::from(&sdk)
            // Custom endpoints (MinIO, LocalStack, moto) rarely resolve bucket subdomains.
            .force_path_style(settings.connection.endpoint.is_some())
            // Plain Content-Length bodies work with every S3-compatible server.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        let store = Store::open(&settings.store_dir, settings.store_dir_limit_size)?;
        let recovered = store.objects().len();
        if recovered > 0 {
            tracing::info!(component_id = %component.id, objects = recovered, dir = %settings.store_dir.display(), "completing S3 objects left by the previous run");
        }
        let shared = Arc::new(Shared::new(store));
        let uploader = Arc::new(Uploader::new(
            aws_sdk_s3::Client::from_conf(s3_config),
            settings.clone(),
            component.clone(),
            metrics.clone(),
        ));
        let task = tokio::spawn(uploader.clone().run(shared.clone()));
        if recovered > 0 {
            shared.wake.notify_one();
        }
        Ok(S3Output {
            settings,
            shared,
            uploader,
            task,
            metrics,
            component,
        })
    }

    /// One upload pass now (tests, and what the timer does every second).
    pub async fn upload_pass(&self, finish: bool) -> PassReport {
        self.uploader.pass(&self.shared, finish).await
    }

    /// The directory this output stores data in.
    pub fn store_dir(&self) -> &std::path::Path {
        &self.settings.store_dir
    }
}

impl Drop for S3Output {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Output for S3Output {
    async fn deliver(
        &mut self,
        batch: &Batch,
        progress: &mut DeliveryProgress,
    ) -> Result<(), DeliveryError> {
        if batch.events.is_empty() {
            return Ok(());
        }
        let mut text = String::with_capacity(batch.byte_size() * 2);
        let mut lossy = 0u64;
        // Where each line ends in `text`, and its event's time.
        let mut ends = Vec::with_capacity(batch.events.len());
        let mut times = Vec::with_capacity(batch.events.len());
        for (index, event) in batch.events.iter().enumerate() {
            if !progress.is_pending(index) {
                continue;
            }
            match self.settings.renderer.render(event, &mut text) {
                Ok(r) => {
                    lossy += u64::from(r.invalid_utf8);
                    text.push('\n');
                    ends.push(text.len());
                    times.push(event.time_ns);
                }
                Err(e) => progress.reject([index], e.reason(), || e.to_string()),
            }
        }
        if progress.is_first_attempt() {
            InvalidUtf8Replaced { events: lossy }.emit(&self.metrics, &self.component);
        }
        if ends.is_empty() {
            return Ok(());
        }
        let tag = batch.tag_lossy();
        let settings = &self.settings;
        let stored = {
            let mut store = self.shared.store.lock().expect("store lock");
            store_lines(&mut store, settings, &tag, &text, &ends, &times)
        };
        match stored {
            Ok(wake) => {
                if wake {
                    self.shared.wake.notify_one();
                }
                Ok(())
            }
            Err(e) => {
                self.metrics.error(&self.component, "store_failed");
                Err(DeliveryError::Retryable {
                    reason: format!("cannot store the batch for S3 upload: {e}"),
                    after: None,
                })
            }
        }
    }

    async fn flush(&mut self) -> Result<(), DeliveryError> {
        let report = self.upload_pass(true).await;
        if report.remaining == 0 {
            return Ok(());
        }
        Err(DeliveryError::Retryable {
            reason: format!(
                "{} S3 object(s) not uploaded at shutdown; they stay in {} and are uploaded after the next start",
                report.remaining,
                self.settings.store_dir.display()
            ),
            after: None,
        })
    }
}
/// Append the lines of `text` (ending at `ends`, of events at `times`) to the open objects of
/// `tag`, closing an object when the next line would take it past its limit; a new object's key
/// has the time of its first line. Returns whether the uploader has work now (a part or an
/// object closed).
fn store_lines(
    store: &mut Store,
    settings: &S3Settings,
    tag: &str,
    text: &str,
    ends: &[usize],
    times: &[u64],
) -> Result<bool, StoreError> {
    let limit = settings.object_limit();
    let part_bytes = settings.part_file_bytes();
    let mut wake = false;
    let mut start = 0;
    let mut line = 0;
    while line < ends.len() {
        let open = store.open_bytes(tag);
        let room = limit.saturating_sub(open);
        // The lines that fit; at least one in an empty object.
        let mut end = line;
        while end < ends.len() && (ends[end] - start) as u64 <= room {
            end += 1;
        }
        if end == line {
            if open > 0 {
                store.seal_open(tag)?;
                wake = true;
                continue;
            }
            end = line + 1;
        }
        let appended = store.append(
            tag,
            &text.as_bytes()[start..ends[end - 1]],
            (end - line) as u64,
            now_ns(),
            settings.key_format.uses_index(),
            part_bytes,
            |index| {
                settings.key_format.render(&KeyInputs {
                    tag,
                    time_ns: times[line],
                    index,
                    put_object: settings.use_put_object,
                    static_file_path: settings.static_file_path,
                })
            },
        )?;
        wake |= part_bytes != u64::MAX && appended.object_bytes >= part_bytes;
        if appended.object_bytes >= limit {
            store.seal_open(tag)?;
            wake = true;
        }
        start = ends[end - 1];
        line = end;
    }
    Ok(wake)
}

impl crate::output::OutputComponent for S3Config {
    fn validate(&self, key: &str, id: &str, problems: &mut Vec<String>) {
        crate::output::aws::report_problems(key, "s3", self.validate(id).map(drop), problems);
    }

    fn build<'a>(
        &'a self,
        cx: crate::output::OutputContext<'a>,
        task: crate::output::OutputTask,
    ) -> crate::output::component::BuildFuture<'a> {
        let aws = crate::output::aws::AwsOverrides::default();
        task.run_built(async move { S3Output::build(self, cx.component, cx.metrics, &aws).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> S3Settings {
        toml::from_str::<S3Config>(text)
            .unwrap()
            .validate("s3")
            .unwrap()
    }

    /// `lines` of these lengths (newline included), as `deliver` hands them over.
    fn text_of(lengths: &[usize]) -> (String, Vec<usize>) {
        let mut text = String::new();
        let mut ends = Vec::new();
        for (i, n) in lengths.iter().enumerate() {
            let c = char::from(b'a' + i as u8);
            text.extend(std::iter::repeat_n(c, n - 1));
            text.push('\n');
            ends.push(text.len());
        }
        (text, ends)
    }

    #[test]
    fn objects_close_before_the_line_that_would_pass_total_file_size() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(&format!(
            "bucket = \"b\"\ntotal_file_size = \"1M\"\nstore_dir = \"{}\"\ns3_key_format = \"/%s/$INDEX\"\n",
            dir.path().display()
        ));
        let mut store = Store::open(&s.store_dir, 0).unwrap();
        let mib = 1 << 20;
        // Two that fit together exactly, one that does not fit with them, one larger than the
        // limit (an object of its own), a small one.
        let (text, ends) = text_of(&[mib / 2, mib / 2, 10, mib + 5, 7]);
        let times = [
            1_000_000_000,
            2_000_000_000,
            3_000_000_000,
            4_000_000_000,
            5_000_000_000,
        ];
        assert!(store_lines(&mut store, &s, "app", &text, &ends, &times).unwrap());
        let objects: Vec<(u64, u64, String, bool)> = store
            .objects()
            .values()
            .map(|o| {
                (
                    o.meta.bytes,
                    o.meta.events,
                    o.meta.key.clone(),
                    o.meta.sealed,
                )
            })
            .collect();
        assert_eq!(
            objects,
            vec![
                (mib as u64, 2, "1/1".into(), true),
                (10, 1, "3/2".into(), true),
                (mib as u64 + 5, 1, "4/3".into(), true),
                (7, 1, "5/4".into(), false),
            ],
            "(bytes, events, key with the time of its first line, closed)"
        );
    }
}
