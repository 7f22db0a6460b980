//! The operator's config ([`OpenSearchConfig`], what the JSON Schema describes), checked and
//! turned into the [`OpenSearch`] output.
//!
//! Option names, values and defaults are those of Fluent Bit's `es` and `opensearch` outputs
//! (`plugins/out_es/es.c`, `plugins/out_opensearch/opensearch.c` config maps), so a FireLens
//! `[OUTPUT] Name es` or `opensearch` section maps key for key; `http_passwd` and `cloud_auth`
//! are not among them: basic auth is the operator's secret `basic_auth`
//! (`"basic:USER:env:VARIABLE"`), and AWS SigV4 the router's `aws_sigv4` grant, so neither a
//! password nor AWS credentials enter the plugin.

use crate::strftime::TimeFormat;
use wasm_router_sdk::ConfigError;

pub use wasm_router_sdk::vendor::Compress;

/// The secret holding the basic-auth credentials (`basic:USER:env:VARIABLE`).
pub const BASIC_AUTH_SECRET: &str = "basic_auth";

/// The largest request body by default, uncompressed: Fluent Bit sends one chunk (about 2 MB)
/// per request; Amazon OpenSearch Service takes 10 MiB on its smallest instances.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 5 << 20;

/// The longest index prefix taken from a record (`logstash_prefix_key`), as Fluent Bit.
pub const MAX_PREFIX_FROM_RECORD: usize = 128;

/// The operator's config.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenSearchConfig {
    /// The cluster's host name or address (default `127.0.0.1`). The router must allow it.
    #[serde(default = "default_host")]
    pub host: String,
    /// The TCP port (default 9200).
    #[serde(default)]
    pub port: Option<u16>,
    /// Connect with TLS (`https://`); certificates are checked against the system's roots.
    #[serde(default)]
    pub tls: bool,
    /// A path prefix before `/_bulk` (a cluster behind a reverse proxy), e.g. `/es`.
    #[serde(default)]
    pub path: String,
    /// The ingest pipeline (`?pipeline=…`).
    #[serde(default)]
    pub pipeline: Option<String>,
    /// The index (default `fluent-bit`); `%` conversions are filled from each event's time.
    #[serde(default = "default_index")]
    pub index: String,
    /// The document type (default `_doc`), sent unless `suppress_type_name`.
    #[serde(default = "default_type", rename = "type")]
    pub doc_type: String,
    /// Leave `_type` out of the action lines (Elasticsearch 7+, OpenSearch).
    #[serde(default)]
    pub suppress_type_name: bool,
    /// Daily indexes `logstash_prefix` + separator + the event's date.
    #[serde(default)]
    pub logstash_format: bool,
    /// The prefix of Logstash indexes (default `logstash`).
    #[serde(default = "default_logstash_prefix")]
    pub logstash_prefix: String,
    /// Between the prefix and the date (default `-`).
    #[serde(default = "default_separator")]
    pub logstash_prefix_separator: String,
    /// A record key (`$key`, `$a['b']`, or `key`) whose value replaces the prefix.
    #[serde(default)]
    pub logstash_prefix_key: Option<String>,
    /// strftime of the date part (default `%Y.%m.%d`).
    #[serde(default = "default_dateformat")]
    pub logstash_dateformat: String,
    /// The key of the event time added to each document (default `@timestamp`).
    #[serde(default = "default_time_key")]
    pub time_key: String,
    /// strftime of that time (default `%Y-%m-%dT%H:%M:%S`), followed by `.` + milliseconds +
    /// `Z` (nanoseconds with `time_key_nanos`).
    #[serde(default = "default_time_key_format")]
    pub time_key_format: String,
    /// Nanoseconds instead of milliseconds in the time.
    #[serde(default)]
    pub time_key_nanos: bool,
    /// Add the tag to each document under `tag_key`.
    #[serde(default)]
    pub include_tag_key: bool,
    /// The key of the tag (default `flb-key`).
    #[serde(default = "default_tag_key")]
    pub tag_key: String,
    /// An `_id` from a hash of each document, so that a document sent twice is stored once.
    #[serde(default)]
    pub generate_id: bool,
    /// A record key whose value is the document's `_id`.
    #[serde(default)]
    pub id_key: Option<String>,
    /// `create` (default), `index`, `update` or `upsert`.
    #[serde(default = "default_write_operation")]
    pub write_operation: String,
    /// Replace `.` in key names with `_` (at every depth).
    #[serde(default)]
    pub replace_dots: bool,
    /// Log each bulk request body (diagnostics).
    #[serde(default)]
    pub trace_output: bool,
    /// Log the whole answer of a bulk request with errors (diagnostics).
    #[serde(default)]
    pub trace_error: bool,
    /// Send the secret `basic_auth` as `Authorization: Basic …`.
    #[serde(default)]
    pub basic_auth: bool,
    /// `gzip` the body (or `true`); `none` / `false` (default) not.
    #[serde(default)]
    pub compress: Option<Compress>,
    /// The largest request body, uncompressed, in bytes (default 5 MiB); an event larger than
    /// that alone is sent in a request of its own.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_index() -> String {
    "fluent-bit".into()
}
fn default_type() -> String {
    "_doc".into()
}
fn default_logstash_prefix() -> String {
    "logstash".into()
}
fn default_separator() -> String {
    "-".into()
}
fn default_dateformat() -> String {
    "%Y.%m.%d".into()
}
fn default_time_key() -> String {
    "@timestamp".into()
}
fn default_time_key_format() -> String {
    "%Y-%m-%dT%H:%M:%S".into()
}
fn default_tag_key() -> String {
    "flb-key".into()
}
fn default_write_operation() -> String {
    "create".into()
}
fn default_max_request_bytes() -> usize {
    DEFAULT_MAX_REQUEST_BYTES
}

