//! The one wasmtime `Engine` of the process and the `Linker` every plugin is linked against.
//!
//! Engine policy lives here and nowhere else: Cranelift, the component model, epoch
//! interruption driven by one ticker thread (an epoch is [`EPOCH_TICK`]), and
//! `concurrency_support` off — the plugin worlds are synchronous, and with it off a call costs
//! about a third (measured in `host/benches/plugin.rs`). The allocator is wasmtime's on-demand
//! one: instances are long-lived, so pooling's cheaper instantiation does not pay for the
//! address space it reserves (also measured there). `wasm-router test` uses a second engine
//! with fuel metering, for deterministic instruction counts.

use super::bindings::PluginImports;
use super::state::PluginState;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi::p2::DynPollable;

/// How often the epoch advances: the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Set (to anything) to have the engine write `/tmp/perf-<pid>.map`, so that `perf report`
/// names the plugins' compiled functions (a diagnostic for profiling plugins).
pub const PERFMAP_ENV: &str = "WASM_ROUTER_PERFMAP";

/// The WASI version whose `wasi:io/poll` the host overrides (wasmtime-wasi 48's).
const WASI_IO_POLL: &str = "wasi:io/poll@0.2.12";

/// How an engine is configured. Production uses [`EngineOptions::default`]; the other settings
/// exist for `wasm-router test` (fuel) and for the benchmarks that justify the defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineOptions {
    /// Count instructions (fuel); calls run out after the fuel budget.
    pub fuel: bool,
    /// wasmtime's `concurrency_support` (needed only by component-model-async guests).
    pub concurrency_support: bool,
    /// Use the pooling instance allocator, sized for this many instances.
    pub pooling_instances: Option<u32>,
}

/// An engine with its epoch ticker and the linker of the plugin imports.
pub struct PluginEngine {
    engine: Engine,
    linker: Linker<PluginState>,
    options: EngineOptions,
}

/// Why an engine could not be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the WebAssembly engine: {0}")]
pub struct EngineError(String);

static SHARED: OnceLock<Result<Arc<PluginEngine>, String>> = OnceLock::new();

impl PluginEngine {
    /// The process-wide engine every router plugin runs on.
    pub fn shared() -> Result<Arc<PluginEngine>, EngineError> {
        SHARED
            .get_or_init(|| {
                PluginEngine::new(EngineOptions::default())
                    .map(Arc::new)
                    .map_err(|e| e.0)
            })
            .clone()
            .map_err(EngineError)
    }

    /// A new engine (with its own ticker thread, which ends when the engine is dropped).
    pub fn new(options: EngineOptions) -> Result<PluginEngine, EngineError> {
        let err = |e: wasmtime::Error| EngineError(format!("{e:#}"));
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(options.fuel)
            .concurrency_support(options.concurrency_support)
            .cranelift_opt_level(wasmtime::OptLevel::Speed);
        if std::env::var_os(PERFMAP_ENV).is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        if let Some(instances) = options.pooling_instances {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(instances)
                .total_core_instances(instances * 4)
                .total_memories(instances * 2)
                .total_tables(instances * 4)
                .max_memory_size(super::limits::DEFAULT_MEMORY_BYTES * 4);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config).map_err(err)?;
        let linker = plugin_linker(&engine).map_err(err)?;
        start_epoch_ticker(&engine);
        Ok(PluginEngine {
            engine,
            linker,
            options,
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker with every import a plugin may have.
    pub fn linker(&self) -> &Linker<PluginState> {
        &self.linker
    }

    /// How this engine was configured.
    pub fn options(&self) -> EngineOptions {
        self.options
    }

    /// Epoch ticks that make up `deadline` (at least one full tick).
    pub fn deadline_ticks(deadline: Duration) -> u64 {
        (deadline.as_nanos() / EPOCH_TICK.as_nanos()) as u64 + 1
    }
}

fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        });
    if let Err(e) = spawned {
        // Without the ticker deadlines never fire; every call would run unbounded.
        panic!("cannot start the wasm-epoch thread: {e}");
    }
}

/// WASI (deny-by-default, see [`super::state`]) and the plugin imports.
fn plugin_linker(engine: &Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    PluginImports::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |state| state)?;
    // A blocking poll would park the calling thread in the host, where the epoch deadline
    // cannot reach it (e.g. a guest `sleep`): refuse it instead.
    linker.allow_shadowing(true);
    let mut poll = linker.instance(WASI_IO_POLL)?;
    poll.func_wrap(
        "poll",
        |_, (_,): (Vec<Resource<DynPollable>>,)| -> wasmtime::Result<(Vec<u32>,)> {
            wasmtime::bail!("plugins may not block: wasi:io/poll.poll is not available to plugins")
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |_, (_,): (Resource<DynPollable>,)| -> wasmtime::Result<()> {
            wasmtime::bail!(
                "plugins may not block: wasi:io/poll pollable.block is not available to plugins"
            )
        },
    )?;
    linker.allow_shadowing(false);
    Ok(linker)
}
