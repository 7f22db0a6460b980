//! A record's top-level map as raw msgpack slices, for filters that add, remove, rename or
//! look up keys without decoding values they do not touch.
//!
//! [`RawRecord::parse`] borrows every key and value from the event's body; edits replace or
//! append entries; [`RawRecord::encode`] writes the map header and the slices back. Values a
//! filter does not change keep their exact bytes.

use crate::event::json::{map_entries, skip_value};
use rmp::Marker;
use std::borrow::Cow;

/// One `(key, value)` of a record, each a complete msgpack value.
pub type RawEntry<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// The entries of a record's top-level map, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawRecord<'a> {
    /// The entries, in the order they are written.
    pub entries: Vec<RawEntry<'a>>,
}

impl<'a> RawRecord<'a> {
    /// The entries of `body`, or `None` when it is not one well-formed msgpack map.
    pub fn parse(body: &'a [u8]) -> Option<RawRecord<'a>> {
        let entries = map_entries(body)
            .ok()?
            .map(|entry| entry.map(|(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v))))
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        Some(RawRecord { entries })
    }

    /// The text of entry `i`'s key when it is a string or binary.
    pub fn key(&self, i: usize) -> Option<&[u8]> {
        str_or_bin(&self.entries[i].0)
    }

    /// Index of the first entry whose key is `name`.
    pub fn position(&self, name: &[u8]) -> Option<usize> {
        (0..self.entries.len()).find(|&i| self.key(i) == Some(name))
    }

    /// How many entries have the key `name`.
    pub fn count(&self, name: &[u8]) -> usize {
        (0..self.entries.len())
            .filter(|&i| self.key(i) == Some(name))
            .count()
    }

    /// Keep only the entries for which `keep(key text)` is true (a key that is not a string or
    /// binary is passed as `None`).
    pub fn retain_keys(&mut self, mut keep: impl FnMut(Option<&[u8]>) -> bool) {
        self.entries.retain(|(k, _)| keep(str_or_bin(k)));
    }

    /// Append `key` with a string `value`.
    pub fn push_str(&mut self, key: &[u8], value: &[u8]) {
        self.entries
            .push((Cow::Owned(encode_str(key)), Cow::Owned(encode_str(value))));
    }

    /// The record as one msgpack map.
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self.entries.iter().map(|(k, v)| k.len() + v.len()).sum();
        let mut out = Vec::with_capacity(size + 5);
        write_map_len(&mut out, self.entries.len());
        for (k, v) in &self.entries {
            out.extend_from_slice(k);
            out.extend_from_slice(v);
        }
        out
    }
}

/// `s` as a msgpack string.
pub fn encode_str(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 5);
    write_str(&mut out, s);
    out
}

/// Append `s` to `out` as a msgpack string.
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    // Writing into a Vec cannot fail.
    let _ = rmp::encode::write_str_len(out, s.len() as u32);
    out.extend_from_slice(s);
}

/// Append a msgpack map header of `len` entries to `out`.
pub fn write_map_len(out: &mut Vec<u8>, len: usize) {
    let _ = rmp::encode::write_map_len(out, len as u32);
}

/// `(entries, header length)` of the msgpack map at the start of `body`.
pub fn map_header(body: &[u8]) -> Option<(usize, usize)> {
    match Marker::from_u8(*body.first()?) {
        Marker::FixMap(n) => Some((n as usize, 1)),
        Marker::Map16 => Some((be(body.get(1..3)?), 3)),
        Marker::Map32 => Some((be(body.get(1..5)?), 5)),
        _ => None,
    }
}

/// The map `body` with `count` encoded key/value pairs `entries` appended after its own, without
/// decoding it; `None` when `body` is not a msgpack map.
pub fn append_entries(body: &[u8], entries: &[u8], count: usize) -> Option<Vec<u8>> {
    let (own, header) = map_header(body)?;
    let mut out = Vec::with_capacity(body.len() + entries.len() + 5);
    write_map_len(&mut out, own + count);
    out.extend_from_slice(&body[header..]);
    out.extend_from_slice(entries);
    Some(out)
}

