//! `type = "s3"`: the options of Fluent Bit's `s3` output, validated into [`S3Settings`].

use super::key::{DEFAULT_KEY_FORMAT, KeyFormat};
use crate::config::{ByteSize, DurationStr};
use crate::output::aws::flb_value::{opt_bool, opt_i64, opt_text};
use crate::output::aws::record::{TimeField, TimeValue};
use crate::output::aws::{AwsConnectionConfig, RecordRenderer};
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::path::PathBuf;
use std::time::Duration;

/// Smallest multipart part (all but the last).
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html>
pub const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
/// Largest multipart part.
pub const MAX_PART_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Most parts in one multipart upload.
pub const MAX_PARTS: u32 = 10_000;
/// Largest single PutObject.
pub const MAX_PUT_OBJECT_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Fluent Bit's bounds on `total_file_size`: 1 MiB … 50 GiB (1 GiB with PutObject).
pub const MIN_TOTAL_FILE_SIZE: u64 = 1024 * 1024;
/// Upper bound of `total_file_size`.
pub const MAX_TOTAL_FILE_SIZE: u64 = 50 * 1024 * 1024 * 1024;
/// Upper bound of `total_file_size` with `use_put_object`.
pub const MAX_PUT_OBJECT_FILE_SIZE: u64 = 1024 * 1024 * 1024;
/// Below this `total_file_size`, Fluent Bit always uses PutObject.
pub const PUT_OBJECT_BELOW: u64 = 10 * 1024 * 1024;
/// Fluent Bit's defaults.
pub const DEFAULT_TOTAL_FILE_SIZE: u64 = 100_000_000;
/// Default `upload_chunk_size`.
pub const DEFAULT_UPLOAD_CHUNK_SIZE: u64 = 5_242_880;
/// Default `upload_timeout`.
pub const DEFAULT_UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// Default `store_dir`.
pub const DEFAULT_STORE_DIR: &str = "/tmp/fluent-bit/s3";
/// Default `upload_attempts` (of one object, before its events are dropped).
pub const DEFAULT_UPLOAD_ATTEMPTS: u32 = 5;

