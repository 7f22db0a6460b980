//! JSON in and out: records written as JSON text straight from msgpack (for outputs and
//! tests), and JSON values encoded as msgpack (for building records from JSON).
//!
//! Strings that are not valid UTF-8 are written with U+FFFD in place of the bad bytes; binary
//! values are written as (lossily decoded) strings; ext values (Fluent's EventTime) as
//! strings of their hex bytes; non-finite floats as `null`.

use crate::msgpack;
use crate::value::Value;
use std::io::Write as _;

/// Appends `value` as JSON text to `out`.
pub fn write_value_json(out: &mut Vec<u8>, value: Value<'_>) {
    match value {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        Value::F32(f) => write_float(out, f64::from(f)),
        Value::F64(f) => write_float(out, f),
        Value::Str(bytes) | Value::Bin(bytes) => write_json_string(out, bytes),
        Value::Ext(_, data) => {
            out.push(b'"');
            for byte in data {
                let _ = write!(out, "{byte:02x}");
            }
            out.push(b'"');
        }
        Value::Array(array) => {
            out.push(b'[');
            for (index, item) in array.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value_json(out, item);
            }
            out.push(b']');
        }
        Value::Map(map) => {
            out.push(b'{');
            for (index, (key, item)) in map.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_key(out, key);
                out.push(b':');
                write_value_json(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Appends the msgpack map `body` (an event body) as a JSON object to `out`.
pub fn write_record_json(out: &mut Vec<u8>, body: &[u8]) -> Result<(), msgpack::DecodeError> {
    let map = crate::Map::from_msgpack(body)?;
    write_value_json(out, Value::Map(map));
    Ok(())
}

fn write_key(out: &mut Vec<u8>, key: Value<'_>) {
    match key {
        Value::Str(bytes) | Value::Bin(bytes) => write_json_string(out, bytes),
        other => {
            let mut text = Vec::new();
            write_value_json(&mut text, other);
            write_json_string(out, &text);
        }
    }
}

fn write_float(out: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        let _ = write!(out, "{value:?}");
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Appends `bytes` as a JSON string (quotes included), escaping what JSON requires and
/// replacing invalid UTF-8 with U+FFFD.
pub fn write_json_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        escape_into(out, chunk.valid().as_bytes());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
    out.push(b'"');
}

fn escape_into(out: &mut Vec<u8>, text: &[u8]) {
    let mut start = 0;
    for (index, &byte) in text.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&text[start..index]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.extend_from_slice(escape);
        }
        start = index + 1;
    }
    out.extend_from_slice(&text[start..]);
}

/// Encodes a JSON value as msgpack (objects become maps, integers the smallest int type).
pub fn json_to_msgpack(value: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_json_as_msgpack(&mut out, value);
    out
}

/// Appends a JSON value, encoded as msgpack, to `out`.
pub fn write_json_as_msgpack(out: &mut Vec<u8>, value: &serde_json::Value) {
    use serde_json::Value as Json;
    match value {
        Json::Null => msgpack::write_nil(out),
        Json::Bool(b) => msgpack::write_bool(out, *b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                msgpack::write_i64(out, i);
            } else if let Some(u) = n.as_u64() {
                msgpack::write_u64(out, u);
            } else {
                msgpack::write_f64(out, n.as_f64().unwrap_or(f64::NAN));
            }
        }
        Json::String(s) => msgpack::write_str(out, s.as_bytes()),
        Json::Array(items) => {
            msgpack::write_array_header(out, items.len() as u32);
            for item in items {
                write_json_as_msgpack(out, item);
            }
        }
        Json::Object(entries) => {
            msgpack::write_map_header(out, entries.len() as u32);
            for (key, item) in entries {
                msgpack::write_str(out, key.as_bytes());
                write_json_as_msgpack(out, item);
            }
        }
    }
}

/// Encodes JSON text as msgpack in one pass, keeping the order of object keys (and every
/// duplicate key) as written. Fails on invalid JSON or trailing characters.
pub fn json_text_to_msgpack(text: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(text.len());
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    serde::de::DeserializeSeed::deserialize(Transcoder { out: &mut out }, &mut deserializer)?;
    deserializer.end()?;
    Ok(out)
}

