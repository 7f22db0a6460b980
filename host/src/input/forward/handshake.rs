//! The forward protocol's shared-key handshake (reference forward-protocol.md §6): the
//! messages and digests both sides use, and the server's half.
//!
//! ```text
//! server → HELO  ["HELO", {"nonce": bin16, "auth": bin16 | "", "keepalive": true}]
//! client → PING  ["PING", client_hostname, salt, hex(sha512(salt ‖ client_hostname ‖ nonce ‖ key)),
//!                 username | "", hex(sha512(auth ‖ username ‖ password)) | ""]
//! server → PONG  ["PONG", true, "", server_hostname, hex(sha512(salt ‖ server_hostname ‖ nonce ‖ key))]
//!             or ["PONG", false, reason, "", ""] and the connection is closed
//! ```
//!
//! Every field is hashed as the bytes that arrived (str or bin, never decoded). The nonce and
//! the auth salt go out as bin so that clients which decode str as UTF-8 (the npm client) hash
//! the exact bytes; the client's salt and every PING field go out as str, which is all Fluent
//! Bit's server accepts. The output's half is `output::forward::handshake`.

use bytes::{Buf, BytesMut};
use rmpv::Value;
use serde::Deserialize;
use sha2::{Digest, Sha512};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Random bytes in a HELO's nonce and auth salt (what Fluentd and Fluent Bit send).
pub const NONCE_LEN: usize = 16;
/// Largest handshake message accepted; real ones are a few hundred bytes.
pub const MAX_MESSAGE_BYTES: usize = 16 << 10;
/// How long a client may take to answer HELO (Fluent Bit's `net.accept_timeout` is 10 s).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `security = { … }` of a forward input: clients must prove they know `shared_key`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// The key both sides know (e.g. `"${FORWARD_KEY}"`); it never goes over the wire.
    pub shared_key: String,
    /// The name this server gives in PONG (default: the machine's hostname). Clients refuse a
    /// server with their own name, so each side needs a distinct one.
    #[serde(default)]
    pub self_hostname: Option<String>,
    /// Also require a username and password from `users` (default `false`).
    #[serde(default)]
    pub user_auth: bool,
    /// The accepted usernames and passwords when `user_auth` is on.
    #[serde(default)]
    pub users: Vec<UserConfig>,
}

/// One `users` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The username a client sends in PING.
    pub username: String,
    /// Its password (only its salted digest goes over the wire).
    pub password: String,
}

impl SecurityConfig {
    /// Check the options; each problem names the key (under `key`) and the fix.
    pub fn validate(&self, key: &str, problems: &mut Vec<String>) {
        if self.shared_key.is_empty() {
            problems.push(format!(
                "{key}.security.shared_key is empty; set it, e.g. shared_key = \"${{FORWARD_KEY}}\""
            ));
        }
        if self.self_hostname.as_deref() == Some("") {
            problems.push(format!(
                "{key}.security.self_hostname is empty; remove it (default: the hostname) or name this server"
            ));
        }
        if self.user_auth && self.users.is_empty() {
            problems.push(format!(
                "{key}.security.user_auth is on but `users` is empty; add users = [{{ username = \"…\", password = \"${{…}}\" }}] or turn user_auth off"
            ));
        }
        if !self.user_auth && !self.users.is_empty() {
            problems.push(format!(
                "{key}.security.users are listed but user_auth is off; set user_auth = true to require them"
            ));
        }
    }

    /// The validated settings; registers every secret so the log never shows it.
    pub fn settings(&self) -> ServerSecurity {
        crate::ops::logging::register_secret("forward.security.shared_key", &self.shared_key);
        for u in &self.users {
            crate::ops::logging::register_secret("forward.security.password", &u.password);
        }
        ServerSecurity {
            shared_key: self.shared_key.clone(),
            self_hostname: self.self_hostname.clone().unwrap_or_else(local_hostname),
            users: self.user_auth.then(|| {
                self.users
                    .iter()
                    .map(|u| (u.username.clone(), u.password.clone()))
                    .collect()
            }),
        }
    }
}

/// The machine's hostname, the default `self_hostname` of both sides (Fluentd's default too).
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "wasm-router".to_string())
}

/// `hex(sha512(salt ‖ hostname ‖ nonce ‖ shared_key))`: the PING's and the PONG's digest.
pub fn shared_key_digest(salt: &[u8], hostname: &[u8], nonce: &[u8], shared_key: &[u8]) -> String {
    let mut h = Sha512::new();
    for part in [salt, hostname, nonce, shared_key] {
        h.update(part);
    }
    hex(&h.finalize())
}

