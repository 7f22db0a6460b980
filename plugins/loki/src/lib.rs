//! `loki`: an output plugin that sends logs to Grafana Loki's push API (JSON,
//! `POST /loki/api/v1/push`), what FireLens users get from Fluent Bit's `loki` output, with
//! the same options.
//!
//! Each batch becomes one or more pushes whose streams are the batch's events grouped by their
//! labels ([`labels`]), each entry the event time in nanoseconds and its line ([`payload`]).
//! The router gzips the body (`compress gzip`) and builds `Authorization: Basic …` from the
//! operator's secret `basic_auth` (`"basic:USER:env:VARIABLE"`), so the password never enters
//! the plugin; `tenant_id` is sent as `X-Scope-OrgID`.
//!
//! ```toml
//! [[outputs]]
//! type = "wasm"
//! path = "/usr/lib/wasm-router/plugins/loki.wasm"
//! allow_hosts = ["https://logs-prod-us-west2.grafana.net"]
//! secrets = { basic_auth = "basic:123456:env:GRAFANA_TOKEN" }
//! config = { host = "logs-prod-us-west2.grafana.net", port = 443, tls = true, basic_auth = true, labels = "job=firelens, $container_name" }
//! ```
//!
//! Answers: 2xx delivered; 408, 429, 5xx and transport errors retried; 413 split; any other
//! status fails for good (dead-lettered, counted as `http_<status>`), as Fluent Bit's `loki`
//! output does not retry a 4xx. Events whose body is not a map are counted
//! `events_malformed`.

pub mod config;
pub mod labels;
pub mod payload;

pub use config::{Loki, LokiConfig};

use config::BASIC_AUTH_SECRET;
use payload::{Pushes, line};
use wasm_router_sdk::output::{Output, Request};
use wasm_router_sdk::{Batch, Error, log, metrics, output};

#[output(
    name = "loki",
    description = "Sends logs to Grafana Loki's push API (JSON), with the options of Fluent Bit's loki output (labels, label_keys, remove_keys, line_format, drop_single_key, tenant_id; basic auth from the secret `basic_auth`)."
)]
impl Output for Loki {
    fn encode(&self, batch: &Batch<'_>) -> Result<Vec<Request>, Error> {
        let mut pushes = Pushes::default();
        let (mut malformed, mut first_problem) = (0u64, None);
        for event in batch.events() {
            match line(self, &event) {
                Ok(text) => {
                    let labels = self
                        .labels
                        .iter()
                        .filter_map(|l| l.resolve(&event))
                        .collect();
                    pushes.add(event.index(), labels, event.time_ns(), &text);
                }
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
        Ok(pushes
            .finish()
            .into_iter()
            .map(|push| {
                let mut request = Request::post(&self.url)
                    .header("Content-Type", "application/json")
                    .body(push.body())
                    .events(push.events);
                if let Some(tenant) = &self.tenant_id {
                    request = request.header("X-Scope-OrgID", tenant);
                }
                if self.basic_auth {
                    request = request.secret_header("Authorization", BASIC_AUTH_SECRET, "Basic ");
                }
                if self.gzip { request.gzip() } else { request }
            })
            .collect())
    }
}
