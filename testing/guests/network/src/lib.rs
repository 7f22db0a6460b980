//! Test guest `network`: for each event, tries what a plugin built with a general-purpose
//! toolchain might try — a TCP connection, a UDP socket, a DNS lookup — and returns
//! `error("tcp: …; udp: …; dns: …")` with what each attempt got (`ok` if one worked).
//! The router links `wasi:sockets` so such plugins load, and denies every operation.

// `generate!` and `export!` emit unsafe glue code with wide (flattened) signatures.
#![allow(unsafe_code, clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "filter", path: "../../../wit" });

use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use wasm_router::plugin::types::PluginKind;

struct Plugin;

fn attempt<T>(result: std::io::Result<T>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => format!("{:?}: {e}", e.kind()),
    }
}

impl Guest for Plugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "network".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Filter,
            description: "Tries TCP, UDP and DNS on every event.".into(),
            config_schema: "{}".into(),
            requested_hosts: Vec::new(),
            requested_secrets: Vec::new(),
        }
    }

    fn init(_config: String) -> Result<(), Vec<ConfigError>> {
        Ok(())
    }

    fn process(batch: Batch) -> Vec<Outcome> {
        batch
            .time_ns
            .iter()
            .map(|_| {
                let tcp = attempt(TcpStream::connect("127.0.0.1:9"));
                let udp = attempt(UdpSocket::bind("127.0.0.1:0"));
                let dns = attempt("localhost:80".to_socket_addrs());
                Outcome::Error(format!("tcp: {tcp}; udp: {udp}; dns: {dns}"))
            })
            .collect()
    }
}

export!(Plugin);
