//! What the subcommands do beyond parsing: logging setup, the runtime, signals.

pub mod cat;
pub mod loadgen;
pub mod startup;

use wasm_router::config::Config;
use wasm_router::ops::metrics::Metrics;
use wasm_router::ops::shutdown;
use wasm_router::router::Router;

/// The router's own log on stderr (stdout carries the `stdout` output), level from the
/// config or `RUST_LOG`.
pub fn init_logging(level: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level.unwrap_or("info")));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// The tokio runtime every command runs on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}

/// Run the router until SIGTERM or SIGINT, then shut down within the configured grace.
pub async fn run_router(config: Config) -> anyhow::Result<()> {
    let router = Router::build(&config, Metrics::new()).await?;
    let (trigger, shutdown) = shutdown::channel();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received");
        trigger.trigger();
    });
    router.run(shutdown).await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
