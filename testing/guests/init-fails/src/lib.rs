//! Test guest `init-fails`: `init` rejects every config with two errors (one with a JSON
//! pointer, one about the whole config) and logs an error first; `process` keeps everything.

// `generate!` and `export!` emit unsafe glue code with wide (flattened) signatures.
#![allow(unsafe_code, clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "filter", path: "../../../wit" });

use wasm_router::plugin::types::PluginKind;

struct Plugin;

impl Guest for Plugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "init-fails".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Filter,
            description: "Rejects every config.".into(),
            config_schema: "{}".into(),
            requested_hosts: Vec::new(),
            requested_secrets: Vec::new(),
        }
    }

    fn init(_config: String) -> Result<(), Vec<ConfigError>> {
        wasm_router::plugin::log::emit(
            wasm_router::plugin::log::Level::Error,
            "init-fails: rejecting the config",
        );
        Err(vec![
            ConfigError {
                path: "/fields/0".into(),
                message: "init-fails rejects every field; remove `fields`".into(),
            },
            ConfigError {
                path: String::new(),
                message: "init-fails rejects every config".into(),
            },
        ])
    }

    fn process(batch: Batch) -> Vec<Outcome> {
        vec![Outcome::Keep; batch.time_ns.len()]
    }
}

export!(Plugin);
