//! The newrelic output through the SDK's native harness: the detailed payload a batch becomes,
//! the key header, splitting at `max_records` and the payload limit, oversized logs, and the
//! classification of the Log API's answers.

use newrelic::NewRelic;
use serde_json::{Value, json};
use wasm_router_sdk::PluginConfig;
use wasm_router_sdk::output::{Delivery, Output, Request, Response};
use wasm_router_sdk::testing::{self, TestBatch, TestEvent};

fn output(config: &str) -> NewRelic {
    NewRelic::from_json(config).unwrap_or_else(|errors| panic!("{config}: {errors:?}"))
}

fn encode(config: &str, events: &[TestEvent]) -> Vec<Request> {
    output(config)
        .encode(&TestBatch::new(events).view())
        .unwrap()
}

fn payload(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

fn logs(request: &Request) -> Vec<Value> {
    payload(request)[0]["logs"].as_array().unwrap().clone()
}

fn lines(n: usize) -> Vec<TestEvent> {
    (0..n)
        .map(|i| TestEvent::json(json!({"log": format!("line {i}"), "n": i})))
        .collect()
}

#[test]
fn a_batch_becomes_the_detailed_payload_with_the_key_as_a_secret_header() {
    let events = vec![
        TestEvent::json(json!({"log": "GET / 200", "container_name": "/web"}))
            .with_tag("web-firelens-1")
            .with_time_ns(1_700_000_000_123_000_000),
        TestEvent::json(json!({"log": "boom", "level": "error"}))
            .with_tag("web-firelens-1")
            .with_time_ns(1_700_000_000_124_000_000),
    ];
    let requests = encode(
        r#"{"region": "EU", "common_attributes": {"service.name": "web"}, "tag_key": "fluent.tag"}"#,
        &events,
    );
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.url, "https://log-api.eu.newrelic.com/log/v1");
    assert!(request.gzip);
    assert_eq!(request.events, [0, 1]);
    assert!(
        request
            .headers
            .contains(&("content-type".into(), "application/json".into()))
    );
    assert_eq!(request.secret_headers.len(), 1);
    assert_eq!(request.secret_headers[0].header, "Api-Key");
    assert_eq!(request.secret_headers[0].secret, "api_key");
    assert_eq!(
        payload(request),
        json!([{
            "common": {"attributes": {
                "plugin.type": "wasm-router", "plugin.version": env!("CARGO_PKG_VERSION"),
                "service.name": "web", "fluent.tag": "web-firelens-1"}},
            "logs": [
                {"timestamp": 1_700_000_000_123u64, "message": "GET / 200", "attributes": {"container_name": "/web"}},
                {"timestamp": 1_700_000_000_124u64, "message": "boom", "attributes": {"level": "error"}}
            ]
        }])
    );
}

#[test]
fn license_key_and_base_uri_and_no_compression() {
    let requests = encode(
        r#"{"auth": "license_key", "base_uri": "http://127.0.0.1:4318", "compress": false}"#,
        &lines(1),
    );
    assert_eq!(requests[0].url, "http://127.0.0.1:4318/log/v1");
    assert!(!requests[0].gzip);
    assert_eq!(requests[0].secret_headers[0].header, "X-License-Key");
    assert_eq!(requests[0].secret_headers[0].secret, "license_key");
}

#[test]
fn max_records_splits_requests() {
    let requests = encode(r#"{"max_records": 400}"#, &lines(1000));
    let sizes: Vec<usize> = requests.iter().map(|r| r.events.len()).collect();
    assert_eq!(sizes, [400, 400, 200]);
    for request in &requests {
        let logs = logs(request);
        assert_eq!(logs.len(), request.events.len());
        assert_eq!(logs[0]["message"], format!("line {}", request.events[0]));
    }
    assert_eq!(
        encode("{}", &lines(3000)).len(),
        3,
        "1024 records by default"
    );
}

#[test]
fn a_payload_never_exceeds_new_relics_megabyte() {
    let text = "x".repeat(100_000);
    let events: Vec<TestEvent> = (0..25)
        .map(|i| TestEvent::json(json!({"log": text, "i": i})))
        .collect();
    let requests = encode("{}", &events);
    assert_eq!(requests.len(), 3, "2.5 MB of logs: 9 + 9 + 7");
    for request in &requests {
        assert!(request.body.len() <= 1_000_000, "{}", request.body.len());
        assert_eq!(logs(request).len(), request.events.len());
    }
    let carried: Vec<u32> = requests.iter().flat_map(|r| r.events.clone()).collect();
    assert_eq!(carried, (0..25).collect::<Vec<u32>>());
}

#[test]
fn a_message_over_the_payload_limit_is_cut_and_an_unfittable_log_left_out() {
    testing::reset();
    let events = vec![
        TestEvent::json(json!({"log": "z".repeat(1_500_000)})),
        TestEvent::json(json!({"log": "fine", "blob": "b".repeat(2_000_000)})),
        TestEvent::msgpack(vec![0x91, 0x01]),
        TestEvent::json(json!({"log": "last"})),
    ];
    let requests = encode("{}", &events);
    let carried: Vec<u32> = requests.iter().flat_map(|r| r.events.clone()).collect();
    assert_eq!(carried, [0, 3]);
    for request in &requests {
        assert!(request.body.len() <= 1_000_000);
    }
    let first = &logs(&requests[0])[0];
    let message = first["message"].as_str().unwrap();
    assert!(
        message.len() > 990_000 && message.len() < 1_000_000,
        "{}",
        message.len()
    );
    assert_eq!(testing::counter("messages_truncated"), 1);
    assert_eq!(testing::counter("logs_too_large"), 1);
    assert_eq!(testing::counter("events_malformed"), 1);
}

#[test]
fn responses_are_classified() {
    let newrelic = output(r#"{"auth": "license_key"}"#);
    let answer = |status: u16| {
        newrelic.on_response(&Response {
            id: 1,
            status,
            headers: &[],
            body: b"{}",
            transport_error: None,
        })
    };
    assert_eq!(answer(202), Delivery::Ok);
    assert!(matches!(answer(400), Delivery::FailPermanent(_)));
    assert!(matches!(answer(403), Delivery::FailPermanent(r) if r.contains("license_key")));
    assert_eq!(answer(413), Delivery::SplitAndRetry);
    assert_eq!(answer(429), Delivery::Retry(None));
    assert_eq!(answer(500), Delivery::Retry(None));
}
