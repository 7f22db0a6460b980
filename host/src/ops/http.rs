//! The health and metrics HTTP server, configured like Fluent Bit's (`[service] http_listen`,
//! or `HTTP_Server` / `HTTP_Listen` / `HTTP_Port` in a classic config, port 2020).
//!
//! | path | answers |
//! |---|---|
//! | `GET /` | `{"wasm-router":{"version":…}}` |
//! | `GET /api/v1/health` | liveness: `200 ok` while the process serves requests; with `[service.health_check]` (`Health_Check On`) Fluent Bit's check: `500 error` after too many output errors or retry failures in the period (see [`fluent_bit_api`](super::fluent_bit_api)) |
//! | `GET /api/v1/health/delivery` | delivery health (see [`delivery_health`](super::delivery_health)): `200` or `503` with JSON per output |
//! | `GET /api/v1/uptime` | `{"uptime_sec":…,"uptime_hr":…}` as Fluent Bit |
//! | `GET /api/v1/metrics` | Fluent Bit's JSON: per-instance counts under Fluent Bit's instance names |
//! | `GET /api/v1/metrics/prometheus` | Fluent Bit's `fluentbit_input_*`, `fluentbit_filter_*`, `fluentbit_output_*` series |
//! | `GET /api/v1/storage` | with `storage_metrics` (`storage.metrics on`): each output's buffer, under Fluent Bit's names |
//! | `GET /metrics` | every metric of ours, Prometheus text |
//! | `POST`/`PUT /api/v2/reload` | reload plugins and config (as Fluent Bit's hot reload) |
//!
//! Liveness never depends on a destination: a fleet must not be replaced because CloudWatch is
//! slow (firelens-aws.md §4 item 12). Nor on other clients: a connection that sends no complete
//! request head within [`REQUEST_HEAD_TIMEOUT`] (idle after accept, idle between keep-alive
//! requests, or trickling a request line) is closed, and when [`MAX_CONNECTIONS`] are open a new
//! client closes the longest-idle one instead of waiting behind it.

use super::delivery_health::DeliveryReport;
use super::fluent_bit_api::{self, HealthCheck, HealthCheckConfig, Instances, Snapshot};
use super::metrics::Metrics;
use super::reload::ReloadRequests;
use super::shutdown::Shutdown;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// Fluent Bit's HTTP port, and ours.
pub const DEFAULT_PORT: u16 = 2020;
/// The address used when the server is switched on without one. Fluent Bit binds 0.0.0.0; the
/// FireLens health check runs inside the task's network namespace, so loopback is enough and
/// exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:2020";
/// Most HTTP connections open at once; a new one beyond that closes the longest-idle.
pub const MAX_CONNECTIONS: usize = 64;
/// From when a connection is ready for a request (just accepted, or its previous response sent)
/// until that request's head (request line and headers) has arrived; past it the connection is
/// closed. This is both the header-read and the keep-alive idle timeout: hyper's
/// `header_read_timeout` runs whenever the connection waits for a request head.
pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for the requests in progress before closing their connections.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);
/// How often buffer fill levels are sampled for delivery health.
const DELIVERY_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// The `http_listen` address of a Fluent Bit `[SERVICE]` section (`HTTP_Server`,
/// `HTTP_Listen`, `HTTP_Port`), or `None` when the server is off.
pub fn listen_from_fluent_bit(
    http_server: Option<&str>,
    http_listen: Option<&str>,
    http_port: Option<&str>,
) -> Option<String> {
    let on = http_server.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "on" | "true" | "yes" | "1"
        )
    });
    if !on {
        return None;
    }
    let host = http_listen
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .unwrap_or("127.0.0.1");
    let port = http_port
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or("2020");
    Some(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// Why the HTTP server could not start.
#[derive(Debug, thiserror::Error)]
#[error(
    "http server: cannot listen on {addr}: {source}; set [service] http_listen to a free `ip:port` or remove it"
)]
pub struct HttpBindError {
    addr: String,
    source: std::io::Error,
}

