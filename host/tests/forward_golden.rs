//! Golden tests of the forward-protocol decoder: raw bytes from real senders and from the shapes
//! the reference describes (host/tests/golden/, see its README.md) must decode to the expected
//! requests, fed whole, byte by byte, and split at random points.
//!
//! Also: a gzip bomb is refused without allocating its decompressed size (measured with a
//! counting allocator on the test's own thread).

#![allow(unsafe_code)] // the counting global allocator below

use bytes::BytesMut;
use serde_json::{Value, json};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use wasm_router::event::json::write_json;
use wasm_router::input::forward::decode::{Mode, SizeLimit};
use wasm_router::input::forward::{DecodeError, DecodeLimits, Decoder, Frame};

/// What a time of 0 decodes to: the fixtures' expectations use the same value.
const NOW_NS: u64 = 1_234_567_890_000_000_000;

fn fixed_clock() -> u64 {
    NOW_NS
}

struct Fixture {
    name: String,
    bytes: Vec<u8>,
    expected: Value,
}

impl Fixture {
    fn limits(&self) -> DecodeLimits {
        match self.expected.get("limits") {
            Some(l) => DecodeLimits {
                max_request_bytes: l["max_request_bytes"].as_u64().unwrap() as usize,
                max_decompressed_bytes: l["max_decompressed_bytes"].as_u64().unwrap() as usize,
            },
            None => DecodeLimits::default(),
        }
    }
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn fixtures() -> Vec<Fixture> {
    let mut names: Vec<String> = std::fs::read_dir(golden_dir())
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".bin").map(str::to_string))
        .collect();
    names.sort();
    assert!(
        names.len() >= 30,
        "golden fixtures missing from {}",
        golden_dir().display()
    );
    names
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(golden_dir().join(format!("{name}.bin"))).unwrap();
            let expected_path = golden_dir().join(format!("{name}.expected.json"));
            let expected = serde_json::from_slice(&std::fs::read(&expected_path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
            Fixture {
                name,
                bytes,
                expected,
            }
        })
        .collect()
}

/// A frame as the fixtures describe it. Also checks each body is exactly one msgpack map.
fn render(frame: Frame) -> Value {
    let req = match frame {
        Frame::Nil => return json!({"nil": true}),
        Frame::Request(req) => req,
    };
    let events: Vec<Value> = req
        .batch
        .events
        .iter()
        .map(|e| {
            let mut text = String::new();
            let used = write_json(&e.body, &mut text).expect("a body is valid msgpack");
            assert_eq!(used, e.body.len(), "a body is exactly one value");
            assert!(
                matches!(e.body[0], 0x80..=0x8f | 0xde | 0xdf),
                "a body is a map"
            );
            json!({"time_ns": e.time_ns, "record": serde_json::from_str::<Value>(&text).unwrap()})
        })
        .collect();
    json!({
        "tag": req.batch.tag_lossy(),
        "mode": format!("{:?}", req.mode),
        "chunk_hex": req.chunk.as_ref().map(|c| c.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        "invalid_events": req.invalid_events,
        "skipped_signal": req.skipped_signal,
        "events": events,
    })
}

fn render_error(e: &DecodeError) -> Value {
    match e {
        DecodeError::Malformed(reason) => json!({"kind": "malformed", "reason": reason}),
        DecodeError::TooLarge { limit, what } => {
            json!({"kind": "too_large", "reason": e.to_string(), "limit": limit, "what": what.to_string()})
        }
    }
}

/// Feed `bytes` in pieces ending at `cuts` (then the rest); decode after each piece.
fn decode_in_pieces(fixture: &Fixture, cuts: &[usize]) -> (Vec<Value>, Option<Value>) {
    let mut decoder = Decoder::with_clock(fixture.limits(), fixed_clock);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain([&fixture.bytes.len()]) {
        buf.extend_from_slice(&fixture.bytes[start..end]);
        start = end;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(render(frame)),
                Ok(None) => break,
                Err(e) => return (frames, Some(render_error(&e))),
            }
        }
    }
    assert!(
        buf.is_empty(),
        "{}: {} bytes never decoded",
        fixture.name,
        buf.len()
    );
    (frames, None)
}

