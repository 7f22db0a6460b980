//! Fluent Bit's v1 monitoring API, served beside ours by the ops HTTP server:
//! `/api/v1/metrics` (JSON), `/api/v1/metrics/prometheus` (`fluentbit_*` series) and, with
//! `[SERVICE] Health_Check On`, `/api/v1/health` as Fluent Bit computes it.
//!
//! Nothing here counts: every value is read from the router's one registry ([`Metrics`]) and
//! shown under the instance's Fluent Bit name ([`Instances`], the one map from our component
//! ids to Fluent Bit's names). Shapes follow Fluent Bit's `src/flb_metrics_exporter.c`,
//! `src/http_server/api/v1/metrics.c` and `health.c`:
//!
//! | Fluent Bit | ours |
//! |---|---|
//! | `input.records` / `bytes` | `component_received_events_total` / `component_received_bytes_total` |
//! | `filter.records` / `bytes` | the same, of the filter |
//! | `filter.drop_records` | `component_discarded_events_total` of the filter (every reason) |
//! | `filter.add_records` | events passed on beyond those received and not dropped |
//! | `output.proc_records` | `component_sent_events_total` (delivered and acknowledged) |
//! | `output.errors` | `component_deliveries_failed_total{reason="permanent"}` |
//! | `output.retries` | `component_retries_total` |
//! | `output.retries_failed` | `component_deliveries_failed_total{reason="retries_exhausted"` or `"retry_expired"}` |
//! | `output.dropped_records` | `component_discarded_events_total` of the output (every reason) |
//! | `output.retried_records` | `component_retried_events_total` |
//!
//! Not shown, because nothing counts them: `output.proc_bytes` and `filter.drop_bytes`.

use super::metrics::Metrics;
use super::prometheus_text::{self, Sample};
use serde::Deserialize;
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// One input, filter or output, with the name Fluent Bit gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// `input`, `filter` or `output`.
    pub kind: &'static str,
    /// Our component id (the `component_id` label of our metrics).
    pub component_id: String,
    /// Fluent Bit's name: the `Alias`, else `<plugin>.<n>`.
    pub name: String,
}

/// The instances of a running router, in config order, named as Fluent Bit names them.
#[derive(Clone, Debug, Default)]
pub struct Instances {
    list: Vec<Instance>,
}

impl Instances {
    /// Add the next instance of `kind` (`input`, `filter`, `output`), whose metrics are under
    /// `component_id`: named `alias` when set, else `<plugin>.<n>`, `n` counting every
    /// instance of that kind before it (Fluent Bit's `instance_id()` in `flb_input.c`,
    /// `flb_filter.c`, `flb_output.c`: `forward.0`, `tail.1`, `cloudwatch_logs.0`).
    pub fn push(
        &mut self,
        kind: &'static str,
        component_id: &str,
        plugin: &str,
        alias: Option<&str>,
    ) {
        let n = self.list.iter().filter(|i| i.kind == kind).count();
        let name = match alias {
            Some(alias) => alias.to_string(),
            None => format!("{plugin}.{n}"),
        };
        self.list.push(Instance {
            kind,
            component_id: component_id.to_string(),
            name,
        });
    }

    /// Every instance, in config order.
    pub fn all(&self) -> &[Instance] {
        &self.list
    }
}