/// A bound HTTP server, ready to [`run`](HttpServer::run).
pub struct HttpServer {
    listener: TcpListener,
    state: Arc<HttpState>,
}

struct HttpState {
    metrics: Arc<Metrics>,
    stuck_after: Duration,
    reload: Option<ReloadRequests>,
    instances: Instances,
    health_check: Option<HealthCheck>,
    storage_metrics: bool,
}

impl HttpServer {
    /// Bind `listen` (`ip:port`). Outputs count as stuck after `stuck_after` without progress.
    pub async fn bind(
        listen: &str,
        metrics: Arc<Metrics>,
        stuck_after: Duration,
    ) -> Result<Self, HttpBindError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| HttpBindError {
                addr: listen.to_string(),
                source,
            })?;
        Ok(HttpServer {
            listener,
            state: Arc::new(HttpState {
                metrics,
                stuck_after,
                reload: None,
                instances: Instances::default(),
                health_check: None,
                storage_metrics: false,
            }),
        })
    }

    /// Accept `POST /api/v2/reload` and forward each request to `reload`.
    pub fn with_reload(mut self, reload: ReloadRequests) -> Self {
        let state = Arc::get_mut(&mut self.state).expect("not running yet");
        state.reload = Some(reload);
        self
    }

    /// Serve Fluent Bit's API for `instances`, with its health check when `health_check` is set
    /// and `/api/v1/storage` when `storage_metrics` is.
    pub fn with_fluent_bit(
        mut self,
        instances: Instances,
        health_check: Option<HealthCheckConfig>,
        storage_metrics: bool,
    ) -> Self {
        let state = Arc::get_mut(&mut self.state).expect("not running yet");
        state.instances = instances;
        state.health_check = health_check.map(HealthCheck::new);
        state.storage_metrics = storage_metrics;
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    /// Serve until `shutdown`, then finish the requests in progress.
    pub async fn run(self, shutdown: Shutdown) {
        let addr = self.local_addr();
        tracing::info!(http_addr = %addr, "serving health and metrics over HTTP");
        let state = self.state.clone();
        let mut sampler_stop = shutdown.clone();
        let sampler = tokio::spawn(async move {
            let mut tick = tokio::time::interval(DELIVERY_SAMPLE_INTERVAL);
            loop {
                tokio::select! {
                    _ = tick.tick() => state.sample(),
                    _ = sampler_stop.wait() => return,
                }
            }
        });
        let app = routes(self.state);
        serve(self.listener, app, shutdown).await;
        sampler.abort();
    }
}

fn routes(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/", get(build_info))
        .route("/api/v1/health", get(health))
        .route("/api/v1/health/delivery", get(delivery_health))
        .route("/api/v1/uptime", get(uptime))
        .route("/api/v1/metrics", get(metrics_json))
        .route("/api/v1/metrics/prometheus", get(fluent_bit_prometheus))
        .route("/api/v1/storage", get(storage))
        .route("/metrics", get(prometheus))
        .route("/api/v2/reload", post(reload).put(reload))
        .with_state(state)
}

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        text,
    )
        .into_response()
}

async fn build_info() -> Response {
    json_response(
        StatusCode::OK,
        &json!({ "wasm-router": { "version": env!("CARGO_PKG_VERSION") } }),
    )
}

impl HttpState {
    /// Each second: buffer fill levels for delivery health, and the health check's sample.
    fn sample(&self) {
        self.metrics.delivery().sample(&self.metrics);
        if let Some(check) = &self.health_check {
            check.sample(&Snapshot::read(&self.metrics, &self.instances));
        }
    }
}

/// Liveness, or Fluent Bit's health check when it is on (`200 ok` / `500 error`, as Fluent Bit).
async fn health(State(state): State<Arc<HttpState>>) -> Response {
    match &state.health_check {
        Some(check) if !check.healthy() => {
            (StatusCode::INTERNAL_SERVER_ERROR, "error\n").into_response()
        }
        _ => (StatusCode::OK, "ok\n").into_response(),
    }
}

