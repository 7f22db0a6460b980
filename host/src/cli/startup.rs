//! `wasm-router bench-startup`: how long a command takes from exec until its port accepts
//! connections. Runs the command N times; before each run it can delete a directory (the plugin
//! compile cache, for cold starts). The router binds its inputs after it has built its outputs
//! and loaded its plugins, so "accepting" means "ready to route".

use crate::cli::loadgen::sender::Address;
use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wasm_router::config::DurationStr;

/// Arguments of `wasm-router bench-startup`.
#[derive(Args, Debug)]
pub struct StartupArgs {
    /// The address the command listens on once ready: `host:port` or `unix:///path`.
    #[arg(short, long, default_value = "127.0.0.1:24224")]
    address: String,
    /// Measured runs.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Unmeasured runs first (e.g. to fill a compile cache, or the OS page cache).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Delete this directory before every run, warm-up included (cold compile cache).
    #[arg(long)]
    clear_dir: Option<PathBuf>,
    /// Fail a run that is not listening after this long.
    #[arg(long, value_parser = |s: &str| DurationStr::parse(s).map(|d| d.0), default_value = "60s")]
    timeout: Duration,
    /// Print the results as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// The command and its arguments (after `--`).
    #[arg(required = true, last = true)]
    command: Vec<String>,
}

/// Results of `bench-startup`, milliseconds.
#[derive(Debug, Serialize)]
pub struct StartupReport {
    /// The measured command.
    pub command: String,
    /// Whether a directory was cleared before every run.
    pub cleared: Option<String>,
    /// Each measured run, ms.
    pub runs_ms: Vec<f64>,
    /// Fastest run.
    pub min_ms: f64,
    /// Median run.
    pub median_ms: f64,
    /// Slowest run.
    pub max_ms: f64,
}

/// Run `bench-startup`.
pub fn run(args: StartupArgs) -> anyhow::Result<std::process::ExitCode> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let address = Address::parse(&args.address);
    if address.connect().is_ok() {
        bail!("something already listens on {address}: stop it first, or pick another --address");
    }
    let mut runs_ms = Vec::with_capacity(args.runs);
    for i in 0..args.warmup + args.runs {
        if let Some(dir) = &args.clear_dir
            && dir.exists()
        {
            std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        let elapsed = time_to_listen(&args, &address).with_context(|| format!("run {}", i + 1))?;
        if i >= args.warmup {
            runs_ms.push(elapsed.as_secs_f64() * 1000.0);
        }
    }
    let mut sorted = runs_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let report = StartupReport {
        command: args.command.join(" "),
        cleared: args.clear_dir.as_ref().map(|d| d.display().to_string()),
        min_ms: sorted[0],
        median_ms: sorted[sorted.len() / 2],
        max_ms: sorted[sorted.len() - 1],
        runs_ms,
    };
    eprintln!(
        "start to listening on {address}: median {:.1} ms, min {:.1} ms, max {:.1} ms over {} runs{}",
        report.median_ms,
        report.min_ms,
        report.max_ms,
        report.runs_ms.len(),
        if report.cleared.is_some() {
            " (cache cleared before each)"
        } else {
            ""
        }
    );
    if args.json {
        super::print_stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Start the command and poll the address every 200 µs until it accepts; then kill it.
fn time_to_listen(args: &StartupArgs, address: &Address) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut child = Command::new(&args.command[0])
        .args(&args.command[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {:?}", args.command[0]))?;
    let result = loop {
        if address.connect().is_ok() {
            break Ok(start.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            break Err(anyhow::anyhow!(
                "the command exited ({status}) before listening on {address}:\n{stderr}"
            ));
        }
        if start.elapsed() > args.timeout {
            break Err(anyhow::anyhow!(
                "not listening on {address} after {:?}",
                args.timeout
            ));
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    let _ = child.kill();
    let _ = child.wait();
    // Wait until the port is free again, so the next run measures its own start.
    let free_by = Instant::now() + Duration::from_secs(5);
    while address.connect().is_ok() && Instant::now() < free_by {
        std::thread::sleep(Duration::from_millis(5));
    }
    result
}
