//! Shared helpers for the integration tests: run the real `wasm-router` binary on a temporary
//! config, find where it listens, read the events its `stdout` output prints, stop it with a
//! signal; locate the real forward-protocol clients that `scripts/install-test-deps` installs;
//! and build raw forward-protocol frames for tests that need exact bytes.
//!
//! Readiness comes from the router's own log (one `listening … addr=…` line per listener), so
//! no test sleeps: everything is polled with a generous timeout that only catches hangs.

pub mod aws;
pub mod delivery;
pub mod fault_proxy;
pub mod intake;
pub mod oci;
mod router;

pub use router::{Lines, RouterProcess, router_command, write_config};

use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long any wait may take before the test fails as hung.
pub const HANG_TIMEOUT: Duration = Duration::from_secs(120);

/// A config with a forward input on TCP 127.0.0.1 (port 0) and on `{dir}/fluent.sock`, and a
/// `stdout` output for every tag. `{dir}` is replaced by [`RouterProcess::start`].
pub const TCP_AND_UNIX_TO_STDOUT: &str = r#"
[service]
grace = "10s"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"
unix_path = "{dir}/fluent.sock"

[[outputs]]
type = "stdout"
match = "*"
"#;

/// One event as the `stdout` output prints it.
#[derive(Clone, Debug, PartialEq)]
pub struct PrintedEvent {
    /// The tag (each byte of invalid UTF-8 as U+E000 + the byte).
    pub tag: String,
    /// Nanoseconds since the epoch.
    pub time_ns: u64,
    /// The record as JSON.
    pub record: Value,
}

impl PrintedEvent {
    /// An expected event.
    pub fn new(tag: &str, time_ns: u64, record: Value) -> Self {
        PrintedEvent {
            tag: tag.to_string(),
            time_ns,
            record,
        }
    }

    /// One line for failure messages: long strings are cut, with their length.
    pub fn summary(&self) -> String {
        fn shorten(v: &Value) -> Value {
            match v {
                Value::String(s) if s.chars().count() > 80 => {
                    let head: String = s.chars().take(40).collect();
                    Value::String(format!("{head}… ({} chars)", s.chars().count()))
                }
                Value::Array(a) => Value::Array(a.iter().map(shorten).collect()),
                Value::Object(m) => {
                    Value::Object(m.iter().map(|(k, v)| (k.clone(), shorten(v))).collect())
                }
                other => other.clone(),
            }
        }
        format!(
            "tag={:?} time_ns={} record={}",
            self.tag,
            self.time_ns,
            shorten(&self.record)
        )
    }

    /// Parse one line of the `stdout` output; panics on anything else.
    pub fn parse(line: &str) -> Self {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        let tag = v["tag"]
            .as_str()
            .unwrap_or_else(|| panic!("no tag: {line}"))
            .to_string();
        let time_ns = v["time_ns"]
            .as_u64()
            .unwrap_or_else(|| panic!("no time_ns: {line}"));
        let record = v
            .get("record")
            .cloned()
            .unwrap_or_else(|| panic!("no record: {line}"));
        PrintedEvent {
            tag,
            time_ns,
            record,
        }
    }
}

/// Assert that `got` holds exactly the events of `expected`, in the same order: nothing
/// missing, nothing extra, no duplicate, every field equal. The message shows the first
/// differences rather than two huge lists.
pub fn assert_events_eq(got: &[PrintedEvent], expected: &[PrintedEvent]) {
    let key = |e: &PrintedEvent| format!("{}\u{0}{}\u{0}{}", e.tag, e.time_ns, e.record);
    let mut want: std::collections::HashMap<String, usize> = Default::default();
    for e in expected {
        *want.entry(key(e)).or_default() += 1;
    }
    let mut unexpected = Vec::new();
    for e in got {
        match want.get_mut(&key(e)) {
            Some(n) if *n > 0 => *n -= 1,
            _ => unexpected.push(e),
        }
    }
    let missing: Vec<&PrintedEvent> = {
        let mut left = want;
        expected
            .iter()
            .filter(|e| {
                let n = left.get_mut(&key(e)).unwrap();
                let miss = *n > 0;
                if miss {
                    *n -= 1;
                }
                miss
            })
            .collect()
    };
    let show = |events: &[&PrintedEvent]| -> String {
        events
            .iter()
            .take(3)
            .map(|e| format!("\n  {}", e.summary()))
            .collect()
    };
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "{} events expected, {} printed: {} missing, {} unexpected or duplicated\nfirst missing:{}\nfirst unexpected:{}",
        expected.len(),
        got.len(),
        missing.len(),
        unexpected.len(),
        show(&missing),
        show(&unexpected),
    );
    if let Some(i) = got.iter().zip(expected).position(|(g, e)| g != e) {
        panic!(
            "every event arrived, but out of order: position {i} holds {}, expected {}",
            got[i].summary(),
            expected[i].summary()
        );
    }
}

