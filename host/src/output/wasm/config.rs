//! `type = "wasm"` under `[[outputs]]`: an output plugin and what the operator grants it (the
//! hosts it may reach, the secrets the router injects), validated into [`WasmOutputSettings`].

use super::allow::AllowList;
use super::secrets::Secrets;
use crate::config::{ByteSize, DurationStr};
use crate::net::sigv4::AwsSigV4Config;
use crate::plugin::config::PluginLimitsConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Default time to establish a connection (TCP and TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time one request may take, from sending to the end of the response body.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bound of a response body handed to the plugin (the rest is not read).
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024;
/// Largest `max_response_bytes`.
pub const MAX_RESPONSE_BYTES_LIMIT: u64 = 16 << 20;

/// `type = "wasm"`: a WebAssembly output plugin (world `output`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmOutputConfig {
    /// The `.wasm` component (world `output`): a file, `s3://`, `https://` or `oci://`
    /// (`plugin::source`).
    pub path: PathBuf,
    /// The plugin's sha256, required for a path whose bytes can change (`s3://`, `https://`,
    /// `oci://…:tag`).
    #[serde(default)]
    pub sha256: Option<String>,
    /// The plugin's config, handed to its `init` as JSON.
    #[serde(default)]
    pub config: Option<toml::Table>,
    /// URL prefixes the plugin's requests may go to: `scheme://host[:port][/path]`, or
    /// `https://*.example.com` for every subdomain. Anything else is refused before connecting.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Secrets the router injects into the headers the plugin names: name → `"env:VARIABLE"`
    /// or `"file:/run/secrets/name"`.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Time to establish a connection, TCP and TLS (default `"10s"`).
    #[serde(default)]
    pub connect_timeout: Option<DurationStr>,
    /// Time one request may take, until the end of the response (default `"30s"`).
    #[serde(default)]
    pub timeout: Option<DurationStr>,
    /// Most bytes of a response body handed to the plugin's `on-response` (default `"64KiB"`).
    #[serde(default)]
    pub max_response_bytes: Option<ByteSize>,
    /// Resource limits for each instance (`deadline` defaults to 200ms for outputs).
    #[serde(default)]
    pub limits: PluginLimitsConfig,
    /// Sign every request with AWS SigV4 (credentials from the SDK's default chain, never
    /// shown to the plugin): `{ service = "es", region = "us-east-1", role_arn = "…" }`.
    #[serde(default)]
    pub aws_sigv4: Option<AwsSigV4Config>,
}

/// What a [`WasmOutputConfig`] grants, checked and resolved.
#[derive(Clone, Debug)]
pub struct WasmOutputSettings {
    /// Where requests may go.
    pub allow: AllowList,
    /// The secrets, resolved.
    pub secrets: Secrets,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Response body bound.
    pub max_response_bytes: usize,
    /// The SigV4 grant, checked.
    pub aws_sigv4: Option<AwsSigV4Config>,
}

impl WasmOutputConfig {
    /// Check the grants and resolve the secrets; every problem is prefixed with `key`
    /// (`outputs[1]`) and says how to fix it.
    pub fn settings(&self, key: &str) -> Result<WasmOutputSettings, Vec<String>> {
        let mut problems = Vec::new();
        let allow = AllowList::parse(&self.allow_hosts)
            .map_err(|e| problems.push(format!("{key}.{e}")))
            .unwrap_or_default();
        if self.allow_hosts.is_empty() {
            problems.push(format!(
                "{key}.allow_hosts is empty: the plugin could reach no host; grant the intake it sends to, e.g. `allow_hosts = [\"https://http-intake.logs.datadoghq.com\"]`"
            ));
        }
        let secrets = Secrets::resolve(key, &self.secrets)
            .map_err(|p| problems.extend(p))
            .unwrap_or_default();
        for (name, value) in [
            ("connect_timeout", self.connect_timeout),
            ("timeout", self.timeout),
        ] {
            if value.is_some_and(|d| d.0.is_zero()) {
                problems.push(format!("{key}.{name} must be more than 0, e.g. \"10s\""));
            }
        }
        let max_response_bytes = self
            .max_response_bytes
            .map_or(DEFAULT_MAX_RESPONSE_BYTES, |b| b.0);
        if max_response_bytes > MAX_RESPONSE_BYTES_LIMIT {
            problems.push(format!(
                "{key}.max_response_bytes must be at most 16MiB; the plugin only needs enough of an error body to classify it"
            ));
        }
        if let Some(Err(p)) = self.aws_sigv4.as_ref().map(|a| a.validate(key)) {
            problems.extend(p);
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(WasmOutputSettings {
            allow,
            secrets,
            connect_timeout: self
                .connect_timeout
                .map_or(DEFAULT_CONNECT_TIMEOUT, |d| d.0),
            timeout: self.timeout.map_or(DEFAULT_REQUEST_TIMEOUT, |d| d.0),
            max_response_bytes: max_response_bytes as usize,
            aws_sigv4: self.aws_sigv4.clone(),
        })
    }
}
