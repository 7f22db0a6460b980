//! Operating the router, tested on the real binary: the health and metrics HTTP server
//! (counters that move with traffic, drops and plugin faults; delivery health that flips when
//! an output is stuck and recovers), hot reload under load, `wasm-router top` under tmux, the
//! image's entrypoint script, and the binary running from an empty directory.
//!
//! Nothing here sleeps for a fixed time to make a result appear: every wait polls until the
//! expected state shows up and fails only after the hang timeout.

use crate::common;

use common::{HANG_TIMEOUT, RouterProcess, message_frame, msgpack, write_config};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wasm_router::ops::prometheus_text::{self, Sample};

// ---- helpers -----------------------------------------------------------------------------

/// `GET http://addr/path` → (status, body).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    http_request(addr, "GET", path)
}

fn http_request(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(HANG_TIMEOUT)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("bad response {raw:?}"));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

fn scrape(http: &str) -> Vec<Sample> {
    let (status, body) = http_get(http, "/metrics");
    assert_eq!(status, 200, "{body}");
    prometheus_text::parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"))
}

fn metric(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    prometheus_text::sum(samples, name, labels)
}

/// Scrape until `check` holds; returns that scrape.
fn scrape_until(http: &str, what: &str, check: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    let deadline = Instant::now() + HANG_TIMEOUT;
    loop {
        let samples = scrape(http);
        if check(&samples) {
            return samples;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed {what}:\n{}",
            http_get(http, "/metrics").1
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// GET until `check(status, body)` holds; returns the body.
fn get_until(http: &str, path: &str, what: &str, check: impl Fn(u16, &str) -> bool) -> String {
    let deadline = Instant::now() + HANG_TIMEOUT;
    loop {
        let (status, body) = http_get(http, path);
        if check(status, &body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never showed {what}; last: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Send `records` under `tag` as Message-mode requests, each acked; returns once every ack is in.
fn send_acked(addr: &str, tag: &str, records: &[Value]) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(HANG_TIMEOUT)).unwrap();
    for (i, record) in records.iter().enumerate() {
        let chunk = format!("c{i}");
        s.write_all(&message_frame(
            tag.as_bytes(),
            1_700_000_000_000_000_000 + i as u64,
            &msgpack(record),
            Some(&chunk),
        ))
        .unwrap();
        let expected = common::ack_bytes(&chunk);
        let mut got = vec![0u8; expected.len()];
        s.read_exact(&mut got).unwrap();
        assert_eq!(got, expected);
    }
}

fn router_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wasm-router"))
}

// ---- /metrics and the JSON endpoints -------------------------------------------------------

const METRICS_CONFIG: &str = r#"
[service]
grace = "5s"
http_listen = "127.0.0.1:0"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[outputs]]
type = "stdout"
match = "app.*"
"#;

#[test]
fn metrics_move_with_traffic_and_drops() {
    let router = RouterProcess::start(METRICS_CONFIG);
    let (addr, http) = (router.tcp_addr(), router.http_addr());

    let input = [("component_kind", "input"), ("component_id", "forward")];
    let output = [("component_kind", "output"), ("component_id", "stdout")];
    let before = scrape(&http);
    assert_eq!(
        metric(&before, "component_received_events_total", &input),
        0.0
    );
    assert!(
        metric(&before, "process_resident_memory_bytes", &[]) > 0.0,
        "process RSS missing"
    );
    assert!(
        before.iter().any(|s| s.name == "process_cpu_seconds_total"),
        "process CPU missing"
    );
    assert!(before.iter().any(|s| s.name == "wasm_router_build_info"));

    let records: Vec<Value> = (0..5)
        .map(|i| json!({"log": format!("line {i}")}))
        .collect();
    send_acked(&addr, "app.web", &records);
    router.wait_for_events(5);
    let after = scrape_until(&http, "5 events sent by stdout", |s| {
        metric(s, "component_sent_events_total", &output) == 5.0
    });
    assert_eq!(
        metric(&after, "component_received_events_total", &input),
        5.0
    );
    assert!(metric(&after, "component_received_bytes_total", &input) > 0.0);
    assert!(metric(&after, "component_last_sent_timestamp_seconds", &output) > 1.6e9);
    assert_eq!(metric(&after, "buffer_events", &output), 0.0);

    // A tag no output matches: counted as dropped by the router, with the reason.
    send_acked(&addr, "nowhere", &records[..3]);
    let dropped = scrape_until(&http, "3 events dropped", |s| {
        metric(
            s,
            "component_discarded_events_total",
            &[("reason", "no_matching_output")],
        ) == 3.0
    });
    assert_eq!(
        metric(&dropped, "component_received_events_total", &input),
        8.0
    );
    assert_eq!(
        metric(&dropped, "component_sent_events_total", &output),
        5.0
    );

    // The same numbers in Fluent Bit's API, under Fluent Bit's instance names.
    let (status, prom) = http_get(&http, "/api/v1/metrics/prometheus");
    assert_eq!(status, 200);
    let prom = prometheus_text::parse(&prom).unwrap();
    assert_eq!(
        metric(
            &prom,
            "fluentbit_input_records_total",
            &[("name", "forward.0")]
        ),
        8.0
    );
    let (status, fluent_bit_shaped) = http_get(&http, "/api/v1/metrics");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&fluent_bit_shaped).unwrap();
    assert_eq!(v["input"]["forward.0"]["records"], 8, "{v}");
    assert_eq!(v["output"]["stdout.0"]["proc_records"], 5, "{v}");

    assert_eq!(http_get(&http, "/api/v1/health"), (200, "ok\n".to_string()));
    let (status, uptime) = http_get(&http, "/api/v1/uptime");
    assert_eq!(status, 200);
    let uptime: Value = serde_json::from_str(&uptime).unwrap();
    assert!(
        uptime["uptime_sec"].is_u64() && uptime["uptime_hr"].as_str().unwrap().contains("running"),
        "{uptime}"
    );
    let (status, delivery) = http_get(&http, "/api/v1/health/delivery");
    assert_eq!(status, 200, "{delivery}");
    assert_eq!(http_get(&http, "/no/such/path").0, 404);

    let events = router.stop();
    assert_eq!(events.len(), 5);
}

#[test]
fn plugin_faults_and_call_latency_show_on_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[service]
grace = "5s"
http_listen = "127.0.0.1:0"
plugin_cache_dir = "{cache}"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[filters]]
type = "wasm"
name = "keeper"
match = "app.*"
path = "{keep_all}"

