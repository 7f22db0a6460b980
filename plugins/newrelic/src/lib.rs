//! `newrelic`: an output plugin that sends logs to New Relic's Log API (`POST …/log/v1`), what
//! FireLens users get from newrelic-fluent-bit-output, with its options where they still mean
//! something ([`config`]).
//!
//! Each batch becomes one or more requests carrying the detailed JSON payload ([`payload`]):
//! the batch's common attributes once, then one log per event, split at `max_records` and at
//! `max_payload_bytes` (New Relic's 10^6 bytes per POST by default). The router gzips the body
//! (`compress`, on by default) and puts the operator's secret into the key header (`Api-Key`
//! from `api_key`, or `X-License-Key` from `license_key`), so the key never enters the plugin.
//! Responses are classified in [`classify`].
//!
//! ```toml
//! [[outputs]]
//! type = "wasm"
//! path = "/usr/lib/wasm-router/plugins/newrelic.wasm"
//! allow_hosts = ["https://log-api.eu.newrelic.com"]
//! secrets = { license_key = "env:NEW_RELIC_LICENSE_KEY" }
//! config = { region = "EU", auth = "license_key", common_attributes = { "service.name" = "api" } }
//! ```
//!
//! Events whose body is not a msgpack map, and logs too large for a payload even with their
//! message cut, are left out of every request, logged once per batch and counted
//! (`events_malformed`, `logs_too_large`); cut messages count `messages_truncated`.

pub mod classify;
pub mod config;
pub mod payload;

pub use config::{Auth, NewRelic, NewRelicConfig};

use payload::{SUFFIX, message_len, prefix, write_log};
use wasm_router_sdk::output::{Delivery, Output, Request, Response};
use wasm_router_sdk::vendor::{EntryArrays, Tally};
use wasm_router_sdk::{Batch, Error, output};

#[output(
    name = "newrelic",
    description = "Sends logs to New Relic's Log API (detailed JSON payload), with the options of newrelic-fluent-bit-output.",
    hosts = [
        "https://log-api.newrelic.com",
        "https://log-api.eu.newrelic.com",
        "https://gov-log-api.newrelic.com"
    ],
    secrets = ["api_key", "license_key"]
)]
impl Output for NewRelic {
    fn encode(&self, batch: &Batch<'_>) -> Result<Vec<Request>, Error> {
        let head = prefix(self, batch.tag());
        let overhead = head.len() + SUFFIX.len();
        let Some(array_limit) = self.max_payload_bytes.checked_sub(overhead + 16) else {
            return Err(Error::msg(format!(
                "the common attributes take {overhead} of the {} bytes of a payload: shorten `common_attributes` or raise `max_payload_bytes`",
                self.max_payload_bytes
            )));
        };
        let log_limit = array_limit - 2;
        let mut arrays = EntryArrays::new(array_limit, self.max_records, log_limit);
        for event in batch.events() {
            arrays.push(
                event.index(),
                |limit, out| write_log(self, &event, limit, out),
                || message_len(self, &event),
            )?;
        }
        let cut_to = format!("to fit a {}-byte payload", self.max_payload_bytes);
        let tally = Tally {
            malformed: "events_malformed",
            too_large: "logs_too_large",
            truncated: "messages_truncated",
            cut_to: &cut_to,
            payload_bytes: self.max_payload_bytes,
        };
        Ok(arrays
            .finish(&tally)
            .into_iter()
            .map(|array| {
                let mut body = Vec::with_capacity(overhead + array.body.len());
                body.extend_from_slice(&head);
                body.extend_from_slice(&array.body);
                body.extend_from_slice(SUFFIX);
                let request = Request::post(&self.url)
                    .header("content-type", "application/json")
                    .secret_header(self.auth.header(), self.auth.secret(), "")
                    .body(body)
                    .events(array.events);
                if self.gzip { request.gzip() } else { request }
            })
            .collect())
    }

    fn on_response(&self, response: &Response<'_>) -> Delivery {
        classify::classify(response, self.auth.secret())
    }
}