/// One instance's counts: its Fluent Bit name and `(field, value)` in Fluent Bit's order.
pub type InstanceCounts = (String, Vec<(&'static str, u64)>);

/// The counts of every instance, in Fluent Bit's `/api/v1/metrics` shape.
#[derive(Debug, Default, PartialEq)]
pub struct Snapshot {
    /// The instances of each kind (`input`, `filter`, `output`), in config order.
    pub sections: [(&'static str, Vec<InstanceCounts>); 3],
}

const KINDS: [&str; 3] = ["input", "filter", "output"];

/// Fluent Bit's fields of each kind, in its order.
fn fields(kind: &str, of: &Totals) -> Vec<(&'static str, u64)> {
    match kind {
        "input" => vec![("records", of.received), ("bytes", of.received_bytes)],
        "filter" => vec![
            ("drop_records", of.discarded),
            (
                "add_records",
                (of.sent + of.discarded).saturating_sub(of.received),
            ),
            ("records", of.received),
            ("bytes", of.received_bytes),
        ],
        _ => vec![
            ("proc_records", of.sent),
            ("errors", of.failed_permanently),
            ("retries", of.retries),
            ("retries_failed", of.retries_failed),
            ("dropped_records", of.discarded),
            ("retried_records", of.retried),
        ],
    }
}

/// Our counters of one component.
#[derive(Default)]
struct Totals {
    received: u64,
    received_bytes: u64,
    sent: u64,
    discarded: u64,
    retries: u64,
    retried: u64,
    failed_permanently: u64,
    retries_failed: u64,
}

impl Totals {
    fn of(samples: &[Sample], kind: &str, id: &str) -> Totals {
        let mut t = Totals::default();
        for s in samples
            .iter()
            .filter(|s| s.label("component_kind") == kind && s.label("component_id") == id)
        {
            let v = s.value as u64;
            match s.name.as_str() {
                "component_received_events_total" => t.received += v,
                "component_received_bytes_total" => t.received_bytes += v,
                "component_sent_events_total" => t.sent += v,
                "component_discarded_events_total" => t.discarded += v,
                "component_retries_total" => t.retries += v,
                "component_retried_events_total" => t.retried += v,
                "component_deliveries_failed_total" => match s.label("reason") {
                    "permanent" => t.failed_permanently += v,
                    _ => t.retries_failed += v,
                },
                _ => {}
            }
        }
        t
    }
}

impl Snapshot {
    /// Read every instance's counts from `metrics`. Instances that share one component id
    /// (two unnamed `forward` inputs) share its counters: they are shown under the first, the
    /// others at 0 (an `Alias` on each counts them apart).
    pub fn read(metrics: &Metrics, instances: &Instances) -> Snapshot {
        let samples = prometheus_text::parse(&metrics.encode()).unwrap_or_default();
        let mut snapshot = Snapshot {
            sections: KINDS.map(|k| (k, Vec::new())),
        };
        for (n, i) in instances.all().iter().enumerate() {
            let first = !instances.all()[..n]
                .iter()
                .any(|o| o.kind == i.kind && o.component_id == i.component_id);
            let totals = if first {
                Totals::of(&samples, i.kind, &i.component_id)
            } else {
                Totals::default()
            };
            if let Some((_, section)) = snapshot.sections.iter_mut().find(|(k, _)| *k == i.kind) {
                section.push((i.name.clone(), fields(i.kind, &totals)));
            }
        }
        snapshot
    }

    /// The sum of output `field` over every output.
    fn output_total(&self, field: &str) -> u64 {
        self.sections[2]
            .1
            .iter()
            .flat_map(|(_, fields)| fields.iter())
            .filter(|(f, _)| *f == field)
            .map(|(_, v)| v)
            .sum()
    }

    /// Fluent Bit's `/api/v1/metrics/prometheus`: one `fluentbit_<kind>_<field>_total{name}`
    /// counter per field of each instance, sorted, each with a timestamp in milliseconds;
    /// then `fluentbit_uptime`, `process_start_time_seconds` and `fluentbit_build_info`.
    pub fn prometheus(&self, uptime_secs: u64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut lines: Vec<(String, String)> = Vec::new();
        for (kind, instances) in &self.sections {
            for (name, fields) in instances {
                for (field, value) in fields {
                    let metric = format!("fluentbit_{kind}_{field}_total");
                    let line = format!(
                        "{metric}{{name=\"{}\"}} {value} {}\n",
                        escape_label(name),
                        now.as_millis()
                    );
                    lines.push((metric, line));
                }
            }
        }
        lines.sort_by(|a, b| a.1.cmp(&b.1));
        let mut out = String::new();
        let mut previous = "";
        for (metric, line) in &lines {
            if metric != previous {
                let _ = writeln!(out, "# HELP {metric} {}", help(metric));
                let _ = writeln!(out, "# TYPE {metric} counter");
                previous = metric;
            }
            out.push_str(line);
        }
        let started = now.as_secs().saturating_sub(uptime_secs);
        let _ = write!(
            out,
            "# HELP fluentbit_uptime Number of seconds that Fluent Bit has been running.\n\
             # TYPE fluentbit_uptime counter\nfluentbit_uptime {uptime_secs}\n\
             # HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n\
             # TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {started}\n\
             # HELP fluentbit_build_info Build version information.\n\
             # TYPE fluentbit_build_info gauge\n\
             fluentbit_build_info{{version=\"{}\",edition=\"wasm-router\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}

fn help(metric: &str) -> &'static str {
    match metric {
        "fluentbit_input_records_total" | "fluentbit_filter_records_total" => {
            "Number of input records."
        }
        "fluentbit_input_bytes_total" | "fluentbit_filter_bytes_total" => "Number of input bytes.",
        "fluentbit_filter_drop_records_total" => "Number of dropped records.",
        "fluentbit_filter_add_records_total" => "Number of added records.",
        "fluentbit_output_proc_records_total" => "Number of processed output records.",
        "fluentbit_output_errors_total" => "Number of output errors.",
        "fluentbit_output_retries_total" => "Number of output retries.",
        "fluentbit_output_retries_failed_total" => {
            "Number of abandoned batches because the maximum number of re-tries was reached."
        }
        "fluentbit_output_dropped_records_total" => "Number of dropped records.",
        "fluentbit_output_retried_records_total" => "Number of retried records.",
        _ => "Fluentbit metrics.",
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `{"input": {"forward.0": {"records": 1000, "bytes": …}}, "filter": {…}, "output": {…}}`,
/// instances in config order.
impl Serialize for Snapshot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Fields<'a>(&'a [(&'static str, u64)]);
        impl Serialize for Fields<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
        struct Section<'a>(&'a [InstanceCounts]);
        impl Serialize for Section<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (name, fields) in self.0 {
                    map.serialize_entry(name, &Fields(fields))?;
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(self.sections.len()))?;
        for (kind, instances) in &self.sections {
            map.serialize_entry(kind, &Section(instances))?;
        }
        map.end()
    }
}

/// Fluent Bit's `/api/v1/storage` (with `storage.metrics on`), in what maps here: Fluent Bit
/// buffers in chunks per input, we buffer per output, so instead of `storage_layer` and
/// `input_chunks` it shows each output's buffer under the output's Fluent Bit name:
/// `{"output_buffers": {"cloudwatch_logs.0": {"events": n, "bytes": n, "stalled": false}}}`
/// (`stalled`: a disk buffer that cannot write).
pub fn storage(metrics: &Metrics, instances: &Instances) -> serde_json::Value {
    let samples = prometheus_text::parse(&metrics.encode()).unwrap_or_default();
    let mut buffers = serde_json::Map::new();
    for (n, i) in instances.all().iter().enumerate() {
        if i.kind != "output" {
            continue;
        }
        let first = !instances.all()[..n]
            .iter()
            .any(|o| o.kind == i.kind && o.component_id == i.component_id);
        let gauge = |name: &str| {
            let labels = [
                ("component_kind", "output"),
                ("component_id", i.component_id.as_str()),
            ];
            if first {
                prometheus_text::sum(&samples, name, &labels) as u64
            } else {
                0
            }
        };
        buffers.insert(
            i.name.clone(),
            serde_json::json!({
                "events": gauge("buffer_events"),
                "bytes": gauge("buffer_bytes"),
                "stalled": gauge("buffer_stalled") > 0,
            }),
        );
    }
    serde_json::json!({ "output_buffers": buffers })
}

/// `[service.health_check]` (classic: `[SERVICE] Health_Check On` with `HC_Errors_Count`,
/// `HC_Retry_Failure_Count`, `HC_Period`): `/api/v1/health` answers `500 error` while, within
/// the last `period` seconds, the outputs had more than `errors_count` errors or more than
/// `retry_failure_count` batches given up after their retries; else `200 ok`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// Output errors (batches failed for good) in a period that make the router unhealthy
    /// when exceeded (Fluent Bit's `HC_Errors_Count`, default 5).
    #[serde(default = "default_limit")]
    pub errors_count: u64,
    /// Batches given up after their retries in a period that make the router unhealthy when
    /// exceeded (`HC_Retry_Failure_Count`, default 5).
    #[serde(default = "default_limit")]
    pub retry_failure_count: u64,
    /// The period, in seconds (`HC_Period`, default 60).
    #[serde(default = "default_period")]
    pub period: u64,
}

fn default_limit() -> u64 {
    5
}

fn default_period() -> u64 {
    60
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            errors_count: default_limit(),
            retry_failure_count: default_limit(),
            period: default_period(),
        }
    }
}

/// Fluent Bit's health check: a sample of the outputs' total errors and retry failures each
/// second, at most `period` kept; the counts within the period are the newest sample's minus
/// the oldest's (`flb_hs_push_health_metrics`, `flb_hs_health_state_get`).
#[derive(Debug)]
pub struct HealthCheck {
    config: HealthCheckConfig,
    samples: Mutex<VecDeque<(u64, u64)>>,
}

impl HealthCheck {
    /// A health check with no samples yet (healthy).
    pub fn new(config: HealthCheckConfig) -> Self {
        HealthCheck {
            config,
            samples: Mutex::new(VecDeque::new()),
        }
    }

    /// Take this second's sample from `snapshot`.
    pub fn sample(&self, snapshot: &Snapshot) {
        let now = (
            snapshot.output_total("errors"),
            snapshot.output_total("retries_failed"),
        );
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.push_back(now);
        while samples.len() as u64 > self.config.period.max(1) {
            samples.pop_front();
        }
    }

    /// Whether the errors and retry failures within the period are within their limits.
    pub fn healthy(&self) -> bool {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let (Some(first), Some(last)) = (samples.front(), samples.back()) else {
            return true;
        };
        let errors = last.0.saturating_sub(first.0);
        let retries_failed = last.1.saturating_sub(first.1);
        errors <= self.config.errors_count && retries_failed <= self.config.retry_failure_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::metrics::Component;

    fn instances() -> Instances {
        let mut i = Instances::default();
        i.push("input", "forward", "forward", None);
        i.push("input", "forward", "forward", None);
        i.push("input", "app", "tcp", Some("app"));
        i.push("filter", "grep.0", "grep", None);
        i.push("output", "cloudwatch_logs", "cloudwatch_logs", None);
        i.push("output", "null", "null", Some("discard"));
        i
    }

    #[test]
    fn names_are_the_alias_else_plugin_and_index_among_instances_of_the_kind() {
        let names: Vec<_> = instances()
            .all()
            .iter()
            .map(|i| (i.kind, i.name.clone()))
            .collect();
        assert_eq!(
            names,
            [
                ("input", "forward.0".to_string()),
                ("input", "forward.1".to_string()),
                ("input", "app".to_string()),
                ("filter", "grep.0".to_string()),
                ("output", "cloudwatch_logs.0".to_string()),
                ("output", "discard".to_string()),
            ]
        );
    }

    #[test]
    fn json_and_prometheus_have_fluent_bits_shape_and_names() {
        let metrics = Metrics::new();
        metrics.received(&Component::input("forward"), 1000, 50_000);
        metrics.received(&Component::filter("grep.0"), 1000, 50_000);
        metrics.sent(&Component::filter("grep.0"), 990);
        metrics.events_dropped(&Component::filter("grep.0"), "grep_excluded", 10);
        metrics.sent(&Component::output("null"), 990);
        metrics.events_dropped(
            &Component::output("cloudwatch_logs"),
            "retries_exhausted",
            7,
        );
        metrics
            .deliveries_failed
            .get_or_create(&Component::output("cloudwatch_logs").with_reason("retries_exhausted"))
            .inc();
        let snapshot = Snapshot::read(&metrics, &instances());
        let json = serde_json::to_string(&snapshot).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"{"input":{"forward.0":{"records":1000,"bytes":50000},"forward.1":{"records":0,"bytes":0},"app":{"records":0,"bytes":0}},"#,
                r#""filter":{"grep.0":{"drop_records":10,"add_records":0,"records":1000,"bytes":50000}},"#,
                r#""output":{"cloudwatch_logs.0":{"proc_records":0,"errors":0,"retries":0,"retries_failed":1,"dropped_records":7,"retried_records":0},"#,
                r#""discard":{"proc_records":990,"errors":0,"retries":0,"retries_failed":0,"dropped_records":0,"retried_records":0}}}"#
            )
        );
        let text = snapshot.prometheus(12);
        let samples = prometheus_text::parse(&text).unwrap();
        let value = |metric: &str, name: &str| {
            prometheus_text::sum(&samples, metric, &[("name", name)]) as u64
        };
        assert_eq!(value("fluentbit_input_records_total", "forward.0"), 1000);
        assert_eq!(value("fluentbit_input_bytes_total", "forward.0"), 50_000);
        assert_eq!(value("fluentbit_filter_drop_records_total", "grep.0"), 10);
        assert_eq!(value("fluentbit_output_proc_records_total", "discard"), 990);
        assert_eq!(
            value("fluentbit_output_retries_failed_total", "cloudwatch_logs.0"),
            1
        );
        assert_eq!(
            value(
                "fluentbit_output_dropped_records_total",
                "cloudwatch_logs.0"
            ),
            7
        );
        assert!(text.contains("# TYPE fluentbit_output_proc_records_total counter\n"));
        assert!(text.contains("\nfluentbit_uptime 12\n"));
        // One HELP and TYPE per metric, each metric's lines together.
        assert_eq!(
            text.matches("# TYPE fluentbit_input_records_total counter")
                .count(),
            1
        );
    }

    #[test]
    fn storage_shows_each_outputs_buffer_under_its_fluent_bit_name() {
        let metrics = Metrics::new();
        let labels = Component::output("null").labels();
        metrics.buffer_events.get_or_create(&labels).set(3);
        metrics.buffer_bytes.get_or_create(&labels).set(300);
        assert_eq!(
            storage(&metrics, &instances()),
            serde_json::json!({"output_buffers": {
                "cloudwatch_logs.0": {"events": 0, "bytes": 0, "stalled": false},
                "discard": {"events": 3, "bytes": 300, "stalled": false},
            }})
        );
    }

    #[test]
    fn health_counts_only_the_errors_within_the_period() {
        let check = HealthCheck::new(HealthCheckConfig {
            errors_count: 2,
            retry_failure_count: 0,
            period: 3,
        });
        let at = |errors: u64, retries_failed: u64| Snapshot {
            sections: [
                ("input", vec![]),
                ("filter", vec![]),
                (
                    "output",
                    vec![(
                        "x".into(),
                        vec![("errors", errors), ("retries_failed", retries_failed)],
                    )],
                ),
            ],
        };
        assert!(check.healthy(), "no sample yet");
        check.sample(&at(10, 0));
        check.sample(&at(12, 0));
        assert!(check.healthy(), "2 errors is not more than 2");
        check.sample(&at(13, 0));
        assert!(!check.healthy(), "3 errors within the period");
        check.sample(&at(13, 0));
        check.sample(&at(13, 0));
        assert!(check.healthy(), "the errors left the period");
        check.sample(&at(13, 1));
        assert!(!check.healthy(), "one retry failure is more than 0");
        for _ in 0..3 {
            check.sample(&at(13, 1));
        }
        assert!(check.healthy());
    }
}
