//! Assembles a running router from a validated [`Config`]: outputs with their buffers and
//! tasks, the pipeline, and the inputs; and shuts it down within `grace`.
//!
//! Shutdown (SIGTERM, or an input that ends the router: the exec input's `exit_after_oneshot`,
//! whose exit code the process then exits with) within `grace` (default 30 s, inside the ECS
//! stop timeout): stop accepting connections, but keep reading the open ones while their
//! senders are still connected — an app container's last lines arrive after the signal — for up to two thirds of
//! `grace`. Outputs keep delivering meanwhile. Once the inputs are done, lines still waiting for
//! their other pieces in partial reassembly and multiline groups are passed on, the buffers are closed, and
//! every output delivers what is buffered until `grace` is over. Then it stops: what a memory
//! buffer still holds is counted as `shutdown_undelivered`; what a disk buffer holds stays on
//! disk and is delivered after the next start.

use super::reload::{ReloadBaseline, RouterReload};
use super::{Config, OutputConfig};
use crate::buffer::{BudgetSource, MemoryBudget, open_buffer};
use crate::filter::FilterContext;
use crate::input::{InputEnd, ListenAddr, RunningInput};
use crate::ops::fluent_bit_api::Instances;
use crate::ops::http::{HttpBindError, HttpServer};
use crate::ops::metrics::{Component, Metrics};
use crate::ops::reload::ReloadRequests;
use crate::ops::shutdown::Shutdown;
use crate::output::dead_letter::{DEFAULT_DEAD_LETTER_BYTES, DeadLetter, DeadLetterFile};
use crate::output::{OutputContext, OutputRunner, OutputTask, RetryPolicy, WindowLength};
use crate::pipeline::partial::PartialReassembly;
use crate::pipeline::{Filter, FilterStage, OutputRoute, Pipeline, TagMatcher};
use crate::stream::StreamProcessor;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Why a router could not be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An input could not listen.
    #[error(transparent)]
    Bind(#[from] crate::input::BindError),
    /// The health and metrics server could not listen.
    #[error(transparent)]
    Http(#[from] HttpBindError),
    /// A filter or output could not be created.
    #[error("{component}: {message}")]
    Component {
        /// `filters[0]`, `outputs[1]`, ….
        component: String,
        /// What went wrong and what to do.
        message: String,
    },
}

/// A router whose listeners are bound and whose outputs are running.
pub struct Router {
    inputs: Vec<Box<dyn RunningInput>>,
    pipeline: Arc<Pipeline>,
    outputs: JoinSet<()>,
    deadline: watch::Sender<Option<Instant>>,
    grace: Duration,
    metrics: Arc<Metrics>,
    http: Option<HttpServer>,
    reload: RouterReload,
    budget: MemoryBudget,
}

impl Router {
    /// Build every component of `config`, bind the inputs and start the outputs.
    pub async fn build(config: &Config, metrics: Arc<Metrics>) -> Result<Router, BuildError> {
        let (deadline, deadline_rx) = watch::channel(None);
        let mut outputs = JoinSet::new();
        let mut routes = Vec::new();
        let budget = memory_budget(config);
        // Every buffer first: a dead-letter destination may name any output.
        let mut buffers = Vec::new();
        for (i, out) in config.outputs.iter().enumerate() {
            let component = Component::output(out.id());
            let kind = out.keys().buffer.kind(&component.id);
            let opened = open_buffer(&kind, &budget, component, metrics.clone()).map_err(|e| {
                BuildError::Component {
                    component: format!("outputs[{i}] ({})", out.type_name()),
                    message: e.to_string(),
                }
            })?;
            buffers.push(opened);
        }
        let writers: Vec<_> = buffers.iter().map(|(w, _)| w.clone()).collect();
        let mut dead_letter_files = HashMap::new();
        for ((i, out), (writer, reader)) in config.outputs.iter().enumerate().zip(buffers) {
            let keys = out.keys();
            let key = format!("outputs[{i}]");
            let fail = |message: String| BuildError::Component {
                component: format!("{key} ({})", out.type_name()),
                message,
            };
            let component = Component::output(out.id());
            metrics.track_output(&component);
            let runner = OutputRunner {
                component: component.clone(),
                metrics: metrics.clone(),
                deadline: deadline_rx.clone(),
                retry: RetryPolicy {
                    backoff_base: config.service.retry_backoff_base.0,
                    backoff_cap: config.service.retry_backoff_cap.0,
                    retry_until: keys
                        .retry_until
                        .map_or(crate::output::DEFAULT_RETRY_UNTIL, |d| d.0),
                    retry_limit: keys.retry_limit,
                },
                dead_letter: dead_letter(config, out, &writers, &mut dead_letter_files)
                    .map_err(fail)?,
                window: WindowLength::new(
                    keys.batch_timeout
                        .or(config.service.batch_timeout)
                        .map_or_else(|| out.component().default_batch_timeout(), |d| d.0),
                ),
            };
            let cx = OutputContext {
                key: &key,
                name: keys.route.name.as_deref(),
                component: component.clone(),
                metrics: metrics.clone(),
                plugin_cache_dir: config.service.plugin_cache_dir.as_deref(),
            };
            let running = out
                .component()
                .build(cx, OutputTask { reader, runner })
                .await
                .map_err(fail)?;
            outputs.spawn(running);
            routes.push(OutputRoute {
                matcher: keys.route.matcher(),
                buffer: writer,
                component,
            });
        }
        let mut filters = Vec::new();
        // Reassembly runs first, so that every filter sees whole lines.
        let partial = config.service.partial_reassembly.then(|| {
            PartialReassembly::new(
                config.service.partial_flush_timeout.0,
                config.service.partial_max_bytes.0 as usize,
                metrics.clone(),
            )
        });
        if let Some(p) = &partial {
            filters.push(FilterStage {
                matcher: TagMatcher::Any,
                component: p.component().clone(),
                filter: p.clone(),
            });
        }
        let mut reload = RouterReload::default();
        let mut instances = Instances::default();
        for input in &config.inputs {
            let alias = input.component().name();
            let id = alias.unwrap_or(input.type_name());
            instances.push("input", id, input.type_name(), alias);
        }
        let ids = config.filter_ids();
        for (f, built) in config
            .filters
            .iter()
            .zip(build_filters(config, &ids, &metrics))
        {
            let (id, filter) = built?;
            instances.push("filter", &id, f.type_name(), f.route().name.as_deref());
            filters.push(FilterStage {
                matcher: f.route().matcher(),
                component: Component::filter(&id),
                filter: reload.slot(&id, filter),
            });
        }
        let streams = StreamProcessor::new("stream_tasks", &config.stream_tasks).map_err(|p| {
            BuildError::Component {
                component: "stream_tasks".into(),
                message: p.join("; "),
            }
        })?;
        for warning in streams.warnings() {
            tracing::warn!("{warning}");
        }
        let pipeline =
            Arc::new(Pipeline::new(filters, routes, metrics.clone()).with_streams(streams));
        let mut inputs = Vec::new();
        for input in &config.inputs {
            inputs.push(
                input
                    .component()
                    .bind(metrics.clone(), budget.input())
                    .await?,
            );
        }
        let http = match &config.service.http_listen {
            Some(listen) => Some(
                HttpServer::bind(
                    listen,
                    metrics.clone(),
                    config.service.delivery_stuck_after.0,
                )
                .await?,
            ),
            None => None,
        }
        .map(|server| {
            for out in &config.outputs {
                let alias = out.keys().route.name.as_deref();
                instances.push("output", out.id(), out.type_name(), alias);
            }
            server.with_reload(reload.requests()).with_fluent_bit(
                instances,
                config.service.health_check.clone(),
                config.service.storage_metrics,
            )
        });
        Ok(Router {
            inputs,
            pipeline,
            outputs,
            deadline,
            grace: config.service.grace.0,
            metrics,
            http,
            reload,
            budget,
        })
    }

    /// Every address the inputs listen on.
    pub fn local_addrs(&self) -> Vec<ListenAddr> {
        self.inputs.iter().flat_map(|i| i.local_addrs()).collect()
    }

    /// The address of the health and metrics server, when it is on.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http.as_ref().map(HttpServer::local_addr)
    }

    /// Reload plugins and config as `baseline` (captured before [`Router::build`]) describes:
    /// on SIGHUP or `POST /api/v2/reload`, and when the files change (`[service] reload_on_change`).
    pub fn enable_reload(&mut self, baseline: ReloadBaseline) {
        let builder = super::reload::router_builder();
        self.reload.enable(baseline, builder, self.metrics.clone());
    }

    /// Where to ask for a reload.
    pub fn reload_requests(&self) -> ReloadRequests {
        self.reload.requests()
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The memory budget the buffers share.
    pub fn memory_budget(&self) -> &MemoryBudget {
        &self.budget
    }

    /// Serve until `shutdown` (or until an input asks the router to exit), then drain within
    /// `grace`. Returns the process exit code: 0, or the one an input asked for.
    pub async fn run(self, shutdown: Shutdown) -> u8 {
        let Router {
            inputs,
            pipeline,
            mut outputs,
            deadline,
            grace,
            http,
            reload,
            ..
        } = self;
        let expiry_timer = pipeline.start_expiry_timer();
        // Health and metrics stay up while the router drains; they stop last.
        let (http_stop, http_shutdown) = crate::ops::shutdown::channel();
        let http_task = http.map(|server| tokio::spawn(server.run(http_shutdown)));
        // The signal, or an input that ends the router (exec's `exit_after_oneshot`), stops
        // every task through `stopping`.
        let (stop, stopping) = crate::ops::shutdown::channel();
        let _reloads = reload.spawn(stopping.clone());
        let mut shutdown_wait = shutdown;
        let mut servers = JoinSet::new();
        for input in inputs {
            servers.spawn(input.run(
                pipeline.clone(),
                stopping.clone(),
                ShutdownSchedule::input_drain(grace),
            ));
        }
        let mut exit_code = 0;
        loop {
            tokio::select! {
                _ = shutdown_wait.wait() => break,
                Some(ended) = servers.join_next() => {
                    if let Ok(InputEnd::ExitRouter(code)) = ended {
                        tracing::info!(exit_code = code, "an input asked the router to exit");
                        exit_code = code;
                        break;
                    }
                }
            }
        }
        stop.trigger();
        let schedule = ShutdownSchedule::starting(Instant::now(), grace);
        let end = schedule.end;
        tracing::info!(?grace, "shutting down: draining inputs, then outputs");
        deadline.send_replace(Some(end));
        while servers.join_next().await.is_some() {}
        if let Some(timer) = expiry_timer {
            timer.abort();
            let _ = timer.await;
        }
        // Partial lines and multiline groups still held; their senders were acked.
        pipeline.flush_held().await;
        // The last pipeline reference closes every buffer: outputs finish what is queued.
        drop(pipeline);
        let finished = tokio::time::timeout_at(schedule.stop_outputs.into(), async {
            while outputs.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            tracing::warn!("outputs still busy after grace; stopping them");
            outputs.shutdown().await;
        }
        http_stop.trigger();
        if let Some(task) = http_task {
            let _ = task.await;
        }
        tracing::info!("shutdown complete");
        exit_code
    }
}

/// When each phase of a shutdown ends. Computed from any `grace` without overflow: the config
/// bounds durations (`DurationStr::MAX`), and this saturates beyond that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownSchedule {
    /// Outputs deliver until then.
    pub end: Instant,
    /// Outputs still busy then are stopped: one second after `end`.
    pub stop_outputs: Instant,
}

impl ShutdownSchedule {
    /// The schedule of a shutdown that starts at `now`.
    pub fn starting(now: Instant, grace: Duration) -> Self {
        let end = later(now, grace);
        ShutdownSchedule {
            end,
            stop_outputs: later(end, Duration::from_secs(1)),
        }
    }

    /// How long the inputs keep reading open connections after the signal: two thirds of
    /// `grace`, leaving the rest for the outputs.
    pub fn input_drain(grace: Duration) -> Duration {
        grace - grace / 3
    }
}

/// `t + d`, or the latest instant representable within [`DurationStr::MAX`] of `t`.
///
/// [`DurationStr::MAX`]: crate::config::DurationStr::MAX
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(crate::config::DurationStr::MAX))
        .unwrap_or(t)
}

