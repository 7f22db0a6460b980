//! The one metrics registry of a running router, and the typed telemetry events that feed it.
//!
//! Metric names follow Vector's component conventions (`component_received_events_total`,
//! `component_sent_events_total`, `component_discarded_events_total{reason}`,
//! `component_errors_total`). Every event the router does not deliver is counted here under a
//! reason — there is no other way to drop one.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::any::Any;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::delivery_health::DeliveryTracker;
use super::process::ProcessCollector;

/// Labels naming one component of the data path.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabels {
    /// `input`, `filter`, `plugin` or `output`.
    pub component_kind: &'static str,
    /// The component's id (its type, or `name` from the config).
    pub component_id: String,
}

/// Labels for a discard or an error: the component and why.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `input`, `filter`, `plugin` or `output`.
    pub component_kind: &'static str,
    /// The component's id.
    pub component_id: String,
    /// Why, as a short snake_case word (`buffer_full`, `rejected_by_api`, `plugin_fault`, …).
    pub reason: String,
}

/// All counters and gauges of the router.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Events that entered a component.
    pub received_events: Family<ComponentLabels, Counter>,
    /// Bytes that entered a component.
    pub received_bytes: Family<ComponentLabels, Counter>,
    /// Events a component passed on (an output: delivered and acknowledged by the destination).
    pub sent_events: Family<ComponentLabels, Counter>,
    /// Events a component gave up on, by reason.
    pub discarded_events: Family<ReasonLabels, Counter>,
    /// Errors by reason (connections closed, API errors, plugin faults, …).
    pub errors: Family<ReasonLabels, Counter>,
    /// Delivery attempts that were retried.
    pub retries: Family<ComponentLabels, Counter>,
    /// Events of the delivery attempts that were retried: each retry scheduled adds the events it will resend.
    pub retried_events: Family<ComponentLabels, Counter>,
    /// Deliveries (batches) an output gave up on: `permanent`, `retries_exhausted`,
    /// `retry_expired`.
    pub deliveries_failed: Family<ReasonLabels, Counter>,
    /// Events waiting in a component's buffer.
    pub buffer_events: Family<ComponentLabels, Gauge>,
    /// Bytes waiting in a component's buffer.
    pub buffer_bytes: Family<ComponentLabels, Gauge>,
    /// 1 while a disk buffer cannot write (full disk, read-only or failing directory), else 0.
    pub buffer_stalled: Family<ComponentLabels, Gauge>,
    /// Open forward-protocol connections.
    pub open_connections: Family<ComponentLabels, Gauge>,
    /// When a component last passed events on (an output: last successful delivery), Unix seconds.
    pub last_sent_timestamp: Family<ComponentLabels, Gauge<f64, AtomicU64>>,
    /// Events of an output set aside because their destination fails on its own.
    pub set_aside_events: Family<ComponentLabels, Gauge>,
    delivery: DeliveryTracker,
    started: Instant,
    /// The metric families components share, one value per type (see [`Metrics::families`]).
    families: Mutex<Vec<Arc<dyn Any + Send + Sync>>>,
}

