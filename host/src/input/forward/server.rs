//! TCP and unix-socket servers around the forward decoder: accept, read, decode, dispatch, ack.
//!
//! Ack policy (reference forward-protocol.md §5, §10): a request's `{"ack": chunk}` is written
//! after every event of the request is in the buffers of its outputs — never before, and never
//! later than that. Invalid entries inside an otherwise valid request are dropped (counted as
//! `invalid_event`) and the request is still acked, as Fluentd does: the sender would only
//! resend the same poison. A malformed request closes its connection without an ack.
//!
//! Consecutive requests that share a tag (Docker sends one Message-mode request per line) are
//! coalesced into one batch per read, so the pipeline works per batch; a request with a `chunk`
//! ends the batch, which is dispatched before the ack is written. Received events are counted
//! once per dispatched batch, not once per request.
//!
//! TCP connections are optionally TLS (`tls = { cert_file, key_file }`, see [`super::tls`]) and
//! optionally authenticated with the shared-key handshake (`security = { … }`, see
//! [`super::handshake`]) before any request is read. The unix socket has neither: it is
//! protected by its file mode, and no sender does either over it (reference §6). A client that
//! fails authentication gets a refusing PONG and is disconnected; the failure is counted every
//! time (`errors{reason="auth_failed"}`) and logged once per client hostname and reason.

use super::decode::{DecodeLimits, Decoder, Frame, ack_response};
use super::handshake::{HandshakeError, ServerSecurity};
use super::tls::TLS_ACCEPT_TIMEOUT;
use crate::config::{ForwardInputConfig, parse_octal_mode};
use crate::event::Batch;
use crate::ops::metrics::{Component, Metrics};
use crate::ops::shutdown::Shutdown;
use crate::pipeline::{DispatchError, Pipeline};
use bytes::{Bytes, BytesMut};
use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Default cap on open connections per input.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Most events coalesced into one batch from consecutive un-acked requests.
const MAX_COALESCED_EVENTS: usize = 4096;
/// Bytes reserved for each socket read.
const READ_CHUNK: usize = 128 * 1024;
/// Distinct connection failures (peer and reason) logged at warn level; later ones are debug.
const MAX_LOGGED_FAILURES: usize = 256;

/// Where a forward input listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A unix socket path.
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "tcp://{a}"),
            ListenAddr::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// A bound forward input, ready to [`run`](ForwardServer::run).
