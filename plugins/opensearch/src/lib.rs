//! `opensearch`: an output plugin that sends logs to OpenSearch or Elasticsearch through the
//! Bulk API, what FireLens users get from Fluent Bit's `es` and `opensearch` outputs (Amazon
//! OpenSearch Service, OpenSearch Serverless, Elastic Cloud, self-managed clusters), with the
//! same options.
//!
//! Each batch becomes one or more `POST`s to `http(s)://host:port[path]/_bulk` whose body is
//! an action line and a document line per event ([`bulk`]), cut at `max_request_bytes`; the
//! router gzips the body (`compress gzip`), builds `Authorization: Basic …` from the
//! operator's secret `basic_auth` (`"basic:USER:env:VARIABLE"`), and signs the request with
//! AWS SigV4 when the output has the `aws_sigv4` grant, so neither a password nor AWS
//! credentials enter the plugin.
//!
//! ```toml
//! [[outputs]]
//! type = "wasm"
//! path = "/usr/lib/wasm-router/plugins/opensearch.wasm"
//! allow_hosts = ["https://search-logs-abc.us-east-1.es.amazonaws.com"]
//! aws_sigv4 = { service = "es", region = "us-east-1" }
//! max_response_bytes = "16MiB"
//! config = { host = "search-logs-abc.us-east-1.es.amazonaws.com", port = 443, tls = true, index = "logs", suppress_type_name = true }
//! ```
//!
//! Each item of a bulk answer is delivered, retried or failed on its own ([`answer`]), and
//! reported to the router with [`report_items`]: only the documents refused with 429 or 5xx are
//! sent again, those refused for good are dead-lettered and counted under the error's type.
//! Events whose body is not a record are left out and counted (`events_malformed`); so are
//! events that `update`/`upsert` cannot write for want of an id (`events_without_id`).

pub mod answer;
pub mod bulk;
pub mod config;
pub mod strftime;

pub use config::{OpenSearch, OpenSearchConfig};

use bulk::{Bodies, write_entry};
use config::BASIC_AUTH_SECRET;
use wasm_router_sdk::output::{Delivery, Output, Request, Response, report_items};
use wasm_router_sdk::{Batch, Error, log, metrics, output};

/// The bytes of a request body or an answer written to the log by `trace_output` /
/// `trace_error`.
const TRACE_BYTES: usize = 4096;

#[output(
    name = "opensearch",
    description = "Sends logs to OpenSearch or Elasticsearch (Bulk API), with the options of Fluent Bit's es and opensearch outputs; per-item results: only documents refused with 429/5xx are sent again."
)]
impl Output for OpenSearch {
    fn encode(&self, batch: &Batch<'_>) -> Result<Vec<Request>, Error> {
        let mut bodies = Bodies::new(self.max_request_bytes);
        let mut entry = Vec::new();
        let (mut malformed, mut without_id, mut first_problem) = (0u64, 0u64, None);
        for event in batch.events() {
            match write_entry(self, &event, &mut entry) {
                Ok(()) => bodies.push(event.index(), &entry),
                Err(problem) => {
                    if problem.contains("id_key") {
                        without_id += 1;
                    } else {
                        malformed += 1;
                    }
                    first_problem
                        .get_or_insert_with(|| format!("event {}: {problem}", event.index()));
                }
            }
        }
        if malformed + without_id > 0 {
            metrics::counter_add("events_malformed", malformed);
            metrics::counter_add("events_without_id", without_id);
            log::warn!(
                "{} event(s) left out; first: {}",
                malformed + without_id,
                first_problem.unwrap_or_default()
            );
        }
        Ok(bodies
            .finish()
            .into_iter()
            .map(|body| {
                if self.trace_output {
                    log::info!(
                        "bulk request to {}: {}",
                        self.url,
                        String::from_utf8_lossy(wasm_router_sdk::vendor::cut_at_char_boundary(
                            &body.bytes,
                            TRACE_BYTES
                        ))
                    );
                }
                let mut request = Request::post(&self.url)
                    .header("Content-Type", "application/x-ndjson")
                    .body(body.bytes)
                    .events(body.events);
                if self.basic_auth {
                    request = request.secret_header("Authorization", BASIC_AUTH_SECRET, "Basic ");
                }
                if self.gzip { request.gzip() } else { request }
            })
            .collect())
    }

    fn on_response(&self, response: &Response<'_>) -> Delivery {
        let verdict = answer::classify(response, self.operation);
        if verdict.failed + verdict.retried > 0 {
            metrics::counter_add("items_failed", verdict.failed as u64);
            metrics::counter_add("items_retried", verdict.retried as u64);
            if self.trace_error {
                log::error!(
                    "bulk answer with errors ({} failed, {} to retry): {}",
                    verdict.failed,
                    verdict.retried,
                    response.body_text(TRACE_BYTES)
                );
            }
        }
        report_items(verdict.items);
        verdict.delivery
    }
}
