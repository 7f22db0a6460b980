//! Well-behaved filters: outcomes applied, imports working, config checked before `init`.

use super::support::*;
use serde_json::json;
use wasm_router::ops::metrics::{Component, Metrics};
use wasm_router::pipeline::Filter;

#[test]
fn keep_all_passes_the_hosts_own_bytes_and_reports_through_its_imports() {
    let metrics = Metrics::new();
    let filter = load(
        &filter_config(wasm_router_test_artifacts::KEEP_ALL, json!({}), None),
        &metrics,
    );
    assert_eq!(filter.id(), "keep-all");
    let input = batch("app.web", &records(5));
    let bodies: Vec<_> = input.events.iter().map(|e| e.body.as_ptr()).collect();
    let out = filter.process(input.clone());
    assert_eq!(out, vec![input]);
    // Kept bodies are the very same buffers: nothing was copied back.
    assert_eq!(
        out[0]
            .events
            .iter()
            .map(|e| e.body.as_ptr())
            .collect::<Vec<_>>(),
        bodies
    );
    assert_eq!(metric(&metrics, "plugin_keep_all_events_total"), 5.0);
    assert_eq!(
        metric(
            &metrics,
            "wasm_plugin_events_total{plugin=\"keep-all\",outcome=\"kept\"}"
        ),
        5.0
    );
    assert_eq!(
        metric(&metrics, "wasm_plugin_calls_total{plugin=\"keep-all\"}"),
        1.0
    );
    assert_eq!(
        metrics.discarded(&Component::filter("keep-all"), "plugin_dropped"),
        0
    );
}
