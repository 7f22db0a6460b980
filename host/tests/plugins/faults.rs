//! Misbehaving guests: each fault discards the instance, applies the plugin's `on_error`
//! policy, is counted, and leaves the router — later batches, and the other plugins of the
//! pipeline — working.

use super::support::*;
use bytes::Bytes;
use serde_json::json;
use std::sync::Arc;
use wasm_router::config::ByteSize;
use wasm_router::ops::metrics::{Component, Metrics};
use wasm_router::pipeline::{Filter, FilterStage, Pipeline, TagMatcher};
use wasm_router::plugin::{FilterSettings, OnError, WasmFilter};

/// The misbehaving guests, the fault kind each must be classified as, and its plugin id.
const GUESTS: &[(&str, &str, &str)] = &[
    (
        wasm_router_test_artifacts::INFINITE_LOOP,
        "deadline",
        "infinite-loop",
    ),
    (
        wasm_router_test_artifacts::MEMORY_BOMB,
        "memory",
        "memory-bomb",
    ),
    (wasm_router_test_artifacts::TRAP, "trap", "trap"),
    (
        wasm_router_test_artifacts::WRONG_LENGTH,
        "wrong_length",
        "wrong-length",
    ),
    (
        wasm_router_test_artifacts::BAD_MSGPACK,
        "invalid_body",
        "bad-msgpack",
    ),
    (
        wasm_router_test_artifacts::EXPAND_BOMB,
        "expansion",
        "expand-bomb",
    ),
];

/// The policy, with limits that make each guest's fault the one under test: the bombs get a
/// deadline long enough to reach their cap even in a debug build, the memory bomb a small cap.
fn settings(on_error: OnError, guest: &str) -> FilterSettings {
    let mut s = FilterSettings::new(on_error);
    if guest.ends_with("-bomb") {
        s.limits.deadline = std::time::Duration::from_secs(10);
    }
    if guest == "memory-bomb" {
        s.limits.memory_bytes = 16 << 20;
    }
    s
}

/// A pipeline: the misbehaving plugin on `bad.*`, then keep-all on every tag.
fn pipeline(bad: WasmFilter, metrics: &Arc<Metrics>) -> Pipeline {
    let keep_all = load(
        &filter_config(wasm_router_test_artifacts::KEEP_ALL, json!({}), None),
        metrics,
    );
    let stage = |pattern: &str, filter: WasmFilter| FilterStage {
        matcher: TagMatcher::wildcard(pattern),
        component: Component::filter(filter.id()),
        filter: Arc::new(filter),
    };
    Pipeline::new(
        vec![stage("bad.*", bad), stage("*", keep_all)],
        vec![],
        metrics.clone(),
    )
}

#[test]
fn every_fault_fails_open_by_default_and_the_pipeline_keeps_working() {
    for (path, kind, id) in GUESTS {
        let metrics = Metrics::new();
        let bad = load_capturing(path, json!({}), settings(OnError::FailOpen, id), &metrics);
        let pipeline = pipeline(bad, &metrics);
        for round in 0..2 {
            let input = batch("bad.app", &records(3));
            assert_eq!(
                pipeline.filter(input.clone()),
                vec![input],
                "{id} round {round}: passed on unmodified"
            );
            let good = batch("good.app", &records(4));
            assert_eq!(
                pipeline.filter(good.clone()),
                vec![good],
                "{id} round {round}: other tags unaffected"
            );
        }
        // A trap or the memory cap is narrowed down to the events that fault alone (here
        // every event: 3 per batch); the other faults count once per call.
        let expected = if ["trap", "memory"].contains(kind) {
            6.0
        } else {
            2.0
        };
        let faults = format!("wasm_plugin_faults_total{{plugin=\"{id}\",reason=\"{kind}\"}}");
        assert_eq!(
            metric(&metrics, &faults),
            expected,
            "{id}: a fresh instance faults again on the second batch"
        );
        let errors = format!(
            "component_errors_total{{component_kind=\"filter\",component_id=\"{id}\",reason=\"plugin_fault_{kind}\"}}"
        );
        assert_eq!(metric(&metrics, &errors), expected, "{id}");
        let passed =
            format!("wasm_plugin_events_total{{plugin=\"{id}\",outcome=\"passed_unfiltered\"}}");
        assert_eq!(metric(&metrics, &passed), 6.0, "{id}");
        // keep-all saw every batch, the bad ones after they were passed on.
        assert_eq!(
            metric(
                &metrics,
                "wasm_plugin_events_total{plugin=\"keep-all\",outcome=\"kept\"}"
            ),
            14.0,
            "{id}"
        );
        assert_eq!(
            metrics.discarded_total(),
            0,
            "{id}: fail_open drops nothing"
        );
    }
}

