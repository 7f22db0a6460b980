//! The operator's config ([`LokiConfig`], what the JSON Schema describes), checked and turned
//! into the [`Loki`] output: the push URL, the labels, the line format.
//!
//! The option names, values and defaults are those of Fluent Bit's `loki` output
//! (`plugins/out_loki/loki.c` config map), so a FireLens `[OUTPUT] Name loki` section maps key
//! for key; `http_passwd` is not one of them: basic auth is the operator's secret `basic_auth`
//! (`"basic:USER:env:VARIABLE"`), which the router encodes into `Authorization`.

use crate::labels::{Label, parse_accessor, parse_labels};
use wasm_router_sdk::ConfigError;

pub use wasm_router_sdk::vendor::Compress;

/// The secret holding the basic-auth credentials (`basic:USER:env:VARIABLE`).
pub const BASIC_AUTH_SECRET: &str = "basic_auth";

/// The largest request body, uncompressed (a batch larger than this is cut).
pub const MAX_REQUEST_BYTES: usize = 5 << 20;

/// The operator's config.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LokiConfig {
    /// Loki's host (default `127.0.0.1`). The router must allow it (`allow_hosts`).
    #[serde(default = "default_host")]
    pub host: String,
    /// The port (default 3100).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Connect with TLS (`https://`).
    #[serde(default)]
    pub tls: bool,
    /// The push path (default `/loki/api/v1/push`).
    #[serde(default = "default_uri")]
    pub uri: String,
    /// Stream labels, comma-separated: `key=value`, `key=$accessor` or `$accessor` (the label
    /// named after the accessor's last key). Default `job=fluent-bit` when no label is set.
    #[serde(default)]
    pub labels: Option<String>,
    /// Record keys made labels, comma-separated record accessors (`$kubernetes['pod_name']`).
    #[serde(default)]
    pub label_keys: Option<String>,
    /// Record keys left out of the line, comma-separated (`key` or `$accessor`).
    #[serde(default)]
    pub remove_keys: Option<String>,
    /// `json` (default) or `key_value` (`key=value key=value`).
    #[serde(default = "default_line_format")]
    pub line_format: String,
    /// `on`: a record with a single key becomes that value's JSON; `raw`: a single string
    /// value as it is; `off` (default).
    #[serde(default)]
    pub drop_single_key: Option<String>,
    /// The tenant, sent as `X-Scope-OrgID`.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Send the secret `basic_auth` as `Authorization: Basic …`.
    #[serde(default)]
    pub basic_auth: bool,
    /// `gzip` the body (or `true`); `none` / `false` (default) not.
    #[serde(default)]
    pub compress: Option<Compress>,
}

fn default_host() -> String {
    "127.0.0.1".into()
}

fn default_port() -> u16 {
    3100
}

fn default_uri() -> String {
    "/loki/api/v1/push".into()
}

fn default_line_format() -> String {
    "json".into()
}

/// `drop_single_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropSingleKey {
    /// Keep the record.
    Off,
    /// The single value, as JSON.
    On,
    /// The single value; a string as it is.
    Raw,
}

/// The checked config.
#[derive(Debug, Clone)]
pub struct Loki {
    /// `http(s)://host:port/uri`.
    pub url: String,
    /// Labels in order.
    pub labels: Vec<Label>,
    /// Paths left out of the line.
    pub remove_keys: Vec<Vec<String>>,
    /// `key_value` instead of JSON lines.
    pub key_value: bool,
    /// `drop_single_key`.
    pub drop_single_key: DropSingleKey,
    /// `X-Scope-OrgID`.
    pub tenant_id: Option<String>,
    /// Basic auth from the secret.
    pub basic_auth: bool,
    /// gzip the body.
    pub gzip: bool,
}