async fn delivery_health(State(state): State<Arc<HttpState>>) -> Response {
    let report: DeliveryReport = state
        .metrics
        .delivery()
        .report(&state.metrics, state.stuck_after);
    let status = if report.is_healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &report)
}

async fn uptime(State(state): State<Arc<HttpState>>) -> Response {
    let secs = state.metrics.uptime().as_secs();
    let (days, hours, minutes, seconds) =
        (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let human = format!(
        "wasm-router has been running: {days} day, {hours} hour, {minutes} minute and {seconds} seconds"
    );
    json_response(
        StatusCode::OK,
        &json!({ "uptime_sec": secs, "uptime_hr": human }),
    )
}

/// Fluent Bit's `/api/v1/metrics`.
async fn metrics_json(State(state): State<Arc<HttpState>>) -> Response {
    json_response(
        StatusCode::OK,
        &Snapshot::read(&state.metrics, &state.instances),
    )
}

/// Fluent Bit's `/api/v1/storage`: `404` unless `storage.metrics` is on, as Fluent Bit.
async fn storage(State(state): State<Arc<HttpState>>) -> Response {
    if !state.storage_metrics {
        return StatusCode::NOT_FOUND.into_response();
    }
    json_response(
        StatusCode::OK,
        &fluent_bit_api::storage(&state.metrics, &state.instances),
    )
}

/// Fluent Bit's `/api/v1/metrics/prometheus` (Prometheus text 0.0.4, as Fluent Bit).
async fn fluent_bit_prometheus(State(state): State<Arc<HttpState>>) -> Response {
    let text = Snapshot::read(&state.metrics, &state.instances)
        .prometheus(state.metrics.uptime().as_secs());
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response()
}

async fn prometheus(State(state): State<Arc<HttpState>>) -> Response {
    let content_type =
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        state.metrics.encode(),
    )
        .into_response()
}

async fn reload(State(state): State<Arc<HttpState>>) -> Response {
    let Some(reload) = &state.reload else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({ "reload": "not available in this router" }),
        );
    };
    // A reload already pending picks up the same files.
    reload.request();
    json_response(StatusCode::ACCEPTED, &json!({ "reload": "requested" }))
}

/// Accept connections until `shutdown`, then give the requests in progress [`SHUTDOWN_WAIT`].
async fn serve(listener: TcpListener, app: Router, mut shutdown: Shutdown) {
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_HEAD_TIMEOUT);
    let open = Arc::new(OpenConnections::default());
    let mut tasks = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "http server: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        while tasks.try_join_next().is_some() {}
        let connection = open.admit(peer);
        let io = TokioIo::new(TrackedStream {
            stream,
            activity: connection.tracked.activity.clone(),
        });
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let served = builder.serve_connection(io, service);
            tokio::pin!(served);
            let mut shutdown = shutdown;
            tokio::select! {
                result = served.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "http server: connection closed");
                    }
                }
                _ = connection.evicted() => {}
                _ = shutdown.wait() => {
                    served.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_WAIT, served).await;
                }
            }
            drop(connection);
        });
    }
    let drained = tokio::time::timeout(SHUTDOWN_WAIT + Duration::from_millis(100), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.shutdown().await;
    }
}

/// The connections being served, each with the time of its last byte in or out.
struct OpenConnections {
    started: Instant,
    next_id: AtomicU64,
    by_id: Mutex<HashMap<u64, Arc<Tracked>>>,
}

impl Default for OpenConnections {
    fn default() -> Self {
        OpenConnections {
            started: Instant::now(),
            next_id: AtomicU64::new(0),
            by_id: Mutex::new(HashMap::new()),
        }
    }
}

struct Tracked {
    peer: SocketAddr,
    activity: Arc<Activity>,
    evict: Notify,
}

