//! The operator's config ([`DatadogConfig`], what the JSON Schema describes), checked and
//! turned into the [`Datadog`] output: the intake URL, the entry fields to add, and the
//! request limits.
//!
//! The option names and defaults are those of Fluent Bit's `datadog` output
//! (`plugins/out_datadog/datadog.c` config map), so a FireLens `[OUTPUT] Name datadog`
//! section maps key for key; `apikey` is not one of them: the key is the operator's secret
//! `api_key`, injected by the router into the `DD-API-KEY` header.

use crate::limits::{MAX_ENTRIES_PER_REQUEST, MAX_REQUEST_BYTES};
use std::collections::BTreeMap;
use wasm_router_sdk::ConfigError;

/// The Datadog sites with a Logs intake (<https://docs.datadoghq.com/api/latest/logs/send-logs/>):
/// the intake is `https://http-intake.logs.{site}`.
pub const SITES: &[&str] = &[
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "uk1.datadoghq.com",
    "ddog-gov.com",
    "us2.ddog-gov.com",
];

/// The intake path of the Logs API v2.
pub const LOGS_PATH: &str = "/api/v2/logs";

/// The operator's config.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatadogConfig {
    /// The Datadog site: datadoghq.com (default), us3.datadoghq.com, us5.datadoghq.com,
    /// datadoghq.eu, ap1.datadoghq.com, ap2.datadoghq.com, uk1.datadoghq.com, ddog-gov.com or
    /// us2.ddog-gov.com (an `app.` prefix, as in the web UI's address, is ignored). Logs go
    /// to `https://http-intake.logs.{site}/api/v2/logs`.
    #[serde(default = "default_site")]
    pub site: String,
    /// The intake base URL instead of the site's (a proxy, a test server), e.g.
    /// `http://127.0.0.1:8080`; `/api/v2/logs` is appended. The router must allow it
    /// (`allow_hosts`).
    #[serde(default)]
    pub url: Option<String>,
    /// `service` of every entry: the name of the application or database producing the logs.
    #[serde(default)]
    pub dd_service: Option<String>,
    /// `ddsource` of every entry: the technology (e.g. `nginx`, `postgres`).
    #[serde(default)]
    pub dd_source: Option<String>,
    /// `ddtags` of every entry, comma-separated `key:value` tags (e.g. `team:logs,env:prod`),
    /// after any tags the record carries in its own `ddtags`.
    #[serde(default)]
    pub dd_tags: Option<String>,
    /// The record key whose value becomes `message` (default `log`, what FireLens sends).
    #[serde(default = "default_message_key")]
    pub dd_message_key: String,
    /// `hostname` of every entry. Unset: Datadog reads the record's `host` or `hostname`.
    #[serde(default)]
    pub dd_hostname: Option<String>,
    /// The record key whose value becomes `status` (the level, e.g. `level`). Unset: Datadog's
    /// status remapper reads `status`, `level`, `severity`… itself.
    #[serde(default)]
    pub dd_status_key: Option<String>,
    /// Add the event's tag to every entry, under `tag_key`.
    #[serde(default)]
    pub include_tag_key: bool,
    /// The key of the tag when `include_tag_key` is set (default `tagkey`, as in Fluent Bit).
    #[serde(default = "default_tag_key")]
    pub tag_key: String,
    /// The key of the event time (milliseconds since the Unix epoch) in every entry
    /// (default `timestamp`, which Datadog reads as the log's date).
    #[serde(default = "default_date_key")]
    pub json_date_key: String,
    /// `ecs`: move the ECS metadata FireLens adds (`container_id`, `container_name`,
    /// `container_image`, `ecs_cluster`, `ecs_task_definition`, `ecs_task_arn`) into `ddtags`
    /// as Datadog's ECS tags, as Fluent Bit's `provider ecs` does.
    #[serde(default)]
    pub provider: Option<String>,
    /// Ask the router to gzip the body (default on, as Datadog recommends): `true`/`false`,
    /// or Fluent Bit's `gzip` / `none`.
    #[serde(default)]
    pub compress: Option<Compress>,
    /// Extra plain headers (never credentials: the API key is the secret `api_key`).
    #[serde(default)]
    pub header: BTreeMap<String, String>,
    /// The largest request body, uncompressed, in bytes (at most Datadog's 5,000,000).
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// The most entries per request (at most Datadog's 1000).
    #[serde(default = "default_max_entries")]
    pub max_entries_per_request: usize,
}

pub use wasm_router_sdk::vendor::Compress;

fn default_site() -> String {
    "datadoghq.com".into()
}

fn default_message_key() -> String {
    "log".into()
}

fn default_tag_key() -> String {
    "tagkey".into()
}

fn default_date_key() -> String {
    "timestamp".into()
}

fn default_max_request_bytes() -> usize {
    MAX_REQUEST_BYTES
}

fn default_max_entries() -> usize {
    MAX_ENTRIES_PER_REQUEST
}

/// The ECS metadata keys `provider = "ecs"` moves into `ddtags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Amazon ECS (FireLens metadata).
    Ecs,
}