/// Only the events whose tag is `tag`, in order.
pub fn with_tag(events: &[PrintedEvent], tag: &str) -> Vec<PrintedEvent> {
    events.iter().filter(|e| e.tag == tag).cloned().collect()
}

/// Run `cmd` to completion with no stdin; panics (with what it printed) if it hangs.
pub fn run_to_end(cmd: &mut Command, what: &str) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let child = child.unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    wait_output(child, what)
}

/// Wait for a started child with piped stdout/stderr; kill it and panic if it hangs.
pub fn wait_output(child: Child, what: &str) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(HANG_TIMEOUT) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            panic!("{what} still running after {HANG_TIMEOUT:?}; killed");
        }
    }
}

/// `wasm-router validate -c <path>` with `env` added: whether it succeeded, and what it
/// printed (stdout then stderr).
pub fn validate(path: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = run_to_end(
        router_command()
            .args(["validate", "-c"])
            .arg(path)
            .envs(env.iter().copied()),
        "wasm-router validate",
    );
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Assert that a client exited 0, showing what it printed otherwise.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- The real clients that scripts/install-test-deps installs ------------------------------

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A path from `var`, else `default` under the workspace root; see [`require_installed`].
fn installed(var: &str, default: &str, what: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(default));
    require_installed(&path, &format!("{what} (${var})"));
    path
}

/// Panic, saying to run `scripts/test`, if `path` does not exist: a missing client fails the
/// test, never skips it.
fn require_installed(path: &Path, what: &str) {
    assert!(
        path.exists(),
        "{what} is not installed at {}. Run `scripts/test` (or `scripts/install-test-deps`) from the \
         repository root first: it installs the real forward-protocol clients the tests use.",
        path.display()
    );
}

/// The venv python with PyPI `fluent-logger` and `moto`.
pub fn python() -> PathBuf {
    installed(
        "WASM_ROUTER_TEST_PYTHON",
        ".test-deps/venv/bin/python",
        "The test venv's python",
    )
}

/// `testing/clients/<path>` in the source tree.
pub fn client_source(path: &str) -> PathBuf {
    workspace_root().join("testing/clients").join(path)
}

/// The sender built from testing/clients/go with Debian's fluent-logger-golang.
pub fn go_client() -> PathBuf {
    installed(
        "WASM_ROUTER_TEST_GO_CLIENT",
        ".test-deps/bin/fluent-go-sender",
        "The Go fluent-logger sender",
    )
}

/// testing/clients/node, with npm `fluent-logger` installed in its node_modules.
pub fn node_dir() -> PathBuf {
    let dir = installed(
        "WASM_ROUTER_TEST_NODE_DIR",
        "testing/clients/node",
        "The node client",
    );
    require_installed(&dir.join("node_modules/fluent-logger"), "npm fluent-logger");
    dir
}

/// PyPI componentize-py, installed into the test venv from examples/plugin-python/requirements.txt.
pub fn componentize_py() -> PathBuf {
    installed(
        "WASM_ROUTER_TEST_COMPONENTIZE_PY",
        ".test-deps/venv/bin/componentize-py",
        "PyPI componentize-py",
    )
}

