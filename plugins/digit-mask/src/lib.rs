//! `digit-mask`: replaces every ASCII digit of the `log` field with `*`. The benchmark
//! fixture for comparing with Fluent Bit's WASM filter, which runs the same transformation.
//! Events without a string (or binary) `log`, or without digits in it, are kept untouched.
//!
//! A masked string has the length of the original, so the new body is the original bytes with
//! the digits of `log` overwritten: one copy, no decoding or re-encoding of the record.

use std::ops::Range;
use wasm_router_sdk::msgpack::{Head, read_head, read_key, skip_value};
use wasm_router_sdk::{Ctx, Event, NoConfig, Outcome, Patch, filter};

/// Masks the digits of `log`.
#[filter(
    name = "digit-mask",
    description = "Replaces every ASCII digit of `log` with `*`."
)]
pub fn digit_mask(_: &NoConfig, event: &Event<'_>, _: &mut Ctx) -> Outcome {
    match masked_body(event.body()) {
        Some(masked) => Outcome::Replace(Patch {
            body: Some(masked),
            ..Patch::default()
        }),
        None => Outcome::Keep,
    }
}

/// The body with the digits of every top-level `log` string or binary masked (a repeated key
/// is masked wherever it appears), in one walk over the map: the copy is made at the first
/// digit found, and later `log` values are masked in it. `None` when no `log` holds a digit,
/// or when the body is malformed (anywhere, as before: such an event is kept as it is).
///
/// On wasm the walk is compiled with `simd128`, so that the digit loops it inlines become
/// 16-byte vector code (wasmtime, which runs the plugins, supports it by default).
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
fn masked_body(body: &[u8]) -> Option<Vec<u8>> {
    let (mut pos, len) = match body.first() {
        Some(&marker @ 0x80..=0x8f) => (1, u32::from(marker & 0x0f)),
        _ => {
            let mut pos = 0;
            let Ok(Head::Map(len)) = read_head(body, &mut pos) else {
                return None;
            };
            (pos, len)
        }
    };
    let mut masked: Option<Vec<u8>> = None;
    for _ in 0..len {
        let (key, value_start) = key_at(body, pos)?;
        let (payload, value_end) = value_at(body, value_start)?;
        pos = value_end;
        let Some(payload) = payload else {
            continue;
        };
        if key != Some(b"log") {
            continue;
        }
        // The masked bytes are computed from `body` and stored into the copy: reading back
        // what the copy just wrote would stall on store forwarding.
        match &mut masked {
            Some(out) => mask_digits(&body[payload.clone()], &mut out[payload]),
            None => {
                if let Some(first) = first_digit_chunk(&body[payload.clone()]) {
                    // Bytes before `first` hold no digit.
                    let digits = payload.start + first..payload.end;
                    let mut out = body.to_vec();
                    mask_digits(&body[digits.clone()], &mut out[digits]);
                    masked = Some(out);
                }
            }
        }
    }
    masked
}

// The walk keeps its position in a local and hands the SDK's readers a copy, so that the
// position stays in a register (a `&mut` that reaches a call pins it in memory).

/// The key at `pos` (its bytes if a string or binary) and where its value starts; `None` if
/// malformed. Short string keys, the usual case, are read here.
#[inline(always)]
fn key_at(body: &[u8], pos: usize) -> Option<(Option<&[u8]>, usize)> {
    if let Some(&marker @ 0xa0..=0xbf) = body.get(pos) {
        let end = pos + 1 + usize::from(marker & 0x1f);
        if end <= body.len() {
            return Some((Some(&body[pos + 1..end]), end));
        }
    }
    let mut next = pos;
    let key = read_key(body, &mut next).ok()?;
    Some((key, next))
}

/// Where the bytes of the value at `start` are if it is a string or binary, and where the
/// value ends; `None` if malformed. The strings records are made of (fixstr, str8) are read
/// here, the rest by the SDK.
#[inline(always)]
fn value_at(body: &[u8], start: usize) -> Option<(Option<Range<usize>>, usize)> {
    let (payload_start, len) = match *body.get(start)? {
        marker @ 0xa0..=0xbf => (start + 1, usize::from(marker & 0x1f)),
        0xd9 => (start + 2, usize::from(*body.get(start + 1)?)),
        _ => {
            let mut next = start;
            return match read_head(body, &mut next).ok()? {
                Head::Str(bytes) | Head::Bin(bytes) => Some((Some(next - bytes.len()..next), next)),
                Head::Array(_) | Head::Map(_) => {
                    next = start;
                    skip_value(body, &mut next).ok()?;
                    Some((None, next))
                }
                _ => Some((None, next)),
            };
        }
    };
    let end = payload_start + len;
    (end <= body.len()).then_some((Some(payload_start..end), end))
}

