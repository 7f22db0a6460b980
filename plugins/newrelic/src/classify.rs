//! What a Log API answer means for the request. New Relic answers `202 Accepted` to a payload
//! it takes (<https://docs.newrelic.com/docs/logs/log-api/introduction-log-api/>), and
//! newrelic-fluent-bit-output (`nrclient/nrclient.go`) retries 408, 429, 500, 502, 503, 504
//! and 599, giving up on anything else:
//!
//! | Status | Meaning | Delivery |
//! |---|---|---|
//! | 2xx (202) | accepted | ok |
//! | 400 | malformed payload | fail-permanent |
//! | 401, 403 | missing or invalid key | fail-permanent |
//! | 408 | request timeout | retry |
//! | 413 | payload over 1 MB | split-and-retry |
//! | 429 | rate limited | retry (after `Retry-After`) |
//! | 5xx | server error | retry (after `Retry-After`) |
//!
//! Decided here: every 5xx retries (the Go plugin drops 501/505), a 3xx fails permanently (the
//! router never follows redirects: the endpoint is wrong) as does any other 4xx; a transport
//! error retries.

use wasm_router_sdk::output::{Delivery, Response};
use wasm_router_sdk::vendor::Refusals;

/// Classifies one response of the Log API; `secret` is the secret that holds the key.
pub fn classify(response: &Response<'_>, secret: &str) -> Delivery {
    let key_fix = format!(
        "check the secret `{secret}` and `region`/`base_uri` (an EU account needs the EU endpoint)"
    );
    Refusals {
        bad_payload: "New Relic refused the payload (HTTP 400)",
        bad_key: "New Relic refused the key",
        key_fix: &key_fix,
        redirect_fix: "set `region` or `base_uri` to the Log API endpoint itself",
    }
    .classify(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(status: u16, headers: &[(String, String)]) -> Delivery {
        classify(
            &Response {
                id: 3,
                status,
                headers,
                body: b"{\"error\":\"x\"}",
                transport_error: None,
            },
            "license_key",
        )
    }

    #[test]
    fn statuses() {
        assert_eq!(delivery(202, &[]), Delivery::Ok);
        assert_eq!(delivery(413, &[]), Delivery::SplitAndRetry);
        for status in [408, 500, 502, 503, 504, 599] {
            assert_eq!(delivery(status, &[]), Delivery::Retry(None), "{status}");
        }
        assert_eq!(
            delivery(429, &[("Retry-After".into(), "10".into())]),
            Delivery::Retry(Some(10_000))
        );
        assert!(matches!(delivery(400, &[]), Delivery::FailPermanent(r) if r.contains("HTTP 400")));
        assert!(
            matches!(delivery(403, &[]), Delivery::FailPermanent(r) if r.contains("secret `license_key`"))
        );
        assert!(matches!(delivery(404, &[]), Delivery::FailPermanent(r) if r.contains("404")));
        assert!(matches!(delivery(307, &[]), Delivery::FailPermanent(r) if r.contains("redirect")));
        let refused = Response {
            id: 1,
            status: 0,
            headers: &[],
            body: b"",
            transport_error: Some("timed out"),
        };
        assert_eq!(classify(&refused, "api_key"), Delivery::Retry(None));
    }
}
