//! GET over HTTP(S) for plugin fetches: the output plugins' client
//! ([`crate::net::http_client`]: rustls, the system's CA store, bounded time and size),
//! following redirects (release downloads and registries' blob stores answer with one), the
//! body bounded by [`super::MAX_PLUGIN_BYTES`].

use super::{CONNECT_TIMEOUT, FETCH_TIMEOUT, MAX_PLUGIN_BYTES};
use crate::net::http_client::{HttpClient, PreparedRequest};
use ::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use bytes::Bytes;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// A successful response.
#[derive(Debug)]
pub struct Response {
    /// The status (2xx, or 401 when asked to return it).
    pub status: u16,
    /// The headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A client for fetches.
pub struct Getter {
    client: HttpClient,
}

impl Getter {
    /// A client; `needs_tls` makes a missing CA store an error.
    pub fn new(needs_tls: bool) -> Result<Getter, String> {
        let client = HttpClient::new(
            CONNECT_TIMEOUT,
            FETCH_TIMEOUT,
            MAX_PLUGIN_BYTES + 1,
            needs_tls,
        )
        .map_err(|e| e.to_string())?;
        Ok(Getter { client })
    }

    /// GET `uri` with `headers`, following redirects (`Authorization` is sent to the first host
    /// only); anything but a 2xx is an error naming the URL and the status.
    pub async fn get(
        &self,
        uri: Uri,
        headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<Response, String> {
        let response = self.get_or_unauthorized(uri.clone(), headers).await?;
        if response.status == 401 {
            return Err(status_error(&uri, &response));
        }
        Ok(response)
    }

    /// [`Getter::get`], but a 401 is returned (a registry's challenge) rather than an error.
    pub async fn get_or_unauthorized(
        &self,
        uri: Uri,
        headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<Response, String> {
        let first_host = uri.authority().cloned();
        let mut uri = uri;
        for _ in 0..=MAX_REDIRECTS {
            let mut map = HeaderMap::new();
            for (name, value) in &headers {
                let same_host = uri.authority() == first_host.as_ref();
                if same_host || name != ::http::header::AUTHORIZATION {
                    map.append(name.clone(), value.clone());
                }
            }
            let request = PreparedRequest {
                id: 0,
                method: Method::GET,
                uri: uri.clone(),
                headers: map,
                body: Bytes::new(),
            };
            let received = self
                .client
                .send(&request)
                .await
                .map_err(|e| format!("GET {uri}: {e}"))?;
            let response = Response {
                status: received.status,
                headers: received.headers,
                body: received.body,
            };
            match response.status {
                200..=299 | 401 => {
                    if response.body.len() > MAX_PLUGIN_BYTES {
                        return Err(format!(
                            "GET {uri}: the response is larger than {MAX_PLUGIN_BYTES} bytes; check that the URL names the plugin"
                        ));
                    }
                    return Ok(response);
                }
                301 | 302 | 303 | 307 | 308 => {
                    let location = response.header("location").ok_or_else(|| {
                        format!("GET {uri}: redirect {} without a Location", response.status)
                    })?;
                    uri = resolve(&uri, location).ok_or_else(|| {
                        format!("GET {uri}: redirect to {location:?}, which is not a URL")
                    })?;
                }
                _ => return Err(status_error(&uri, &response)),
            }
        }
        Err(format!("GET {uri}: more than {MAX_REDIRECTS} redirects"))
    }
}

/// `GET URL: 404 Not Found: <first line of the body>` and what to check.
fn status_error(uri: &Uri, response: &Response) -> String {
    let status = ::http::StatusCode::from_u16(response.status)
        .map(|s| s.to_string())
        .unwrap_or_else(|_| response.status.to_string());
    let body = String::from_utf8_lossy(&response.body);
    let detail = body
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect::<String>();
    let fix = match response.status {
        401 | 403 => "; the server wants credentials the router does not have",
        404 => "; check the URL",
        _ => "",
    };
    if detail.is_empty() {
        format!("GET {uri}: {status}{fix}")
    } else {
        format!("GET {uri}: {status}: {detail}{fix}")
    }
}

/// `location` (absolute, or a path on the same server) against `base`.
fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    if location.contains("://") {
        return location.parse().ok();
    }
    if !location.starts_with('/') {
        return None;
    }
    Uri::builder()
        .scheme(base.scheme()?.clone())
        .authority(base.authority()?.clone())
        .path_and_query(location)
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve_absolute_and_server_relative_locations() {
        let base: Uri = "https://registry.example/v2/p/blobs/sha256:aa"
            .parse()
            .unwrap();
        assert_eq!(
            resolve(&base, "https://bucket.s3.example/x?sig=1")
                .unwrap()
                .to_string(),
            "https://bucket.s3.example/x?sig=1"
        );
        assert_eq!(
            resolve(&base, "/blobs/data/aa").unwrap().to_string(),
            "https://registry.example/blobs/data/aa"
        );
        assert!(resolve(&base, "relative/path").is_none());
    }
}