/// The checked config: what [`Datadog::encode`](wasm_router_sdk::output::Output::encode)
/// works from.
#[derive(Debug, Clone)]
pub struct Datadog {
    /// `…/api/v2/logs`.
    pub url: String,
    /// `service`.
    pub service: Option<String>,
    /// `ddsource`.
    pub source: Option<String>,
    /// Configured `ddtags` (added after the record's own).
    pub tags: Option<String>,
    /// The record key renamed `message`.
    pub message_key: String,
    /// `hostname`.
    pub hostname: Option<String>,
    /// The record key renamed `status`.
    pub status_key: Option<String>,
    /// The key the event tag goes under, if included.
    pub tag_key: Option<String>,
    /// The key of the time in milliseconds.
    pub date_key: String,
    /// ECS metadata remapping.
    pub provider: Option<Provider>,
    /// gzip the body.
    pub gzip: bool,
    /// Extra plain headers.
    pub headers: Vec<(String, String)>,
    /// Largest body.
    pub max_request_bytes: usize,
    /// Most entries per request.
    pub max_entries: usize,
}

/// Header names that carry credentials: refused in `header`, where they would enter the
/// plugin's memory and the router's test output in clear.
fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "api-key",
        "apikey",
        "api_key",
        "authorization",
        "application-key",
    ]
    .iter()
    .any(|credential| name.contains(credential))
}

