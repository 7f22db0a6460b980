//! `wasm-router bench-load`: a forward-protocol load generator for benchmarks.
//!
//! It sends FireLens-shaped records (reference forward-protocol.md §8.1) in any carrier mode,
//! over N connections (TCP or unix), flat out or at a target rate, with or without acks, and
//! reports events/s sent and acked. Every frame is encoded before the clock starts, so the
//! generator only writes bytes (patching a 16-byte chunk id per ack, and times when measuring
//! latency) and is never the bottleneck. Optionally it also:
//!
//! - measures latency from send to the router's output ([`receiver`]: as the forward receiver
//!   of the router's `forward` output, or reading the `stdout` output from stdin);
//! - watches the router's process ([`procwatch`]): CPU seconds over the run, peak RSS, and RSS
//!   over time as CSV;
//! - shows a progress bar on a terminal, and prints the results as JSON for `scripts/bench`.
//!
//! With `--attack partial|amplify` it runs one of the memory attacks of [`attack`] instead.

pub mod attack;
pub mod frames;
pub mod procwatch;
pub mod receiver;
pub mod records;
pub mod sender;

use crate::cli::format::thousands;
use anyhow::{Context, bail};
use clap::Args;
use frames::{Compression, FrameEncoder, Mode};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use procwatch::{RssSample, RssSampler, Watched};
use records::{RecordFactory, Shape};
use sender::{Address, Counters, SendOutcome, SendPlan};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};
use wasm_router::config::DurationStr;

/// Arguments of `wasm-router bench-load`.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Receiver address: `host:port` or `unix:///path/to/socket`.
    #[arg(short, long, default_value = "127.0.0.1:24224")]
    address: String,
    /// How requests carry events.
    #[arg(short, long, value_enum, default_value_t = Mode::PackedForward)]
    mode: Mode,
    /// Compression of compressed-packed-forward payloads.
    #[arg(long, value_enum, default_value_t = Compression::Gzip)]
    compression: Compression,
    /// Events per request in forward / packed modes (message mode always sends one).
    #[arg(short, long, default_value_t = 1000)]
    batch: usize,
    /// Events to send over all connections (default 1,000,000 unless --duration is given).
    #[arg(short = 'n', long)]
    events: Option<u64>,
    /// Send for this long instead (e.g. `30s`, `2m`).
    #[arg(short, long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Connections, each sending its share.
    #[arg(short, long, default_value_t = 1)]
    connections: usize,
    /// Target events per second over all connections; without it: as fast as possible.
    #[arg(short, long)]
    rate: Option<f64>,
    /// Ask for an ack every this many events: the request that reaches the count carries a
    /// `chunk`. 0 = no acks.
    #[arg(long, default_value_t = 1000)]
    ack_every: u64,
    /// Acks that may be outstanding per connection. 1 = wait for each ack before sending on,
    /// as Docker's fluentd driver and Fluent Bit's out_forward do.
    #[arg(long, default_value_t = 1)]
    ack_window: usize,
    /// Give up when an ack takes longer than this.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    ack_timeout: Duration,
    /// Record shape.
    #[arg(long, value_enum, default_value_t = Shape::Firelens)]
    shape: Shape,
    /// Encoded size of each record in bytes (140 to 65000).
    #[arg(long, default_value_t = 200)]
    record_size: usize,
    /// Tag of every request.
    #[arg(
        short,
        long,
        default_value = "app-firelens-5f1c3b2e9a4d4c7b8e6f0a1b2c3d4e5f"
    )]
    tag: String,
    /// Seed for record contents (runs with the same seed send the same bytes).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Measure latency at the router's `forward` output: listen here (`host:port` or
    /// `unix:///path`) as its receiver.
    #[arg(long)]
    receive_forward: Option<String>,
    /// Measure latency at the router's `stdout` output, piped into this command's stdin.
    #[arg(long, conflicts_with = "receive_forward")]
    receive_stdin: bool,
    /// How long to wait after sending for the last events to reach the receiver.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    drain_timeout: Duration,
    /// The router's pid: report its CPU seconds over the run and its peak RSS.
    #[arg(long)]
    watch_pid: Option<u32>,
    /// With --watch-pid: write its RSS over the run as CSV (`seconds,rss_mib`).
    #[arg(long, requires = "watch_pid")]
    rss_csv: Option<PathBuf>,
    /// With --watch-pid: how often RSS is sampled.
    #[arg(long, value_parser = parse_duration, default_value = "100ms")]
    sample_interval: Duration,
    /// Keep trying to connect for this long (the router may still be starting).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    connect_timeout: Duration,
    /// Print the results as one JSON object on stdout (the summary still goes to stderr).
    #[arg(long)]
    json: bool,
    /// Run a memory attack instead of sending load (see `attack`): `partial` holds incomplete
    /// 6 MB requests open on every connection, `amplify` sends 6 MB requests of 3-byte entries.
    /// Runs for --duration (default 20s); reports the router's VmHWM with --watch-pid.
    #[arg(long, value_enum)]
    attack: Option<attack::Attack>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    DurationStr::parse(s).map(|d| d.0)
}

