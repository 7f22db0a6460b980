//! The forward input against real senders nobody here wrote (issue 2, "Checked by"): PyPI
//! `fluent-logger`, Debian's fluent-logger-golang (the library in Docker's fluentd log driver,
//! so in FireLens) and npm `fluent-logger`, over TCP and the unix socket at the same time.
//!
//! Every test sends thousands of events, so requests cross socket reads and batches, and
//! asserts that every event is printed by the `stdout` output exactly once, in order, with its
//! tag, its time (to the nanosecond where the sender sent sub-second time) and its record.
//! What each client sends is documented at the top of its program in testing/clients/; the
//! `expected_*` functions here restate it.
//!
//! npm `fluent-logger`'s shared-key handshake (`security`), plain and over TLS, is tested with
//! the forward output's handshake in `forward_output.rs`.

use crate::common;

use common::{
    BASE_NS, PrintedEvent, RouterProcess, STEP_NS, TCP_AND_UNIX_TO_STDOUT, assert_events_eq,
    assert_success, go_record, with_tag,
};
use serde_json::json;
use std::process::Command;

const SEC: u64 = 1_000_000_000;

/// How a client sends time.
#[derive(Clone, Copy)]
enum Time {
    /// Integer seconds: event i at `BASE_NS / 1e9 + i` seconds.
    IntegerSeconds,
    /// EventTime: event i at `BASE_NS + i * STEP_NS` nanoseconds.
    EventTime,
}

impl Time {
    fn of(self, i: u64) -> u64 {
        match self {
            Time::IntegerSeconds => (BASE_NS / SEC + i) * SEC,
            Time::EventTime => BASE_NS + i * STEP_NS,
        }
    }
}

/// Start the router on TCP and a unix socket, run `sender(address, tag)` for both at once, and
/// check every event of both against `expected(tag)`.
fn check_both_transports(
    name: &str,
    mut sender: impl FnMut(&str, &str) -> Command,
    expected: impl Fn(&str) -> Vec<PrintedEvent>,
) {
    let router = RouterProcess::start(TCP_AND_UNIX_TO_STDOUT);
    let tcp = router.tcp_addr();
    let unix = format!("unix://{}", router.unix_path().display());
    let (tcp_tag, unix_tag) = (format!("{name}.tcp"), format!("{name}.unix"));
    let spawn = |mut cmd: Command| {
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start the {name} sender: {e}"))
    };
    let tcp_child = spawn(sender(&tcp, &tcp_tag));
    let unix_child = spawn(sender(&unix, &unix_tag));
    assert_success(
        &common::wait_output(tcp_child, name),
        &format!("{name} over TCP"),
    );
    assert_success(
        &common::wait_output(unix_child, name),
        &format!("{name} over the unix socket"),
    );

    let (tcp_expected, unix_expected) = (expected(&tcp_tag), expected(&unix_tag));
    router.wait_for_events(tcp_expected.len() + unix_expected.len());
    let printed = router.stop();
    assert_events_eq(&with_tag(&printed, &tcp_tag), &tcp_expected);
    assert_events_eq(&with_tag(&printed, &unix_tag), &unix_expected);
    assert_eq!(
        printed.len(),
        tcp_expected.len() + unix_expected.len(),
        "events under other tags were printed"
    );
}

// ---- PyPI fluent-logger ---------------------------------------------------------------------

fn python_sender(time: Time, count: u64) -> impl FnMut(&str, &str) -> Command {
    let python = common::python();
    let script = common::client_source("python/send.py");
    move |address, tag| {
        let mut cmd = Command::new(&python);
        cmd.arg(&script).args([
            "--address",
            address,
            "--tag",
            tag,
            "--count",
            &count.to_string(),
        ]);
        cmd.args(["--base-ns", &BASE_NS.to_string(), "--time"]);
        cmd.arg(match time {
            Time::IntegerSeconds => "int",
            Time::EventTime => "eventtime",
        });
        cmd
    }
}

fn python_expected(time: Time, count: u64) -> impl Fn(&str) -> Vec<PrintedEvent> {
    move |tag| {
        (0..count)
            .map(|i| {
                let record = json!({
                    "seq": i,
                    "msg": format!("python event {i}"),
                    "level": "info",
                    // b"\xff\xfe" + "bin <i>": msgpack bin, invalid bytes mapped to U+E0xx.
                    "raw": format!("\u{E0FF}\u{E0FE}bin {i}"),
                    "nested": {"a": [1, 2.5, true, null], "n": -(i as i64)},
                });
                PrintedEvent::new(tag, time.of(i), record)
            })
            .collect()
    }
}

#[test]
fn python_fluent_logger_message_mode_integer_time() {
    let count = 5000;
    check_both_transports(
        "py-int",
        python_sender(Time::IntegerSeconds, count),
        python_expected(Time::IntegerSeconds, count),
    );
}

#[test]
fn python_fluent_logger_message_mode_nanosecond_event_time() {
    let count = 5000;
    check_both_transports(
        "py-ns",
        python_sender(Time::EventTime, count),
        python_expected(Time::EventTime, count),
    );
}

