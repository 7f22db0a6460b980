//! Well-behaved filters: outcomes applied, imports working, config checked before `init`.

use super::support::*;
use serde_json::json;
use wasm_router::ops::metrics::{Component, Metrics};
use wasm_router::pipeline::Filter;
use wasm_router::plugin::{FilterSettings, OnError};

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

#[test]
fn instances_are_recycled_after_max_calls_and_each_new_one_is_initialised() {
    let metrics = Metrics::new();
    let mut settings = FilterSettings::new(OnError::FailOpen);
    settings.limits.max_calls = 2;
    let filter = load_capturing(
        wasm_router_test_artifacts::KEEP_ALL,
        json!({}),
        settings,
        &metrics,
    );
    for _ in 0..5 {
        let input = batch("app", &records(2));
        assert_eq!(filter.process(input.clone()), vec![input]);
    }
    let inits = logged(&filter)
        .iter()
        .filter(|l| l.contains("initialised"))
        .count();
    assert_eq!(inits, 3, "the first instance and two replacements");
    assert_eq!(
        metric(
            &metrics,
            "wasm_plugin_recycles_total{plugin=\"keep-all\",reason=\"max_calls\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(&metrics, "wasm_plugin_calls_total{plugin=\"keep-all\"}"),
        5.0
    );
}

#[test]
fn two_threads_share_one_filter() {
    let metrics = Metrics::new();
    let filter = load(
        &filter_config(wasm_router_test_artifacts::DIGIT_MASK, json!({}), None),
        &metrics,
    );
    std::thread::scope(|s| {
        for t in 0..2 {
            let filter = &filter;
            s.spawn(move || {
                for i in 0..50 {
                    let out = filter.process(batch(
                        "app",
                        &[json!({"log": format!("thread {t} batch {i}")})],
                    ));
                    let masked = format!("thread * batch {}", "*".repeat(i.to_string().len()));
                    assert_eq!(json_records(&out[0]), [json!({ "log": masked })]);
                }
            });
        }
    });
    assert_eq!(
        metric(
            &metrics,
            "wasm_plugin_events_total{plugin=\"digit-mask\",outcome=\"replaced\"}"
        ),
        100.0
    );
}

#[test]
fn a_plugin_writing_to_stderr_works_from_any_kind_of_tokio_runtime() {
    // WASI's synchronous stdio enters tokio; the filter must keep that off the runtime's own
    // worker threads, whatever the flavour.
    for flavor in ["current_thread", "multi_thread"] {
        let runtime = match flavor {
            "current_thread" => tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            _ => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap(),
        };
        let metrics = Metrics::new();
        let filter = load_capturing(
            wasm_router_test_artifacts::TRAP,
            json!({}),
            FilterSettings::new(OnError::FailOpen),
            &metrics,
        );
        let input = batch("app", &records(1));
        let out = runtime.block_on(async {
            tokio::spawn(async move { filter.process(input) })
                .await
                .unwrap()
        });
        assert_eq!(out.len(), 1, "{flavor}");
        assert_eq!(
            metric(
                &metrics,
                "wasm_plugin_faults_total{plugin=\"trap\",reason=\"trap\"}"
            ),
            1.0,
            "{flavor}"
        );
    }
}

#[test]
fn an_instance_past_three_quarters_of_its_memory_cap_is_replaced_after_its_call() {
    let metrics = Metrics::new();
    let mut settings = FilterSettings::new(OnError::FailOpen);
    // keep-all holds about 1.1 MB of linear memory: under this cap, over three quarters of it.
    settings.limits.memory_bytes = 1_400_000;
    let filter = load_capturing(
        wasm_router_test_artifacts::KEEP_ALL,
        json!({}),
        settings,
        &metrics,
    );
    for _ in 0..3 {
        let input = batch("app", &records(2));
        assert_eq!(filter.process(input.clone()), vec![input]);
    }
    assert_eq!(
        metric(
            &metrics,
            "wasm_plugin_recycles_total{plugin=\"keep-all\",reason=\"memory\"}"
        ),
        3.0
    );
    assert!(
        !metrics
            .encode()
            .contains("wasm_plugin_faults_total{plugin=\"keep-all\""),
        "recycling is not a fault"
    );
}
