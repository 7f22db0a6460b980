//! The `wasm-router` command line. Parsing only: every command calls into the library.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use wasm_router::ops::logging::redact;
use wasm_router::topology;

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
        /// The configuration file: TOML, or a Fluent Bit classic config (`.conf`); with none,
        /// `/fluent-bit/etc/fluent-bit.conf` when it exists.
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// Fluent Bit `-e plugin.so`: accepted and ignored (the outputs are built in).
        #[arg(short = 'e', value_name = "SO")]
        external_plugins: Vec<PathBuf>,
        /// Fluent Bit `-R parsers.conf`: [PARSER] sections for parser filters.
        #[arg(short = 'R', value_name = "PARSERS")]
        parsers_files: Vec<PathBuf>,
    },
    /// Check a configuration file and exit: 0 when valid, 1 with the problems otherwise. On ECS
    /// it first reads the task metadata and the init files, as `run` does.
    Validate {
        /// The configuration file: TOML or a Fluent Bit classic config.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Fluent Bit `-R parsers.conf`, as `run` takes it: [PARSER] sections for parser filters.
        #[arg(short = 'R', value_name = "PARSERS")]
        parsers_files: Vec<PathBuf>,
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
    let cli = Cli::parse_from(fluent_bit_command_line(std::env::args_os().collect()));
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", redact(&format!("{e:#}")));
            std::process::ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Run {
            config,
            external_plugins,
            parsers_files,
        } => {
            let config = config.or_else(|| {
                let image_default = PathBuf::from(topology::fluentbit::FIRELENS_DEFAULT_CONFIG);
                image_default.exists().then_some(image_default)
            });
            // On ECS: task metadata for `${ECS_*}` / `$(ecs_*)`, and the init-process files.
            let ecs = wasm_router::startup::prepare(config, parsers_files)?;
            let (config, parsers_files) = (ecs.config, ecs.parsers_files);
            // `-R` files hold [PARSER] sections for every parser filter (reloads too).
            wasm_router::parsers::set_command_line_files(&parsers_files);
            let (mapped, source) = match &config {
                Some(path) => (topology::load_any(path)?, path.display().to_string()),
                None => {
                    let cfg = topology::parse(topology::EMBEDDED_DEFAULT, "<embedded default>")?;
                    (
                        topology::fluentbit::Mapped {
                            config: cfg,
                            warnings: Vec::new(),
                            classic: false,
                            origins: Default::default(),
                        },
                        "<embedded default>".into(),
                    )
                }
            };
            let cfg = mapped.config;
            cli::init_logging(cfg.service.log_level.as_deref(), cfg.service.log_format);
            tracing::info!(config = %source, "starting wasm-router {}", env!("CARGO_PKG_VERSION"));
            for warning in &mapped.warnings {
                tracing::warn!("{warning}");
            }
            for note in &ecs.notes {
                note.log();
            }
            for so in &external_plugins {
                tracing::info!(plugin = %so.display(), "-e ignored: the cloudwatch, firehose and kinesis outputs are built in");
            }
            for parsers in &parsers_files {
                std::fs::metadata(parsers).with_context(|| {
                    format!("-R {}: cannot read the parsers file", parsers.display())
                })?;
                tracing::info!(parsers = %parsers.display(), "-R: its [PARSER] sections are available to parser filters");
            }
            let code = cli::runtime()?
                // Reload reads either format again (`topology::reload`).
                .block_on(cli::run_router(cfg, config.clone()))
                .context("router failed")?;
            Ok(std::process::ExitCode::from(code))
        }
        Command::Validate {
            config,
            parsers_files,
        } => {
            // The same ECS step as `run`: `${ECS_*}` from the task metadata, the init files.
            let ecs = wasm_router::startup::prepare(Some(config.clone()), parsers_files)?;
            for note in &ecs.notes {
                match note {
                    wasm_router::startup::StartupNote::Info(text) => eprintln!("{}", redact(text)),
                    wasm_router::startup::StartupNote::Warning(text) => {
                        eprintln!("warning: {}", redact(text))
                    }
                }
            }
            wasm_router::parsers::set_command_line_files(&ecs.parsers_files);
            let config = ecs.config.unwrap_or(config);
            match topology::load_any(&config) {
                Ok(mapped) => {
                    for warning in &mapped.warnings {
                        eprintln!("warning: {}", redact(&warning.to_string()));
                    }
                    // Every filter and output plugin is loaded and initialised, as `run` does.
                    let (problems, warnings) =
                        wasm_router::topology::check_components(&mapped.config);
                    for warning in &warnings {
                        eprintln!("warning: {}", redact(&mapped.origins.describe(warning)));
                    }
                    if !problems.is_empty() {
                        let problems = mapped.origins.describe(&problems.join("\n"));
                        eprintln!("{}: {}", config.display(), redact(&problems));
                        return Ok(std::process::ExitCode::from(1));
                    }
                    println!("{}: valid", config.display());
                    Ok(std::process::ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{}", redact(&e.to_string()));
                    Ok(std::process::ExitCode::from(1))
                }
            }
        }
        Command::Cat(args) => cli::runtime()?.block_on(cli::cat::run(args)),
        Command::Top(args) => cli::top::run(args),
        Command::BenchLoad(args) => cli::loadgen::run(args),
        Command::BenchStartup(args) => cli::startup::run(args),
        Command::Test(args) => cli::test::run(args),
        Command::Plugin(args) => cli::plugin::run(args),
    }
}

/// The Fluent Bit image runs `fluent-bit -e x.so -c file`: with no subcommand and a leading
/// `-c`/`-e`/`-R`, run the router.
fn fluent_bit_command_line(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let flag = args.get(1).and_then(|a| a.to_str()).unwrap_or("");
    if ["-c", "-e", "-R"]
        .iter()
        .any(|f| flag == *f || (flag.starts_with(f) && flag.len() > 2))
    {
        args.insert(1, "run".into());
    }
    args
}
