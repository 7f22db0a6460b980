//! The client's half of the shared-key handshake (reference forward-protocol.md §6), run on
//! every new connection before the first request: read HELO, send PING, check PONG — the
//! server's result, that it is not ourselves, and that its digest proves it knows the key.
//! The messages and digests are in `input::forward::handshake`.

use crate::input::forward::handshake::{
    HandshakeError, NONCE_LEN, Ping, encode_ping, parse_helo, parse_pong, password_digest,
    random_bytes, read_handshake_message, shared_key_digest,
};
use bytes::BytesMut;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// The output's `shared_key`, `self_hostname`, `username` and `password`.
#[derive(Clone)]
pub struct ClientSecurity {
    /// The key the receiver also has.
    pub shared_key: String,
    /// Our name in PING; the receiver's must differ.
    pub self_hostname: String,
    /// Sent when the receiver asks for user auth.
    pub username: String,
    /// Its password (only a salted digest is sent).
    pub password: String,
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecurity")
            .field("self_hostname", &self.self_hostname)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// What an accepted handshake says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Established {
    /// `false`: the receiver closes after one request, so reconnect for each.
    pub keepalive: bool,
}

impl ClientSecurity {
    /// Run the handshake on a fresh connection; each message must come within `timeout`.
    /// Whatever the server sent after its PONG stays in `buf`.
    pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        buf: &mut BytesMut,
        timeout: Duration,
    ) -> Result<Established, HandshakeError> {
        let helo = read_within(stream, buf, "HELO", timeout).await?;
        let helo = parse_helo(&helo).map_err(HandshakeError::Malformed)?;
        let salt = hex_salt()?;
        let (username, password) = if helo.auth.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            if self.username.is_empty() {
                return Err(HandshakeError::Refused {
                    reason: "the receiver requires a username and password; set `username` and `password`".into(),
                    client_hostname: self.self_hostname.clone(),
                });
            }
            (
                self.username.as_bytes().to_vec(),
                password_digest(
                    &helo.auth,
                    self.username.as_bytes(),
                    self.password.as_bytes(),
                )
                .into_bytes(),
            )
        };
        let ping = Ping {
            digest: shared_key_digest(
                &salt,
                self.self_hostname.as_bytes(),
                &helo.nonce,
                self.shared_key.as_bytes(),
            )
            .into_bytes(),
            hostname: self.self_hostname.as_bytes().to_vec(),
            salt: salt.clone(),
            username,
            password_digest: password,
        };
        stream.write_all(&encode_ping(&ping)).await?;
        stream.flush().await?;
        let pong = read_within(stream, buf, "PONG", timeout).await?;
        let pong = parse_pong(&pong).map_err(HandshakeError::Malformed)?;
        let refused = |reason: String| HandshakeError::Refused {
            reason,
            client_hostname: self.self_hostname.clone(),
        };
        if !pong.ok {
            return Err(refused(format!(
                "the receiver refused us: {}; fix: use the receiver's shared_key (and username/password)",
                pong.reason
            )));
        }
        if pong.hostname == self.self_hostname.as_bytes() {
            return Err(refused(format!(
                "the receiver calls itself {:?}, our own self_hostname; set a distinct self_hostname on either side",
                self.self_hostname
            )));
        }
        let expected = shared_key_digest(
            &salt,
            &pong.hostname,
            &helo.nonce,
            self.shared_key.as_bytes(),
        );
        if !crate::input::forward::handshake::constant_time_eq(expected.as_bytes(), &pong.digest) {
            return Err(refused(format!(
                "the receiver {:?} accepted us, but its digest does not match our shared_key: it does not know the key (a different key, or not the receiver you configured)",
                String::from_utf8_lossy(&pong.hostname)
            )));
        }
        Ok(Established {
            keepalive: helo.keepalive,
        })
    }
}

/// 16 random bytes as 32 lowercase hex characters, as Fluentd's and the npm client's salt.
fn hex_salt() -> std::io::Result<Vec<u8>> {
    let raw = random_bytes::<NONCE_LEN>()?;
    Ok(raw
        .iter()
        .flat_map(|b| {
            let digit = |n: u8| b"0123456789abcdef"[usize::from(n)];
            [digit(b >> 4), digit(b & 0xf)]
        })
        .collect())
}