/// Latency percentiles in microseconds.
#[derive(Debug, Serialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Option<Self> {
        (!h.is_empty()).then(|| {
            let us = |ns: u64| ns as f64 / 1000.0;
            Percentiles {
                count: h.len(),
                p50: us(h.value_at_quantile(0.50)),
                p90: us(h.value_at_quantile(0.90)),
                p99: us(h.value_at_quantile(0.99)),
                p999: us(h.value_at_quantile(0.999)),
                max: us(h.max()),
            }
        })
    }
}

/// What the router's process did over the run.
#[derive(Debug, Serialize)]
pub struct RouterUsage {
    /// Its pid.
    pub pid: u32,
    /// User + system CPU seconds from the start of sending until it was idle again.
    pub cpu_seconds: f64,
    /// The same per million events sent.
    pub cpu_seconds_per_million_events: f64,
    /// `VmHWM`: the peak resident set since the process started, MiB.
    pub peak_rss_mib: f64,
    /// The largest `VmRSS` sampled during the run, MiB.
    pub max_sampled_rss_mib: Option<f64>,
    /// The largest `RssAnon` sampled during the run, MiB: the memory the router allocated,
    /// without the pages of its binary and of the compiled plugins it maps.
    pub max_sampled_anon_rss_mib: Option<f64>,
    /// `VmRSS` at the end, MiB.
    pub rss_at_end_mib: f64,
}

/// Latency from send to the router's output.
#[derive(Debug, Serialize)]
pub struct OutputLatency {
    /// Where it was measured: `forward` or `stdout`.
    pub measured_at: &'static str,
    /// Events that arrived.
    pub received: u64,
    /// Lines or frames that could not be read.
    pub unreadable: u64,
    /// Send → arrival, µs.
    pub latency_us: Option<Percentiles>,
}

/// The results of one run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The command line.
    pub command: String,
    /// The receiver.
    pub address: String,
    /// Carrier mode.
    pub mode: Mode,
    /// Compression (compressed mode only).
    pub compression: Option<Compression>,
    /// Connections.
    pub connections: usize,
    /// Events per request.
    pub events_per_frame: usize,
    /// Events between acks (0: no acks).
    pub ack_every: u64,
    /// Outstanding acks allowed per connection.
    pub ack_window: usize,
    /// Record shape.
    pub shape: Shape,
    /// Encoded record size in bytes.
    pub record_bytes: usize,
    /// Target rate, events/s.
    pub target_rate: Option<f64>,
    /// Events written.
    pub events_sent: u64,
    /// Bytes written.
    pub bytes_sent: u64,
    /// From the start until the last write.
    pub send_seconds: f64,
    /// `events_sent / send_seconds`.
    pub events_per_second_sent: f64,
    /// Events whose request was acked.
    pub events_acked: u64,
    /// Acks received.
    pub acks: u64,
    /// From the start until the last ack.
    pub ack_seconds: Option<f64>,
    /// `events_acked / ack_seconds`.
    pub events_per_second_acked: Option<f64>,
    /// Request written → its ack read, µs.
    pub ack_round_trip_us: Option<Percentiles>,
    /// Send → router output.
    pub output_latency: Option<OutputLatency>,
    /// The router's CPU and memory.
    pub router: Option<RouterUsage>,
    /// CPU seconds this load generator used (setup included).
    pub loadgen_cpu_seconds: Option<f64>,
    /// `/proc/loadavg` before the run.
    pub load_average_before: Option<[f64; 3]>,
    /// `/proc/loadavg` after the run.
    pub load_average_after: Option<[f64; 3]>,
}

/// Memory for pre-encoded groups over all connections.
const POOL_BUDGET_BYTES: usize = 16 << 20;
/// Distinct groups per connection, at most.
const MAX_POOL_GROUPS: usize = 64;

