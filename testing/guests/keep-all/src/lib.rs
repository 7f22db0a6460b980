//! Test guest `keep-all`: keeps every event. `init` logs one line; `process` adds the batch
//! size to the `events` counter, so host tests see both imports in use.

// `generate!` and `export!` emit unsafe glue code with wide (flattened) signatures.
#![allow(unsafe_code, clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "filter", path: "../../../wit" });

use wasm_router::plugin::log::{Level, emit};
use wasm_router::plugin::metrics::counter_add;
use wasm_router::plugin::types::PluginKind;

struct KeepAll;

impl Guest for KeepAll {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "keep-all".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Filter,
            description: "Keeps every event.".into(),
            config_schema: "{}".into(),
            requested_hosts: Vec::new(),
            requested_secrets: Vec::new(),
        }
    }

    fn init(_config: String) -> Result<(), Vec<ConfigError>> {
        emit(Level::Info, "keep-all initialised");
        Ok(())
    }

    fn process(batch: Batch) -> Vec<Outcome> {
        counter_add("events", batch.time_ns.len() as u64, &[]);
        vec![Outcome::Keep; batch.time_ns.len()]
    }
}

export!(KeepAll);
