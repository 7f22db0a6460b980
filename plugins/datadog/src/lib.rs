//! `datadog`: an output plugin that sends logs to Datadog's Logs intake, HTTP API v2
//! (`POST https://http-intake.logs.{site}/api/v2/logs`), what FireLens users get from Fluent
//! Bit's `datadog` output, with the same options.
//!
//! Each batch becomes one or more requests whose body is a JSON array of log entries
//! ([`entry`]), split at Datadog's limits ([`limits`]: 5 MB per payload uncompressed, 1000
//! entries); the router gzips the body (`compress`, on by default) and puts the operator's
//! secret `api_key` into the `DD-API-KEY` header, so the key never enters the plugin.
//! Responses are classified as Datadog documents them ([`classify`]).
//!
//! ```toml
//! [[outputs]]
//! type = "wasm"
//! path = "/usr/lib/wasm-router/plugins/datadog.wasm"
//! allow_hosts = ["https://http-intake.logs.datadoghq.eu"]
//! secrets = { api_key = "env:DD_API_KEY" }
//! config = { site = "datadoghq.eu", dd_service = "api", dd_source = "nginx", dd_tags = "env:prod" }
//! ```
//!
//! Events whose body is not a msgpack map, and entries too large for any payload, are left out
//! of every request, logged once per batch and counted (`events_malformed`,
//! `entries_too_large`); messages cut to Datadog's 1 MB entry size count `entries_truncated`.

pub mod classify;
pub mod config;
pub mod entry;
pub mod limits;

pub use config::{Datadog, DatadogConfig};

use entry::{Written, message_len, write_entry};
use limits::MAX_ENTRY_BYTES;
use wasm_router_sdk::output::{Delivery, Output, Request, Response};
use wasm_router_sdk::vendor::{EntryArrays, Tally};
use wasm_router_sdk::{Batch, Error, output};

/// The header Datadog reads the API key from.
pub const API_KEY_HEADER: &str = "DD-API-KEY";

/// The operator's secret that holds the API key.
pub const API_KEY_SECRET: &str = "api_key";

impl Datadog {
    fn request(&self, body: wasm_router_sdk::output::JsonChunk) -> Request {
        let mut request = Request::post(&self.url)
            .header("content-type", "application/json")
            .header("dd-evp-origin", "wasm-router")
            .secret_header(API_KEY_HEADER, API_KEY_SECRET, "")
            .json_chunk(body);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if self.gzip { request.gzip() } else { request }
    }
}

#[output(
    name = "datadog",
    description = "Sends logs to Datadog's Logs intake (API v2), with the options of Fluent Bit's datadog output.",
    hosts = [
        "https://http-intake.logs.datadoghq.com",
        "https://http-intake.logs.us3.datadoghq.com",
        "https://http-intake.logs.us5.datadoghq.com",
        "https://http-intake.logs.datadoghq.eu",
        "https://http-intake.logs.ap1.datadoghq.com",
        "https://http-intake.logs.ap2.datadoghq.com",
        "https://http-intake.logs.uk1.datadoghq.com",
        "https://http-intake.logs.ddog-gov.com",
        "https://http-intake.logs.us2.ddog-gov.com"
    ],
    secrets = ["api_key"]
)]
impl Output for Datadog {
    fn encode(&self, batch: &Batch<'_>) -> Result<Vec<Request>, Error> {
        let entry_limit = MAX_ENTRY_BYTES.min(self.max_request_bytes.saturating_sub(2));
        let mut arrays = EntryArrays::new(self.max_request_bytes, self.max_entries, entry_limit);
        for event in batch.events() {
            arrays.push(
                event.index(),
                |limit, out| {
                    write_entry(self, &event, limit, out).map(|w| w == Written::MessageTruncated)
                },
                || message_len(self, &event),
            )?;
        }
        let cut_to = format!("to Datadog's {MAX_ENTRY_BYTES}-byte entry size");
        let tally = Tally {
            malformed: "events_malformed",
            too_large: "entries_too_large",
            truncated: "entries_truncated",
            cut_to: &cut_to,
            payload_bytes: self.max_request_bytes,
        };
        Ok(arrays
            .finish(&tally)
            .into_iter()
            .map(|body| self.request(body))
            .collect())
    }

    fn on_response(&self, response: &Response<'_>) -> Delivery {
        classify::classify(response)
    }
}
