//! The EC2 instance metadata service (IMDS): plain `GET`s under `/latest/` (IMDSv1), or the
//! same with a session token taken by `PUT /latest/api/token` (IMDSv2).
//!
//! <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html>
//!
//! The endpoint is `http://169.254.169.254` unless the environment says otherwise, the way the
//! AWS SDKs read it: `AWS_EC2_METADATA_SERVICE_ENDPOINT` (a full URL), else
//! `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6` (`http://[fd00:ec2::254]`);
//! `AWS_EC2_METADATA_DISABLED=true` turns the service off.
//!
//! A v2 token is asked for with a TTL of [`TOKEN_TTL`], taken again a minute before it runs
//! out, and once more when the service answers 401 (as Fluent Bit's `flb_aws_imds.c` does).
//! Each request has [`REQUEST_TIMEOUT`] (Fluent Bit: 1 s; a container whose hop limit is 1 never
//! gets the answer to the `PUT`), and answers are read up to [`MAX_ANSWER_BYTES`].

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::{Duration, Instant};

/// The link-local endpoint on EC2.
pub const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
/// The IPv6 endpoint (`AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6`).
pub const IPV6_ENDPOINT: &str = "http://[fd00:ec2::254]";
/// The SDKs' variable naming another endpoint (tests, non-EC2 runs with a stand-in).
pub const ENDPOINT_VAR: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
/// The SDKs' variable choosing the IPv4 or IPv6 endpoint.
pub const ENDPOINT_MODE_VAR: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE";
/// The SDKs' variable turning the service off (`true`).
pub const DISABLED_VAR: &str = "AWS_EC2_METADATA_DISABLED";
/// The TTL asked for with each v2 token (the maximum the service grants: six hours).
pub const TOKEN_TTL: Duration = Duration::from_secs(21_600);
/// How long one request (connect, send, whole answer) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// The largest answer read (the identity document is under 1 KiB).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

const TOKEN_PATH: &str = "/latest/api/token";
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const TOKEN_TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";

/// IMDSv1 (plain `GET`s) or IMDSv2 (session tokens).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImdsVersion {
    /// Plain `GET`s.
    V1,
    /// `GET`s with a session token (the default; the only version some instances allow).
    #[default]
    V2,
}

/// Why a metadata item could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImdsError {
    /// The endpoint variable is not a URL the client can use.
    #[error("{ENDPOINT_VAR}={0:?} is not an http:// URL (e.g. http://127.0.0.1:1338)")]
    BadEndpoint(String),
    /// The service has no such item (404): e.g. no instance tags, or tags not exposed.
    #[error("{0}: not found (404)")]
    NotFound(String),
    /// Connecting, sending or reading failed, or took longer than [`REQUEST_TIMEOUT`].
    #[error("{method} {url}: {detail}")]
    Transport {
        /// `GET` or `PUT`.
        method: Method,
        /// What was requested.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// An answer other than 200.
    #[error("{method} {url}: the service answered {status}")]
    Status {
        /// `GET` or `PUT`.
        method: Method,
        /// What was requested.
        url: String,
        /// Its status.
        status: StatusCode,
    },
    /// A 200 whose body is not what the item holds.
    #[error("{url}: {detail}")]
    BadAnswer {
        /// What was requested.
        url: String,
        /// What was wrong.
        detail: String,
    },
}

/// Where the service is, from the environment (`get` reads a variable); `None` when
/// `AWS_EC2_METADATA_DISABLED` is `true`.
pub fn endpoint_from_env(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    if get(DISABLED_VAR).is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return None;
    }
    let endpoint = match get(ENDPOINT_VAR).filter(|v| !v.trim().is_empty()) {
        Some(url) => url.trim().to_string(),
        None if get(ENDPOINT_MODE_VAR).is_some_and(|m| m.trim().eq_ignore_ascii_case("ipv6")) => {
            IPV6_ENDPOINT.to_string()
        }
        None => DEFAULT_ENDPOINT.to_string(),
    };
    Some(endpoint)
}

/// A client of one metadata endpoint. Not shared: it keeps the v2 token.
pub struct ImdsClient {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    version: ImdsVersion,
    token: Option<(String, Instant)>,
}

impl ImdsClient {
    /// A client of `endpoint` (`http://host[:port]`, no path) speaking `version`.
    pub fn new(endpoint: &str, version: ImdsVersion) -> Result<ImdsClient, ImdsError> {
        let base = endpoint.trim_end_matches('/');
        let valid = base
            .strip_prefix("http://")
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
            && base.parse::<http::Uri>().is_ok();
        if !valid {
            return Err(ImdsError::BadEndpoint(endpoint.to_string()));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(REQUEST_TIMEOUT));
        connector.set_nodelay(true);
        Ok(ImdsClient {
            // One request at a time and minutes apart: no connection is kept.
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build(connector),
            base: base.to_string(),
            version,
            token: None,
        })
    }

