//! One instance of a plugin: its `Store` (memory cap, deadline, optional fuel) and its typed
//! exports. Every call goes through [`PluginInstance::call`], which arms the deadline and turns
//! any failure into a [`Fault`]; after a fault the instance must be discarded.

use super::bindings::{
    Batch, ConfigError, Delivery, HttpRequest, HttpResponse, ItemResult, Outcome, PluginInfo,
};
use super::engine::PluginEngine;
use super::fault::Fault;
use super::limits::PluginLimits;
use super::loader::{LoadedPlugin, WorldExports};
use super::state::{PluginContext, PluginState};
use crate::event::Event;
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::TypedFunc;

/// Column buffers larger than this are shrunk back after a call.
const KEEP_COLUMN_BYTES: usize = 4 << 20;

type InfoFn = TypedFunc<(), (PluginInfo,)>;
type InitFn = TypedFunc<(String,), (Result<(), Vec<ConfigError>>,)>;
type ProcessFn = TypedFunc<(Arc<Batch>,), (Vec<Outcome>,)>;
type EncodeFn = TypedFunc<(Arc<Batch>,), (Result<Vec<HttpRequest>, String>,)>;
type OnResponseFn = TypedFunc<(HttpResponse,), (Delivery,)>;

enum Exports {
    Filter {
        process: ProcessFn,
    },
    Output {
        encode: EncodeFn,
        on_response: OnResponseFn,
    },
}

/// A live instance of a plugin.
pub struct PluginInstance {
    store: Store<PluginState>,
    info: InfoFn,
    init: InitFn,
    exports: Exports,
    columns: Arc<Batch>,
    limits: PluginLimits,
    deadline_ticks: u64,
    fuel_budget: Option<u64>,
    calls: u64,
    fuel_used: Option<u64>,
    /// Its engine, whose epoch ticks while a call runs.
    engine: Arc<PluginEngine>,
}

impl PluginInstance {
    /// Instantiate `plugin` from its `InstancePre` in a fresh store.
    pub fn new(
        plugin: &LoadedPlugin,
        context: Arc<PluginContext>,
        limits: PluginLimits,
    ) -> Result<Self, Fault> {
        let engine = plugin.engine();
        let mut store = Store::new(
            engine.engine(),
            PluginState::new(context, limits.memory_bytes),
        );
        store.limiter(|state| &mut state.limiter);
        let deadline_ticks = PluginEngine::deadline_ticks(limits.deadline);
        let fuel_budget = engine.options().fuel.then_some(limits.fuel);
        store.set_epoch_deadline(deadline_ticks);
        if let Some(fuel) = fuel_budget {
            store.set_fuel(fuel).map_err(|e| Fault::Instantiate {
                message: e.to_string(),
            })?;
        }
        let failed = |e: wasmtime::Error| Fault::Instantiate {
            message: Fault::from_call_error(e, limits.deadline, fuel_budget).to_string(),
        };
        let instance = {
            let _ticking = engine.ticking();
            plugin.pre().instantiate(&mut store).map_err(failed)?
        };
        let indices = plugin.export_indices();
        let info = instance
            .get_typed_func(&mut store, indices.info)
            .map_err(failed)?;
        let init = instance
            .get_typed_func(&mut store, indices.init)
            .map_err(failed)?;
        let exports = match &indices.world {
            WorldExports::Filter { process } => Exports::Filter {
                process: instance
                    .get_typed_func(&mut store, process)
                    .map_err(failed)?,
            },
            WorldExports::Output {
                encode,
                on_response,
            } => Exports::Output {
                encode: instance
                    .get_typed_func(&mut store, encode)
                    .map_err(failed)?,
                on_response: instance
                    .get_typed_func(&mut store, on_response)
                    .map_err(failed)?,
            },
        };
        let columns = Arc::new(Batch {
            tag: String::new(),
            time_ns: Vec::new(),
            body_ends: Vec::new(),
            bodies: Vec::new(),
        });
        Ok(PluginInstance {
            store,
            info,
            init,
            exports,
            columns,
            limits,
            deadline_ticks,
            fuel_budget,
            calls: 0,
            fuel_used: None,
            engine: engine.clone(),
        })
    }

    /// `info()`.
    pub fn info(&mut self) -> Result<PluginInfo, Fault> {
        let f = self.info;
        self.call(|store| f.call(store, ())).map(|(info,)| info)
    }

    /// `init(config)`: `Ok(Err(problems))` when the plugin refuses the config.
    pub fn init(&mut self, config_json: &str) -> Result<Result<(), Vec<ConfigError>>, Fault> {
        let f = self.init;
        let config = config_json.to_string();
        self.call(|store| f.call(store, (config,))).map(|(r,)| r)
    }