[[filters]]
type = "wasm"
name = "trapper"
match = "trap.*"
path = "{trap}"
on_error = "fail_open"

[[outputs]]
type = "stdout"
match = "*"
"#,
        cache = dir.path().join("cache").display(),
        keep_all = wasm_router_test_artifacts::KEEP_ALL,
        trap = wasm_router_test_artifacts::TRAP,
    );
    let router = RouterProcess::start(&config);
    let (addr, http) = (router.tcp_addr(), router.http_addr());
    let records: Vec<Value> = (0..4)
        .map(|i| json!({"log": format!("line {i}")}))
        .collect();
    send_acked(&addr, "app.web", &records);
    send_acked(&addr, "trap.web", &records);
    router.wait_for_events(8);
    let keeper = [("plugin", "keeper")];
    let trapper = [("plugin", "trapper")];
    let samples = scrape_until(&http, "plugin calls and faults", |s| {
        metric(s, "wasm_plugin_call_seconds_count", &keeper) >= 1.0
            && metric(s, "wasm_plugin_faults_total", &trapper) >= 1.0
    });
    // Latency is a histogram: buckets, sum and count.
    assert!(
        samples
            .iter()
            .any(|s| s.name == "wasm_plugin_call_seconds_bucket" && s.label("plugin") == "keeper")
    );
    assert_eq!(metric(&samples, "wasm_plugin_faults_total", &keeper), 0.0);
    assert_eq!(
        metric(
            &samples,
            "component_received_events_total",
            &[("component_kind", "input")]
        ),
        8.0
    );
    // fail_open: the trapped events were passed on, so stdout delivered all 8.
    let sent = scrape_until(&http, "8 events delivered", |s| {
        metric(
            s,
            "component_sent_events_total",
            &[("component_kind", "output"), ("component_id", "stdout")],
        ) == 8.0
    });
    assert_eq!(metric(&sent, "component_discarded_events_total", &[]), 0.0);
    router.stop();
}

