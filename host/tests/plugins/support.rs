//! Helpers: build a WASM filter from an artifact, make batches, read metrics.

use bytes::Bytes;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use wasm_router::ops::metrics::Metrics;
use wasm_router::plugin::WasmFilter;
use wasm_router::plugin::config::{PluginLimitsConfig, WasmFilterConfig};
use wasm_router::{Batch, Event};

/// A `[[filters]]` entry for the plugin at `path`.
pub fn filter_config(path: &str, config: Value, on_error: Option<&str>) -> WasmFilterConfig {
    let table = match config {
        Value::Object(_) => Some(toml::Table::try_from(config).unwrap()),
        _ => None,
    };
    WasmFilterConfig {
        path: path.into(),
        sha256: None,
        on_error: on_error.map(str::to_string),
        config: table,
        limits: PluginLimitsConfig::default(),
    }
}

/// The compile cache every test shares (compiling in a debug build takes seconds).
pub fn cache_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")
}

/// Load the filter of `config` into `metrics`, compiled through the shared cache.
pub fn load(config: &WasmFilterConfig, metrics: &Arc<Metrics>) -> WasmFilter {
    wasm_router::plugin::load_filter(config, None, Some(&cache_dir()), metrics.clone())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The msgpack body of a JSON record.
pub fn body(record: &Value) -> Bytes {
    Bytes::from(rmp_serde::to_vec_named(record).unwrap())
}

/// A batch under `tag` with one event per record; event `i` has time `1_000 + i`.
pub fn batch(tag: &str, records: &[Value]) -> Batch {
    let events = records
        .iter()
        .enumerate()
        .map(|(i, r)| Event {
            time_ns: 1_000 + i as u64,
            body: body(r),
        })
        .collect();
    Batch::new(Bytes::copy_from_slice(tag.as_bytes()), events)
}

/// `n` records `{"log": "line <i>", "i": i}`.
pub fn records(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"log": format!("line {i}"), "i": i}))
        .collect()
}

/// The JSON records of a batch's events.
pub fn json_records(batch: &Batch) -> Vec<Value> {
    batch
        .events
        .iter()
        .map(|e| {
            serde_json::from_str(&wasm_router::event::json::to_json(&e.body).unwrap()).unwrap()
        })
        .collect()
}

/// The value of the series whose text-format line starts with `prefix` (name and labels).
pub fn metric(metrics: &Metrics, prefix: &str) -> f64 {
    let text = metrics.encode();
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {prefix} in:\n{text}"))
}

/// Load `path` as filter `id` with `settings` and `config`, its log captured (not in tracing).
pub fn load_capturing(
    path: &str,
    config: Value,
    settings: wasm_router::plugin::FilterSettings,
    metrics: &Arc<Metrics>,
) -> WasmFilter {
    use wasm_router::plugin::{ArtifactCache, LoadedPlugin, PluginEngine};
    let plugin = LoadedPlugin::load(
        PluginEngine::shared().unwrap(),
        Path::new(path),
        None,
        &ArtifactCache::in_dir(cache_dir()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let id = plugin.info().name.clone();
    WasmFilter::new(
        Arc::new(plugin),
        &id,
        &config,
        settings,
        metrics.clone(),
        true,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The messages a capturing filter's plugin logged so far.
pub fn logged(filter: &WasmFilter) -> Vec<String> {
    filter
        .context()
        .log
        .take_captured()
        .into_iter()
        .map(|l| l.message)
        .collect()
}
