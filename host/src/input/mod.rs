//! Inputs: where events enter the router. Each input type owns its config, its checks and
//! its listeners, and is one line in the registry (`topology/registry.rs`).

pub(crate) mod connections;
pub mod dummy;
pub mod exec;
pub mod forward;
pub mod http;
pub mod tail;
pub mod tcp;

pub use forward::ListenAddr;

use crate::buffer::budget::InputBudget;
use crate::ops::metrics::Metrics;
use crate::ops::shutdown::Shutdown;
use crate::pipeline::Pipeline;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Why an input could not start.
#[derive(Debug, thiserror::Error)]
#[error("input {input}: cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The input's name.
    pub input: String,
    /// The address or path it could not listen on.
    pub addr: String,
    /// Why.
    pub source: std::io::Error,
}

/// A boxed future (inputs bind and run asynchronously).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An input type's config: its checks and how it starts listening.
pub trait InputComponent: std::fmt::Debug + Send + Sync {
    /// Check the keys, adding one problem per mistake, each starting with `key` (`inputs[0]`).
    fn validate(&self, key: &str, problems: &mut Vec<String>);

    /// Its `name` (Fluent Bit's `Alias`): its id in metrics and logs, else its type is.
    fn name(&self) -> Option<&str>;

    /// The sockets it would listen on, each with its key (`listen`): two listeners of the
    /// config on one socket are refused before anything binds.
    fn listeners(&self) -> Vec<(&'static str, ListenAddr)>;

    /// Bind its listeners; connections hold memory from `memory`.
    fn bind<'a>(
        &'a self,
        metrics: Arc<Metrics>,
        memory: &'a InputBudget,
    ) -> BoxFuture<'a, Result<Box<dyn RunningInput>, BindError>>;
}

/// How an input's `run` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputEnd {
    /// It stopped (shutdown, or it had nothing more to make); the router goes on.
    Stopped,
    /// The router shuts down as on SIGTERM and the process exits with this code (the exec
    /// input's `exit_after_oneshot`).
    ExitRouter(u8),
}

/// An input whose listeners are bound.
pub trait RunningInput: Send {
    /// Every address it listens on.
    fn local_addrs(&self) -> Vec<ListenAddr>;

    /// Serve until `shutdown`, then keep reading open connections for up to `drain`.
    fn run(
        self: Box<Self>,
        pipeline: Arc<Pipeline>,
        shutdown: Shutdown,
        drain: Duration,
    ) -> BoxFuture<'static, InputEnd>;
}

/// The component impls of an input type: its config's `validate` and `listeners`, its server's
/// `bind`, `local_addrs` and `run`.
macro_rules! input_type {
    ($config:ty => $server:ty) => {
        impl InputComponent for $config {
            fn name(&self) -> Option<&str> {
                self.name.as_deref()
            }

            fn validate(&self, key: &str, problems: &mut Vec<String>) {
                <$config>::validate(self, key, problems);
            }

            fn listeners(&self) -> Vec<(&'static str, ListenAddr)> {
                <$config>::listeners(self)
            }

            fn bind<'a>(
                &'a self,
                metrics: Arc<Metrics>,
                memory: &'a InputBudget,
            ) -> BoxFuture<'a, Result<Box<dyn RunningInput>, BindError>> {
                Box::pin(async move {
                    let server = <$server>::bind(self, metrics, memory).await?;
                    Ok(Box::new(server) as Box<dyn RunningInput>)
                })
            }
        }

        impl RunningInput for $server {
            fn local_addrs(&self) -> Vec<ListenAddr> {
                <$server>::local_addrs(self)
            }

            fn run(
                self: Box<Self>,
                pipeline: Arc<Pipeline>,
                shutdown: Shutdown,
                drain: Duration,
            ) -> BoxFuture<'static, InputEnd> {
                Box::pin(async move {
                    <$server>::run(*self, pipeline, shutdown, drain).await;
                    InputEnd::Stopped
                })
            }
        }
    };
}

