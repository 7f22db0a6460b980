//! Test guest `bad-msgpack`: replaces every body with bytes that are not one msgpack map.
//! By event index modulo 4: 0 → `0xc1` (a byte msgpack never uses), 1 → a valid msgpack array
//! `[1, 2]`, 2 → a map header promising two entries followed by one, 3 → a valid map followed by
//! a trailing byte.

// `generate!` and `export!` emit unsafe glue code with wide (flattened) signatures.
#![allow(unsafe_code, clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "filter", path: "../../../wit" });

use wasm_router::plugin::types::{EventPatch, PluginKind};

struct Plugin;

impl Guest for Plugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "bad-msgpack".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Filter,
            description: "Replaces bodies with invalid msgpack.".into(),
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
            .map(|index| {
                let body: &[u8] = match index % 4 {
                    0 => &[0xc1],
                    1 => &[0x92, 0x01, 0x02],
                    2 => &[0x82, 0xa1, b'a', 0x01],
                    _ => &[0x81, 0xa1, b'a', 0x01, 0x00],
                };
                Outcome::Replace(EventPatch {
                    tag: None,
                    time_ns: None,
                    body: Some(body.to_vec()),
                })
            })
            .collect()
    }
}

export!(Plugin);
