//! Test guest `memory-bomb`: `process` allocates (and touches) 1 MiB blocks until an
//! allocation fails, which aborts the guest: the host's memory limit must stop it.

// `generate!` and `export!` emit unsafe glue code with wide (flattened) signatures.
#![allow(unsafe_code, clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "filter", path: "../../../wit" });

use wasm_router::plugin::types::PluginKind;

struct Plugin;

impl Guest for Plugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "memory-bomb".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Filter,
            description: "Allocates until memory runs out.".into(),
            config_schema: "{}".into(),
            requested_hosts: Vec::new(),
            requested_secrets: Vec::new(),
        }
    }

    fn init(_config: String) -> Result<(), Vec<ConfigError>> {
        Ok(())
    }

    fn process(_batch: Batch) -> Vec<Outcome> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![0xA5; 1 << 20]));
        }
    }
}

export!(Plugin);
