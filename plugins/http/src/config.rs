//! The operator's config ([`HttpConfig`], what the JSON Schema describes), checked and turned
//! into the [`Http`] output: the URL, the body format, the date key, the headers.
//!
//! The option names, values and defaults are those of Fluent Bit's `http` output
//! (`plugins/out_http/http.c` config map, `http_conf.c`), so a FireLens `[OUTPUT] Name http`
//! section maps key for key; `http_passwd` is not one of them: basic auth is the operator's
//! secret `basic_auth` (`"basic:USER:env:VARIABLE"`), which the router encodes into the
//! `Authorization` header, so the password never enters the plugin.

use crate::date::DateFormat;
use wasm_router_sdk::ConfigError;
use wasm_router_sdk::output::Method;

pub use wasm_router_sdk::vendor::Compress;

/// The secret holding the basic-auth credentials (`basic:USER:env:VARIABLE`).
pub const BASIC_AUTH_SECRET: &str = "basic_auth";

/// The largest request body by default, uncompressed: Fluent Bit sends a chunk (about 2 MB)
/// per request; a batch larger than this is cut into several requests.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 5 << 20;

/// The operator's config.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The endpoint's host name or address (default `127.0.0.1`). The router must allow it
    /// (`allow_hosts`).
    #[serde(default = "default_host")]
    pub host: String,
    /// The TCP port (default 80, or 443 with `tls`).
    #[serde(default)]
    pub port: Option<u16>,
    /// Connect with TLS (`https://`); certificates are checked against the system's roots.
    #[serde(default)]
    pub tls: bool,
    /// The request path (default `/`), with its query if any.
    #[serde(default = "default_uri")]
    pub uri: String,
    /// The body: `json` (an array of records, default), `json_lines` (one record per line),
    /// `json_stream` (records one after another) or `msgpack` (Fluent Bit's event
    /// encoding, `[[time, {}], record]` per event). `gelf` is not supported yet.
    #[serde(default = "default_format")]
    pub format: String,
    /// Extra headers, each `Name value` as Fluent Bit's repeatable `Header`. A
    /// `Content-Type` here replaces the format's.
    #[serde(default)]
    pub header: Vec<String>,
    /// A header that carries the batch's tag, e.g. `FLUENT-TAG` (Fluent Bit's `header_tag`).
    #[serde(default)]
    pub header_tag: Option<String>,
    /// `POST` (default) or `PUT`.
    #[serde(default = "default_method")]
    pub http_method: String,
    /// Send every configured header even when a name repeats (default `true`); `false`: the
    /// last value of a name wins.
    #[serde(default = "default_true")]
    pub allow_duplicated_headers: bool,
    /// Send basic auth from the secret `basic_auth` (`"basic:USER:env:VARIABLE"`, the router
    /// builds the `Authorization` header).
    #[serde(default)]
    pub basic_auth: bool,
    /// `gzip` the body (or `true`); `none` / `false` (default) not.
    #[serde(default)]
    pub compress: Option<Compress>,
    /// The key the event time goes under in JSON formats (default `date`); `false`, `off`
    /// or `no` leaves the time out.
    #[serde(default = "default_date_key")]
    pub json_date_key: String,
    /// The format of the time: `double` (default), `epoch`, `epoch_ms`, `iso8601` or
    /// `java_sql_timestamp`.
    #[serde(default = "default_date_format")]
    pub json_date_format: String,
    /// Quote the start of the endpoint's answer in the reason of a failed request (default
    /// `true`).
    #[serde(default = "default_true")]
    pub log_response_payload: bool,
    /// The largest request body, uncompressed, in bytes (default 5 MiB); an event larger
    /// than that alone is sent in a request of its own.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// GELF: the key of `timestamp` (refused: `gelf` is not supported yet).
    #[serde(default)]
    pub gelf_timestamp_key: Option<String>,
    /// GELF: the key of `host` (refused: `gelf` is not supported yet).
    #[serde(default)]
    pub gelf_host_key: Option<String>,
    /// GELF: the key of `short_message` (refused: `gelf` is not supported yet).
    #[serde(default)]
    pub gelf_short_message_key: Option<String>,
    /// GELF: the key of `full_message` (refused: `gelf` is not supported yet).
    #[serde(default)]
    pub gelf_full_message_key: Option<String>,
    /// GELF: the key of `level` (refused: `gelf` is not supported yet).
    #[serde(default)]
    pub gelf_level_key: Option<String>,
}

