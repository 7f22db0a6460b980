//! `forward`: send events to another forward-protocol receiver (an aggregator tier: Fluentd,
//! Fluent Bit, or another wasm-router), like Fluent Bit's `out_forward` (reference
//! forward-protocol.md §8.2).
//!
//! A batch goes out as Forward-mode requests (PackedForward with `compress = "text"`,
//! CompressedPackedForward with `compress = "gzip"`) of at most `max_request_bytes` of records
//! each, over one kept-open connection: TCP, optionally TLS ([`tls`]), then optionally the
//! shared-key handshake ([`handshake`]), or a unix socket.
//! With `require_ack_response` (the default) each request carries a `chunk` id and the output
//! waits for the receiver's `{"ack": chunk}` before the next one (§5): a connection error, an
//! ack timeout or a wrong ack is a retryable failure. Each acked request marks its events
//! delivered in the runner's [`DeliveryProgress`] and the retry sends only the events not acked
//! — so a receiver sees a request twice only if its ack was lost, never the whole batch again
//! (nor, at a shutdown that cuts the delivery, after the next start).
//!
//! A failed handshake (wrong key, a receiver that does not know ours, no HELO) is retryable
//! like any connection failure, through the delivery layer's backoff; it is logged at warn
//! level when the reason first appears, and again when it changes or clears.

pub mod config;
pub mod handshake;
pub mod request;
pub mod tls;

use super::{DeliveryError, DeliveryProgress, Output};
use crate::event::Batch;
use crate::input::forward::handshake::HandshakeError;
use bytes::BytesMut;
use config::{Endpoint, ForwardSettings};
use request::{AckRead, Encoding};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use config::ForwardOutputConfig;

/// Largest reply accepted while waiting for an ack.
const MAX_REPLY_BYTES: usize = 64 << 10;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The `forward` output.
pub struct ForwardOutput {
    settings: ForwardSettings,
    conn: Option<Box<dyn Stream>>,
    replies: BytesMut,
    /// The request being sent, and gzip's input: kept so that sending allocates nothing.
    request: Vec<u8>,
    scratch: Vec<u8>,
    /// Whether the receiver keeps connections open (its HELO can say no).
    keepalive: bool,
    /// The connection failure last logged at warn level, to log each reason once.
    failing: Option<String>,
}

impl ForwardOutput {
    /// An output for validated `settings`; it connects on the first delivery.
    pub fn new(settings: ForwardSettings) -> Self {
        ForwardOutput {
            settings,
            conn: None,
            replies: BytesMut::new(),
            request: Vec::new(),
            scratch: Vec::new(),
            keepalive: true,
            failing: None,
        }
    }

    async fn connect(&mut self) -> Result<(), DeliveryError> {
        if self.conn.is_some() {
            return Ok(());
        }
        match self.open().await {
            Ok(conn) => {
                if let Some(reason) = self.failing.take() {
                    tracing::info!(output = %self.settings.id, endpoint = %self.settings.endpoint, previous_error = %reason, "connected again");
                }
                self.conn = Some(conn);
                Ok(())
            }
            Err(reason) => {
                if self.failing.as_deref() != Some(reason.as_str()) {
                    tracing::warn!(output = %self.settings.id, error = %reason, "cannot open a connection; retrying with backoff (logged again only if the error changes)");
                    self.failing = Some(reason.clone());
                }
                Err(retry(reason))
            }
        }
    }

