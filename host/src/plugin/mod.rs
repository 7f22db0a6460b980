//! The WebAssembly plugin runtime: filters and outputs following `wit/plugin.wit`.
//!
//! - [`engine`]: the one `Engine` (engine policy) and the `Linker`; [`ticker`]: the epoch
//!   ticker, running only while guest code does;
//! - [`bindings`]: the one `bindgen!`; [`state`]: store data, deny-by-default WASI, the
//!   `log` and `metrics` imports ([`log`], [`stdio`], [`guest_metrics`]);
//! - [`source`]: a plugin's bytes, from a file, S3, HTTPS or an OCI registry, pinned by sha256;
//! - [`cache`]: compiled artifacts (and fetched plugins) on disk; [`loader`]: bytes →
//!   `InstancePre` + `info`;
//! - [`instance`]: one `Store` and its typed exports; [`limits`], [`fault`];
//! - [`filter`]: the pipeline stage, with its [`pool`] of instances, [`policy`] (`on_error`,
//!   circuit breaker), [`msgpack`] checks of returned bodies and [`telemetry`];
//! - [`schema`]: the plugin's config, checked against its JSON Schema;
//! - [`startup`]: load, config check and first `init`, for filters, outputs and
//!   `wasm-router test` alike.

pub mod bindings;
pub mod cache;
pub mod config;
pub mod engine;
pub mod fault;
pub mod filter;
pub mod guest_metrics;
pub mod inspect;
pub mod instance;
pub mod limits;
pub mod loader;
pub mod log;
pub mod msgpack;
pub mod network;
pub mod policy;
pub mod pool;
pub mod schema;
pub mod source;
pub mod startup;
pub mod state;
pub mod stdio;
pub mod telemetry;
pub mod ticker;

pub use cache::ArtifactCache;
pub use engine::{EngineOptions, PluginEngine};
pub use fault::Fault;
pub use filter::{FilterSettings, WasmFilter};
pub use limits::PluginLimits;
pub use loader::LoadedPlugin;
pub use policy::OnError;

use crate::ops::metrics::Metrics;
use crate::pipeline::Filter;
use config::WasmFilterConfig;
use schema::ConfigProblem;
use std::sync::Arc;

/// Why a plugin could not be loaded or started. Each message names the plugin file, says what
/// is wrong, and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The engine could not be created.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// The file could not be read.
    #[error("{path}: cannot read the plugin: {message}")]
    Read {
        /// The plugin file.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// A remote plugin could not be fetched (or its path is not one the router can fetch).
    #[error("{path}: cannot fetch the plugin: {message}")]
    Fetch {
        /// The plugin's path or URL.
        path: String,
        /// What failed, and the fix.
        message: String,
    },
    /// The plugin's bytes do not have the pinned digest.
    #[error(
        "{path}: the plugin's sha256 is {actual}, but the config pins sha256 = \"{pinned}\"; it was not loaded. If you published a new version, test it and pin the new digest; otherwise the plugin was changed by someone else"
    )]
    Digest {
        /// The plugin's path or URL.
        path: String,
        /// The configured digest.
        pinned: String,
        /// The digest of the bytes read.
        actual: String,
    },
    /// The file is not a WebAssembly component.
    #[error("{path}: not a WebAssembly component: {detail}")]
    NotAComponent {
        /// The plugin file.
        path: String,
        /// What it is instead, and the fix.
        detail: String,
    },
    /// Compilation failed.
    #[error("{path}: cannot compile the plugin: {message}")]
    Compile {
        /// The plugin file.
        path: String,
        /// The compiler's message.
        message: String,
    },
    /// The component cannot be linked (a missing import, another contract version).
    #[error("{path}: cannot link the plugin: {message}")]
    Link {
        /// The plugin file.
        path: String,
        /// What did not match.
        message: String,
    },
    /// The component does not implement either world of the contract.
    #[error(
        "{path}: not a wasm-router plugin: {detail}; build it against wit/plugin.wit (world `filter` or `output`)"
    )]
    NotAPlugin {
        /// The plugin file.
        path: String,
        /// What is missing.
        detail: String,
    },
    /// The plugin is of the other kind than where it is configured.
    #[error("{path}: `{plugin}` is {actual} plugin; configure it under [[{section}]]")]
    WrongKind {
        /// The plugin file.
        path: String,
        /// The plugin's name.
        plugin: String,
        /// `a filter` / `an output`.
        actual: &'static str,
        /// `filters` / `outputs`.
        section: &'static str,
    },
    /// The plugin itself is broken (e.g. its config schema is invalid).
    #[error("{path}: {message}")]
    BadPlugin {
        /// The plugin file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// `info`, instantiation or `init` faulted.
    #[error("{path}: `{call}` failed: {fault}")]
    Call {
        /// The plugin file.
        path: String,
        /// Which call.
        call: &'static str,
        /// The fault.
        fault: Fault,
    },
    /// The config does not match the plugin's schema, or `init` refused it.
    #[error(
        "{path}: plugin `{plugin}` refused its config: {}; fix the `config` table of this plugin",
        describe_problems(problems)
    )]
    Config {
        /// The plugin file.
        path: String,
        /// The plugin's name.
        plugin: String,
        /// Every problem, with a JSON pointer into `config`.
        problems: Vec<ConfigProblem>,
    },
}

