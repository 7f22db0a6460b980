//! Poison-event isolation: a call that traps because of one event is narrowed down by calling
//! halves of its events alone, so `on_error` applies to the poisoned event only and the others'
//! outcomes pass — in the pipeline and in `wasm-router test`, which names the event.

use super::cli::{run, stdout, write};
use super::support::*;
use serde_json::{Value, json};
use std::sync::Arc;
use wasm_router::ops::metrics::{Component, Metrics};
use wasm_router::pipeline::Filter;
use wasm_router::plugin::{FilterSettings, OnError, WasmFilter};

/// Index (from 0) of the poisoned event among [`EVENTS`].
const POISONED: usize = 700;
/// Events in the batch: one full call.
const EVENTS: usize = 1024;

/// `records(EVENTS)` with the one at [`POISONED`] marked `"poison": how` (`panic`, `refuse`).
fn poisoned_records(how: &str) -> Vec<Value> {
    let mut records = records(EVENTS);
    records[POISONED]["poison"] = json!(how);
    records
}

/// The poison guest under `on_error`, with fresh metrics.
fn poison_filter(on_error: OnError) -> (WasmFilter, Arc<Metrics>) {
    let metrics = Metrics::new();
    let filter = load_capturing(
        wasm_router_test_artifacts::POISON,
        json!({}),
        FilterSettings::new(on_error),
        &metrics,
    );
    (filter, metrics)
}

/// `wasm_plugin_<name>_total` of the poison guest.
fn counter(metrics: &Metrics, name: &str) -> f64 {
    metric(
        metrics,
        &format!("wasm_plugin_{name}_total{{plugin=\"poison\"}}"),
    )
}

#[test]
fn one_poisoned_event_in_1024_is_dropped_alone_and_1023_pass() {
    let (filter, metrics) = poison_filter(OnError::FailClosed);
    let records = poisoned_records("panic");
    let out = filter.process(batch("app", &records));
    assert_eq!(out.len(), 1);
    let mut want = records.clone();
    want.remove(POISONED);
    assert_eq!(json_records(&out[0]), want, "the others pass, in order");
    assert_eq!(
        metrics.discarded(&Component::filter("poison"), "plugin_fault_trap"),
        1
    );
    assert_eq!(counter(&metrics, "isolated_events"), 1.0);
    // Two calls per halving: 2·log2(1024).
    assert_eq!(counter(&metrics, "split_calls"), 20.0);
    assert_eq!(counter(&metrics, "calls"), 21.0);
    assert_eq!(
        metric(
            &metrics,
            "wasm_plugin_events_total{plugin=\"poison\",outcome=\"in\"}"
        ),
        EVENTS as f64,
        "split calls do not count their events in again"
    );
    assert_eq!(
        metric(
            &metrics,
            "wasm_plugin_events_total{plugin=\"poison\",outcome=\"kept\"}"
        ),
        (EVENTS - 1) as f64
    );
    // The breaker counted one faulting event, not 11 faulted calls.
    assert_eq!(
        metric(
            &metrics,
            "wasm_plugin_faults_total{plugin=\"poison\",reason=\"trap\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(&metrics, "wasm_plugin_circuit_open{plugin=\"poison\"}"),
        0.0
    );
}

#[test]
fn a_batch_refused_because_of_one_event_is_narrowed_down_to_that_event() {
    let (filter, metrics) = poison_filter(OnError::FailClosed);
    let records = poisoned_records("refuse");
    let out = filter.process(batch("app", &records));
    let mut want = records.clone();
    want.remove(POISONED);
    assert_eq!(json_records(&out[0]), want);
    assert_eq!(
        metrics.discarded(&Component::filter("poison"), "plugin_event_error"),
        1,
        "only the refusing event gets on_error"
    );
    assert_eq!(counter(&metrics, "isolated_events"), 1.0);
    assert_eq!(counter(&metrics, "split_calls"), 20.0);
    assert_eq!(
        metric(
            &metrics,
            "wasm_plugin_events_total{plugin=\"poison\",outcome=\"errors\"}"
        ),
        1.0
    );
}

#[test]
fn a_refusal_both_halves_repeat_stands_after_two_split_calls() {
    let (filter, metrics) = poison_filter(OnError::FailClosed);
    let mut refusing = records(EVENTS);
    for r in &mut refusing {
        r["poison"] = json!("refuse");
    }
    assert!(filter.process(batch("app", &refusing)).is_empty());
    assert_eq!(
        metrics.discarded(&Component::filter("poison"), "plugin_event_error"),
        EVENTS as u64
    );
    assert_eq!(counter(&metrics, "split_calls"), 2.0);
    assert_eq!(counter(&metrics, "isolated_events"), 0.0);
}

#[test]
fn with_fail_open_the_poisoned_event_passes_unfiltered_and_the_next_batch_is_called() {
    let (filter, metrics) = poison_filter(OnError::FailOpen);
    let poisoned = poisoned_records("panic");
    let out = filter.process(batch("app", &poisoned));
    assert_eq!(json_records(&out[0]), poisoned);
    assert_eq!(
        metric(
            &metrics,
            "wasm_plugin_events_total{plugin=\"poison\",outcome=\"passed_unfiltered\"}"
        ),
        1.0
    );
    let clean = batch("app", &records(5));
    assert_eq!(filter.process(clean.clone()), vec![clean]);
}

#[test]
fn test_names_the_poisoned_event_and_the_others_match_the_expected_output() {
    let dir = tempfile::tempdir().unwrap();
    let lines = |records: &[Value]| {
        records
            .iter()
            .map(|r| r.to_string() + "\n")
            .collect::<String>()
    };
    let records = poisoned_records("panic");
    let input = write(dir.path(), "in.jsonl", &lines(&records));
    let mut kept = records.clone();
    kept.remove(POISONED);
    let expected = write(dir.path(), "expected.jsonl", &lines(&kept));
    let out = run(&[
        "test",
        wasm_router_test_artifacts::POISON,
        "--input",
        &input,
        "--expect",
        &expected,
        "--on-error",
        "fail_closed",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "a fault fails the run");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = report["events"].as_array().unwrap();
    let faulted: Vec<u64> = events
        .iter()
        .filter(|e| e["outcome"] == "fault")
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(faulted, [POISONED as u64]);
    assert!(
        events[POISONED]["message"]
            .as_str()
            .unwrap()
            .contains("the plugin trapped"),
        "{}",
        events[POISONED]
    );
    let logs = report["logs"].to_string();
    assert!(
        logs.contains("marked poison"),
        "the panic is in the log: {logs}"
    );
    assert_eq!(report["expect"]["matched"], true, "{}", report["expect"]);

    let out = run(&[
        "test",
        wasm_router_test_artifacts::POISON,
        "--input",
        &input,
        "--on-error",
        "fail_closed",
    ]);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("event {} [fault]", POISONED + 1)),
        "{text}"
    );
}
