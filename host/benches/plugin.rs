//! The plugin boundary: what one `WasmFilter::process` call costs per batch and per event —
//! laying the batch out in columns, the call into the component, lifting the outcomes and
//! applying them — on FireLens-shaped 200-byte records, for batch sizes 1, 16, 128 and 1024.
//!
//! - `boundary/<plugin>/<batch size>`: keep-all, digit-mask, redact (all detectors) and
//!   parse-json; `boundary/no_filter/<n>` is the batch clone every iteration also pays;
//! - `engine/<setting>/<n>`: keep-all under the engine settings the runtime chose between
//!   (`concurrency_support` on/off, pooling allocator);
//! - `worker/<n>`: keep-all called from a tokio worker: inline when the plugin's recent speed
//!   says the call is short (`INLINE_CALL_BUDGET`), otherwise through `block_in_place`;
//! - `parallel/<threads>`: digit-mask, 128-event batches from one or two threads at once
//!   (the instance pool lets both run);
//! - `instantiate/<allocator>`: a fresh instance from the `InstancePre`, plus `init`.
//!
//! Run: `cargo bench -p wasm-router --bench plugin`. Criterion's "elem/s" is events per second.

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasm_router::event::{Batch, Event};
use wasm_router::ops::metrics::Metrics;
use wasm_router::pipeline::Filter;
use wasm_router::plugin::instance::PluginInstance;
use wasm_router::plugin::state::PluginContext;
use wasm_router::plugin::telemetry::PluginFamilies;
use wasm_router::plugin::{
    ArtifactCache, EngineOptions, FilterSettings, LoadedPlugin, OnError, PluginEngine,
    PluginLimits, WasmFilter,
};

const TAG: &[u8] = b"app-firelens-5f1c3b2e9a4d4c7b8e6f0a1b2c3d4e5f";
const BATCH_SIZES: [usize; 4] = [1, 16, 128, 1024];

fn str_value(out: &mut Vec<u8>, s: &str) {
    rmp::encode::write_str(out, s).unwrap();
}

/// A 200-byte record as Docker's fluentd driver sends it; every 8th line carries an e-mail
/// address and every 16th a card number, so that redaction has something to do.
fn firelens_record(i: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(200);
    rmp::encode::write_map_len(&mut out, 4).unwrap();
    str_value(&mut out, "container_id");
    str_value(&mut out, &"5f1c3b2e9a4d4c7b".repeat(4));
    str_value(&mut out, "container_name");
    str_value(&mut out, "/ecs-app-1");
    str_value(&mut out, "source");
    str_value(&mut out, "stdout");
    str_value(&mut out, "log");
    let extra = match i % 16 {
        0 => " card=4111111111111111",
        8 => " user=jane.doe@example.com",
        _ => "",
    };
    let mut line = format!(
        "2026-11-21T04:46:02.{:03}Z INFO GET /api/v1/orders/{i} status=200 client=10.0.{}.{}{extra}",
        i % 1000,
        i % 250,
        i % 200
    );
    let room = 200 - out.len() - 2;
    line.truncate(room);
    line.extend(std::iter::repeat_n('.', room - line.len()));
    out.extend_from_slice(&[0xd9, line.len() as u8]);
    out.extend_from_slice(line.as_bytes());
    assert_eq!(out.len(), 200);
    out
}

/// A JSON log line of about the same size, for parse-json.
fn json_record(i: usize) -> Vec<u8> {
    let log = json!({"level": "info", "msg": "GET /api/v1/orders", "order": i, "status": 200, "duration_ms": i % 900, "client": format!("10.0.{}.{}", i % 250, i % 200)}).to_string();
    rmp_serde::to_vec_named(
        &json!({"container_id": "5f1c3b2e9a4d4c7b", "source": "stdout", "log": log}),
    )
    .unwrap()
}

fn batch(n: usize, record: fn(usize) -> Vec<u8>) -> Batch {
    let events = (0..n)
        .map(|i| Event {
            time_ns: 1_700_000_000_000_000_000 + i as u64,
            body: Bytes::from(record(i)),
        })
        .collect();
    Batch::new(Bytes::from_static(TAG), events)
}

fn engine(options: EngineOptions) -> Arc<PluginEngine> {
    Arc::new(PluginEngine::new(options).unwrap())
}

fn cache() -> ArtifactCache {
    ArtifactCache::in_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tmp/plugin-cache"))
}

fn filter_on(engine: &Arc<PluginEngine>, path: &str, config: serde_json::Value) -> WasmFilter {
    let plugin =
        Arc::new(LoadedPlugin::load(engine.clone(), Path::new(path), None, &cache()).unwrap());
    let id = plugin.info().name.clone();
    WasmFilter::new(
        plugin,
        &id,
        &config,
        FilterSettings::new(OnError::FailOpen),
        Metrics::new(),
        false,
    )
    .unwrap()
}

