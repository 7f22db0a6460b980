//! The `tcp` input end to end: real Python `socket` senders write EMF JSON lines and text to a
//! running router; every record is found at the `stdout` output, and what cannot be a record
//! (bad JSON, a record over `buffer_size`) is counted under its reason, never dropped silently.

use crate::common::{self, RouterProcess};
use serde_json::json;
use std::io::Write as _;
use std::process::Command;

/// Send `payload` (Python bytes literal) from Python's `socket` over `connections` connections.
fn python_send(addr: &str, payload: &str, connections: usize) {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let script = format!(
        "import socket\nfor _ in range({connections}):\n    s = socket.create_connection(('{host}', {port}))\n    s.sendall({payload})\n    s.close()\n"
    );
    let status = Command::new(common::python())
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(status.success(), "the python sender failed");
}

fn config(port: u16, http: u16, extra: &str) -> String {
    format!(
        "[service]\nhttp_listen = \"127.0.0.1:{http}\"\n\
         [[inputs]]\ntype = \"tcp\"\nlisten = \"127.0.0.1:{port}\"\ntag = \"emf\"\nsource_address_key = \"source\"\n{extra}\n\
         [[outputs]]\ntype = \"stdout\"\nmatch = \"*\"\n"
    )
}

#[test]
fn emf_json_lines_from_python_arrive_at_the_output() {
    let (port, http) = (common::free_port(), common::free_port());
    let router = RouterProcess::start(&config(port, http, ""));
    let addr = router.tcp_addr();
    // 50 EMF records over 5 connections, as the EMF libraries write them: one JSON per line.
    let lines: String = (0..10)
        .map(|i| {
            json!({"_aws": {"Timestamp": 1_700_000_000_000u64 + i, "CloudWatchMetrics": [{"Namespace": "app", "Dimensions": [["svc"]], "Metrics": [{"Name": "latency", "Unit": "Milliseconds"}]}]}, "svc": "api", "latency": i})
                .to_string()
                + "\n"
        })
        .collect();
    python_send(&addr, &format!("{:?}.encode()", lines), 5);
    let events = router.wait_for_events(50);
    assert_eq!(events.len(), 50);
    for e in &events {
        assert_eq!(e.tag, "emf");
        assert_eq!(e.record["svc"], "api");
        assert!(e.record["_aws"]["CloudWatchMetrics"].is_array());
        assert!(
            e.record["source"]
                .as_str()
                .unwrap()
                .starts_with("tcp://127.0.0.1:"),
            "{:?}",
            e.record
        );
    }
    let latencies: Vec<u64> = events
        .iter()
        .map(|e| e.record["latency"].as_u64().unwrap())
        .collect();
    for i in 0..10 {
        assert_eq!(latencies.iter().filter(|l| **l == i).count(), 5);
    }
    let samples = common::scrape(&router.http_addr());
    let received = wasm_router::ops::prometheus_text::sum(
        &samples,
        "component_received_events_total",
        &[("component_id", "tcp")],
    );
    assert_eq!(received, 50.0);
}

#[test]
fn text_lines_bad_json_and_oversized_records_are_each_accounted_for() {
    let (port, http) = (common::free_port(), common::free_port());
    let router = RouterProcess::start(&config(
        port,
        http,
        "[[inputs]]\ntype = \"tcp\"\nname = \"text\"\nlisten = \"127.0.0.1:0\"\ntag = \"plain\"\nformat = \"none\"\nbuffer_size = \"32KiB\"\n",
    ));
    let listeners = router.listening(2);
    let text_addr = listeners
        .iter()
        .find_map(|a| {
            a.strip_prefix("tcp://")
                .filter(|a| !a.ends_with(&format!(":{port}")))
        })
        .unwrap()
        .to_string();
    let json_addr = format!("127.0.0.1:{port}");
    // JSON: two good records around a line that is not JSON and a JSON array.
    python_send(
        &json_addr,
        "b'{\"n\": 1}\\nthis is not json\\n[1, 2]\\n{\"n\": 2}\\n'",
        1,
    );
    // Text: two lines, one over 32 KiB between them, and a last line without a newline.
    python_send(
        &text_addr,
        "b'first\\n' + b'x' * 40000 + b'\\nsecond\\nlast'",
        1,
    );
    let events = router.wait_for_events(5);
    let mut records: Vec<_> = events
        .iter()
        .map(|e| (e.tag.clone(), e.record.clone()))
        .collect();
    records.sort_by_key(|(tag, r)| (tag.clone(), r.to_string()));
    assert_eq!(
        records,
        [
            (
                "emf".to_string(),
                json!({"n": 1, "source": records[0].1["source"]})
            ),
            (
                "emf".to_string(),
                json!({"n": 2, "source": records[1].1["source"]})
            ),
            ("plain".to_string(), json!({"log": "first"})),
            ("plain".to_string(), json!({"log": "last"})),
            ("plain".to_string(), json!({"log": "second"})),
        ]
    );
    let http = router.http_addr();
    common::wait_until(
        "the refused records counted",
        || {
            let samples = common::scrape(&http);
            common::discarded(&samples, "tcp", "invalid_json") == 2
                && common::discarded(&samples, "text", "record_too_large") == 1
        },
        || router.log_text(),
    );
}

/// A sender still inside a record when shutdown's drain time is over: its connection is closed
/// and the cut-off record is counted, not lost without a word.
#[test]
fn a_record_cut_off_at_shutdown_is_counted() {
    let (port, http) = (common::free_port(), common::free_port());
    let mut router = RouterProcess::start(
        &config(port, http, "").replace("[service]\n", "[service]\ngrace = \"1s\"\n"),
    );
    let addr = router.tcp_addr();
    let mut sender = std::net::TcpStream::connect(&addr).unwrap();
    sender.write_all(b"{\"whole\": 1}\n{\"cut\": ").unwrap();
    router.wait_for_events(1);
    router.terminate();
    let log = router.log_text();
    assert!(
        log.lines().any(|l| l.contains("events dropped")
            && l.contains("reason=\"connection_closed_mid_record\"")),
        "the cut-off record is counted:\n{log}"
    );
    drop(sender);
}
