//! The data of one instance's `Store`: its WASI context, its memory limiter, and the plugin's
//! shared log and metrics, on which the `log` and `metrics` imports are implemented.
//!
//! What WASI gives a plugin. Rust's std makes every `wasm32-wasip2` component import a dozen
//! WASI interfaces; the host satisfies them so such components link, but grants nothing:
//!
//! | interface | what the plugin gets |
//! |---|---|
//! | `wasi:cli/environment` | no variables, no arguments, no working directory |
//! | `wasi:cli/exit` | `exit` ends the call as a trap (a plugin fault) |
//! | `wasi:cli/stdin` | closed: reads return end-of-stream |
//! | `wasi:cli/stdout`, `stderr` | each line goes to the plugin's log (`info` / `warn`), with the same caps and rate limit as `log.emit` |
//! | `wasi:cli/terminal-*` | not a terminal |
//! | `wasi:clocks/*` | frozen at the Unix epoch (event times come with the batch; real clocks would be a grant) |
//! | `wasi:io/poll` (`poll`, `pollable.block`) | trap: a plugin may not block or sleep (the call deadline cannot interrupt the host) |
//! | `wasi:io/error`, `streams` | only the streams above |
//! | `wasi:random/*` | random bytes (harmless, and std's `HashMap` needs a seed) |
//! | `wasi:filesystem/*` | no preopened directories: nothing can be opened |
//! | `wasi:sockets/*` | linked; every operation is refused with `access-denied` when called (see [`super::network`]) |
//! | `wasi:http/*` | linked; every request is refused with `HTTP-request-denied` ([`super::network`]) |

use super::bindings::{self, Level};
use super::guest_metrics::GuestMetrics;
use super::limits::MemoryLimiter;
use super::log::PluginLog;
use super::network::DenyAllHooks;
use super::stdio::PluginStdio;
use super::telemetry::PluginTelemetry;
use crate::ops::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// What all instances of one plugin share: its id, log, metrics and telemetry.
pub struct PluginContext {
    /// The plugin's id in logs and metrics.
    pub id: String,
    /// Its log (`log.emit`, stdout, stderr).
    pub log: Arc<PluginLog>,
    /// Its own metrics (`metrics.*`).
    pub metrics: Arc<GuestMetrics>,
    /// What the host measures about it.
    pub telemetry: PluginTelemetry,
}

impl PluginContext {
    /// The context of plugin `id`, counting into `metrics`. With `capture_logs` its log lines
    /// are kept in memory (`wasm-router test`) instead of going to the router's log.
    pub fn new(
        id: &str,
        metrics: &Arc<Metrics>,
        families: Arc<super::telemetry::PluginFamilies>,
        capture_logs: bool,
    ) -> Self {
        let metrics = families.guest_metrics(id, metrics);
        let telemetry = PluginTelemetry::new(families, id);
        let log = if capture_logs {
            PluginLog::capturing(id)
        } else {
            PluginLog::to_tracing(id)
        };
        let log = log.counting_suppressed(telemetry.log_suppressed_counter());
        PluginContext {
            id: id.to_string(),
            log: Arc::new(log),
            metrics,
            telemetry,
        }
    }
}

/// The data of one instance's store.
pub struct PluginState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    http_hooks: DenyAllHooks,
    table: ResourceTable,
    /// The memory cap, and the peak it recorded.
    pub limiter: MemoryLimiter,
    context: Arc<PluginContext>,
    /// Per-event results the plugin reports during `on-response` (`delivery-items.report`);
    /// `None` outside `on-response`.
    items: Option<Vec<bindings::ItemResult>>,
}

impl PluginState {
    /// Fresh state for a new instance with a memory cap of `memory_bytes`.
    pub fn new(context: Arc<PluginContext>, memory_bytes: usize) -> Self {
        PluginState {
            wasi: deny_by_default_wasi(&context.log),
            http: WasiHttpCtx::new(),
            http_hooks: DenyAllHooks,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_bytes),
            context,
            items: None,
        }
    }

    /// Start collecting per-event results (before `on-response`).
    pub fn collect_items(&mut self) {
        self.items = Some(Vec::new());
    }

    /// The per-event results reported since [`Self::collect_items`]; collecting stops.
    pub fn take_items(&mut self) -> Vec<bindings::ItemResult> {
        self.items.take().unwrap_or_default()
    }
}

fn deny_by_default_wasi(log: &Arc<PluginLog>) -> WasiCtx {
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(PluginStdio::new(log.clone(), Level::Info))
        .stderr(PluginStdio::new(log.clone(), Level::Warn))
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    wasi.build()
}

/// A clock that always reads the Unix epoch (wall) or zero (monotonic).
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// `wasi:http` (its resources live in the same table as WASI's); see [`super::network`].
impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::wasm_router::plugin::types::Host for PluginState {}

impl bindings::wasm_router::plugin::http_types::Host for PluginState {}

impl bindings::wasm_router::plugin::delivery_items::Host for PluginState {
    fn report(&mut self, results: Vec<bindings::ItemResult>) {
        match &mut self.items {
            Some(items) => items.extend(results),
            None => {
                self.context.log.emit(
                    Level::Warn,
                    "delivery-items.report called outside on-response: ignored",
                );
            }
        }
    }
}

impl bindings::wasm_router::plugin::log::Host for PluginState {
    fn emit(&mut self, level: Level, message: String) {
        self.context.log.emit(level, &message);
    }
}

impl bindings::wasm_router::plugin::metrics::Host for PluginState {
    fn counter_add(&mut self, name: String, value: u64, labels: Vec<(String, String)>) {
        self.context.metrics.counter_add(&name, value, labels);
    }

    fn gauge_set(&mut self, name: String, value: f64, labels: Vec<(String, String)>) {
        self.context.metrics.gauge_set(&name, value, labels);
    }
}