pub struct ForwardServer {
    component: Component,
    listeners: Vec<Listener>,
    limits: DecodeLimits,
    tag_prefix: Option<Bytes>,
    connections: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    security: Option<Arc<ServerSecurity>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Why an input could not start.
#[derive(Debug, thiserror::Error)]
#[error("input {input}: cannot listen on {addr}: {source}")]
pub struct BindError {
    input: String,
    addr: String,
    source: std::io::Error,
}

impl ForwardServer {
    /// Bind every listener of `config` (validated before).
    pub async fn bind(
        config: &ForwardInputConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, BindError> {
        let name = config.name.clone().unwrap_or_else(|| "forward".to_string());
        let bind_err = |addr: String, source| BindError {
            input: name.clone(),
            addr,
            source,
        };
        let tls = match &config.tls {
            Some(tls) => Some(tls.acceptor().map_err(|e| {
                bind_err(
                    config.listen.clone().unwrap_or_default(),
                    std::io::Error::other(e.to_string()),
                )
            })?),
            None => None,
        };
        let mut listeners = Vec::new();
        if let Some(listen) = &config.listen {
            let l = TcpListener::bind(listen)
                .await
                .map_err(|e| bind_err(listen.clone(), e))?;
            listeners.push(Listener::Tcp(l));
        }
        if let Some(path) = &config.unix_path {
            let l = bind_unix(path, config.unix_perm.as_deref())
                .map_err(|e| bind_err(path.display().to_string(), e))?;
            listeners.push(Listener::Unix(l, path.clone()));
        }
        let max_request = config
            .buffer_max_size
            .map(|s| s.0 as usize)
            .unwrap_or(6_144_000);
        let limits = DecodeLimits {
            max_request_bytes: max_request,
            max_decompressed_bytes: config
                .decompress_max_size
                .map(|s| s.0 as usize)
                .unwrap_or(max_request),
        };
        Ok(ForwardServer {
            component: Component::input(name),
            listeners,
            limits,
            tag_prefix: config.tag_prefix.clone().map(Bytes::from),
            connections: Arc::new(Semaphore::new(
                config.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
            )),
            metrics,
            security: config.security.as_ref().map(|s| Arc::new(s.settings())),
            tls,
        })
    }

    /// The addresses actually bound (a TCP port 0 resolved).
    pub fn local_addrs(&self) -> Vec<ListenAddr> {
        self.listeners
            .iter()
            .filter_map(|l| match l {
                Listener::Tcp(t) => t.local_addr().ok().map(ListenAddr::Tcp),
                Listener::Unix(_, p) => Some(ListenAddr::Unix(p.clone())),
            })
            .collect()
    }

    /// Accept and serve connections until `shutdown`. Then stop accepting, and let open
    /// connections finish what they send until they close or `drain` has passed.
    pub async fn run(self, pipeline: Arc<Pipeline>, mut shutdown: Shutdown, drain: Duration) {
        for addr in self.local_addrs() {
            let tcp = matches!(addr, ListenAddr::Tcp(_));
            let (tls, shared_key) = (self.tls.is_some(), self.security.is_some());
            if tcp && (tls || shared_key) {
                tracing::info!(input = %self.component.id, %addr, tls, shared_key, "listening");
            } else {
                tracing::info!(input = %self.component.id, %addr, "listening");
            }
        }
        let ctx = Arc::new(ConnContext {
            component: self.component.clone(),
            limits: self.limits.clone(),
            tag_prefix: self.tag_prefix.clone(),
            metrics: self.metrics.clone(),
            pipeline,
            close_now: CancellationToken::new(),
            security: self.security.clone(),
            tls: self.tls.clone(),
            logged_failures: Mutex::default(),
        });
        let tracker = TaskTracker::new();
        let accepting = TaskTracker::new();
        for listener in self.listeners {
            let (ctx, sem) = (ctx.clone(), self.connections.clone());
            accepting.spawn(accept_loop(
                listener,
                ctx,
                sem,
                shutdown.clone(),
                tracker.clone(),
            ));
        }
        accepting.close();
        shutdown.wait().await;
        accepting.wait().await;
        tracker.close();
        if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
            tracing::warn!(input = %self.component.id, open = tracker.len(), "closing connections still open after the drain time");
            ctx.close_now.cancel();
            tracker.wait().await;
        }
    }
}

/// Check a forward input's `security` and `tls` (part of `Config::validate`).
pub fn validate(key: &str, config: &ForwardInputConfig, problems: &mut Vec<String>) {
    if let Some(security) = &config.security {
        security.validate(key, problems);
        if config.listen.is_none() {
            problems.push(format!("{key}.security applies to the TCP listener only; add `listen = \"0.0.0.0:24224\"` or remove `security`"));
        }
    }
    if config.tls.is_some() && config.listen.is_none() {
        problems.push(format!(
            "{key}.tls applies to the TCP listener only; add `listen = \"0.0.0.0:24224\"` or remove `tls`"
        ));
    }
}

fn bind_unix(path: &PathBuf, perm: Option<&str>) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            // A stale socket from an earlier run: replace it.
            std::fs::remove_file(path)?;
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists and is not a socket",
            ));
        }
    }
    let listener = UnixListener::bind(path)?;
    let mode = perm.and_then(parse_octal_mode).unwrap_or(0o666);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