fn default_host() -> String {
    "127.0.0.1".into()
}

fn default_uri() -> String {
    "/".into()
}

fn default_format() -> String {
    "json".into()
}

fn default_method() -> String {
    "POST".into()
}

fn default_true() -> bool {
    true
}

fn default_date_key() -> String {
    "date".into()
}

fn default_date_format() -> String {
    "double".into()
}

fn default_max_request_bytes() -> usize {
    DEFAULT_MAX_REQUEST_BYTES
}

/// The body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `[{…},{…}]`, `application/json`.
    Json,
    /// `{…}\n{…}\n`, `application/x-ndjson`.
    JsonLines,
    /// `{…}{…}`, `application/json`.
    JsonStream,
    /// `[[time, {}], record]…`, `application/msgpack`.
    Msgpack,
}

impl Format {
    /// The `Content-Type` Fluent Bit sends with the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json | Format::JsonStream => "application/json",
            Format::JsonLines => "application/x-ndjson",
            Format::Msgpack => "application/msgpack",
        }
    }
}

/// The checked config: what [`Http::encode`](wasm_router_sdk::output::Output::encode) works
/// from.
#[derive(Debug, Clone)]
pub struct Http {
    /// `http(s)://host[:port]/uri`.
    pub url: String,
    /// The body format.
    pub format: Format,
    /// The key and format of the time in JSON bodies; `None`: left out.
    pub date: Option<(String, DateFormat)>,
    /// Headers in order (the format's `Content-Type` first unless configured).
    pub headers: Vec<(String, String)>,
    /// `POST` or `PUT`.
    pub method: Method,
    /// The header carrying the tag.
    pub header_tag: Option<String>,
    /// Send the secret `basic_auth` as `Authorization: Basic …`.
    pub basic_auth: bool,
    /// gzip the body.
    pub gzip: bool,
    /// Quote the answer in failure reasons.
    pub log_response_payload: bool,
    /// Largest body.
    pub max_request_bytes: usize,
}