/// `hex(sha512(auth_salt ‖ username ‖ password))`: the PING's password digest.
pub fn password_digest(auth_salt: &[u8], username: &[u8], password: &[u8]) -> String {
    let mut h = Sha512::new();
    for part in [auth_salt, username, password] {
        h.update(part);
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Equality whose time does not depend on where the inputs differ (digests are compared).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `N` bytes from the operating system's CSPRNG: nonces and salts must be unpredictable.
pub fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes)
}

/// `["HELO", {nonce, auth, keepalive}]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Helo {
    /// Random bytes the client hashes into its PING digest.
    pub nonce: Vec<u8>,
    /// The password salt; empty when no username/password is required.
    pub auth: Vec<u8>,
    /// `false`: the server closes after one request (Fluentd `deny_keepalive`).
    pub keepalive: bool,
}

/// `["PING", hostname, salt, digest, username, password_digest]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ping {
    /// The client's `self_hostname`.
    pub hostname: Vec<u8>,
    /// The client's salt.
    pub salt: Vec<u8>,
    /// [`shared_key_digest`] of salt, hostname, nonce and key.
    pub digest: Vec<u8>,
    /// Empty unless the HELO asked for user auth.
    pub username: Vec<u8>,
    /// [`password_digest`], or empty.
    pub password_digest: Vec<u8>,
}

/// `["PONG", ok, reason, hostname, digest]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pong {
    /// Whether the server accepted the PING.
    pub ok: bool,
    /// Why not, when it did not.
    pub reason: String,
    /// The server's `self_hostname`.
    pub hostname: Vec<u8>,
    /// [`shared_key_digest`] of the client's salt, the server's hostname, nonce and key.
    pub digest: Vec<u8>,
}

/// Encode a HELO.
pub fn encode_helo(helo: &Helo) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    rmp::encode::write_array_len(&mut out, 2).unwrap();
    rmp::encode::write_str(&mut out, "HELO").unwrap();
    rmp::encode::write_map_len(&mut out, 3).unwrap();
    rmp::encode::write_str(&mut out, "nonce").unwrap();
    rmp::encode::write_bin(&mut out, &helo.nonce).unwrap();
    rmp::encode::write_str(&mut out, "auth").unwrap();
    if helo.auth.is_empty() {
        rmp::encode::write_str(&mut out, "").unwrap();
    } else {
        rmp::encode::write_bin(&mut out, &helo.auth).unwrap();
    }
    rmp::encode::write_str(&mut out, "keepalive").unwrap();
    rmp::encode::write_bool(&mut out, helo.keepalive).unwrap();
    out
}

/// Encode a PING (every field as str, as Fluent Bit's server requires).
pub fn encode_ping(ping: &Ping) -> Vec<u8> {
    let mut out = Vec::with_capacity(320);
    rmp::encode::write_array_len(&mut out, 6).unwrap();
    rmp::encode::write_str(&mut out, "PING").unwrap();
    for field in [
        &ping.hostname,
        &ping.salt,
        &ping.digest,
        &ping.username,
        &ping.password_digest,
    ] {
        write_raw_str(&mut out, field);
    }
    out
}

/// Encode a PONG.
pub fn encode_pong(pong: &Pong) -> Vec<u8> {
    let mut out = Vec::with_capacity(192);
    rmp::encode::write_array_len(&mut out, 5).unwrap();
    rmp::encode::write_str(&mut out, "PONG").unwrap();
    rmp::encode::write_bool(&mut out, pong.ok).unwrap();
    rmp::encode::write_str(&mut out, &pong.reason).unwrap();
    write_raw_str(&mut out, &pong.hostname);
    write_raw_str(&mut out, &pong.digest);
    out
}

fn write_raw_str(out: &mut Vec<u8>, bytes: &[u8]) {
    rmp::encode::write_str_len(out, bytes.len() as u32).unwrap();
    out.extend_from_slice(bytes);
}

/// The bytes of a str or bin value (str is never required to be UTF-8).
fn raw(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Binary(b) => Some(b.clone()),
        _ => None,
    }
}

fn message<'a>(v: &'a Value, name: &str, len: usize) -> Result<&'a [Value], String> {
    match v.as_array() {
        Some(items) if items.len() == len && items[0].as_str() == Some(name) => {
            Ok(items.as_slice())
        }
        Some(items) if items.first().and_then(Value::as_str) == Some(name) => Err(format!(
            "{name} has {} elements instead of {len}",
            items.len()
        )),
        _ => Err(format!("expected {name}, got {}", short(v))),
    }
}

