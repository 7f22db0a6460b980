//! `digit-mask`: replaces every ASCII digit of the `log` field with `*`. The benchmark
//! fixture for comparing with Fluent Bit's WASM filter, which runs the same transformation.
//! Events without a string (or binary) `log`, or without digits in it, are kept untouched.

use wasm_router_sdk::{Ctx, Event, NoConfig, Outcome, Value, filter};

/// Masks the digits of `log`.
#[filter(
    name = "digit-mask",
    description = "Replaces every ASCII digit of `log` with `*`."
)]
pub fn digit_mask(
    _: &NoConfig,
    event: &Event<'_>,
    _: &mut Ctx,
) -> wasm_router_sdk::Result<Outcome> {
    let (bytes, is_binary) = match event.get("log") {
        Some(Value::Str(bytes)) => (bytes, false),
        Some(Value::Bin(bytes)) => (bytes, true),
        _ => return Ok(Outcome::Keep),
    };
    if !bytes.iter().any(u8::is_ascii_digit) {
        return Ok(Outcome::Keep);
    }
    let masked: Vec<u8> = bytes
        .iter()
        .map(|&b| if b.is_ascii_digit() { b'*' } else { b })
        .collect();
    let mut record = event.record()?;
    if is_binary {
        record.set_value("log", Value::Bin(&masked))?;
    } else {
        record.set_str_bytes("log", &masked)?;
    }
    Ok(record.into())
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
}