// ---- delivery health ------------------------------------------------------------------------

#[test]
fn delivery_health_flips_when_an_output_is_stuck_and_recovers() {
    // A port nothing listens on yet: the aggregator this router forwards to is down.
    let port = common::free_port();
    let router = RouterProcess::start(&format!(
        r#"
[service]
grace = "2s"
http_listen = "127.0.0.1:0"
delivery_stuck_after = "1s"
retry_backoff_base = "50ms"
retry_backoff_cap = "200ms"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[outputs]]
type = "forward"
name = "aggregator"
match = "*"
host = "127.0.0.1"
port = {port}
"#
    ));
    let (addr, http) = (router.tcp_addr(), router.http_addr());
    assert_eq!(
        http_get(&http, "/api/v1/health/delivery").0,
        200,
        "healthy while idle"
    );

    send_acked(&addr, "app", &[json!({"log": "waits for the aggregator"})]);
    let stuck = get_until(
        &http,
        "/api/v1/health/delivery",
        "the output stuck",
        |status, _| status == 503,
    );
    let report: Value = serde_json::from_str(&stuck).unwrap();
    assert_eq!(report["status"], "stuck", "{report}");
    let output = &report["outputs"][0];
    assert_eq!(output["component_id"], "aggregator");
    assert_eq!(output["stuck"], true);
    assert_eq!(output["buffered_events"], 1);
    assert!(output["seconds_since_last_delivery"].is_null(), "{report}");
    // Liveness does not depend on the destination.
    assert_eq!(http_get(&http, "/api/v1/health"), (200, "ok\n".to_string()));
    let samples = scrape(&http);
    assert!(
        metric(
            &samples,
            "component_retries_total",
            &[("component_id", "aggregator")]
        ) >= 1.0
    );
    assert_eq!(
        metric(&samples, "buffer_events", &[("component_id", "aggregator")]),
        1.0
    );

    // The aggregator comes up (another wasm-router on that port): delivery resumes.
    let aggregator = RouterProcess::start(&format!(
        "[service]\ngrace = \"2s\"\n[[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:{port}\"\n[[outputs]]\ntype = \"stdout\"\nmatch = \"*\"\n"
    ));
    let received = aggregator.wait_for_events(1);
    assert_eq!(
        received[0].record,
        json!({"log": "waits for the aggregator"})
    );
    let healthy = get_until(&http, "/api/v1/health/delivery", "recovery", |status, _| {
        status == 200
    });
    let report: Value = serde_json::from_str(&healthy).unwrap();
    assert_eq!(report["outputs"][0]["buffered_events"], 0, "{report}");
    assert!(
        report["outputs"][0]["seconds_since_last_delivery"].is_number(),
        "{report}"
    );
    router.stop();
    aggregator.stop();
}

// ---- hot reload under load ------------------------------------------------------------------

/// Replace `to` with a copy of `from` the way deployments do: write aside, then rename.
fn replace_file(from: &str, to: &Path) {
    let aside = to.with_extension("incoming");
    std::fs::copy(from, &aside).unwrap();
    std::fs::rename(&aside, to).unwrap();
}

