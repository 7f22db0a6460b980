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
    let body = event.body();
    let spans = log_spans(body);
    if !spans
        .iter()
        .any(|span| body[span.clone()].iter().any(u8::is_ascii_digit))
    {
        return Outcome::Keep;
    }
    let mut masked = body.to_vec();
    for span in spans {
        for byte in &mut masked[span] {
            if byte.is_ascii_digit() {
                *byte = b'*';
            }
        }
    }
    Outcome::Replace(Patch::default().with_body(masked))
}

/// Where the bytes of each top-level `log` string or binary sit in `body` (a repeated key is
/// masked wherever it appears); none when the body is malformed.
fn log_spans(body: &[u8]) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut pos = 0;
    let Ok(Head::Map(len)) = read_head(body, &mut pos) else {
        return spans;
    };
    for _ in 0..len {
        let Ok(key) = read_key(body, &mut pos) else {
            return Vec::new();
        };
        if key == Some(b"log") {
            let value_start = pos;
            match read_head(body, &mut pos) {
                Ok(Head::Str(bytes) | Head::Bin(bytes)) => {
                    spans.push(pos - bytes.len()..pos);
                    continue;
                }
                Ok(_) => pos = value_start,
                Err(_) => return Vec::new(),
            }
        }
        if skip_value(body, &mut pos).is_err() {
            return Vec::new();
        }
    }
    spans
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

    #[test]
    fn binary_logs_nested_values_and_repeated_keys() {
        // {"k": {"log": "1"}, "log": bin("a1"), "n": [1, 2], "log": "2"}: both top-level `log`
        // entries are masked, the nested one and the other values are left alone.
        let mut body = vec![0x84, 0xa1, b'k', 0x81, 0xa3, b'l', b'o', b'g', 0xa1, b'1'];
        body.extend_from_slice(&[0xa3, b'l', b'o', b'g', 0xc4, 2, b'a', b'1']);
        body.extend_from_slice(&[0xa1, b'n', 0x92, 0x01, 0x02]);
        body.extend_from_slice(&[0xa3, b'l', b'o', b'g', 0xa1, b'2']);
        let run =
            testing::run_filter(digit_mask, "{}", &[TestEvent::msgpack(body.clone())]).unwrap();
        let Outcome::Replace(patch) = &run.outcomes()[0] else {
            panic!("expected a replace, got {:?}", run.outcomes()[0]);
        };
        let mut expected = body;
        let len = expected.len();
        expected[17] = b'*';
        expected[len - 1] = b'*';
        assert_eq!(patch.body.as_deref(), Some(&expected[..]));
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