/// Append a msgpack array header of `len` items to `out`.
pub fn write_array_len(out: &mut Vec<u8>, len: usize) {
    let _ = rmp::encode::write_array_len(out, len as u32);
}

/// The payload of a msgpack string (`None` for any other type, binaries included).
pub fn str_only(value: &[u8]) -> Option<&[u8]> {
    match Marker::from_u8(*value.first()?) {
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => str_or_bin(value),
        _ => None,
    }
}

/// The payload of a msgpack string or binary.
pub fn str_or_bin(value: &[u8]) -> Option<&[u8]> {
    crate::event::json::str_payload(value)
}

/// The msgpack boolean in `value`.
pub fn as_bool(value: &[u8]) -> Option<bool> {
    match value.first()? {
        0xc3 => Some(true),
        0xc2 => Some(false),
        _ => None,
    }
}

/// The value of `name` in the msgpack map `map` (first occurrence).
pub fn map_get<'m>(map: &'m [u8], name: &[u8]) -> Option<&'m [u8]> {
    map_entries(map)
        .ok()?
        .map_while(Result::ok)
        .find(|(k, _)| str_or_bin(k) == Some(name))
        .map(|(_, v)| v)
}

/// Item `index` of the msgpack array `array`.
pub fn array_get(array: &[u8], index: usize) -> Option<&[u8]> {
    let (len, mut at) = match Marker::from_u8(*array.first()?) {
        Marker::FixArray(n) => (n as usize, 1),
        Marker::Array16 => (be(array.get(1..3)?), 3),
        Marker::Array32 => (be(array.get(1..5)?), 5),
        _ => return None,
    };
    if index >= len {
        return None;
    }
    for _ in 0..index {
        at += skip_value(array.get(at..)?).ok()?;
    }
    let rest = array.get(at..)?;
    let n = skip_value(rest).ok()?;
    Some(&rest[..n])
}

fn be(bytes: &[u8]) -> usize {
    bytes.iter().fold(0usize, |n, b| (n << 8) | *b as usize)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A msgpack body from JSON (test helper shared by the filters' tests).
    pub(crate) fn body(v: serde_json::Value) -> Vec<u8> {
        rmp_serde::to_vec_named(&v).unwrap()
    }

    /// The JSON text of a msgpack body (test helper).
    pub(crate) fn json(body: &[u8]) -> String {
        crate::event::json::to_json(body).unwrap()
    }

    #[test]
    fn edits_keep_untouched_values_byte_for_byte() {
        let b = body(serde_json::json!({"log": "x", "n": 1.5, "nested": {"a": [1, 2]}}));
        let mut r = RawRecord::parse(&b).unwrap();
        assert_eq!(r.encode(), b);
        assert_eq!(r.position(b"n"), Some(1));
        assert_eq!(r.count(b"log"), 1);
        r.retain_keys(|k| k != Some(b"n"));
        r.push_str(b"k", b"v");
        assert_eq!(
            json(&r.encode()),
            r#"{"log":"x","nested":{"a":[1,2]},"k":"v"}"#
        );
        let nested = r.entries[1].1.clone();
        assert_eq!(
            array_get(map_get(&nested, b"a").unwrap(), 1),
            Some(&[2u8][..])
        );
        assert_eq!(array_get(map_get(&nested, b"a").unwrap(), 2), None);
        assert!(RawRecord::parse(&body(serde_json::json!([1]))).is_none());
        assert!(RawRecord::parse(&b[..b.len() - 1]).is_none());
    }

    #[test]
    fn a_map_growing_past_fifteen_entries_gets_a_wider_header() {
        let mut r = RawRecord::default();
        for i in 0..20 {
            r.push_str(format!("k{i}").as_bytes(), b"v");
        }
        let encoded = r.encode();
        assert_eq!(encoded[0], 0xde);
        assert_eq!(RawRecord::parse(&encoded).unwrap().entries.len(), 20);
    }
}