#[test]
fn reload_under_load_loses_nothing_and_refuses_a_broken_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("plugin.wasm");
    replace_file(wasm_router_test_artifacts::KEEP_ALL, &plugin);
    let router = RouterProcess::start(&format!(
        r#"
[service]
grace = "10s"
http_listen = "127.0.0.1:0"
plugin_cache_dir = "{cache}"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[filters]]
type = "wasm"
name = "swapped"
match = "*"
path = "{plugin}"

[[outputs]]
type = "stdout"
match = "*"
"#,
        cache = dir.path().join("cache").display(),
        plugin = plugin.display(),
    ));
    let (addr, http) = (router.tcp_addr(), router.http_addr());

    // One sender, acked requests back to back, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(HANG_TIMEOUT)).unwrap();
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let chunk = format!("c{seq}");
                let frame = message_frame(
                    b"load",
                    1_700_000_000_000_000_000 + seq,
                    &msgpack(&json!({"seq": seq})),
                    Some(&chunk),
                );
                s.write_all(&frame).unwrap();
                let expected = common::ack_bytes(&chunk);
                let mut got = vec![0u8; expected.len()];
                s.read_exact(&mut got).unwrap();
                assert_eq!(got, expected);
                seq += 1;
                sent.store(seq, Ordering::Relaxed);
            }
        })
    };
    let wait_for_more = |what: &str| {
        let target = router.events().len() + 20;
        eprintln!("waiting for events to flow {what}");
        router.wait_for_events(target);
    };
    wait_for_more("before any reload");

    // 1. A broken plugin (its `init` refuses the config): refused, the old one keeps running.
    replace_file(wasm_router_test_artifacts::INIT_FAILS, &plugin);
    let refused = router.wait_for_log("the broken plugin refused", |l| {
        l.contains("reload refused")
    });
    assert!(
        refused.contains("filters[0]") && refused.contains("plugin.wasm"),
        "{refused}"
    );
    wait_for_more("after the refused reload");

    // 2. A good plugin again: swapped in while events flow.
    replace_file(wasm_router_test_artifacts::KEEP_ALL, &plugin);
    router.wait_for_log("the good plugin swapped in", |l| {
        l.contains("plugin reloaded")
    });
    wait_for_more("after the reload");

    let reloads = scrape(&http);
    assert_eq!(
        metric(&reloads, "config_reloads_total", &[("result", "refused")]),
        1.0
    );
    assert_eq!(
        metric(&reloads, "config_reloads_total", &[("result", "ok")]),
        1.0
    );
    // The reloaded plugin kept its id: one series per metric, no name registered twice.
    let text = http_get(&http, "/metrics").1;
    let mut types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    let all = types.len();
    types.sort();
    types.dedup();
    assert_eq!(
        types.len(),
        all,
        "a metric family is registered twice:\n{text}"
    );

    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let n = sent.load(Ordering::Relaxed);
    let events = router.stop();
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e.record["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (0..n).collect::<Vec<_>>(),
        "every acked event, once, in order"
    );
}

#[test]
fn plugins_of_a_fluent_bit_classic_config_reload_too() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("plugin.wasm");
    replace_file(wasm_router_test_artifacts::KEEP_ALL, &plugin);
    let conf = dir.path().join("fluent-bit.conf");
    std::fs::write(
        &conf,
        format!(
            "[SERVICE]\n    Grace 5\n    HTTP_Server On\n    HTTP_Listen 127.0.0.1\n    HTTP_Port 0\n\n\
             [INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n\n\
             [FILTER]\n    Name wasm\n    Match *\n    Path {}\n\n\
             [OUTPUT]\n    Name stdout\n    Match *\n",
            plugin.display()
        ),
    )
    .unwrap();
    let mut cmd = common::router_command();
    cmd.arg("run")
        .arg("-c")
        .arg(&conf)
        .env("XDG_CACHE_HOME", dir.path().join("cache"));
    let router = RouterProcess::spawn(&mut cmd, tempfile::tempdir().unwrap());
    let (addr, http) = (router.tcp_addr(), router.http_addr());

    router.signal("HUP");
    router.wait_for_log("the SIGHUP reload", |l| {
        l.contains("reload done") && l.contains("reloaded_plugins=1")
    });
    replace_file(wasm_router_test_artifacts::INIT_FAILS, &plugin);
    router.wait_for_log("the broken plugin refused", |l| {
        l.contains("reload refused")
    });
    send_acked(&addr, "app", &[json!({"log": "still flowing"})]);
    router.wait_for_events(1);
    let reloads = scrape(&http);
    assert_eq!(
        metric(&reloads, "config_reloads_total", &[("result", "ok")]),
        1.0
    );
    assert_eq!(
        metric(&reloads, "config_reloads_total", &[("result", "refused")]),
        1.0
    );
    assert_eq!(router.stop()[0].record, json!({"log": "still flowing"}));
}