/// npm jco (with componentize-js), installed in examples/plugin-js/node_modules.
pub fn jco() -> PathBuf {
    installed(
        "WASM_ROUTER_TEST_JCO",
        "examples/plugin-js/node_modules/.bin/jco",
        "npm jco",
    )
}

/// Time of event 0 of every test client (2023-11-14T22:13:20.123456789Z), passed as
/// `--base-ns`; with EventTime, event i is at `BASE_NS + i * STEP_NS`.
pub const BASE_NS: u64 = 1_700_000_000_123_456_789;
/// Nanoseconds between two events of a test client (see [`BASE_NS`]).
pub const STEP_NS: u64 = 1_000_003;

/// The record testing/clients/go sends as event `i`, as the `stdout` output prints it.
pub fn go_record(i: u64) -> Value {
    let log = match i % 1000 {
        7 => {
            let head = format!("long {i} ");
            format!("{head}{}", "x".repeat(16384 - head.len()))
        }
        // "bad utf8 \xff\xfe <i>": invalid UTF-8 inside a msgpack str, mapped to U+E0xx.
        13 => format!("bad utf8 \u{E0FF}\u{E0FE} {i}"),
        _ => format!("line {i}: GET /health 200 - the quick brown fox"),
    };
    serde_json::json!({
        "container_id": "0123456789abcdef".repeat(4),
        "container_name": "/ecs-web-1-app",
        "source": if i % 2 == 1 { "stderr" } else { "stdout" },
        "log": log,
    })
}

// ---- Raw forward-protocol frames ------------------------------------------------------------

/// A Message-mode request `[tag, EventTime, record, {"chunk": chunk}?]` with raw bytes for the
/// tag and a record given as msgpack bytes.
pub fn message_frame(
    tag: &[u8],
    time_ns: u64,
    record_msgpack: &[u8],
    chunk: Option<&str>,
) -> Vec<u8> {
    let mut b = Vec::with_capacity(32 + tag.len() + record_msgpack.len());
    rmp::encode::write_array_len(&mut b, if chunk.is_some() { 4 } else { 3 }).unwrap();
    rmp::encode::write_str_len(&mut b, tag.len() as u32).unwrap();
    b.extend_from_slice(tag);
    b.extend_from_slice(&event_time(time_ns));
    b.extend_from_slice(record_msgpack);
    if let Some(chunk) = chunk {
        rmp::encode::write_map_len(&mut b, 1).unwrap();
        rmp::encode::write_str(&mut b, "chunk").unwrap();
        rmp::encode::write_str(&mut b, chunk).unwrap();
    }
    b
}

