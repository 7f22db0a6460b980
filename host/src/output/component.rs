//! What every output type provides to the topology ([`crate::topology`]): its config checks and
//! its build. An output type is its folder plus one line in the registry
//! (`topology/registry.rs`); the topology reads `[[outputs]]` tables into the registered config
//! types and loops over them through [`OutputComponent`].

use super::{Output, OutputRunner, run_output};
use crate::buffer::BufferReader;
use crate::ops::metrics::{Component, Metrics};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

/// A future the topology spawns: an output draining its buffer until shutdown.
pub type RunningOutput = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A boxed future borrowing the config (building may be async: AWS clients).
pub type BuildFuture<'a> = Pin<Box<dyn Future<Output = Result<RunningOutput, String>> + Send + 'a>>;

/// What building or checking an output gets from the topology.
pub struct OutputContext<'a> {
    /// Its key in the config (`outputs[2]`), for messages.
    pub key: &'a str,
    /// Its `name`, if set.
    pub name: Option<&'a str>,
    /// Its telemetry identity (id = `name`, else its type).
    pub component: Component,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// `[service] plugin_cache_dir`, for outputs that load a plugin.
    pub plugin_cache_dir: Option<&'a Path>,
}

/// The task that will drain an output's buffer: its buffer's reader and its runner.
pub struct OutputTask {
    /// The output's buffer.
    pub reader: BufferReader,
    /// Retries, dead letters, shutdown.
    pub runner: OutputRunner,
}

impl OutputTask {
    /// The future that runs `output` over this task's buffer.
    pub fn run<O: Output>(self, output: O) -> RunningOutput {
        Box::pin(run_output(output, self.reader, self.runner))
    }

    /// [`OutputComponent::build`] for an output built by an async `build`: build it, then run
    /// it over this task's buffer.
    pub fn run_built<'a, O, E>(
        self,
        build: impl Future<Output = Result<O, E>> + Send + 'a,
    ) -> BuildFuture<'a>
    where
        O: Output,
        E: std::fmt::Display,
    {
        Box::pin(async move {
            let output = build.await.map_err(|e| e.to_string())?;
            Ok(self.run(output))
        })
    }
}

/// An output type's config: its checks and its build.
pub trait OutputComponent: std::fmt::Debug + Send + Sync {
    /// Check the output's own keys (the shared ones are checked by the topology), adding one
    /// problem per mistake, each starting with `key` (`outputs[2]`). Pure: no file, network or
    /// plugin is touched (`wasm-router validate` without `--deep` stops here).
    fn validate(&self, _key: &str, _id: &str, _problems: &mut Vec<String>) {}

    /// What building would refuse that [`validate`](Self::validate) cannot see, short of
    /// opening connections (e.g. loading a plugin); `wasm-router validate` runs it. Returns
    /// the problems and the warnings.
    fn check(&self, _cx: &OutputContext<'_>) -> (Vec<String>, Vec<String>) {
        (Vec::new(), Vec::new())
    }

    /// The flush window when neither the output nor `[service]` sets `batch_timeout`: zero
    /// (send at once) unless the output's destination charges per request.
    fn default_batch_timeout(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// Build the output and return the future draining `task`'s buffer into it.
    fn build<'a>(&'a self, cx: OutputContext<'a>, task: OutputTask) -> BuildFuture<'a>;
}
