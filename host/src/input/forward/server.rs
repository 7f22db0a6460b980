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
//!
//! Hostile and careless clients (issue 13): what a connection holds — its read buffer with a
//! partial request, the decoded batch, the batch being pushed — is charged to the input's share
//! of the memory budget ([`InputBudget`]), beyond a small free allowance per connection
//! ([`FREE_PER_CONNECTION`], enough for the few-hundred-byte requests log drivers send). A
//! request is charged before it is decoded, at the most its decoded events can take
//! ([`Decoder::next_held_bound`]), and the decoder refuses to take more. Without room the
//! connection stops reading (TCP backpressure); a connection that waited a second has the
//! connection with the oldest incomplete request closed (`errors{reason="memory_evicted"}`; see
//! [`crate::input::connections`]). A request that could never fit is refused and its connection
//! closed (`errors{reason="request_too_large"}`).
//! TCP and unix have separate connection caps; at a cap the longest-idle connection of that kind
//! is closed for the newcomer (`errors{reason="idle_evicted"}`). TCP keepalive reaps dead peers;
//! `idle_timeout` (off by default) closes quiet connections (`errors{reason="idle_timeout"}`).
//! After shutdown's drain time every wait of a connection ends: reads, ack writes, the
//! handshake, memory waits and pushes.

use super::config::{ForwardInputConfig, parse_octal_mode};
use super::decode::{DecodeLimits, Decoder, Frame, Mode, SizeLimit, ack_response};
use super::handshake::{HandshakeError, ServerSecurity};
use super::tls::TLS_ACCEPT_TIMEOUT;
use crate::buffer::budget::{InputBudget, InputCharge, OverBudget};
use crate::event::Batch;
use crate::input::BindError;
use crate::input::connections::{ConnState, Connections, FREE_PER_CONNECTION, Kind};
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