/// When a connection last moved a byte, in milliseconds since the server started.
struct Activity {
    started: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }
}

/// A registered connection; dropping it unregisters.
struct Registered {
    open: Arc<OpenConnections>,
    id: u64,
    tracked: Arc<Tracked>,
}

impl Registered {
    /// Resolves when a newer client needs this connection's place.
    async fn evicted(&self) {
        self.tracked.evict.notified().await;
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.open.lock().remove(&self.id);
    }
}

impl OpenConnections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tracked>>> {
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register a new connection from `peer`; at [`MAX_CONNECTIONS`], close the longest-idle
    /// one first.
    fn admit(self: &Arc<Self>, peer: SocketAddr) -> Registered {
        let activity = Arc::new(Activity {
            started: self.started,
            last_ms: AtomicU64::new(self.started.elapsed().as_millis() as u64),
        });
        let tracked = Arc::new(Tracked {
            peer,
            activity,
            evict: Notify::new(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut by_id = self.lock();
        while by_id.len() >= MAX_CONNECTIONS {
            let Some((&oldest, _)) = by_id
                .iter()
                .min_by_key(|(_, c)| c.activity.last_ms.load(Ordering::Relaxed))
            else {
                break;
            };
            let evicted = by_id.remove(&oldest).expect("just found");
            // `notify_one` keeps the wake-up if the connection's task is not waiting yet.
            evicted.evict.notify_one();
            tracing::warn!(
                evicted_peer = %evicted.peer, new_peer = %peer,
                "http server: {MAX_CONNECTIONS} connections open; closed the longest-idle one to serve a new client"
            );
        }
        by_id.insert(id, tracked.clone());
        Registered {
            open: self.clone(),
            id,
            tracked,
        }
    }
}

/// A connection that records when it last moved a byte.
struct TrackedStream {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_connection_at_the_cap_closes_the_longest_idle_one() {
        let open = Arc::new(OpenConnections::default());
        let peer = |n: u16| SocketAddr::from(([127, 0, 0, 1], n));
        let mut held: Vec<Registered> = (0..MAX_CONNECTIONS as u16)
            .map(|n| open.admit(peer(n + 1)))
            .collect();
        for (n, connection) in held.iter().enumerate() {
            // Connection 7 moved its last byte longest ago; the others later, in order.
            let last = if n == 7 { 0 } else { 1_000 + n as u64 };
            connection
                .tracked
                .activity
                .last_ms
                .store(last, Ordering::Relaxed);
        }
        let newcomer = open.admit(peer(9999));
        assert_eq!(open.lock().len(), MAX_CONNECTIONS);
        assert!(!open.lock().contains_key(&held[7].id));
        assert!(open.lock().contains_key(&newcomer.id));
        tokio::time::timeout(Duration::from_secs(5), held[7].evicted())
            .await
            .expect("the longest-idle connection is told to close");
        let gone = held.remove(7);
        drop(gone);
        assert_eq!(open.lock().len(), MAX_CONNECTIONS);
        drop(held);
        assert_eq!(open.lock().len(), 1);
    }

    #[test]
    fn fluent_bit_service_keys_map_to_a_listen_address() {
        assert_eq!(
            listen_from_fluent_bit(None, Some("0.0.0.0"), Some("2020")),
            None
        );
        assert_eq!(listen_from_fluent_bit(Some("Off"), None, None), None);
        assert_eq!(
            listen_from_fluent_bit(Some("On"), None, None).as_deref(),
            Some(DEFAULT_LISTEN)
        );
        assert_eq!(
            listen_from_fluent_bit(Some("on"), Some("0.0.0.0"), Some("2021")).as_deref(),
            Some("0.0.0.0:2021")
        );
        assert_eq!(
            listen_from_fluent_bit(Some("true"), Some("::1"), None).as_deref(),
            Some("[::1]:2020")
        );
    }
}
