//! Native throughput of the redact filter over ~200-byte FireLens-shaped records with every
//! detector on: one batch of 1,000 events, 1 in 10 holding something to mask.
//!
//! Run: `cargo bench -p wasm-router-plugin-redact`. Criterion reports events per second.
//! (The same plugin inside the router, as a component: `cargo bench -p wasm-router-plugin-bench`.)

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use redact::{Redactor, redact};
use std::hint::black_box;
use wasm_router_sdk::testing::{TestBatch, TestEvent};
use wasm_router_sdk::{Ctx, Outcome, PluginConfig};

/// `n` records like the ones FireLens sends, every tenth with an email, card or IP in it.
pub fn records(n: usize) -> Vec<TestEvent> {
    (0..n)
        .map(|i| {
            let log = match i % 30 {
                0 => format!("2024-05-01T10:00:{:02}.123Z INFO checkout user=jane.doe{i}@example.com total=12.50", i % 60),
                10 => format!("2024-05-01T10:00:{:02}.123Z WARN payment card 4111 1111 1111 1111 declined", i % 60),
                20 => format!("2024-05-01T10:00:{:02}.123Z INFO upstream 10.0.{}.{} responded 200", i % 60, i % 250, i % 200),
                _ => format!("2024-05-01T10:00:{:02}.123Z INFO GET /api/orders/{i} 200 12ms bytes=5120", i % 60),
            };
            TestEvent::json(serde_json::json!({
                "log": log,
                "container_id": "4f9d6c5e7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c",
                "container_name": "/ecs-web-1",
                "source": "stdout",
            }))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let events = records(1000);
    let batch = TestBatch::new(&events);
    let body_bytes: usize = events.iter().map(|e| e.body.len()).sum();
    eprintln!("average body: {} bytes", body_bytes / events.len());
    let redactor = Redactor::from_json("{}").unwrap();
    let mut group = c.benchmark_group("redact");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("all_detectors_1000_events", |b| {
        b.iter(|| {
            let mut ctx = Ctx::new();
            let mut changed = 0;
            for event in batch.view().events() {
                if !matches!(redact(&redactor, &event, &mut ctx), Ok(Outcome::Keep)) {
                    changed += 1;
                }
            }
            black_box(changed)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
