//! The datadog output through the SDK's native harness: the requests a batch becomes (URL,
//! headers, secret header, body), splitting at Datadog's limits, oversized entries, and the
//! classification of the intake's answers.

use datadog::Datadog;
use serde_json::{Value, json};
use wasm_router_sdk::PluginConfig;
use wasm_router_sdk::output::{Delivery, Output, Request, Response};
use wasm_router_sdk::testing::{self, TestBatch, TestEvent};

fn output(config: &str) -> Datadog {
    Datadog::from_json(config).unwrap_or_else(|errors| panic!("{config}: {errors:?}"))
}

fn encode(config: &str, events: &[TestEvent]) -> Vec<Request> {
    output(config)
        .encode(&TestBatch::new(events).view())
        .unwrap()
}

fn body(request: &Request) -> Vec<Value> {
    serde_json::from_slice(&request.body).unwrap()
}

fn lines(n: usize) -> Vec<TestEvent> {
    (0..n)
        .map(|i| {
            TestEvent::json(json!({"log": format!("line {i}"), "n": i}))
                .with_time_ns(1_700_000_000_000_000_000 + i as u64 * 1_000_000)
        })
        .collect()
}

#[test]
fn a_batch_becomes_one_gzipped_post_with_the_key_as_a_secret_header() {
    let events = vec![
        TestEvent::json(
            json!({"log": "GET /health 200", "container_name": "/web", "level": "info"}),
        )
        .with_tag("web-firelens-abc")
        .with_time_ns(1_700_000_000_250_000_000),
        TestEvent::json(json!({"log": "boom", "level": "error"}))
            .with_tag("web-firelens-abc")
            .with_time_ns(1_700_000_001_000_000_000),
    ];
    let requests = encode(
        r#"{"site": "datadoghq.eu", "dd_service": "web", "dd_source": "nginx", "dd_tags": "env:prod",
            "dd_status_key": "level", "include_tag_key": true, "tag_key": "fluent_tag"}"#,
        &events,
    );
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        request.url,
        "https://http-intake.logs.datadoghq.eu/api/v2/logs"
    );
    assert!(request.gzip);
    assert_eq!(request.events, [0, 1]);
    assert!(
        request
            .headers
            .contains(&("content-type".into(), "application/json".into()))
    );
    assert!(
        request
            .headers
            .iter()
            .all(|(name, _)| !name.eq_ignore_ascii_case("dd-api-key"))
    );
    assert_eq!(request.secret_headers.len(), 1);
    assert_eq!(request.secret_headers[0].header, "DD-API-KEY");
    assert_eq!(request.secret_headers[0].secret, "api_key");
    assert_eq!(request.secret_headers[0].prefix, "");
    assert_eq!(
        body(request),
        [
            json!({"timestamp": 1_700_000_000_250u64, "fluent_tag": "web-firelens-abc", "ddsource": "nginx",
                   "service": "web", "message": "GET /health 200", "container_name": "/web",
                   "status": "info", "ddtags": "env:prod"}),
            json!({"timestamp": 1_700_000_001_000u64, "fluent_tag": "web-firelens-abc", "ddsource": "nginx",
                   "service": "web", "message": "boom", "status": "error", "ddtags": "env:prod"}),
        ]
    );
}

#[test]
fn url_overrides_the_site_and_compress_off_sends_plain_json() {
    let requests = encode(
        r#"{"url": "http://127.0.0.1:8126", "compress": "none", "header": {"X-Team": "logs"}}"#,
        &lines(1),
    );
    assert_eq!(requests[0].url, "http://127.0.0.1:8126/api/v2/logs");
    assert!(!requests[0].gzip);
    assert!(
        requests[0]
            .headers
            .contains(&("X-Team".into(), "logs".into()))
    );
}

#[test]
fn a_thousand_entries_per_request_at_most() {
    let requests = encode("{}", &lines(2500));
    let sizes: Vec<usize> = requests.iter().map(|r| r.events.len()).collect();
    assert_eq!(sizes, [1000, 1000, 500]);
    let carried: Vec<u32> = requests.iter().flat_map(|r| r.events.clone()).collect();
    assert_eq!(carried, (0..2500).collect::<Vec<u32>>());
    for request in &requests {
        let entries = body(request);
        assert_eq!(entries.len(), request.events.len());
        assert_eq!(entries[0]["message"], format!("line {}", request.events[0]));
    }
}