/// Writes what it deserializes as msgpack (container headers are inserted once the element
/// count is known).
struct Transcoder<'o> {
    out: &'o mut Vec<u8>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Transcoder<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Transcoder<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<(), E> {
        msgpack::write_bool(self.out, value);
        Ok(())
    }

    fn visit_i64<E>(self, value: i64) -> Result<(), E> {
        msgpack::write_i64(self.out, value);
        Ok(())
    }

    fn visit_u64<E>(self, value: u64) -> Result<(), E> {
        msgpack::write_u64(self.out, value);
        Ok(())
    }

    fn visit_f64<E>(self, value: f64) -> Result<(), E> {
        msgpack::write_f64(self.out, value);
        Ok(())
    }

    fn visit_str<E>(self, value: &str) -> Result<(), E> {
        msgpack::write_str(self.out, value.as_bytes());
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        msgpack::write_nil(self.out);
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        msgpack::write_nil(self.out);
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let header_at = self.out.len();
        let mut count = 0u32;
        while seq
            .next_element_seed(Transcoder { out: self.out })?
            .is_some()
        {
            count += 1;
        }
        let mut header = Vec::with_capacity(5);
        msgpack::write_array_header(&mut header, count);
        self.out.splice(header_at..header_at, header);
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let header_at = self.out.len();
        let mut count = 0u32;
        while map.next_key_seed(Transcoder { out: self.out })?.is_some() {
            map.next_value_seed(Transcoder { out: self.out })?;
            count += 1;
        }
        let mut header = Vec::with_capacity(5);
        msgpack::write_map_header(&mut header, count);
        self.out.splice(header_at..header_at, header);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(value: serde_json::Value) {
        let encoded = json_to_msgpack(&value);
        let mut text = Vec::new();
        write_value_json(&mut text, Value::from_msgpack(&encoded).unwrap());
        let back: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn json_round_trips_through_msgpack() {
        round_trip(
            json!({"a": [1, -2, 3.5, null, true, false], "s": "quote \" back \\ nl \n tab \t ctl \u{1}", "u": u64::MAX}),
        );
        round_trip(json!({"nested": {"deeper": {"x": "ünïcödé ✓"}}, "empty": {}, "list": []}));
    }

    #[test]
    fn json_text_keeps_key_order_and_nesting() {
        let text = br#" {"z": 1, "a": {"y": [true, null, -3, 2.5, "s"], "b": {}}, "m": 18446744073709551615} "#;
        let encoded = json_text_to_msgpack(text).unwrap();
        let map = crate::Map::from_msgpack(&encoded).unwrap();
        let keys: Vec<_> = map.iter().map(|(k, _)| k.as_str().unwrap()).collect();
        assert_eq!(keys, ["z", "a", "m"]);
        let mut back = Vec::new();
        write_value_json(&mut back, Value::Map(map));
        assert_eq!(
            String::from_utf8(back).unwrap(),
            r#"{"z":1,"a":{"y":[true,null,-3,2.5,"s"],"b":{}},"m":18446744073709551615}"#
        );
        assert!(json_text_to_msgpack(b"{\"a\": 1} x").is_err());
        assert!(json_text_to_msgpack(b"{\"a\": ").is_err());
        assert_eq!(json_text_to_msgpack(b"[]").unwrap(), [0x90]);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let mut out = Vec::new();
        write_json_string(&mut out, b"a\xffb\xc3");
        assert_eq!(String::from_utf8(out).unwrap(), "\"a\u{fffd}b\u{fffd}\"");
    }

    #[test]
    fn non_finite_floats_become_null() {
        let mut encoded = Vec::new();
        msgpack::write_map_header(&mut encoded, 1);
        msgpack::write_str(&mut encoded, b"f");
        msgpack::write_f64(&mut encoded, f64::INFINITY);
        let mut out = Vec::new();
        write_record_json(&mut out, &encoded).unwrap();
        assert_eq!(out, br#"{"f":null}"#);
    }
}