    /// `process(batch)`: exactly one outcome per event, or a [`Fault::WrongLength`].
    pub fn process(&mut self, tag: &str, events: &[Event]) -> Result<Vec<Outcome>, Fault> {
        let Exports::Filter { process } = &self.exports else {
            return Err(Fault::Trap {
                message: "an output plugin has no `process`".into(),
            });
        };
        let process = *process;
        self.calls += 1;
        let columns = self.fill_columns(tag, events);
        let (outcomes,) = self.call(|store| process.call(store, (columns,)))?;
        self.shrink_columns();
        if outcomes.len() != events.len() {
            return Err(Fault::WrongLength {
                expected: events.len(),
                got: outcomes.len(),
            });
        }
        Ok(outcomes)
    }

    /// `encode(batch)`: the requests, or the plugin's error message.
    pub fn encode(
        &mut self,
        tag: &str,
        events: &[Event],
    ) -> Result<Result<Vec<HttpRequest>, String>, Fault> {
        let Exports::Output { encode, .. } = &self.exports else {
            return Err(Fault::Trap {
                message: "a filter plugin has no `encode`".into(),
            });
        };
        let encode = *encode;
        self.calls += 1;
        let columns = self.fill_columns(tag, events);
        let (result,) = self.call(|store| encode.call(store, (columns,)))?;
        self.shrink_columns();
        Ok(result)
    }

    /// `on-response(response)`.
    pub fn on_response(&mut self, response: HttpResponse) -> Result<Delivery, Fault> {
        let Exports::Output { on_response, .. } = &self.exports else {
            return Err(Fault::Trap {
                message: "a filter plugin has no `on-response`".into(),
            });
        };
        let f = *on_response;
        self.calls += 1;
        self.store.data_mut().collect_items();
        self.call(|store| f.call(store, (response,))).map(|(d,)| d)
    }

    /// The per-event results the last `on-response` reported (`delivery-items.report`), in
    /// the order reported; empty for a plugin that reports none.
    pub fn take_item_results(&mut self) -> Vec<ItemResult> {
        self.store.data_mut().take_items()
    }

    /// Batch calls (`process`, `encode`, `on-response`) made on this instance; `info` and
    /// `init` do not count.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Linear memory the instance holds now, in bytes.
    pub fn memory(&self) -> usize {
        self.store.data().limiter.current()
    }

    /// The most linear memory the instance ever held, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.store.data().limiter.peak()
    }

    /// Instructions the last call used, on a metering engine.
    pub fn fuel_used(&self) -> Option<u64> {
        self.fuel_used
    }

    /// Why this instance should be replaced after its last call: `max_calls` or `memory`.
    pub fn recycle_reason(&self) -> Option<&'static str> {
        if self.calls >= self.limits.max_calls {
            Some("max_calls")
        } else if self.memory() > self.limits.recycle_memory_bytes() {
            Some("memory")
        } else {
            None
        }
    }

    /// Run one export with the deadline (and fuel) armed.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<R, Fault> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        if let Some(budget) = self.fuel_budget {
            self.store.set_fuel(budget).map_err(|e| Fault::Trap {
                message: e.to_string(),
            })?;
        }
        let ticking = self.engine.ticking();
        let result = f(&mut self.store);
        drop(ticking);
        if let Some(budget) = self.fuel_budget {
            self.fuel_used = self.store.get_fuel().ok().map(|left| budget - left);
        }
        result.map_err(|e| Fault::from_call_error(e, self.limits.deadline, self.fuel_budget))
    }

    /// Lay `events` out as the `batch` record, reusing the buffers of earlier calls.
    fn fill_columns(&mut self, tag: &str, events: &[Event]) -> Arc<Batch> {
        if Arc::get_mut(&mut self.columns).is_none() {
            self.columns = Arc::new(Batch {
                tag: String::new(),
                time_ns: Vec::new(),
                body_ends: Vec::new(),
                bodies: Vec::new(),
            });
        }
        let columns = Arc::get_mut(&mut self.columns).expect("unique: no call holds the columns");
        columns.tag.clear();
        columns.tag.push_str(tag);
        columns.time_ns.clear();
        columns.body_ends.clear();
        columns.bodies.clear();
        columns
            .bodies
            .reserve(events.iter().map(|e| e.body.len()).sum());
        for event in events {
            columns.bodies.extend_from_slice(&event.body);
            columns.time_ns.push(event.time_ns);
            // Callers keep a batch under 4 GiB (see `filter::MAX_CALL_BYTES`).
            columns
                .body_ends
                .push(u32::try_from(columns.bodies.len()).unwrap_or(u32::MAX));
        }
        self.columns.clone()
    }

    fn shrink_columns(&mut self) {
        if let Some(columns) = Arc::get_mut(&mut self.columns)
            && columns.bodies.capacity() > KEEP_COLUMN_BYTES
        {
            columns.bodies = Vec::new();
            columns.time_ns = Vec::new();
            columns.body_ends = Vec::new();
        }
    }
}
