//! Fluent Bit's monitoring API on the real binary with classic configs: `/api/v1/metrics` and
//! `/api/v1/metrics/prometheus` counting what a real forward client (PyPI `fluent-logger`)
//! sent, under Fluent Bit's instance names and aliases; `/api/v1/health` with
//! `Health_Check On` turning to `500 error` after a retry failure and back to `200 ok` once
//! the period has passed.

use crate::common;

use common::{HANG_TIMEOUT, RouterProcess, fluent_logger_send, free_port, start_classic};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;
use wasm_router::ops::prometheus_text;

/// `GET http://addr/path` → (status, body).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(HANG_TIMEOUT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
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

/// Poll `path` until `check(status, body)` holds; returns that body.
fn poll(
    router: &RouterProcess,
    http: &str,
    path: &str,
    what: &str,
    check: impl Fn(u16, &str) -> bool,
) -> String {
    let deadline = Instant::now() + HANG_TIMEOUT;
    loop {
        let (status, body) = http_get(http, path);
        if check(status, &body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last {path}: {status} {body}\nrouter log:\n{}",
            router.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn json_metrics(http: &str) -> Value {
    let (status, body) = http_get(http, "/api/v1/metrics");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn prometheus_value(body: &str, metric: &str, name: &str) -> u64 {
    let samples = prometheus_text::parse(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    prometheus_text::sum(&samples, metric, &[("name", name)]) as u64
}

const PIPELINE: &str = "\
[SERVICE]
    HTTP_Server On
    HTTP_Listen 127.0.0.1
    HTTP_Port   0
    storage.metrics on

[INPUT]
    Name   forward
    Listen 127.0.0.1
    Port   0

[INPUT]
    Name      forward
    Alias     app_socket
    unix_path {dir}/fluent.sock

[FILTER]
    Name    grep
    Alias   no_debug
    Match   *
    Exclude level ^debug$

[OUTPUT]
    Name  null
    Match app.*

[OUTPUT]
    Name  null
    Alias unmatched
    Match other
";

#[test]
fn records_of_a_forward_client_are_counted_under_fluent_bit_names() {
    let router = start_classic(PIPELINE, &[], &[]);
    let forward = router.tcp_addr();
    let http = router.http_addr();
    let events: Vec<(&str, u64, Value)> = (0..1000u64)
        .map(|i| {
            (
                "app.web",
                1_700_000_000_000_000_000 + i,
                json!({"log": format!("line {i}"), "level": "info"}),
            )
        })
        .collect();
    fluent_logger_send(&forward, &events);

    poll(
        &router,
        &http,
        "/api/v1/metrics",
        "1,000 records processed by null.0",
        |_, body| {
            serde_json::from_str::<Value>(body)
                .is_ok_and(|v| v["output"]["null.0"]["proc_records"] == 1000)
        },
    );
    let v = json_metrics(&http);
    assert_eq!(v["input"]["forward.0"]["records"], 1000, "{v}");
    assert!(
        v["input"]["forward.0"]["bytes"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert_eq!(
        v["input"]["app_socket"],
        json!({"records": 0, "bytes": 0}),
        "{v}"
    );
    assert_eq!(v["filter"]["no_debug"]["records"], 1000, "{v}");
    assert_eq!(v["filter"]["no_debug"]["drop_records"], 0, "{v}");
    assert_eq!(
        v["output"]["null.0"],
        json!({"proc_records": 1000, "errors": 0, "retries": 0, "retries_failed": 0, "dropped_records": 0, "retried_records": 0}),
        "{v}"
    );
    assert_eq!(v["output"]["unmatched"]["proc_records"], 0, "{v}");
    // Instances in config order, as Fluent Bit lists them.
    let raw = http_get(&http, "/api/v1/metrics").1;
    let at = |name: &str| raw.find(&format!("\"{name}\":")).unwrap();
    assert!(at("forward.0") < at("app_socket"), "{raw}");
    assert!(at("null.0") < at("unmatched"), "{raw}");

    let (status, prom) = http_get(&http, "/api/v1/metrics/prometheus");
    assert_eq!(status, 200);
    assert_eq!(
        prometheus_value(&prom, "fluentbit_input_records_total", "forward.0"),
        1000,
        "{prom}"
    );
    assert_eq!(
        prometheus_value(&prom, "fluentbit_filter_records_total", "no_debug"),
        1000
    );
    assert_eq!(
        prometheus_value(&prom, "fluentbit_output_proc_records_total", "null.0"),
        1000
    );
    assert!(
        prom.contains("# TYPE fluentbit_output_proc_records_total counter\n"),
        "{prom}"
    );
    assert!(
        prom.contains("fluentbit_output_proc_records_total{name=\"unmatched\"} 0 "),
        "{prom}"
    );

    // Records the filter drops are its drop_records, and never reach the output.
    let debug: Vec<(&str, u64, Value)> = (0..10u64)
        .map(|i| {
            (
                "app.web",
                1_700_000_001_000_000_000 + i,
                json!({"log": "noise", "level": "debug"}),
            )
        })
        .collect();
    fluent_logger_send(&forward, &debug);
    poll(
        &router,
        &http,
        "/api/v1/metrics/prometheus",
        "10 records dropped by no_debug",
        |_, body| prometheus_value(body, "fluentbit_filter_drop_records_total", "no_debug") == 10,
    );
    let v = json_metrics(&http);
    assert_eq!(v["input"]["forward.0"]["records"], 1010, "{v}");
    assert_eq!(v["output"]["null.0"]["proc_records"], 1000, "{v}");

    // Our own metrics stay at /metrics, under our component ids.
    let (status, ours) = http_get(&http, "/metrics");
    assert_eq!(status, 200);
    assert!(
        ours.contains("component_received_events_total{component_kind=\"input\",component_id=\"forward\"} 1010"),
        "{ours}"
    );
    // storage.metrics on: each output's buffer, under Fluent Bit's names.
    let (status, storage) = http_get(&http, "/api/v1/storage");
    assert_eq!(status, 200, "{storage}");
    let storage: Value = serde_json::from_str(&storage).unwrap();
    assert_eq!(
        storage["output_buffers"]["unmatched"],
        json!({"events": 0, "bytes": 0, "stalled": false}),
        "{storage}"
    );
    assert!(
        storage["output_buffers"]["null.0"]["bytes"].is_u64(),
        "{storage}"
    );

    // Health_Check is off: /api/v1/health is liveness.
    assert_eq!(http_get(&http, "/api/v1/health"), (200, "ok\n".to_string()));
}

#[test]
fn health_check_turns_to_error_on_a_retry_failure_and_back_after_the_period() {
    let closed = free_port();
    let config = format!(
        "\
[SERVICE]
    HTTP_Server On
    HTTP_Listen 127.0.0.1
    HTTP_Port   0
    Health_Check On
    HC_Errors_Count 5
    HC_Retry_Failure_Count 0
    HC_Period 2

[INPUT]
    Name   forward
    Listen 127.0.0.1
    Port   0

[OUTPUT]
    Name        forward
    Match       *
    Host        127.0.0.1
    Port        {closed}
    Retry_Limit 1
"
    );
    let router = start_classic(&config, &[], &[]);
    let forward = router.tcp_addr();
    let http = router.http_addr();
    assert_eq!(http_get(&http, "/api/v1/health"), (200, "ok\n".to_string()));
    // Without storage.metrics, no storage endpoint (as Fluent Bit).
    assert_eq!(http_get(&http, "/api/v1/storage").0, 404);

    fluent_logger_send(
        &forward,
        &[("app", 1_700_000_000_000_000_000, json!({"log": "x"}))],
    );
    poll(
        &router,
        &http,
        "/api/v1/health",
        "health to turn to error",
        |status, body| status == 500 && body == "error\n",
    );
    let v = json_metrics(&http);
    let out = &v["output"]["forward.0"];
    assert_eq!(out["retries_failed"], 1, "{v}");
    // Ours counts the failed attempt that was given up too (component_retries_total).
    assert_eq!(out["retries"], 2, "{v}");
    assert_eq!(out["dropped_records"], 1, "{v}");
    assert_eq!(out["retried_records"], 1, "{v}");
    assert_eq!(out["proc_records"], 0, "{v}");

    // No new failure: once the failure is older than HC_Period, healthy again.
    poll(
        &router,
        &http,
        "/api/v1/health",
        "health to be ok again",
        |status, body| status == 200 && body == "ok\n",
    );
}
