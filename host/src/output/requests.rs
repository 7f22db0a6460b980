//! How well outputs batch: `output_requests_total{component_id, destination}` counts every
//! request an output sends (a failed one costs the destination's quota too) and
//! `output_request_events{component_id}` is a histogram of the events each accepted request
//! carried. An operator reads calls per second per destination against the destination's quota,
//! and the mean events per request (sum / count, also shown by `wasm-router top`) to see what the
//! flush window ([`super::window`]) achieves.
//!
//! A destination is what one request goes to — a log stream, a delivery stream, a Kinesis
//! stream, an intake's origin. Log streams can be named after tags, which senders choose, so an
//! output keeps at most [`MAX_DESTINATIONS`] destination series and counts the others under
//! `destination="other"`.

use crate::ops::metrics::{Component, ComponentLabels, Metrics};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Most destination series of one output; the others are counted as `other`.
pub const MAX_DESTINATIONS: usize = 64;

/// Labels of `output_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationLabels {
    /// The output's id.
    pub component_id: String,
    /// Where the requests went (`other` past [`MAX_DESTINATIONS`]).
    pub destination: String,
}

type EventsFamily = Family<ComponentLabels, Histogram, fn() -> Histogram>;

/// Buckets of 1, 2, 4, … 16,384 events.
fn events_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 15))
}

/// The request metric families, registered once per registry.
pub struct RequestFamilies {
    requests: Family<DestinationLabels, Counter>,
    events: EventsFamily,
    /// The destinations each output has a series for.
    seen: Mutex<HashMap<String, HashSet<String>>>,
}

impl RequestFamilies {
    /// The families of `metrics`, registered on first use.
    pub fn of(metrics: &Arc<Metrics>) -> Arc<RequestFamilies> {
        metrics.families(|r| {
            let f = RequestFamilies {
                requests: Family::default(),
                events: EventsFamily::new_with_constructor(events_histogram),
                seen: Mutex::new(HashMap::new()),
            };
            r.register(
                "output_requests",
                "Requests an output sent, by destination (failed ones included)",
                f.requests.clone(),
            );
            r.register(
                "output_request_events",
                "Events carried by each request a destination accepted",
                f.events.clone(),
            );
            f
        })
    }

    /// The label of `destination` for `component`: itself (with `"` as `'` and `\` as `/`:
    /// the exposition format's escapes are not applied by prometheus-client), or `other` past
    /// the cap.
    fn destination(&self, component: &Component, destination: &str) -> String {
        let destination: String = destination
            .chars()
            .map(|c| match c {
                '"' => '\'',
                '\\' => '/',
                c if c.is_control() => ' ',
                c => c,
            })
            .collect();
        let destination = destination.as_str();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let known = seen.entry(component.id.clone()).or_default();
        if known.contains(destination) {
            return destination.to_string();
        }
        if known.len() < MAX_DESTINATIONS {
            known.insert(destination.to_string());
            return destination.to_string();
        }
        "other".to_string()
    }

    fn count(&self, component: &Component, destination: &str) {
        let labels = DestinationLabels {
            component_id: component.id.clone(),
            destination: self.destination(component, destination),
        };
        self.requests.get_or_create(&labels).inc();
    }
}

/// `component` sent a request to `destination` that was accepted with `events` events.
pub fn request_accepted(
    metrics: &Arc<Metrics>,
    component: &Component,
    destination: &str,
    events: u64,
) {
    let families = RequestFamilies::of(metrics);
    families.count(component, destination);
    families
        .events
        .get_or_create(&component.labels())
        .observe(events as f64);
}

/// `component` sent a request to `destination` that failed.
pub fn request_failed(metrics: &Arc<Metrics>, component: &Component, destination: &str) {
    RequestFamilies::of(metrics).count(component, destination);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_per_destination_up_to_the_cap() {
        let metrics = Metrics::new();
        let out = Component::output("cw");
        request_accepted(&metrics, &out, "group \"g\" stream \"a\"", 10);
        request_accepted(&metrics, &out, "group \"g\" stream \"a\"", 30);
        request_failed(&metrics, &out, "group \"g\" stream \"a\"");
        for i in 0..MAX_DESTINATIONS + 5 {
            request_failed(&metrics, &out, &format!("stream {i}"));
        }
        let text = metrics.encode();
        assert!(
            text.contains(
                "output_requests_total{component_id=\"cw\",destination=\"group 'g' stream 'a'\"} 3"
            ),
            "{text}"
        );
        assert!(
            text.contains("output_requests_total{component_id=\"cw\",destination=\"other\"} 6"),
            "{text}"
        );
        assert!(
            text.contains(
                "output_request_events_sum{component_kind=\"output\",component_id=\"cw\"} 40.0"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "output_request_events_count{component_kind=\"output\",component_id=\"cw\"} 2"
            ),
            "{text}"
        );
    }
}
