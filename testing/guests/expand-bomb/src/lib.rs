//! Test guest `expand-bomb`: expands every event into 100,000 copies of itself (patches
//! that change nothing), so the host's cap on expansion must apply.

// `generate!` and `export!` emit unsafe glue code with wide (flattened) signatures.
#![allow(unsafe_code, clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "filter", path: "../../../wit" });

use wasm_router::plugin::types::{EventPatch, PluginKind};

struct Plugin;

impl Guest for Plugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "expand-bomb".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Filter,
            description: "Expands each event into 100,000 events.".into(),
            config_schema: "{}".into(),
            requested_hosts: Vec::new(),
            requested_secrets: Vec::new(),
        }
    }

    fn init(_config: String) -> Result<(), Vec<ConfigError>> {
        Ok(())
    }

    fn process(batch: Batch) -> Vec<Outcome> {
        (0..batch.time_ns.len())
            .map(|_| {
                let copies = (0..EXPANSION)
                    .map(|_| EventPatch {
                        tag: None,
                        time_ns: None,
                        body: None,
                    })
                    .collect();
                Outcome::Expand(copies)
            })
            .collect()
    }
}

export!(Plugin);

/// How many events each input event becomes.
const EXPANSION: usize = 100_000;