/// A filter's component id and the filter, or why it could not be built.
type BuiltFilter = Result<(String, Arc<dyn Filter>), BuildError>;

/// Every filter of `config`, in order ([`build_filter`]). WASM filters load on threads of their
/// own, side by side: loading a plugin (mapping its compiled code, instantiating it, its `init`)
/// is a few milliseconds of CPU each, and with several plugins that was most of the time from
/// start to accepting (three plugins: 13.9 ms, one: 4.5 ms, none: 2.9 ms).
fn build_filters(
    config: &Config,
    ids: &[Option<String>],
    metrics: &Arc<Metrics>,
) -> Vec<BuiltFilter> {
    let build = |i: usize| build_filter(config, i, ids[i].as_deref(), metrics.clone());
    let plugins = config
        .filters
        .iter()
        .filter(|f| f.component().plugin_path().is_some())
        .count();
    if plugins < 2 {
        return (0..config.filters.len()).map(build).collect();
    }
    // The threads see the runtime the router builds in, as a filter built here would.
    let runtime = tokio::runtime::Handle::try_current().ok();
    let build_there = |i: usize| {
        let _entered = runtime.as_ref().map(|r| r.enter());
        build(i)
    };
    std::thread::scope(|scope| {
        let loading: Vec<_> = config
            .filters
            .iter()
            .enumerate()
            .map(|(i, f)| {
                f.component()
                    .plugin_path()
                    .map(|_| scope.spawn(move || build_there(i)))
            })
            .collect();
        loading
            .into_iter()
            .enumerate()
            .map(|(i, thread)| match thread {
                Some(thread) => thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                None => build(i),
            })
            .collect()
    })
}

