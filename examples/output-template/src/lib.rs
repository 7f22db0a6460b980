//! `my-output`: a starting point for a wasm-router output plugin.
//!
//! - Each batch becomes one or more `POST`s of a JSON array of records to `url`, split so no
//!   body passes `max_body_bytes`, gzipped by the router.
//! - The secret `api_key` goes in the `Authorization` header as `Bearer …`: the router
//!   injects it, the plugin never sees it.
//! - Responses: 2xx delivered; 408, 429 and 5xx retried (honouring `Retry-After`); 413 split
//!   and retried; other 4xx failed permanently (the SDK's default classification).

use wasm_router_sdk::output::{JsonArrayBuilder, Output, Request};
use wasm_router_sdk::{Batch, Error, output};

/// The operator's config (`config = { … }` of the `[[outputs]]` entry). Its JSON Schema,
/// doc comments included, is what `wasm-router plugin inspect` shows.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MyOutput {
    /// Where to POST the events (a host the operator allows with `allow_hosts`).
    pub url: String,
    /// The largest request body, in bytes, before compression.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

fn default_max_body_bytes() -> usize {
    1 << 20
}

/// The output: batches in, requests out.
#[output(
    name = "my-output",
    description = "Sends batches as JSON arrays to an HTTP endpoint.",
    hosts = ["https://logs.example.com"],
    secrets = ["api_key"]
)]
impl Output for MyOutput {
    fn encode(&self, batch: &Batch<'_>) -> Result<Vec<Request>, Error> {
        let mut bodies = JsonArrayBuilder::new(self.max_body_bytes, usize::MAX);
        for event in batch.events() {
            bodies.push_record(event.index(), event.body())?;
        }
        Ok(bodies
            .finish()
            .into_iter()
            .map(|chunk| {
                Request::post(&self.url)
                    .header("content-type", "application/json")
                    .secret_header("authorization", "api_key", "Bearer ")
                    .gzip()
                    .json_chunk(chunk)
            })
            .collect())
    }
}
