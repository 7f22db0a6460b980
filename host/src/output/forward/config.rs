//! `type = "forward"` under `[[outputs]]`: the options of Fluent Bit's `out_forward` that apply
//! (reference forward-protocol.md §8.2), validated into [`ForwardSettings`].
//!
//! The shared-key handshake (§6) is on when `shared_key` is set; TLS when `tls = true`. The
//! classic loader maps Fluent Bit's `Shared_Key`, `Self_Hostname`, `Username`, `Password`,
//! `tls`, `tls.verify`, `tls.ca_file` and `tls.vhost` onto these keys.

use super::handshake::ClientSecurity;
use super::request::Mode;
use super::tls::TlsClient;
use crate::config::{ByteSize, DurationStr};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `type = "forward"`: send to another forward-protocol receiver (an aggregator tier).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardOutputConfig {
    /// The receiver's host (default `127.0.0.1`).
    #[serde(default)]
    pub host: Option<String>,
    /// The receiver's TCP port (default 24224).
    #[serde(default)]
    pub port: Option<u16>,
    /// A unix socket to send to instead of `host`/`port`.
    #[serde(default)]
    pub unix_path: Option<PathBuf>,
    /// Send every event under this tag instead of its own.
    #[serde(default)]
    pub tag: Option<String>,
    /// Send times as integer seconds (for Fluentd 0.12-era receivers) instead of EventTime.
    #[serde(default)]
    pub time_as_integer: bool,
    /// Ask the receiver for an ack per request and retry what is not acked (default `true`,
    /// unlike Fluent Bit: without acks a receiver that dies loses what it had not written).
    #[serde(default)]
    pub require_ack_response: Option<bool>,
    /// `none` (default: Forward mode, as Fluent Bit sends), `text` (PackedForward, as Fluentd
    /// sends) or `gzip` (CompressedPackedForward).
    #[serde(default)]
    pub compress: Option<String>,
    /// How long to wait for an ack before the request is sent again (default `"60s"`).
    #[serde(default)]
    pub ack_response_timeout: Option<DurationStr>,
    /// How long connecting may take (default `"10s"`).
    #[serde(default)]
    pub connect_timeout: Option<DurationStr>,
    /// Most bytes of records in one request (default `"2MiB"`; the receiver's limit is often
    /// Fluent Bit's 6,144,000). A batch is sent as several requests; a larger event goes alone.
    #[serde(default)]
    pub max_request_bytes: Option<ByteSize>,
    /// Authenticate with the shared-key handshake using this key (e.g. `"${FORWARD_KEY}"`).
    #[serde(default)]
    pub shared_key: Option<String>,
    /// Our name in the handshake (default: the machine's hostname); the receiver's
    /// `self_hostname` must differ.
    #[serde(default)]
    pub self_hostname: Option<String>,
    /// Username for receivers with user auth (needs `shared_key`).
    #[serde(default)]
    pub username: Option<String>,
    /// Password for receivers with user auth (needs `username`).
    #[serde(default)]
    pub password: Option<String>,
    /// Connect over TLS (default `false`).
    #[serde(default)]
    pub tls: bool,
    /// Check the receiver's certificate and name (default `true`).
    #[serde(default)]
    pub tls_verify: Option<bool>,
    /// PEM file of the CA certificates to trust instead of the system's.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// The name the receiver's certificate must hold (default: `host`).
    #[serde(default)]
    pub tls_server_name: Option<String>,
}

/// Where a forward output connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `host:port`.
    Tcp(String),
    /// A unix socket.
    Unix(PathBuf),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// A validated forward output config.
#[derive(Clone, Debug)]
pub struct ForwardSettings {
    /// The output's name in logs.
    pub id: String,
    /// Where to send.
    pub endpoint: Endpoint,
    /// The tag every event is sent under, if overridden.
    pub tag: Option<String>,
    /// Integer seconds instead of EventTime.
    pub time_as_integer: bool,
    /// Wait for an ack per request.
    pub require_ack: bool,
    /// How requests carry their events.
    pub mode: Mode,
    /// Ack wait.
    pub ack_timeout: Duration,
    /// Connect wait.
    pub connect_timeout: Duration,
    /// Request size target.
    pub max_request_bytes: usize,
    /// The shared-key handshake, when on.
    pub security: Option<ClientSecurity>,
    /// TLS, when on.
    pub tls: Option<TlsClient>,
}

/// Default `max_request_bytes`.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 2 << 20;

impl ForwardOutputConfig {
    /// Check the options; each problem names the key (under `key`) and the fix.
    pub fn validate(&self, key: &str, problems: &mut Vec<String>) {
        if let Err(e) = self.settings() {
            problems.push(format!("{key}.{e}"));
        }
    }

