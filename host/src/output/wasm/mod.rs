//! `type = "wasm"` outputs: a WebAssembly plugin of world `output` (wit/plugin.wit) encodes
//! batches into HTTP requests and classifies the answers; the router sends them. The router
//! owns the network ([`crate::net::http_client`]: pooled hyper client, rustls with the system
//! CA store, timeouts, gzip, no redirects, bounded response bodies), the grants
//! (`allow_hosts`), the secrets (injected into the headers the plugin names, never shown to
//! it), AWS SigV4 signing ([`crate::net::sigv4`], with credentials the plugin never sees), and
//! retries, buffering and dead letters
//! (the output runner). See [`runner`] for how answers are acted on.
//!
//! ```toml
//! [[outputs]]
//! type = "wasm"
//! name = "datadog"                                   # metrics/logs id; set one per plugin
//! match = "*"                                        # or match_regex
//! path = "/plugins/datadog.wasm"
//! config = { dd_service = "web", dd_source = "nginx" }   # JSON for the plugin's init
//! allow_hosts = ["https://http-intake.logs.datadoghq.com"]  # scheme://host[:port][/path], *.domain
//! secrets = { api_key = "env:DD_API_KEY" }           # or "file:/run/secrets/dd"
//! connect_timeout = "10s"                            # default 10s
//! timeout = "30s"                                    # whole request, default 30s
//! max_response_bytes = "64KiB"                       # body handed to on-response, default 64KiB
//! limits = { memory = "64MiB", deadline = "200ms" }  # per instance; output deadline default 200ms
//! # aws_sigv4 = { service = "es", region = "us-east-1" }  # the router signs each request (SigV4)
//! buffer = { type = "memory" }                       # retry_until, retry_limit, dead_letter as for every output
//! ```
//!
//! Metrics: events are counted like any output's (`component_sent_events`,
//! `component_discarded_events{reason=…}` with `http_<status>`, `too_large`,
//! `host_not_allowed`, `unknown_secret`, `encode_failed`, `not_encoded`, `invalid_request`,
//! `plugin_fault_<kind>`), answers that lead to a retry in `component_errors{reason=…}`, requests by status class
//! and bytes sent in `wasm_output_requests_total{output,result}` /
//! `wasm_output_request_bytes_total`, and the plugin's calls in `wasm_plugin_*`.

pub mod allow;
pub mod config;
pub mod runner;
pub mod secrets;
pub mod telemetry;

pub use config::{WasmOutputConfig, WasmOutputSettings};
pub use runner::WasmOutput;

use crate::ops::metrics::Metrics;
use crate::plugin::bindings::PluginKind;
use crate::plugin::instance::PluginInstance;
use crate::plugin::schema;
use crate::plugin::startup::{self, StartedPlugin};
use crate::plugin::{LoadedPlugin, PluginError, PluginLimits};
use runner::{PluginRunner, RequestPolicy};
use std::sync::Arc;

/// Why a WASM output could not be started.
#[derive(Debug, thiserror::Error)]
pub enum WasmOutputError {
    /// The plugin could not be loaded, or refused its config.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The grants are invalid or a secret cannot be resolved.
    #[error("{}", .0.join("; "))]
    Settings(Vec<String>),
    /// The HTTP client could not be created.
    #[error("{0}")]
    Client(#[from] crate::net::http_client::ClientError),
}

impl crate::output::OutputComponent for WasmOutputConfig {
    fn default_batch_timeout(&self) -> std::time::Duration {
        crate::output::window::PER_REQUEST_BATCH_TIMEOUT
    }

    /// The keys that need no plugin: path and pin, grants, secrets, timeouts, limits.
    fn validate(&self, key: &str, _id: &str, problems: &mut Vec<String>) {
        crate::plugin::source::validate(key, &self.path, self.sha256.as_deref(), problems);
        if let Err(p) = self.settings(key) {
            problems.extend(p);
        }
        self.limits.validate(key, problems);
    }

    /// Load the plugin and initialise it with its config, as the router would; warn about what
    /// the plugin requests that the config does not grant.
    fn check(&self, cx: &crate::output::OutputContext<'_>) -> (Vec<String>, Vec<String>) {
        let key = cx.key;
        match start(self, cx.name, cx.plugin_cache_dir, &cx.metrics) {
            Ok((started, _)) => {
                let warnings = match self.settings(key) {
                    Ok(settings) => grant_gaps(&started.plugin, &settings)
                        .into_iter()
                        .map(|w| format!("{key}: {w}"))
                        .collect(),
                    Err(_) => Vec::new(),
                };
                (Vec::new(), warnings)
            }
            Err(e) => (vec![format!("{key} (wasm): {e}")], Vec::new()),
        }
    }

    fn build<'a>(
        &'a self,
        cx: crate::output::OutputContext<'a>,
        task: crate::output::OutputTask,
    ) -> crate::output::component::BuildFuture<'a> {
        let output = WasmOutput::build(self, cx);
        task.run_built(std::future::ready(output))
    }
}

