//! `http`: an output plugin that sends logs to any HTTP endpoint, what FireLens users get from
//! Fluent Bit's `http` output (Sumo Logic, Loggly, Sematext, Logstash, Dynatrace…), with the
//! same options.
//!
//! Each batch becomes one or more `POST`s to `http(s)://host:port/uri` whose body is the
//! batch's records in the configured [`format`](config::Format) ([`body`]), cut at
//! `max_request_bytes`; the router gzips the body (`compress gzip`) and builds the
//! `Authorization: Basic …` header from the operator's secret `basic_auth`
//! (`"basic:USER:env:VARIABLE"`), so the password never enters the plugin.
//!
//! ```toml
//! [[outputs]]
//! type = "wasm"
//! path = "/usr/lib/wasm-router/plugins/http.wasm"
//! allow_hosts = ["https://logs.example.com"]
//! secrets = { basic_auth = "basic:ingest:env:HTTP_PASSWD" }
//! config = { host = "logs.example.com", tls = true, uri = "/bulk", format = "json_lines", basic_auth = true }
//! ```
//!
//! Answers are classified as Fluent Bit's `http` output does ([`classify`]). Events whose
//! body is not a msgpack map are left out of every request, logged once per batch and
//! counted (`events_malformed`).

pub mod body;
pub mod classify;
pub mod config;
pub mod date;

pub use config::{Http, HttpConfig};

use body::{Bodies, write_event};
use config::BASIC_AUTH_SECRET;
use wasm_router_sdk::output::{Delivery, Output, Request, Response};
use wasm_router_sdk::{Batch, Error, log, metrics, output};

#[output(
    name = "http",
    description = "Sends logs to an HTTP endpoint, with the options of Fluent Bit's http output (json, json_lines, json_stream or msgpack bodies; headers; basic auth from the secret `basic_auth`; gzip)."
)]
impl Output for Http {
    fn encode(&self, batch: &Batch<'_>) -> Result<Vec<Request>, Error> {
        let mut bodies = Bodies::new(self.format, self.max_request_bytes);
        let mut element = Vec::new();
        let (mut malformed, mut first_problem) = (0u64, None);
        for event in batch.events() {
            match write_event(self, &event, &mut element) {
                Ok(()) => bodies.push(event.index(), &element),
                Err(error) => {
                    malformed += 1;
                    first_problem
                        .get_or_insert_with(|| format!("event {}: {error}", event.index()));
                }
            }
        }
        if malformed > 0 {
            metrics::counter_add("events_malformed", malformed);
            log::warn!(
                "{malformed} event(s) left out: not a record; first: {}",
                first_problem.unwrap_or_default()
            );
        }
        Ok(bodies
            .finish()
            .into_iter()
            .map(|body| {
                let mut request = Request::new(self.method, &self.url)
                    .body(body.bytes)
                    .events(body.events);
                for (name, value) in &self.headers {
                    request = request.header(name, value);
                }
                if let Some(name) = &self.header_tag {
                    request = request.header(name, batch.tag());
                }
                if self.basic_auth {
                    request = request.secret_header("Authorization", BASIC_AUTH_SECRET, "Basic ");
                }
                if self.gzip { request.gzip() } else { request }
            })
            .collect())
    }

    fn on_response(&self, response: &Response<'_>) -> Delivery {
        classify::classify(response, self.log_response_payload)
    }
}