async fn accept_loop(
    listener: Listener,
    ctx: Arc<ConnContext>,
    sem: Arc<Semaphore>,
    mut shutdown: Shutdown,
    conns: TaskTracker,
) {
    loop {
        let permit = tokio::select! {
            p = sem.clone().acquire_owned() => p.expect("never closed"),
            _ = shutdown.wait() => break,
        };
        let accepted = tokio::select! {
            a = accept(&listener) => a,
            _ = shutdown.wait() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let ctx = ctx.clone();
                let tcp = matches!(listener, Listener::Tcp(_));
                conns.spawn(async move {
                    ctx.serve(stream, peer, tcp).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(input = %ctx.component.id, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    if let Listener::Unix(_, path) = &listener {
        let _ = std::fs::remove_file(path);
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn accept(listener: &Listener) -> std::io::Result<(Box<dyn Stream>, String)> {
    match listener {
        Listener::Tcp(l) => {
            let (s, peer) = l.accept().await?;
            let _ = s.set_nodelay(true);
            Ok((Box::new(s), peer.to_string()))
        }
        Listener::Unix(l, path) => {
            let (s, _) = l.accept().await?;
            Ok((Box::new(s), format!("unix:{}", path.display())))
        }
    }
}

struct ConnContext {
    component: Component,
    limits: DecodeLimits,
    tag_prefix: Option<Bytes>,
    metrics: Arc<Metrics>,
    pipeline: Arc<Pipeline>,
    /// Cancelled when the drain time after shutdown is over.
    close_now: CancellationToken,
    security: Option<Arc<ServerSecurity>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// Failures already logged at warn level: (who, reason).
    logged_failures: Mutex<HashSet<(String, String)>>,
}

impl ConnContext {
    async fn serve(&self, stream: Box<dyn Stream>, peer: String, tcp: bool) {
        let open = self
            .metrics
            .open_connections
            .get_or_create(&self.component.labels())
            .clone();
        open.inc();
        match self.open_and_serve(stream, &peer, tcp).await {
            Ok(()) => {}
            Err(ConnError::Tls(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                // Closed before the TLS handshake: a heartbeat or a port probe.
            }
            Err(ConnError::Tls(e)) => {
                self.metrics.error(&self.component, "tls_handshake_failed");
                let host = peer_host(&peer);
                if self.first_failure(host, "tls") {
                    tracing::warn!(input = %self.component.id, %peer, error = %e, "TLS handshake failed: the client does not speak TLS, or does not trust this certificate (its CA file or the name it expects); further failures from this host are logged at debug");
                } else {
                    tracing::debug!(input = %self.component.id, %peer, error = %e, "TLS handshake failed");
                }
            }
            Err(ConnError::Handshake(HandshakeError::Closed(_))) => {
                // Closed right after HELO: Fluentd's transport heartbeat does this (reference §7).
            }
            Err(ConnError::Handshake(HandshakeError::Io(e))) => {
                tracing::debug!(input = %self.component.id, %peer, error = %e, "connection error during the handshake");
                self.metrics.error(&self.component, "connection_error");
            }
            Err(ConnError::Handshake(HandshakeError::Refused {
                reason,
                client_hostname,
            })) => {
                self.metrics.error(&self.component, "auth_failed");
                if self.first_failure(&client_hostname, &reason) {
                    tracing::warn!(input = %self.component.id, %peer, %client_hostname, %reason, "client failed the shared-key handshake: refused and disconnected; it needs the same shared_key (and user) as this input's `security` (further failures like this are logged at debug)");
                } else {
                    tracing::debug!(input = %self.component.id, %peer, %client_hostname, %reason, "client failed the shared-key handshake");
                }
            }
            Err(ConnError::Handshake(e)) => {
                self.metrics.error(&self.component, "handshake_failed");
                let host = peer_host(&peer);
                if self.first_failure(host, "handshake") {
                    tracing::warn!(input = %self.component.id, %peer, error = %e, "handshake failed; this input requires the shared-key handshake (`security`): configure the client's shared_key (further failures from this host are logged at debug)");
                } else {
                    tracing::debug!(input = %self.component.id, %peer, error = %e, "handshake failed");
                }
            }
            Err(ConnError::Decode(e)) => {
                tracing::warn!(input = %self.component.id, %peer, reason = %e, "closing connection: bad input");
                self.metrics.error(&self.component, "malformed_request");
            }
            Err(ConnError::Dispatch(e)) => {
                tracing::warn!(input = %self.component.id, %peer, error = %e, "closing connection without acknowledging: a buffer did not take its events (the sender retries them)");
                self.metrics.error(&self.component, "buffer_refused");
            }
            Err(ConnError::Io(e)) => {
                tracing::debug!(input = %self.component.id, %peer, error = %e, "connection error");
                self.metrics.error(&self.component, "connection_error");
            }
        }
        open.dec();
    }

    /// Whether this is the first failure of `who` for `reason` (bounded memory).
    fn first_failure(&self, who: &str, reason: &str) -> bool {
        let mut logged = self
            .logged_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let key = (who.to_string(), reason.to_string());
        if logged.contains(&key) || logged.len() >= MAX_LOGGED_FAILURES {
            return false;
        }
        logged.insert(key)
    }

    /// TLS and the handshake on TCP connections when configured, then requests.
    async fn open_and_serve(
        &self,
        mut stream: Box<dyn Stream>,
        peer: &str,
        tcp: bool,
    ) -> Result<(), ConnError> {
        if tcp && let Some(acceptor) = &self.tls {
            let accepting = acceptor.accept(stream);
            stream = match tokio::time::timeout(TLS_ACCEPT_TIMEOUT, accepting).await {
                Ok(Ok(tls)) => Box::new(tls),
                Ok(Err(e)) => return Err(ConnError::Tls(e)),
                Err(_) => {
                    return Err(ConnError::Tls(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no TLS handshake within {TLS_ACCEPT_TIMEOUT:?}"),
                    )));
                }
            };
        }
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        if tcp && let Some(security) = &self.security {
            tokio::select! {
                r = security.accept(&mut stream, &mut buf) => r.map_err(ConnError::Handshake)?,
                _ = self.close_now.cancelled() => return Ok(()),
            }
            tracing::debug!(input = %self.component.id, %peer, "handshake accepted");
        }
        self.serve_inner(&mut stream, buf).await
    }

    async fn serve_inner(
        &self,
        stream: &mut Box<dyn Stream>,
        mut buf: BytesMut,
    ) -> Result<(), ConnError> {
        let mut decoder = Decoder::new(self.limits.clone());
        let mut pending: Option<Batch> = None;
        let mut uncounted = Uncounted::default();
        loop {
            // Decode every complete frame in the buffer.
            loop {
                let frame = match decoder.decode(&mut buf) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        // Events decoded before the bad frame are delivered; the bad one is not acked.
                        self.flush(&mut pending, &mut uncounted).await?;
                        return Err(ConnError::Decode(e));
                    }
                };
                let Frame::Request(req) = frame else { continue };
                if req.invalid_events > 0 {
                    self.metrics.events_dropped(
                        &self.component,
                        "invalid_event",
                        req.invalid_events as u64,
                    );
                }
                if let Some(signal) = req.skipped_signal {
                    tracing::debug!(input = %self.component.id, signal, "skipped a non-log fluent_signal payload");
                }
                let mut batch = req.batch;
                if let Some(prefix) = &self.tag_prefix {
                    let mut tag = BytesMut::with_capacity(prefix.len() + batch.tag.len());
                    tag.extend_from_slice(prefix);
                    tag.extend_from_slice(&batch.tag);
                    batch.tag = tag.freeze();
                }
                uncounted.events += batch.len() as u64;
                uncounted.bytes += batch
                    .events
                    .iter()
                    .map(|e| e.body.len() as u64)
                    .sum::<u64>();
                match &mut pending {
                    Some(p) if p.tag == batch.tag && p.len() < MAX_COALESCED_EVENTS => {
                        p.events.extend(batch.events);
                    }
                    _ => {
                        self.flush(&mut pending, &mut uncounted).await?;
                        pending = Some(batch);
                    }
                }
                if let Some(chunk) = req.chunk {
                    self.flush(&mut pending, &mut uncounted).await?;
                    stream.write_all(&ack_response(&chunk)).await?;
                }
            }
            self.flush(&mut pending, &mut uncounted).await?;
            if buf.capacity() - buf.len() < READ_CHUNK / 4 {
                buf.reserve(READ_CHUNK);
            }
            let read = tokio::select! {
                r = stream.read_buf(&mut buf) => r?,
                _ = self.close_now.cancelled() => return Ok(()),
            };
            if read == 0 {
                if !buf.is_empty() {
                    return Err(ConnError::Decode(super::DecodeError::Malformed(format!(
                        "connection closed inside a request ({} bytes unread)",
                        buf.len()
                    ))));
                }
                return Ok(());
            }
        }
    }

    /// Count what was decoded as received, then dispatch the pending batch. An error means a
    /// buffer refused it: the connection closes without acking what it sent since the last ack.
    async fn flush(
        &self,
        pending: &mut Option<Batch>,
        uncounted: &mut Uncounted,
    ) -> Result<(), ConnError> {
        let Uncounted { events, bytes } = std::mem::take(uncounted);
        if events > 0 || bytes > 0 {
            self.metrics.received(&self.component, events, bytes);
        }
        if let Some(batch) = pending.take()
            && !batch.is_empty()
        {
            self.pipeline
                .dispatch(batch)
                .await
                .map_err(ConnError::Dispatch)?;
        }
        Ok(())
    }
}

/// Events and bytes decoded but not yet counted as received.
#[derive(Default)]
struct Uncounted {
    events: u64,
    bytes: u64,
}

enum ConnError {
    Decode(super::DecodeError),
    Dispatch(DispatchError),
    Io(std::io::Error),
    Tls(std::io::Error),
    Handshake(HandshakeError),
}

/// The host part of a `host:port` peer (IPv6 brackets kept).
fn peer_host(peer: &str) -> &str {
    peer.rsplit_once(':').map_or(peer, |(host, _)| host)
}

impl From<std::io::Error> for ConnError {
    fn from(e: std::io::Error) -> Self {
        ConnError::Io(e)
    }
}