crate::net::aws_connection::aws_output_config! {
/// The options, as written in the config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The bucket (required).
    #[serde(default)]
    pub bucket: Option<String>,
    /// Complete an object at this size (default 100,000,000 bytes).
    #[serde(default)]
    pub total_file_size: Option<ByteSize>,
    /// Multipart part size (default 5 MiB; 5 MiB–5 GiB).
    #[serde(default)]
    pub upload_chunk_size: Option<ByteSize>,
    /// Complete an object this long after it was started (default `10m`).
    #[serde(default)]
    pub upload_timeout: Option<DurationStr>,
    /// Where data waits for upload, with the multipart state and `$INDEX`; survives restarts.
    #[serde(default)]
    pub store_dir: Option<PathBuf>,
    /// Most bytes in `store_dir` (0 = no limit); when full, delivery waits (backpressure).
    #[serde(default)]
    pub store_dir_limit_size: Option<ByteSize>,
    /// The key format (`$TAG`, `$TAG[n]`, `$INDEX`, `$UUID`, strftime); must start with `/`.
    #[serde(default)]
    pub s3_key_format: Option<String>,
    /// Characters that split the tag for `$TAG[n]` (default `.`).
    #[serde(default)]
    pub s3_key_format_tag_delimiters: Option<String>,
    /// One PutObject per object instead of a multipart upload.
    #[serde(default, deserialize_with = "opt_bool")]
    pub use_put_object: Option<bool>,
    /// Do not add the random `-object…` suffix in PutObject mode.
    #[serde(default, deserialize_with = "opt_bool")]
    pub static_file_path: Option<bool>,
    /// `gzip` or `zstd`: each object is one compressed stream.
    #[serde(default)]
    pub compression: Option<String>,
    /// `json_lines` (the default, and the only one): one JSON record (or `log_key` value) per
    /// line.
    #[serde(default)]
    pub format: Option<String>,
    /// Fluent Bit 3+: what happens to data whose retries are exhausted: `delete` (here: the
    /// object's events are counted as dropped, and its files removed) or `quarantine` (kept in
    /// `store_dir/quarantine`).
    #[serde(default)]
    pub retry_exhausted_action: Option<String>,
    /// Most bytes kept in `store_dir/quarantine` (0 = no limit); past it a quarantined object
    /// is deleted instead.
    #[serde(default)]
    pub quarantine_dir_limit_size: Option<ByteSize>,
    /// Fluent Bit blob uploads: `blob_database_file`, refused (see [`S3Config::blob_options`]).
    #[serde(default)]
    pub blob_database_file: Option<IgnoredAny>,
    /// Fluent Bit blob uploads: `part_size`, refused (see [`S3Config::blob_options`]).
    #[serde(default)]
    pub part_size: Option<IgnoredAny>,
    /// Fluent Bit blob uploads: `file_delivery_attempt_limit`, refused (see [`S3Config::blob_options`]).
    #[serde(default)]
    pub file_delivery_attempt_limit: Option<IgnoredAny>,
    /// Fluent Bit blob uploads: `part_delivery_attempt_limit`, refused (see [`S3Config::blob_options`]).
    #[serde(default)]
    pub part_delivery_attempt_limit: Option<IgnoredAny>,
    /// Fluent Bit blob uploads: `upload_parts_timeout`, refused (see [`S3Config::blob_options`]).
    #[serde(default)]
    pub upload_parts_timeout: Option<IgnoredAny>,
    /// Fluent Bit blob uploads: `upload_part_freshness_limit`, refused (see [`S3Config::blob_options`]).
    #[serde(default)]
    pub upload_part_freshness_limit: Option<IgnoredAny>,
    /// Fluent Bit blob uploads: `authorization_endpoint_url`, refused (see [`S3Config::blob_options`]).
    #[serde(default)]
    pub authorization_endpoint_url: Option<IgnoredAny>,
    /// Fluent Bit blob uploads: `authorization_endpoint_username`, refused (see [`S3Config::blob_options`]).
    #[serde(default)]
    pub authorization_endpoint_username: Option<IgnoredAny>,
    /// Fluent Bit blob uploads: `authorization_endpoint_password`, refused (see [`S3Config::blob_options`]).
    #[serde(default)]
    pub authorization_endpoint_password: Option<IgnoredAny>,
    /// Fluent Bit blob uploads: `authorization_endpoint_bearer_token`, refused (see [`S3Config::blob_options`]).
    #[serde(default)]
    pub authorization_endpoint_bearer_token: Option<IgnoredAny>,
    /// The objects' Content-Type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// `x-amz-acl`, e.g. `bucket-owner-full-control`.
    #[serde(default)]
    pub canned_acl: Option<String>,
    /// `x-amz-storage-class`, e.g. `STANDARD_IA`.
    #[serde(default)]
    pub storage_class: Option<String>,
    /// The key of the time field put first in each record (default `date`; `false` = none).
    #[serde(default, deserialize_with = "opt_text")]
    pub json_date_key: Option<String>,
    /// `iso8601` (default), `double`, `epoch`, `epoch_ms` or `java_sql_timestamp`.
    #[serde(default)]
    pub json_date_format: Option<String>,
    /// Write only this key's value per line.
    #[serde(default)]
    pub log_key: Option<String>,
    /// Send Content-MD5 (required by buckets with Object Lock).
    #[serde(default, deserialize_with = "opt_bool")]
    pub send_content_md5: Option<bool>,
    /// Upload attempts of one object before its events are dropped (default 5). Fluent Bit
    /// calls it `Retry_Limit`; here `retry_limit` is every output's limit on retrying a batch.
    #[serde(default, deserialize_with = "opt_i64")]
    pub upload_attempts: Option<i64>,
    /// Fluent Bit: keep order across retries. Objects here are completed in order already; no
    /// effect (logged).
    #[serde(default, deserialize_with = "opt_bool")]
    pub preserve_data_ordering: Option<bool>,
    /// Fluent Bit C: one immediate retry on network errors; no effect here (logged).
    #[serde(default, deserialize_with = "opt_bool")]
    pub auto_retry_requests: Option<bool>,
    /// Fluent Bit: output threads; no effect here (logged).
    #[serde(default, deserialize_with = "opt_i64")]
    pub workers: Option<i64>,
}
}