/// A benchmarked plugin: name, component path, config, and the record it is fed.
type BenchPlugin = (
    &'static str,
    &'static str,
    serde_json::Value,
    fn(usize) -> Vec<u8>,
);

fn boundary(c: &mut Criterion) {
    let production = PluginEngine::shared().unwrap();
    let plugins: [BenchPlugin; 4] = [
        (
            "keep-all",
            wasm_router_test_artifacts::KEEP_ALL,
            json!({}),
            firelens_record,
        ),
        (
            "digit-mask",
            wasm_router_test_artifacts::DIGIT_MASK,
            json!({}),
            firelens_record,
        ),
        (
            "redact",
            wasm_router_test_artifacts::REDACT,
            json!({}),
            firelens_record,
        ),
        (
            "parse-json",
            wasm_router_test_artifacts::PARSE_JSON,
            json!({}),
            json_record,
        ),
    ];
    let mut group = c.benchmark_group("boundary");
    for n in BATCH_SIZES {
        let input = batch(n, firelens_record);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("no_filter", n), &input, |b, input| {
            b.iter(|| black_box(input.clone()))
        });
    }
    for (name, path, config, record) in plugins {
        let filter = filter_on(&production, path, config);
        for n in BATCH_SIZES {
            let input = batch(n, record);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(name, n), &input, |b, input| {
                b.iter(|| filter.process(input.clone()))
            });
        }
    }
    group.finish();
}

fn engine_settings(c: &mut Criterion) {
    let settings = [
        // `concurrency_on` needs wasmtime's component-model-async feature, which the router does
        // not compile in (its plugin worlds are synchronous).
        ("concurrency_off", EngineOptions::default()),
        (
            "pooling",
            EngineOptions {
                pooling_instances: Some(64),
                ..EngineOptions::default()
            },
        ),
    ];
    let mut group = c.benchmark_group("engine");
    for (name, options) in settings {
        let filter = filter_on(
            &engine(options),
            wasm_router_test_artifacts::KEEP_ALL,
            json!({}),
        );
        for n in [1, 1024] {
            let input = batch(n, firelens_record);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(name, n), &input, |b, input| {
                b.iter(|| filter.process(input.clone()))
            });
        }
    }
    group.finish();
}

fn tokio_worker(c: &mut Criterion) {
    let filter = Arc::new(filter_on(
        &PluginEngine::shared().unwrap(),
        wasm_router_test_artifacts::KEEP_ALL,
        json!({}),
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("worker");
    for n in [1, 1024] {
        let input = batch(n, firelens_record);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("tokio_worker", n), &input, |b, input| {
            b.iter_custom(|iters| {
                let (filter, input) = (filter.clone(), input.clone());
                runtime.block_on(async move {
                    tokio::spawn(async move {
                        let start = Instant::now();
                        for _ in 0..iters {
                            black_box(filter.process(input.clone()));
                        }
                        start.elapsed()
                    })
                    .await
                    .unwrap()
                })
            })
        });
    }
    group.finish();
}

fn parallel(c: &mut Criterion) {
    let filter = Arc::new(filter_on(
        &PluginEngine::shared().unwrap(),
        wasm_router_test_artifacts::DIGIT_MASK,
        json!({}),
    ));
    let input = batch(128, firelens_record);
    let mut group = c.benchmark_group("parallel");
    for threads in [1u64, 2] {
        group.throughput(Throughput::Elements(128 * threads));
        group.bench_function(BenchmarkId::new("digit-mask_128", threads), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            for _ in 0..iters {
                                black_box(filter.process(input.clone()));
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    group.finish();
}

fn instantiate(c: &mut Criterion) {
    let mut group = c.benchmark_group("instantiate");
    for (name, options) in [
        ("on_demand", EngineOptions::default()),
        (
            "pooling",
            EngineOptions {
                pooling_instances: Some(64),
                ..EngineOptions::default()
            },
        ),
    ] {
        let engine = engine(options);
        let plugin = LoadedPlugin::load(
            engine,
            Path::new(wasm_router_test_artifacts::KEEP_ALL),
            None,
            &cache(),
        )
        .unwrap();
        let metrics = Metrics::new();
        let context = Arc::new(PluginContext::new(
            "keep-all",
            &metrics,
            PluginFamilies::of(&metrics),
            true,
        ));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut instance =
                    PluginInstance::new(&plugin, context.clone(), PluginLimits::filter_defaults())
                        .unwrap();
                instance.init("{}").unwrap().unwrap();
                context.log.take_captured();
                instance
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = boundary, engine_settings, tokio_worker, parallel, instantiate
}
criterion_main!(benches);
