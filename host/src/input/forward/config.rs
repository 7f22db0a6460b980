//! `type = "forward"` under `[[inputs]]`: its config and its checks.

use super::ListenAddr;
use crate::config::{ByteSize, DurationStr, positive_size};
use serde::Deserialize;
use std::path::PathBuf;

/// `type = "forward"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardInputConfig {
    /// A name for metrics and logs; default `forward`.
    #[serde(default)]
    pub name: Option<String>,
    /// TCP address to listen on (`host:port`); absent with a `unix_path` = no TCP listener.
    #[serde(default)]
    pub listen: Option<String>,
    /// Unix socket to create (a stale file there is replaced).
    #[serde(default)]
    pub unix_path: Option<PathBuf>,
    /// Permissions of the unix socket, octal (default `"0666"`, so the Docker daemon can connect).
    #[serde(default)]
    pub unix_perm: Option<String>,
    /// Prepended to every tag received on this input.
    #[serde(default)]
    pub tag_prefix: Option<String>,
    /// Most bytes one request may take before it is complete (default 6,144,000 as Fluent Bit).
    #[serde(default)]
    pub buffer_max_size: Option<ByteSize>,
    /// Most bytes a compressed payload may decompress to (default: `buffer_max_size`).
    #[serde(default)]
    pub decompress_max_size: Option<ByteSize>,
    /// Most TCP connections open at once on this input (default 1024). At the cap, the
    /// longest-idle connection is closed to serve the newcomer.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Most unix-socket connections open at once on this input (default 256), counted apart
    /// from TCP so neither can starve the other. At the cap, the longest-idle one is closed.
    #[serde(default)]
    pub max_unix_connections: Option<usize>,
    /// Close a connection that has sent nothing for this long (default: never; long-lived quiet
    /// log-driver connections are normal). A connection mid-request or waiting on a push is not idle.
    #[serde(default)]
    pub idle_timeout: Option<DurationStr>,
    /// Require the shared-key handshake on the TCP listener (reference forward-protocol.md §6).
    #[serde(default)]
    pub security: Option<super::handshake::SecurityConfig>,
    /// Serve the TCP listener over TLS.
    #[serde(default)]
    pub tls: Option<super::tls::ListenerTlsConfig>,
}

impl ForwardInputConfig {
    /// Check the keys, adding one problem per mistake, each starting with `key` (`inputs[0]`).
    pub fn validate(&self, key: &str, problems: &mut Vec<String>) {
        if self.listen.is_none() && self.unix_path.is_none() {
            problems.push(format!("{key}: set `listen = \"127.0.0.1:24224\"` and/or `unix_path = \"/var/run/fluent.sock\"`"));
        }
        if let Some(listen) = &self.listen
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            problems.push(format!("{key}.listen = {listen:?} is not `ip:port`; e.g. \"127.0.0.1:24224\" or \"0.0.0.0:24224\""));
        }
        if let Some(perm) = &self.unix_perm
            && parse_octal_mode(perm).is_none()
        {
            problems.push(format!(
                "{key}.unix_perm = {perm:?} is not an octal mode; e.g. \"0666\""
            ));
        }
        if self.max_connections == Some(0) {
            problems.push(format!("{key}.max_connections must be at least 1"));
        }
        if self.max_unix_connections == Some(0) {
            problems.push(format!("{key}.max_unix_connections must be at least 1"));
        }
        if self.idle_timeout.is_some_and(|d| d.0.is_zero()) {
            problems.push(format!(
                "{key}.idle_timeout must be more than 0s; remove it to keep quiet connections open"
            ));
        }
        positive_size(
            key,
            "buffer_max_size",
            self.buffer_max_size,
            "\"6M\"",
            problems,
        );
        positive_size(
            key,
            "decompress_max_size",
            self.decompress_max_size,
            "\"64M\"",
            problems,
        );
        if let Some(security) = &self.security {
            security.validate(key, problems);
            if self.listen.is_none() {
                problems.push(format!("{key}.security applies to the TCP listener only; add `listen = \"0.0.0.0:24224\"` or remove `security`"));
            }
        }
        if self.tls.is_some() && self.listen.is_none() {
            problems.push(format!(
                "{key}.tls applies to the TCP listener only; add `listen = \"0.0.0.0:24224\"` or remove `tls`"
            ));
        }
    }

    /// The sockets it would listen on, each with its key (`listen`, `unix_path`).
    pub fn listeners(&self) -> Vec<(&'static str, ListenAddr)> {
        let mut out = Vec::new();
        if let Some(addr) = self.listen.as_deref().and_then(|l| l.parse().ok()) {
            out.push(("listen", ListenAddr::Tcp(addr)));
        }
        if let Some(path) = &self.unix_path {
            out.push(("unix_path", ListenAddr::Unix(path.clone())));
        }
        out
    }
}

/// An octal file mode such as `"0666"` or `"660"`.
pub fn parse_octal_mode(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
}
