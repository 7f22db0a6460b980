//! `type = "firehose"` (also `kinesis_firehose`): the options of the Go `firehose` plugin and
//! Fluent Bit's C `kinesis_firehose`, validated into [`FirehoseSettings`].

use crate::output::aws::flb_value::{opt_bool, opt_i64, opt_list};
use crate::output::aws::record::{TimeField, TimeValue};
use crate::output::aws::{AwsConnectionConfig, RecordRenderer};
use crate::time::strftime::TimeFormat;
use serde::Deserialize;

/// The default `time_key_format` of both plugins.
pub const DEFAULT_TIME_KEY_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

crate::net::aws_connection::aws_output_config! {
/// The options, as written in the config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirehoseConfig {
    /// The delivery stream (required).
    #[serde(default)]
    pub delivery_stream: Option<String>,
    /// Keep only these top-level keys (`a,b` or an array).
    #[serde(default, deserialize_with = "opt_list")]
    pub data_keys: Option<Vec<String>>,
    /// Send only this key's value (a string raw, anything else as JSON).
    #[serde(default)]
    pub log_key: Option<String>,
    /// Add the event time under this key.
    #[serde(default)]
    pub time_key: Option<String>,
    /// strftime for `time_key` (`%L` ms, `%f` µs, `%3N`/`%6N`/`%9N`); default `%Y-%m-%dT%H:%M:%S`.
    /// A classic `Name kinesis_firehose` reads `%L` as nanoseconds, as the C plugin does.
    #[serde(default)]
    pub time_key_format: Option<String>,
    /// `gzip` or `zstd`: compress each record (Firehose stores it as sent).
    #[serde(default)]
    pub compression: Option<String>,
    /// Pack several newline-terminated events into one Firehose record (up to 1,000 KiB).
    #[serde(default, deserialize_with = "opt_bool")]
    pub simple_aggregation: Option<bool>,
    /// Replace `.` in key names with this (nested keys too).
    #[serde(default)]
    pub replace_dots: Option<String>,
    /// Write record keys sorted (the Go plugin's JSON encoder) instead of in record order (the
    /// C plugin); a classic `Name firehose` sets it.
    #[serde(default, deserialize_with = "opt_bool")]
    pub sort_keys: Option<bool>,
    /// What to do with a record over 1,000 KiB: `truncate` (Go plugin, the default) or `drop`
    /// (C plugin; a classic `Name kinesis_firehose` sets it). Either way it is counted.
    #[serde(default)]
    pub oversize_records: Option<String>,
    /// Fluent Bit C: one immediate retry on network errors; every failure is retried with
    /// backoff here, so this has no effect (logged at startup).
    #[serde(default, deserialize_with = "opt_bool")]
    pub auto_retry_requests: Option<bool>,
    /// Fluent Bit: output threads; no effect here (logged).
    #[serde(default, deserialize_with = "opt_i64")]
    pub workers: Option<i64>,
}
}

/// How each record is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordCompression {
    /// gzip.
    Gzip,
    /// zstd (Fluent Bit 2+).
    Zstd,
}

/// What happens to a record over the size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Oversize {
    /// Cut it (ending with `[Truncated...]` and the newline), counted as truncated.
    Truncate,
    /// Drop it, counted.
    Drop,
}

impl Oversize {
    /// `oversize_records` as written (`truncate` or `drop`, any case), `default` when unset.
    pub fn parse(value: Option<&str>, default: Oversize) -> Result<Oversize, String> {
        match value.map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("truncate") => Ok(Oversize::Truncate),
            Some("drop") => Ok(Oversize::Drop),
            Some(other) => Err(format!(
                "`oversize_records` = {other:?}: use \"truncate\" or \"drop\""
            )),
        }
    }
}

