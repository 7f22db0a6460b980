//! Test guest `sdk-json-output`: what `json-output` does, written with the SDK's `#[output]`:
//! JSON-array POSTs to config `url` (split at `max_body_bytes`, default 1 MiB), gzip if
//! `gzip`, the secret `api_key` in header `api_key_header` if set; responses classified by the
//! SDK's default (2xx ok, 408/429/5xx retry with Retry-After, 413 split, other 4xx permanent).

use wasm_router_sdk::output::{JsonArrayBuilder, Output, Request};
use wasm_router_sdk::{Batch, Error, output};

/// The operator's config.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonOutput {
    /// Where to POST.
    url: String,
    /// Ask the router to gzip bodies.
    #[serde(default)]
    gzip: bool,
    /// The header that carries the secret `api_key`.
    #[serde(default)]
    api_key_header: Option<String>,
    /// The largest body, in bytes.
    #[serde(default = "default_max_body_bytes")]
    max_body_bytes: usize,
}

fn default_max_body_bytes() -> usize {
    1 << 20
}

#[output(name = "sdk-json-output", hosts = ["http://127.0.0.1"], secrets = ["api_key"])]
impl Output for JsonOutput {
    fn encode(&self, batch: &Batch<'_>) -> Result<Vec<Request>, Error> {
        let mut bodies = JsonArrayBuilder::new(self.max_body_bytes, usize::MAX);
        for event in batch.events() {
            bodies.push_record(event.index(), event.body())?;
        }
        Ok(bodies
            .finish()
            .into_iter()
            .map(|chunk| {
                let mut request = Request::post(&self.url)
                    .header("content-type", "application/json")
                    .json_chunk(chunk);
                if let Some(header) = &self.api_key_header {
                    request = request.secret_header(header, "api_key", "");
                }
                if self.gzip { request.gzip() } else { request }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_router_sdk::PluginConfig;
    use wasm_router_sdk::output::{Delivery, Response};
    use wasm_router_sdk::testing::{TestBatch, TestEvent};

    #[test]
    fn encodes_split_bodies_and_classifies() {
        let output = JsonOutput::from_json(
            r#"{"url": "http://127.0.0.1:9/x", "max_body_bytes": 40, "api_key_header": "X-Key"}"#,
        )
        .unwrap();
        let events: Vec<_> = (0..3).map(|i| TestEvent::json(record(i))).collect();
        let requests = output.encode(&TestBatch::new(&events).view()).unwrap();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].body, br#"[{"log":"line 0"},{"log":"line 1"}]"#);
        assert_eq!(requests[1].events, [2]);
        assert_eq!(requests[0].secret_headers[0].header, "X-Key");
        let response = Response {
            id: requests[0].id,
            status: 413,
            headers: &[],
            body: b"",
            transport_error: None,
        };
        assert_eq!(output.on_response(&response), Delivery::SplitAndRetry);
    }

    fn record(i: usize) -> wasm_router_sdk::serde_json::Value {
        wasm_router_sdk::serde_json::json!({"log": format!("line {i}")})
    }
}
