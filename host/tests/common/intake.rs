//! A scripted HTTP server that plays an endpoint a router output calls (a vendor's intake, the
//! ECS metadata endpoint): each request is answered by the test's answer function, which may
//! take the next entry of the script, and every request is recorded with its headers, body and
//! the status it got. It serves plain HTTP or HTTPS on 127.0.0.1:0 from its own thread and
//! runtime, so sync and async tests use it alike, and stops when dropped.

use std::collections::{BTreeMap, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// One request as the intake received it.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path of the request target.
    pub path: String,
    /// The headers, names in lower case (a repeated header's values joined with `, `).
    pub headers: BTreeMap<String, String>,
    /// The body as sent.
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (lower case), or `""`.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// The body, gunzipped when `content-encoding` is `gzip`.
    pub fn decoded_body(&self) -> std::io::Result<Vec<u8>> {
        if self.header("content-encoding") != "gzip" {
            return Ok(self.body.clone());
        }
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&self.body[..]).read_to_end(&mut text)?;
        Ok(text)
    }
}

/// An answer.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// `status` with no header and an empty body.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Add a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Set the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }
}

/// A request and the status it was answered with.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// What was received.
    pub request: Request,
    /// The status of the answer.
    pub status: u16,
    /// Whether the answer function took from the script (asked for the next entry).
    pub scripted: bool,
}

/// Decides the answer to a request; `next()` takes the next script entry (`None` once it ran
/// out). Runs with the intake's state locked, so requests are answered one at a time.
pub type Answer<T> = dyn Fn(&Request, &mut dyn FnMut() -> Option<T>) -> Reply + Send + Sync;

struct State<T> {
    script: VecDeque<T>,
    exchanges: Vec<Exchange>,
}

/// A running intake; stops when dropped.
pub struct ScriptedIntake<T> {
    /// Where it listens.
    pub addr: SocketAddr,
    scheme: &'static str,
    state: Arc<Mutex<State<T>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl<T: Send + 'static> ScriptedIntake<T> {
    /// Serve on 127.0.0.1:0 (HTTPS with `tls`), answering with `answer` over `script`.
    pub fn start(
        script: impl IntoIterator<Item = T>,
        tls: Option<rustls::ServerConfig>,
        answer: impl Fn(&Request, &mut dyn FnMut() -> Option<T>) -> Reply + Send + Sync + 'static,
    ) -> ScriptedIntake<T> {
        let state = Arc::new(Mutex::new(State {
            script: script.into_iter().collect(),
            exchanges: Vec::new(),
        }));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let answer: Arc<Answer<T>> = Arc::new(answer);
        let app = axum::Router::new().fallback({
            let state = state.clone();
            move |request: axum::extract::Request| handle(state.clone(), answer.clone(), request)
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let tcp = tokio::net::TcpListener::from_std(listener).unwrap();
                let serve = async move {
                    match tls {
                        None => axum::serve(tcp, app).await,
                        Some(tls) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
                            axum::serve(TlsListener { tcp, acceptor }, app).await
                        }
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        ScriptedIntake {
            addr,
            scheme,
            state,
            stop: Some(stop),
        }
    }

    /// `http(s)://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// Every request so far, in order, with its answer.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.state.lock().unwrap().exchanges.clone()
    }
}

impl<T> Drop for ScriptedIntake<T> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn handle<T>(
    state: Arc<Mutex<State<T>>>,
    answer: Arc<Answer<T>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap().to_vec();
    // A repeated header's values joined with ", ", as HTTP allows (RFC 9110 §5.3).
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &parts.headers {
        let value = v.to_str().unwrap_or("?");
        headers
            .entry(k.as_str().to_string())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(value);
            })
            .or_insert_with(|| value.to_string());
    }
    let request = Request {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        headers,
        body,
    };
    let mut state = state.lock().unwrap();
    let mut scripted = false;
    let reply = answer(&request, &mut || {
        scripted = true;
        state.script.pop_front()
    });
    state.exchanges.push(Exchange {
        request,
        status: reply.status,
        scripted,
    });
    let mut response = axum::response::Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    response.body(axum::body::Body::from(reply.body)).unwrap()
}

/// Accepts TCP connections and completes the TLS handshake (failed handshakes are skipped).
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, peer)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