/// An EventTime (`fixext8`, type 0) for `time_ns`.
pub fn event_time(time_ns: u64) -> [u8; 10] {
    let mut b = [0xd7, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
    b[2..6].copy_from_slice(&((time_ns / 1_000_000_000) as u32).to_be_bytes());
    b[6..].copy_from_slice(&((time_ns % 1_000_000_000) as u32).to_be_bytes());
    b
}

/// The msgpack encoding of a JSON value (maps keep their order).
pub fn msgpack(value: &Value) -> Vec<u8> {
    rmp_serde::to_vec_named(value).unwrap()
}

/// The bytes of the ack for `chunk`: `{"ack": "<chunk>"}`.
pub fn ack_bytes(chunk: &str) -> Vec<u8> {
    let mut b = vec![0x81, 0xa3, b'a', b'c', b'k'];
    rmp::encode::write_str(&mut b, chunk).unwrap();
    b
}

/// Read exactly the ack for `chunk` from `conn`; panics on anything else or on timeout.
pub fn expect_ack(conn: &mut impl Read, chunk: &str) {
    let want = ack_bytes(chunk);
    let mut got = vec![0; want.len()];
    conn.read_exact(&mut got)
        .unwrap_or_else(|e| panic!("no ack for chunk {chunk:?}: {e}"));
    assert_eq!(got, want, "wrong ack for chunk {chunk:?}");
}

/// Whether the peer closed `conn` (EOF or reset), discarding anything it sends first. Set a
/// read timeout on `conn` first: a timeout means it is still open.
pub fn closed_by_peer(conn: &mut impl Read) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Write `bytes`, ignoring a reset or broken pipe (the router may close first, on purpose).
pub fn write_lenient(conn: &mut impl Write, bytes: &[u8]) {
    match conn.write_all(bytes) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) => {}
        Err(e) => panic!("writing to the router: {e}"),
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Held by every test that runs a router on the fixed port 127.0.0.1:24224 (the embedded
/// default), so that they take turns under `cargo test` too, where the tests of this binary
/// share one process (nextest runs each in its own and groups them in scripts/nextest.toml).
pub fn fixed_port_24224() -> std::sync::MutexGuard<'static, ()> {
    static PORT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    PORT.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One scrape of a router's `/metrics` (at `http`, its HTTP server), parsed.
pub fn scrape(http: &str) -> Vec<wasm_router::ops::prometheus_text::Sample> {
    let mut s = std::net::TcpStream::connect(http).unwrap();
    s.set_read_timeout(Some(HANG_TIMEOUT)).unwrap();
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let body = raw.split_once("\r\n\r\n").unwrap().1;
    wasm_router::ops::prometheus_text::parse(body).unwrap_or_else(|e| panic!("{e}\n{body}"))
}

/// Events `output` discarded under `reason`, in a scrape.
pub fn discarded(
    samples: &[wasm_router::ops::prometheus_text::Sample],
    output: &str,
    reason: &str,
) -> u64 {
    wasm_router::ops::prometheus_text::sum(
        samples,
        "component_discarded_events_total",
        &[("component_id", output), ("reason", reason)],
    ) as u64
}

/// Poll `done` until it holds; after [`HANG_TIMEOUT`], fail naming `what`, with `context()`
/// (e.g. the router's log) to show why.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + HANG_TIMEOUT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Send `events` (tag, time in ns, record) with PyPI `fluent-logger`, EventTime, one
/// connection per tag, in order.
pub fn fluent_logger_send(addr: &str, events: &[(&str, u64, Value)]) {
    const SCRIPT: &str = r#"
import json, sys
from fluent import sender
host, port = sys.argv[1].rsplit(":", 1)
loggers = {}
for tag, time_ns, record in json.load(sys.stdin):
    if tag not in loggers:
        loggers[tag] = sender.FluentSender(tag, host=host, port=int(port), nanosecond_precision=True, timeout=10.0)
    logger = loggers[tag]
    if not logger.emit_with_time(None, sender.EventTime.from_unix_nano(time_ns), record):
        sys.exit(f"{tag}: {logger.last_error!r}")
for logger in loggers.values():
    logger.close()
"#;
    let payload = serde_json::to_vec(
        &events
            .iter()
            .map(|(tag, t, r)| serde_json::json!([tag, t, r]))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let mut child = Command::new(python())
        .args(["-c", SCRIPT, addr])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&payload).unwrap();
    let out = wait_output(child, "fluent-logger sender");
    assert_success(&out, "fluent-logger sender");
}

/// A temporary directory holding the classic `config` as `fluent-bit.conf` and `files` beside
/// it, `{dir}` in each replaced by the directory; and the config's path.
pub fn classic_dir(config: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text.replace("{dir}", d)).unwrap();
    }
    let path = dir.path().join("fluent-bit.conf");
    std::fs::write(&path, config.replace("{dir}", d)).unwrap();
    (dir, path)
}

/// Run `wasm-router run -c <dir>/fluent-bit.conf EXTRA…` on the classic `config` (see
/// [`classic_dir`]); `{dir}` in `extra` is the directory too.
pub fn start_classic(config: &str, files: &[(&str, &str)], extra: &[&str]) -> RouterProcess {
    let (dir, path) = classic_dir(config, files);
    let d = dir.path().to_str().unwrap();
    let mut cmd = router_command();
    cmd.arg("-c").arg(&path);
    cmd.args(extra.iter().map(|a| a.replace("{dir}", d)));
    RouterProcess::spawn(&mut cmd, dir)
}