    /// The text of the item at `path` (`/latest/meta-data/instance-id`).
    pub async fn get(&mut self, path: &str) -> Result<String, ImdsError> {
        let url = format!("{}{path}", self.base);
        let (status, body) = match self.version {
            ImdsVersion::V1 => self.send(Method::GET, &url, None).await?,
            ImdsVersion::V2 => {
                let token = self.token(false).await?;
                let answer = self.send(Method::GET, &url, Some(&token)).await?;
                if answer.0 == StatusCode::UNAUTHORIZED {
                    let token = self.token(true).await?;
                    self.send(Method::GET, &url, Some(&token)).await?
                } else {
                    answer
                }
            }
        };
        match status {
            StatusCode::OK => String::from_utf8(body.to_vec()).map_err(|_| ImdsError::BadAnswer {
                url,
                detail: "the answer is not UTF-8 text".into(),
            }),
            StatusCode::NOT_FOUND => Err(ImdsError::NotFound(url)),
            status => Err(ImdsError::Status {
                method: Method::GET,
                url,
                status,
            }),
        }
    }

    /// The v2 session token: the one held unless it is about to expire or `renew` is set.
    async fn token(&mut self, renew: bool) -> Result<String, ImdsError> {
        let margin = Duration::from_secs(60);
        if let Some((token, taken)) = &self.token
            && !renew
            && taken.elapsed() + margin < TOKEN_TTL
        {
            return Ok(token.clone());
        }
        let url = format!("{}{TOKEN_PATH}", self.base);
        let ttl = TOKEN_TTL.as_secs().to_string();
        let (status, body) = self
            .send(Method::PUT, &url, Some(&ttl))
            .await
            .map_err(|e| match e {
                // What Fluent Bit warns about too: the token answer is dropped one hop short.
                ImdsError::Transport {
                    method,
                    url,
                    detail,
                } => ImdsError::Transport {
                    method,
                    url,
                    detail: format!(
                        "{detail} (in a container, the instance's `HttpPutResponseHopLimit` must be 2 or more for IMDSv2; or set `imds_version v1` if the instance allows it)"
                    ),
                },
                other => other,
            })?;
        if status != StatusCode::OK {
            return Err(ImdsError::Status {
                method: Method::PUT,
                url,
                status,
            });
        }
        let token = String::from_utf8(body.to_vec())
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ImdsError::BadAnswer {
                url,
                detail: "the token is empty or not text".into(),
            })?;
        self.token = Some((token.clone(), Instant::now()));
        Ok(token)
    }

    /// One request; `header` is the token (a `GET`) or the TTL (the token `PUT`).
    async fn send(
        &self,
        method: Method,
        url: &str,
        header: Option<&str>,
    ) -> Result<(StatusCode, Bytes), ImdsError> {
        let transport = |detail: String| ImdsError::Transport {
            method: method.clone(),
            url: url.to_string(),
            detail,
        };
        let mut request = Request::builder().method(method.clone()).uri(url);
        if let Some(value) = header {
            let name = if method == Method::PUT {
                TOKEN_TTL_HEADER
            } else {
                TOKEN_HEADER
            };
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| transport(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| transport(crate::ops::logging::error_chain(&e)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| transport(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(transport(format!("no answer within {REQUEST_TIMEOUT:?}"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_comes_from_the_sdk_variables() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            endpoint_from_env(env(&[])).as_deref(),
            Some(DEFAULT_ENDPOINT)
        );
        assert_eq!(
            endpoint_from_env(env(&[(ENDPOINT_VAR, "http://127.0.0.1:1338")])).as_deref(),
            Some("http://127.0.0.1:1338")
        );
        assert_eq!(
            endpoint_from_env(env(&[(ENDPOINT_MODE_VAR, "IPv6")])).as_deref(),
            Some(IPV6_ENDPOINT)
        );
        assert_eq!(
            endpoint_from_env(env(&[(DISABLED_VAR, "TRUE"), (ENDPOINT_VAR, "http://x")])),
            None
        );
        assert_eq!(
            endpoint_from_env(env(&[(DISABLED_VAR, "false")])).as_deref(),
            Some(DEFAULT_ENDPOINT)
        );
    }

    #[test]
    fn only_plain_http_endpoints_without_a_path() {
        assert!(ImdsClient::new("http://127.0.0.1:1338/", ImdsVersion::V2).is_ok());
        assert!(ImdsClient::new(IPV6_ENDPOINT, ImdsVersion::V2).is_ok());
        for bad in [
            "https://169.254.169.254",
            "169.254.169.254",
            "http://",
            "http://x/latest",
        ] {
            let e = ImdsClient::new(bad, ImdsVersion::V1).err().unwrap();
            assert!(e.to_string().contains(ENDPOINT_VAR), "{bad}: {e}");
        }
    }
}