// ---- wasm-router top under tmux ------------------------------------------------------------

/// A tmux server of its own (`-L`), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(session: &str, width: u16, height: u16, command: &str) -> Tmux {
        let socket = format!("wasm-router-test-{}-{session}", std::process::id());
        let status = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                &width.to_string(),
                "-y",
            ])
            .arg(height.to_string())
            .arg(command)
            .env_remove("TMUX")
            .status()
            .expect("tmux is installed");
        assert!(status.success(), "tmux new-session failed");
        Tmux { socket }
    }

    fn capture(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Capture until `check` holds.
    fn capture_until(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + HANG_TIMEOUT;
        loop {
            let screen = self.capture();
            if check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the pane never showed {what}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// The cells of the row for `(kind, id)` on a captured screen.
fn row_cells(screen: &str, kind: &str, id: &str) -> Option<Vec<String>> {
    screen.lines().find_map(|line| {
        let cells: Vec<String> = line
            .split(|c: char| c.is_whitespace() || c == '│')
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect();
        (cells.len() > 3 && cells[0] == kind && cells[1] == id).then_some(cells)
    })
}

/// Forward in, a WASM filter `keeper` on `app.*`, stdout out.
fn top_config(cache: &Path) -> String {
    format!(
        r#"
[service]
grace = "5s"
http_listen = "127.0.0.1:0"
plugin_cache_dir = "{cache}"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[filters]]
type = "wasm"
name = "keeper"
match = "app.*"
path = "{keep_all}"

[[outputs]]
type = "stdout"
match = "app.*"
"#,
        cache = cache.display(),
        keep_all = wasm_router_test_artifacts::KEEP_ALL,
    )
}

#[test]
fn top_shows_components_and_numbers_that_move() {
    let cache = tempfile::tempdir().unwrap();
    let router = RouterProcess::start(&top_config(cache.path()));
    let (addr, http) = (router.tcp_addr(), router.http_addr());

    // Traffic: `wasm-router cat` in a loop until the test ends.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (stop, sent, addr) = (stop.clone(), sent.clone(), addr.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let out = common::router_command()
                    .args(["cat", "--tag", "app.top", "--address", &addr, "--ack"])
                    .args([r#"{"log":"one"}"#, r#"{"log":"two"}"#])
                    .stderr(Stdio::null())
                    .status()
                    .unwrap();
                assert!(out.success());
                sent.fetch_add(2, Ordering::Relaxed);
            }
        })
    };

    let command = format!(
        "{} top --url http://{http}/metrics --interval 200",
        router_bin().display()
    );
    let tmux = Tmux::start("top", 170, 20, &command);
    let first = tmux.capture_until(
        "the forward input and stdout output rows with traffic",
        |screen| {
            let input = row_cells(screen, "input", "forward");
            input.is_some_and(|cells| cells[2].parse::<u64>().is_ok_and(|n| n > 0))
                && row_cells(screen, "output", "stdout").is_some()
        },
    );
    assert!(
        first.contains("EVENTS IN")
            && first.contains("OUT/S")
            && first.contains("EV/REQ")
            && first.contains("RSS"),
        "{first}"
    );
    let first_in: u64 = row_cells(&first, "input", "forward").unwrap()[2]
        .parse()
        .unwrap();
    let second = tmux.capture_until("the events-in count moving", |screen| {
        row_cells(screen, "input", "forward")
            .is_some_and(|cells| cells[2].parse::<u64>().is_ok_and(|n| n > first_in))
    });
    let out_row = row_cells(&second, "output", "stdout").unwrap();
    assert!(
        out_row[4].parse::<u64>().unwrap() > 0,
        "stdout row shows no events out:\n{second}"
    );
    // The plugin's row shows its call latency (p50, p99 over the last interval).
    let keeper = tmux.capture_until("the plugin's latency", |screen| {
        screen.lines().any(|line| {
            let cells: Vec<&str> = line
                .split(|c: char| c.is_whitespace() || c == '│')
                .filter(|c| !c.is_empty())
                .collect();
            cells.len() >= 13
                && cells[1] == "keeper"
                && cells[11].ends_with('s')
                && cells[12].ends_with('s')
        })
    });
    assert!(
        row_cells(&keeper, "filter", "keeper").is_some(),
        "the plugin's numbers belong on its filter's row:\n{keeper}"
    );
    // A rate appears once two scrapes are in.
    assert!(
        row_cells(&second, "input", "forward").unwrap()[3]
            .parse::<f64>()
            .is_ok(),
        "{second}"
    );

    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    drop(tmux);
    let events = router.stop();
    assert_eq!(events.len() as u64, sent.load(Ordering::Relaxed));
}

