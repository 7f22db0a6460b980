//! The `wasm-router` command line. Parsing only: every command calls into the library.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use wasm_router::config;

mod cli;

/// A log router for containers: Fluentd forward protocol in, sandboxed WebAssembly filters and
/// outputs, CloudWatch Logs / Firehose / S3 / vendors out.
#[derive(Parser)]
#[command(name = "wasm-router", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the router (with no -c: forward on 127.0.0.1:24224 → stdout).
    Run {
        /// The configuration file (TOML).
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and exit: 0 when valid, 1 with the problems otherwise.
    Validate {
        /// The configuration file (TOML).
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
    },
    /// Send events to a forward-protocol receiver, like fluent-cat: JSON objects, one per line,
    /// from the arguments or else from standard input.
    Cat(cli::cat::CatArgs),
    /// A live view of a running router's throughput, drops and plugin latency per component,
    /// read from its metrics endpoint (`[service] http_listen`).
    Top(cli::top::TopArgs),
    /// Benchmark load generator: send FireLens-shaped events in any forward mode, over N
    /// connections, flat out or at a rate, and report events/s, acks, latency, router CPU and RSS.
    BenchLoad(cli::loadgen::LoadArgs),
    /// Benchmark: time from starting a command (e.g. the router) until its port accepts connections.
    BenchStartup(cli::startup::StartupArgs),
    /// Run a WASM plugin on sample events and show what it does to each (exit 1 on a fault or
    /// an --expect mismatch).
    Test(cli::test::TestArgs),
    /// Inspect or precompile a WASM plugin.
    Plugin(cli::plugin::PluginArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", wasm_router::ops::logging::redact(&format!("{e:#}")));
            std::process::ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Run { config } => {
            let (cfg, source) = match &config {
                Some(path) => (config::load(path)?, path.display().to_string()),
                None => (config::parse(config::EMBEDDED_DEFAULT, "<embedded default>")?, "<embedded default>".into()),
            };
            cli::init_logging(cfg.service.log_level.as_deref(), cfg.service.log_format);
            tracing::info!(config = %source, "starting wasm-router {}", env!("CARGO_PKG_VERSION"));
            cli::runtime()?.block_on(cli::run_router(cfg, config.clone())).context("router failed")?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Validate { config } => match config::load(&config) {
            Ok(_) => {
                println!("{}: valid", config.display());
                Ok(std::process::ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(std::process::ExitCode::from(1))
            }
        },
        Command::Cat(args) => cli::runtime()?.block_on(cli::cat::run(args)),
        Command::Top(args) => cli::top::run(args),
        Command::BenchLoad(args) => cli::loadgen::run(args),
        Command::BenchStartup(args) => cli::startup::run(args),
        Command::Test(args) => cli::test::run(args),
        Command::Plugin(args) => cli::plugin::run(args),
    }
}
