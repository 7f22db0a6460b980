//! `type = "http"`: Fluent Bit's `in_http`. Clients `POST` records: a JSON object or an array
//! of objects (`Content-Type: application/json`), or one record of form fields
//! (`application/x-www-form-urlencoded`), optionally gzip (`Content-Encoding: gzip`). Records are
//! tagged by the request path (`POST /app.log` → `app.log`; `/` → `tag`), or by their own
//! `tag_key` value.
//!
//! The answer tells the client what happened to its records, so it can retry:
//! - `successful_response_code` (201) only once every record is in every matching output's
//!   buffer (`pipeline.dispatch` returned `Ok`);
//! - 503 when a buffer refused them (`buffer_refused`) or the body's memory was not available
//!   (`memory_unavailable`), 408 when the body took longer than [`BODY_TIMEOUT`]
//!   (`body_timeout`): the client should send again;
//! - 400 for a body that cannot be read (`invalid_json`, `invalid_form`, `invalid_gzip`,
//!   `invalid_content_type`, `invalid_content_encoding`, `empty_body`, `invalid_method`) and
//!   413 for one over `buffer_max_size`, sent or decompressed (`request_too_large`); nothing of
//!   such a request is kept.
//!
//! Each refusal is counted in `component_errors_total{reason}`. A batch refused by a buffer
//! after others of the same request were taken (records with different `tag_key` tags) makes
//! the client send those again too.
//!
//! Bounded like the tcp and forward inputs (`super::connections`): at most `max_connections`
//! connections (at the cap the longest-idle one is closed for a newcomer), a request head must
//! arrive within [`REQUEST_HEAD_TIMEOUT`] (and fit [`READ_BUFFER_MAX`]), and a body is charged
//! to the inputs' memory budget before it is read (whole when its length is declared, else
//! `buffer_chunk_size` at a time), never past `buffer_max_size`; gzip output is charged a chunk
//! at a time as it is made. When requests wait for memory, the registry answers the oldest
//! incomplete one 503 to free its share. HTTP/1.1 only; HTTPS with `tls = { cert_file,
//! key_file }`.

pub mod body;
pub mod config;

pub use config::HttpInputConfig;