/// The bulk action of each document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOperation {
    /// `index`: add or replace.
    Index,
    /// `create`: add; a document whose `_id` exists is refused with 409.
    Create,
    /// `update`: `{"doc": …}` on an existing `_id`.
    Update,
    /// `upsert`: `{"doc_as_upsert": true, "doc": …}`.
    Upsert,
}

impl WriteOperation {
    /// The action's name in the action line.
    pub fn action(self) -> &'static str {
        match self {
            WriteOperation::Index => "index",
            WriteOperation::Create => "create",
            WriteOperation::Update | WriteOperation::Upsert => "update",
        }
    }
}

/// Where the index of a document comes from.
#[derive(Debug, Clone)]
pub enum IndexName {
    /// One name (no `%`), written once.
    Fixed(String),
    /// A strftime pattern filled from each event's time.
    Timed(TimeFormat),
    /// Logstash: prefix (or the record's value), separator, the event's date.
    Logstash {
        /// `logstash_prefix`.
        prefix: String,
        /// `logstash_prefix_separator`.
        separator: String,
        /// `logstash_prefix_key` as a path.
        prefix_key: Option<Vec<String>>,
        /// `logstash_dateformat`.
        date: TimeFormat,
    },
}

/// The checked config: what [`OpenSearch::encode`](wasm_router_sdk::output::Output::encode)
/// works from.
#[derive(Debug, Clone)]
pub struct OpenSearch {
    /// `http(s)://host:port[path]/_bulk[?pipeline=…]`.
    pub url: String,
    /// The index of each document.
    pub index: IndexName,
    /// `_type`, unless suppressed.
    pub doc_type: Option<String>,
    /// The action.
    pub operation: WriteOperation,
    /// The time key and its format.
    pub time_key: String,
    /// strftime of the time.
    pub time_format: TimeFormat,
    /// Nanoseconds instead of milliseconds.
    pub time_nanos: bool,
    /// The tag's key, when included.
    pub tag_key: Option<String>,
    /// Hash ids.
    pub generate_id: bool,
    /// The id's record path.
    pub id_key: Option<Vec<String>>,
    /// `.` → `_` in keys.
    pub replace_dots: bool,
    /// Log request bodies.
    pub trace_output: bool,
    /// Log error answers.
    pub trace_error: bool,
    /// Basic auth from the secret.
    pub basic_auth: bool,
    /// gzip.
    pub gzip: bool,
    /// Largest body.
    pub max_request_bytes: usize,
}

/// `$key['sub']` or a plain top-level `key` as a record path.
fn record_path(text: &str) -> Option<Vec<String>> {
    let text = text.trim();
    if text.starts_with('$') {
        wasm_router_sdk::parse_accessor(text)
    } else if text.is_empty() || text.contains(['[', ']', '\'', '"']) {
        None
    } else {
        Some(vec![text.to_string()])
    }
}

/// Whether `value` can go into an action line as is (Fluent Bit's
/// `os_action_line_value_is_safe`).
pub fn safe_in_action_line(value: &str) -> bool {
    !value.bytes().any(|c| matches!(c, b'"' | b'\\') || c < 0x20)
}

