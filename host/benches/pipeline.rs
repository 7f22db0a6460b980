//! The per-batch and per-event work between the decoder and an output, on FireLens-shaped
//! records (container_id, container_name, source, log; 200 bytes each, as Docker sends them):
//!
//! - `tag_match`: Fluent Bit `Match` / `Match_Regex` against a FireLens tag (done once per batch
//!   per filter and output);
//! - `msgpack_to_json`: one record rendered as JSON (what the stdout, CloudWatch and Firehose
//!   outputs do per event);
//! - `stdout_render`: a batch of 1,000 events rendered as the `stdout` output's JSON lines;
//! - `cloudwatch_batcher`: what the `cloudwatch_logs` output does per batch before the API
//!   call: each event rendered as its JSON message, then sorted and split into PutLogEvents
//!   batches within the API limits (the SDK's request serialization is not included).
//!
//! Run: `cargo bench -p wasm-router --bench pipeline`. Criterion reports "elem/s": matches,
//! records or events per second. `scripts/bench` covers the end-to-end figures.

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use wasm_router::event::{Batch, Event, json};
use wasm_router::output::aws::record::RecordRenderer;
use wasm_router::output::cloudwatch::batcher::{LogEvent, split_stream};
use wasm_router::pipeline::TagMatcher;

const TAG: &[u8] = b"app-firelens-5f1c3b2e9a4d4c7b8e6f0a1b2c3d4e5f";

fn str_value(out: &mut Vec<u8>, s: &str) {
    rmp::encode::write_str(out, s).unwrap();
}

/// A 200-byte record the way Docker's fluentd driver sends it.
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
    let room = 200 - out.len() - 2;
    let mut line = format!(
        "04:46:02.{:03}Z INFO GET /api/v1/orders/{i} 200 {}ms client=10.0.{}.{}",
        i % 1000,
        i % 900,
        i % 250,
        i % 200
    );
    line.truncate(room);
    line.extend(std::iter::repeat_n('.', room - line.len()));
    out.extend_from_slice(&[0xd9, line.len() as u8]);
    out.extend_from_slice(line.as_bytes());
    assert_eq!(out.len(), 200);
    out
}

fn tag_match(c: &mut Criterion) {
    let mut group = c.benchmark_group("tag_match");
    group.throughput(Throughput::Elements(1));
    let matchers = [
        ("any", TagMatcher::wildcard("*")),
        (
            "exact",
            TagMatcher::wildcard("app-firelens-5f1c3b2e9a4d4c7b8e6f0a1b2c3d4e5f"),
        ),
        ("prefix_wildcard", TagMatcher::wildcard("app-firelens*")),
        ("infix_wildcards", TagMatcher::wildcard("*-firelens-*")),
        ("no_match_wildcard", TagMatcher::wildcard("web-firelens*")),
        (
            "regex",
            TagMatcher::regex(r"app-firelens-[0-9a-f]{32}").unwrap(),
        ),
    ];
    for (name, matcher) in &matchers {
        group.bench_function(*name, |b| b.iter(|| matcher.matches(black_box(TAG))));
    }
    group.finish();
}

fn msgpack_to_json(c: &mut Criterion) {
    let records: Vec<Vec<u8>> = (0..1000).map(firelens_record).collect();
    let mut group = c.benchmark_group("msgpack_to_json");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("firelens_200B", |b| {
        let mut out = String::with_capacity(512);
        b.iter(|| {
            for r in &records {
                out.clear();
                json::write_json(black_box(r), &mut out).unwrap();
            }
            out.len()
        })
    });
    group.finish();
}

fn stdout_render(c: &mut Criterion) {
    let events = (0..1000)
        .map(|i| Event {
            time_ns: 1_700_000_000_000_000_000 + i as u64,
            body: Bytes::from(firelens_record(i)),
        })
        .collect();
    let batch = Batch::new(Bytes::from_static(TAG), events);
    let mut group = c.benchmark_group("stdout_render");
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("batch_1000", |b| {
        let mut out = String::with_capacity(512 * 1024);
        b.iter(|| {
            out.clear();
            wasm_router::output::stdout::render_batch(black_box(&batch), &mut out);
            out.len()
        })
    });
    group.finish();
}

fn firelens_batch(n: usize) -> Batch {
    let events = (0..n)
        .map(|i| Event {
            time_ns: 1_700_000_000_000_000_000 + i as u64 * 1_000_000,
            body: Bytes::from(firelens_record(i)),
        })
        .collect();
    Batch::new(Bytes::from_static(TAG), events)
}

fn cloudwatch_batcher(c: &mut Criterion) {
    let mut group = c.benchmark_group("cloudwatch_batcher");
    let batch = firelens_batch(1000);
    let renderer = RecordRenderer::default();
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("render_and_split_1000", |b| {
        b.iter(|| {
            let mut events = Vec::with_capacity(batch.len());
            for (index, event) in batch.events.iter().enumerate() {
                let mut message = String::with_capacity(event.body.len() + 32);
                renderer.render(event, &mut message).unwrap();
                events.push(LogEvent {
                    index,
                    timestamp_ms: (event.time_ns / 1_000_000) as i64,
                    message,
                });
            }
            split_stream("/ecs/web", "app-firelens", events).len()
        })
    });
    let rendered: Vec<LogEvent> = (0..10_000)
        .map(|i| {
            let mut message = String::new();
            json::write_json(&firelens_record(i), &mut message).unwrap();
            // Out of order by up to 100 ms, as events from several connections arrive.
            LogEvent {
                index: i,
                timestamp_ms: 1_700_000_000_000 + ((i * 7919) % 100) as i64 + i as i64,
                message,
            }
        })
        .collect();
    group.throughput(Throughput::Elements(rendered.len() as u64));
    group.bench_function("split_10000", |b| {
        b.iter_batched(
            || rendered.clone(),
            |events| split_stream("/ecs/web", "app-firelens", events).len(),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = tag_match, msgpack_to_json, stdout_render, cloudwatch_batcher }
criterion_main!(benches);