/// Run `bench-load`.
pub fn run(args: LoadArgs) -> anyhow::Result<std::process::ExitCode> {
    validate(&args)?;
    if let Some(kind) = args.attack {
        let duration = args.duration.unwrap_or(Duration::from_secs(20));
        let report = attack::run(
            kind,
            &args.address,
            args.connections,
            duration,
            args.watch_pid,
        )?;
        eprintln!("{report:?}");
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let load_before = procwatch::load_average();
    let watched = args
        .watch_pid
        .map(Watched::new)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let address = Address::parse(&args.address);
    let stamp_times = args.receive_forward.is_some() || args.receive_stdin;
    let arrivals = match (&args.receive_forward, args.receive_stdin) {
        (Some(a), _) => Some((
            "forward",
            receiver::listen_forward(&Address::parse(a)).map_err(anyhow::Error::msg)?,
        )),
        (None, true) => Some(("stdout", receiver::read_stdout_lines())),
        (None, false) => None,
    };

    let events_per_frame = if args.mode == Mode::Message {
        1
    } else {
        args.batch
    };
    let frames = sender::frames_per_group(args.mode, events_per_frame, args.ack_every);
    let encoder = FrameEncoder {
        mode: args.mode,
        compression: args.compression,
        tag: args.tag.clone(),
    };
    let group_events = (frames * events_per_frame) as u64;
    let group_bytes = group_events as usize * (args.record_size + 12) + frames * 64;
    let groups_per_connection =
        (POOL_BUDGET_BYTES / args.connections / group_bytes.max(1)).clamp(2, MAX_POOL_GROUPS);
    let total_events = match (args.events, args.duration) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => Some(1_000_000),
    };
    let per_connection = total_events
        .map(|n| n.div_ceil(args.connections as u64).div_ceil(group_events) * group_events);

    let setup = ProgressBar::new_spinner();
    if std::io::stderr().is_terminal() {
        setup.set_message("encoding frames");
        setup.enable_steady_tick(Duration::from_millis(100));
    } else {
        setup.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let now_ns = sender::wall_clock_ns();
    let mut plans = Vec::with_capacity(args.connections);
    for c in 0..args.connections {
        let mut factory = RecordFactory::new(
            args.shape,
            args.record_size,
            args.seed.wrapping_mul(1_000_003).wrapping_add(c as u64),
        );
        let pool = (0..groups_per_connection)
            .map(|_| {
                encoder.encode_group(frames, events_per_frame, args.ack_every > 0, now_ns, || {
                    factory.next_record()
                })
            })
            .collect();
        plans.push(SendPlan {
            connection: c as u16,
            pool,
            encoder: encoder.clone(),
            events: per_connection,
            duration: args.duration,
            rate: args.rate.map(|r| r / args.connections as f64),
            ack_window: if args.ack_every > 0 {
                args.ack_window
            } else {
                0
            },
            stamp_times,
            ack_timeout: args.ack_timeout,
        });
    }
    setup.set_message(format!("connecting to {address}"));
    let mut connections = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        connections.push(
            address
                .connect_within(args.connect_timeout)
                .with_context(|| format!("connecting to {address}"))?,
        );
    }
    setup.finish_and_clear();

    let counters = Arc::new(Counters::default());
    let start_line = Arc::new(Barrier::new(args.connections + 1));
    let start_slot = Arc::new(Mutex::new(None));
    let threads: Vec<_> = connections
        .into_iter()
        .zip(plans)
        .map(|(conn, plan)| {
            let (counters, start_line, start_slot) =
                (counters.clone(), start_line.clone(), start_slot.clone());
            std::thread::spawn(move || {
                sender::run_connection(conn, plan, counters, start_line, start_slot)
            })
        })
        .collect();

    let cpu_before = watched
        .map(|w| w.cpu_seconds())
        .transpose()
        .context("reading the router's CPU time")?;
    let start = Instant::now();
    *start_slot.lock().unwrap() = Some(start);
    let sampler = watched.map(|w| RssSampler::start(w, args.sample_interval, start));
    start_line.wait();

    let bar = progress_bar(&args, total_events);
    while !threads.iter().all(|t| t.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        let sent = counters.sent_events.load(Ordering::Relaxed);
        match total_events {
            Some(_) => bar.set_position(sent),
            None => bar.set_position(start.elapsed().as_millis() as u64),
        }
        bar.set_message(format!(
            "{} events sent, {} acked",
            thousands(sent),
            thousands(counters.acked_events.load(Ordering::Relaxed))
        ));
    }
    bar.finish_and_clear();
    let mut outcomes: Vec<SendOutcome> = Vec::new();
    for (i, t) in threads.into_iter().enumerate() {
        match t.join() {
            Ok(Ok(o)) => outcomes.push(o),
            Ok(Err(e)) => bail!("connection {i}: {e}"),
            Err(_) => bail!("connection {i}: the sender thread panicked"),
        }
    }
    let events_sent = counters.sent_events.load(Ordering::Relaxed);

    let output_latency = arrivals.map(|(measured_at, arrivals)| {
        let deadline = Instant::now() + args.drain_timeout;
        while arrivals.received.load(Ordering::Relaxed) < events_sent && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        OutputLatency {
            measured_at,
            received: arrivals.received.load(Ordering::Relaxed),
            unreadable: arrivals.unreadable.load(Ordering::Relaxed),
            latency_us: Percentiles::of(&arrivals.latency()),
        }
    });

    let router = match watched {
        Some(w) => {
            w.wait_until_idle(Duration::from_secs(5));
            let cpu = w.cpu_seconds()? - cpu_before.unwrap_or(0.0);
            let samples = sampler.map(RssSampler::finish).unwrap_or_default();
            if let Some(path) = &args.rss_csv {
                write_rss_csv(path, &samples)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            let mib = |kib: u64| kib as f64 / 1024.0;
            Some(RouterUsage {
                pid: w.pid,
                cpu_seconds: cpu,
                cpu_seconds_per_million_events: if events_sent > 0 {
                    cpu * 1e6 / events_sent as f64
                } else {
                    0.0
                },
                peak_rss_mib: mib(w.status_kib("VmHWM")?),
                max_sampled_rss_mib: samples.iter().map(|s| s.rss_kib).max().map(mib),
                max_sampled_anon_rss_mib: samples.iter().map(|s| s.anon_kib).max().map(mib),
                rss_at_end_mib: mib(w.status_kib("VmRSS")?),
            })
        }
        None => None,
    };

    let send_seconds = outcomes
        .iter()
        .map(|o| o.finished_sending - start)
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    let last_ack = outcomes.iter().filter_map(|o| o.last_ack).max();
    let ack_seconds = last_ack.map(|t| (t - start).as_secs_f64());
    let events_acked = counters.acked_events.load(Ordering::Relaxed);
    let mut ack_histogram =
        Histogram::<u64>::new_with_bounds(1_000, 600_000_000_000, 3).expect("valid bounds");
    for o in &outcomes {
        ack_histogram.add(&o.ack_latency_ns).expect("same bounds");
    }
    let report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        address: address.to_string(),
        mode: args.mode,
        compression: (args.mode == Mode::CompressedPackedForward).then_some(args.compression),
        connections: args.connections,
        events_per_frame,
        ack_every: args.ack_every,
        ack_window: if args.ack_every > 0 {
            args.ack_window
        } else {
            0
        },
        shape: args.shape,
        record_bytes: args.record_size,
        target_rate: args.rate,
        events_sent,
        bytes_sent: counters.sent_bytes.load(Ordering::Relaxed),
        send_seconds,
        events_per_second_sent: events_sent as f64 / send_seconds.max(1e-9),
        events_acked,
        acks: counters.acks.load(Ordering::Relaxed),
        ack_seconds,
        events_per_second_acked: ack_seconds.map(|s| events_acked as f64 / s.max(1e-9)),
        ack_round_trip_us: Percentiles::of(&ack_histogram),
        output_latency,
        router,
        loadgen_cpu_seconds: Watched::new(std::process::id())
            .ok()
            .and_then(|me| me.cpu_seconds().ok()),
        load_average_before: load_before,
        load_average_after: procwatch::load_average(),
    };
    eprint!("{}", summary(&report));
    if args.json {
        super::print_stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    }
    let complete = report
        .output_latency
        .as_ref()
        .is_none_or(|l| l.received >= events_sent);
    Ok(if complete {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(2)
    })
}

