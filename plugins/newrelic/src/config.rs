//! The operator's config ([`NewRelicConfig`], what the JSON Schema describes), checked and
//! turned into the [`NewRelic`] output.
//!
//! Options follow newrelic-fluent-bit-output and Fluent Bit's `nrlogs`: `base_uri` (the Log
//! API endpoint; also the override for proxies and tests), `compress`, `max_records`, and
//! `max_payload_bytes` for the old `maxBufferSize`. The keys themselves (`api_key`,
//! `license_key`) are not options: they are the operator's secrets, injected by the router;
//! `auth` says which of the two to use. Dropped: `proxy`, `ignoreSystemProxy`, `caBundleFile`,
//! `caBundleDir`, `validateProxyCerts` (connections and TLS belong to the router) and
//! `maxTimeBetweenFlushes` (batching belongs to the router's buffer).

use std::collections::BTreeMap;
use wasm_router_sdk::ConfigError;
use wasm_router_sdk::serde_json::Value as Json;

/// New Relic's limit on one POST's payload: 1 MB, 10^6 bytes
/// (<https://docs.newrelic.com/docs/logs/log-api/introduction-log-api/>, "Limits and
/// restricted characters"); newrelic-fluent-bit-output applies it to the gzipped payload.
pub const MAX_PAYLOAD_BYTES: usize = 1_000_000;

/// The highest `max_payload_bytes` (uncompressed) accepted with `compress` on: 10× the limit,
/// for logs known to compress well. A payload whose gzip is still over the limit comes back
/// 413 and the router splits it.
pub const MAX_PAYLOAD_BYTES_GZIP: usize = 10 * MAX_PAYLOAD_BYTES;

/// Default records per request (newrelic-fluent-bit-output's old `maxRecords` default).
pub const DEFAULT_MAX_RECORDS: usize = 1024;

/// The highest `max_records`.
pub const MAX_RECORDS: usize = 10_000;

/// The Log API path.
pub const LOG_PATH: &str = "/log/v1";

/// The operator's config.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRelicConfig {
    /// The account's region: `US` (default, `https://log-api.newrelic.com/log/v1`), `EU`
    /// (`https://log-api.eu.newrelic.com/log/v1`) or `FedRAMP`
    /// (`https://gov-log-api.newrelic.com/log/v1`).
    #[serde(default = "default_region")]
    pub region: String,
    /// The Log API endpoint instead of the region's (a proxy, a test server). A URL without a
    /// path gets `/log/v1`. The router must allow it (`allow_hosts`).
    #[serde(default)]
    pub base_uri: Option<String>,
    /// Which secret holds the key: `api_key` (default; sent as `Api-Key`: a license key or an
    /// Insert key) or `license_key` (sent as `X-License-Key`).
    #[serde(default)]
    pub auth: Auth,
    /// Ask the router to gzip the body (default on): `true`/`false`, or `gzip` / `false`.
    #[serde(default)]
    pub compress: Option<Compress>,
    /// The most log records per request.
    #[serde(default = "default_max_records")]
    pub max_records: usize,
    /// The largest request body before compression, in bytes (default 1,000,000: New
    /// Relic's limit, which then holds whatever the compression ratio; up to 10,000,000 with
    /// `compress` on).
    #[serde(default = "default_max_payload_bytes")]
    pub max_payload_bytes: usize,
    /// The record key whose value becomes the log's `message` (default `log`, what FireLens
    /// sends); without it the record's own `message` is used.
    #[serde(default = "default_message_key")]
    pub message_key: String,
    /// Attributes added once per request to every log (`common.attributes`), e.g.
    /// `{"service.name": "api", "environment": "prod"}`.
    #[serde(default)]
    pub common_attributes: BTreeMap<String, Json>,
    /// Add the events' tag as a common attribute under this name (e.g. `fluent.tag`).
    #[serde(default)]
    pub tag_key: Option<String>,
}

/// Which of the operator's secrets authenticates, and in which header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// The secret `api_key`, in `Api-Key`.
    #[default]
    ApiKey,
    /// The secret `license_key`, in `X-License-Key`.
    LicenseKey,
}

impl Auth {
    /// The header the key goes into.
    pub fn header(self) -> &'static str {
        match self {
            Auth::ApiKey => "Api-Key",
            Auth::LicenseKey => "X-License-Key",
        }
    }

    /// The operator's secret that holds the key.
    pub fn secret(self) -> &'static str {
        match self {
            Auth::ApiKey => "api_key",
            Auth::LicenseKey => "license_key",
        }
    }
}