    /// Connect, TLS, handshake: a ready connection, or why not.
    async fn open(&mut self) -> Result<Box<dyn Stream>, String> {
        let endpoint = &self.settings.endpoint;
        let timeout = self.settings.connect_timeout;
        let connecting = async {
            Ok::<Box<dyn Stream>, std::io::Error>(match endpoint {
                Endpoint::Tcp(addr) => {
                    let s = tokio::net::TcpStream::connect(addr).await?;
                    s.set_nodelay(true)?;
                    Box::new(s)
                }
                Endpoint::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            })
        };
        let mut conn = match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(format!("cannot connect to {endpoint}: {e}")),
            Err(_) => {
                return Err(format!(
                    "connecting to {endpoint} timed out after {timeout:?}"
                ));
            }
        };
        if let Some(tls) = &self.settings.tls {
            let handshake = tls.connector().connect(tls.server_name.clone(), conn);
            conn = match tokio::time::timeout(timeout, handshake).await {
                Ok(Ok(c)) => Box::new(c),
                Ok(Err(e)) => {
                    return Err(format!(
                        "TLS with {endpoint} failed: {e}; check that the receiver serves TLS, and tls_ca_file / tls_server_name (or tls_verify = false)"
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "TLS with {endpoint} did not complete within {timeout:?}; is the receiver serving TLS?"
                    ));
                }
            };
        }
        self.replies.clear();
        self.keepalive = true;
        if let Some(security) = &self.settings.security {
            match security
                .handshake(&mut conn, &mut self.replies, timeout)
                .await
            {
                Ok(established) => self.keepalive = established.keepalive,
                Err(HandshakeError::Timeout { expected, .. }) => {
                    return Err(format!(
                        "shared-key handshake with {endpoint} failed: no {expected} within {timeout:?}; the receiver does not run the handshake: set the same shared_key on it, or remove shared_key here"
                    ));
                }
                Err(e) => {
                    return Err(format!("shared-key handshake with {endpoint} failed: {e}"));
                }
            }
        }
        Ok(conn)
    }

    /// Send `self.request` and, with acks on, wait for the ack of `chunk`.
    async fn send(&mut self, chunk: Option<&str>) -> Result<(), DeliveryError> {
        let endpoint = self.settings.endpoint.to_string();
        self.connect().await?;
        let (conn, request) = (self.conn.as_mut().expect("connected"), &self.request);
        if let Err(e) = async {
            conn.write_all(request).await?;
            conn.flush().await
        }
        .await
        {
            self.conn = None;
            return Err(retry(format!("sending to {endpoint} failed: {e}")));
        }
        let Some(chunk) = chunk else {
            if !self.keepalive {
                self.conn = None;
            }
            return Ok(());
        };
        let timeout = self.settings.ack_timeout;
        match tokio::time::timeout(timeout, self.read_ack(chunk)).await {
            Ok(Ok(())) => {
                if !self.keepalive {
                    self.conn = None;
                }
                Ok(())
            }
            Ok(Err(reason)) => {
                self.conn = None;
                Err(retry(format!("{endpoint}: {reason}")))
            }
            Err(_) => {
                self.conn = None;
                Err(retry(format!("{endpoint} did not ack within {timeout:?}")))
            }
        }
    }

    async fn read_ack(&mut self, chunk: &str) -> Result<(), String> {
        loop {
            match request::read_ack(&self.replies) {
                AckRead::Value { len, ack } => {
                    let _ = self.replies.split_to(len);
                    return match ack {
                        Some(a) if a == chunk => Ok(()),
                        Some(a) => Err(format!("acked chunk {a:?} instead of {chunk:?}")),
                        None => Err("replied with something other than an ack".into()),
                    };
                }
                AckRead::Invalid => return Err("replied with bytes that are not msgpack".into()),
                AckRead::Helo => {
                    return Err("requires the shared-key handshake (it sent HELO): set `shared_key` (and `self_hostname`) to the receiver's".into());
                }
                AckRead::Incomplete if self.replies.len() > MAX_REPLY_BYTES => {
                    return Err("sent an oversized reply".into());
                }
                AckRead::Incomplete => {}
            }
            let conn = self.conn.as_mut().ok_or("not connected")?;
            self.replies.reserve(512);
            match conn.read_buf(&mut self.replies).await {
                Ok(0) => return Err("closed the connection before acking".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("reading the ack failed: {e}")),
            }
        }
    }
}

fn retry(reason: String) -> DeliveryError {
    DeliveryError::Retryable {
        reason,
        after: None,
    }
}

impl Output for ForwardOutput {
    async fn deliver(
        &mut self,
        batch: &Batch,
        progress: &mut DeliveryProgress,
    ) -> Result<(), DeliveryError> {
        // What is left of the batch: all of it on a first attempt (no copy), else the events
        // not acked yet, with their indexes in the batch.
        let left: Vec<usize> = progress.pending().collect();
        let copied;
        let events = if left.len() == batch.len() {
            &batch.events[..]
        } else {
            copied = left
                .iter()
                .map(|&i| batch.events[i].clone())
                .collect::<Vec<_>>();
            &copied[..]
        };
        let ranges = request::split(events, self.settings.max_request_bytes);
        let how = Encoding {
            time_as_integer: self.settings.time_as_integer,
            mode: self.settings.mode,
        };
        let tag = self
            .settings
            .tag
            .as_deref()
            .map(str::as_bytes)
            .unwrap_or(&batch.tag)
            .to_vec();
        for range in ranges {
            let chunk = self.settings.require_ack.then(request::new_chunk_id);
            request::encode_request_into(
                &mut self.request,
                &mut self.scratch,
                &tag,
                &events[range.clone()],
                chunk.as_deref(),
                how,
            );
            let sent = self.send(chunk.as_deref()).await;
            if self.request.capacity() > 4 * self.settings.max_request_bytes {
                // One oversized event: do not keep its memory.
                (self.request, self.scratch) = (Vec::new(), Vec::new());
            }
            sent?;
            progress.delivered(range.map(|i| left[i]));
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), DeliveryError> {
        if let Some(mut conn) = self.conn.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.shutdown()).await;
        }
        Ok(())
    }
}

impl crate::output::OutputComponent for ForwardOutputConfig {
    fn validate(&self, key: &str, _id: &str, problems: &mut Vec<String>) {
        ForwardOutputConfig::validate(self, key, problems);
    }

    fn check(&self, cx: &crate::output::OutputContext<'_>) -> (Vec<String>, Vec<String>) {
        let problems = self
            .settings()
            .err()
            .map(|message| format!("{} (forward): {message}", cx.key));
        (problems.into_iter().collect(), Vec::new())
    }

    fn build<'a>(
        &'a self,
        cx: crate::output::OutputContext<'a>,
        task: crate::output::OutputTask,
    ) -> crate::output::component::BuildFuture<'a> {
        let output = self.settings().map(|settings| {
            ForwardOutput::new(ForwardSettings {
                id: cx.component.id.clone(),
                ..settings
            })
        });
        task.run_built(std::future::ready(output))
    }
}

#[cfg(test)]
mod tests;
