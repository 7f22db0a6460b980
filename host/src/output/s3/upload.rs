//! Moving objects from the store to S3, on the output's own timer (objects complete when
//! `deliver` closed them at `total_file_size`, or after `upload_timeout`, not only when events
//! arrive): PutObject for small objects and `use_put_object`; otherwise CreateMultipartUpload,
//! one UploadPart per part of exactly `upload_chunk_size` (the last one may be smaller),
//! CompleteMultipartUpload. Without compression the parts are the store's part files, uploaded
//! as soon as each is full; with compression the closed object is compressed as one stream and
//! the parts are slices of it. Every accepted part is recorded in the store before its file is
//! deleted, so a restart resumes where S3 left off. An object that keeps failing is retried with
//! backoff and jitter up to `upload_attempts` attempts; then its multipart upload is aborted, its
//! events are counted as dropped and its files removed or, with `retry_exhausted_action =
//! "quarantine"`, moved to `store_dir/quarantine`.

use super::config::{Compression, ExhaustedAction, MAX_PARTS, S3Settings};
use super::store::{Store, StoreError};
use crate::event::now_ns;
use crate::ops::metrics::{Component, Metrics};
use crate::output::aws::telemetry::{EventsDropped, RequestFailed, RequestSent};
use crate::output::aws::{ErrorClass, SdkFailure};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ObjectCannedAcl, StorageClass};
use base64::Engine as _;
use md5::Digest as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// First delay after a failed upload attempt.
pub const RETRY_BASE: Duration = Duration::from_secs(1);
/// Longest delay between upload attempts of one object.
pub const RETRY_CAP: Duration = Duration::from_secs(60);

/// Why an upload step failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// An S3 call failed.
    #[error("{operation}: {failure}")]
    Api {
        /// The operation.
        operation: &'static str,
        /// The failure.
        failure: SdkFailure,
    },
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl UploadError {
    fn retryable(&self) -> bool {
        match self {
            UploadError::Api { failure, .. } => failure.is_retryable(),
            UploadError::Store(_) => true,
        }
    }
}

/// Backoff state of one object.
#[derive(Clone, Copy, Debug)]
struct Attempts {
    failures: u32,
    next_at: Instant,
}

/// What the output and the uploader task share.
pub struct Shared {
    /// The store.
    pub store: Mutex<Store>,
    /// Wakes the uploader when an object may be due.
    pub wake: tokio::sync::Notify,
    /// One upload pass at a time (timer task or shutdown flush).
    pass: tokio::sync::Mutex<HashMap<u64, Attempts>>,
}

impl Shared {
    /// Share `store`.
    pub fn new(store: Store) -> Self {
        Shared {
            store: Mutex::new(store),
            wake: tokio::sync::Notify::new(),
            pass: tokio::sync::Mutex::new(HashMap::new()),
        }
    }
}

/// Uploads what the store holds.
pub struct Uploader {
    client: Client,
    settings: Arc<S3Settings>,
    component: Component,
    metrics: Arc<Metrics>,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Objects completed.
    pub completed: usize,
    /// Objects that failed this time (kept for a retry).
    pub failed: usize,
    /// Objects given up on.
    pub dropped: usize,
    /// Objects still in the store.
    pub remaining: usize,
}

impl Uploader {
    /// An uploader with `client`.
    pub fn new(
        client: Client,
        settings: Arc<S3Settings>,
        component: Component,
        metrics: Arc<Metrics>,
    ) -> Self {
        Uploader {
            client,
            settings,
            component,
            metrics,
        }
    }

    /// Run passes until `shared` is dropped by everyone else: every second, or when woken.
    pub async fn run(self: Arc<Self>, shared: Arc<Shared>) {
        loop {
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if Arc::strong_count(&shared) == 1 {
                return;
            }
            self.pass(&shared, false).await;
        }
    }

