//! The metrics a plugin reports through its `metrics` import, exported as
//! `plugin_<plugin id>_<name>` in the router's registry. A plugin may create at most
//! [`MAX_SERIES`] series (name + labels); updates beyond that, and updates with an invalid
//! name or labels, are refused and counted in `wasm_plugin_metric_series_refused{reason}`.

use super::telemetry::PluginTelemetry;
use crate::ops::metrics::Metrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// Most series one plugin may create.
pub const MAX_SERIES: usize = 100;
/// Most labels on one series.
pub const MAX_LABELS: usize = 8;
/// Longest metric or label name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest label value.
pub const MAX_LABEL_VALUE_LEN: usize = 256;

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone)]
enum GuestFamily {
    Counter(Family<Labels, Counter>),
    Gauge(Family<Labels, FloatGauge>),
}

/// The current value of one plugin series (for `wasm-router test`).
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesValue {
    /// Full metric name, `plugin_<id>_<name>` (counters get `_total` when exported).
    pub name: String,
    /// Labels, as the plugin gave them.
    pub labels: Labels,
    /// Counter or gauge value.
    pub value: f64,
}

/// The metrics of one plugin, shared by all its instances.
pub struct GuestMetrics {
    prefix: String,
    metrics: Arc<Metrics>,
    telemetry: PluginTelemetry,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    families: HashMap<String, GuestFamily>,
    series: BTreeSet<(String, Labels)>,
}

impl GuestMetrics {
    /// Metrics of the plugin with `telemetry`'s id, registered in `metrics`.
    pub fn new(metrics: Arc<Metrics>, telemetry: PluginTelemetry) -> Self {
        let prefix = format!("plugin_{}_", sanitize(telemetry.plugin()));
        GuestMetrics {
            prefix,
            metrics,
            telemetry,
            state: Mutex::new(State::default()),
        }
    }

    /// `counter-add`.
    pub fn counter_add(&self, name: &str, value: u64, labels: Labels) {
        if let Some(GuestFamily::Counter(f)) = self.series(name, labels.clone(), false) {
            f.get_or_create(&labels).inc_by(value);
        }
    }

    /// `gauge-set`.
    pub fn gauge_set(&self, name: &str, value: f64, labels: Labels) {
        if let Some(GuestFamily::Gauge(f)) = self.series(name, labels.clone(), true) {
            f.get_or_create(&labels).set(value);
        }
    }

    /// Every series and its value, sorted by name and labels.
    pub fn snapshot(&self) -> Vec<SeriesValue> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .series
            .iter()
            .map(|(name, labels)| {
                let value = match &state.families[name] {
                    GuestFamily::Counter(f) => f.get_or_create(labels).get() as f64,
                    GuestFamily::Gauge(f) => f.get_or_create(labels).get(),
                };
                SeriesValue {
                    name: name.clone(),
                    labels: labels.clone(),
                    value,
                }
            })
            .collect()
    }

    /// The family for `name` if the update may go ahead; refusals are counted.
    fn series(&self, name: &str, labels: Labels, gauge: bool) -> Option<GuestFamily> {
        if let Err(reason) = check(name, &labels) {
            self.telemetry.series_refused(reason);
            return None;
        }
        let full = format!("{}{name}", self.prefix);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = state.families.get(&full)
            && matches!(f, GuestFamily::Gauge(_)) != gauge
        {
            self.telemetry.series_refused("kind_conflict");
            return None;
        }
        let key = (full, labels);
        if !state.series.contains(&key) {
            if state.series.len() >= MAX_SERIES {
                self.telemetry.series_refused("series_cap");
                return None;
            }
            state.series.insert(key.clone());
        }
        let (full, _) = key;
        let family = match state.families.get(&full) {
            Some(f) => f.clone(),
            None => {
                let f = if gauge {
                    GuestFamily::Gauge(Family::default())
                } else {
                    GuestFamily::Counter(Family::default())
                };
                let help = "Reported by the plugin";
                self.metrics.with_registry(|r| match &f {
                    GuestFamily::Counter(c) => r.register(full.clone(), help, c.clone()),
                    GuestFamily::Gauge(g) => r.register(full.clone(), help, g.clone()),
                });
                state.families.insert(full, f.clone());
                f
            }
        };
        Some(family)
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn check(name: &str, labels: &Labels) -> Result<(), &'static str> {
    if !valid_name(name) {
        return Err("invalid_name");
    }
    if labels.len() > MAX_LABELS {
        return Err("too_many_labels");
    }
    if labels
        .iter()
        .any(|(k, v)| !valid_name(k) || k == "plugin" || v.len() > MAX_LABEL_VALUE_LEN)
    {
        return Err("invalid_label");
    }
    Ok(())
}

/// A plugin id as a metric-name fragment: lowercase ASCII letters, digits and `_`.
pub fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::telemetry::PluginFamilies;

    fn setup() -> (Arc<Metrics>, GuestMetrics) {
        let metrics = Metrics::new();
        let telemetry = PluginTelemetry::new(PluginFamilies::of(&metrics), "my-plugin");
        (metrics.clone(), GuestMetrics::new(metrics, telemetry))
    }

    #[test]
    fn series_are_namespaced_and_exported() {
        let (metrics, g) = setup();
        g.counter_add("redacted", 3, vec![("field".into(), "log".into())]);
        g.counter_add("redacted", 2, vec![("field".into(), "log".into())]);
        g.gauge_set("ratio", 0.5, vec![]);
        let text = metrics.encode();
        assert!(
            text.contains("plugin_my_plugin_redacted_total{field=\"log\"} 5"),
            "{text}"
        );
        assert!(text.contains("plugin_my_plugin_ratio{} 0.5"), "{text}");
        assert_eq!(g.snapshot().len(), 2);
    }

    #[test]
    fn the_cap_and_bad_names_are_refused_and_counted() {
        let (metrics, g) = setup();
        for i in 0..(MAX_SERIES + 20) {
            g.counter_add("hits", 1, vec![("n".into(), i.to_string())]);
        }
        g.counter_add("Bad-Name", 1, vec![]);
        g.gauge_set("hits", 1.0, vec![("n".into(), "0".into())]);
        assert_eq!(g.snapshot().len(), MAX_SERIES);
        let text = metrics.encode();
        assert!(text.contains("wasm_plugin_metric_series_refused_total{plugin=\"my-plugin\",reason=\"series_cap\"} 20"), "{text}");
        assert!(text.contains("reason=\"invalid_name\"} 1"), "{text}");
        assert!(text.contains("reason=\"kind_conflict\"} 1"), "{text}");
    }
}
