//! `type = "kinesis_streams"`: the options of Fluent Bit's C `kinesis_streams` and of the Go
//! `kinesis` plugin (amazon-kinesis-streams-for-fluent-bit), validated into
//! [`KinesisSettings`]. The classic `Name kinesis` maps here with `append_newline` off unless
//! set (the Go plugin's default); the C plugin always ends a record with `\n`.

use crate::output::aws::flb_value::{opt_bool, opt_i64, opt_list};
use crate::output::aws::record::{TimeField, TimeValue};
use crate::output::aws::{AwsConnectionConfig, RecordRenderer};
use crate::output::firehose::config::{DEFAULT_TIME_KEY_FORMAT, Oversize};
use crate::time::strftime::TimeFormat;
use serde::Deserialize;

crate::net::aws_connection::aws_output_config! {
/// The options, as written in the config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KinesisConfig {
    /// The data stream (required).
    #[serde(default)]
    pub stream: Option<String>,
    /// The record field whose value is the partition key (`a->b` for a nested one); a random
    /// key when unset, or when the record has no such string or number.
    #[serde(default)]
    pub partition_key: Option<String>,
    /// Keep only these top-level keys (`a,b` or an array).
    #[serde(default, deserialize_with = "opt_list")]
    pub data_keys: Option<Vec<String>>,
    /// Go plugin: replace `.` in key names with this (nested keys too).
    #[serde(default)]
    pub replace_dots: Option<String>,
    /// Write record keys sorted (the Go plugin's JSON encoder) instead of in record order (the
    /// C plugin); a classic `Name kinesis` sets it.
    #[serde(default, deserialize_with = "opt_bool")]
    pub sort_keys: Option<bool>,
    /// Send only this key's value (a string raw, anything else as JSON).
    #[serde(default)]
    pub log_key: Option<String>,
    /// Add the event time under this key.
    #[serde(default)]
    pub time_key: Option<String>,
    /// strftime for `time_key`; `%L` is milliseconds as in the Go plugin (`%3N`, `%6N`, `%9N`
    /// for explicit digits); default `%Y-%m-%dT%H:%M:%S`. A classic `Name kinesis_streams`
    /// reads `%L` as nanoseconds, as the C plugin does.
    #[serde(default)]
    pub time_key_format: Option<String>,
    /// End each record with `\n` (default on: the C plugin always does; the classic `Name
    /// kinesis` mapping sets it off unless written, as the Go plugin's default).
    #[serde(default, deserialize_with = "opt_bool")]
    pub append_newline: Option<bool>,
    /// `gzip` or `zlib`: compress each record.
    #[serde(default)]
    pub compression: Option<String>,
    /// What to do with a record over 1 MiB (with its partition key): `drop` (the C plugin, the
    /// default) or `truncate` (the Go plugin; a classic `Name kinesis` sets it). Either way it
    /// is counted.
    #[serde(default)]
    pub oversize_records: Option<String>,
    /// Go plugin: KPL aggregation; only `false` is accepted.
    #[serde(default, deserialize_with = "opt_bool")]
    pub aggregation: Option<bool>,
    /// C plugin: newline-joined events in one record; only `false` is accepted.
    #[serde(default, deserialize_with = "opt_bool")]
    pub simple_aggregation: Option<bool>,
    /// Go plugin: concurrent flushes; no effect here (logged): the output task sends, and
    /// retries exactly what failed.
    #[serde(default, deserialize_with = "opt_i64")]
    pub experimental_concurrency: Option<i64>,
    /// Go plugin: retries of the concurrent flushes; no effect here (logged): `retry_limit` and
    /// `retry_until` apply.
    #[serde(default, deserialize_with = "opt_i64")]
    pub experimental_concurrency_retries: Option<i64>,
    /// Fluent Bit C: one immediate retry on network errors; every failure is retried with
    /// backoff here, so this has no effect (logged at startup).
    #[serde(default, deserialize_with = "opt_bool")]
    pub auto_retry_requests: Option<bool>,
    /// Fluent Bit: output threads; no effect here (logged).
    #[serde(default, deserialize_with = "opt_i64")]
    pub workers: Option<i64>,
}
}

/// Per-record compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Sent as rendered.
    None,
    /// gzip (Fluent Bit C).
    Gzip,
    /// zlib (the Go plugin).
    Zlib,
}

/// The validated options.
#[derive(Clone, Debug)]
pub struct KinesisSettings {
    /// Region, endpoint, role.
    pub connection: AwsConnectionConfig,
    /// The data stream.
    pub stream: String,
    /// The path of the partition key field (`a->b` split), or none for random keys.
    pub partition_key: Option<Vec<String>>,
    /// Record → bytes.
    pub renderer: RecordRenderer,
    /// End each record with `\n`.
    pub append_newline: bool,
    /// Compress each record.
    pub compression: Compression,
    /// Records over the size limit.
    pub oversize: Oversize,
    /// Options accepted for compatibility that change nothing.
    pub ignored_options: Vec<&'static str>,
}

