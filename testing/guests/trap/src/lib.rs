//! Test guest `trap`: `process` panics, which is a wasm trap for the host.

// `generate!` and `export!` emit unsafe glue code with wide (flattened) signatures.
#![allow(unsafe_code, clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "filter", path: "../../../wit" });

use wasm_router::plugin::types::PluginKind;

struct Plugin;

impl Guest for Plugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "trap".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Filter,
            description: "Panics in process.".into(),
            config_schema: "{}".into(),
            requested_hosts: Vec::new(),
            requested_secrets: Vec::new(),
        }
    }

    fn init(_config: String) -> Result<(), Vec<ConfigError>> {
        Ok(())
    }

    fn process(batch: Batch) -> Vec<Outcome> {
        panic!(
            "trap guest: deliberate panic on a batch of {} events",
            batch.time_ns.len()
        );
    }
}

export!(Plugin);