    /// The validated settings.
    pub fn settings(&self) -> Result<ForwardSettings, String> {
        let mut tls_host = "localhost".to_string();
        let endpoint = match (&self.unix_path, &self.host, self.port) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err("unix_path: set either `unix_path` or `host`/`port`, not both".into());
            }
            (Some(path), None, None) => Endpoint::Unix(path.clone()),
            (None, host, port) => {
                let host = host.as_deref().unwrap_or("127.0.0.1");
                if host.is_empty() {
                    return Err("host must not be empty; e.g. \"aggregator.internal\"".into());
                }
                if port == Some(0) {
                    return Err("port must be between 1 and 65535 (default 24224)".into());
                }
                let port = port.unwrap_or(24224);
                tls_host = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string();
                // An IPv6 literal needs brackets in `host:port`.
                let host = if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]")
                } else {
                    host.to_string()
                };
                Endpoint::Tcp(format!("{host}:{port}"))
            }
        };
        let mode = match self.compress.as_deref() {
            None | Some("none") => Mode::Forward,
            Some("text") => Mode::PackedForward,
            Some("gzip") => Mode::CompressedPackedForward,
            Some(other) => {
                return Err(format!(
                    "compress = {other:?}: use \"gzip\", \"text\" (PackedForward) or \"none\""
                ));
            }
        };
        let security = self.security()?;
        let tls = if self.tls {
            let name = self.tls_server_name.as_deref().unwrap_or(&tls_host);
            Some(TlsClient::new(
                self.tls_verify.unwrap_or(true),
                self.tls_ca_file.as_deref(),
                name,
            )?)
        } else {
            if let Some(key) = [
                ("tls_verify", self.tls_verify.is_some()),
                ("tls_ca_file", self.tls_ca_file.is_some()),
                ("tls_server_name", self.tls_server_name.is_some()),
            ]
            .iter()
            .find_map(|(k, set)| set.then_some(k))
            {
                return Err(format!("{key} is set but tls is off; set `tls = true`"));
            }
            None
        };
        let positive = |name: &str, d: Option<DurationStr>, default: Duration| match d {
            Some(d) if d.0.is_zero() => Err(format!("{name} must be more than 0")),
            Some(d) => Ok(d.0),
            None => Ok(default),
        };
        let max_request_bytes = self
            .max_request_bytes
            .map_or(DEFAULT_MAX_REQUEST_BYTES, |b| b.0);
        if max_request_bytes == 0 {
            return Err("max_request_bytes must be more than 0, e.g. \"2MiB\"".into());
        }
        Ok(ForwardSettings {
            id: "forward".to_string(),
            endpoint,
            tag: self.tag.clone(),
            time_as_integer: self.time_as_integer,
            require_ack: self.require_ack_response.unwrap_or(true),
            mode,
            ack_timeout: positive(
                "ack_response_timeout",
                self.ack_response_timeout,
                Duration::from_secs(60),
            )?,
            connect_timeout: positive(
                "connect_timeout",
                self.connect_timeout,
                Duration::from_secs(10),
            )?,
            max_request_bytes: max_request_bytes.min(u32::MAX as u64) as usize,
            security,
            tls,
        })
    }

    fn security(&self) -> Result<Option<ClientSecurity>, String> {
        let Some(shared_key) = &self.shared_key else {
            if self.username.is_some() || self.password.is_some() {
                return Err(
                    "username/password need the handshake: set `shared_key` too (the receiver's)"
                        .into(),
                );
            }
            if self.self_hostname.is_some() {
                return Err("self_hostname is only used by the handshake: set `shared_key` (the receiver's) or remove it".into());
            }
            return Ok(None);
        };
        if shared_key.is_empty() {
            return Err(
                "shared_key is empty; set the receiver's key, e.g. shared_key = \"${FORWARD_KEY}\""
                    .into(),
            );
        }
        if self.self_hostname.as_deref() == Some("") {
            return Err(
                "self_hostname is empty; remove it (default: the hostname) or name this sender"
                    .into(),
            );
        }
        if self.password.is_some() && self.username.is_none() {
            return Err("password is set without username; set both or neither".into());
        }
        crate::ops::logging::register_secret("forward.shared_key", shared_key);
        if let Some(password) = &self.password {
            crate::ops::logging::register_secret("forward.password", password);
        }
        Ok(Some(ClientSecurity {
            shared_key: shared_key.clone(),
            self_hostname: self
                .self_hostname
                .clone()
                .unwrap_or_else(crate::input::forward::handshake::local_hostname),
            username: self.username.clone().unwrap_or_default(),
            password: self.password.clone().unwrap_or_default(),
        }))
    }
}