#[test]
fn fail_closed_and_dead_letter_drop_the_batch_under_a_named_reason() {
    for (path, kind, id) in GUESTS {
        let metrics = Metrics::new();
        let filter = load_capturing(path, json!({}), settings(OnError::FailClosed, id), &metrics);
        assert!(
            filter.process(batch("bad.app", &records(3))).is_empty(),
            "{id}"
        );
        assert_eq!(
            metrics.discarded(&Component::filter(*id), &format!("plugin_fault_{kind}")),
            3,
            "{id}"
        );

        let metrics = Metrics::new();
        let filter = load_capturing(path, json!({}), settings(OnError::DeadLetter, id), &metrics);
        assert!(
            filter.process(batch("bad.app", &records(2))).is_empty(),
            "{id}"
        );
        assert_eq!(
            metrics.discarded(&Component::filter(*id), "dead_letter"),
            2,
            "{id}"
        );
    }
}

#[test]
fn a_trap_reaches_the_plugin_log_with_the_panic_message() {
    let metrics = Metrics::new();
    let filter = load_capturing(
        wasm_router_test_artifacts::TRAP,
        json!({}),
        settings(OnError::FailOpen, "trap"),
        &metrics,
    );
    filter.process(batch("bad.app", &records(1)));
    let lines = logged(&filter);
    assert!(lines.iter().any(|l| l.contains("panicked")), "{lines:?}");
}

#[test]
fn repeated_faults_open_the_circuit_and_the_plugin_is_no_longer_called() {
    let metrics = Metrics::new();
    let filter = load_capturing(
        wasm_router_test_artifacts::TRAP,
        json!({}),
        settings(OnError::FailClosed, "trap"),
        &metrics,
    );
    for _ in 0..10 {
        assert!(filter.process(batch("bad.app", &records(1))).is_empty());
    }
    // Six faults within a minute open the circuit; the next four batches are not sent in.
    assert_eq!(
        metric(&metrics, "wasm_plugin_calls_total{plugin=\"trap\"}"),
        6.0
    );
    assert_eq!(
        metric(&metrics, "wasm_plugin_circuit_open{plugin=\"trap\"}"),
        1.0
    );
    assert_eq!(
        metrics.discarded(&Component::filter("trap"), "plugin_fault_trap"),
        6
    );
    assert_eq!(
        metrics.discarded(&Component::filter("trap"), "plugin_circuit_open"),
        4
    );
}

#[test]
fn the_memory_cap_is_the_configured_one() {
    let metrics = Metrics::new();
    let mut config = filter_config(
        wasm_router_test_artifacts::MEMORY_BOMB,
        json!({}),
        Some("fail_closed"),
    );
    config.limits.memory = Some(ByteSize(8 << 20));
    config.limits.deadline = Some(wasm_router::config::DurationStr::from_secs(10));
    let filter = load(&config, &metrics);
    assert!(filter.process(batch("x", &records(1))).is_empty());
    let peak = metric(
        &metrics,
        "wasm_plugin_peak_memory_bytes{plugin=\"memory-bomb\"}",
    );
    assert!(
        peak <= (8 << 20) as f64 && peak > (4 << 20) as f64,
        "{peak}"
    );
    assert_eq!(
        metrics.discarded(&Component::filter("memory-bomb"), "plugin_fault_memory"),
        1
    );
}

#[test]
fn init_errors_name_the_plugin_file_and_the_config_keys() {
    let config = filter_config(
        wasm_router_test_artifacts::INIT_FAILS,
        json!({"fields": [1]}),
        None,
    );
    let err = wasm_router::plugin::load_filter(&config, None, Some(&cache_dir()), Metrics::new())
        .err()
        .expect("init fails");
    let message = err.to_string();
    assert!(
        message.contains(wasm_router_test_artifacts::INIT_FAILS),
        "{message}"
    );
    assert!(message.contains("config/fields/0"), "{message}");
    assert!(message.contains("fix the `config` table"), "{message}");
}

#[test]
fn a_batch_of_invalid_utf8_tags_and_empty_batches_pass_through() {
    let metrics = Metrics::new();
    let filter = load(
        &filter_config(wasm_router_test_artifacts::KEEP_ALL, json!({}), None),
        &metrics,
    );
    let mut input = batch("x", &records(2));
    input.tag = Bytes::from_static(b"app.\xff");
    assert_eq!(filter.process(input.clone()), vec![input.clone()]);
    input.events.clear();
    assert_eq!(filter.process(input.clone()), vec![input]);
}