// ---- Debian fluent-logger-golang (Docker's fluentd log driver) -------------------------------

/// Flags of testing/clients/go for one run.
struct GoSender {
    count: u64,
    ack: bool,
    subsecond: bool,
    async_: bool,
}

fn go_sender(opts: GoSender) -> impl FnMut(&str, &str) -> Command {
    let bin = common::go_client();
    move |address, tag| {
        let mut cmd = Command::new(&bin);
        match address.strip_prefix("unix://") {
            Some(path) => cmd.args(["-network", "unix", "-address", path]),
            None => cmd.args(["-network", "tcp", "-address", address]),
        };
        cmd.args([
            "-tag",
            tag,
            "-count",
            &opts.count.to_string(),
            "-base-ns",
            &BASE_NS.to_string(),
        ]);
        cmd.arg(format!("-ack={}", opts.ack));
        cmd.arg(format!("-subsecond={}", opts.subsecond));
        cmd.arg(format!("-async={}", opts.async_));
        cmd
    }
}

/// Go posts `time.Unix(0, BASE_NS + i * STEP_NS)`: sent whole with SubSecondPrecision, else
/// truncated to seconds.
fn go_expected(count: u64, subsecond: bool) -> impl Fn(&str) -> Vec<PrintedEvent> {
    move |tag| {
        (0..count)
            .map(|i| {
                let time_ns = Time::EventTime.of(i);
                PrintedEvent::new(
                    tag,
                    if subsecond {
                        time_ns
                    } else {
                        time_ns / SEC * SEC
                    },
                    go_record(i),
                )
            })
            .collect()
    }
}

#[test]
fn go_fluent_logger_with_request_ack_and_sub_second_precision() {
    let count = 3000;
    check_both_transports(
        "go-ack",
        go_sender(GoSender {
            count,
            ack: true,
            subsecond: true,
            async_: false,
        }),
        go_expected(count, true),
    );
}

#[test]
fn go_fluent_logger_as_firelens_runs_it_async_without_ack() {
    // ECS sets fluentd-async=true and fluentd-sub-second-precision=true, no request-ack.
    let count = 3000;
    check_both_transports(
        "go-firelens",
        go_sender(GoSender {
            count,
            ack: false,
            subsecond: true,
            async_: true,
        }),
        go_expected(count, true),
    );
}

#[test]
fn go_fluent_logger_with_integer_seconds() {
    let count = 2000;
    check_both_transports(
        "go-int",
        go_sender(GoSender {
            count,
            ack: true,
            subsecond: false,
            async_: false,
        }),
        go_expected(count, false),
    );
}

// ---- npm fluent-logger ----------------------------------------------------------------------

fn node_sender(
    mode: &'static str,
    ack: bool,
    time: Time,
    count: u64,
    rounds: u64,
) -> impl FnMut(&str, &str) -> Command {
    let dir = common::node_dir();
    move |address, tag| {
        let mut cmd = Command::new("node");
        cmd.current_dir(&dir).arg("send.js");
        cmd.args(["--address", address, "--tag", tag, "--mode", mode]);
        cmd.args([
            "--count",
            &count.to_string(),
            "--rounds",
            &rounds.to_string(),
        ]);
        cmd.args(["--base-ns", &BASE_NS.to_string(), "--time"]);
        cmd.arg(match time {
            Time::IntegerSeconds => "int",
            Time::EventTime => "eventtime",
        });
        if ack {
            cmd.arg("--ack");
        }
        cmd
    }
}

fn node_expected(time: Time, count: u64) -> impl Fn(&str) -> Vec<PrintedEvent> {
    move |tag| {
        (0..count)
            .map(|i| {
                let record = json!({"seq": i, "msg": format!("node event {i}"), "tags": ["a", "b"], "ok": true, "ratio": 0.25});
                PrintedEvent::new(tag, time.of(i), record)
            })
            .collect()
    }
}

#[test]
fn node_fluent_logger_packed_forward_with_acks() {
    let (count, rounds) = (10_000, 10);
    check_both_transports(
        "node-packed",
        node_sender("PackedForward", true, Time::EventTime, count, rounds),
        node_expected(Time::EventTime, count),
    );
}

#[test]
fn node_fluent_logger_compressed_packed_forward_with_acks() {
    let (count, rounds) = (10_000, 10);
    check_both_transports(
        "node-gzip",
        node_sender(
            "CompressedPackedForward",
            true,
            Time::EventTime,
            count,
            rounds,
        ),
        node_expected(Time::EventTime, count),
    );
}

#[test]
fn node_fluent_logger_message_mode_with_acks() {
    let count = 3000;
    check_both_transports(
        "node-msg-ack",
        node_sender("Message", true, Time::EventTime, count, 1),
        node_expected(Time::EventTime, count),
    );
}

#[test]
fn node_fluent_logger_message_mode_integer_time_without_acks() {
    let count = 5000;
    check_both_transports(
        "node-msg",
        node_sender("Message", false, Time::IntegerSeconds, count, 1),
        node_expected(Time::IntegerSeconds, count),
    );
}