/// Build filter `i` of `config` as the router runs it, and as reload rebuilds it: a WASM
/// plugin loaded, its config checked against its schema and a first instance initialised; a
/// native filter compiled. `id` is its id from [`Config::filter_ids`] (`None`: the filter
/// names itself). Returns its component id and the filter.
pub fn build_filter(
    config: &Config,
    i: usize,
    id: Option<&str>,
    metrics: Arc<Metrics>,
) -> Result<(String, Arc<dyn Filter>), BuildError> {
    let f = &config.filters[i];
    let cx = FilterContext {
        name: f.route().name.as_deref(),
        default_id: id.unwrap_or(f.type_name()),
        metrics,
        plugin_cache_dir: config.service.plugin_cache_dir.as_deref(),
    };
    f.component()
        .build(cx)
        .map_err(|message| BuildError::Component {
            component: format!("filters[{i}] ({})", f.type_name()),
            message,
        })
}

/// The router-wide memory budget of `config`, logged with where its size came from.
fn memory_budget(config: &Config) -> MemoryBudget {
    let (budget, source) = MemoryBudget::for_router(config.service.memory_budget.map(|b| b.0));
    let bytes = budget.total();
    match source {
        BudgetSource::Configured => tracing::info!(
            bytes,
            "memory budget of the buffers: [service] memory_budget"
        ),
        BudgetSource::Cgroup { file, limit } => {
            tracing::info!(bytes, cgroup_limit = limit, %file, "memory budget of the buffers: half the container's memory limit")
        }
        BudgetSource::Default => {
            tracing::info!(
                bytes,
                "memory budget of the buffers: the default (no cgroup memory limit visible)"
            )
        }
    }
    budget
}