/// The validated options.
#[derive(Clone, Debug)]
pub struct FirehoseSettings {
    /// Region, endpoint, role.
    pub connection: AwsConnectionConfig,
    /// The delivery stream.
    pub delivery_stream: String,
    /// Record → bytes.
    pub renderer: RecordRenderer,
    /// Compress each record.
    pub compression: Option<RecordCompression>,
    /// Pack events into records.
    pub simple_aggregation: bool,
    /// Oversize records.
    pub oversize: Oversize,
    /// Options accepted for compatibility that change nothing.
    pub ignored_options: Vec<&'static str>,
}

impl FirehoseConfig {
    /// Check everything that can be checked without AWS.
    pub fn validate(&self) -> Result<FirehoseSettings, String> {
        let mut problems = Vec::new();
        let connection = self.connection(None);
        if let Err(e) = connection.validate() {
            problems.push(e.to_string());
        }
        let delivery_stream = self.delivery_stream.clone().unwrap_or_default();
        if delivery_stream.trim().is_empty() {
            problems
                .push("`delivery_stream` is required, e.g. delivery_stream = \"my-stream\"".into());
        }
        let compression = match self
            .compression
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") | Some("none") => None,
            Some("gzip") => Some(RecordCompression::Gzip),
            Some("zstd") => Some(RecordCompression::Zstd),
            Some(other) => {
                problems.push(format!(
                    "`compression` = {other:?} is not supported; use \"gzip\" or \"zstd\", or leave it out"
                ));
                None
            }
        };
        let oversize = Oversize::parse(self.oversize_records.as_deref(), Oversize::Truncate)
            .unwrap_or_else(|e| {
                problems.push(e);
                Oversize::Truncate
            });
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
        if self.auto_retry_requests.is_some() {
            ignored_options.push("auto_retry_requests");
        }
        if self.workers.is_some() {
            ignored_options.push("workers");
        }
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        Ok(FirehoseSettings {
            connection,
            delivery_stream,
            renderer: RecordRenderer {
                log_key: self.log_key.clone(),
                data_keys: self.data_keys.clone(),
                replace_dots: self.replace_dots.clone(),
                sort_keys: self.sort_keys.unwrap_or(false),
                leading_time: None,
                trailing_time,
            },
            compression,
            simple_aggregation: self.simple_aggregation.unwrap_or(false),
            oversize,
            ignored_options,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FirehoseSettings, String> {
        toml::from_str::<FirehoseConfig>(text)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn go_plugin_options() {
        let s = parse("region = \"us-west-2\"\ndelivery_stream = \"logs\"\ndata_keys = \"log,source\"\ntime_key = \"ts\"\ntime_key_format = \"%s.%L\"\nreplace_dots = \"_\"\nsimple_aggregation = \"On\"\n").unwrap();
        assert_eq!(s.delivery_stream, "logs");
        assert_eq!(
            s.renderer.data_keys,
            Some(vec!["log".into(), "source".into()])
        );
        assert!(s.simple_aggregation && s.compression.is_none());
        assert_eq!(s.oversize, Oversize::Truncate);
        assert_eq!(s.renderer.trailing_time.unwrap().key, "ts");
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse(
            "compression = \"snappy\"\noversize_records = \"keep\"\ntime_key_format = \"%s\"\n",
        )
        .unwrap_err();
        for needle in [
            "`region` is required",
            "`delivery_stream` is required",
            "snappy",
            "oversize_records",
            "time_key_format",
        ] {
            assert!(e.contains(needle), "{needle} missing from:\n{e}");
        }
        let e =
            parse("region = \"r\"\ndelivery_stream = \"d\"\nlog_key = \"log\"\ntime_key = \"t\"\n")
                .unwrap_err();
        assert!(e.contains("log_key"), "{e}");
        let s =
            parse("region = \"r\"\ndelivery_stream = \"d\"\ncompression = \"gzip\"\noversize_records = \"drop\"\n").unwrap();
        assert_eq!(s.compression, Some(RecordCompression::Gzip));
        assert_eq!(s.oversize, Oversize::Drop);
        let s = parse("region = \"r\"\ndelivery_stream = \"d\"\ncompression = \"zstd\"\n").unwrap();
        assert_eq!(s.compression, Some(RecordCompression::Zstd));
    }
}
