//! A WASM output's delivery of one batch, end to end on loopback: `WasmOutput::deliver` with
//! the `json-output` test plugin — `encode` (msgpack → one JSON array), gzip when asked, one
//! HTTP/1.1 POST over a pooled connection to an in-process axum intake that reads the body and
//! answers 202, and `on-response` — for batches of 16, 128 and 1024 FireLens-shaped 200-byte
//! records.
//!
//! - `deliver/plain/<n>` and `deliver/gzip/<n>`.
//!
//! Run: `cargo bench -p wasm-router --bench wasm_output`. Criterion's "elem/s" is events per
//! second; the intake shares the two cores with the router side.

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wasm_router::event::{Batch, Event};
use wasm_router::ops::metrics::{Component, Metrics};
use wasm_router::output::wasm::{WasmOutput, WasmOutputConfig};
use wasm_router::output::{DeliveryProgress, Output};

const TAG: &[u8] = b"app-firelens-5f1c3b2e9a4d4c7b8e6f0a1b2c3d4e5f";
const BATCH_SIZES: [usize; 3] = [16, 128, 1024];

/// A 200-byte record as Docker's fluentd driver sends it.
fn record(i: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(200);
    rmp::encode::write_map_len(&mut out, 4).unwrap();
    for (k, v) in [
        ("container_id", "5f1c3b2e9a4d4c7b".repeat(4)),
        ("container_name", "/ecs-app-1".to_string()),
        ("source", "stdout".to_string()),
    ] {
        rmp::encode::write_str(&mut out, k).unwrap();
        rmp::encode::write_str(&mut out, &v).unwrap();
    }
    rmp::encode::write_str(&mut out, "log").unwrap();
    let mut line = format!("2026-11-21T04:46:02Z INFO GET /api/v1/orders/{i} status=200");
    while out.len() + line.len() + 2 < 200 {
        line.push('.');
    }
    rmp::encode::write_str(&mut out, &line).unwrap();
    out
}

fn batch(n: usize) -> Batch {
    Batch::new(
        Bytes::from_static(TAG),
        (0..n)
            .map(|i| Event {
                time_ns: 1_700_000_000_000_000_000 + i as u64,
                body: Bytes::from(record(i)),
            })
            .collect(),
    )
}

/// An intake on 127.0.0.1 that reads each body and answers 202.
async fn intake() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|request: axum::extract::Request| async move {
        axum::body::to_bytes(request.into_body(), 64 << 20)
            .await
            .unwrap();
        axum::http::StatusCode::ACCEPTED
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn output(addr: std::net::SocketAddr, gzip: bool) -> WasmOutput {
    let text = format!(
        "path = \"{}\"\nallow_hosts = [\"http://{addr}\"]\nconfig = {{ url = \"http://{addr}/v1/logs\", gzip = {gzip} }}\n",
        wasm_router_test_artifacts::JSON_OUTPUT
    );
    let config: WasmOutputConfig = toml::from_str(&text).unwrap();
    let cx = wasm_router::output::OutputContext {
        key: "outputs[0]",
        name: None,
        component: Component::output("bench"),
        metrics: Metrics::new(),
        plugin_cache_dir: None,
    };
    WasmOutput::build(&config, cx).unwrap()
}

fn deliver(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = runtime.block_on(intake());
    let mut group = c.benchmark_group("deliver");
    for (name, gzip) in [("plain", false), ("gzip", true)] {
        let mut out = runtime.block_on(async { output(addr, gzip) });
        for n in BATCH_SIZES {
            let batch = batch(n);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(name, n), &batch, |b, batch| {
                b.iter(|| {
                    let mut progress = DeliveryProgress::new(batch.len());
                    runtime.block_on(out.deliver(batch, &mut progress)).unwrap()
                });
            });
        }
    }
    // Each `deliver` returns Ok only once the intake has answered 202. No check after the
    // loop: `--list` (nextest) builds the group without running it.
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    targets = deliver
}
criterion_main!(benches);