/// Whether any byte of `chunk` is an ASCII digit: branch-free, so that the compiler turns it
/// into a few 16-byte vector operations.
#[inline(always)]
fn has_digit(chunk: &[u8; 16]) -> bool {
    chunk
        .iter()
        .fold(false, |any, byte| any | (byte.wrapping_sub(b'0') < 10))
}

/// `chunk` with its ASCII digits replaced by `*`, branch-free (a vector compare and select).
#[inline(always)]
fn mask_chunk(chunk: &[u8; 16]) -> [u8; 16] {
    chunk.map(|byte| {
        if byte.wrapping_sub(b'0') < 10 {
            b'*'
        } else {
            byte
        }
    })
}

/// The offset of the first 16-byte chunk of `bytes` holding a digit (chunks from the start;
/// the last one may overlap the one before it); `None` without digits.
#[inline(always)]
fn first_digit_chunk(bytes: &[u8]) -> Option<usize> {
    let len = bytes.len();
    if len < 16 {
        let mut chunk = [0; 16];
        chunk[..len].copy_from_slice(bytes);
        return has_digit(&chunk).then_some(0);
    }
    let mut chunks = bytes.chunks_exact(16);
    let mut offset = 0;
    for chunk in &mut chunks {
        if has_digit(chunk.try_into().expect("16 bytes")) {
            return Some(offset);
        }
        offset += 16;
    }
    if chunks.remainder().is_empty() {
        return None;
    }
    let tail = len - 16;
    has_digit(bytes[tail..].try_into().expect("16 bytes")).then_some(tail)
}