#[test]
fn top_says_when_the_router_is_unreachable() {
    // A port that was just free: nothing listens there.
    let port = common::free_port();
    let command = format!(
        "{} top --url http://127.0.0.1:{port}/metrics --interval 200",
        router_bin().display()
    );
    let tmux = Tmux::start("unreachable", 150, 10, &command);
    let screen = tmux.capture_until("an error", |s| s.contains("error:"));
    assert!(
        screen.contains("http_listen"),
        "the error should say how to fix it:\n{screen}"
    );
}

// ---- the image's entrypoint --------------------------------------------------------------------

fn entrypoint() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/entrypoint.sh")
}

/// The entrypoint with every path it reads pointed into `dir`.
fn entrypoint_command(dir: &Path) -> Command {
    let mut cmd = Command::new(entrypoint());
    cmd.env("WASM_ROUTER_BIN", router_bin())
        .env("WASM_ROUTER_CONFIG", dir.join("etc/router.toml"))
        .env(
            "FLUENT_BIT_CONFIG",
            dir.join("fluent-bit/etc/fluent-bit.conf"),
        )
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG");
    cmd
}

const NATIVE: &str = r#"
[service]
grace = "5s"
http_listen = "127.0.0.1:0"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[outputs]]
type = "stdout"
match = "*"
"#;

#[test]
fn entrypoint_runs_the_config_given_with_c_ignoring_fluent_bit_plugin_flags() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), NATIVE);
    let parsers = dir.path().join("parsers.conf");
    std::fs::write(&parsers, "[PARSER]\n    Name json\n    Format json\n").unwrap();
    let router = RouterProcess::spawn(
        entrypoint_command(dir.path())
            .args([
                "-e",
                "/fluent-bit/firehose.so",
                "-e",
                "/fluent-bit/cloudwatch.so",
                "-c",
            ])
            .arg(&config)
            .arg("-R")
            .arg(&parsers),
        tempfile::tempdir().unwrap(),
    );
    let addr = router.tcp_addr();
    let log = router.log_text();
    assert!(
        log.contains(&format!("wasm-router {}", env!("CARGO_PKG_VERSION"))),
        "version first:\n{log}"
    );
    assert!(log.contains("ignoring -e /fluent-bit/firehose.so"), "{log}");
    assert!(
        log.contains(&format!("config={}", config.display())),
        "{log}"
    );
    assert!(
        log.contains("parsers.conf"),
        "-R is passed on to the router:\n{log}"
    );
    send_acked(&addr, "app", &[json!({"log": "via entrypoint"})]);
    router.wait_for_events(1);
    // The script execs the router: SIGTERM to the process we started is a graceful shutdown.
    let events = router.stop();
    assert_eq!(events[0].record, json!({"log": "via entrypoint"}));
}

/// A classic config as FireLens writes it, on free ports.
const FLUENT_BIT_CONF: &str = "[SERVICE]\n    Grace 5\n\n[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n\n[OUTPUT]\n    Name stdout\n    Match *\n";