impl Metrics {
    /// A registry with every router metric registered.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let m = Metrics {
            received_events: Family::default(),
            received_bytes: Family::default(),
            sent_events: Family::default(),
            discarded_events: Family::default(),
            errors: Family::default(),
            retries: Family::default(),
            retried_events: Family::default(),
            deliveries_failed: Family::default(),
            buffer_events: Family::default(),
            buffer_bytes: Family::default(),
            buffer_stalled: Family::default(),
            open_connections: Family::default(),
            last_sent_timestamp: Family::default(),
            set_aside_events: Family::default(),
            delivery: DeliveryTracker::default(),
            started: Instant::now(),
            registry: Mutex::new(Registry::default()),
            families: Mutex::new(Vec::new()),
        };
        registry.register(
            "component_received_events",
            "Events that entered a component",
            m.received_events.clone(),
        );
        registry.register(
            "component_received_bytes",
            "Bytes that entered a component",
            m.received_bytes.clone(),
        );
        registry.register(
            "component_sent_events",
            "Events a component passed on or delivered",
            m.sent_events.clone(),
        );
        registry.register(
            "component_discarded_events",
            "Events a component gave up on, by reason",
            m.discarded_events.clone(),
        );
        registry.register("component_errors", "Errors by reason", m.errors.clone());
        registry.register(
            "component_retries",
            "Delivery attempts that were retried",
            m.retries.clone(),
        );
        registry.register(
            "component_retried_events",
            "Events of the delivery attempts that were retried, once per retry",
            m.retried_events.clone(),
        );
        registry.register(
            "component_deliveries_failed",
            "Deliveries (batches) an output gave up on, by reason: permanent, retries_exhausted, retry_expired",
            m.deliveries_failed.clone(),
        );
        registry.register(
            "buffer_events",
            "Events waiting in a buffer",
            m.buffer_events.clone(),
        );
        registry.register(
            "buffer_bytes",
            "Bytes waiting in a buffer",
            m.buffer_bytes.clone(),
        );
        registry.register(
            "buffer_stalled",
            "1 while a disk buffer cannot write (with when_full = block its pushes wait; with drop_newest they are dropped)",
            m.buffer_stalled.clone(),
        );
        registry.register(
            "open_connections",
            "Open forward-protocol connections",
            m.open_connections.clone(),
        );
        registry.register(
            "component_last_sent_timestamp_seconds",
            "When a component last passed events on (outputs: last successful delivery), Unix seconds",
            m.last_sent_timestamp.clone(),
        );
        registry.register(
            "output_set_aside_events",
            "Events of an output set aside, with their own retry schedule, because their destination fails on its own",
            m.set_aside_events.clone(),
        );
        registry.register(
            "wasm_router_build",
            "The running version of wasm-router",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register_collector(Box::new(ProcessCollector::new()));
        *m.registry.lock().unwrap() = registry;
        Arc::new(m)
    }

    /// Run `f` with the registry, e.g. to register a component's own metrics.
    pub fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        f(&mut self.registry.lock().unwrap())
    }

    /// The metric families of type `F` in this registry: built and registered by `register` on
    /// first use, the same value afterwards. Families every instance of a component kind
    /// shares (the plugins', the AWS outputs', the WASM outputs') live here, so each registry
    /// holds them once and a new registry (a test, another router) gets its own.
    pub fn families<F: Any + Send + Sync>(
        &self,
        register: impl FnOnce(&mut Registry) -> F,
    ) -> Arc<F> {
        let mut all = self.families.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = all.iter().find_map(|f| f.clone().downcast::<F>().ok()) {
            return f;
        }
        let f = Arc::new(self.with_registry(register));
        all.push(f.clone());
        f
    }

    /// The registry in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }

    /// Count `count` events that `component` will not deliver, and say why in the router's log.
    pub fn events_dropped(&self, component: &Component, reason: &str, count: u64) {
        if count == 0 {
            return;
        }
        self.discarded_events
            .get_or_create(&component.with_reason(reason))
            .inc_by(count);
        tracing::warn!(
            component_kind = component.kind,
            component_id = %component.id,
            reason,
            count,
            "events dropped"
        );
    }

    /// Count one error of `component` (the caller logs its details).
    pub fn error(&self, component: &Component, reason: &str) {
        self.errors
            .get_or_create(&component.with_reason(reason))
            .inc();
    }

    /// Count events and bytes entering `component`.
    pub fn received(&self, component: &Component, events: u64, bytes: u64) {
        let labels = component.labels();
        self.received_events.get_or_create(&labels).inc_by(events);
        self.received_bytes.get_or_create(&labels).inc_by(bytes);
    }

    /// Count events `component` passed on (for an output: delivered), and note when.
    pub fn sent(&self, component: &Component, events: u64) {
        let labels = component.labels();
        self.sent_events.get_or_create(&labels).inc_by(events);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.last_sent_timestamp.get_or_create(&labels).set(now);
        if component.kind == "output" {
            self.delivery.record_success(component);
        }
    }

    /// Watch `output` for the delivery-health endpoint (the router calls this for each output).
    pub fn track_output(&self, output: &Component) {
        self.delivery.track(output);
    }

    /// Delivery progress of every tracked output.
    pub fn delivery(&self) -> &DeliveryTracker {
        &self.delivery
    }

    /// How long ago this registry (i.e. the router) was created.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The current value of `component_discarded_events_total` for one component and reason.
    pub fn discarded(&self, component: &Component, reason: &str) -> u64 {
        self.discarded_events
            .get_or_create(&component.with_reason(reason))
            .get()
    }

    /// Sum of `component_discarded_events_total` over every component and reason.
    pub fn discarded_total(&self) -> u64 {
        // Family has no iterator; the text encoding is the one public view of every series.
        self.encode()
            .lines()
            .filter(|l| l.starts_with("component_discarded_events_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

/// The identity of one component for telemetry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Component {
    /// `input`, `filter`, `plugin` or `output`.
    pub kind: &'static str,
    /// The component's id.
    pub id: String,
}

impl Component {
    /// An input named `id`.
    pub fn input(id: impl Into<String>) -> Self {
        Component {
            kind: "input",
            id: id.into(),
        }
    }
    /// A filter named `id`.
    pub fn filter(id: impl Into<String>) -> Self {
        Component {
            kind: "filter",
            id: id.into(),
        }
    }
    /// An output named `id`.
    pub fn output(id: impl Into<String>) -> Self {
        Component {
            kind: "output",
            id: id.into(),
        }
    }
    /// Prometheus labels for this component.
    pub fn labels(&self) -> ComponentLabels {
        ComponentLabels {
            component_kind: self.kind,
            component_id: self.id.clone(),
        }
    }
    /// Prometheus labels for this component and `reason`.
    pub fn with_reason(&self, reason: &str) -> ReasonLabels {
        ReasonLabels {
            component_kind: self.kind,
            component_id: self.id.clone(),
            reason: reason.to_string(),
        }
    }
}
