//! Borrowed views of msgpack values: [`Value`], [`Map`] and [`Array`]. They point into the
//! batch's body buffer (or an edited record's bytes); nothing is decoded until asked for.

use crate::msgpack::{self, DecodeError, Head};
use std::borrow::Cow;
use std::fmt;

/// One msgpack value, borrowed from the bytes it was read from.
///
/// Strings are kept as raw bytes ([`Value::Str`]): log senders put arbitrary bytes in msgpack
/// strings, and a filter must be able to read and write them back without corrupting them.
/// Use [`Value::as_str`] for valid UTF-8 or [`Value::to_str_lossy`] for display.
#[derive(Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// `nil`.
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    /// A 32-bit float.
    F32(f32),
    /// A 64-bit float.
    F64(f64),
    /// A string's bytes (usually, not always, UTF-8).
    Str(&'a [u8]),
    /// Binary data.
    Bin(&'a [u8]),
    /// An array.
    Array(Array<'a>),
    /// A map.
    Map(Map<'a>),
    /// An extension value: type and data (Fluent's EventTime is ext type 0).
    Ext(i8, &'a [u8]),
}

impl<'a> Value<'a> {
    /// Reads the value at `*pos`, advancing past it. Containers are checked (skipped) to find
    /// their extent, so iterating them later cannot fail.
    pub(crate) fn read(buf: &'a [u8], pos: &mut usize) -> Result<Value<'a>, DecodeError> {
        let start = *pos;
        let head = msgpack::read_head(buf, pos)?;
        Ok(match head {
            Head::Nil => Value::Nil,
            Head::Bool(b) => Value::Bool(b),
            Head::Int(i) => Value::Int(i),
            Head::UInt(u) => Value::UInt(u),
            Head::F32(f) => Value::F32(f),
            Head::F64(f) => Value::F64(f),
            Head::Str(s) => Value::Str(s),
            Head::Bin(b) => Value::Bin(b),
            Head::Ext(kind, data) => Value::Ext(kind, data),
            Head::Array(len) => {
                *pos = start;
                msgpack::skip_value(buf, pos)?;
                Value::Array(Array {
                    len,
                    raw: &buf[start..*pos],
                })
            }
            Head::Map(len) => {
                *pos = start;
                msgpack::skip_value(buf, pos)?;
                Value::Map(Map {
                    len,
                    raw: &buf[start..*pos],
                })
            }
        })
    }

    /// Reads a value that must fill `bytes` exactly.
    pub fn from_msgpack(bytes: &'a [u8]) -> Result<Value<'a>, DecodeError> {
        let mut pos = 0;
        let value = Value::read(bytes, &mut pos)?;
        if pos != bytes.len() {
            return Err(DecodeError::TrailingBytes {
                offset: pos,
                extra: bytes.len() - pos,
            });
        }
        Ok(value)
    }

    /// The string, if this is a string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Value::Str(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }

    /// The string (or binary) as text, with invalid UTF-8 replaced by U+FFFD. Borrowed when
    /// the bytes are valid UTF-8.
    pub fn to_str_lossy(&self) -> Option<Cow<'a, str>> {
        self.as_bytes().map(String::from_utf8_lossy)
    }

    /// The raw bytes of a string or binary value.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Str(bytes) | Value::Bin(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The integer, if it fits in `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The integer, if it is one and not negative.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Int(i) => u64::try_from(i).ok(),
            Value::UInt(u) => Some(u),
            _ => None,
        }
    }

    /// Any number, as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(i) => Some(i as f64),
            Value::UInt(u) => Some(u as f64),
            Value::F32(f) => Some(f64::from(f)),
            Value::F64(f) => Some(f),
            _ => None,
        }
    }

    /// The boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The map.
    pub fn as_map(&self) -> Option<Map<'a>> {
        match *self {
            Value::Map(map) => Some(map),
            _ => None,
        }
    }

    /// The array.
    pub fn as_array(&self) -> Option<Array<'a>> {
        match *self {
            Value::Array(array) => Some(array),
            _ => None,
        }
    }

    /// Whether this is `nil`.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// Appends this value's msgpack encoding to `out` (containers are copied as they are).
    pub fn write_msgpack(&self, out: &mut Vec<u8>) {
        match *self {
            Value::Nil => msgpack::write_nil(out),
            Value::Bool(b) => msgpack::write_bool(out, b),
            Value::Int(i) => msgpack::write_i64(out, i),
            Value::UInt(u) => msgpack::write_u64(out, u),
            Value::F32(f) => {
                out.push(0xca);
                out.extend_from_slice(&f.to_be_bytes());
            }
            Value::F64(f) => msgpack::write_f64(out, f),
            Value::Str(bytes) => msgpack::write_str(out, bytes),
            Value::Bin(bytes) => msgpack::write_bin(out, bytes),
            Value::Array(array) => out.extend_from_slice(array.raw),
            Value::Map(map) => out.extend_from_slice(map.raw),
            Value::Ext(kind, data) => {
                match data.len() {
                    1 => out.push(0xd4),
                    2 => out.push(0xd5),
                    4 => out.push(0xd6),
                    8 => out.push(0xd7),
                    16 => out.push(0xd8),
                    len if len <= 0xff => {
                        out.push(0xc7);
                        out.push(len as u8);
                    }
                    len if len <= 0xffff => {
                        out.push(0xc8);
                        out.extend_from_slice(&(len as u16).to_be_bytes());
                    }
                    len => {
                        out.push(0xc9);
                        out.extend_from_slice(&(len as u32).to_be_bytes());
                    }
                }
                out.push(kind as u8);
                out.extend_from_slice(data);
            }
        }
    }

    /// This value's msgpack encoding.
    pub fn to_msgpack(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_msgpack(&mut out);
        out
    }

    /// Deserializes this value into an owned serde type (through `rmp-serde`); to borrow
    /// from the batch, deserialize a [`Map`] or the whole [`Event`](crate::Event).
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::Error> {
        match self {
            Value::Map(map) => Ok(rmp_serde::from_slice(map.raw)?),
            Value::Array(array) => Ok(rmp_serde::from_slice(array.raw)?),
            scalar => Ok(rmp_serde::from_slice(&scalar.to_msgpack())?),
        }
    }

    /// This value as JSON text (strings lossily decoded).
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        crate::json::write_value_json(&mut out, *self);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