async fn read_within<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    expected: &'static str,
    timeout: Duration,
) -> Result<rmpv::Value, HandshakeError> {
    match tokio::time::timeout(timeout, read_handshake_message(stream, buf, expected)).await {
        Ok(r) => r,
        Err(_) => Err(HandshakeError::Timeout { expected, timeout }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::forward::handshake::{SecurityConfig, ServerSecurity};

    fn server(key: &str, hostname: &str, users: &str) -> ServerSecurity {
        let text = format!("shared_key = {key:?}\nself_hostname = {hostname:?}\n{users}");
        toml::from_str::<SecurityConfig>(&text).unwrap().settings()
    }

    fn client(key: &str, hostname: &str) -> ClientSecurity {
        ClientSecurity {
            shared_key: key.into(),
            self_hostname: hostname.into(),
            username: String::new(),
            password: String::new(),
        }
    }

    /// Both halves over an in-memory pipe: (client's result, server's result).
    async fn run(
        server: ServerSecurity,
        client: ClientSecurity,
    ) -> (
        Result<Established, HandshakeError>,
        Result<(), HandshakeError>,
    ) {
        let (mut a, mut b) = tokio::io::duplex(4096);
        let served = tokio::spawn(async move {
            let mut buf = BytesMut::new();
            server.accept(&mut b, &mut buf).await
        });
        let mut buf = BytesMut::new();
        let got = client
            .handshake(&mut a, &mut buf, Duration::from_secs(5))
            .await;
        drop(a);
        (got, served.await.unwrap())
    }

    #[tokio::test]
    async fn both_halves_agree_with_the_same_key() {
        let (c, s) = run(server("k3y-abc", "agg", ""), client("k3y-abc", "app")).await;
        assert_eq!(c.unwrap(), Established { keepalive: true });
        s.unwrap();
    }

    #[tokio::test]
    async fn a_wrong_key_is_refused_on_both_sides_with_the_reason() {
        let (c, s) = run(server("k3y-abc", "agg", ""), client("other", "app")).await;
        let c = c.unwrap_err().to_string();
        assert!(
            c.contains("refused us: shared_key mismatch") && c.contains("fix"),
            "{c}"
        );
        assert!(
            matches!(s, Err(HandshakeError::Refused { ref reason, ref client_hostname })
            if reason == "shared_key mismatch" && client_hostname == "app")
        );
    }

    #[tokio::test]
    async fn the_same_hostname_on_both_sides_is_refused_by_the_client() {
        let (c, _) = run(server("k3y-abc", "same", ""), client("k3y-abc", "same")).await;
        assert!(
            c.unwrap_err()
                .to_string()
                .contains("distinct self_hostname")
        );
    }

    #[tokio::test]
    async fn users_are_checked_when_the_server_asks() {
        let users = "user_auth = true\nusers = [{ username = \"alice\", password = \"pw-1\" }]";
        let mut alice = client("k3y-abc", "app");
        alice.username = "alice".into();
        alice.password = "pw-1".into();
        let (c, s) = run(server("k3y-abc", "agg", users), alice.clone()).await;
        c.unwrap();
        s.unwrap();
        alice.password = "pw-2".into();
        let (c, _) = run(server("k3y-abc", "agg", users), alice).await;
        assert!(
            c.unwrap_err()
                .to_string()
                .contains("username/password mismatch")
        );
        let (c, _) = run(server("k3y-abc", "agg", users), client("k3y-abc", "app")).await;
        assert!(c.unwrap_err().to_string().contains("set `username`"));
    }

    /// A server that answers PING with a PONG that says yes but cannot know the key.
    #[tokio::test]
    async fn a_server_digest_that_does_not_match_fails() {
        use crate::input::forward::handshake::{Helo, Pong, encode_helo, encode_pong};
        let (mut a, mut b) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let helo = Helo {
                nonce: vec![7; 16],
                auth: Vec::new(),
                keepalive: false,
            };
            b.write_all(&encode_helo(&helo)).await.unwrap();
            let mut buf = BytesMut::new();
            read_handshake_message(&mut b, &mut buf, "PING")
                .await
                .unwrap();
            let pong = Pong {
                ok: true,
                reason: String::new(),
                hostname: b"impostor".to_vec(),
                digest: vec![b'0'; 128],
            };
            b.write_all(&encode_pong(&pong)).await.unwrap();
            let _ = tokio::io::AsyncReadExt::read(&mut b, &mut [0u8; 1]).await;
        });
        let err = client("k3y-abc", "app")
            .handshake(&mut a, &mut BytesMut::new(), Duration::from_secs(5))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("digest does not match"), "{err}");
    }

    #[tokio::test]
    async fn a_receiver_without_the_handshake_times_out_waiting_for_helo() {
        let (mut a, _b) = tokio::io::duplex(64);
        let err = client("k3y-abc", "app")
            .handshake(&mut a, &mut BytesMut::new(), Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            HandshakeError::Timeout {
                expected: "HELO",
                ..
            }
        ));
    }
}
