//! Plugin start-up, the one path every plugin takes before its first call — in the router
//! (filters and `type = "wasm"` outputs), in `wasm-router validate` and in `wasm-router test`:
//!
//! 1. [`load`]: the file (or the fetched plugin), compiled through the artifact cache on the shared engine, and of the
//!    kind its section expects (`wasm-router test` loads with its own metering engine instead);
//! 2. [`start`]: the config checked against the plugin's JSON Schema, then a first instance
//!    created and initialised with it.
//!
//! Each step fails with the [`PluginError`] that names it, so every problem surfaces at
//! start-up. The [`StartedPlugin`] then makes the fresh instances that replace faulted or
//! recycled ones.

use super::bindings::PluginKind;
use super::fault::Fault;
use super::instance::PluginInstance;
use super::schema::{self, ConfigProblem, SchemaError};
use super::state::PluginContext;
use super::telemetry::PluginFamilies;
use super::{ArtifactCache, LoadedPlugin, PluginEngine, PluginError, PluginLimits};
use crate::ops::metrics::Metrics;
use std::path::Path;
use std::sync::Arc;

/// Load the plugin at `path` (a file, or a remote [`super::source`], verified against
/// `sha256` when given) on the shared engine, compiling through the cache in `cache_dir`
/// (`[service] plugin_cache_dir`; else the user cache directory). A plugin of the other kind
/// than `kind` is refused, naming the section it belongs in.
pub fn load(
    path: &Path,
    sha256: Option<&str>,
    kind: PluginKind,
    cache_dir: Option<&Path>,
) -> Result<Arc<LoadedPlugin>, PluginError> {
    let engine = PluginEngine::shared()?;
    let cache = ArtifactCache::from_config(cache_dir);
    let plugin = LoadedPlugin::load(engine, path, sha256, &cache)?;
    let info = plugin.info();
    if info.kind != kind {
        let (actual, section) = match info.kind {
            PluginKind::Filter => ("a filter", "filters"),
            PluginKind::Output => ("an output", "outputs"),
        };
        return Err(PluginError::WrongKind {
            path: path.display().to_string(),
            plugin: info.name.clone(),
            actual,
            section,
        });
    }
    Ok(Arc::new(plugin))
}

/// A plugin whose config was accepted: what every instance of it is made from.
pub struct StartedPlugin {
    /// The compiled plugin.
    pub plugin: Arc<LoadedPlugin>,
    /// Its id, log, metrics and telemetry, shared by its instances.
    pub context: Arc<PluginContext>,
    /// The config handed to each instance's `init`.
    pub config_json: Arc<str>,
    /// Per-instance limits.
    pub limits: PluginLimits,
}

/// Start `plugin` as `id` with `config`: check the config against the plugin's schema, then
/// create a first instance with `limits` and initialise it. Returns the started plugin and
/// that instance. With `capture_logs` the plugin's log is kept in memory (`wasm-router test`)
/// instead of going to the router's log.
pub fn start(
    plugin: Arc<LoadedPlugin>,
    id: &str,
    config: &serde_json::Value,
    limits: PluginLimits,
    metrics: &Arc<Metrics>,
    capture_logs: bool,
) -> Result<(StartedPlugin, PluginInstance), PluginError> {
    let path = plugin.path().display().to_string();
    let refused = |problems: Vec<ConfigProblem>| PluginError::Config {
        path: path.clone(),
        plugin: plugin.info().name.clone(),
        problems,
    };
    match schema::validate(&plugin.info().config_schema, config) {
        Ok(()) => {}
        Err(SchemaError::Invalid { problems }) => return Err(refused(problems)),
        Err(e @ SchemaError::BadSchema(_)) => {
            return Err(PluginError::BadPlugin {
                path,
                message: e.to_string(),
            });
        }
    }
    let families = PluginFamilies::of(metrics);
    let context = Arc::new(PluginContext::new(id, metrics, families, capture_logs));
    let config_json: Arc<str> = config.to_string().into();
    let mut first = PluginInstance::new(&plugin, context.clone(), limits).map_err(|fault| {
        PluginError::Call {
            path: path.clone(),
            call: "instantiate",
            fault,
        }
    })?;
    match first.init(&config_json) {
        Ok(Ok(())) => {}
        Ok(Err(errors)) => {
            return Err(refused(
                errors
                    .into_iter()
                    .map(|e| ConfigProblem {
                        pointer: e.path,
                        message: e.message,
                    })
                    .collect(),
            ));
        }
        Err(fault) => {
            return Err(PluginError::Call {
                path,
                call: "init",
                fault,
            });
        }
    }
    let started = StartedPlugin {
        plugin,
        context,
        config_json,
        limits,
    };
    Ok((started, first))
}

impl StartedPlugin {
    /// A fresh instance, initialised with the config: the replacement of a faulted or
    /// recycled one. A refusal now of the config accepted at start-up is a fault.
    pub fn new_instance(&self) -> Result<PluginInstance, Fault> {
        let mut instance = PluginInstance::new(&self.plugin, self.context.clone(), self.limits)?;
        match instance.init(&self.config_json)? {
            Ok(()) => Ok(instance),
            Err(errors) => Err(Fault::Instantiate {
                message: format!(
                    "init refused the config it accepted at startup: {}",
                    errors
                        .iter()
                        .map(|e| format!("{}: {}", e.path, e.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            }),
        }
    }
}
