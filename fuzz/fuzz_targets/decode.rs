//! Fuzz the forward-protocol decoder: arbitrary bytes, delivered in arbitrary pieces.
//!
//! The first bytes choose where the stream is split (so the resumable framing sees every kind
//! of partial read) and the limits; the rest is the stream. Checked on every input: no panic,
//! no hang, and splitting never changes the outcome (same frames, same error kind) compared with
//! feeding everything at once.
//!
//! Run: `cargo +nightly fuzz run decode` in this directory.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wasm_router::input::forward::{DecodeError, DecodeLimits, Decoder, Frame};

#[derive(Debug, PartialEq)]
enum Outcome {
    Frame { tag: Vec<u8>, events: Vec<(u64, Vec<u8>)>, chunk: Option<Vec<u8>>, invalid: usize, signal: Option<i64> },
    Nil,
    Malformed,
    TooLarge,
}

fn clock() -> u64 {
    42
}

fn run(stream: &[u8], cuts: &[usize], limits: &DecodeLimits) -> Vec<Outcome> {
    let mut decoder = Decoder::with_clock(limits.clone(), clock);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain([&stream.len()]) {
        let end = end.clamp(start, stream.len());
        buf.extend_from_slice(&stream[start..end]);
        start = end;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(Frame::Nil)) => out.push(Outcome::Nil),
                Ok(Some(Frame::Request(r))) => {
                    for e in &r.batch.events {
                        assert!(matches!(e.body.first(), Some(0x80..=0x8f | 0xde | 0xdf)), "a body is a map");
                    }
                    out.push(Outcome::Frame {
                        tag: r.batch.tag.to_vec(),
                        events: r.batch.events.iter().map(|e| (e.time_ns, e.body.to_vec())).collect(),
                        chunk: r.chunk.map(|c| c.to_vec()),
                        invalid: r.invalid_events,
                        signal: r.skipped_signal,
                    })
                }
                Ok(None) => break,
                Err(DecodeError::Malformed(_)) => return push(out, Outcome::Malformed),
                Err(DecodeError::TooLarge { .. }) => return push(out, Outcome::TooLarge),
            }
        }
    }
    out
}

fn push(mut out: Vec<Outcome>, last: Outcome) -> Vec<Outcome> {
    out.push(last);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&[split_seed, limit_shift], stream)) = data.split_first_chunk::<2>() else { return };
    let limit = 64usize << (limit_shift % 12);
    let limits = DecodeLimits { max_request_bytes: limit, max_decompressed_bytes: limit };
    let step = (split_seed as usize % 17) + 1;
    let cuts: Vec<usize> = (step..stream.len()).step_by(step).collect();
    let whole = run(stream, &[], &limits);
    let split = run(stream, &cuts, &limits);
    assert_eq!(whole, split, "splitting every {step} bytes changed the outcome");
});
