//! What a Datadog Logs intake answer means for the request, from the status codes Datadog
//! documents for `POST /api/v2/logs` (<https://docs.datadoghq.com/api/latest/logs/send-logs/>):
//!
//! | Status | Datadog's meaning | Delivery |
//! |---|---|---|
//! | 2xx (202) | accepted for processing | ok |
//! | 400 | bad request (payload formatting) | fail-permanent |
//! | 401, 403 | missing or invalid API key | fail-permanent |
//! | 408 | request timeout, retry later | retry |
//! | 413 | payload too large | split-and-retry |
//! | 429 | too many requests, retry later | retry (after `Retry-After`) |
//! | 5xx | server error, retry later | retry (after `Retry-After`) |
//!
//! Not documented, decided here: a 3xx (the router never follows redirects: the URL is wrong)
//! and any other 4xx (404 from a proxy on the wrong path…) fail permanently with the status and
//! the start of the body: sending the same request again cannot succeed. A transport error
//! (no response) is retried.

use wasm_router_sdk::output::{Delivery, Response};
use wasm_router_sdk::vendor::Refusals;

/// Datadog's wording of the refusals.
const REFUSALS: Refusals<'static> = Refusals {
    bad_payload: "Datadog refused the payload (HTTP 400 bad request)",
    bad_key: "Datadog refused the API key",
    key_fix: "check the secret `api_key`, the site, and that Log Management is active",
    redirect_fix: "set `site` or `url` to the intake itself",
};

/// Classifies one response of the Logs intake.
pub fn classify(response: &Response<'_>) -> Delivery {
    REFUSALS.classify(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(status: u16, headers: &[(String, String)], body: &[u8]) -> Delivery {
        classify(&Response {
            id: 7,
            status,
            headers,
            body,
            transport_error: None,
        })
    }

    #[test]
    fn documented_statuses() {
        assert_eq!(delivery(202, &[], b"{}"), Delivery::Ok);
        assert_eq!(delivery(200, &[], b""), Delivery::Ok);
        assert_eq!(delivery(413, &[], b""), Delivery::SplitAndRetry);
        assert_eq!(delivery(408, &[], b""), Delivery::Retry(None));
        assert_eq!(delivery(500, &[], b""), Delivery::Retry(None));
        assert_eq!(delivery(503, &[], b""), Delivery::Retry(None));
        assert_eq!(
            delivery(429, &[("Retry-After".into(), "3".into())], b""),
            Delivery::Retry(Some(3000))
        );
        let Delivery::FailPermanent(reason) = delivery(400, &[], br#"{"errors":["bad"]}"#) else {
            panic!("400 must fail permanently")
        };
        assert!(
            reason.contains("HTTP 400") && reason.contains("bad"),
            "{reason}"
        );
        for status in [401, 403] {
            let Delivery::FailPermanent(reason) = delivery(status, &[], b"Forbidden") else {
                panic!("{status} must fail permanently")
            };
            assert!(reason.contains("secret `api_key`"), "{reason}");
        }
    }

    #[test]
    fn undocumented_statuses_and_transport_errors() {
        assert!(
            matches!(delivery(404, &[], b"no route"), Delivery::FailPermanent(r) if r.contains("404: no route"))
        );
        let moved = delivery(301, &[("Location".into(), "https://elsewhere".into())], b"");
        assert!(matches!(moved, Delivery::FailPermanent(r) if r.contains("https://elsewhere")));
        let refused = Response {
            id: 1,
            status: 0,
            headers: &[],
            body: b"",
            transport_error: Some("connection refused"),
        };
        assert_eq!(classify(&refused), Delivery::Retry(None));
    }
}