impl Loki {
    /// Checks `raw`, collecting every problem with its JSON pointer.
    pub fn from_config(raw: LokiConfig) -> Result<Loki, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let host = raw.host.trim();
        if host.is_empty() || host.contains(['/', '?', '#', ' ', '@']) {
            errors.push(ConfigError::new(
                "/host",
                format!(
                    "{:?} is not a host name: give the name or address alone",
                    raw.host
                ),
            ));
        }
        let mut labels = Vec::new();
        if let Some(text) = &raw.labels {
            match parse_labels(text) {
                Ok(parsed) => labels.extend(parsed),
                Err(problem) => errors.push(ConfigError::new("/labels", problem)),
            }
        }
        if let Some(text) = &raw.label_keys {
            for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                match parse_accessor(item) {
                    Some(path) => labels.push(Label::from_path(path)),
                    None => errors.push(ConfigError::new(
                        "/label_keys",
                        format!("{item:?} is not a record accessor: write $key or $key['sub']"),
                    )),
                }
            }
        }
        let mut remove_keys = Vec::new();
        if let Some(text) = &raw.remove_keys {
            for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                let path = if item.starts_with('$') {
                    parse_accessor(item)
                } else {
                    Some(vec![item.to_string()])
                };
                match path {
                    Some(path) => remove_keys.push(path),
                    None => errors.push(ConfigError::new(
                        "/remove_keys",
                        format!("{item:?} is not a key or a record accessor"),
                    )),
                }
            }
        }
        let key_value = match raw.line_format.to_ascii_lowercase().as_str() {
            "json" => false,
            "key_value" => true,
            _ => {
                errors.push(ConfigError::new(
                    "/line_format",
                    format!("{:?}: use json or key_value", raw.line_format),
                ));
                false
            }
        };
        let drop_single_key = match raw
            .drop_single_key
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("off" | "false" | "no") => DropSingleKey::Off,
            Some("on" | "true" | "yes") => DropSingleKey::On,
            Some("raw") => DropSingleKey::Raw,
            Some(other) => {
                errors.push(ConfigError::new(
                    "/drop_single_key",
                    format!("{other:?}: use on, off or raw"),
                ));
                DropSingleKey::Off
            }
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
        if !errors.is_empty() {
            return Err(errors);
        }
        if labels.is_empty() {
            labels.push(Label::Static {
                name: "job".into(),
                value: "fluent-bit".into(),
            });
        }
        let uri = if raw.uri.starts_with('/') {
            raw.uri.clone()
        } else {
            format!("/{}", raw.uri)
        };
        let scheme = if raw.tls { "https" } else { "http" };
        let url = if raw.port == if raw.tls { 443 } else { 80 } {
            format!("{scheme}://{host}{uri}")
        } else {
            format!("{scheme}://{host}:{}{uri}", raw.port)
        };
        Ok(Loki {
            url,
            labels,
            remove_keys,
            key_value,
            drop_single_key,
            tenant_id: raw.tenant_id.filter(|t| !t.is_empty()),
            basic_auth: raw.basic_auth,
            gzip,
        })
    }
}

impl wasm_router_sdk::PluginConfig for Loki {
    fn from_json(json: &str) -> Result<Self, Vec<ConfigError>> {
        Loki::from_config(wasm_router_sdk::config::parse(json)?)
    }

    fn json_schema() -> wasm_router_sdk::serde_json::Value {
        wasm_router_sdk::config::schema::<LokiConfig>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_router_sdk::PluginConfig;

    #[test]
    fn fluent_bit_defaults() {
        let loki = Loki::from_json("{}").unwrap();
        assert_eq!(loki.url, "http://127.0.0.1:3100/loki/api/v1/push");
        assert_eq!(
            loki.labels,
            [Label::Static {
                name: "job".into(),
                value: "fluent-bit".into()
            }]
        );
        let cloud =
            Loki::from_json(r#"{"host": "logs.grafana.net", "port": 443, "tls": true}"#).unwrap();
        assert_eq!(cloud.url, "https://logs.grafana.net/loki/api/v1/push");
    }

    #[test]
    fn problems_point_at_their_option() {
        for (json, path) in [
            (r#"{"line_format": "xml"}"#, "/line_format"),
            (r#"{"labels": "=x"}"#, "/labels"),
            (r#"{"label_keys": "plain"}"#, "/label_keys"),
            (r#"{"drop_single_key": "maybe"}"#, "/drop_single_key"),
        ] {
            let found = Loki::from_json(json).unwrap_err();
            assert!(found.iter().any(|e| e.path == path), "{json}: {found:?}");
        }
    }
}