/// A msgpack map, borrowed. Its structure was checked when it was read, so iteration and
/// lookups cannot fail.
#[derive(Clone, Copy, PartialEq)]
pub struct Map<'a> {
    len: u32,
    raw: &'a [u8],
}

impl<'a> Map<'a> {
    /// Reads a map that must fill `bytes` exactly (an event body, for example).
    pub fn from_msgpack(bytes: &'a [u8]) -> Result<Map<'a>, DecodeError> {
        match bytes.first() {
            Some(0x80..=0x8f | 0xde | 0xdf) => {}
            Some(&byte) => return Err(DecodeError::NotAMap { byte }),
            None => return Err(DecodeError::Truncated { offset: 0 }),
        }
        match Value::from_msgpack(bytes)? {
            Value::Map(map) => Ok(map),
            _ => Err(DecodeError::NotAMap { byte: bytes[0] }),
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The map's msgpack encoding, header included.
    pub fn as_msgpack(&self) -> &'a [u8] {
        self.raw
    }

    /// The entries, in order (keys as they are: usually strings).
    pub fn iter(&self) -> MapIter<'a> {
        let mut pos = 0;
        let _ = msgpack::read_head(self.raw, &mut pos);
        MapIter {
            raw: self.raw,
            pos,
            remaining: self.len,
        }
    }

    /// The value under the string (or binary) key `key`: the first one, if the map repeats it.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.iter()
            .find(|(k, _)| k.as_bytes() == Some(key.as_bytes()))
            .map(|(_, value)| value)
    }

    /// Deserializes the map into a serde type (through `rmp-serde`).
    pub fn deserialize<T: serde::Deserialize<'a>>(&self) -> Result<T, crate::Error> {
        Ok(rmp_serde::from_slice(self.raw)?)
    }
}

impl<'a> IntoIterator for Map<'a> {
    type Item = (Value<'a>, Value<'a>);
    type IntoIter = MapIter<'a>;
    fn into_iter(self) -> MapIter<'a> {
        self.iter()
    }
}

impl fmt::Debug for Map<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Value::Map(*self), f)
    }
}

/// The entries of a [`Map`].
pub struct MapIter<'a> {
    raw: &'a [u8],
    pos: usize,
    remaining: u32,
}

impl<'a> Iterator for MapIter<'a> {
    type Item = (Value<'a>, Value<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let key = Value::read(self.raw, &mut self.pos).ok()?;
        let value = Value::read(self.raw, &mut self.pos).ok()?;
        Some((key, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}

/// A msgpack array, borrowed. Its structure was checked when it was read.
#[derive(Clone, Copy, PartialEq)]
pub struct Array<'a> {
    len: u32,
    raw: &'a [u8],
}

impl<'a> Array<'a> {
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The array's msgpack encoding, header included.
    pub fn as_msgpack(&self) -> &'a [u8] {
        self.raw
    }

    /// The elements, in order.
    pub fn iter(&self) -> ArrayIter<'a> {
        let mut pos = 0;
        let _ = msgpack::read_head(self.raw, &mut pos);
        ArrayIter {
            raw: self.raw,
            pos,
            remaining: self.len,
        }
    }