    /// Seal what is due and upload what is sealed. `finish` completes every object now,
    /// ignoring backoff (shutdown).
    pub async fn pass(&self, shared: &Shared, finish: bool) -> PassReport {
        let mut attempts = shared.pass.lock().await;
        let now = Instant::now();
        let due = match self.seal_due(shared, finish) {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(component_id = %self.component.id, error = %e, "S3 store_dir failed while sealing objects");
                self.metrics.error(&self.component, "store_failed");
                return PassReport::default();
            }
        };
        let mut report = PassReport::default();
        for id in due {
            if !finish && attempts.get(&id).is_some_and(|a| a.next_at > now) {
                continue;
            }
            match self.advance(shared, id).await {
                Ok(true) => {
                    attempts.remove(&id);
                    report.completed += 1;
                }
                Ok(false) => {
                    attempts.remove(&id);
                }
                Err(e) => {
                    let entry = attempts.entry(id).or_insert(Attempts {
                        failures: 0,
                        next_at: now,
                    });
                    entry.failures += 1;
                    if !e.retryable() || entry.failures >= self.settings.upload_attempts {
                        let failures = entry.failures;
                        attempts.remove(&id);
                        self.give_up(shared, id, &e, failures).await;
                        report.dropped += 1;
                    } else {
                        entry.next_at = Instant::now() + backoff(entry.failures);
                        report.failed += 1;
                    }
                }
            }
        }
        report.remaining = shared.store.lock().expect("store lock").objects().len();
        report
    }

    /// Seal objects that are complete by size, age or part count (or all, when `finish`), and
    /// parts that reached `upload_chunk_size`. Returns the objects with something to upload.
    fn seal_due(&self, shared: &Shared, finish: bool) -> Result<Vec<u64>, StoreError> {
        let s = &self.settings;
        let mut store = shared.store.lock().expect("store lock");
        let now = now_ns();
        let ids: Vec<u64> = store.objects().keys().copied().collect();
        let mut due = Vec::new();
        for id in ids {
            let object = store.get(id).expect("listed");
            let meta = &object.meta;
            let parts_used = meta.parts.len() + object.part_files.len();
            let complete = meta.sealed
                || finish
                || meta.bytes >= s.total_file_size
                || now.saturating_sub(meta.created_ns) >= s.upload_timeout.as_nanos() as u64
                || (!s.use_put_object && parts_used >= MAX_PARTS as usize);
            if complete {
                store.seal_object(id)?;
            }
            if !store.sealed_parts(id).is_empty() || store.get(id).is_some_and(|o| o.meta.sealed) {
                due.push(id);
            }
        }
        Ok(due)
    }

    /// Upload what is sealed of `id`; `Ok(true)` when the object is complete in S3.
    async fn advance(&self, shared: &Shared, id: u64) -> Result<bool, UploadError> {
        if self.settings.compression != Compression::None {
            return self.advance_compressed(shared, id).await;
        }
        let (meta, parts) = {
            let store = shared.store.lock().expect("store lock");
            let Some(object) = store.get(id) else {
                return Ok(false);
            };
            (object.meta.clone(), store.sealed_parts(id))
        };
        let single_request = meta.upload_id.is_none() && meta.parts.is_empty() && parts.len() <= 1;
        if meta.sealed && single_request {
            let body = match parts.first() {
                Some(part) => shared
                    .store
                    .lock()
                    .expect("store lock")
                    .read_part(id, *part)?,
                None => Vec::new(),
            };
            if !body.is_empty() {
                self.put_object(&meta.key, body).await?;
            }
            shared.store.lock().expect("store lock").remove(id);
            return Ok(true);
        }
        let upload_id = self.upload_id(shared, &meta).await?;
        for part in parts {
            let body = shared
                .store
                .lock()
                .expect("store lock")
                .read_part(id, part)?;
            let bytes = body.len() as u64;
            let etag = self.upload_part(&meta.key, &upload_id, part, body).await?;
            shared
                .store
                .lock()
                .expect("store lock")
                .part_uploaded(id, part, etag, bytes)?;
        }
        if !meta.sealed {
            return Ok(false);
        }
        self.complete(shared, id, &meta.key, &upload_id).await
    }

    /// [`advance`](Self::advance) of a compressed object: once it is closed, compress it as one
    /// stream, then upload it whole (PutObject) when it fits one part, or in slices of
    /// `upload_chunk_size`.
    async fn advance_compressed(&self, shared: &Shared, id: u64) -> Result<bool, UploadError> {
        let Some(meta) = shared
            .store
            .lock()
            .expect("store lock")
            .get(id)
            .map(|o| o.meta.clone())
        else {
            return Ok(false);
        };
        if !meta.sealed {
            return Ok(false);
        }
        let size = match meta.compressed {
            Some(size) => size,
            None => self.compress(shared, id).await?,
        };
        let chunk = self.settings.upload_chunk_size;
        let read = |offset: u64, len: u64| {
            shared
                .store
                .lock()
                .expect("store lock")
                .read_compressed(id, offset, len)
        };
        if meta.upload_id.is_none() && (self.settings.use_put_object || size <= chunk) {
            self.put_object(&meta.key, read(0, size)?).await?;
            shared.store.lock().expect("store lock").remove(id);
            return Ok(true);
        }
        let upload_id = self.upload_id(shared, &meta).await?;
        let mut offset = meta.uploaded_bytes();
        let mut part = meta.parts.len() as u32 + 1;
        while offset < size {
            let len = chunk.min(size - offset);
            let etag = self
                .upload_part(&meta.key, &upload_id, part, read(offset, len)?)
                .await?;
            shared
                .store
                .lock()
                .expect("store lock")
                .part_uploaded(id, part, etag, len)?;
            offset += len;
            part += 1;
        }
        self.complete(shared, id, &meta.key, &upload_id).await
    }

    /// The multipart upload of the object `meta`, created (and recorded) if it has none yet.
    async fn upload_id(
        &self,
        shared: &Shared,
        meta: &super::store::ObjectMeta,
    ) -> Result<String, UploadError> {
        if let Some(u) = &meta.upload_id {
            return Ok(u.clone());
        }
        let u = self.create_upload(&meta.key).await?;
        shared
            .store
            .lock()
            .expect("store lock")
            .set_upload_id(meta.id, Some(u.clone()))?;
        Ok(u)
    }

    /// Complete the multipart upload of `id` with the parts the store recorded, and forget it.
    async fn complete(
        &self,
        shared: &Shared,
        id: u64,
        key: &str,
        upload_id: &str,
    ) -> Result<bool, UploadError> {
        let uploaded = shared
            .store
            .lock()
            .expect("store lock")
            .get(id)
            .map(|o| o.meta.parts.clone())
            .unwrap_or_default();
        self.complete_upload(key, upload_id, &uploaded).await?;
        shared.store.lock().expect("store lock").remove(id);
        Ok(true)
    }

    /// Compress the closed object `id` (on a blocking thread, outside the store's lock).
    async fn compress(&self, shared: &Shared, id: u64) -> Result<u64, UploadError> {
        let job = shared.store.lock().expect("store lock").compress_job(id);
        if let Some(job) = job {
            let compression = if job.already_gzip() {
                Compression::None
            } else {
                self.settings.compression
            };
            tokio::task::spawn_blocking(move || job.run(|i, o| compression.encode(i, o)))
                .await
                .expect("compression does not panic")?;
        }
        Ok(shared.store.lock().expect("store lock").compressed(id)?)
    }

    async fn give_up(&self, shared: &Shared, id: u64, error: &UploadError, attempts: u32) {
        let meta = shared
            .store
            .lock()
            .expect("store lock")
            .get(id)
            .map(|o| o.meta.clone());
        let Some(meta) = meta else { return };
        if let Some(upload_id) = &meta.upload_id {
            let aborted = self
                .client
                .abort_multipart_upload()
                .bucket(&self.settings.bucket)
                .key(&meta.key)
                .upload_id(upload_id)
                .send()
                .await;
            if let Err(e) = aborted {
                let failure = SdkFailure::classify(&e);
                RequestFailed {
                    operation: "AbortMultipartUpload",
                    failure: &failure,
                    target: &meta.key,
                }
                .emit(&self.metrics, &self.component);
            }
        }
        let reason = match error {
            UploadError::Api { failure, .. } if failure.has_code("NoSuchUpload") => {
                "s3_upload_lost"
            }
            UploadError::Api { failure, .. } if failure.class == ErrorClass::ResourceNotFound => {
                "s3_bucket_not_found"
            }
            _ => "s3_upload_failed",
        };
        let kept = {
            let mut store = shared.store.lock().expect("store lock");
            match self.settings.exhausted {
                ExhaustedAction::Delete => {
                    store.remove(id);
                    Ok(false)
                }
                ExhaustedAction::Quarantine(limit) => store.quarantine(id, limit),
            }
        };
        let fate = match kept {
            Ok(true) => "its files are in store_dir/quarantine",
            Ok(false) => "its files are removed",
            Err(e) => {
                tracing::warn!(component_id = %self.component.id, error = %e, "cannot quarantine an S3 object");
                shared.store.lock().expect("store lock").remove(id);
                "its files are removed"
            }
        };
        let detail = format!(
            "object {:?} in bucket {:?} not uploaded after {attempts} attempt(s): {error}; {fate}; raise upload_attempts to keep trying longer",
            meta.key, self.settings.bucket
        );
        EventsDropped {
            reason,
            count: meta.events,
            detail: &detail,
        }
        .emit(&self.metrics, &self.component);
    }

    fn md5(&self, body: &[u8]) -> Option<String> {
        self.settings
            .send_content_md5
            .then(|| base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body)))
    }

    async fn put_object(&self, key: &str, body: Vec<u8>) -> Result<(), UploadError> {
        let s = &self.settings;
        let bytes = body.len() as u64;
        let call = self
            .client
            .put_object()
            .bucket(&s.bucket)
            .key(key)
            .set_content_md5(self.md5(&body))
            .set_content_type(s.content_type.clone())
            .set_content_encoding(s.compression.content_encoding().map(str::to_string))
            .set_acl(s.canned_acl.as_deref().map(ObjectCannedAcl::from))
            .set_storage_class(s.storage_class.as_deref().map(StorageClass::from))
            .body(ByteStream::from(body));
        call.send()
            .await
            .map(|_| self.sent("PutObject", key, bytes))
            .map_err(|e| self.failed("PutObject", key, SdkFailure::classify(&e)))
    }

    async fn create_upload(&self, key: &str) -> Result<String, UploadError> {
        let s = &self.settings;
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&s.bucket)
            .key(key)
            .set_content_type(s.content_type.clone())
            .set_content_encoding(s.compression.content_encoding().map(str::to_string))
            .set_acl(s.canned_acl.as_deref().map(ObjectCannedAcl::from))
            .set_storage_class(s.storage_class.as_deref().map(StorageClass::from))
            .send()
            .await
            .map_err(|e| self.failed("CreateMultipartUpload", key, SdkFailure::classify(&e)))?;
        out.upload_id().map(str::to_string).ok_or_else(|| {
            self.failed(
                "CreateMultipartUpload",
                key,
                bad_response("the response has no UploadId"),
            )
        })
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u32,
        body: Vec<u8>,
    ) -> Result<String, UploadError> {
        let bytes = body.len() as u64;
        let out = self
            .client
            .upload_part()
            .bucket(&self.settings.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part as i32)
            .set_content_md5(self.md5(&body))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.failed("UploadPart", key, SdkFailure::classify(&e)))?;
        self.sent("UploadPart", key, bytes);
        out.e_tag()
            .map(str::to_string)
            .ok_or_else(|| self.failed("UploadPart", key, bad_response("the response has no ETag")))
    }

    async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[super::store::UploadedPart],
    ) -> Result<(), UploadError> {
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| {
                        CompletedPart::builder()
                            .part_number(p.number as i32)
                            .e_tag(&p.etag)
                            .build()
                    })
                    .collect(),
            ))
            .build();
        self.client
            .complete_multipart_upload()
            .bucket(&self.settings.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(completed)
            .send()
            .await
            .map(|_| self.sent("CompleteMultipartUpload", key, 0))
            .map_err(|e| self.failed("CompleteMultipartUpload", key, SdkFailure::classify(&e)))
    }

    fn sent(&self, operation: &'static str, key: &str, bytes: u64) {
        let target = format!("bucket {:?} key {key:?}", self.settings.bucket);
        RequestSent {
            operation,
            events: 0,
            bytes,
            target: &target,
        }
        .emit(&self.metrics, &self.component);
    }

    fn failed(&self, operation: &'static str, key: &str, failure: SdkFailure) -> UploadError {
        let target = format!("bucket {:?} key {key:?}", self.settings.bucket);
        RequestFailed {
            operation,
            failure: &failure,
            target: &target,
        }
        .emit(&self.metrics, &self.component);
        UploadError::Api { operation, failure }
    }
}

fn bad_response(message: &str) -> SdkFailure {
    SdkFailure {
        class: ErrorClass::ServerError,
        code: None,
        message: message.to_string(),
        status: None,
        retry_after: None,
    }
}

/// Full-jitter delay before attempt `failures + 1`.
fn backoff(failures: u32) -> Duration {
    let ceiling = RETRY_BASE
        .saturating_mul(1 << failures.min(16))
        .min(RETRY_CAP);
    ceiling
        .mul_f64(fastrand::f64())
        .max(Duration::from_millis(50))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        for failures in 0..40 {
            let d = backoff(failures);
            assert!(d <= RETRY_CAP && d >= Duration::from_millis(50));
        }
    }
}