/// Start the plugin of `config`: load it (it must be an output), check its config against its
/// schema and initialise a first instance.
fn start(
    config: &WasmOutputConfig,
    name: Option<&str>,
    plugin_cache_dir: Option<&std::path::Path>,
    metrics: &Arc<Metrics>,
) -> Result<(StartedPlugin, PluginInstance), PluginError> {
    let plugin = startup::load(
        &config.path,
        config.sha256.as_deref(),
        PluginKind::Output,
        plugin_cache_dir,
    )?;
    let id = name.map_or_else(|| plugin.info().name.clone(), str::to_string);
    let limits = PluginLimits::from_config(&config.limits, PluginLimits::output_defaults());
    let json = schema::config_json(config.config.as_ref());
    startup::start(plugin, &id, &json, limits, metrics, false)
}

/// What the plugin asks for (`requested-hosts`, `requested-secrets`) that is not granted.
fn grant_gaps(plugin: &LoadedPlugin, settings: &WasmOutputSettings) -> Vec<String> {
    let info = plugin.info();
    let mut gaps = Vec::new();
    // A vendor plugin lists every site it can send to (Datadog: eight; New Relic: two), of which
    // a config uses one: only a grant of none of them is worth a warning.
    let hosts = &info.requested_hosts;
    if !hosts.is_empty() && !hosts.iter().any(|h| settings.allow.covers(h)) {
        gaps.push(format!(
            "plugin {} sends to {}, none of which allow_hosts grants; its requests will be refused",
            info.name,
            hosts.join(", ")
        ));
    }
    // A plugin may list alternatives (New Relic: `api_key` or `license_key`): only a grant of
    // none of them is worth a warning.
    let requested = &info.requested_secrets;
    if !requested.is_empty() && requested.iter().all(|s| settings.secrets.get(s).is_none()) {
        gaps.push(format!(
            "plugin {} requests secret {}, which `secrets` does not configure; requests that need it will be refused",
            info.name,
            requested.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(" or ")
        ));
    }
    gaps
}

impl WasmOutput {
    /// Load the plugin of `config` (the output `cx.key`, e.g. `outputs[2]`), resolve its grants
    /// and start an HTTP client: every problem surfaces here, at startup.
    pub fn build(
        config: &WasmOutputConfig,
        cx: crate::output::OutputContext<'_>,
    ) -> Result<WasmOutput, WasmOutputError> {
        let crate::output::OutputContext {
            key,
            name,
            component,
            metrics,
            plugin_cache_dir,
        } = cx;
        let settings = config.settings(key).map_err(WasmOutputError::Settings)?;
        let (started, first) = start(config, name, plugin_cache_dir, &metrics)?;
        let needs_tls = config
            .allow_hosts
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("https://"));
        let client = crate::net::http_client::HttpClient::new(
            settings.connect_timeout,
            settings.timeout,
            settings.max_response_bytes,
            needs_tls,
        )?;
        let info = started.plugin.info();
        let plugin_name = info.name.clone();
        for gap in grant_gaps(&started.plugin, &settings) {
            tracing::warn!(output = %component.id, "{gap}");
        }
        tracing::info!(
            output = %component.id, plugin = %started.context.id, name = %info.name, version = %info.version,
            path = %config.path.display(), compiled = ?started.plugin.cache_outcome(),
            allow_hosts = ?config.allow_hosts, secrets = ?settings.secrets, aws_sigv4 = ?settings.aws_sigv4,
            "WASM output loaded"
        );
        let runner = PluginRunner {
            started: Arc::new(started),
            instance: Some(first),
        };
        let policy = RequestPolicy {
            output: component.id.clone(),
            plugin: plugin_name,
            allow: settings.allow,
            secrets: settings.secrets,
            signer: settings.aws_sigv4.map(|c| {
                crate::net::sigv4::Signer::new(
                    c,
                    crate::net::aws_connection::AwsOverrides::default(),
                )
            }),
        };
        Ok(WasmOutput::new(runner, policy, client, component, metrics))
    }
}

#[cfg(test)]
mod tests {
    use crate::topology::OutputConfig;

    /// The example at the top of this module is a valid output config.
    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("mod.rs");
        let example: String = doc
            .lines()
            .skip_while(|l| *l != "//! ```toml")
            .skip(1)
            .take_while(|l| *l != "//! ```")
            .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start()))
            .collect();
        #[derive(serde::Deserialize)]
        struct Outputs {
            outputs: Vec<OutputConfig>,
        }
        let parsed: Outputs = toml::from_str(&example).unwrap_or_else(|e| panic!("{e}\n{example}"));
        let OutputConfig::Wasm(c) = &parsed.outputs[0] else {
            panic!("not a wasm output")
        };
        let c = &c.options;
        assert_eq!(c.allow_hosts, ["https://http-intake.logs.datadoghq.com"]);
        assert_eq!(c.secrets["api_key"], "env:DD_API_KEY");
        assert_eq!(c.limits.deadline.map(|d| d.0.as_millis()), Some(200));
    }
}