/// An `http(s)://host[:port][/path]` base URL without query or fragment, trailing `/` cut.
pub fn base_url(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("{url:?} has no host"));
    }
    if url.contains(['?', '#', ' ']) {
        return Err(format!(
            "{url:?} has a query, a fragment or a space: give the base URL only"
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

impl Datadog {
    /// Checks `raw`, collecting every problem with its JSON pointer.
    pub fn from_config(raw: DatadogConfig) -> Result<Datadog, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let url = match &raw.url {
            Some(url) => match base_url(url) {
                Ok(base) => format!("{base}{LOGS_PATH}"),
                Err(problem) => {
                    errors.push(ConfigError::new(
                        "/url",
                        format!("{problem}; e.g. \"https://proxy.internal:8443\""),
                    ));
                    String::new()
                }
            },
            None => {
                let lowered = raw.site.trim().to_ascii_lowercase();
                let site = lowered.strip_prefix("app.").unwrap_or(&lowered).to_owned();
                if !SITES.contains(&site.as_str()) {
                    errors.push(ConfigError::new(
                        "/site",
                        format!(
                            "unknown Datadog site {:?}; use one of {} (or `url` for a proxy)",
                            raw.site,
                            SITES.join(", ")
                        ),
                    ));
                }
                format!("https://http-intake.logs.{site}{LOGS_PATH}")
            }
        };
        for (pointer, key) in [
            ("/dd_message_key", &raw.dd_message_key),
            ("/tag_key", &raw.tag_key),
            ("/json_date_key", &raw.json_date_key),
        ] {
            if key.is_empty() {
                errors.push(ConfigError::new(pointer, "an empty key: name the field"));
            }
        }
        if raw.dd_status_key.as_deref() == Some("") {
            errors.push(ConfigError::new(
                "/dd_status_key",
                "an empty key: name the field (e.g. \"level\") or leave it out",
            ));
        }
        let provider = match raw.provider.as_deref().map(str::to_ascii_lowercase) {
            None => None,
            Some(name) if name == "ecs" => Some(Provider::Ecs),
            Some(_) => {
                errors.push(ConfigError::new(
                    "/provider",
                    "the only provider is \"ecs\" (ECS metadata into ddtags); leave it out otherwise",
                ));
                None
            }
        };
        let gzip = Compress::gzip(raw.compress.as_ref()).unwrap_or_else(|name| {
            errors.push(ConfigError::new(
                "/compress",
                format!("{name:?}: use gzip (or true) to compress, none (or false) not to"),
            ));
            true
        });
        for name in raw.header.keys() {
            if is_credential_header(name) {
                errors.push(ConfigError::at(
                    ["header", name.as_str()],
                    "credentials cannot go in plain headers: the router injects the API key from the secret `api_key` into DD-API-KEY",
                ));
            }
        }
        if raw.max_request_bytes < 1024 || raw.max_request_bytes > MAX_REQUEST_BYTES {
            errors.push(ConfigError::new(
                "/max_request_bytes",
                format!(
                    "{} is outside 1024 ..= {MAX_REQUEST_BYTES} (Datadog's limit per payload, uncompressed)",
                    raw.max_request_bytes
                ),
            ));
        }
        if raw.max_entries_per_request == 0 || raw.max_entries_per_request > MAX_ENTRIES_PER_REQUEST
        {
            errors.push(ConfigError::new(
                "/max_entries_per_request",
                format!(
                    "{} is outside 1 ..= {MAX_ENTRIES_PER_REQUEST} (Datadog's limit per array)",
                    raw.max_entries_per_request
                ),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let non_empty = |value: Option<String>| value.filter(|v| !v.is_empty());
        Ok(Datadog {
            url,
            service: non_empty(raw.dd_service),
            source: non_empty(raw.dd_source),
            tags: non_empty(raw.dd_tags),
            message_key: raw.dd_message_key,
            hostname: non_empty(raw.dd_hostname),
            status_key: raw.dd_status_key,
            tag_key: raw.include_tag_key.then_some(raw.tag_key),
            date_key: raw.json_date_key,
            provider,
            gzip,
            headers: raw.header.into_iter().collect(),
            max_request_bytes: raw.max_request_bytes,
            max_entries: raw.max_entries_per_request,
        })
    }
}

impl wasm_router_sdk::PluginConfig for Datadog {
    fn from_json(json: &str) -> Result<Self, Vec<ConfigError>> {
        Datadog::from_config(wasm_router_sdk::config::parse(json)?)
    }

    fn json_schema() -> wasm_router_sdk::serde_json::Value {
        wasm_router_sdk::config::schema::<DatadogConfig>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_router_sdk::PluginConfig;

    fn errors(json: &str) -> Vec<ConfigError> {
        Datadog::from_json(json).unwrap_err()
    }

    #[test]
    fn sites_pick_the_intake_and_url_overrides_it() {
        let default = Datadog::from_json("{}").unwrap();
        assert_eq!(
            default.url,
            "https://http-intake.logs.datadoghq.com/api/v2/logs"
        );
        assert!(default.gzip);
        for (site, host) in [
            ("datadoghq.eu", "http-intake.logs.datadoghq.eu"),
            ("us3.datadoghq.com", "http-intake.logs.us3.datadoghq.com"),
            ("us5.datadoghq.com", "http-intake.logs.us5.datadoghq.com"),
            ("ap1.datadoghq.com", "http-intake.logs.ap1.datadoghq.com"),
            ("ddog-gov.com", "http-intake.logs.ddog-gov.com"),
            ("app.datadoghq.eu", "http-intake.logs.datadoghq.eu"),
            ("US5.datadoghq.com", "http-intake.logs.us5.datadoghq.com"),
        ] {
            let config = Datadog::from_json(&format!(r#"{{"site": "{site}"}}"#)).unwrap();
            assert_eq!(config.url, format!("https://{host}/api/v2/logs"));
        }
        let proxied =
            Datadog::from_json(r#"{"site": "datadoghq.eu", "url": "http://127.0.0.1:9/dd/"}"#)
                .unwrap();
        assert_eq!(proxied.url, "http://127.0.0.1:9/dd/api/v2/logs");
    }

    #[test]
    fn fluent_bit_option_values_are_accepted() {
        let config = Datadog::from_json(
            r#"{"compress": "gzip", "include_tag_key": true, "provider": "ECS", "dd_tags": ""}"#,
        )
        .unwrap();
        assert!(config.gzip);
        assert_eq!(config.tag_key.as_deref(), Some("tagkey"));
        assert_eq!(config.provider, Some(Provider::Ecs));
        assert_eq!(config.tags, None);
        assert!(!Datadog::from_json(r#"{"compress": false}"#).unwrap().gzip);
        assert!(!Datadog::from_json(r#"{"compress": "none"}"#).unwrap().gzip);
        assert_eq!(
            Datadog::from_json(r#"{"tag_key": "t"}"#).unwrap().tag_key,
            None
        );
    }

    #[test]
    fn problems_point_at_their_option() {
        let cases = [
            (
                r#"{"site": "datadoghq.org"}"#,
                "/site",
                "unknown Datadog site",
            ),
            (r#"{"url": "ftp://x"}"#, "/url", "not an http"),
            (r#"{"url": "https://x/?a=1"}"#, "/url", "query"),
            (r#"{"compress": "zstd"}"#, "/compress", "use gzip"),
            (r#"{"provider": "k8s"}"#, "/provider", "\"ecs\""),
            (
                r#"{"max_request_bytes": 6000000}"#,
                "/max_request_bytes",
                "5000000",
            ),
            (
                r#"{"max_entries_per_request": 1001}"#,
                "/max_entries_per_request",
                "1000",
            ),
            (r#"{"dd_message_key": ""}"#, "/dd_message_key", "empty"),
            (
                r#"{"header": {"DD-API-KEY": "x"}}"#,
                "/header/DD-API-KEY",
                "secret `api_key`",
            ),
            (r#"{"apikey": "x"}"#, "/apikey", "unknown field `apikey`"),
        ];
        for (json, path, message) in cases {
            let found = errors(json);
            assert!(
                found
                    .iter()
                    .any(|e| e.path == path && e.message.contains(message)),
                "{json}: {found:?}"
            );
        }
    }

    #[test]
    fn the_schema_describes_every_option() {
        let schema = Datadog::json_schema();
        assert_eq!(schema["additionalProperties"], false);
        for option in [
            "site",
            "url",
            "dd_service",
            "dd_source",
            "dd_tags",
            "dd_message_key",
            "dd_hostname",
            "include_tag_key",
            "tag_key",
            "json_date_key",
            "compress",
        ] {
            assert!(
                schema["properties"][option]["description"].is_string(),
                "{option}"
            );
        }
    }
}