/// How objects are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Plain NDJSON.
    None,
    /// One gzip stream per object (`Content-Encoding: gzip`).
    Gzip,
    /// One zstd frame per object (`Content-Encoding: zstd`).
    Zstd,
}

impl Compression {
    /// The `Content-Encoding` of compressed objects.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
        }
    }

    /// Compress everything `input` yields into `out`, as one stream.
    pub fn encode(
        self,
        input: &mut dyn std::io::Read,
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        match self {
            Compression::None => std::io::copy(input, out).map(drop),
            Compression::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
                std::io::copy(input, &mut enc)?;
                enc.finish().map(drop)
            }
            Compression::Zstd => zstd::stream::copy_encode(input, out, 0),
        }
    }
}

/// What happens to an object whose upload attempts are exhausted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExhaustedAction {
    /// Its files are removed; its events are counted as dropped.
    Delete,
    /// Its files are moved to `store_dir/quarantine` (up to this many bytes there, 0 = no
    /// limit); its events are counted as dropped.
    Quarantine(u64),
}

/// The validated options.
#[derive(Clone, Debug)]
pub struct S3Settings {
    /// Region, endpoint, role.
    pub connection: AwsConnectionConfig,
    /// The bucket.
    pub bucket: String,
    /// Complete objects at this size.
    pub total_file_size: u64,
    /// Multipart part size.
    pub upload_chunk_size: u64,
    /// Complete objects after this long.
    pub upload_timeout: Duration,
    /// Where this output keeps its files (`store_dir`/`bucket`/`name`).
    pub store_dir: PathBuf,
    /// Most bytes in the store (0 = unlimited).
    pub store_dir_limit_size: u64,
    /// Key format.
    pub key_format: KeyFormat,
    /// PutObject instead of multipart.
    pub use_put_object: bool,
    /// No random suffix.
    pub static_file_path: bool,
    /// Object compression.
    pub compression: Compression,
    /// After the last upload attempt.
    pub exhausted: ExhaustedAction,
    /// Content-Type.
    pub content_type: Option<String>,
    /// `x-amz-acl`.
    pub canned_acl: Option<String>,
    /// `x-amz-storage-class`.
    pub storage_class: Option<String>,
    /// Record → line.
    pub renderer: RecordRenderer,
    /// Content-MD5 on uploads.
    pub send_content_md5: bool,
    /// Upload attempts before giving up.
    pub upload_attempts: u32,
    /// Notes for the startup log.
    pub notes: Vec<String>,
}

impl S3Settings {
    /// The most bytes (before compression) an object holds: `total_file_size`, and in
    /// multipart uploads at most [`MAX_PARTS`] parts (one part less with compression, which may
    /// grow incompressible data by a few bytes).
    pub fn object_limit(&self) -> u64 {
        let parts = match (self.use_put_object, self.compression) {
            (true, _) => return self.total_file_size,
            (false, Compression::None) => u64::from(MAX_PARTS),
            (false, _) => u64::from(MAX_PARTS) - 1,
        };
        self.total_file_size.min(self.upload_chunk_size * parts)
    }

    /// The size of the part files in `store_dir`: the upload parts themselves in multipart
    /// uploads without compression; otherwise one file per object.
    pub fn part_file_bytes(&self) -> u64 {
        if self.use_put_object || self.compression != Compression::None {
            u64::MAX
        } else {
            self.upload_chunk_size
        }
    }
}