fn describe_problems(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("at `config{}`: {}", p.pointer, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Load the WASM filter of `config`: returns its component id (its `name`, else the plugin's
/// own name; give filters running the same plugin distinct names to tell them apart) and the
/// filter. Compiles through the cache in `[service] plugin_cache_dir` (or the user cache
/// directory), checks the config against the plugin's schema and initialises a first instance,
/// so every problem surfaces here, at startup.
pub fn build_filter(
    config: &WasmFilterConfig,
    name: Option<&str>,
    plugin_cache_dir: Option<&std::path::Path>,
    metrics: Arc<Metrics>,
) -> Result<(String, Arc<dyn Filter>), String> {
    let filter = load_filter(config, name, plugin_cache_dir, metrics).map_err(|e| e.to_string())?;
    Ok((filter.id().to_string(), Arc::new(filter)))
}

/// [`build_filter`], with the concrete type and error.
pub fn load_filter(
    config: &WasmFilterConfig,
    name: Option<&str>,
    plugin_cache_dir: Option<&std::path::Path>,
    metrics: Arc<Metrics>,
) -> Result<WasmFilter, PluginError> {
    let plugin = startup::load(
        &config.path,
        config.sha256.as_deref(),
        bindings::PluginKind::Filter,
        plugin_cache_dir,
    )?;
    let info = plugin.info();
    let on_error = match config.on_error.as_deref() {
        Some(policy) => OnError::parse(policy).ok_or_else(|| PluginError::BadPlugin {
            path: config.path.display().to_string(),
            message: format!(
                "on_error = {policy:?}: use \"fail_open\", \"fail_closed\" or \"dead_letter\""
            ),
        })?,
        None => OnError::default_for(&info.name, &info.description, &info.config_schema),
    };
    let mut settings = FilterSettings::new(on_error);
    settings.limits = PluginLimits::from_config(&config.limits, PluginLimits::filter_defaults());
    let id = name.map_or_else(|| info.name.clone(), str::to_string);
    let json = schema::config_json(config.config.as_ref());
    let filter = WasmFilter::new(plugin.clone(), &id, &json, settings, metrics, false)?;
    tracing::info!(
        plugin = %id, name = %info.name, version = %info.version, path = %config.path.display(),
        compiled = ?plugin.cache_outcome(), on_error = on_error.as_str(), instances = settings.max_instances,
        "WASM filter loaded"
    );
    Ok(filter)
}

impl crate::filter::FilterComponent for WasmFilterConfig {
    fn validate(&self, key: &str, problems: &mut Vec<String>) {
        WasmFilterConfig::validate(self, key, problems);
    }

    fn names_itself(&self) -> bool {
        true
    }

    fn build(
        &self,
        cx: crate::filter::FilterContext<'_>,
    ) -> Result<(String, Arc<dyn Filter>), String> {
        build_filter(self, cx.name, cx.plugin_cache_dir, cx.metrics)
    }

    fn plugin_path(&self) -> Option<&std::path::Path> {
        Some(&self.path)
    }
}
