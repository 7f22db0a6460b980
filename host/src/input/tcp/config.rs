//! `type = "tcp"` under `[[inputs]]`: Fluent Bit's `in_tcp`, its config and its checks.

use crate::config::{ByteSize, positive_size};
use crate::input::ListenAddr;
use serde::Deserialize;

/// Default `chunk_size`: how much is read from a connection at a time (Fluent Bit's 32 KiB).
pub const DEFAULT_CHUNK_SIZE: u64 = 32 * 1024;
/// Most bytes `buffer_size` may be: one record is held whole in memory.
pub const MAX_BUFFER_SIZE: u64 = 64 << 20;
/// Default `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// `type = "tcp"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpInputConfig {
    /// A name for metrics and logs; default `tcp`.
    #[serde(default)]
    pub name: Option<String>,
    /// Address to listen on (`host:port`; Fluent Bit's `Listen` and `Port`, default port 5170).
    pub listen: String,
    /// The tag of every record (default `tcp`; Fluent Bit: the instance name, `tcp.0`).
    #[serde(default)]
    pub tag: Option<String>,
    /// `json` (default): a stream of JSON objects, each one record; `none`: text, each piece
    /// between two `separator`s one record `{"log": "…"}`.
    #[serde(default)]
    pub format: TcpFormat,
    /// With `format = "none"`: what ends a record (default a newline; `\n`, `\r`, `\t` and
    /// `\\` escapes as Fluent Bit reads them).
    #[serde(default)]
    pub separator: Option<String>,
    /// How much is read from a connection at a time (default 32 KiB).
    #[serde(default)]
    pub chunk_size: Option<ByteSize>,
    /// The largest record (default: `chunk_size`); a longer one is dropped and counted
    /// (`record_too_large`).
    #[serde(default)]
    pub buffer_size: Option<ByteSize>,
    /// Add the sender's address (`tcp://ip:port`) to each record under this key.
    #[serde(default)]
    pub source_address_key: Option<String>,
    /// Most connections open at once (default 1024); at the cap the longest-idle one is closed
    /// for a newcomer.
    #[serde(default)]
    pub max_connections: Option<usize>,
}

/// `format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpFormat {
    /// A stream of JSON objects.
    #[default]
    Json,
    /// Text split at `separator`.
    None,
}

impl TcpInputConfig {
    /// Check the keys, adding one problem per mistake, each starting with `key` (`inputs[0]`).
    pub fn validate(&self, key: &str, problems: &mut Vec<String>) {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "{key}.listen = {:?} is not `ip:port`; e.g. \"0.0.0.0:5170\"",
                self.listen
            ));
        }
        positive_size(key, "chunk_size", self.chunk_size, "\"32KiB\"", problems);
        positive_size(key, "buffer_size", self.buffer_size, "\"32KiB\"", problems);
        if self.buffer_size.is_some_and(|b| b.0 > MAX_BUFFER_SIZE) {
            problems.push(format!(
                "{key}.buffer_size must be at most 64MiB (one record is held whole), e.g. \"1MiB\""
            ));
        }
        if self.separator.as_deref() == Some("") {
            problems.push(format!(
                "{key}.separator must not be empty; remove it for a newline"
            ));
        }
        if self.separator.is_some() && self.format == TcpFormat::Json {
            problems.push(format!(
                "{key}.separator applies to `format = \"none\"` only: JSON records end where each object does; remove it or set `format = \"none\"`"
            ));
        }
        if self.max_connections == Some(0) {
            problems.push(format!("{key}.max_connections must be at least 1"));
        }
    }

    /// The socket it listens on.
    pub fn listeners(&self) -> Vec<(&'static str, ListenAddr)> {
        self.listen
            .parse()
            .map(|addr| vec![("listen", ListenAddr::Tcp(addr))])
            .unwrap_or_default()
    }

    /// The bytes that end a record with `format = "none"`.
    pub fn separator_bytes(&self) -> Vec<u8> {
        unescape(self.separator.as_deref().unwrap_or("\n")).into_bytes()
    }

    /// `chunk_size` and `buffer_size` in bytes (the buffer never below a chunk's size).
    pub fn sizes(&self) -> (usize, usize) {
        let chunk = self
            .chunk_size
            .map_or(DEFAULT_CHUNK_SIZE, |c| c.0)
            .min(MAX_BUFFER_SIZE);
        let buffer = self.buffer_size.map_or(chunk, |b| b.0);
        (chunk as usize, buffer.max(chunk) as usize)
    }
}

/// `\n`, `\r`, `\t` and `\\` as the characters they stand for; other text as written.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> TcpInputConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn separators_unescape_and_sizes_default_to_a_chunk() {
        let c =
            parse("listen = \"127.0.0.1:5170\"\nformat = \"none\"\nseparator = \"\\\\r\\\\n\"\n");
        assert_eq!(c.separator_bytes(), b"\r\n");
        assert_eq!(c.sizes(), (32 * 1024, 32 * 1024));
        let c =
            parse("listen = \"127.0.0.1:5170\"\nchunk_size = \"1KiB\"\nbuffer_size = \"1MiB\"\n");
        assert_eq!(c.sizes(), (1024, 1 << 20));
        assert_eq!(c.separator_bytes(), b"\n");
    }

    #[test]
    fn mistakes_name_the_key_and_the_fix() {
        let c = parse(
            "listen = \"localhost\"\nseparator = \"\"\nbuffer_size = \"1GiB\"\nmax_connections = 0\n",
        );
        let mut problems = Vec::new();
        c.validate("inputs[1]", &mut problems);
        let text = problems.join("\n");
        for needle in [
            "inputs[1].listen = \"localhost\" is not `ip:port`",
            "inputs[1].buffer_size must be at most 64MiB",
            "inputs[1].separator must not be empty",
            "inputs[1].separator applies to `format = \"none\"` only",
            "inputs[1].max_connections must be at least 1",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }
}