impl KinesisConfig {
    /// Check everything that can be checked without AWS.
    pub fn validate(&self) -> Result<KinesisSettings, String> {
        let mut problems = Vec::new();
        let connection = self.connection(None);
        if let Err(e) = connection.validate() {
            problems.push(e.to_string());
        }
        let stream = self.stream.clone().unwrap_or_default();
        if stream.trim().is_empty() {
            problems.push("`stream` is required, e.g. stream = \"my-stream\"".into());
        }
        let compression = match self
            .compression
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") | Some("none") => Compression::None,
            Some("gzip") => Compression::Gzip,
            Some("zlib") => Compression::Zlib,
            Some(other) => {
                problems.push(format!(
                    "`compression` = {other:?} is not supported; use \"gzip\" or \"zlib\", or leave it out"
                ));
                Compression::None
            }
        };
        let oversize = Oversize::parse(self.oversize_records.as_deref(), Oversize::Drop)
            .unwrap_or_else(|e| {
                problems.push(e);
                Oversize::Drop
            });
        if self.aggregation == Some(true) {
            problems.push("`aggregation` (KPL aggregated records) is not supported yet; remove it or set it off: each event is sent as its own record".into());
        }
        if self.simple_aggregation == Some(true) {
            problems.push("`simple_aggregation` is not supported yet; remove it or set it off: each event is sent as its own record".into());
        }
        let partition_key = match self.partition_key.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(path) => {
                let parts: Vec<String> = path.split("->").map(|p| p.trim().to_string()).collect();
                if parts.iter().any(String::is_empty) {
                    problems.push(format!("`partition_key` = {path:?} has an empty part; write a key name, or `outer->inner` for a nested one"));
                }
                Some(parts)
            }
        };
        if self.time_key_format.is_some() && self.time_key.is_none() {
            problems
                .push("`time_key_format` needs `time_key` (the key to put the time under)".into());
        }
        if self.log_key.is_some() && (self.data_keys.is_some() || self.time_key.is_some()) {
            problems.push("`log_key` sends one value, so `data_keys` and `time_key` cannot apply; remove one side".into());
        }
        let trailing_time = self.time_key.as_ref().map(|key| TimeField {
            key: key.clone(),
            value: TimeValue::Formatted(TimeFormat::new(
                self.time_key_format
                    .as_deref()
                    .unwrap_or(DEFAULT_TIME_KEY_FORMAT),
            )),
        });
        let mut ignored_options = Vec::new();
        for (set, name) in [
            (self.auto_retry_requests.is_some(), "auto_retry_requests"),
            (self.workers.is_some(), "workers"),
            (
                self.experimental_concurrency.is_some(),
                "experimental_concurrency",
            ),
            (
                self.experimental_concurrency_retries.is_some(),
                "experimental_concurrency_retries",
            ),
        ] {
            if set {
                ignored_options.push(name);
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        Ok(KinesisSettings {
            connection,
            stream,
            partition_key,
            renderer: RecordRenderer {
                log_key: self.log_key.clone(),
                data_keys: self.data_keys.clone(),
                replace_dots: self.replace_dots.clone(),
                sort_keys: self.sort_keys.unwrap_or(false),
                leading_time: None,
                trailing_time,
            },
            append_newline: self.append_newline.unwrap_or(true),
            compression,
            oversize,
            ignored_options,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<KinesisSettings, String> {
        toml::from_str::<KinesisConfig>(text)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn c_and_go_plugin_options() {
        let s = parse("region = \"us-west-2\"\nstream = \"logs\"\n").unwrap();
        assert_eq!(s.stream, "logs");
        assert!(s.append_newline && s.partition_key.is_none());
        assert_eq!(s.compression, Compression::None);
        let s = parse("region = \"us-west-2\"\nstream = \"logs\"\npartition_key = \"kubernetes->pod_name\"\ndata_keys = \"log,source\"\nappend_newline = \"false\"\ntime_key = \"ts\"\ntime_key_format = \"%s.%L\"\ncompression = \"zlib\"\naggregation = false\nexperimental_concurrency = 4\nauto_retry_requests = true\n").unwrap();
        assert_eq!(
            s.partition_key,
            Some(vec!["kubernetes".into(), "pod_name".into()])
        );
        assert_eq!(
            s.renderer.data_keys,
            Some(vec!["log".into(), "source".into()])
        );
        assert!(!s.append_newline);
        assert_eq!(s.compression, Compression::Zlib);
        assert_eq!(
            s.ignored_options,
            vec!["auto_retry_requests", "experimental_concurrency"]
        );
        assert_eq!(s.renderer.trailing_time.unwrap().key, "ts");
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse(
            "compression = \"zstd\"\naggregation = true\nsimple_aggregation = \"On\"\ntime_key_format = \"%s\"\npartition_key = \"a->\"\n",
        )
        .unwrap_err();
        for needle in [
            "`region` is required",
            "`stream` is required",
            "zstd",
            "`aggregation`",
            "`simple_aggregation`",
            "time_key_format",
            "partition_key",
        ] {
            assert!(e.contains(needle), "{needle} missing from:\n{e}");
        }
        let e = parse("region = \"r\"\nstream = \"d\"\nlog_key = \"log\"\ntime_key = \"t\"\n")
            .unwrap_err();
        assert!(e.contains("log_key"), "{e}");
    }
}
