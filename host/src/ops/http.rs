//! The health and metrics HTTP server, configured like Fluent Bit's (`[service] http_listen`,
//! or `HTTP_Server` / `HTTP_Listen` / `HTTP_Port` in a classic config, port 2020).
//!
//! | path | answers |
//! |---|---|
//! | `GET /` | `{"wasm-router":{"version":…}}` |
//! | `GET /api/v1/health` | liveness: `200 ok` while the process serves requests |
//! | `GET /api/v1/health/delivery` | delivery health (see [`delivery_health`](super::delivery_health)): `200` or `503` with JSON per output |
//! | `GET /api/v1/uptime` | `{"uptime_sec":…,"uptime_hr":…}` as Fluent Bit |
//! | `GET /api/v1/metrics` | per-component counts as JSON, shaped like Fluent Bit's |
//! | `GET /api/v1/metrics/prometheus`, `GET /metrics` | every metric, Prometheus text |
//! | `POST`/`PUT /api/v2/reload` | reload plugins and config (as Fluent Bit's hot reload) |
//!
//! Liveness never depends on a destination: a fleet must not be replaced because CloudWatch is
//! slow (firelens-aws.md §4 item 12). Connections are capped at [`MAX_CONNECTIONS`].

use super::delivery_health::DeliveryReport;
use super::metrics::Metrics;
use super::prometheus_text;
use super::reload::ReloadRequests;
use super::shutdown::Shutdown;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Fluent Bit's HTTP port, and ours.
pub const DEFAULT_PORT: u16 = 2020;
/// The address used when the server is switched on without one. Fluent Bit binds 0.0.0.0; the
/// FireLens health check runs inside the task's network namespace, so loopback is enough and
/// exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:2020";
/// Most HTTP connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 64;
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
            }),
        })
    }

    /// Accept `POST /api/v2/reload` and forward each request to `reload`.
    pub fn with_reload(mut self, reload: ReloadRequests) -> Self {
        let state = Arc::get_mut(&mut self.state).expect("not running yet");
        state.reload = Some(reload);
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    /// Serve until `shutdown`, then finish the requests in progress.
    pub async fn run(self, mut shutdown: Shutdown) {
        let addr = self.local_addr();
        tracing::info!(http_addr = %addr, "serving health and metrics over HTTP");
        let metrics = self.state.metrics.clone();
        let mut sampler_stop = shutdown.clone();
        let sampler = tokio::spawn(async move {
            let mut tick = tokio::time::interval(DELIVERY_SAMPLE_INTERVAL);
            loop {
                tokio::select! {
                    _ = tick.tick() => metrics.delivery().sample(&metrics),
                    _ = sampler_stop.wait() => return,
                }
            }
        });
        let listener = BoundedListener {
            inner: self.listener,
            permits: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        };
        let app = routes(self.state);
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.wait().await })
            .await;
        if let Err(e) = served {
            tracing::warn!(%addr, error = %e, "http server stopped");
        }
        sampler.abort();
    }
}

fn routes(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/", get(build_info))
        .route("/api/v1/health", get(liveness))
        .route("/api/v1/health/delivery", get(delivery_health))
        .route("/api/v1/uptime", get(uptime))
        .route("/api/v1/metrics", get(metrics_json))
        .route("/api/v1/metrics/prometheus", get(prometheus))
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

async fn liveness() -> &'static str {
    "ok\n"
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

/// Per-component counts in the shape of Fluent Bit's `/api/v1/metrics`.
async fn metrics_json(State(state): State<Arc<HttpState>>) -> Response {
    let samples = prometheus_text::parse(&state.metrics.encode()).unwrap_or_default();
    let mut sections: Map<String, Value> = Map::new();
    let field = |name: &str| match name {
        "component_received_events_total" => Some("records"),
        "component_received_bytes_total" => Some("bytes"),
        "component_sent_events_total" => Some("proc_records"),
        "component_discarded_events_total" => Some("dropped_records"),
        "component_errors_total" => Some("errors"),
        "component_retries_total" => Some("retries"),
        _ => None,
    };
    for s in &samples {
        let Some(key) = field(&s.name) else { continue };
        let section = sections
            .entry(s.label("component_kind").to_string())
            .or_insert_with(|| json!({}));
        let component = section
            .as_object_mut()
            .expect("sections are objects")
            .entry(s.label("component_id").to_string())
            .or_insert_with(|| json!({}));
        let entry = component
            .as_object_mut()
            .expect("components are objects")
            .entry(key)
            .or_insert(json!(0u64));
        *entry = json!(entry.as_u64().unwrap_or(0) + s.value as u64);
    }
    json_response(StatusCode::OK, &sections)
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

/// A TCP listener that holds one permit per open connection.
struct BoundedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
}

/// A connection and its permit, released when the connection closes.
struct BoundedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl axum::serve::Listener for BoundedListener {
    type Io = BoundedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    return (
                        BoundedStream {
                            stream,
                            _permit: permit,
                        },
                        addr,
                    );
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "http server: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for BoundedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for BoundedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
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
