//! Assembles a running router from a validated [`Config`]: outputs with their buffers and
//! tasks, the pipeline, and the inputs; and shuts it down within `grace`.
//!
//! Shutdown order: stop accepting connections; let open connections finish (they may still be
//! sending what an app wrote before it stopped) for up to two thirds of `grace`; close the
//! buffers; let every output deliver what is buffered until `grace` is over. What is still
//! undelivered then is counted as dropped under `shutdown_undelivered`.

use crate::buffer::memory_buffer;
use crate::config::{Config, FilterConfig, InputConfig, OutputConfig, tag_matcher};
use crate::input::forward::{ForwardServer, ListenAddr};
use crate::ops::http::{HttpBindError, HttpServer};
use crate::ops::reload::{ReloadRequests, RouterReload};
use crate::ops::metrics::{Component, Metrics};
use crate::ops::shutdown::Shutdown;
use crate::output::{Output, null::NullOutput, run_output, stdout::StdoutOutput};
use crate::pipeline::{FilterStage, OutputRoute, Pipeline};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Why a router could not be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An input could not listen.
    #[error(transparent)]
    Bind(#[from] crate::input::forward::server::BindError),
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
    inputs: Vec<ForwardServer>,
    pipeline: Arc<Pipeline>,
    outputs: JoinSet<()>,
    deadline: watch::Sender<Option<Instant>>,
    grace: Duration,
    metrics: Arc<Metrics>,
    http: Option<HttpServer>,
    reload: RouterReload,
}

impl Router {
    /// Build every component of `config`, bind the inputs and start the outputs.
    pub async fn build(config: &Config, metrics: Arc<Metrics>) -> Result<Router, BuildError> {
        let (deadline, deadline_rx) = watch::channel(None);
        let mut outputs = JoinSet::new();
        let mut routes = Vec::new();
        for (i, out) in config.outputs.iter().enumerate() {
            let routing = out.routing();
            let component = Component::output(routing.name().unwrap_or(out.type_name()));
            let buffer = routing.buffer();
            metrics.track_output(&component);
            let (writer, reader) =
                memory_buffer(buffer.max_bytes.0 as usize, buffer.when_full, component.clone(), metrics.clone());
            let task = OutputTask { reader, component: component.clone(), metrics: metrics.clone(), deadline: deadline_rx.clone() };
            let _fail = |message: String| BuildError::Component { component: format!("outputs[{i}] ({})", out.type_name()), message };
            match out {
                OutputConfig::Stdout(_) => task.spawn(&mut outputs, StdoutOutput::new()),
                OutputConfig::Null(_) => task.spawn(&mut outputs, NullOutput),
            }
            routes.push(OutputRoute {
                matcher: tag_matcher(routing.match_pattern(), routing.match_regex()),
                buffer: writer,
                component,
            });
        }
        let mut filters = Vec::new();
        let mut reload = RouterReload::default();
        for (i, f) in config.filters.iter().enumerate() {
            let FilterConfig::Wasm(w) = f;
            let filter = crate::plugin::build_filter(w, &config.service, metrics.clone()).map_err(|message| {
                BuildError::Component { component: format!("filters[{i}] ({})", w.path.display()), message }
            })?;
            let filter = (filter.0.clone(), reload.slot(&filter.0, filter.1));
            filters.push(FilterStage {
                matcher: tag_matcher(w.match_.as_deref(), w.match_regex.as_deref()),
                component: Component::filter(filter.0),
                filter: filter.1,
            });
        }
        let pipeline = Arc::new(Pipeline::new(filters, routes, metrics.clone()));
        let mut inputs = Vec::new();
        for input in &config.inputs {
            let InputConfig::Forward(f) = input;
            inputs.push(ForwardServer::bind(f, metrics.clone()).await?);
        }
        let http = match &config.service.http_listen {
            Some(listen) => Some(HttpServer::bind(listen, metrics.clone(), config.service.delivery_stuck_after.0).await?),
            None => None,
        }
        .map(|server| server.with_reload(reload.requests()));
        Ok(Router { inputs, pipeline, outputs, deadline, grace: config.service.grace.0, metrics, http, reload })
    }

    /// Every address the inputs listen on.
    pub fn local_addrs(&self) -> Vec<ListenAddr> {
        self.inputs.iter().flat_map(|i| i.local_addrs()).collect()
    }

    /// The address of the health and metrics server, when it is on.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http.as_ref().map(HttpServer::local_addr)
    }

    /// Reload plugins from `config_path` (the file `config` was loaded from) on SIGHUP or
    /// `POST /api/v2/reload`, and when the files change (`[service] reload_on_change`).
    pub fn enable_reload(&mut self, config_path: std::path::PathBuf, config: &Config) {
        let builder = crate::ops::reload::plugin_runtime_builder();
        self.reload.enable(config_path, config, builder, self.metrics.clone());
    }

    /// Where to ask for a reload.
    pub fn reload_requests(&self) -> ReloadRequests {
        self.reload.requests()
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Serve until `shutdown`, then drain within `grace`.
    pub async fn run(self, shutdown: Shutdown) {
        let Router { inputs, pipeline, mut outputs, deadline, grace, http, reload, .. } = self;
        // Health and metrics stay up while the router drains; they stop last.
        let (http_stop, http_shutdown) = crate::ops::shutdown::channel();
        let http_task = http.map(|server| tokio::spawn(server.run(http_shutdown)));
        let _reloads = reload.spawn(shutdown.clone());
        let mut shutdown_wait = shutdown.clone();
        let mut servers = JoinSet::new();
        for input in inputs {
            servers.spawn(input.run(pipeline.clone(), shutdown.clone(), grace * 2 / 3));
        }
        shutdown_wait.wait().await;
        let end = Instant::now() + grace;
        tracing::info!(?grace, "shutting down: draining inputs, then outputs");
        deadline.send_replace(Some(end));
        while servers.join_next().await.is_some() {}
        // The last pipeline reference closes every buffer: outputs finish what is queued.
        drop(pipeline);
        let finished = tokio::time::timeout_at((end + Duration::from_secs(1)).into(), async {
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
    }
}

/// What an output's task needs besides the output itself.
struct OutputTask {
    reader: crate::buffer::BufferReader,
    component: Component,
    metrics: Arc<Metrics>,
    deadline: watch::Receiver<Option<Instant>>,
}

impl OutputTask {
    fn spawn<O: Output>(self, tasks: &mut JoinSet<()>, output: O) {
        tasks.spawn(run_output(output, self.reader, self.component, self.metrics, self.deadline));
    }
}