fn short(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 80 {
        let cut = (0..=80).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Read a HELO; missing options read as empty, as Fluentd and the npm client do.
pub fn parse_helo(v: &Value) -> Result<Helo, String> {
    let items = message(v, "HELO", 2)?;
    let options: &[(Value, Value)] = match &items[1] {
        Value::Map(m) => m.as_slice(),
        Value::Nil => &[],
        other => return Err(format!("HELO options are not a map: {}", short(other))),
    };
    let get = |key: &str| {
        options
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    };
    Ok(Helo {
        nonce: get("nonce").and_then(raw).unwrap_or_default(),
        auth: get("auth").and_then(raw).unwrap_or_default(),
        keepalive: get("keepalive").and_then(Value::as_bool).unwrap_or(true),
    })
}

/// Read a PING: six elements, every field str or bin.
pub fn parse_ping(v: &Value) -> Result<Ping, String> {
    let items = message(v, "PING", 6)?;
    let field = |i: usize, name: &str| {
        raw(&items[i]).ok_or_else(|| format!("PING {name} is not a string: {}", short(&items[i])))
    };
    Ok(Ping {
        hostname: field(1, "hostname")?,
        salt: field(2, "salt")?,
        digest: field(3, "digest")?,
        username: field(4, "username")?,
        password_digest: field(5, "password digest")?,
    })
}

/// Read a PONG.
pub fn parse_pong(v: &Value) -> Result<Pong, String> {
    let items = message(v, "PONG", 5)?;
    let ok = items[1]
        .as_bool()
        .ok_or_else(|| format!("PONG result is not a bool: {}", short(&items[1])))?;
    Ok(Pong {
        ok,
        reason: raw(&items[2])
            .map(|r| String::from_utf8_lossy(&r).into_owned())
            .unwrap_or_default(),
        hostname: raw(&items[3]).unwrap_or_default(),
        digest: raw(&items[4]).unwrap_or_default(),
    })
}

/// What the front of a buffer holds.
#[derive(Debug, PartialEq)]
pub enum MessageRead {
    /// More bytes are needed.
    Incomplete,
    /// A whole value of `len` bytes.
    Value(Value, usize),
    /// Not msgpack.
    Invalid,
}

/// Read one msgpack value from the front of `buf`.
pub fn read_message(buf: &[u8]) -> MessageRead {
    let mut cursor = std::io::Cursor::new(buf);
    match rmpv::decode::read_value_with_max_depth(&mut cursor, 8) {
        Ok(v) => MessageRead::Value(v, cursor.position() as usize),
        Err(rmpv::decode::Error::InvalidMarkerRead(e))
        | Err(rmpv::decode::Error::InvalidDataRead(e))
            if e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            MessageRead::Incomplete
        }
        Err(_) => MessageRead::Invalid,
    }
}

/// Why a handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The socket failed.
    #[error("connection error during the handshake: {0}")]
    Io(#[from] std::io::Error),
    /// The peer did not answer in time.
    #[error("no {expected} within {timeout:?}")]
    Timeout {
        /// The message waited for.
        expected: &'static str,
        /// How long.
        timeout: Duration,
    },
    /// The peer closed the connection.
    #[error("the peer closed the connection while we waited for {0}")]
    Closed(&'static str),
    /// The peer sent something that is not the handshake message expected.
    #[error("bad handshake message: {0}")]
    Malformed(String),
    /// Authentication failed: the reason that went (or came) in the PONG.
    #[error("{reason}")]
    Refused {
        /// Why.
        reason: String,
        /// The client's hostname, when known.
        client_hostname: String,
    },
}

/// Read the next handshake message into `buf` from `stream` (bounded by [`MAX_MESSAGE_BYTES`]).
pub async fn read_handshake_message<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    expected: &'static str,
) -> Result<Value, HandshakeError> {
    loop {
        match read_message(buf) {
            MessageRead::Value(v, len) => {
                buf.advance(len);
                return Ok(v);
            }
            MessageRead::Invalid => {
                return Err(HandshakeError::Malformed(format!(
                    "expected {expected}, got bytes that are not msgpack"
                )));
            }
            MessageRead::Incomplete if buf.len() > MAX_MESSAGE_BYTES => {
                return Err(HandshakeError::Malformed(format!(
                    "{expected} is larger than {MAX_MESSAGE_BYTES} bytes"
                )));
            }
            MessageRead::Incomplete => {}
        }
        buf.reserve(1024);
        if stream.read_buf(buf).await? == 0 {
            return Err(HandshakeError::Closed(expected));
        }
    }
}

/// The validated `security` of a forward input.
#[derive(Clone, Debug)]
pub struct ServerSecurity {
    shared_key: String,
    self_hostname: String,
    /// `(username, password)` pairs when user auth is on.
    users: Option<Vec<(String, String)>>,
}

impl ServerSecurity {
    /// Check a PING against the HELO that was sent; `Err` is the reason for the PONG.
    pub fn check_ping(&self, ping: &Ping, helo: &Helo) -> Result<(), &'static str> {
        let expected = shared_key_digest(
            &ping.salt,
            &ping.hostname,
            &helo.nonce,
            self.shared_key.as_bytes(),
        );
        if !constant_time_eq(expected.as_bytes(), &ping.digest) {
            return Err("shared_key mismatch");
        }
        if let Some(users) = &self.users {
            let accepted = users.iter().any(|(user, password)| {
                user.as_bytes() == ping.username.as_slice()
                    && constant_time_eq(
                        password_digest(&helo.auth, user.as_bytes(), password.as_bytes())
                            .as_bytes(),
                        &ping.password_digest,
                    )
            });
            if !accepted {
                return Err("username/password mismatch");
            }
        }
        Ok(())
    }

    /// The PONG that accepts `ping`.
    pub fn accepting_pong(&self, ping: &Ping, helo: &Helo) -> Pong {
        Pong {
            ok: true,
            reason: String::new(),
            hostname: self.self_hostname.as_bytes().to_vec(),
            digest: shared_key_digest(
                &ping.salt,
                self.self_hostname.as_bytes(),
                &helo.nonce,
                self.shared_key.as_bytes(),
            )
            .into_bytes(),
        }
    }

    /// Run the server's half on a new connection: HELO, wait for PING, PONG. Bytes the client
    /// sent after its PING stay in `buf`. On a failed check the refusing PONG has been sent
    /// and [`HandshakeError::Refused`] is returned: close the connection.
    pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        buf: &mut BytesMut,
    ) -> Result<(), HandshakeError> {
        let helo = Helo {
            nonce: random_bytes::<NONCE_LEN>()?.to_vec(),
            auth: match self.users {
                Some(_) => random_bytes::<NONCE_LEN>()?.to_vec(),
                None => Vec::new(),
            },
            keepalive: true,
        };
        stream.write_all(&encode_helo(&helo)).await?;
        stream.flush().await?;
        let ping = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            read_handshake_message(stream, buf, "PING"),
        )
        .await
        .map_err(|_| HandshakeError::Timeout {
            expected: "PING",
            timeout: HANDSHAKE_TIMEOUT,
        })??;
        let ping = parse_ping(&ping).map_err(HandshakeError::Malformed)?;
        match self.check_ping(&ping, &helo) {
            Ok(()) => {
                stream
                    .write_all(&encode_pong(&self.accepting_pong(&ping, &helo)))
                    .await?;
                stream.flush().await?;
                Ok(())
            }
            Err(reason) => {
                let refusal = Pong {
                    ok: false,
                    reason: reason.to_string(),
                    hostname: Vec::new(),
                    digest: Vec::new(),
                };
                stream.write_all(&encode_pong(&refusal)).await?;
                stream.flush().await?;
                Err(HandshakeError::Refused {
                    reason: reason.to_string(),
                    client_hostname: String::from_utf8_lossy(&ping.hostname).into_owned(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fluentd's own vector (test/plugin/out_forward/test_handshake_protocol.rb): salt
    /// `ce1897b0d3dbd76b90d7fb96010dcac3`, hostname `client_hostname`, empty nonce, key
    /// `shared_key`.
    #[test]
    fn the_digest_matches_fluentds_test_vector() {
        assert_eq!(
            shared_key_digest(
                b"ce1897b0d3dbd76b90d7fb96010dcac3",
                b"client_hostname",
                b"",
                b"shared_key"
            ),
            "40a3c5943cc6256e0c5dcf176e97db3826b0909698c330dc8e53d15af63efb47e030d113130255dd6e7ced5176d2999cc2e02a44852d45152503af317b73b33f"
        );
        // The parts are concatenated, so moving a byte between them does not change it.
        assert_eq!(
            shared_key_digest(b"ab", b"c", b"", b"d"),
            shared_key_digest(b"a", b"bc", b"d", b"")
        );
        assert_eq!(password_digest(b"", b"", b"").len(), 128);
    }

    fn security(users: Option<Vec<(String, String)>>) -> ServerSecurity {
        ServerSecurity {
            shared_key: "s3cret-key".into(),
            self_hostname: "aggregator".into(),
            users,
        }
    }

    fn ping_for(helo: &Helo, key: &str, user: &str, password: &str) -> Ping {
        let salt = b"0123456789abcdef0123456789abcdef".to_vec();
        Ping {
            digest: shared_key_digest(&salt, b"client", &helo.nonce, key.as_bytes()).into_bytes(),
            hostname: b"client".to_vec(),
            salt,
            username: user.as_bytes().to_vec(),
            password_digest: if helo.auth.is_empty() {
                Vec::new()
            } else {
                password_digest(&helo.auth, user.as_bytes(), password.as_bytes()).into_bytes()
            },
        }
    }

    #[test]
    fn pings_are_checked_for_the_key_and_the_user() {
        let helo = Helo {
            nonce: vec![0xff, 0x00, 0x80],
            auth: Vec::new(),
            keepalive: true,
        };
        let server = security(None);
        assert_eq!(
            server.check_ping(&ping_for(&helo, "s3cret-key", "", ""), &helo),
            Ok(())
        );
        assert_eq!(
            server.check_ping(&ping_for(&helo, "other", "", ""), &helo),
            Err("shared_key mismatch")
        );
        let helo = Helo {
            auth: vec![1, 2, 3],
            ..helo
        };
        let server = security(Some(vec![("alice".into(), "pw1".into())]));
        assert_eq!(
            server.check_ping(&ping_for(&helo, "s3cret-key", "alice", "pw1"), &helo),
            Ok(())
        );
        assert_eq!(
            server.check_ping(&ping_for(&helo, "s3cret-key", "alice", "pw2"), &helo),
            Err("username/password mismatch")
        );
        assert_eq!(
            server.check_ping(&ping_for(&helo, "s3cret-key", "bob", "pw1"), &helo),
            Err("username/password mismatch")
        );
    }

    #[test]
    fn messages_round_trip_and_bad_ones_are_named() {
        let helo = Helo {
            nonce: random_bytes::<NONCE_LEN>().unwrap().to_vec(),
            auth: vec![0xc3; 16],
            keepalive: false,
        };
        let bytes = encode_helo(&helo);
        let MessageRead::Value(v, len) = read_message(&bytes) else {
            panic!()
        };
        assert_eq!(len, bytes.len());
        assert_eq!(parse_helo(&v).unwrap(), helo);
        for cut in 0..bytes.len() {
            assert_eq!(read_message(&bytes[..cut]), MessageRead::Incomplete);
        }

        let ping = ping_for(&helo, "k", "u", "p");
        let MessageRead::Value(v, _) = read_message(&encode_ping(&ping)) else {
            panic!()
        };
        assert!(v.as_array().unwrap().iter().all(Value::is_str));
        assert_eq!(parse_ping(&v).unwrap(), ping);

        let pong = security(None).accepting_pong(&ping, &helo);
        let MessageRead::Value(v, _) = read_message(&encode_pong(&pong)) else {
            panic!()
        };
        assert_eq!(parse_pong(&v).unwrap(), pong);

        let v = Value::Array(vec!["PING".into(), "h".into()]);
        assert!(
            parse_ping(&v)
                .unwrap_err()
                .contains("2 elements instead of 6")
        );
        let v = Value::Array(vec!["HELLO".into(), Value::Nil]);
        assert!(parse_helo(&v).unwrap_err().contains("expected HELO"));
        // Options missing entirely read as empty, as Fluentd's client does.
        let v = Value::Array(vec!["HELO".into(), Value::Nil]);
        assert_eq!(parse_helo(&v).unwrap().nonce, Vec::<u8>::new());
        let too_deep = [[0x91; 20].as_slice(), &[0xc0]].concat();
        assert_eq!(read_message(&too_deep), MessageRead::Invalid);
    }

    #[test]
    fn config_problems_name_the_key_and_the_fix() {
        let parse = |text: &str| -> Vec<String> {
            let c: SecurityConfig = toml::from_str(text).unwrap();
            let mut problems = Vec::new();
            c.validate("inputs[0]", &mut problems);
            problems
        };
        assert!(parse("shared_key = \"k\"").is_empty());
        assert!(parse("shared_key = \"\"")[0].contains("inputs[0].security.shared_key"));
        assert!(parse("shared_key = \"k\"\nuser_auth = true")[0].contains("users"));
        assert!(
            parse("shared_key = \"k\"\nusers = [{ username = \"a\", password = \"b\" }]")[0]
                .contains("user_auth = true")
        );
        assert!(!local_hostname().is_empty());
    }
}
