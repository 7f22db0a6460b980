//! What the subcommands do beyond parsing: logging setup, the runtime, signals.

pub mod cat;
pub mod top;
pub mod loadgen;
pub mod startup;

use wasm_router::config::Config;
use wasm_router::ops::metrics::Metrics;
use wasm_router::ops::shutdown;
use wasm_router::router::Router;

/// The router's own log on stderr (stdout carries the `stdout` output): level from `RUST_LOG`
/// or the config, text or JSON, rate-limited, secrets redacted (see `ops::logging`).
pub fn init_logging(level: Option<&str>, format: wasm_router::ops::logging::LogFormat) {
    wasm_router::ops::logging::init(level, format);
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