fn check(fixture: &Fixture, how: &str, (frames, error): (Vec<Value>, Option<Value>)) {
    let name = &fixture.name;
    assert_eq!(
        frames,
        fixture.expected["frames"].as_array().unwrap().clone(),
        "{name} fed {how}: frames differ from {name}.expected.json"
    );
    match (&fixture.expected["error"], error) {
        (Value::Null, None) => {}
        (expected, Some(got)) if !expected.is_null() => {
            assert_eq!(got["kind"], expected["kind"], "{name} fed {how}: {got}");
            let contains = expected["contains"].as_str().unwrap();
            assert!(
                got["reason"].as_str().unwrap().contains(contains),
                "{name} fed {how}: {got} does not mention {contains:?}"
            );
        }
        (expected, got) => panic!("{name} fed {how}: expected error {expected}, got {got:?}"),
    }
}

#[test]
fn fixtures_decode_fed_whole() {
    for fixture in fixtures() {
        check(&fixture, "whole", decode_in_pieces(&fixture, &[]));
    }
}

/// Every prefix of a request is "need more bytes", never an error or a wrong frame.
#[test]
fn fixtures_decode_fed_byte_by_byte() {
    for fixture in fixtures() {
        let cuts: Vec<usize> = (1..fixture.bytes.len()).collect();
        check(&fixture, "byte by byte", decode_in_pieces(&fixture, &cuts));
    }
}

#[test]
fn fixtures_decode_split_at_random_points() {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for fixture in fixtures() {
        for _ in 0..25 {
            let mut cuts: Vec<usize> = (0..rng.usize(1..8))
                .map(|_| rng.usize(0..=fixture.bytes.len()))
                .collect();
            cuts.sort();
            check(
                &fixture,
                &format!("in pieces ending at {cuts:?}"),
                decode_in_pieces(&fixture, &cuts),
            );
        }
    }
}

/// Mutated fixtures (bit flips, cuts, splices, random bytes) never panic, and however the bytes
/// are split across reads the outcome is the same: the stable-toolchain sibling of the
/// cargo-fuzz target in fuzz/.
#[test]
fn mutated_fixtures_decode_the_same_however_split() {
    let fixtures = fixtures();
    let mut rng = fastrand::Rng::with_seed(0xf022);
    for round in 0..3000 {
        let mut bytes = fixtures[rng.usize(..fixtures.len())].bytes.clone();
        bytes.truncate(4096);
        for _ in 0..rng.usize(1..4) {
            match rng.u8(..4) {
                0 if !bytes.is_empty() => {
                    let i = rng.usize(..bytes.len());
                    bytes[i] ^= 1 << rng.u8(..8);
                }
                1 if !bytes.is_empty() => {
                    let i = rng.usize(..bytes.len());
                    bytes[i] = rng.u8(..);
                }
                2 => bytes.truncate(rng.usize(..=bytes.len())),
                _ => {
                    let other = &fixtures[rng.usize(..fixtures.len())].bytes;
                    let from = rng.usize(..other.len());
                    let piece = &other[from..other.len().min(from + rng.usize(1..64))];
                    let at = rng.usize(..=bytes.len());
                    bytes.splice(at..at, piece.iter().copied());
                }
            }
        }
        let fixture = Fixture {
            name: format!("mutation {round}"),
            bytes,
            expected: Value::Null,
        };
        let limits = DecodeLimits {
            max_request_bytes: 64 << rng.u32(..8),
            max_decompressed_bytes: 64 << rng.u32(..8),
        };
        let whole = outcome(&fixture, &limits, &[]);
        let step = rng.usize(1..17);
        let cuts: Vec<usize> = (step..fixture.bytes.len()).step_by(step).collect();
        assert_eq!(
            outcome(&fixture, &limits, &cuts),
            whole,
            "{} split every {step} bytes: {:02x?}",
            fixture.name,
            fixture.bytes
        );
    }
}

