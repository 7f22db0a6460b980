//! Issue 19 (fleet scale): events arriving one per forward message, as Docker's fluentd log
//! driver sends them, share PutLogEvents calls within the output's flush window (default 1 s)
//! instead of costing one call each; `batch_timeout = "0s"` keeps sending at once; under
//! throttling every event is still delivered once; the calls are visible per destination in
//! `output_requests_total`.

use crate::common;
use crate::common::aws::*;
use crate::common::fault_proxy::{Fault, FaultProxy, cloudwatch_events};
use serde_json::json;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// A router with a forward input and a CloudWatch Logs output (through `proxy`) to group
/// `group`, stream `s`, with `extra` keys on the output.
fn router(proxy: &FaultProxy, group: &str, extra: &str) -> common::RouterProcess {
    let config = format!(
        r#"
[service]
grace = "5s"
http_listen = "127.0.0.1:0"
retry_backoff_base = "50ms"
retry_backoff_cap = "500ms"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[outputs]]
type = "cloudwatch"
name = "cw"
match = "*"
region = "{REGION}"
endpoint = "{}"
log_group_name = "{group}"
log_stream_name = "s"
auto_create_group = true
log_key = "log"
{extra}
"#,
        proxy.endpoint
    );
    start_router(&config, &[])
}

/// Send `n` events at `per_second` over one connection, each in its own Message-mode forward
/// message with a chunk id, waiting for each ack (as Docker's fluentd log driver does).
fn trickle(addr: &str, n: u64, per_second: u64) {
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let start = Instant::now();
    for i in 0..n {
        let at = start + Duration::from_secs_f64(i as f64 / per_second as f64);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        let id = format!("m{i}");
        let mut frame = Vec::new();
        rmp::encode::write_array_len(&mut frame, 4).unwrap();
        rmp::encode::write_str(&mut frame, "app").unwrap();
        rmp::encode::write_uint(&mut frame, now_ns() / 1_000_000_000).unwrap();
        frame.extend_from_slice(&msgpack(&json!({"log": format!("line {i}")})));
        rmp::encode::write_map_len(&mut frame, 1).unwrap();
        rmp::encode::write_str(&mut frame, "chunk").unwrap();
        rmp::encode::write_str(&mut frame, &id).unwrap();
        conn.write_all(&frame).unwrap();
        let mut want = vec![0x81, 0xa3, b'a', b'c', b'k'];
        rmp::encode::write_str(&mut want, &id).unwrap();
        let mut got = vec![0; want.len()];
        conn.read_exact(&mut got).unwrap();
        assert_eq!(got, want, "ack of message {i}");
    }
}

/// The messages in `group` stream `s`, once there are `n`; every one of `line 0..n` exactly
/// once.
async fn all_delivered_once(moto: &Moto, group: &str, n: u64) {
    let got = wait_for_log_events(
        &moto.endpoint,
        group,
        "s",
        n as usize,
        Duration::from_secs(60),
    )
    .await;
    let mut lines: Vec<String> = got.into_iter().map(|(_, m)| m).collect();
    lines.sort();
    let mut want: Vec<String> = (0..n).map(|i| format!("line {i}")).collect();
    want.sort();
    assert_eq!(lines, want, "every event once");
}

/// A scrape of `router`'s metrics once its output `cw` counted `n` events sent (the router
/// counts a call when its answer arrives, after moto stored the events).
fn scrape_after(
    router: &common::RouterProcess,
    n: u64,
) -> Vec<wasm_router::ops::prometheus_text::Sample> {
    let http = router.http_addr();
    let sent = |samples: &[wasm_router::ops::prometheus_text::Sample]| {
        wasm_router::ops::prometheus_text::sum(
            samples,
            "component_sent_events_total",
            &[("component_id", "cw")],
        ) as u64
    };
    common::wait_until(
        "the router to count every event sent",
        || sent(&common::scrape(&http)) >= n,
        || router.log_text(),
    );
    common::scrape(&http)
}

/// PutLogEvents calls that reached moto, and the events they carried.
fn puts(proxy: &FaultProxy) -> (usize, usize) {
    let seen = proxy.seen_op("PutLogEvents");
    let events = seen
        .iter()
        .filter_map(|s| s.forwarded.as_ref())
        .map(|b| cloudwatch_events(b).len())
        .sum();
    (seen.len(), events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_events_at_20_a_second_share_one_put_log_events_per_window() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    let router = router(&proxy, "trickle", "");
    let addr = router.tcp_addr();
    tokio::task::spawn_blocking(move || trickle(&addr, 200, 20))
        .await
        .unwrap();
    all_delivered_once(&moto, "trickle", 200).await;
    let (calls, events) = puts(&proxy);
    assert_eq!(events, 200, "no PutLogEvents was sent twice");
    // 10 s of events, a window of 0.9–1 s: about one call per second, not one per event.
    assert!(
        calls <= 13,
        "{calls} PutLogEvents calls for 200 events over 10 s"
    );
    let samples = scrape_after(&router, 200);
    let requests = wasm_router::ops::prometheus_text::sum(
        &samples,
        "output_requests_total",
        &[
            ("component_id", "cw"),
            ("destination", "group 'trickle' stream 's'"),
        ],
    ) as usize;
    assert_eq!(requests, calls, "output_requests_total counts every call");
    let per_request = wasm_router::ops::prometheus_text::sum(
        &samples,
        "output_request_events_sum",
        &[("component_id", "cw")],
    );
    assert_eq!(per_request as u64, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_timeout_zero_sends_each_event_as_it_comes() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    let router = router(&proxy, "at-once", "batch_timeout = \"0s\"");
    let addr = router.tcp_addr();
    tokio::task::spawn_blocking(move || trickle(&addr, 100, 20))
        .await
        .unwrap();
    all_delivered_once(&moto, "at-once", 100).await;
    let (calls, events) = puts(&proxy);
    assert_eq!(events, 100);
    assert!(
        calls > 40,
        "without a window events go out as they come: {calls} calls for 100 events"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_throttling_every_event_is_delivered_once_in_few_calls() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    let router = router(&proxy, "throttled", "");
    let addr = router.tcp_addr();
    proxy.inject("PutLogEvents", std::iter::repeat_n(Fault::Throttle, 6));
    tokio::task::spawn_blocking(move || trickle(&addr, 160, 20))
        .await
        .unwrap();
    all_delivered_once(&moto, "throttled", 160).await;
    assert_eq!(proxy.pending_faults("PutLogEvents"), 0);
    let (calls, events) = puts(&proxy);
    assert_eq!(events, 160, "no accepted PutLogEvents was sent again");
    // 6 throttled calls, then the window (stretched by them) gathers what waited.
    let accepted = calls - 6;
    assert!(
        accepted <= 9,
        "{accepted} accepted PutLogEvents calls for 160 events over 8 s"
    );
    let samples = scrape_after(&router, 160);
    let requests = wasm_router::ops::prometheus_text::sum(
        &samples,
        "output_requests_total",
        &[("component_id", "cw")],
    ) as usize;
    assert_eq!(requests, calls, "throttled calls are counted too");
}
