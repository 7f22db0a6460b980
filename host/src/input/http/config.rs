//! `type = "http"` under `[[inputs]]`: Fluent Bit's `in_http`, its config and its checks.

use crate::config::{ByteSize, positive_size};
use crate::event::accessor::RecordAccessor;
use crate::input::ListenAddr;
use crate::input::forward::tls::ListenerTlsConfig;
use serde::Deserialize;

/// Fluent Bit's default address and port of the http input.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9880";
/// Default `buffer_max_size`: the largest request body (Fluent Bit's 4M).
pub const DEFAULT_BUFFER_MAX_SIZE: u64 = 4 << 20;
/// Most bytes `buffer_max_size` may be: a body is held whole in memory, decompressed.
pub const MAX_BUFFER_MAX_SIZE: u64 = 64 << 20;
/// Default `buffer_chunk_size` (Fluent Bit's 512K).
pub const DEFAULT_BUFFER_CHUNK_SIZE: u64 = 512 << 10;
/// Default `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The success codes Fluent Bit allows.
pub const SUCCESS_CODES: [u16; 3] = [200, 201, 204];

/// `type = "http"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpInputConfig {
    /// A name for metrics and logs; default `http`.
    #[serde(default)]
    pub name: Option<String>,
    /// Address to listen on (`ip:port`; Fluent Bit's `Listen` and `Port`, default
    /// `0.0.0.0:9880`).
    #[serde(default)]
    pub listen: Option<String>,
    /// The tag of records posted to `/` (default `http`; Fluent Bit: the instance name,
    /// `http.0`). A request to `/app.log` tags its records `app.log`, as in Fluent Bit.
    #[serde(default)]
    pub tag: Option<String>,
    /// A record whose value at this key (a record accessor, `level` or `$a['b']`) is a string
    /// is tagged with it instead.
    #[serde(default)]
    pub tag_key: Option<String>,
    /// The largest request body, after gzip is undone (default 4MiB); a larger one is answered
    /// 413 and counted (`request_too_large`).
    #[serde(default)]
    pub buffer_max_size: Option<ByteSize>,
    /// How much memory a body without a declared length (chunked) takes at a time while it
    /// arrives (default 512KiB).
    #[serde(default)]
    pub buffer_chunk_size: Option<ByteSize>,
    /// The status of a request whose records are in the buffers: 201 (default), 200 or 204.
    #[serde(default)]
    pub successful_response_code: Option<u16>,
    /// Most connections open at once (default 1024); at the cap the longest-idle one is closed
    /// for a newcomer.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Serve HTTPS: `tls = { cert_file, key_file }` (PEM).
    #[serde(default)]
    pub tls: Option<ListenerTlsConfig>,
}

impl HttpInputConfig {
    /// Check the keys, adding one problem per mistake, each starting with `key` (`inputs[0]`).
    pub fn validate(&self, key: &str, problems: &mut Vec<String>) {
        if self.addr().parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "{key}.listen = {:?} is not `ip:port`; e.g. \"{DEFAULT_LISTEN}\"",
                self.addr()
            ));
        }
        positive_size(
            key,
            "buffer_max_size",
            self.buffer_max_size,
            "\"4MiB\"",
            problems,
        );
        positive_size(
            key,
            "buffer_chunk_size",
            self.buffer_chunk_size,
            "\"512KiB\"",
            problems,
        );
        if self
            .buffer_max_size
            .is_some_and(|b| b.0 > MAX_BUFFER_MAX_SIZE)
        {
            problems.push(format!(
                "{key}.buffer_max_size must be at most 64MiB (a body is held whole), e.g. \"4MiB\""
            ));
        }
        if let Some(code) = self.successful_response_code
            && !SUCCESS_CODES.contains(&code)
        {
            problems.push(format!(
                "{key}.successful_response_code = {code}: use 200, 201 or 204"
            ));
        }
        if let Some(tag_key) = &self.tag_key
            && let Err(e) = RecordAccessor::parse(tag_key)
        {
            problems.push(format!("{key}.tag_key: {e}"));
        }
        if self.max_connections == Some(0) {
            problems.push(format!("{key}.max_connections must be at least 1"));
        }
    }

    /// `listen`, or the default.
    pub fn addr(&self) -> &str {
        self.listen.as_deref().unwrap_or(DEFAULT_LISTEN)
    }

    /// The socket it listens on.
    pub fn listeners(&self) -> Vec<(&'static str, ListenAddr)> {
        self.addr()
            .parse()
            .map(|addr| vec![("listen", ListenAddr::Tcp(addr))])
            .unwrap_or_default()
    }

    /// `buffer_chunk_size` and `buffer_max_size` in bytes (the chunk never above the maximum).
    pub fn sizes(&self) -> (usize, usize) {
        let max = self
            .buffer_max_size
            .map_or(DEFAULT_BUFFER_MAX_SIZE, |b| b.0)
            .min(MAX_BUFFER_MAX_SIZE);
        let chunk = self
            .buffer_chunk_size
            .map_or(DEFAULT_BUFFER_CHUNK_SIZE, |c| c.0)
            .min(max);
        (chunk as usize, max as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> HttpInputConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_are_fluent_bits() {
        let c = parse("");
        assert_eq!(c.addr(), "0.0.0.0:9880");
        assert_eq!(c.sizes(), (512 << 10, 4 << 20));
        let c = parse("buffer_max_size = \"100KiB\"\n");
        assert_eq!(c.sizes(), (100 << 10, 100 << 10));
    }

    #[test]
    fn mistakes_name_the_key_and_the_fix() {
        let c = parse(
            "listen = \"localhost\"\nbuffer_max_size = \"1GiB\"\nsuccessful_response_code = 202\ntag_key = \"$a[b]\"\nmax_connections = 0\n",
        );
        let mut problems = Vec::new();
        c.validate("inputs[1]", &mut problems);
        let text = problems.join("\n");
        for needle in [
            "inputs[1].listen = \"localhost\" is not `ip:port`",
            "inputs[1].buffer_max_size must be at most 64MiB",
            "inputs[1].successful_response_code = 202: use 200, 201 or 204",
            "inputs[1].tag_key: record accessor",
            "inputs[1].max_connections must be at least 1",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }
}