impl Http {
    /// Checks `raw`, collecting every problem with its JSON pointer.
    pub fn from_config(raw: HttpConfig) -> Result<Http, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let host = raw.host.trim();
        if host.is_empty() || host.contains(['/', '?', '#', ' ', '@']) || host.contains("://") {
            errors.push(ConfigError::new(
                "/host",
                format!("{:?} is not a host name: give the name or address alone, e.g. \"logs.example.com\" (the scheme is `tls`, the path `uri`)", raw.host),
            ));
        }
        if raw.port == Some(0) {
            errors.push(ConfigError::new(
                "/port",
                "0 is not a port: use 1 ..= 65535",
            ));
        }
        let uri = if raw.uri.starts_with('/') {
            raw.uri.clone()
        } else {
            format!("/{}", raw.uri)
        };
        if uri.contains([' ', '#']) {
            errors.push(ConfigError::new(
                "/uri",
                format!(
                    "{:?} has a space or a fragment: give the path (and query) alone",
                    raw.uri
                ),
            ));
        }
        let format = match raw.format.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "json_lines" => Some(Format::JsonLines),
            "json_stream" => Some(Format::JsonStream),
            "msgpack" => Some(Format::Msgpack),
            "gelf" => {
                errors.push(ConfigError::new(
                    "/format",
                    "gelf is not supported yet: use json_lines (or json) and map the GELF fields with a filter, or send GELF with Fluent Bit's gelf output",
                ));
                None
            }
            _ => {
                errors.push(ConfigError::new(
                    "/format",
                    format!(
                        "{:?}: use json, json_lines, json_stream or msgpack",
                        raw.format
                    ),
                ));
                None
            }
        };
        for (pointer, value) in [
            ("/gelf_timestamp_key", &raw.gelf_timestamp_key),
            ("/gelf_host_key", &raw.gelf_host_key),
            ("/gelf_short_message_key", &raw.gelf_short_message_key),
            ("/gelf_full_message_key", &raw.gelf_full_message_key),
            ("/gelf_level_key", &raw.gelf_level_key),
        ] {
            if value.is_some() {
                errors.push(ConfigError::new(
                    pointer,
                    "the gelf format is not supported yet, so its keys are not either: remove the key",
                ));
            }
        }
        let date_format = DateFormat::parse(&raw.json_date_format).unwrap_or_else(|| {
            errors.push(ConfigError::new(
                "/json_date_format",
                format!(
                    "{:?}: use double, epoch, epoch_ms, iso8601 or java_sql_timestamp",
                    raw.json_date_format
                ),
            ));
            DateFormat::Double
        });
        let date = match raw.json_date_key.to_ascii_lowercase().as_str() {
            "false" | "off" | "no" => None,
            "" => {
                errors.push(ConfigError::new(
                    "/json_date_key",
                    "an empty key: name the field, or write false to leave the time out",
                ));
                None
            }
            _ => Some((raw.json_date_key.clone(), date_format)),
        };
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
        let mut headers: Vec<(String, String)> = Vec::new();
        for (i, line) in raw.header.iter().enumerate() {
            let Some((name, value)) = line.trim().split_once(char::is_whitespace) else {
                errors.push(ConfigError::at(
                    ["header".to_string(), i.to_string()],
                    format!(
                        "{line:?}: write the name, a space, then the value, e.g. \"X-Source ecs\""
                    ),
                ));
                continue;
            };
            let (name, value) = (name.trim_end_matches(':'), value.trim());
            if !raw.allow_duplicated_headers {
                headers.retain(|(known, _)| !known.eq_ignore_ascii_case(name));
            }
            headers.push((name.to_string(), value.to_string()));
        }
        let method = match raw.http_method.to_ascii_uppercase().as_str() {
            "POST" => Method::Post,
            "PUT" => Method::Put,
            _ => {
                errors.push(ConfigError::new(
                    "/http_method",
                    format!("{:?}: use POST or PUT", raw.http_method),
                ));
                Method::Post
            }
        };
        if raw
            .header_tag
            .as_deref()
            .is_some_and(|name| name.is_empty() || name.contains(char::is_whitespace))
        {
            errors.push(ConfigError::new(
                "/header_tag",
                "name the header, e.g. \"FLUENT-TAG\"",
            ));
        }
        if raw.max_request_bytes < 1024 {
            errors.push(ConfigError::new(
                "/max_request_bytes",
                format!("{} is below 1024 bytes", raw.max_request_bytes),
            ));
        }
        let Some(format) = format else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            headers.insert(0, ("Content-Type".into(), format.content_type().into()));
        }
        let scheme = if raw.tls { "https" } else { "http" };
        let url = match raw.port {
            Some(port) if port != if raw.tls { 443 } else { 80 } => {
                format!("{scheme}://{host}:{port}{uri}")
            }
            _ => format!("{scheme}://{host}{uri}"),
        };
        Ok(Http {
            url,
            format,
            date,
            headers,
            method,
            header_tag: raw.header_tag,
            basic_auth: raw.basic_auth,
            gzip,
            log_response_payload: raw.log_response_payload,
            max_request_bytes: raw.max_request_bytes,
        })
    }
}

