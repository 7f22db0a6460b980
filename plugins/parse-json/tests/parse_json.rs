//! The parse-json filter through the SDK's native harness.

use parse_json::parse_json;
use serde_json::json;
use wasm_router_sdk::Outcome;
use wasm_router_sdk::testing::{self, TestEvent};

fn run(config: &str, events: &[TestEvent]) -> testing::FilterRun {
    testing::run_filter(parse_json, config, events).unwrap()
}

#[test]
fn merges_the_object_and_removes_the_field_like_firelens() {
    let event = TestEvent::json(json!({
        "log": r#"{"level":"error","msg":"boom","source":"app","nested":{"k":[1,2]}}"#,
        "source": "stderr",
        "container_name": "/web"
    }));
    let out = run("{}", &[event]);
    assert_eq!(
        out.records(),
        [
            json!({"source": "app", "container_name": "/web", "level": "error", "msg": "boom", "nested": {"k": [1, 2]}})
        ]
    );
}

#[test]
fn keeps_the_parsed_key_order() {
    let event = TestEvent::json(json!({"log": r#"{"z":1,"a":2,"m":3}"#, "b": 0}));
    let out = run("{}", &[event]);
    assert_eq!(
        out.events()[0].event().to_json().unwrap(),
        r#"{"b":0,"z":1,"a":2,"m":3}"#
    );
}

#[test]
fn target_and_keep_original() {
    let event = TestEvent::json(json!({"message": "{\"user\": \"u1\", \"ok\": true}", "n": 1}));
    let out = run(
        r#"{"field": "message", "target": "app.data", "keep_original": true}"#,
        &[event],
    );
    assert_eq!(
        out.records(),
        [
            json!({"message": "{\"user\": \"u1\", \"ok\": true}", "n": 1, "app": {"data": {"user": "u1", "ok": true}}})
        ]
    );
}

#[test]
fn nested_fields_and_keys_with_dots() {
    let event = TestEvent::json(json!({"k8s": {"app.io/raw": "{\"a\":1}"}}));
    let out = run(r#"{"field": ["k8s", "app.io/raw"]}"#, &[event]);
    assert_eq!(out.records(), [json!({"k8s": {}, "a": 1})]);
}

#[test]
fn values_that_are_not_json_objects_are_kept_and_counted() {
    testing::reset();
    let events = [
        TestEvent::json(json!({"log": "plain text line"})),
        TestEvent::json(json!({"log": "[1, 2, 3]"})),
        TestEvent::json(json!({"log": "{\"broken\": "})),
        TestEvent::json(json!({"log": "{\"a\": 1} trailing"})),
        TestEvent::json(json!({"log": 42})),
        TestEvent::json(json!({"other": "{}"})),
        TestEvent::json(json!({"log": "  {\"ok\": 1}\n"})),
    ];
    let out = run("{}", &events);
    assert_eq!(
        out.outcomes()[..6],
        [
            Outcome::Keep,
            Outcome::Keep,
            Outcome::Keep,
            Outcome::Keep,
            Outcome::Keep,
            Outcome::Keep
        ]
    );
    assert!(matches!(out.outcomes()[6], Outcome::Replace(_)));
    assert_eq!(out.records()[6], json!({"ok": 1}));
    assert_eq!(testing::counter("not_json"), 6);
    assert_eq!(testing::counter("parsed"), 1);
}

#[test]
fn non_utf8_json_is_not_json() {
    let mut body = vec![0x81];
    wasm_router_sdk::msgpack::write_str(&mut body, b"log");
    wasm_router_sdk::msgpack::write_str(&mut body, b"{\"a\": \"\xff\"}");
    let out = run("{}", &[TestEvent::msgpack(body)]);
    assert_eq!(out.outcomes(), [Outcome::Keep]);
}

#[test]
fn config_errors() {
    for (config, path) in [
        (r#"{"field": ""}"#, "/field"),
        (r#"{"target": ["a", ""]}"#, "/target"),
        (r#"{"fields": "x"}"#, "/fields"),
    ] {
        let errors = testing::run_filter(parse_json, config, &[]).unwrap_err();
        assert!(
            errors.iter().any(|e| e.path == path),
            "{config}: {errors:?}"
        );
    }
}