/// Frames and the kind of the final error, without the expectations of a fixture file.
fn outcome(fixture: &Fixture, limits: &DecodeLimits, cuts: &[usize]) -> Vec<String> {
    let mut decoder = Decoder::with_clock(limits.clone(), fixed_clock);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain([&fixture.bytes.len()]) {
        buf.extend_from_slice(&fixture.bytes[start..end]);
        start = end;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => out.push(render(frame).to_string()),
                Ok(None) => break,
                Err(e) => {
                    out.push(render_error(&e)["kind"].to_string());
                    return out;
                }
            }
        }
    }
    out
}

/// Bodies of uncompressed requests are slices of the bytes read, not copies.
#[test]
fn bodies_are_slices_of_the_read_buffer() {
    for fixture in fixtures()
        .into_iter()
        .filter(|f| f.expected["error"].is_null())
    {
        let mut buf = BytesMut::from(&fixture.bytes[..]);
        let read = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let mut decoder = Decoder::with_clock(fixture.limits(), fixed_clock);
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            let Frame::Request(req) = frame else { continue };
            if req.mode == Mode::CompressedPackedForward {
                continue;
            }
            for e in &req.batch.events {
                assert!(
                    read.contains(&(e.body.as_ptr() as usize)),
                    "{}: a body was copied",
                    fixture.name
                );
            }
        }
    }
}

/// The fixtures cover every carrier mode and the real senders' shapes the reference lists (§8).
#[test]
fn fixtures_cover_every_mode() {
    let fixtures = fixtures();
    let modes: std::collections::BTreeSet<String> = fixtures
        .iter()
        .flat_map(|f| f.expected["frames"].as_array().unwrap().clone())
        .filter_map(|f| f["mode"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        modes.into_iter().collect::<Vec<_>>(),
        [
            "CompressedPackedForward",
            "Forward",
            "Message",
            "PackedForward"
        ]
    );
    for name in [
        "docker_go_message_eventtime",
        "docker_go_message_int32",
        "python_message_uint32",
        "node_packed_forward_bin",
        "node_compressed_packed_forward_gzip",
        "fluentbit_forward_metadata",
        "fluentd_packed_text_str32",
        "fluentd_compressed_gzip_multi_member",
        "time_ext8_and_float",
    ] {
        assert!(
            fixtures.iter().any(|f| f.name == name),
            "fixture {name} is missing"
        );
    }
}

// ---- gzip bomb: refused without allocating what it would decompress to ----

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// `System`, counting the bytes each thread holds and the most it has held.
struct CountingAllocator;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = HELD.try_with(|held| {
        let now = held.get() + delta;
        held.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded to `System` unchanged; the counters are plain thread-locals
// without destructors, so touching them never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            track(layout.size() as isize);
        }
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        new
    }
}

#[test]
fn gzip_bomb_is_refused_without_allocating_its_size() {
    const MIB: usize = 1 << 20;
    let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    member.write_all(&vec![0u8; MIB]).unwrap();
    let member = member.finish().unwrap();
    // 256 members of 1 MiB of zeros: 256 MiB once inflated, a few hundred kB on the wire.
    let bomb: Vec<u8> = std::iter::repeat_n(&member[..], 256)
        .flatten()
        .copied()
        .collect();
    let mut request = vec![0x93, 0xa1, b't', 0xc6];
    request.extend_from_slice(&(bomb.len() as u32).to_be_bytes());
    request.extend_from_slice(&bomb);
    request.extend_from_slice(&[0x81, 0xaa]);
    request.extend_from_slice(b"compressed");
    request.extend_from_slice(&[0xa4]);
    request.extend_from_slice(b"gzip");
    drop(bomb);

    let limits = DecodeLimits {
        max_request_bytes: 2 * MIB,
        max_decompressed_bytes: 4 * MIB,
    };
    let mut decoder = Decoder::with_clock(limits, fixed_clock);
    let mut buf = BytesMut::from(&request[..]);
    let before = HELD.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let result = decoder.decode(&mut buf);
    let peak = PEAK.with(Cell::get) - before;
    assert!(
        matches!(result, Err(DecodeError::TooLarge { limit, what: SizeLimit::Decompressed }) if limit == 4 * MIB),
        "{result:?}"
    );
    assert!(
        peak < 12 * MIB as isize,
        "decoding the bomb held {peak} bytes at its peak"
    );
}