/// Writes `src` into `dst` (of the same length) with every ASCII digit replaced by `*`, 16
/// bytes at a time.
#[inline(always)]
fn mask_digits(src: &[u8], dst: &mut [u8]) {
    let len = src.len();
    assert_eq!(len, dst.len(), "source and destination lengths");
    if len < 16 {
        let mut chunk = [0; 16];
        chunk[..len].copy_from_slice(src);
        dst.copy_from_slice(&mask_chunk(&chunk)[..len]);
        return;
    }
    for (src, dst) in src.chunks_exact(16).zip(dst.chunks_exact_mut(16)) {
        dst.copy_from_slice(&mask_chunk(src.try_into().expect("16 bytes")));
    }
    if !len.is_multiple_of(16) {
        // The last 16 bytes, overlapping a chunk already written (with the same bytes).
        let tail = len - 16;
        dst[tail..].copy_from_slice(&mask_chunk(src[tail..].try_into().expect("16 bytes")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasm_router_sdk::testing::{self, TestEvent};

    #[test]
    fn masks_digits_and_keeps_the_rest() {
        let run = testing::run_filter(
            digit_mask,
            "{}",
            &[
                TestEvent::json(json!({"log": "user 42 paid 1,000.50", "pid": 7})),
                TestEvent::json(json!({"log": "no digits here"})),
                TestEvent::json(json!({"message": "123"})),
                TestEvent::json(json!({"log": 12345})),
            ],
        )
        .unwrap();
        assert!(matches!(run.outcomes()[0], Outcome::Replace(_)));
        assert_eq!(
            run.outcomes()[1..],
            [Outcome::Keep, Outcome::Keep, Outcome::Keep]
        );
        assert_eq!(
            run.records()[0],
            json!({"log": "user ** paid *,***.**", "pid": 7})
        );
    }

    #[test]
    fn non_utf8_bytes_are_kept_as_they_are() {
        let mut body = vec![0x81, 0xa3, b'l', b'o', b'g', 0xa5];
        body.extend_from_slice(b"\xff1\xfe2a");
        let run = testing::run_filter(digit_mask, "{}", &[TestEvent::msgpack(body)]).unwrap();
        let out = &run.events()[0];
        assert_eq!(out.event().get_bytes("log"), Some(&b"\xff*\xfe*a"[..]));
    }

    /// The new body of the one event `body`, which must be replaced.
    fn replaced_body(body: Vec<u8>) -> Vec<u8> {
        let run = testing::run_filter(digit_mask, "{}", &[TestEvent::msgpack(body)]).unwrap();
        match &run.outcomes()[0] {
            Outcome::Replace(patch) => patch.body.clone().expect("a new body"),
            other => panic!("expected a replace, got {other:?}"),
        }
    }

    #[test]
    fn binary_logs_nested_values_and_repeated_keys() {
        // {"k": {"log": "1"}, "log": bin("a1"), "n": [1, 2], "log": "2"}: both top-level `log`
        // entries are masked, the nested one and the other values are left alone.
        let mut body = vec![0x84, 0xa1, b'k', 0x81, 0xa3, b'l', b'o', b'g', 0xa1, b'1'];
        body.extend_from_slice(&[0xa3, b'l', b'o', b'g', 0xc4, 2, b'a', b'1']);
        body.extend_from_slice(&[0xa1, b'n', 0x92, 0x01, 0x02]);
        body.extend_from_slice(&[0xa3, b'l', b'o', b'g', 0xa1, b'2']);
        let mut expected = body.clone();
        let len = expected.len();
        expected[17] = b'*';
        expected[len - 1] = b'*';
        assert_eq!(replaced_body(body), expected);
    }

    #[test]
    fn chunk_masking_matches_the_byte_rule() {
        let scalar = |bytes: &mut [u8]| {
            for byte in bytes {
                if byte.is_ascii_digit() {
                    *byte = b'*';
                }
            }
        };
        // Every byte value at every position of a chunk, beside digits and high bytes.
        for value in 0..=255u8 {
            for at in 0..16 {
                for fill in [b'a', b'5', 0xff, 0x2f, 0x3a] {
                    let mut word = [fill; 16];
                    word[at] = value;
                    let (mut fast, mut slow) = (word, word);
                    mask_digits(&word, &mut fast);
                    scalar(&mut slow);
                    assert_eq!(fast, slow, "{word:x?}");
                }
            }
        }
        // Every length up to 40 (short, exact chunks, overlapping tail), digits anywhere.
        let pattern = b"a1 b22\xff9:/0Z";
        let source: Vec<u8> = (0..40).map(|i| pattern[i % pattern.len()]).collect();
        for len in 0..=source.len() {
            for shift in 0..len {
                let mut bytes: Vec<u8> = source[..len].to_vec();
                bytes.rotate_left(shift);
                let mut slow = bytes.clone();
                scalar(&mut slow);
                let first = first_digit_chunk(&bytes);
                let expected = bytes.iter().position(u8::is_ascii_digit);
                assert_eq!(first.is_some(), expected.is_some());
                if let (Some(first), Some(expected)) = (first, expected) {
                    assert!(first <= expected && expected - first < 16);
                }
                let mut fast = vec![0; len];
                mask_digits(&bytes, &mut fast);
                assert_eq!(fast, slow);
            }
        }
    }

    #[test]
    fn long_logs_and_a_later_repeated_key() {
        // A str16 `log` of 300 bytes, and a map whose first `log` has no digit and second has.
        let line: String = (0..300)
            .map(|i| if i % 7 == 0 { '3' } else { 'x' })
            .collect();
        let masked: String = line.replace('3', "*");
        let run = testing::run_filter(
            digit_mask,
            "{}",
            &[TestEvent::json(
                json!({"a": [1, {"b": 2}], "log": line, "z": 1.5}),
            )],
        )
        .unwrap();
        assert_eq!(
            run.records()[0],
            json!({"a": [1, {"b": 2}], "log": masked, "z": 1.5})
        );

        let mut body = vec![0x82, 0xa3, b'l', b'o', b'g', 0xa2, b'a', b'b'];
        body.extend_from_slice(&[0xa3, b'l', b'o', b'g', 0xd9, 3, b'x', b'7', b'y']);
        let mut expected = body.clone();
        let len = expected.len();
        expected[len - 2] = b'*';
        assert_eq!(replaced_body(body), expected);

        // A body that is malformed after a `log` with digits is kept as it is.
        let mut body = vec![0x82, 0xa3, b'l', b'o', b'g', 0xa2, b'4', b'2'];
        body.extend_from_slice(&[0xa1, b'n', 0x92, 0x01]);
        let run = testing::run_filter(digit_mask, "{}", &[TestEvent::msgpack(body)]).unwrap();
        assert_eq!(run.outcomes(), [Outcome::Keep]);
    }

    #[test]
    fn malformed_bodies_are_kept() {
        let run = testing::run_filter(
            digit_mask,
            "{}",
            &[TestEvent::msgpack(vec![
                0x81, 0xa3, b'l', b'o', b'g', 0xa5, b'1',
            ])],
        )
        .unwrap();
        assert_eq!(run.outcomes(), [Outcome::Keep]);
    }
}