input_type!(forward::ForwardInputConfig => forward::ForwardServer);
input_type!(tcp::TcpInputConfig => tcp::TcpServer);
input_type!(http::HttpInputConfig => http::HttpServer);

/// An input without listeners: it reads files, runs a command or generates records.
trait LocalInput: Sized + Send + 'static {
    /// Its config.
    type Config;

    /// Prepare it (nothing is read or run yet).
    fn start(config: &Self::Config, metrics: Arc<Metrics>) -> Result<Self, BindError>;

    /// Run until `shutdown`, then finish what is under way for up to `drain`.
    fn run(
        self,
        pipeline: Arc<Pipeline>,
        shutdown: Shutdown,
        drain: Duration,
    ) -> impl Future<Output = InputEnd> + Send + 'static;
}

/// The component impls of an input without listeners, from its [`LocalInput`] impl.
macro_rules! local_input {
    ($config:ty => $input:ty) => {
        impl InputComponent for $config {
            fn name(&self) -> Option<&str> {
                self.name.as_deref()
            }

            fn validate(&self, key: &str, problems: &mut Vec<String>) {
                <$config>::validate(self, key, problems);
            }

            fn listeners(&self) -> Vec<(&'static str, ListenAddr)> {
                Vec::new()
            }

            fn bind<'a>(
                &'a self,
                metrics: Arc<Metrics>,
                _memory: &'a InputBudget,
            ) -> BoxFuture<'a, Result<Box<dyn RunningInput>, BindError>> {
                let input = <$input as LocalInput>::start(self, metrics);
                Box::pin(std::future::ready(
                    input.map(|i| Box::new(i) as Box<dyn RunningInput>),
                ))
            }
        }

        impl RunningInput for $input {
            fn local_addrs(&self) -> Vec<ListenAddr> {
                Vec::new()
            }

            fn run(
                self: Box<Self>,
                pipeline: Arc<Pipeline>,
                shutdown: Shutdown,
                drain: Duration,
            ) -> BoxFuture<'static, InputEnd> {
                Box::pin(LocalInput::run(*self, pipeline, shutdown, drain))
            }
        }
    };
}

local_input!(dummy::DummyInputConfig => dummy::DummyInput);
local_input!(exec::ExecInputConfig => exec::ExecInput);
local_input!(tail::TailInputConfig => tail::TailInput);

impl LocalInput for dummy::DummyInput {
    type Config = dummy::DummyInputConfig;

    fn start(config: &Self::Config, metrics: Arc<Metrics>) -> Result<Self, BindError> {
        Ok(dummy::DummyInput::new(config, metrics))
    }

    async fn run(self, pipeline: Arc<Pipeline>, shutdown: Shutdown, _drain: Duration) -> InputEnd {
        dummy::DummyInput::run(self, pipeline, shutdown).await;
        InputEnd::Stopped
    }
}

impl LocalInput for exec::ExecInput {
    type Config = exec::ExecInputConfig;

    fn start(config: &Self::Config, metrics: Arc<Metrics>) -> Result<Self, BindError> {
        exec::ExecInput::new(config, metrics)
    }

    fn run(
        self,
        pipeline: Arc<Pipeline>,
        shutdown: Shutdown,
        drain: Duration,
    ) -> impl Future<Output = InputEnd> + Send + 'static {
        exec::ExecInput::run(self, pipeline, shutdown, drain)
    }
}

impl LocalInput for tail::TailInput {
    type Config = tail::TailInputConfig;

    /// Reads its offsets file (`db`): one this router cannot use stops the start here.
    fn start(config: &Self::Config, metrics: Arc<Metrics>) -> Result<Self, BindError> {
        tail::TailInput::new(config, metrics).map_err(|e| BindError {
            input: config.name().to_string(),
            addr: config
                .db
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string()),
            source: std::io::Error::other(e.to_string()),
        })
    }

    async fn run(self, pipeline: Arc<Pipeline>, shutdown: Shutdown, drain: Duration) -> InputEnd {
        tail::TailInput::run(self, pipeline, shutdown, drain).await;
        InputEnd::Stopped
    }
}
