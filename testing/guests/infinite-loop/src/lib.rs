//! Test guest `infinite-loop`: `process` spins forever, so only the host's epoch deadline
//! ends the call.

// `generate!` and `export!` emit unsafe glue code with wide (flattened) signatures.
#![allow(unsafe_code, clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "filter", path: "../../../wit" });

use wasm_router::plugin::types::PluginKind;

struct Plugin;

impl Guest for Plugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "infinite-loop".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Filter,
            description: "Never returns from process.".into(),
            config_schema: "{}".into(),
            requested_hosts: Vec::new(),
            requested_secrets: Vec::new(),
        }
    }

    fn init(_config: String) -> Result<(), Vec<ConfigError>> {
        Ok(())
    }

    fn process(_batch: Batch) -> Vec<Outcome> {
        let mut spins: u64 = 0;
        loop {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
}

export!(Plugin);
