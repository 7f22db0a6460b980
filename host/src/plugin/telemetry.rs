//! What the host measures about every plugin, always on: calls, events by outcome, faults by
//! kind, call latency, recycled instances, peak memory, the circuit state, suppressed log lines
//! and refused plugin metric series. Exported as `wasm_plugin_*{plugin="<id>"}` next to the
//! router's `component_*` metrics (which count the filter's events in, out and dropped).

use super::guest_metrics::GuestMetrics;
use crate::ops::metrics::Metrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Labels naming a plugin.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    /// The plugin's id (its configured `name`, or the name it reports).
    pub plugin: String,
}

/// A plugin and what became of events.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginOutcomeLabels {
    /// The plugin's id.
    pub plugin: String,
    /// `in`, `kept`, `dropped`, `replaced`, `expanded` (events produced by `expand`), `errors`,
    /// `passed_unfiltered` (fail-open after a fault).
    pub outcome: &'static str,
}

/// A plugin and a kind or reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginReasonLabels {
    /// The plugin's id.
    pub plugin: String,
    /// Fault kind (`trap`, `deadline`, …), recycle reason (`max_calls`, `memory`) or why a
    /// metric series was refused (`series_cap`, `invalid_name`, …).
    pub reason: &'static str,
}

type HistogramFamily = Family<PluginLabels, Histogram, fn() -> Histogram>;

fn call_histogram() -> Histogram {
    // 10 µs .. ~1.3 s.
    Histogram::new(exponential_buckets(1e-5, 2.0, 18))
}

/// The `wasm_plugin_*` families of one metrics registry, shared by all its plugins.
pub struct PluginFamilies {
    calls: Family<PluginLabels, Counter>,
    events: Family<PluginOutcomeLabels, Counter>,
    faults: Family<PluginReasonLabels, Counter>,
    call_seconds: HistogramFamily,
    recycles: Family<PluginReasonLabels, Counter>,
    peak_memory: Family<PluginLabels, Gauge>,
    circuit_open: Family<PluginLabels, Gauge>,
    log_suppressed: Family<PluginLabels, Counter>,
    series_refused: Family<PluginReasonLabels, Counter>,
    split_calls: Family<PluginLabels, Counter>,
    isolated_events: Family<PluginLabels, Counter>,
    guests: Mutex<HashMap<String, Arc<GuestMetrics>>>,
}

impl PluginFamilies {
    /// The families of `metrics`, registered on first use.
    pub fn of(metrics: &Arc<Metrics>) -> Arc<PluginFamilies> {
        metrics.families(|r| {
            let f = PluginFamilies {
                calls: Family::default(),
                events: Family::default(),
                faults: Family::default(),
                call_seconds: Family::new_with_constructor(call_histogram),
                recycles: Family::default(),
                peak_memory: Family::default(),
                circuit_open: Family::default(),
                log_suppressed: Family::default(),
                series_refused: Family::default(),
                split_calls: Family::default(),
                isolated_events: Family::default(),
                guests: Mutex::new(HashMap::new()),
            };
            r.register("wasm_plugin_calls", "Calls into a plugin", f.calls.clone());
            r.register(
                "wasm_plugin_events",
                "Events a plugin saw, by outcome",
                f.events.clone(),
            );
            r.register(
                "wasm_plugin_faults",
                "Plugin faults by kind (each discarded the instance); a call narrowed down counts each event that faults alone",
                f.faults.clone(),
            );
            r.register(
                "wasm_plugin_call_seconds",
                "Duration of one call into a plugin",
                f.call_seconds.clone(),
            );
            r.register(
                "wasm_plugin_recycles",
                "Instances replaced by fresh ones, by reason",
                f.recycles.clone(),
            );
            r.register(
                "wasm_plugin_peak_memory_bytes",
                "Most linear memory one instance held",
                f.peak_memory.clone(),
            );
            r.register(
                "wasm_plugin_circuit_open",
                "1 while repeated faults keep the plugin from being called",
                f.circuit_open.clone(),
            );
            r.register(
                "wasm_plugin_log_suppressed_lines",
                "Plugin log lines dropped by the rate limit",
                f.log_suppressed.clone(),
            );
            r.register(
                "wasm_plugin_metric_series_refused",
                "Plugin metric updates refused, by reason",
                f.series_refused.clone(),
            );
            r.register(
                "wasm_plugin_split_calls",
                "Calls made on parts of a faulted call to find the events that fault",
                f.split_calls.clone(),
            );
            r.register(
                "wasm_plugin_isolated_events",
                "Events found to fault (or be refused) alone, given on_error without the rest of their call",
                f.isolated_events.clone(),
            );
            f
        })
    }

    /// The metrics plugin `id` reports, shared by every filter with that id in this registry
    /// (two filters with the same id count into the same series; a reloaded filter keeps its
    /// series): each family is registered once.
    pub fn guest_metrics(self: &Arc<Self>, id: &str, metrics: &Arc<Metrics>) -> Arc<GuestMetrics> {
        let mut guests = self.guests.lock().unwrap_or_else(|e| e.into_inner());
        guests
            .entry(id.to_string())
            .or_insert_with(|| {
                Arc::new(GuestMetrics::new(
                    metrics.clone(),
                    PluginTelemetry::new(self.clone(), id),
                ))
            })
            .clone()
    }
}