impl OpenSearch {
    /// Checks `raw`, collecting every problem with its JSON pointer.
    pub fn from_config(raw: OpenSearchConfig) -> Result<OpenSearch, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let host = raw.host.trim();
        if host.is_empty() || host.contains(['/', '?', '#', ' ', '@']) || host.contains("://") {
            errors.push(ConfigError::new(
                "/host",
                format!("{:?} is not a host name: give the name or address alone, e.g. \"search-logs.us-east-1.es.amazonaws.com\"", raw.host),
            ));
        }
        if raw.port == Some(0) {
            errors.push(ConfigError::new(
                "/port",
                "0 is not a port: use 1 ..= 65535",
            ));
        }
        let path = raw.path.trim().trim_end_matches('/');
        if path.contains([' ', '#', '?']) || (!path.is_empty() && !path.starts_with('/')) {
            errors.push(ConfigError::new(
                "/path",
                format!(
                    "{:?}: give a path prefix starting with `/`, e.g. \"/es\"",
                    raw.path
                ),
            ));
        }
        if let Some(pipeline) = &raw.pipeline
            && (pipeline.is_empty()
                || !pipeline
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        {
            errors.push(ConfigError::new(
                "/pipeline",
                format!("{pipeline:?}: a pipeline name has letters, digits, `-`, `_` and `.`"),
            ));
        }
        let mut check_format = |pointer: &str, format: &str| match TimeFormat::parse(format) {
            Ok(f) => f,
            Err(e) => {
                errors.push(ConfigError::new(pointer, e));
                TimeFormat::parse("").expect("an empty format")
            }
        };
        let time_format = check_format("/time_key_format", &raw.time_key_format);
        let index = if raw.logstash_format {
            let date = check_format("/logstash_dateformat", &raw.logstash_dateformat);
            IndexName::Logstash {
                prefix: raw.logstash_prefix.clone(),
                separator: raw.logstash_prefix_separator.clone(),
                prefix_key: None,
                date,
            }
        } else if raw.index.contains('%') {
            IndexName::Timed(check_format("/index", &raw.index))
        } else {
            IndexName::Fixed(raw.index.clone())
        };
        let index = match (index, &raw.logstash_prefix_key) {
            (
                IndexName::Logstash {
                    prefix,
                    separator,
                    date,
                    ..
                },
                Some(key),
            ) => {
                let prefix_key = record_path(key);
                if prefix_key.is_none() {
                    errors.push(ConfigError::new(
                        "/logstash_prefix_key",
                        format!("{key:?}: name a record key, e.g. \"$kubernetes['namespace_name']\" or \"service\""),
                    ));
                }
                IndexName::Logstash {
                    prefix,
                    separator,
                    prefix_key,
                    date,
                }
            }
            (index, _) => index,
        };
        for (pointer, name) in [
            ("/index", &raw.index),
            ("/logstash_prefix", &raw.logstash_prefix),
            ("/logstash_prefix_separator", &raw.logstash_prefix_separator),
            ("/type", &raw.doc_type),
        ] {
            if !safe_in_action_line(name) {
                errors.push(ConfigError::new(
                    pointer,
                    format!("{name:?} has a quote, a backslash or a control character, which an index or type name cannot have"),
                ));
            }
        }
        for (pointer, key) in [("/time_key", &raw.time_key), ("/tag_key", &raw.tag_key)] {
            if key.is_empty() {
                errors.push(ConfigError::new(pointer, "an empty key: name the field"));
            }
        }
        let operation = match raw.write_operation.to_ascii_lowercase().as_str() {
            "index" => WriteOperation::Index,
            "create" => WriteOperation::Create,
            "update" => WriteOperation::Update,
            "upsert" => WriteOperation::Upsert,
            _ => {
                errors.push(ConfigError::new(
                    "/write_operation",
                    format!(
                        "{:?}: use create, index, update or upsert",
                        raw.write_operation
                    ),
                ));
                WriteOperation::Create
            }
        };
        let id_key = match &raw.id_key {
            None => None,
            Some(key) => {
                let path = record_path(key);
                if path.is_none() {
                    errors.push(ConfigError::new(
                        "/id_key",
                        format!(
                            "{key:?}: name a record key, e.g. \"request_id\" or \"$ids['doc']\""
                        ),
                    ));
                }
                path
            }
        };
        if matches!(operation, WriteOperation::Update | WriteOperation::Upsert)
            && !raw.generate_id
            && raw.id_key.is_none()
        {
            errors.push(ConfigError::new(
                "/write_operation",
                format!(
                    "{} needs a document id: set id_key (or generate_id)",
                    raw.write_operation
                ),
            ));
        }
        let gzip = Compress::gzip(Some(
            raw.compress.as_ref().unwrap_or(&Compress::Switch(false)),
        ))
        .unwrap_or_else(|name| {
            errors.push(ConfigError::new(
                "/compress",
                format!("{name:?}: use gzip (or true) to compress, none (or false) not to"),
            ));
            false
        });
        if raw.max_request_bytes < 1024 {
            errors.push(ConfigError::new(
                "/max_request_bytes",
                format!("{} is below 1024 bytes", raw.max_request_bytes),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let scheme = if raw.tls { "https" } else { "http" };
        let port = raw.port.unwrap_or(9200);
        let authority = if port == if raw.tls { 443 } else { 80 } {
            host.to_string()
        } else {
            format!("{host}:{port}")
        };
        let mut url = format!("{scheme}://{authority}{path}/_bulk");
        if let Some(pipeline) = &raw.pipeline {
            url.push_str("?pipeline=");
            url.push_str(pipeline);
        }
        Ok(OpenSearch {
            url,
            index,
            doc_type: (!raw.suppress_type_name).then_some(raw.doc_type),
            operation,
            time_key: raw.time_key,
            time_format,
            time_nanos: raw.time_key_nanos,
            tag_key: raw.include_tag_key.then_some(raw.tag_key),
            generate_id: raw.generate_id,
            id_key,
            replace_dots: raw.replace_dots,
            trace_output: raw.trace_output,
            trace_error: raw.trace_error,
            basic_auth: raw.basic_auth,
            gzip,
            max_request_bytes: raw.max_request_bytes,
        })
    }
}

impl wasm_router_sdk::PluginConfig for OpenSearch {
    fn from_json(json: &str) -> Result<Self, Vec<ConfigError>> {
        OpenSearch::from_config(wasm_router_sdk::config::parse(json)?)
    }

    fn json_schema() -> wasm_router_sdk::serde_json::Value {
        wasm_router_sdk::config::schema::<OpenSearchConfig>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_router_sdk::PluginConfig;

    #[test]
    fn fluent_bit_defaults() {
        let os = OpenSearch::from_json("{}").unwrap();
        assert_eq!(os.url, "http://127.0.0.1:9200/_bulk");
        assert!(matches!(&os.index, IndexName::Fixed(i) if i == "fluent-bit"));
        assert_eq!(os.doc_type.as_deref(), Some("_doc"));
        assert_eq!(os.operation, WriteOperation::Create);
        assert_eq!(os.time_key, "@timestamp");
        assert_eq!(os.tag_key, None);
        assert!(!os.gzip && !os.basic_auth && !os.generate_id && !os.replace_dots);
    }

    #[test]
    fn url_from_host_port_tls_path_and_pipeline() {
        let url = |json: &str| OpenSearch::from_json(json).unwrap().url;
        assert_eq!(
            url(r#"{"host": "search.example.com", "tls": true, "port": 443}"#),
            "https://search.example.com/_bulk"
        );
        assert_eq!(
            url(r#"{"host": "h", "port": 9243, "tls": true, "path": "/es/", "pipeline": "geo"}"#),
            "https://h:9243/es/_bulk?pipeline=geo"
        );
    }

    #[test]
    fn problems_point_at_their_option() {
        for (json, path, message) in [
            (
                r#"{"write_operation": "delete"}"#,
                "/write_operation",
                "create, index",
            ),
            (
                r#"{"write_operation": "update"}"#,
                "/write_operation",
                "id_key",
            ),
            (r#"{"time_key_format": "%Q"}"#, "/time_key_format", "%Q"),
            (r#"{"index": "a\"b"}"#, "/index", "quote"),
            (
                r#"{"logstash_format": true, "logstash_prefix_key": "$a[b]"}"#,
                "/logstash_prefix_key",
                "record key",
            ),
            (r#"{"compress": "zstd"}"#, "/compress", "gzip"),
            (r#"{"path": "es"}"#, "/path", "starting with"),
            (r#"{"http_passwd": "x"}"#, "", "unknown field `http_passwd`"),
        ] {
            let found = OpenSearch::from_json(json).unwrap_err();
            assert!(
                found
                    .iter()
                    .any(|e| e.path.starts_with(path) && e.message.contains(message)),
                "{json}: {found:?}"
            );
        }
    }
}