pub use wasm_router_sdk::vendor::Compress;

fn default_region() -> String {
    "US".into()
}

fn default_max_records() -> usize {
    DEFAULT_MAX_RECORDS
}

fn default_max_payload_bytes() -> usize {
    MAX_PAYLOAD_BYTES
}

fn default_message_key() -> String {
    "log".into()
}

/// The checked config.
#[derive(Debug, Clone)]
pub struct NewRelic {
    /// The Log API endpoint.
    pub url: String,
    /// The key's secret and header.
    pub auth: Auth,
    /// gzip the body.
    pub gzip: bool,
    /// Most records per request.
    pub max_records: usize,
    /// Largest body, uncompressed.
    pub max_payload_bytes: usize,
    /// The record key renamed `message`.
    pub message_key: String,
    /// `common.attributes` without the tag.
    pub common_attributes: wasm_router_sdk::serde_json::Map<String, Json>,
    /// The common attribute the tag goes under.
    pub tag_key: Option<String>,
}

/// `url` as the endpoint: `http(s)://host[:port]` gets `/log/v1`, a URL with a path is kept
/// (trailing `/` cut); no query or fragment.
pub fn endpoint(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("{url:?} has no host"));
    }
    if url.contains(['?', '#', ' ']) {
        return Err(format!("{url:?} has a query, a fragment or a space"));
    }
    let trimmed = url.trim_end_matches('/');
    Ok(if rest.trim_end_matches('/').contains('/') {
        trimmed.to_owned()
    } else {
        format!("{trimmed}{LOG_PATH}")
    })
}

