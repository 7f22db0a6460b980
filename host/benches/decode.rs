//! Forward-protocol decoder throughput per carrier mode, on FireLens-shaped records
//! (container_id, container_name, source, log; about 200 bytes each, as Docker sends them).
//!
//! Run: `cargo bench -p wasm-router --bench decode`. Criterion reports events per second
//! ("elem/s") for each mode. Decoded frames are dropped inside the measured loop; copying the
//! input into a fresh buffer and freeing that buffer are not measured.

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::io::Write;
use std::time::Duration;
use wasm_router::input::forward::{DecodeLimits, Decoder, Frame};

const EVENTS: usize = 1000;
const BASE_SECONDS: u32 = 1_700_000_000;

fn str_value(out: &mut Vec<u8>, s: &[u8]) {
    match s.len() {
        n if n < 32 => out.push(0xa0 | n as u8),
        n if n < 256 => out.extend_from_slice(&[0xd9, n as u8]),
        n => {
            out.push(0xda);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(s);
}

fn event_time(out: &mut Vec<u8>, i: usize) {
    out.extend_from_slice(&[0xd7, 0x00]);
    out.extend_from_slice(&(BASE_SECONDS + i as u32 / 1000).to_be_bytes());
    out.extend_from_slice(&((i as u32 % 1000) * 1_000_003).to_be_bytes());
}

/// One record the way Docker's fluentd driver sends it, about 200 bytes.
fn firelens_record(out: &mut Vec<u8>, i: usize) {
    out.push(0x84);
    str_value(out, b"container_id");
    str_value(out, "0123456789abcdef".repeat(4).as_bytes());
    str_value(out, b"container_name");
    str_value(out, b"/ecs-web-1-app-c8f0a6d1");
    str_value(out, b"source");
    str_value(
        out,
        if i.is_multiple_of(2) {
            b"stdout"
        } else {
            b"stderr"
        },
    );
    str_value(out, b"log");
    str_value(
        out,
        format!(
            "10.0.1.{} - - GET /api/v1/items/{i:06} HTTP/1.1 200 512 0.003",
            i % 250
        )
        .as_bytes(),
    );
}

fn entries(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(0x92);
        event_time(&mut out, i);
        firelens_record(&mut out, i);
    }
    out
}

fn tag(out: &mut Vec<u8>) {
    str_value(out, b"app-firelens-4f1c2d8e9a7b4c3d8e2f1a0b9c8d7e6f");
}

/// `n` Message-mode requests back to back, as Docker sends them (4 elements, `{}` option).
fn message_stream(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(0x94);
        tag(&mut out);
        event_time(&mut out, i);
        firelens_record(&mut out, i);
        out.push(0x80);
    }
    out
}

fn forward_request(n: usize) -> Vec<u8> {
    let mut out = vec![0x92];
    tag(&mut out);
    out.push(0xdd);
    out.extend_from_slice(&(n as u32).to_be_bytes());
    out.extend(entries(n));
    out
}

fn packed_request(payload: &[u8], compressed: Option<&str>) -> Vec<u8> {
    let mut out = vec![if compressed.is_some() { 0x93 } else { 0x92 }];
    tag(&mut out);
    out.push(0xc6);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    if let Some(c) = compressed {
        out.push(0x81);
        str_value(&mut out, b"compressed");
        str_value(&mut out, c.as_bytes());
    }
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn decode_all(decoder: &mut Decoder, buf: &mut BytesMut) -> usize {
    let mut events = 0;
    while let Some(frame) = decoder.decode(buf).expect("bench input is valid") {
        if let Frame::Request(r) = frame {
            events += r.batch.len();
        }
    }
    events
}

fn bench_mode(c: &mut Criterion, name: &str, input: &[u8], events: usize) {
    let mut decoder = Decoder::new(DecodeLimits::default());
    assert_eq!(
        decode_all(&mut decoder, &mut BytesMut::from(input)),
        events,
        "{name} input"
    );
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(events as u64));
    group.bench_function(name, |b| {
        b.iter_batched(
            || BytesMut::from(input),
            |mut buf| {
                decode_all(&mut decoder, &mut buf);
                // Freeing the read buffer is the server's cost, not the decoder's.
                buf
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn modes(c: &mut Criterion) {
    let record_bytes = entries(EVENTS).len() / EVENTS - 11;
    eprintln!("record size: {record_bytes} bytes; {EVENTS} events per iteration");
    bench_mode(c, "message", &message_stream(EVENTS), EVENTS);
    bench_mode(c, "forward", &forward_request(EVENTS), EVENTS);
    let plain = entries(EVENTS);
    bench_mode(c, "packed_forward", &packed_request(&plain, None), EVENTS);
    bench_mode(
        c,
        "compressed_packed_forward_gzip",
        &packed_request(&gzip(&plain), Some("gzip")),
        EVENTS,
    );
    let zstd = zstd::encode_all(&plain[..], 3).unwrap();
    bench_mode(
        c,
        "compressed_packed_forward_zstd",
        &packed_request(&zstd, Some("zstd")),
        EVENTS,
    );
}

/// A 5 MB PackedForward request arriving in 4 KiB reads: framing must stay linear.
fn packed_in_small_reads(c: &mut Criterion) {
    let n = 5_000_000 / 210;
    let input = packed_request(&entries(n), None);
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(20);
    group.bench_function("packed_forward_5mb_in_4k_reads", |b| {
        let mut decoder = Decoder::new(DecodeLimits::default());
        b.iter_batched(
            || BytesMut::with_capacity(input.len()),
            |mut buf| {
                let mut events = 0;
                for read in input.chunks(4096) {
                    buf.extend_from_slice(read);
                    events += decode_all(&mut decoder, &mut buf);
                }
                assert_eq!(events, n);
                buf
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = modes, packed_in_small_reads
}
criterion_main!(benches);