    /// The element at `index`.
    pub fn get(&self, index: usize) -> Option<Value<'a>> {
        self.iter().nth(index)
    }
}

impl<'a> IntoIterator for Array<'a> {
    type Item = Value<'a>;
    type IntoIter = ArrayIter<'a>;
    fn into_iter(self) -> ArrayIter<'a> {
        self.iter()
    }
}

impl fmt::Debug for Array<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Value::Array(*self), f)
    }
}

/// The elements of an [`Array`].
pub struct ArrayIter<'a> {
    raw: &'a [u8],
    pos: usize,
    remaining: u32,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Value<'a>;
    fn next(&mut self) -> Option<Value<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        Value::read(self.raw, &mut self.pos).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}

/// Looks `key` up in the map encoded at the start of `raw` without checking the whole map
/// first: entries are skipped until the key is found. `None` when absent, when `raw` is not a
/// map, or when the map is malformed before the key.
pub(crate) fn lazy_map_get<'a>(raw: &'a [u8], key: &[u8]) -> Option<Value<'a>> {
    let mut pos = 0;
    let Head::Map(len) = msgpack::read_head(raw, &mut pos).ok()? else {
        return None;
    };
    for _ in 0..len {
        let key_matches = msgpack::read_key(raw, &mut pos).ok()? == Some(key);
        if key_matches {
            return Value::read(raw, &mut pos).ok();
        }
        msgpack::skip_value(raw, &mut pos).ok()?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encode(value: &serde_json::Value) -> Vec<u8> {
        rmp_serde::to_vec(value).unwrap()
    }

    #[test]
    fn map_lookup_iteration_and_nesting() {
        let body = encode(
            &json!({"log": "hello", "n": -5, "k": {"labels": {"app": "web"}}, "a": [1, "two"]}),
        );
        let map = Map::from_msgpack(&body).unwrap();
        assert_eq!(map.len(), 4);
        assert_eq!(map.get("log").unwrap().as_str(), Some("hello"));
        assert_eq!(map.get("n").unwrap().as_i64(), Some(-5));
        let labels = map
            .get("k")
            .unwrap()
            .as_map()
            .unwrap()
            .get("labels")
            .unwrap()
            .as_map()
            .unwrap();
        assert_eq!(labels.get("app").unwrap().as_str(), Some("web"));
        let array = map.get("a").unwrap().as_array().unwrap();
        assert_eq!(array.len(), 2);
        assert_eq!(array.get(1).unwrap().as_str(), Some("two"));
        let keys: Vec<_> = map.iter().map(|(k, _)| k.as_str().unwrap()).collect();
        // serde_json (without preserve_order) writes object keys sorted.
        assert_eq!(keys, ["a", "k", "log", "n"]);
        assert_eq!(lazy_map_get(&body, b"a"), map.get("a"));
        assert_eq!(lazy_map_get(&body, b"missing"), None);
    }

    #[test]
    fn values_write_back_byte_for_byte() {
        let body = encode(
            &json!({"s": "x", "f": 1.5, "big": u64::MAX, "neg": -300, "nested": {"a": [null, true]}}),
        );
        let map = Map::from_msgpack(&body).unwrap();
        let mut rebuilt = Vec::new();
        msgpack::write_map_header(&mut rebuilt, map.len() as u32);
        for (key, value) in map.iter() {
            key.write_msgpack(&mut rebuilt);
            value.write_msgpack(&mut rebuilt);
        }
        assert_eq!(rebuilt, body);
    }

    #[test]
    fn non_utf8_strings_are_kept_and_read_lossily() {
        let mut body = vec![0x81];
        msgpack::write_str(&mut body, b"log");
        msgpack::write_str(&mut body, b"ok \xff\xfe bytes");
        let value = lazy_map_get(&body, b"log").unwrap();
        assert_eq!(value.as_str(), None);
        assert_eq!(value.as_bytes(), Some(&b"ok \xff\xfe bytes"[..]));
        assert_eq!(value.to_str_lossy().unwrap(), "ok \u{fffd}\u{fffd} bytes");
    }

    #[test]
    fn deserializes_into_serde_types() {
        #[derive(serde::Deserialize, PartialEq, Debug)]
        struct Labels<'a> {
            app: &'a str,
            tier: String,
        }
        let body = encode(&json!({"labels": {"app": "web", "tier": "front"}, "n": [1, 2]}));
        let labels: Labels<'_> = lazy_map_get(&body, b"labels")
            .unwrap()
            .as_map()
            .unwrap()
            .deserialize()
            .unwrap();
        assert_eq!(
            labels,
            Labels {
                app: "web",
                tier: "front".into()
            }
        );
        let numbers: Vec<u8> = lazy_map_get(&body, b"n").unwrap().deserialize().unwrap();
        assert_eq!(numbers, [1, 2]);
    }
}