#[test]
fn entrypoint_prefers_the_mounted_native_config_then_fluent_bit_conf_then_the_default() {
    let _port = common::fixed_port_24224();
    // The native config mounted at $WASM_ROUTER_CONFIG wins over FireLens's file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::create_dir_all(dir.path().join("fluent-bit/etc")).unwrap();
    std::fs::write(dir.path().join("etc/router.toml"), NATIVE).unwrap();
    let fluent_bit_conf = dir.path().join("fluent-bit/etc/fluent-bit.conf");
    std::fs::write(&fluent_bit_conf, FLUENT_BIT_CONF).unwrap();
    let router = RouterProcess::spawn(
        &mut entrypoint_command(dir.path()),
        tempfile::tempdir().unwrap(),
    );
    router.tcp_addr();
    assert!(router.log_text().contains(&format!(
        "running with {}",
        dir.path().join("etc/router.toml").display()
    )));
    router.stop();

    // Only FireLens's fluent-bit.conf: the router runs it.
    std::fs::remove_file(dir.path().join("etc/router.toml")).unwrap();
    let router = RouterProcess::spawn(
        &mut entrypoint_command(dir.path()),
        tempfile::tempdir().unwrap(),
    );
    let addr = router.tcp_addr();
    assert!(
        router
            .log_text()
            .contains(&format!("running with {}", fluent_bit_conf.display())),
        "{}",
        router.log_text()
    );
    send_acked(&addr, "app-firelens-0123", &[json!({"log": "classic"})]);
    router.wait_for_events(1);
    router.stop();

    // Neither: the embedded default.
    std::fs::remove_file(&fluent_bit_conf).unwrap();
    let router = RouterProcess::spawn(
        &mut entrypoint_command(dir.path()),
        tempfile::tempdir().unwrap(),
    );
    router.wait_for_log("the embedded default", |l| {
        l.contains("config=<embedded default>")
    });
    assert!(
        router
            .log_text()
            .contains("running the embedded default configuration")
    );
}

#[test]
fn entrypoint_passes_router_subcommands_through_and_refuses_unknown_flags() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), NATIVE);
    let out = entrypoint_command(dir.path())
        .args(["validate", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));

    let out = entrypoint_command(dir.path())
        .arg("--flush")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument --flush"));
}

// ---- the binary alone, in an empty directory ------------------------------------------------------

/// The binary copied to a fresh directory and run with an empty environment, an empty HOME
/// and an empty working directory: only the "mounted" config is there, as in the image.
/// `WASM_ROUTER_RELEASE_BIN` names the binary to test (e.g. `target/release/wasm-router`);
/// the test binary otherwise.
#[test]
fn the_binary_runs_from_an_empty_directory_with_only_the_mounted_files() {
    let root = tempfile::tempdir().unwrap();
    let (bin_dir, mnt, home, cwd) = (
        root.path().join("bin"),
        root.path().join("mnt"),
        root.path().join("home"),
        root.path().join("cwd"),
    );
    for d in [&bin_dir, &mnt, &home, &cwd] {
        std::fs::create_dir_all(d).unwrap();
    }
    let source = std::env::var_os("WASM_ROUTER_RELEASE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(router_bin);
    let bin = bin_dir.join("wasm-router");
    // `cp` in a child: a file this multi-threaded process had open for writing could leak into a
    // concurrently forked child and make exec fail with ETXTBSY.
    assert!(
        Command::new("cp")
            .arg(&source)
            .arg(&bin)
            .status()
            .unwrap()
            .success()
    );
    let config = write_config(&mnt, NATIVE);
    let isolated = |cmd: &mut Command| {
        cmd.env_clear()
            .env("HOME", &home)
            .env("PATH", "/usr/bin:/bin")
            .env("NO_COLOR", "1")
            .current_dir(&cwd);
    };
    let mut run = Command::new(&bin);
    run.args(["run", "-c"]).arg(&config);
    isolated(&mut run);
    let router = RouterProcess::spawn(&mut run, tempfile::tempdir().unwrap());
    let (addr, http) = (router.tcp_addr(), router.http_addr());

    let mut cat = Command::new(&bin);
    cat.args([
        "cat",
        "--tag",
        "alone",
        "--address",
        &addr,
        "--ack",
        r#"{"log":"a"}"#,
        r#"{"log":"b"}"#,
    ]);
    isolated(&mut cat);
    let out = cat.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    router.wait_for_events(2);
    assert_eq!(http_get(&http, "/api/v1/health").0, 200);
    let events = router.stop();
    assert_eq!(
        events
            .iter()
            .map(|e| e.record["log"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(
        std::fs::read_dir(&cwd).unwrap().count(),
        0,
        "the router wrote into its working directory"
    );
}