/// The dead-letter destination of `out`: a file (one handle per path, shared) or another
/// output's buffer (validated to exist).
fn dead_letter(
    config: &Config,
    out: &OutputConfig,
    writers: &[crate::buffer::BufferWriter],
    files: &mut HashMap<std::path::PathBuf, DeadLetterFile>,
) -> Result<Option<DeadLetter>, String> {
    let Some(dl) = &out.keys().dead_letter else {
        return Ok(None);
    };
    if let Some(path) = &dl.path {
        if let Some(file) = files.get(path) {
            return Ok(Some(DeadLetter::File(file.clone())));
        }
        let max = dl.max_bytes.map_or(DEFAULT_DEAD_LETTER_BYTES, |b| b.0);
        let file = DeadLetterFile::open(path, max).map_err(|e| e.to_string())?;
        files.insert(path.clone(), file.clone());
        return Ok(Some(DeadLetter::File(file)));
    }
    let name = dl.output.as_deref().unwrap_or_default();
    let index = config
        .outputs
        .iter()
        .position(|o| o.id() == name)
        .ok_or_else(|| format!("dead_letter.output {name:?} not found"))?;
    Ok(Some(DeadLetter::Output {
        name: name.to_string(),
        buffer: writers[index].clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DurationStr;

    #[test]
    fn the_shutdown_schedule_splits_grace_and_never_overflows() {
        let now = Instant::now();
        let s = ShutdownSchedule::starting(now, Duration::from_secs(30));
        assert_eq!(s.end, now + Duration::from_secs(30));
        assert_eq!(s.stop_outputs, now + Duration::from_secs(31));
        assert_eq!(
            ShutdownSchedule::input_drain(Duration::from_secs(30)),
            Duration::from_secs(20)
        );
        assert_eq!(
            ShutdownSchedule::input_drain(Duration::ZERO),
            Duration::ZERO
        );
        // `grace * 2 / 3` overflowed here; `Instant + grace` panicked.
        for grace in [
            DurationStr::MAX,
            Duration::from_secs(u64::MAX),
            Duration::MAX,
        ] {
            let drain = ShutdownSchedule::input_drain(grace);
            assert!(drain <= grace && drain >= grace / 2, "{grace:?}");
            let s = ShutdownSchedule::starting(now, grace);
            assert!(s.end > now && s.stop_outputs >= s.end, "{grace:?}");
        }
    }
}
