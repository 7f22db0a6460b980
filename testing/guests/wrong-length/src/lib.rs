//! Test guest `wrong-length`: returns one outcome too few (one outcome for an empty batch),
//! a plugin fault the host must detect.

// `generate!` and `export!` emit unsafe glue code with wide (flattened) signatures.
#![allow(unsafe_code, clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "filter", path: "../../../wit" });

use wasm_router::plugin::types::PluginKind;

struct Plugin;

impl Guest for Plugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "wrong-length".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Filter,
            description: "Returns the wrong number of outcomes.".into(),
            config_schema: "{}".into(),
            requested_hosts: Vec::new(),
            requested_secrets: Vec::new(),
        }
    }

    fn init(_config: String) -> Result<(), Vec<ConfigError>> {
        Ok(())
    }

    fn process(batch: Batch) -> Vec<Outcome> {
        let wrong = match batch.time_ns.len() {
            0 => 1,
            n => n - 1,
        };
        vec![Outcome::Keep; wrong]
    }
}

export!(Plugin);
