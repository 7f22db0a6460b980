//! What the router measures about the requests of WASM outputs: requests by result
//! (`2xx` … `5xx`, `transport_error`) and the bytes sent, as
//! `wasm_output_requests_total{output, result}` and `wasm_output_request_bytes_total{output}`.

use crate::ops::metrics::Metrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::Arc;

/// An output and the result of a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The output's id.
    pub output: String,
    /// `1xx` … `5xx`, or `transport_error`.
    pub result: &'static str,
}

/// An output.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutputLabels {
    /// The output's id.
    pub output: String,
}

struct Families {
    requests: Family<RequestLabels, Counter>,
    bytes: Family<OutputLabels, Counter>,
}

/// The request counters of one output.
#[derive(Clone)]
pub struct RequestTelemetry {
    output: String,
    families: Arc<Families>,
    bytes: Counter,
}

impl RequestTelemetry {
    /// The counters of output `output` in `metrics`.
    pub fn new(metrics: &Arc<Metrics>, output: &str) -> Self {
        let families = metrics.families(|r| {
            let f = Families {
                requests: Family::default(),
                bytes: Family::default(),
            };
            r.register(
                "wasm_output_requests",
                "Requests sent for WASM output plugins, by result",
                f.requests.clone(),
            );
            r.register(
                "wasm_output_request_bytes",
                "Request body bytes sent for WASM output plugins (after compression)",
                f.bytes.clone(),
            );
            f
        });
        let bytes = families
            .bytes
            .get_or_create(&OutputLabels {
                output: output.to_string(),
            })
            .clone();
        RequestTelemetry {
            bytes,
            output: output.to_string(),
            families,
        }
    }

    /// A request of `bytes` body bytes was sent and answered with `status` (0: no answer).
    pub fn request(&self, bytes: usize, status: u16) {
        let result = match status {
            0 => "transport_error",
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.bytes.inc_by(bytes as u64);
        self.families
            .requests
            .get_or_create(&RequestLabels {
                output: self.output.clone(),
                result,
            })
            .inc();
    }
}