impl wasm_router_sdk::PluginConfig for Http {
    fn from_json(json: &str) -> Result<Self, Vec<ConfigError>> {
        Http::from_config(wasm_router_sdk::config::parse(json)?)
    }

    fn json_schema() -> wasm_router_sdk::serde_json::Value {
        wasm_router_sdk::config::schema::<HttpConfig>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_router_sdk::PluginConfig;

    #[test]
    fn fluent_bit_defaults() {
        let http = Http::from_json("{}").unwrap();
        assert_eq!(http.url, "http://127.0.0.1/");
        assert_eq!(http.format, Format::Json);
        assert_eq!(http.date, Some(("date".into(), DateFormat::Double)));
        assert_eq!(
            http.headers,
            [("Content-Type".into(), "application/json".into())]
        );
        assert!(!http.gzip && !http.basic_auth && http.log_response_payload);
    }

    #[test]
    fn url_from_host_port_tls_and_uri() {
        let url = |json: &str| Http::from_json(json).unwrap().url;
        assert_eq!(
            url(r#"{"host": "logs.example.com", "tls": true, "port": 443, "uri": "bulk"}"#),
            "https://logs.example.com/bulk"
        );
        assert_eq!(
            url(r#"{"host": "h", "port": 8090, "uri": "/a?b=c"}"#),
            "http://h:8090/a?b=c"
        );
        assert_eq!(
            url(r#"{"host": "h", "tls": true, "port": 80}"#),
            "https://h:80/"
        );
    }

    #[test]
    fn headers_repeat_unless_duplicates_are_refused_and_content_type_is_replaced() {
        let http = Http::from_json(
            r#"{"header": ["X-A 1", "x-a 2", "Content-Type application/json; charset=utf-8"]}"#,
        )
        .unwrap();
        assert_eq!(
            http.headers,
            [
                ("X-A".into(), "1".into()),
                ("x-a".into(), "2".into()),
                (
                    "Content-Type".into(),
                    "application/json; charset=utf-8".into()
                )
            ]
        );
        let last = Http::from_json(r#"{"header": ["X-A 1", "x-a 2"], "allow_duplicated_headers": false, "format": "json_lines"}"#).unwrap();
        assert_eq!(
            last.headers,
            [
                ("Content-Type".into(), "application/x-ndjson".into()),
                ("x-a".into(), "2".into())
            ]
        );
    }

    #[test]
    fn date_key_false_leaves_the_time_out() {
        assert_eq!(
            Http::from_json(r#"{"json_date_key": "false"}"#)
                .unwrap()
                .date,
            None
        );
        assert_eq!(
            Http::from_json(r#"{"json_date_key": "timestamp", "json_date_format": "iso8601"}"#)
                .unwrap()
                .date,
            Some(("timestamp".into(), DateFormat::Iso8601))
        );
    }

    #[test]
    fn problems_point_at_their_option() {
        for (json, path, message) in [
            (r#"{"format": "gelf"}"#, "/format", "not supported yet"),
            (r#"{"format": "xml"}"#, "/format", "json_lines"),
            (
                r#"{"gelf_host_key": "h"}"#,
                "/gelf_host_key",
                "not supported",
            ),
            (
                r#"{"json_date_format": "rfc"}"#,
                "/json_date_format",
                "iso8601",
            ),
            (r#"{"compress": "zstd"}"#, "/compress", "gzip"),
            (r#"{"host": "https://x"}"#, "/host", "not a host name"),
            (r#"{"header": ["NoValue"]}"#, "/header/0", "a space"),
            (r#"{"http_method": "GET"}"#, "/http_method", "POST or PUT"),
            (r#"{"http_passwd": "x"}"#, "", "unknown field `http_passwd`"),
        ] {
            let found = Http::from_json(json).unwrap_err();
            assert!(
                found
                    .iter()
                    .any(|e| e.path.starts_with(path) && e.message.contains(message)),
                "{json}: {found:?}"
            );
        }
    }
}