/// The host-side counters of one plugin, resolved once.
#[derive(Clone)]
pub struct PluginTelemetry {
    plugin: String,
    families: Arc<PluginFamilies>,
    calls: Counter,
    call_seconds: Histogram,
    events_in: Counter,
    kept: Counter,
    dropped: Counter,
    replaced: Counter,
    expanded: Counter,
    errors: Counter,
    peak_memory: Gauge,
    circuit_open: Gauge,
    log_suppressed: Counter,
    split_calls: Counter,
    isolated_events: Counter,
}

/// What became of the events of one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    /// Events passed on unchanged.
    pub kept: u64,
    /// Events the plugin dropped.
    pub dropped: u64,
    /// Events passed on with changes.
    pub replaced: u64,
    /// Events produced by `expand` (from however many inputs).
    pub expanded: u64,
    /// Events the plugin returned `error` for.
    pub errors: u64,
}

impl PluginTelemetry {
    /// The telemetry of plugin `id` in `families`.
    pub fn new(families: Arc<PluginFamilies>, id: &str) -> Self {
        let labels = PluginLabels {
            plugin: id.to_string(),
        };
        let event = |outcome| {
            families
                .events
                .get_or_create(&PluginOutcomeLabels {
                    plugin: id.to_string(),
                    outcome,
                })
                .clone()
        };
        PluginTelemetry {
            families: families.clone(),
            plugin: id.to_string(),
            calls: families.calls.get_or_create(&labels).clone(),
            call_seconds: families.call_seconds.get_or_create(&labels).clone(),
            events_in: event("in"),
            kept: event("kept"),
            dropped: event("dropped"),
            replaced: event("replaced"),
            expanded: event("expanded"),
            errors: event("errors"),
            peak_memory: families.peak_memory.get_or_create(&labels).clone(),
            circuit_open: families.circuit_open.get_or_create(&labels).clone(),
            log_suppressed: families.log_suppressed.get_or_create(&labels).clone(),
            split_calls: families.split_calls.get_or_create(&labels).clone(),
            isolated_events: families.isolated_events.get_or_create(&labels).clone(),
        }
    }

    /// The plugin id.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// One call of `events` events that took `elapsed`.
    pub fn call(&self, events: u64, elapsed: Duration) {
        self.calls.inc();
        self.events_in.inc_by(events);
        self.call_seconds.observe(elapsed.as_secs_f64());
    }

    /// One call on part of a faulted call's events (also counted by [`Self::call`]).
    pub fn split_call(&self) {
        self.split_calls.inc();
    }

    /// `events` found to fault alone.
    pub fn isolated(&self, events: u64) {
        self.isolated_events.inc_by(events);
    }

    /// What became of a call's events.
    pub fn outcomes(&self, c: &OutcomeCounts) {
        for (counter, n) in [
            (&self.kept, c.kept),
            (&self.dropped, c.dropped),
            (&self.replaced, c.replaced),
            (&self.expanded, c.expanded),
            (&self.errors, c.errors),
        ] {
            if n > 0 {
                counter.inc_by(n);
            }
        }
    }

    /// Events passed on unfiltered because of a fault or an open circuit (`fail_open`).
    pub fn passed_unfiltered(&self, events: u64) {
        self.families
            .events
            .get_or_create(&PluginOutcomeLabels {
                plugin: self.plugin.clone(),
                outcome: "passed_unfiltered",
            })
            .inc_by(events);
    }

    /// A fault of `kind`.
    pub fn fault(&self, kind: &'static str) {
        self.families.faults.get_or_create(&self.reason(kind)).inc();
    }

    /// Faults of `kind` so far.
    pub fn faults(&self, kind: &'static str) -> u64 {
        self.families.faults.get_or_create(&self.reason(kind)).get()
    }

    /// An instance replaced for `reason` (`max_calls`, `memory`).
    pub fn recycled(&self, reason: &'static str) {
        self.families
            .recycles
            .get_or_create(&self.reason(reason))
            .inc();
    }

    /// An instance's peak memory; the gauge keeps the largest seen.
    pub fn peak_memory(&self, bytes: usize) {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        if bytes > self.peak_memory.get() {
            self.peak_memory.set(bytes);
        }
    }

    /// The largest peak memory of an instance so far, in bytes.
    pub fn peak_memory_bytes(&self) -> u64 {
        self.peak_memory.get().max(0) as u64
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.get()
    }

    /// The circuit opened (`true`) or closed.
    pub fn circuit(&self, open: bool) {
        self.circuit_open.set(i64::from(open));
    }

    /// The counter of log lines dropped by the rate limit.
    pub fn log_suppressed_counter(&self) -> Counter {
        self.log_suppressed.clone()
    }

    /// A plugin metric update refused for `reason`.
    pub fn series_refused(&self, reason: &'static str) {
        self.families
            .series_refused
            .get_or_create(&self.reason(reason))
            .inc();
    }

    fn reason(&self, reason: &'static str) -> PluginReasonLabels {
        PluginReasonLabels {
            plugin: self.plugin.clone(),
            reason,
        }
    }
}
