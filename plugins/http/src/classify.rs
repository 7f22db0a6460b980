//! What an endpoint's answer means for the request, as Fluent Bit's `http` output decides
//! (`plugins/out_http/http.c`, `http_post`): a 2xx is delivered; 408, 429 and 5xx are retried
//! (after `Retry-After` when given); any other 4xx fails for good (the events are
//! dead-lettered and counted under `http_<status>`); no answer (connection refused, timeout)
//! is retried.
//!
//! Decided here where Fluent Bit differs: a 413 splits the request in two and sends each half
//! (Fluent Bit drops the chunk); a 3xx fails for good with where it points (the router does
//! not follow redirects; Fluent Bit retries it until `Retry_Limit`).

use wasm_router_sdk::output::{Delivery, Response};

/// The bytes of the answer quoted in a failure reason.
const QUOTED_BODY_BYTES: usize = 256;

/// Classifies one response; `quote_body`: put the start of the answer in the reason.
pub fn classify(response: &Response<'_>, quote_body: bool) -> Delivery {
    if response.transport_error.is_some() || response.status == 0 {
        return Delivery::Retry(None);
    }
    let body = || {
        if quote_body && !response.body.is_empty() {
            format!(": {}", response.body_text(QUOTED_BODY_BYTES))
        } else {
            String::new()
        }
    };
    match response.status {
        200..=299 => Delivery::Ok,
        413 => Delivery::SplitAndRetry,
        408 | 429 | 500..=599 => Delivery::Retry(response.retry_after_ms()),
        status @ (401 | 403) => Delivery::FailPermanent(format!(
            "HTTP {status}: the endpoint refused the credentials: check the secret `basic_auth` and the headers{}",
            body()
        )),
        status @ 300..=399 => Delivery::FailPermanent(format!(
            "HTTP {status} redirect to {:?}: the router does not follow redirects; set host, port, tls and uri to the endpoint itself",
            response.header("location").unwrap_or("")
        )),
        status => Delivery::FailPermanent(format!("HTTP {status}{}", body())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(status: u16, body: &[u8], quote: bool) -> Delivery {
        let headers = [("Retry-After".to_string(), "2".to_string())];
        classify(
            &Response {
                id: 1,
                status,
                headers: if status == 429 { &headers } else { &[] },
                body,
                transport_error: None,
            },
            quote,
        )
    }

    #[test]
    fn as_fluent_bit() {
        assert_eq!(delivery(200, b"", true), Delivery::Ok);
        assert_eq!(delivery(204, b"", true), Delivery::Ok);
        assert_eq!(delivery(503, b"", true), Delivery::Retry(None));
        assert_eq!(delivery(408, b"", true), Delivery::Retry(None));
        assert_eq!(delivery(429, b"", true), Delivery::Retry(Some(2000)));
        assert_eq!(delivery(413, b"", true), Delivery::SplitAndRetry);
        assert_eq!(
            delivery(400, b"bad json", true),
            Delivery::FailPermanent("HTTP 400: bad json".into())
        );
        assert_eq!(
            delivery(400, b"bad json", false),
            Delivery::FailPermanent("HTTP 400".into())
        );
        assert!(
            matches!(delivery(401, b"", true), Delivery::FailPermanent(r) if r.contains("basic_auth"))
        );
        assert!(
            matches!(delivery(302, b"", true), Delivery::FailPermanent(r) if r.contains("redirect"))
        );
        let refused = Response {
            id: 1,
            status: 0,
            headers: &[],
            body: b"",
            transport_error: Some("refused"),
        };
        assert_eq!(classify(&refused, true), Delivery::Retry(None));
    }
}