impl NewRelic {
    /// Checks `raw`, collecting every problem with its JSON pointer.
    pub fn from_config(raw: NewRelicConfig) -> Result<NewRelic, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let url = match &raw.base_uri {
            Some(uri) => endpoint(uri).unwrap_or_else(|problem| {
                errors.push(ConfigError::new(
                    "/base_uri",
                    format!("{problem}; e.g. \"https://log-api.eu.newrelic.com/log/v1\""),
                ));
                String::new()
            }),
            None => match raw.region.to_ascii_lowercase().as_str() {
                "us" => "https://log-api.newrelic.com/log/v1".into(),
                "eu" => "https://log-api.eu.newrelic.com/log/v1".into(),
                "fedramp" | "gov" => "https://gov-log-api.newrelic.com/log/v1".into(),
                _ => {
                    errors.push(ConfigError::new(
                        "/region",
                        format!(
                            "unknown region {:?}: use US, EU or FedRAMP (or base_uri for a proxy)",
                            raw.region
                        ),
                    ));
                    String::new()
                }
            },
        };
        let gzip = Compress::gzip(raw.compress.as_ref()).unwrap_or_else(|name| {
            errors.push(ConfigError::new(
                "/compress",
                format!("{name:?}: use gzip (or true) to compress, false not to"),
            ));
            true
        });
        if raw.max_records == 0 || raw.max_records > MAX_RECORDS {
            errors.push(ConfigError::new(
                "/max_records",
                format!("{} is outside 1 ..= {MAX_RECORDS}", raw.max_records),
            ));
        }
        let payload_cap = if gzip {
            MAX_PAYLOAD_BYTES_GZIP
        } else {
            MAX_PAYLOAD_BYTES
        };
        if raw.max_payload_bytes < 1024 || raw.max_payload_bytes > payload_cap {
            errors.push(ConfigError::new(
                "/max_payload_bytes",
                format!(
                    "{} is outside 1024 ..= {payload_cap} (New Relic takes {MAX_PAYLOAD_BYTES} bytes per POST{})",
                    raw.max_payload_bytes,
                    if gzip { " after gzip" } else { ": without compress, that is the body itself" }
                ),
            ));
        }
        if raw.message_key.is_empty() {
            errors.push(ConfigError::new(
                "/message_key",
                "an empty key: name the field (default \"log\")",
            ));
        }
        if raw.tag_key.as_deref() == Some("") {
            errors.push(ConfigError::new(
                "/tag_key",
                "an empty attribute name: name it (e.g. \"fluent.tag\") or leave it out",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut common_attributes = wasm_router_sdk::serde_json::Map::new();
        common_attributes.insert("plugin.type".into(), "wasm-router".into());
        common_attributes.insert("plugin.version".into(), env!("CARGO_PKG_VERSION").into());
        common_attributes.extend(raw.common_attributes);
        Ok(NewRelic {
            url,
            auth: raw.auth,
            gzip,
            max_records: raw.max_records,
            max_payload_bytes: raw.max_payload_bytes,
            message_key: raw.message_key,
            common_attributes,
            tag_key: raw.tag_key,
        })
    }
}

impl wasm_router_sdk::PluginConfig for NewRelic {
    fn from_json(json: &str) -> Result<Self, Vec<ConfigError>> {
        NewRelic::from_config(wasm_router_sdk::config::parse(json)?)
    }

    fn json_schema() -> Json {
        wasm_router_sdk::config::schema::<NewRelicConfig>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_router_sdk::PluginConfig;

    #[test]
    fn regions_and_base_uri() {
        let us = NewRelic::from_json("{}").unwrap();
        assert_eq!(us.url, "https://log-api.newrelic.com/log/v1");
        assert_eq!(us.auth, Auth::ApiKey);
        assert!(us.gzip);
        assert_eq!(us.max_records, 1024);
        assert_eq!(us.max_payload_bytes, 1_000_000);
        let eu = NewRelic::from_json(r#"{"region": "eu"}"#).unwrap();
        assert_eq!(eu.url, "https://log-api.eu.newrelic.com/log/v1");
        let gov = NewRelic::from_json(r#"{"region": "FedRAMP"}"#).unwrap();
        assert_eq!(gov.url, "https://gov-log-api.newrelic.com/log/v1");
        for (uri, url) in [
            ("http://127.0.0.1:9", "http://127.0.0.1:9/log/v1"),
            ("http://127.0.0.1:9/", "http://127.0.0.1:9/log/v1"),
            (
                "https://log-api.eu.newrelic.com/log/v1",
                "https://log-api.eu.newrelic.com/log/v1",
            ),
            ("https://proxy/nr/logs/", "https://proxy/nr/logs"),
        ] {
            let config = NewRelic::from_json(&format!(r#"{{"base_uri": "{uri}"}}"#)).unwrap();
            assert_eq!(config.url, url, "{uri}");
        }
    }

    #[test]
    fn auth_names_the_secret_and_its_header() {
        let license = NewRelic::from_json(r#"{"auth": "license_key"}"#).unwrap();
        assert_eq!(license.auth.header(), "X-License-Key");
        assert_eq!(license.auth.secret(), "license_key");
        assert_eq!(Auth::ApiKey.header(), "Api-Key");
    }

    #[test]
    fn common_attributes_start_with_the_plugin_and_can_override_it() {
        let config = NewRelic::from_json(
            r#"{"common_attributes": {"service.name": "api", "plugin.type": "custom"}}"#,
        )
        .unwrap();
        assert_eq!(config.common_attributes["service.name"], "api");
        assert_eq!(config.common_attributes["plugin.type"], "custom");
        assert!(config.common_attributes.contains_key("plugin.version"));
    }

    #[test]
    fn problems_point_at_their_option() {
        let cases = [
            (r#"{"region": "APAC"}"#, "/region", "US, EU or FedRAMP"),
            (
                r#"{"base_uri": "log-api.newrelic.com"}"#,
                "/base_uri",
                "not an http",
            ),
            (r#"{"compress": "zstd"}"#, "/compress", "use gzip"),
            (r#"{"max_records": 0}"#, "/max_records", "outside"),
            (
                r#"{"max_payload_bytes": 20000000}"#,
                "/max_payload_bytes",
                "after gzip",
            ),
            (
                r#"{"compress": false, "max_payload_bytes": 2000000}"#,
                "/max_payload_bytes",
                "without compress",
            ),
            (r#"{"auth": "insert_key"}"#, "/auth", "unknown variant"),
            (
                r#"{"api_key": "secret"}"#,
                "/api_key",
                "unknown field `api_key`",
            ),
        ];
        for (json, path, message) in cases {
            let errors = NewRelic::from_json(json).unwrap_err();
            assert!(
                errors
                    .iter()
                    .any(|e| e.path == path && e.message.contains(message)),
                "{json}: {errors:?}"
            );
        }
    }
}
