//! What the subcommands do beyond parsing: logging setup, the runtime, signals.

pub mod cat;
pub mod format;
pub mod loadgen;
pub mod plugin;
pub mod startup;
pub mod test;
pub mod top;

use wasm_router::ops::metrics::Metrics;
use wasm_router::ops::shutdown;
use wasm_router::topology::Config;
use wasm_router::topology::Router;

/// The router's own log on stderr (stdout carries the `stdout` output): level from `RUST_LOG`
/// or the config, text or JSON, rate-limited, secrets redacted (see `ops::logging`).
pub fn init_logging(level: Option<&str>, format: wasm_router::ops::logging::LogFormat) {
    wasm_router::ops::logging::init(level, format);
}

/// Write a command's report to stdout. A reader that went away (`wasm-router plugin inspect x.wasm
/// | head`) is not an error: the rest of the report is not wanted.
pub fn print_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// The tokio runtime every command runs on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// Run the router until SIGTERM or SIGINT (or an input that ends it), then shut down within
/// the configured grace; returns the process exit code. With the path of the config file,
/// SIGHUP reloads plugins and config (see `topology::reload`).
pub async fn run_router(
    config: Config,
    config_path: Option<std::path::PathBuf>,
) -> anyhow::Result<u8> {
    // Before the build: a plugin replaced while it compiles is then seen as changed.
    let baseline = config_path
        .map(|path| wasm_router::topology::reload::ReloadBaseline::capture(path, &config));
    let mut router = Router::build(&config, Metrics::new()).await?;
    if let Some(baseline) = baseline {
        router.enable_reload(baseline);
    }
    let reload = router.reload_requests();
    let (trigger, shutdown) = shutdown::channel();
    tokio::spawn(async move {
        wait_for_signal(&reload).await;
        tracing::info!("signal received");
        trigger.trigger();
    });
    Ok(router.run(shutdown).await)
}

/// Wait for SIGTERM or SIGINT; each SIGHUP meanwhile requests a reload.
async fn wait_for_signal(reload: &wasm_router::ops::reload::ReloadRequests) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading");
                reload.request();
            }
        }
    }
}