/// Default cap on open TCP connections per input.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default cap on open unix-socket connections per input.
pub const DEFAULT_MAX_UNIX_CONNECTIONS: usize = 256;
/// TCP keepalive: first probe after this much silence, then every interval, up to the retries:
/// a vanished peer is reaped after about 2 minutes.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 6;
/// Most events coalesced into one batch from consecutive un-acked requests.
const MAX_COALESCED_EVENTS: usize = 4096;
/// Room a read buffer grows by when a request does not fit in it.
const READ_CHUNK: usize = 64 * 1024;
/// Least free room in the read buffer for a read.
const MIN_READ: usize = 1024;
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
    tcp_slots: Arc<Semaphore>,
    unix_slots: Arc<Semaphore>,
    idle_timeout: Option<Duration>,
    memory: InputBudget,
    metrics: Arc<Metrics>,
    security: Option<Arc<ServerSecurity>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl ForwardServer {
    /// Bind every listener of `config` (validated before); connections hold memory from `memory`.
    pub async fn bind(
        config: &ForwardInputConfig,
        metrics: Arc<Metrics>,
        memory: &InputBudget,
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
            tcp_slots: Arc::new(Semaphore::new(
                config.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
            )),
            unix_slots: Arc::new(Semaphore::new(
                config
                    .max_unix_connections
                    .unwrap_or(DEFAULT_MAX_UNIX_CONNECTIONS),
            )),
            idle_timeout: config.idle_timeout.map(|d| d.0),
            memory: memory.clone(),
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
            connections: Arc::default(),
            memory: self.memory.clone(),
            idle_timeout: self.idle_timeout,
        });
        let tracker = TaskTracker::new();
        let accepting = TaskTracker::new();
        for listener in self.listeners {
            let slots = match listener {
                Listener::Tcp(_) => self.tcp_slots.clone(),
                Listener::Unix(..) => self.unix_slots.clone(),
            };
            let (ctx, sem) = (ctx.clone(), slots);
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
    let kind = match listener {
        Listener::Tcp(_) => Kind::Tcp,
        Listener::Unix(..) => Kind::Unix,
    };
    loop {
        let accepted = tokio::select! {
            a = accept(&listener) => a,
            _ = shutdown.wait() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                // At the cap, the longest-idle connection makes room; only when every one is
                // busy does the newcomer wait for one to finish.
                let admitted =
                    ctx.connections
                        .admit(kind, &sem, &ctx.metrics, &ctx.component, &mut shutdown);
                let Some((permit, registration)) = admitted.await else {
                    break;
                };
                let ctx = ctx.clone();
                conns.spawn(async move {
                    ctx.serve(stream, peer, kind == Kind::Tcp, &registration.state)
                        .await;
                    drop(registration);
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
            let keepalive = socket2::TcpKeepalive::new()
                .with_time(KEEPALIVE_IDLE)
                .with_interval(KEEPALIVE_INTERVAL)
                .with_retries(KEEPALIVE_RETRIES);
            if let Err(e) = socket2::SockRef::from(&s).set_tcp_keepalive(&keepalive) {
                tracing::debug!(%peer, error = %e, "cannot set TCP keepalive");
            }
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
    connections: Arc<Connections>,
    memory: InputBudget,
    idle_timeout: Option<Duration>,
}

impl ConnContext {
    async fn serve(&self, stream: Box<dyn Stream>, peer: String, tcp: bool, conn: &ConnState) {
        let open = self
            .metrics
            .open_connections
            .get_or_create(&self.component.labels())
            .clone();
        open.inc();
        match self.open_and_serve(stream, &peer, tcp, conn).await {
            Ok(()) => {}
            Err(ConnError::Closed(reason)) => {
                tracing::debug!(input = %self.component.id, %peer, reason, "connection closed");
                if !reason.is_empty() {
                    self.metrics.error(&self.component, reason);
                }
            }
            Err(ConnError::Decode(e @ super::DecodeError::TooLarge { .. })) => {
                tracing::warn!(input = %self.component.id, %peer, reason = %e, "closing connection: request too large, not acknowledged");
                self.metrics.error(&self.component, "request_too_large");
            }
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
        conn: &ConnState,
    ) -> Result<(), ConnError> {
        if tcp && let Some(acceptor) = &self.tls {
            let accepting = tokio::time::timeout(TLS_ACCEPT_TIMEOUT, acceptor.accept(stream));
            stream = tokio::select! {
                accepted = accepting => match accepted {
                    Ok(Ok(tls)) => Box::new(tls),
                    Ok(Err(e)) => return Err(ConnError::Tls(e)),
                    Err(_) => {
                        return Err(ConnError::Tls(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("no TLS handshake within {TLS_ACCEPT_TIMEOUT:?}"),
                        )));
                    }
                },
                _ = self.close_now.cancelled() => return Ok(()),
                _ = conn.close.cancelled() => return Err(ConnError::Closed("")),
            };
        }
        let mut buf = BytesMut::with_capacity(FREE_PER_CONNECTION);
        if tcp && let Some(security) = &self.security {
            tokio::select! {
                r = security.accept(&mut stream, &mut buf) => r.map_err(ConnError::Handshake)?,
                _ = self.close_now.cancelled() => return Ok(()),
                _ = conn.close.cancelled() => return Err(ConnError::Closed("")),
            }
            tracing::debug!(input = %self.component.id, %peer, "handshake accepted");
        }
        let mut pending = Pending {
            batch: None,
            held: 0,
            uncounted: Uncounted::default(),
            memory: self.memory.charge(),
        };
        let result = self.serve_inner(&mut stream, buf, conn, &mut pending).await;
        if result.is_err() {
            // Decoded before the failure and not dispatched: never acked, the sender still owns it.
            pending.batch = None;
        }
        result
    }

    async fn serve_inner(
        &self,
        stream: &mut Box<dyn Stream>,
        mut buf: BytesMut,
        conn: &ConnState,
        pending: &mut Pending,
    ) -> Result<(), ConnError> {
        let mut decoder = Decoder::new(self.limits.clone());
        loop {
            // Decode every complete frame in the buffer, each with room for its decoded events.
            loop {
                let (frame_len, bound) = match decoder.next_held_bound(&buf) {
                    Ok(Some(sizes)) => sizes,
                    Ok(None) => break,
                    Err(e) => {
                        // Events decoded before the bad frame are delivered; the bad one is not acked.
                        self.flush(pending, conn).await?;
                        return Err(ConnError::Decode(e));
                    }
                };
                // The bound counts the request's own bytes, which are in the buffer now.
                let others = buf.capacity().saturating_sub(frame_len);
                let most = self.memory.total() + FREE_PER_CONNECTION;
                let bound = bound.min(most.saturating_sub(others));
                let with_pending = others + pending.held + bound;
                if with_pending > most || !self.try_hold(&mut pending.memory, with_pending)? {
                    self.flush(pending, conn).await?;
                    self.hold(&mut pending.memory, others + bound, conn).await?;
                }
                // A compressed payload is decompressed in the room just held; then the charge
                // becomes the decoded request's exact size.
                match decoder.decompress_ready(&buf) {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => {
                        self.flush(pending, conn).await?;
                        return Err(ConnError::Decode(e));
                    }
                }
                let frame = match decoder.decode_within(&mut buf, bound) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        self.flush(pending, conn).await?;
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
                pending.uncounted.events += batch.len() as u64;
                pending.uncounted.bytes += batch
                    .events
                    .iter()
                    .map(|e| e.body.len() as u64)
                    .sum::<u64>();
                match &mut pending.batch {
                    Some(p) if p.tag == batch.tag && p.len() < MAX_COALESCED_EVENTS => {
                        let before = p.events.capacity();
                        p.events.append(&mut batch.events);
                        // A Message-mode request's one-event list serves the next one.
                        decoder.recycle(batch.events);
                        pending.held += req.held_bytes
                            + (p.events.capacity() - before) * size_of::<crate::event::Event>();
                    }
                    _ => {
                        self.flush(pending, conn).await?;
                        pending.held = req.held_bytes;
                        if req.mode == Mode::Message {
                            // The complete requests behind it are most likely one-event ones
                            // too: room for them at once, rather than doubling from one.
                            let behind =
                                (buf.len() / frame_len.max(1)).min(MAX_COALESCED_EVENTS - 1);
                            let before = batch.events.capacity();
                            batch.events.reserve_exact(behind);
                            pending.held += (batch.events.capacity() - before)
                                * size_of::<crate::event::Event>();
                        }
                        pending.batch = Some(batch);
                    }
                }
                // Down from the bound to what the request really holds (coalescing may have
                // grown the list past it: then the charge waits at the next decode).
                let _ = self.try_hold(&mut pending.memory, buf.capacity() + pending.held)?;
                if let Some(chunk) = req.chunk {
                    self.flush(pending, conn).await?;
                    let ack = ack_response(&chunk);
                    tokio::select! {
                        written = stream.write_all(&ack) => written?,
                        // The batch is in the buffers; the sender may send it again.
                        _ = self.close_now.cancelled() => return Ok(()),
                    }
                }
            }
            let flushed = pending.held;
            self.flush(pending, conn).await?;
            if buf.is_empty() {
                conn.requests_complete();
            }
            if buf.is_empty() && buf.capacity() > FREE_PER_CONNECTION {
                buf = BytesMut::with_capacity(FREE_PER_CONNECTION);
            } else if flushed > FREE_PER_CONNECTION {
                // The dispatched requests shared the read buffer's allocation, which the rest
                // of the buffer would keep alive: move the rest into an allocation of its own.
                buf = copy_into(&buf, buf.len().max(FREE_PER_CONNECTION));
            }
            let _ = self.try_hold(&mut pending.memory, buf.capacity())?;
            if buf.capacity() - buf.len() < MIN_READ {
                let grown = (buf.len() + READ_CHUNK).max(buf.capacity() * 2);
                let limit = self.limits.max_request_bytes + READ_CHUNK;
                let grown = grown.min(limit.max(buf.len() + MIN_READ));
                self.hold(&mut pending.memory, grown, conn).await?;
                buf = copy_into(&buf, grown);
            }
            conn.set_held(pending.memory.held());
            let idle_timeout = self.idle_timeout.filter(|_| buf.is_empty());
            let idle = async {
                match idle_timeout {
                    Some(timeout) => tokio::time::sleep(timeout).await,
                    None => std::future::pending().await,
                }
            };
            let read = tokio::select! {
                r = stream.read_buf(&mut buf) => r?,
                _ = self.close_now.cancelled() => return Ok(()),
                _ = conn.close.cancelled() => return Err(ConnError::Closed("")),
                _ = idle => return Err(ConnError::Closed("idle_timeout")),
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
            self.connections.received(conn);
        }
    }

    /// Hold enough input memory for `need` bytes of this connection (beyond its free
    /// allowance) if there is room now. A need larger than the whole pool refuses the request.
    fn try_hold(&self, memory: &mut InputCharge, need: usize) -> Result<bool, ConnError> {
        memory
            .try_resize(need.saturating_sub(FREE_PER_CONNECTION))
            .map_err(too_large)
    }

    /// [`try_hold`](Self::try_hold), waiting for room (see `Connections::hold`: the oldest
    /// incomplete request of the input is closed every second meanwhile, possibly this one).
    async fn hold(
        &self,
        memory: &mut InputCharge,
        need: usize,
        conn: &ConnState,
    ) -> Result<(), ConnError> {
        let bytes = need.saturating_sub(FREE_PER_CONNECTION);
        match self
            .connections
            .hold(
                memory,
                bytes,
                conn,
                &self.close_now,
                &self.metrics,
                &self.component,
            )
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(ConnError::Closed("")),
            Err(e) => Err(too_large(e)),
        }
    }

    /// Count what was decoded as received, then dispatch the pending batch. An error means a
    /// buffer refused it: the connection closes without acking what it sent since the last ack.
    /// The connection's memory for the batch is released once the push returns.
    async fn flush(&self, pending: &mut Pending, conn: &ConnState) -> Result<(), ConnError> {
        let Uncounted { events, bytes } = std::mem::take(&mut pending.uncounted);
        if events > 0 || bytes > 0 {
            self.metrics.received(&self.component, events, bytes);
        }
        let held = std::mem::take(&mut pending.held);
        if let Some(batch) = pending.batch.take()
            && !batch.is_empty()
        {
            let events = batch.len();
            conn.set_dispatching(true);
            let dispatched = tokio::select! {
                d = self.pipeline.dispatch(batch) => d,
                _ = self.close_now.cancelled() => {
                    conn.set_dispatching(false);
                    tracing::warn!(input = %self.component.id, events, "drain time over while a push waited for buffer room: closing the connection without acknowledging");
                    return Err(ConnError::Closed("shutdown_unacked"));
                }
            };
            conn.set_dispatching(false);
            dispatched.map_err(ConnError::Dispatch)?;
        }
        if held > 0 {
            let rest = pending.memory.held().saturating_sub(held);
            let _ = pending.memory.try_resize(rest);
        }
        Ok(())
    }
}

/// What a connection decoded and has not dispatched yet, and the memory it holds.
struct Pending {
    batch: Option<Batch>,
    /// Bytes the batch holds ([`super::Request::held_bytes`], summed).
    held: usize,
    uncounted: Uncounted,
    memory: InputCharge,
}

/// `buf`'s bytes in a new allocation of `capacity` bytes (at least their length).
fn copy_into(buf: &BytesMut, capacity: usize) -> BytesMut {
    let mut copy = BytesMut::with_capacity(capacity.max(buf.len()));
    copy.extend_from_slice(buf);
    copy
}

fn too_large(e: OverBudget) -> ConnError {
    ConnError::Decode(super::DecodeError::TooLarge {
        limit: e.total,
        what: SizeLimit::Decoded,
    })
}

/// Events and bytes decoded but not yet counted as received.
#[derive(Default)]
struct Uncounted {
    events: u64,
    bytes: u64,
}

enum ConnError {
    /// Closed by the router: evicted, timed out, or cut by shutdown. The reason is counted
    /// under `errors` (none when the party that chose to close counted it).
    Closed(&'static str),
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
