//! The one wasmtime `Engine` of the process and the `Linker` every plugin is linked against.
//!
//! Engine policy lives here and nowhere else: Cranelift, the component model, epoch
//! interruption driven by one ticker thread that runs while guest code does
//! ([`super::ticker`]; an epoch is [`EPOCH_TICK`]), and
//! `concurrency_support` off — the plugin worlds are synchronous, and with it off a call costs
//! about a third (measured in `host/benches/plugin.rs`). The allocator is wasmtime's on-demand
//! one: instances are long-lived, so pooling's cheaper instantiation does not pay for the
//! address space it reserves (also measured there). `wasm-router test` uses a second engine
//! with fuel metering, for deterministic instruction counts.

use super::bindings::PluginImports;
use super::state::PluginState;
use super::ticker::{EpochTicker, Ticking};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wasmtime::component::{HasData, HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::bindings::sync::io as sync_io;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, StreamError, StreamResult};

/// How often the epoch advances: the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);
/// How long the epoch goes on ticking after the last plugin call ended, before its thread
/// parks: long enough that a busy router never parks and wakes it per call.
pub const EPOCH_LINGER: Duration = Duration::from_millis(50);

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
    ticker: EpochTicker,
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
        let weak = engine.weak();
        let ticker = EpochTicker::start("wasm-epoch", EPOCH_TICK, EPOCH_LINGER, move || {
            weak.upgrade()
                .map(|engine| engine.increment_epoch())
                .is_some()
        })
        .map_err(|e| EngineError(format!("cannot start the wasm-epoch thread: {e}")))?;
        Ok(PluginEngine {
            engine,
            linker,
            options,
            ticker,
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

    /// Hold while guest code runs: the epoch (call deadlines) advances only then.
    pub fn ticking(&self) -> Ticking<'_> {
        self.ticker.ticking()
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

/// WASI (deny-by-default, see [`super::state`]) and the plugin imports.
fn plugin_linker(engine: &Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    super::network::add_http_to_linker(&mut linker)?;
    PluginImports::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |state| state)?;
    linker.allow_shadowing(true);
    sync_io::poll::add_to_linker::<PluginState, HasWorkerSafeIo>(&mut linker, worker_safe_io)?;
    sync_io::streams::add_to_linker::<PluginState, HasWorkerSafeIo>(&mut linker, worker_safe_io)?;
    // A blocking poll would park the calling thread in the host, where the epoch deadline
    // cannot reach it (e.g. a guest `sleep`): refuse it instead.
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

/// `wasi:io/poll` and `wasi:io/streams` over a store's resource table, for plugin calls that
/// run inline on a Tokio worker thread (see `filter::run_off_the_worker`).
///
/// wasmtime-wasi's synchronous bindings run some of these methods (the `blocking-*` ones,
/// stream drops, `pollable.ready`) by blocking on the ambient Tokio runtime, which panics on
/// a worker thread; here those methods run inside `block_in_place` when called from a
/// multi-threaded runtime's worker, and every other method as it is.
struct WorkerSafeIo<'a>(&'a mut ResourceTable);

struct HasWorkerSafeIo;

impl HasData for HasWorkerSafeIo {
    type Data<'a> = WorkerSafeIo<'a>;
}

fn worker_safe_io(state: &mut PluginState) -> WorkerSafeIo<'_> {
    WorkerSafeIo(state.ctx().table)
}

/// Run `f`, which may block on a Tokio runtime: off the worker if called from one.
fn may_block_on_tokio<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl sync_io::poll::Host for WorkerSafeIo<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        may_block_on_tokio(|| sync_io::poll::Host::poll(self.0, pollables))
    }
}

impl sync_io::poll::HostPollable for WorkerSafeIo<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        may_block_on_tokio(|| sync_io::poll::HostPollable::ready(self.0, pollable))
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        may_block_on_tokio(|| sync_io::poll::HostPollable::block(self.0, pollable))
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        sync_io::poll::HostPollable::drop(self.0, pollable)
    }
}

impl sync_io::streams::Host for WorkerSafeIo<'_> {
    fn convert_stream_error(
        &mut self,
        err: StreamError,
    ) -> wasmtime::Result<sync_io::streams::StreamError> {
        sync_io::streams::Host::convert_stream_error(self.0, err)
    }
}

impl sync_io::streams::HostOutputStream for WorkerSafeIo<'_> {
    fn drop(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        may_block_on_tokio(|| sync_io::streams::HostOutputStream::drop(self.0, stream))
    }

    fn check_write(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<u64> {
        sync_io::streams::HostOutputStream::check_write(self.0, stream)
    }

    fn write(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        sync_io::streams::HostOutputStream::write(self.0, stream, bytes)
    }

    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        may_block_on_tokio(|| {
            sync_io::streams::HostOutputStream::blocking_write_and_flush(self.0, stream, bytes)
        })
    }

    fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        may_block_on_tokio(|| {
            sync_io::streams::HostOutputStream::blocking_write_zeroes_and_flush(self.0, stream, len)
        })
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        sync_io::streams::HostOutputStream::subscribe(self.0, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        sync_io::streams::HostOutputStream::write_zeroes(self.0, stream, len)
    }

    fn flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        sync_io::streams::HostOutputStream::flush(self.0, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        may_block_on_tokio(|| sync_io::streams::HostOutputStream::blocking_flush(self.0, stream))
    }

    fn splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        sync_io::streams::HostOutputStream::splice(self.0, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        may_block_on_tokio(|| {
            sync_io::streams::HostOutputStream::blocking_splice(self.0, dst, src, len)
        })
    }
}

impl sync_io::streams::HostInputStream for WorkerSafeIo<'_> {
    fn drop(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<()> {
        may_block_on_tokio(|| sync_io::streams::HostInputStream::drop(self.0, stream))
    }

    fn read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        sync_io::streams::HostInputStream::read(self.0, stream, len)
    }

    fn blocking_read(
        &mut self,
        stream: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        may_block_on_tokio(|| sync_io::streams::HostInputStream::blocking_read(self.0, stream, len))
    }

    fn skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        sync_io::streams::HostInputStream::skip(self.0, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        may_block_on_tokio(|| sync_io::streams::HostInputStream::blocking_skip(self.0, stream, len))
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynInputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        sync_io::streams::HostInputStream::subscribe(self.0, stream)
    }
}