#[test]
fn five_megabytes_per_request_at_most() {
    let text = "x".repeat(400_000);
    let events: Vec<TestEvent> = (0..30)
        .map(|i| TestEvent::json(json!({"log": text, "i": i})))
        .collect();
    let requests = encode("{}", &events);
    assert_eq!(requests.len(), 3, "12 MB of entries: 12 + 12 + 6");
    for request in &requests {
        assert!(request.body.len() <= 5_000_000, "{}", request.body.len());
        assert_eq!(body(request).len(), request.events.len());
    }
    assert_eq!(requests.iter().map(|r| r.events.len()).sum::<usize>(), 30);
    let smaller = encode(
        r#"{"max_request_bytes": 1024, "max_entries_per_request": 3}"#,
        &lines(10),
    );
    assert!(
        smaller
            .iter()
            .all(|r| r.body.len() <= 1024 && r.events.len() <= 3)
    );
    assert_eq!(smaller.len(), 4);
}

#[test]
fn a_message_over_a_megabyte_is_cut_to_fit_one_entry() {
    testing::reset();
    let long = "é".repeat(1_200_000);
    let events = vec![
        TestEvent::json(json!({"log": long, "k": "v"})),
        TestEvent::json(json!({"log": "short"})),
    ];
    let requests = encode("{}", &events);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].events, [0, 1]);
    let entries = body(&requests[0]);
    let message = entries[0]["message"].as_str().unwrap();
    assert!(message.chars().all(|c| c == 'é'));
    let entry_len = serde_json::to_vec(&entries[0]).unwrap().len();
    assert!(entry_len <= 1_000_000, "{entry_len}");
    assert!(entry_len > 999_000, "cut no more than needed: {entry_len}");
    assert_eq!(entries[0]["k"], "v");
    assert_eq!(entries[1]["message"], "short");
    assert_eq!(testing::counter("entries_truncated"), 1);
}

#[test]
fn entries_that_fit_no_payload_and_malformed_events_are_left_out_and_counted() {
    testing::reset();
    let events = vec![
        TestEvent::json(json!({"log": "ok 1"})),
        TestEvent::json(json!({"log": 1, "blob": "y".repeat(3000)})),
        TestEvent::msgpack(vec![0xc1]),
        TestEvent::json(json!({"log": "ok 2"})),
    ];
    let requests = encode(r#"{"max_request_bytes": 2048}"#, &events);
    let carried: Vec<u32> = requests.iter().flat_map(|r| r.events.clone()).collect();
    assert_eq!(carried, [0, 3]);
    assert_eq!(testing::counter("entries_too_large"), 1);
    assert_eq!(testing::counter("events_malformed"), 1);
    let logs = testing::take_logs();
    assert!(
        logs.iter()
            .any(|(_, line)| line.contains("2 event(s) left out")
                && line.contains("event 1 encodes")),
        "{logs:?}"
    );
}

#[test]
fn an_empty_batch_sends_nothing() {
    assert!(encode("{}", &[]).is_empty());
}

#[test]
fn responses_are_classified_as_datadog_documents_them() {
    let datadog = output("{}");
    let answer = |status: u16, headers: &[(String, String)]| {
        datadog.on_response(&Response {
            id: 1,
            status,
            headers,
            body: b"{\"errors\":[\"x\"]}",
            transport_error: None,
        })
    };
    assert_eq!(answer(202, &[]), Delivery::Ok);
    assert!(matches!(answer(400, &[]), Delivery::FailPermanent(_)));
    assert!(matches!(answer(403, &[]), Delivery::FailPermanent(_)));
    assert_eq!(answer(413, &[]), Delivery::SplitAndRetry);
    assert_eq!(
        answer(429, &[("retry-after".into(), "1".into())]),
        Delivery::Retry(Some(1000))
    );
    assert_eq!(answer(500, &[]), Delivery::Retry(None));
    assert_eq!(answer(408, &[]), Delivery::Retry(None));
}
