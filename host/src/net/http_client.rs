//! The HTTP client of output plugins: hyper's pooled client over rustls (the same hyper,
//! hyper-rustls, rustls with aws-lc-rs and native root store the AWS SDK brings), HTTP/1.1,
//! a connect timeout and a whole-request timeout, no redirects (a 3xx is an answer like any
//! other), and response bodies read up to a bound.

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::sync::Arc;
use std::time::Duration;

/// Idle connections kept per host.
const MAX_IDLE_PER_HOST: usize = 8;
/// An idle connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A request checked against the grants, with its secrets injected and its body compressed.
#[derive(Debug)]
pub struct PreparedRequest {
    /// The plugin's id for it.
    pub id: u32,
    /// The method.
    pub method: Method,
    /// The URL (allowed).
    pub uri: Uri,
    /// Every header to send; secret ones are marked sensitive.
    pub headers: HeaderMap,
    /// The body as sent.
    pub body: Bytes,
}

/// A response: the status, headers and the first bytes of the body.
#[derive(Debug)]
pub struct Received {
    /// HTTP status.
    pub status: u16,
    /// Headers (values that are not UTF-8 are converted lossily).
    pub headers: Vec<(String, String)>,
    /// At most the client's `max_response_bytes` of the body.
    pub body: Vec<u8>,
}

/// Why the client could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// TLS setup failed.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// HTTPS is granted but the system has no CA certificates.
    #[error(
        "allow_hosts grants https:// hosts but no CA certificate was found in the system store ({0}); install the ca-certificates package in the image, or set SSL_CERT_FILE to a PEM bundle"
    )]
    NoRoots(String),
}

/// A pooled HTTP(S) client with bounded time and response size.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    max_response_bytes: usize,
}

impl HttpClient {
    /// A client; `needs_tls` makes a missing CA store an error instead of a warning.
    pub fn new(
        connect_timeout: Duration,
        timeout: Duration,
        max_response_bytes: usize,
        needs_tls: bool,
    ) -> Result<HttpClient, ClientError> {
        let tls = tls_config(needs_tls)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);
        Ok(HttpClient {
            client,
            timeout,
            max_response_bytes,
        })
    }

    /// Send `request`; `Err` is a transport error (connect, TLS, timeout, reset), described.
    pub async fn send(&self, request: &PreparedRequest) -> Result<Received, String> {
        let mut builder = http::Request::builder()
            .method(request.method.clone())
            .uri(request.uri.clone());
        if let Some(headers) = builder.headers_mut() {
            *headers = request.headers.clone();
        }
        let http_request = builder
            .body(Full::new(request.body.clone()))
            .map_err(|e| crate::ops::logging::error_chain(&e))?;
        let exchange = async {
            let response = self
                .client
                .request(http_request)
                .await
                .map_err(|e| crate::ops::logging::error_chain(&e))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let mut body = response.into_body();
            let mut read = Vec::new();
            while read.len() < self.max_response_bytes {
                match body.frame().await {
                    None => break,
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            let take = data.len().min(self.max_response_bytes - read.len());
                            read.extend_from_slice(&data[..take]);
                        }
                    }
                    // The status is the answer; a body cut short is only less detail.
                    Some(Err(e)) => {
                        tracing::debug!(error = %crate::ops::logging::error_chain(&e), "response body cut short");
                        break;
                    }
                }
            }
            Ok(Received {
                status,
                headers,
                body: read,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "no complete response within {:?} (the output's `timeout`)",
                self.timeout
            )),
        }
    }
}

/// rustls with aws-lc-rs and the system's CA certificates.
fn tls_config(needs_tls: bool) -> Result<rustls::ClientConfig, ClientError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or_else(|| "the store is empty".to_string(), |e| e.to_string());
        if needs_tls {
            return Err(ClientError::NoRoots(why));
        }
        tracing::debug!(%why, "no CA certificates found; only http:// is granted, so none are needed");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every connection's first request with `response`, or never
    /// answers when it is empty.
    async fn server(response: Vec<u8>) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let response = response.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0; 4096];
                    let _ = conn.read(&mut buf).await;
                    if response.is_empty() {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    let _ = conn.write_all(&response).await;
                });
            }
        });
        addr
    }

    fn get(addr: impl std::fmt::Display) -> PreparedRequest {
        PreparedRequest {
            id: 1,
            method: Method::GET,
            uri: format!("http://{addr}/x").parse().unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    fn client(timeout: Duration) -> HttpClient {
        HttpClient::new(Duration::from_secs(5), timeout, 1024, false).unwrap()
    }

    #[tokio::test]
    async fn bodies_are_capped_and_redirects_are_answers() {
        let mut big = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 200000\r\n\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', 200_000));
        let r = client(Duration::from_secs(30))
            .send(&get(server(big).await))
            .await
            .unwrap();
        assert_eq!((r.status, r.body.len()), (400, 1024));

        let redirect = b"HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:9/elsewhere\r\ncontent-length: 0\r\n\r\n";
        let r = client(Duration::from_secs(30))
            .send(&get(server(redirect.to_vec()).await))
            .await
            .unwrap();
        assert_eq!(r.status, 302);
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| k == "location" && v.ends_with("/elsewhere"))
        );
    }

    #[tokio::test]
    async fn transport_errors_are_described() {
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let e = client(Duration::from_secs(30))
            .send(&get(free))
            .await
            .unwrap_err();
        assert!(e.to_lowercase().contains("connect"), "{e}");

        let silent = server(Vec::new()).await;
        let e = client(Duration::from_millis(200))
            .send(&get(silent))
            .await
            .unwrap_err();
        assert!(e.contains("no complete response within"), "{e}");
    }
}