impl S3Config {
    /// The options of Fluent Bit's blob uploads (files announced by its `blob` input) that are
    /// set: wasm-router has no counterpart, so each is refused with what to do.
    pub fn blob_options(&self) -> Vec<&'static str> {
        [
            ("blob_database_file", self.blob_database_file.is_some()),
            ("part_size", self.part_size.is_some()),
            (
                "file_delivery_attempt_limit",
                self.file_delivery_attempt_limit.is_some(),
            ),
            (
                "part_delivery_attempt_limit",
                self.part_delivery_attempt_limit.is_some(),
            ),
            ("upload_parts_timeout", self.upload_parts_timeout.is_some()),
            (
                "upload_part_freshness_limit",
                self.upload_part_freshness_limit.is_some(),
            ),
            (
                "authorization_endpoint_url",
                self.authorization_endpoint_url.is_some(),
            ),
            (
                "authorization_endpoint_username",
                self.authorization_endpoint_username.is_some(),
            ),
            (
                "authorization_endpoint_password",
                self.authorization_endpoint_password.is_some(),
            ),
            (
                "authorization_endpoint_bearer_token",
                self.authorization_endpoint_bearer_token.is_some(),
            ),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| name)
        .collect()
    }

    /// Check everything that can be checked without AWS; `output_name` names the store folder.
    pub fn validate(&self, output_name: &str) -> Result<S3Settings, String> {
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        let connection = self.connection(Some("us-east-1"));
        if let Err(e) = connection.validate() {
            problems.push(e.to_string());
        }
        let bucket = self.bucket.clone().unwrap_or_default();
        if bucket.trim().is_empty() {
            problems.push("`bucket` is required, e.g. bucket = \"my-logs\"".into());
        }
        let total_file_size = self
            .total_file_size
            .map_or(DEFAULT_TOTAL_FILE_SIZE, |s| s.0);
        let upload_chunk_size = self
            .upload_chunk_size
            .map_or(DEFAULT_UPLOAD_CHUNK_SIZE, |s| s.0);
        let mut use_put_object = self.use_put_object.unwrap_or(false);
        if !(MIN_TOTAL_FILE_SIZE..=MAX_TOTAL_FILE_SIZE).contains(&total_file_size) {
            problems.push(format!(
                "`total_file_size` must be between 1M and 50G, got {total_file_size} bytes"
            ));
        }
        if !use_put_object && total_file_size < PUT_OBJECT_BELOW {
            use_put_object = true;
            notes.push(format!(
                "total_file_size {total_file_size} is under 10M: objects are sent with PutObject, as Fluent Bit does"
            ));
        }
        if use_put_object && total_file_size > MAX_PUT_OBJECT_FILE_SIZE {
            problems.push(
                "with `use_put_object`, `total_file_size` can be at most 1G; lower it or use multipart uploads".into(),
            );
        }
        if !use_put_object {
            if !(MIN_PART_BYTES..=MAX_PART_BYTES).contains(&upload_chunk_size) {
                problems.push(format!(
                    "`upload_chunk_size` must be between 5M and 5G (S3's part size limits), got {upload_chunk_size}"
                ));
            }
            if upload_chunk_size > total_file_size {
                problems.push("`upload_chunk_size` cannot be larger than `total_file_size`".into());
            }
            if total_file_size.div_ceil(upload_chunk_size.max(1)) > u64::from(MAX_PARTS) {
                notes.push(format!(
                    "objects are completed at {MAX_PARTS} parts, before total_file_size is reached"
                ));
            }
        }
        let upload_timeout = self.upload_timeout.map_or(DEFAULT_UPLOAD_TIMEOUT, |d| d.0);
        if upload_timeout.is_zero() {
            problems.push("`upload_timeout` must be more than 0, e.g. \"10m\"".into());
        }
        let format = self
            .s3_key_format
            .clone()
            .unwrap_or_else(|| DEFAULT_KEY_FORMAT.into());
        if !format.starts_with('/') {
            problems.push(format!(
                "`s3_key_format` must start with '/', e.g. \"/{format}\""
            ));
        }
        let delimiters = self
            .s3_key_format_tag_delimiters
            .clone()
            .unwrap_or_else(|| ".".into());
        let compression = match self
            .compression
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") | Some("none") => Compression::None,
            Some("gzip") => Compression::Gzip,
            Some("zstd") => Compression::Zstd,
            Some(columnar @ ("arrow" | "parquet")) => {
                problems.push(format!(
                    "`compression` = {columnar:?}: columnar objects are not supported; remove it (objects are JSON lines) or use \"gzip\" or \"zstd\""
                ));
                Compression::None
            }
            Some(other) => {
                problems.push(format!(
                    "`compression` = {other:?} is not supported; use \"gzip\" or \"zstd\", or leave it out"
                ));
                Compression::None
            }
        };
        match self.format.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("json_lines") => {}
            Some(other) => problems.push(format!(
                "`format` = {other:?} is not supported; objects are JSON lines: remove it or set format = \"json_lines\""
            )),
        }
        let exhausted = match self
            .retry_exhausted_action
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("delete") => ExhaustedAction::Delete,
            Some("quarantine") => {
                ExhaustedAction::Quarantine(self.quarantine_dir_limit_size.map_or(0, |s| s.0))
            }
            Some(other) => {
                problems.push(format!(
                    "`retry_exhausted_action` = {other:?}: use \"delete\" or \"quarantine\""
                ));
                ExhaustedAction::Delete
            }
        };
        for key in self.blob_options() {
            problems.push(format!(
                "`{key}` configures Fluent Bit's blob uploads (files announced by its `blob` input), which wasm-router does not have; remove it (log records are uploaded with total_file_size and upload_chunk_size)"
            ));
        }
        let date_key = match self.json_date_key.as_deref() {
            None => Some("date".to_string()),
            Some(k)
                if k.eq_ignore_ascii_case("false")
                    || k.eq_ignore_ascii_case("off")
                    || k.is_empty() =>
            {
                None
            }
            Some(k) => Some(k.to_string()),
        };
        let date_format = self.json_date_format.as_deref().unwrap_or("iso8601");
        let date_value = TimeValue::from_json_date_format(date_format);
        if date_value.is_none() {
            problems.push(format!(
                "`json_date_format` = {date_format:?}: use iso8601, double, epoch, epoch_ms or java_sql_timestamp"
            ));
        }
        let upload_attempts = match self.upload_attempts {
            None => DEFAULT_UPLOAD_ATTEMPTS,
            Some(n) if n >= 1 => n.min(i64::from(u32::MAX)) as u32,
            Some(n) => {
                problems.push(format!("`upload_attempts` = {n}: must be at least 1"));
                DEFAULT_UPLOAD_ATTEMPTS
            }
        };
        for (key, set) in [
            (
                "preserve_data_ordering",
                self.preserve_data_ordering.is_some(),
            ),
            ("auto_retry_requests", self.auto_retry_requests.is_some()),
            ("workers", self.workers.is_some()),
        ] {
            if set {
                notes.push(format!(
                    "{key} is accepted for Fluent Bit compatibility and has no effect here"
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        let folder: String = output_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let store_dir = self
            .store_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE_DIR))
            .join(&bucket)
            .join(folder);
        Ok(S3Settings {
            connection,
            bucket,
            total_file_size,
            upload_chunk_size,
            upload_timeout,
            store_dir,
            store_dir_limit_size: self.store_dir_limit_size.map_or(0, |s| s.0),
            key_format: KeyFormat::new(&format, &delimiters),
            use_put_object,
            static_file_path: self.static_file_path.unwrap_or(false),
            compression,
            exhausted,
            content_type: self.content_type.clone(),
            canned_acl: self.canned_acl.clone(),
            storage_class: self.storage_class.clone(),
            renderer: RecordRenderer {
                log_key: self.log_key.clone(),
                leading_time: match (&self.log_key, date_key) {
                    (None, Some(key)) => Some(TimeField {
                        key,
                        value: date_value.expect("validated"),
                    }),
                    _ => None,
                },
                ..Default::default()
            },
            send_content_md5: self.send_content_md5.unwrap_or(false),
            upload_attempts,
            notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<S3Settings, String> {
        toml::from_str::<S3Config>(text)
            .map_err(|e| e.to_string())?
            .validate("s3")
    }

    #[test]
    fn fluent_bit_defaults() {
        let s = parse("bucket = \"logs\"\n").unwrap();
        assert_eq!(
            (s.total_file_size, s.upload_chunk_size),
            (100_000_000, 5_242_880)
        );
        assert_eq!(s.upload_timeout, Duration::from_secs(600));
        assert_eq!(s.connection.region, "us-east-1");
        assert!(!s.use_put_object);
        assert_eq!(s.compression, Compression::None);
        assert_eq!(s.exhausted, ExhaustedAction::Delete);
        assert_eq!(s.store_dir, PathBuf::from("/tmp/fluent-bit/s3/logs/s3"));
        assert_eq!(s.upload_attempts, 5);
        assert_eq!(s.renderer.leading_time.as_ref().unwrap().key, "date");
    }

    #[test]
    fn the_ecs_fargate_recipe() {
        let s = parse("bucket = \"b\"\ntotal_file_size = \"1M\"\nupload_timeout = \"1m\"\nuse_put_object = \"On\"\njson_date_key = \"false\"\n").unwrap();
        assert!(s.use_put_object);
        assert_eq!(s.total_file_size, 1 << 20);
        assert!(s.renderer.leading_time.is_none());
    }

    #[test]
    fn every_documented_value_of_the_newer_options() {
        let s = parse("bucket = \"b\"\nformat = \"json_lines\"\ncompression = \"zstd\"\nretry_exhausted_action = \"quarantine\"\nquarantine_dir_limit_size = \"1M\"\n").unwrap();
        assert_eq!(s.compression, Compression::Zstd);
        assert_eq!(s.exhausted, ExhaustedAction::Quarantine(1 << 20));
        let e = parse("bucket = \"b\"\ncompression = \"arrow\"\n").unwrap_err();
        assert!(e.contains("columnar objects are not supported"), "{e}");
    }

    #[test]
    fn small_files_force_put_object() {
        let s = parse("bucket = \"b\"\ntotal_file_size = \"5M\"\n").unwrap();
        assert!(s.use_put_object);
        assert!(s.notes.iter().any(|n| n.contains("PutObject")));
    }

    #[test]
    fn limits_and_mistakes_are_named() {
        let e = parse("total_file_size = \"100G\"\ns3_key_format = \"no/slash\"\njson_date_format = \"rfc\"\ncompression = \"snappy\"\nupload_attempts = 0\nformat = \"parquet\"\nretry_exhausted_action = \"keep\"\npart_size = \"25M\"\n").unwrap_err();
        for needle in [
            "`bucket` is required",
            "total_file_size",
            "start with '/'",
            "json_date_format",
            "snappy",
            "upload_attempts",
            "`format` = \"parquet\"",
            "retry_exhausted_action",
            "`part_size` configures Fluent Bit's blob uploads",
        ] {
            assert!(e.contains(needle), "{needle} missing from:\n{e}");
        }
        let e = parse("bucket = \"b\"\ntotal_file_size = \"20M\"\nupload_chunk_size = \"4M\"\n")
            .unwrap_err();
        assert!(e.contains("between 5M and 5G"), "{e}");
        let e = parse("bucket = \"b\"\ntotal_file_size = \"20M\"\nupload_chunk_size = \"30M\"\n")
            .unwrap_err();
        assert!(e.contains("cannot be larger"), "{e}");
        let e =
            parse("bucket = \"b\"\ntotal_file_size = \"2G\"\nuse_put_object = true\n").unwrap_err();
        assert!(e.contains("at most 1G"), "{e}");
    }
}