use super::connections::{ConnState, Connections, FREE_PER_CONNECTION, Kind, accept_tcp};
use super::forward::tls::TLS_ACCEPT_TIMEOUT;
use super::{BindError, ListenAddr};
use crate::buffer::budget::{InputBudget, InputCharge};
use crate::event::accessor::RecordAccessor;
use crate::event::{Batch, Event, now_ns};
use crate::ops::metrics::{Component, Metrics};
use crate::ops::shutdown::Shutdown;
use crate::pipeline::Pipeline;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use body::Refusal;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// From when a connection is ready for a request until its head has arrived (the keep-alive
/// idle time too); past it the connection is closed.
pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request's body may take to arrive; past it the request is answered 408.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// hyper's read buffer limit per connection (the request head, and body bytes not yet taken;
/// a read may overshoot it once, so a connection holds under twice this): under 32 MiB at the
/// default 1024 connections, outside the memory budget. A longer head is answered 431.
pub const READ_BUFFER_MAX: usize = 16 * 1024;

/// A bound http input.
pub struct HttpServer {
    listener: TcpListener,
    ctx: Arc<HttpContext>,
    slots: Arc<Semaphore>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// What every connection of the input shares.
struct HttpContext {
    component: Component,
    metrics: Arc<Metrics>,
    /// The tag of a request to `/`.
    tag: String,
    tag_key: Option<RecordAccessor>,
    /// Memory a body takes at a time.
    chunk: usize,
    /// The largest body.
    max_body: usize,
    success: StatusCode,
    connections: Arc<Connections>,
    memory: InputBudget,
    close_now: CancellationToken,
}

/// What a request handler needs: the input's context and its connection.
#[derive(Clone)]
struct RequestContext {
    ctx: Arc<HttpContext>,
    pipeline: Arc<Pipeline>,
    conn: Arc<ConnState>,
}

impl HttpServer {
    /// Bind the listener of `config` (validated before); bodies hold memory from `memory`.
    pub async fn bind(
        config: &HttpInputConfig,
        metrics: Arc<Metrics>,
        memory: &InputBudget,
    ) -> Result<Self, BindError> {
        let name = config.name.clone().unwrap_or_else(|| "http".to_string());
        let bind_error = |source| BindError {
            input: name.clone(),
            addr: config.addr().to_string(),
            source,
        };
        let tls = match &config.tls {
            Some(tls) => Some(
                tls.acceptor()
                    .map_err(|e| bind_error(std::io::Error::other(e.to_string())))?,
            ),
            None => None,
        };
        let listener = TcpListener::bind(config.addr()).await.map_err(bind_error)?;
        let (chunk, max_body) = config.sizes();
        let success = config
            .successful_response_code
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::CREATED);
        Ok(HttpServer {
            listener,
            tls,
            slots: Arc::new(Semaphore::new(
                config
                    .max_connections
                    .unwrap_or(config::DEFAULT_MAX_CONNECTIONS),
            )),
            ctx: Arc::new(HttpContext {
                component: Component::input(name),
                metrics,
                tag: config.tag.clone().unwrap_or_else(|| "http".to_string()),
                tag_key: config
                    .tag_key
                    .as_deref()
                    .and_then(|k| RecordAccessor::parse(k).ok()),
                chunk,
                max_body,
                success,
                connections: Arc::default(),
                memory: memory.clone(),
                close_now: CancellationToken::new(),
            }),
        })
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<ListenAddr> {
        self.listener
            .local_addr()
            .map(|a| vec![ListenAddr::Tcp(a)])
            .unwrap_or_default()
    }

    /// Accept and serve connections until `shutdown`; then let the requests in progress finish
    /// for up to `drain`.
    pub async fn run(self, pipeline: Arc<Pipeline>, mut shutdown: Shutdown, drain: Duration) {
        let ctx = self.ctx;
        if let Ok(addr) = self.listener.local_addr() {
            tracing::info!(input = %ctx.component.id, addr = %ListenAddr::Tcp(addr), tls = self.tls.is_some(), "listening");
        }
        let tracker = TaskTracker::new();
        loop {
            let Some((stream, peer)) =
                accept_tcp(&self.listener, &ctx.component, &mut shutdown).await
            else {
                break;
            };
            let admitted = ctx.connections.admit(
                Kind::Tcp,
                &self.slots,
                &ctx.metrics,
                &ctx.component,
                &mut shutdown,
            );
            let Some((permit, registration)) = admitted.await else {
                break;
            };
            let request = RequestContext {
                ctx: ctx.clone(),
                pipeline: pipeline.clone(),
                conn: registration.state.clone(),
            };
            let (tls, shutdown) = (self.tls.clone(), shutdown.clone());
            tracker.spawn(async move {
                request.serve(stream, peer, tls, shutdown).await;
                drop(registration);
                drop(permit);
            });
        }
        tracker.close();
        if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
            tracing::warn!(input = %ctx.component.id, open = tracker.len(), "closing connections still open after the drain time");
            ctx.close_now.cancel();
            tracker.wait().await;
        }
    }
}

impl RequestContext {
    /// TLS when configured, then HTTP/1.1 requests until the connection closes, is closed, or
    /// shutdown (which lets the request in progress finish).
    async fn serve(
        self,
        stream: TcpStream,
        peer: std::net::SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
        shutdown: Shutdown,
    ) {
        let (ctx, conn) = (self.ctx.clone(), self.conn.clone());
        match tls {
            None => self.serve_http(stream, shutdown).await,
            Some(acceptor) => {
                let accepting = tokio::time::timeout(TLS_ACCEPT_TIMEOUT, acceptor.accept(stream));
                let accepted = tokio::select! {
                    accepted = accepting => accepted,
                    _ = conn.close.cancelled() => return,
                    _ = ctx.close_now.cancelled() => return,
                };
                match accepted {
                    Ok(Ok(stream)) => self.serve_http(stream, shutdown).await,
                    Ok(Err(e)) => {
                        tracing::debug!(input = %ctx.component.id, %peer, error = %e, "TLS handshake failed");
                        ctx.metrics.error(&ctx.component, "tls_handshake_failed");
                    }
                    Err(_) => {
                        tracing::debug!(input = %ctx.component.id, %peer, "no TLS handshake in time");
                        ctx.metrics.error(&ctx.component, "tls_handshake_failed");
                    }
                }
            }
        }
    }

    async fn serve_http<S>(self, stream: S, mut shutdown: Shutdown)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (ctx, conn) = (self.ctx.clone(), self.conn.clone());
        let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(REQUEST_HEAD_TIMEOUT)
            .max_buf_size(READ_BUFFER_MAX);
        let service = TowerToHyperService::new(handle.with_state(self));
        let served = builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(served);
        tokio::select! {
            result = served.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(input = %ctx.component.id, error = %e, "connection closed");
                }
                return;
            }
            _ = ctx.close_now.cancelled() => return,
            _ = conn.close.cancelled() => {}
            _ = shutdown.wait() => {}
        }
        // Closed by the registry (the request in progress, if any, is answered 503) or
        // shutdown: finish the request in progress, take no other.
        served.as_mut().graceful_shutdown();
        tokio::select! {
            _ = served => {}
            _ = ctx.close_now.cancelled() => {}
        }
    }

    /// Read the body within the memory budget, then decode and push it.
    async fn accept(&self, request: Request) -> Result<StatusCode, Refusal> {
        let ctx = &self.ctx;
        if request.method() != Method::POST {
            return Err(Refusal::bad_request(
                "invalid_method",
                format!(
                    "error: invalid HTTP method {}; POST records",
                    request.method()
                ),
            ));
        }
        let (parts, body) = request.into_parts();
        let kind = body::body_kind(header_str(&parts.headers, header::CONTENT_TYPE))?;
        let gzip = body::is_gzip(header_str(&parts.headers, header::CONTENT_ENCODING))?;
        let declared = header_str(&parts.headers, header::CONTENT_LENGTH)
            .and_then(|l| l.trim().parse::<u64>().ok());
        if declared.is_some_and(|l| l > ctx.max_body as u64) {
            return Err(Refusal::too_large(ctx.max_body));
        }
        let mut memory = ctx.memory.charge();
        let read = async {
            // A declared body is charged whole before it is read: requests waiting for memory
            // then hold none, and cannot each hold part of what they need.
            if let Some(len) = declared {
                self.hold(
                    &mut memory,
                    (len as usize).saturating_sub(FREE_PER_CONNECTION),
                )
                .await?;
            }
            self.read_body(body, &mut memory).await
        };
        let received = tokio::time::timeout(BODY_TIMEOUT, read)
            .await
            .map_err(|_| Refusal {
                status: StatusCode::REQUEST_TIMEOUT,
                reason: "body_timeout",
                message: format!("error: the body did not arrive within {BODY_TIMEOUT:?}"),
            })??;
        let text = if gzip {
            self.gunzip(&received, &mut memory).await?
        } else {
            received
        };
        let records = body::records(kind, &text)?;
        drop(text);
        let tag = body::path_tag(parts.uri.path()).unwrap_or_else(|| ctx.tag.clone());
        self.dispatch(records, tag).await?;
        Ok(ctx.success)
    }

    /// The body, charged to the inputs' memory budget a chunk ahead of what arrived; 413 once
    /// it is over `buffer_max_size`.
    async fn read_body(
        &self,
        mut body: Body,
        memory: &mut InputCharge,
    ) -> Result<Vec<u8>, Refusal> {
        let ctx = &self.ctx;
        let mut received: Vec<u8> = Vec::new();
        loop {
            let frame = tokio::select! {
                frame = body.frame() => frame,
                // Closed for memory while it waits for the client: answer, then close.
                _ = self.conn.close.cancelled() => return Err(memory_unavailable(
                    "the router needed this request's memory for others",
                )),
            };
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| {
                Refusal::bad_request("connection_error", format!("error: reading the body: {e}"))
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            ctx.connections.received(&self.conn);
            if received.len() + data.len() > ctx.max_body {
                return Err(Refusal::too_large(ctx.max_body));
            }
            if received.len() + data.len() > memory.held() + FREE_PER_CONNECTION {
                let want = (received.len() + data.len() + ctx.chunk).min(ctx.max_body);
                self.hold(memory, want.saturating_sub(FREE_PER_CONNECTION))
                    .await?;
            }
            received.extend_from_slice(&data);
        }
        Ok(received)
    }

    /// `received` gunzipped, its output charged a chunk ahead of what is made (on top of the
    /// compressed body, held until it is done).
    async fn gunzip(&self, received: &[u8], memory: &mut InputCharge) -> Result<Vec<u8>, Refusal> {
        let ctx = &self.ctx;
        let mut gunzip = body::Gunzip::new(received, ctx.max_body);
        loop {
            let want = received.len() + (gunzip.len() + ctx.chunk).min(ctx.max_body + 1);
            self.hold(memory, want.saturating_sub(FREE_PER_CONNECTION))
                .await?;
            if gunzip.step(ctx.chunk)? {
                return Ok(gunzip.finish());
            }
        }
    }

    /// Hold `bytes` of input memory; the connection is answered 503 when it cannot.
    async fn hold(&self, memory: &mut InputCharge, bytes: usize) -> Result<(), Refusal> {
        let ctx = &self.ctx;
        let held = ctx
            .connections
            .hold(
                memory,
                bytes,
                &self.conn,
                &ctx.close_now,
                &ctx.metrics,
                &ctx.component,
            )
            .await;
        match held {
            Ok(true) => {
                self.conn.set_held(memory.held());
                Ok(())
            }
            Ok(false) => Err(memory_unavailable(
                "the router needed this request's memory for others",
            )),
            Err(e) => {
                tracing::warn!(input = %ctx.component.id, error = %e, "a body cannot fit the inputs' memory budget; lower buffer_max_size");
                Err(memory_unavailable(
                    "the body cannot fit the router's input memory",
                ))
            }
        }
    }

    /// Push the records, one batch per run of records with the same tag; 503 when a buffer
    /// refused any of them.
    async fn dispatch(&self, records: Vec<Vec<u8>>, tag: String) -> Result<(), Refusal> {
        let ctx = &self.ctx;
        if records.is_empty() {
            return Ok(());
        }
        let time_ns = now_ns();
        let bytes: usize = records.iter().map(Vec::len).sum();
        ctx.metrics
            .received(&ctx.component, records.len() as u64, bytes as u64);
        let mut batches: Vec<(String, Vec<Event>)> = Vec::new();
        for record in records {
            let record_tag = ctx
                .tag_key
                .as_ref()
                .and_then(|k| body::record_tag(k, &record))
                .unwrap_or_else(|| tag.clone());
            let event = Event {
                time_ns,
                body: Bytes::from(record),
            };
            match batches.last_mut() {
                Some((t, events)) if *t == record_tag => events.push(event),
                _ => batches.push((record_tag, vec![event])),
            }
        }
        self.conn.set_dispatching(true);
        let mut refused = None;
        for (tag, events) in batches {
            if let Err(e) = self
                .pipeline
                .dispatch(Batch::new(Bytes::from(tag), events))
                .await
            {
                refused = Some(e);
            }
        }
        self.conn.set_dispatching(false);
        match refused {
            None => Ok(()),
            Some(e) => {
                // The refused push counted its events as dropped; the client is told to retry.
                tracing::warn!(input = %ctx.component.id, error = %e, "a buffer refused records of this input");
                Err(Refusal {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    reason: "buffer_refused",
                    message: "error: the router's buffers refused the records; retry later"
                        .to_string(),
                })
            }
        }
    }
}

/// Every request of a connection.
async fn handle(State(request_ctx): State<RequestContext>, request: Request) -> Response {
    let outcome = request_ctx.accept(request).await;
    request_ctx.conn.requests_complete();
    request_ctx.conn.set_held(0);
    match outcome {
        Ok(status) => status.into_response(),
        Err(refusal) => {
            let ctx = &request_ctx.ctx;
            tracing::debug!(input = %ctx.component.id, status = %refusal.status, reason = refusal.reason, "{}", refusal.message);
            ctx.metrics.error(&ctx.component, refusal.reason);
            (refusal.status, format!("{}\n", refusal.message)).into_response()
        }
    }
}

/// A 503: the request's memory was not available (the client should retry).
fn memory_unavailable(why: &str) -> Refusal {
    Refusal {
        status: StatusCode::SERVICE_UNAVAILABLE,
        reason: "memory_unavailable",
        message: format!("error: {why}; retry later"),
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