fn validate(args: &LoadArgs) -> anyhow::Result<()> {
    if args.connections == 0 || args.connections > u16::MAX as usize {
        bail!("--connections must be between 1 and 65535");
    }
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if args.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        bail!("--rate must be a positive number of events per second");
    }
    if args.ack_every > 0 && args.ack_window == 0 {
        bail!("--ack-window must be at least 1 (use --ack-every 0 for no acks)");
    }
    if !(records::MIN_RECORD_BYTES..=records::MAX_RECORD_BYTES).contains(&args.record_size) {
        bail!(
            "--record-size must be between {} and {} bytes",
            records::MIN_RECORD_BYTES,
            records::MAX_RECORD_BYTES
        );
    }
    if args.events == Some(0) || args.duration.is_some_and(|d| d.is_zero()) {
        bail!("nothing to send: --events and --duration must be more than 0");
    }
    Ok(())
}

fn progress_bar(args: &LoadArgs, total_events: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (len, template) = match total_events {
        Some(n) => (
            n,
            "{elapsed_precise} [{bar:40}] {percent:>3}% {msg} ({per_sec}) ETA {eta}",
        ),
        None => (
            args.duration.unwrap_or_default().as_millis() as u64,
            "{elapsed_precise} [{bar:40}] {percent:>3}% {msg}",
        ),
    };
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

fn write_rss_csv(path: &std::path::Path, samples: &[RssSample]) -> std::io::Result<()> {
    let mut text = String::from("seconds,rss_mib,anon_rss_mib\n");
    for s in samples {
        text.push_str(&format!(
            "{:.3},{:.3},{:.3}\n",
            s.seconds,
            s.rss_kib as f64 / 1024.0,
            s.anon_kib as f64 / 1024.0
        ));
    }
    std::fs::write(path, text)
}

fn duration_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// The human-readable summary.
fn summary(r: &Report) -> String {
    let mut s = format!(
        "sent     {} events ({} B records, {:?}, {}/request, {} connection(s)) in {:.3} s: {} events/s, {:.1} MB/s\n",
        thousands(r.events_sent),
        r.record_bytes,
        r.mode,
        r.events_per_frame,
        r.connections,
        r.send_seconds,
        thousands(r.events_per_second_sent as u64),
        r.bytes_sent as f64 / r.send_seconds.max(1e-9) / 1e6,
    );
    if let (Some(secs), Some(rate)) = (r.ack_seconds, r.events_per_second_acked) {
        s += &format!(
            "acked    {} events in {} acks by {secs:.3} s: {} events/s",
            thousands(r.events_acked),
            thousands(r.acks),
            thousands(rate as u64)
        );
        if let Some(p) = &r.ack_round_trip_us {
            s += &format!(
                "; ack round trip p50 {}, p99 {}",
                duration_us(p.p50),
                duration_us(p.p99)
            );
        }
        s.push('\n');
    }
    if let Some(l) = &r.output_latency {
        s += &format!(
            "output   {} of {} events arrived at the {} output",
            thousands(l.received),
            thousands(r.events_sent),
            l.measured_at
        );
        if let Some(p) = &l.latency_us {
            s += &format!(
                "; latency p50 {}, p90 {}, p99 {}, p99.9 {}, max {}",
                duration_us(p.p50),
                duration_us(p.p90),
                duration_us(p.p99),
                duration_us(p.p999),
                duration_us(p.max)
            );
        }
        if l.unreadable > 0 {
            s += &format!(" ({} unreadable lines/frames)", l.unreadable);
        }
        s.push('\n');
    }
    if let Some(u) = &r.router {
        s += &format!(
            "router   pid {}: {:.2} CPU s ({:.3} CPU s per million events), peak RSS (VmHWM) {:.1} MiB",
            u.pid, u.cpu_seconds, u.cpu_seconds_per_million_events, u.peak_rss_mib
        );
        if let Some(m) = u.max_sampled_rss_mib {
            s += &format!(", max sampled RSS {m:.1} MiB");
        }
        if let Some(m) = u.max_sampled_anon_rss_mib {
            s += &format!(" (anonymous {m:.1} MiB)");
        }
        s.push('\n');
    }
    if let (Some(b), Some(a)) = (r.load_average_before, r.load_average_after) {
        s += &format!(
            "machine  load average {:.2} before, {:.2} after",
            b[0], a[0]
        );
        if let Some(c) = r.loadgen_cpu_seconds {
            s += &format!("; this generator used {c:.2} CPU s");
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_end_at_the_ack_interval() {
        assert_eq!(sender::frames_per_group(Mode::PackedForward, 1000, 1000), 1);
        assert_eq!(sender::frames_per_group(Mode::PackedForward, 4096, 1000), 1);
        assert_eq!(sender::frames_per_group(Mode::PackedForward, 16, 1000), 63);
        assert_eq!(sender::frames_per_group(Mode::Message, 1000, 1000), 1000);
        assert_eq!(sender::frames_per_group(Mode::Message, 1000, 1), 1);
        assert_eq!(sender::frames_per_group(Mode::Message, 1000, 0), 1000);
    }
}
