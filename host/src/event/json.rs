//! msgpack → JSON, streaming: one pass over the record's bytes, no intermediate values.
//!
//! Strings and binaries become JSON strings with each byte of invalid UTF-8 mapped to a private-use
//! code point, U+E000 + the byte ([`push_utf8_mapped`]), as Fluent Bit does; map keys that
//! are not strings are written as their JSON text in a string; non-finite floats become `null`;
//! an EventTime ext becomes fractional seconds; other extension types become `null`.
//!
//! Compared with Fluent Bit's `flb_msgpack_to_json` (what its AWS outputs send), the JSON is the
//! same value: same keys in the same order, bin values as strings, nested maps and arrays as
//! is, integer-valued floats with a `.0`. The differences are only where Fluent Bit's text is
//! not valid JSON or loses data: non-ASCII text stays UTF-8 instead of `\uXXXX` escapes (1.9
//! writes 5-digit escapes above U+FFFF), a truncated UTF-8 sequence at the end of a string is
//! mapped like any other invalid byte instead of being dropped, `\a`/`\v` become
//! `\u0007`/`\u000b`, non-string keys are quoted, and an EventTime is a number instead of
//! `"\x00…"`. [`write_json_stats`] reports the strings that held invalid UTF-8 so callers can
//! count them.
//!
//! The mapping is Fluent Bit's (`flb_utils_write_str`, `FLB_UTILS_FRAGMENT_PRIVATE_BLOCK_DESCRIPTOR`
//! 0xE0): byte 0xFF becomes U+E0FF, so the original bytes can be recovered from the JSON
//! ([`unmap_utf8`]), unlike with U+FFFD.
//!
//! [`map_entries`], [`skip_value`] and [`str_payload`] let callers pick single keys of a record
//! (`log_key`, `data_keys`, templates) without decoding the rest.

use rmp::Marker;
use std::fmt::Write as _;

/// Why a body could not be rendered as JSON.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JsonError {
    /// The msgpack ended inside a value.
    #[error("truncated msgpack")]
    Truncated,
    /// A reserved marker byte (0xc1).
    #[error("invalid msgpack marker 0x{0:02x}")]
    Reserved(u8),
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("msgpack nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// [`map_entries`] was given something other than a map.
    #[error("the record is not a msgpack map")]
    NotAMap,
}

/// Deepest nesting rendered; deeper input is refused rather than risking the stack.
pub const MAX_DEPTH: usize = msgpack_skip::MAX_DEPTH;

/// Append the JSON text of the single msgpack value at the start of `msgpack` to `out`.
/// Returns the number of input bytes consumed.
pub fn write_json(msgpack: &[u8], out: &mut String) -> Result<usize, JsonError> {
    write_json_stats(msgpack, out).map(|stats| stats.consumed)
}

/// What [`write_json_stats`] saw while rendering.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JsonStats {
    /// Input bytes consumed (the length of the msgpack value).
    pub consumed: usize,
    /// Strings, binaries and keys that held invalid UTF-8 (rendered with the private-use
    /// mapping).
    pub invalid_utf8_strings: usize,
}

/// [`write_json`], also reporting how many strings held invalid UTF-8.
pub fn write_json_stats(msgpack: &[u8], out: &mut String) -> Result<JsonStats, JsonError> {
    let mut r = Reader {
        buf: msgpack,
        pos: 0,
        invalid_utf8: 0,
    };
    r.value(out, 0)?;
    Ok(JsonStats {
        consumed: r.pos,
        invalid_utf8_strings: r.invalid_utf8,
    })
}

/// The length in bytes of the single msgpack value at the start of `msgpack`.
pub fn skip_value(msgpack: &[u8]) -> Result<usize, JsonError> {
    msgpack_skip::skip_value(msgpack, 0, MAX_DEPTH).map_err(|e| match e {
        msgpack_skip::SkipError::Truncated => JsonError::Truncated,
        msgpack_skip::SkipError::Invalid { .. } => JsonError::Reserved(0xc1),
        msgpack_skip::SkipError::TooDeep => JsonError::TooDeep,
    })
}

/// The payload of a msgpack str or bin value (`None` for any other type).
pub fn str_payload(value: &[u8]) -> Option<&[u8]> {
    let mut r = Reader {
        buf: value,
        pos: 0,
        invalid_utf8: 0,
    };
    let n = match Marker::from_u8(r.u8().ok()?) {
        Marker::FixStr(n) => n as usize,
        Marker::Str8 | Marker::Bin8 => r.len(1).ok()?,
        Marker::Str16 | Marker::Bin16 => r.len(2).ok()?,
        Marker::Str32 | Marker::Bin32 => r.len(4).ok()?,
        _ => return None,
    };
    r.take(n).ok()
}

/// The entries of the msgpack map at the start of `msgpack`, as raw `(key, value)` msgpack
/// slices in order. Errors if the value is not a map; the iterator yields an error (and then
/// stops) if an entry is malformed.
pub fn map_entries(msgpack: &[u8]) -> Result<MapEntries<'_>, JsonError> {
    let mut r = Reader {
        buf: msgpack,
        pos: 0,
        invalid_utf8: 0,
    };
    let n = match Marker::from_u8(r.u8()?) {
        Marker::FixMap(n) => n as usize,
        Marker::Map16 => r.len(2)?,
        Marker::Map32 => r.len(4)?,
        _ => return Err(JsonError::NotAMap),
    };
    Ok(MapEntries {
        buf: msgpack,
        pos: r.pos,
        left: n,
    })
}

/// The items of the msgpack array at the start of `msgpack`, as raw msgpack slices in order.
/// `None` if the value is not an array; the iterator yields an error (and then stops) if an item
/// is malformed.
pub fn array_items(msgpack: &[u8]) -> Option<ArrayItems<'_>> {
    let mut r = Reader {
        buf: msgpack,
        pos: 0,
        invalid_utf8: 0,
    };
    let n = match Marker::from_u8(r.u8().ok()?) {
        Marker::FixArray(n) => n as usize,
        Marker::Array16 => r.len(2).ok()?,
        Marker::Array32 => r.len(4).ok()?,
        _ => return None,
    };
    Some(ArrayItems {
        buf: msgpack,
        pos: r.pos,
        left: n,
    })
}

/// Iterator of [`array_items`].
pub struct ArrayItems<'a> {
    buf: &'a [u8],
    pos: usize,
    left: usize,
}

impl<'a> Iterator for ArrayItems<'a> {
    type Item = Result<&'a [u8], JsonError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        match skip_value(rest) {
            Ok(n) => {
                self.pos += n;
                Some(Ok(&rest[..n]))
            }
            Err(e) => {
                self.left = 0;
                Some(Err(e))
            }
        }
    }
}

/// Iterator of [`map_entries`].
pub struct MapEntries<'a> {
    buf: &'a [u8],
    pos: usize,
    left: usize,
}

impl<'a> Iterator for MapEntries<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), JsonError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let entry = skip_value(rest).and_then(|k| Ok((k, skip_value(&rest[k..])?)));
        match entry {
            Ok((k, v)) => {
                self.pos += k + v;
                Some(Ok((&rest[..k], &rest[k..k + v])))
            }
            Err(e) => {
                self.left = 0;
                Some(Err(e))
            }
        }
    }
}

/// Append `bytes` to `out` as a JSON string (quoted, escaped, invalid UTF-8 mapped).
/// Returns whether anything had to be mapped.
pub fn write_json_string(out: &mut String, bytes: &[u8]) -> bool {
    string(out, bytes)
}

/// The JSON text of one msgpack value.
pub fn to_json(msgpack: &[u8]) -> Result<String, JsonError> {
    let mut out = String::with_capacity(msgpack.len() + msgpack.len() / 4);
    write_json(msgpack, &mut out)?;
    Ok(out)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    invalid_utf8: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], JsonError> {
        let end = self.pos.checked_add(n).ok_or(JsonError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(JsonError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, JsonError> {
        Ok(self.take(1)?[0])
    }
    fn be<const N: usize>(&mut self) -> Result<[u8; N], JsonError> {
        Ok(self.take(N)?.try_into().unwrap())
    }
    fn len(&mut self, width: usize) -> Result<usize, JsonError> {
        Ok(match width {
            1 => self.u8()? as usize,
            2 => u16::from_be_bytes(self.be()?) as usize,
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }

    fn value(&mut self, out: &mut String, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        let marker = Marker::from_u8(self.u8()?);
        match marker {
            Marker::Null => out.push_str("null"),
            Marker::True => out.push_str("true"),
            Marker::False => out.push_str("false"),
            Marker::FixPos(v) => write!(out, "{v}").unwrap(),
            Marker::FixNeg(v) => write!(out, "{v}").unwrap(),
            Marker::U8 => write!(out, "{}", self.u8()?).unwrap(),
            Marker::U16 => write!(out, "{}", u16::from_be_bytes(self.be()?)).unwrap(),
            Marker::U32 => write!(out, "{}", u32::from_be_bytes(self.be()?)).unwrap(),
            Marker::U64 => write!(out, "{}", u64::from_be_bytes(self.be()?)).unwrap(),
            Marker::I8 => write!(out, "{}", self.u8()? as i8).unwrap(),
            Marker::I16 => write!(out, "{}", i16::from_be_bytes(self.be()?)).unwrap(),
            Marker::I32 => write!(out, "{}", i32::from_be_bytes(self.be()?)).unwrap(),
            Marker::I64 => write!(out, "{}", i64::from_be_bytes(self.be()?)).unwrap(),
            Marker::F32 => float(out, f32::from_be_bytes(self.be()?) as f64),
            Marker::F64 => float(out, f64::from_be_bytes(self.be()?)),
            Marker::FixStr(n) => self.string(out, n as usize)?,
            Marker::Str8 | Marker::Bin8 => {
                let n = self.len(1)?;
                self.string(out, n)?
            }
            Marker::Str16 | Marker::Bin16 => {
                let n = self.len(2)?;
                self.string(out, n)?
            }
            Marker::Str32 | Marker::Bin32 => {
                let n = self.len(4)?;
                self.string(out, n)?
            }
            Marker::FixArray(n) => self.array(out, n as usize, depth)?,
            Marker::Array16 => {
                let n = self.len(2)?;
                self.array(out, n, depth)?
            }
            Marker::Array32 => {
                let n = self.len(4)?;
                self.array(out, n, depth)?
            }
            Marker::FixMap(n) => self.map(out, n as usize, depth)?,
            Marker::Map16 => {
                let n = self.len(2)?;
                self.map(out, n, depth)?
            }
            Marker::Map32 => {
                let n = self.len(4)?;
                self.map(out, n, depth)?
            }
            Marker::FixExt1 => self.ext(out, 1)?,
            Marker::FixExt2 => self.ext(out, 2)?,
            Marker::FixExt4 => self.ext(out, 4)?,
            Marker::FixExt8 => self.ext(out, 8)?,
            Marker::FixExt16 => self.ext(out, 16)?,
            Marker::Ext8 => {
                let n = self.len(1)?;
                self.ext(out, n)?
            }
            Marker::Ext16 => {
                let n = self.len(2)?;
                self.ext(out, n)?
            }
            Marker::Ext32 => {
                let n = self.len(4)?;
                self.ext(out, n)?
            }
            Marker::Reserved => return Err(JsonError::Reserved(0xc1)),
        }
        Ok(())
    }

    fn string(&mut self, out: &mut String, n: usize) -> Result<(), JsonError> {
        let bytes = self.take(n)?;
        if string(out, bytes) {
            self.invalid_utf8 += 1;
        }
        Ok(())
    }

    fn array(&mut self, out: &mut String, n: usize, depth: usize) -> Result<(), JsonError> {
        out.push('[');
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            self.value(out, depth + 1)?;
        }
        out.push(']');
        Ok(())
    }

    fn map(&mut self, out: &mut String, n: usize, depth: usize) -> Result<(), JsonError> {
        out.push('{');
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            let start = out.len();
            self.value(out, depth + 1)?;
            if !out[start..].starts_with('"') {
                // JSON keys must be strings: quote the key's JSON text.
                let key = out.split_off(start);
                string(out, key.as_bytes());
            }
            out.push(':');
            self.value(out, depth + 1)?;
        }
        out.push('}');
        Ok(())
    }

    fn ext(&mut self, out: &mut String, n: usize) -> Result<(), JsonError> {
        let kind = self.u8()? as i8;
        let data = self.take(n)?;
        if kind == 0 && n == 8 {
            let secs = u32::from_be_bytes(data[..4].try_into().unwrap());
            let nanos = u32::from_be_bytes(data[4..].try_into().unwrap());
            write!(out, "{secs}.{nanos:09}").unwrap();
        } else {
            out.push_str("null");
        }
        Ok(())
    }
}

fn float(out: &mut String, v: f64) {
    if v.is_finite() {
        write!(out, "{v}").unwrap();
        if v.fract() == 0.0 && v.abs() < 1e16 {
            out.push_str(".0");
        }
    } else {
        out.push_str("null");
    }
}

/// The first code point of the private-use block invalid UTF-8 bytes are mapped into.
pub const INVALID_BYTE_BASE: u32 = 0xE000;

/// The code point an invalid UTF-8 byte is written as: U+E000 + the byte (U+E080…U+E0FF).
pub fn invalid_byte_char(byte: u8) -> char {
    char::from_u32(INVALID_BYTE_BASE | u32::from(byte)).expect("U+E000..U+E0FF are chars")
}

/// Append `bytes` to `out` as text, unescaped, each byte of invalid UTF-8 mapped to
/// [`invalid_byte_char`]. Returns whether anything was mapped.
pub fn push_utf8_mapped(out: &mut String, bytes: &[u8]) -> bool {
    let mut mapped = false;
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        mapped |= map_invalid(out, chunk.invalid());
    }
    mapped
}

/// The bytes `text` was written from by [`push_utf8_mapped`] or a JSON string of this module:
/// U+E080…U+E0FF back to the bytes 0x80…0xFF. (Text that held those code points itself cannot
/// be told apart, as with Fluent Bit.)
pub fn unmap_utf8(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match u32::from(c) {
            n @ 0xE080..=0xE0FF => out.push((n - INVALID_BYTE_BASE) as u8),
            _ => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

fn map_invalid(out: &mut String, invalid: &[u8]) -> bool {
    for b in invalid {
        out.push(invalid_byte_char(*b));
    }
    !invalid.is_empty()
}

/// Write `bytes` as a JSON string, mapping invalid UTF-8; true if anything was mapped.
fn string(out: &mut String, bytes: &[u8]) -> bool {
    out.push('"');
    let mut mapped = false;
    for chunk in bytes.utf8_chunks() {
        escape(out, chunk.valid());
        mapped |= map_invalid(out, chunk.invalid());
    }
    out.push('"');
    mapped
}

fn escape(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            write!(out, "\\u{b:04x}").unwrap();
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp(v: &rmpv::Value) -> Vec<u8> {
        let mut b = Vec::new();
        rmpv::encode::write_value(&mut b, v).unwrap();
        b
    }

    #[test]
    fn renders_a_firelens_record_as_json_that_serde_reads_back() {
        use rmpv::Value as V;
        let v = V::Map(vec![
            (V::from("container_id"), V::from("abc")),
            (
                V::from("log"),
                V::from("line with \"quotes\" and \\ and \n and \u{1}"),
            ),
            (V::from("n"), V::from(-5)),
            (V::from("big"), V::from(u64::MAX)),
            (V::from("f"), V::from(1.5)),
            (
                V::from("nested"),
                V::Map(vec![(
                    V::from("a"),
                    V::Array(vec![V::Nil, V::Boolean(true)]),
                )]),
            ),
        ]);
        let json = to_json(&mp(&v)).unwrap();
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["log"], "line with \"quotes\" and \\ and \n and \u{1}");
        assert_eq!(back["n"], -5);
        assert_eq!(back["big"], u64::MAX);
        assert_eq!(back["f"], 1.5);
        assert_eq!(back["nested"]["a"][1], true);
    }

    #[test]
    fn invalid_utf8_is_mapped_to_private_use_code_points_reversibly() {
        // {"log": <str with 0xff>} and a bin value
        let bytes = [
            0x82, 0xa3, b'l', b'o', b'g', 0xa3, b'a', 0xff, b'b', 0xa1, b'k', 0xc4, 0x02, 0xfe,
            b'x',
        ];
        let json = to_json(&bytes).unwrap();
        assert_eq!(json, "{\"log\":\"a\u{E0FF}b\",\"k\":\"\u{E0FE}x\"}");
        // As Fluent Bit: each byte of a broken sequence (here a lead byte and one continuation
        // byte cut short by 'A'), an overlong encoding, a lone continuation byte and a sequence
        // cut by the end of the string.
        let raw: &[u8] = b"\xe2\x82A\xc0\x80 \x80\xf0\x9f\x98";
        let mut out = String::new();
        assert!(push_utf8_mapped(&mut out, raw));
        assert_eq!(
            out,
            "\u{E0E2}\u{E082}A\u{E0C0}\u{E080} \u{E080}\u{E0F0}\u{E09F}\u{E098}"
        );
        assert_eq!(unmap_utf8(&out), raw);
        let text = "é and 😀 are kept";
        let mut out = String::new();
        assert!(!push_utf8_mapped(&mut out, text.as_bytes()));
        assert_eq!(out, text);
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(unmap_utf8(back["log"].as_str().unwrap()), b"a\xffb");
    }

    #[test]
    fn non_string_keys_and_event_time() {
        // {1: EventTime(5, 7)}
        let bytes = [0x81, 0x01, 0xd7, 0x00, 0, 0, 0, 5, 0, 0, 0, 7];
        assert_eq!(to_json(&bytes).unwrap(), "{\"1\":5.000000007}");
    }

    #[test]
    fn stats_count_strings_with_invalid_utf8() {
        let bytes = [
            0x82, 0xa3, b'l', b'o', b'g', 0xa3, b'a', 0xff, b'b', 0xa1, b'k', 0xc4, 0x02, 0xfe,
            b'x',
        ];
        let mut out = String::new();
        let stats = write_json_stats(&bytes, &mut out).unwrap();
        assert_eq!(
            stats,
            JsonStats {
                consumed: bytes.len(),
                invalid_utf8_strings: 2
            }
        );
        let clean = mp(&rmpv::Value::from("fine"));
        assert_eq!(
            write_json_stats(&clean, &mut String::new())
                .unwrap()
                .invalid_utf8_strings,
            0
        );
    }

    #[test]
    fn map_entries_skip_and_str_payload_pick_single_keys() {
        use rmpv::Value as V;
        let v = V::Map(vec![
            (
                V::from("a"),
                V::Map(vec![(
                    V::from("x"),
                    V::Array(vec![V::from(1), V::from(2.5), V::Nil]),
                )]),
            ),
            (V::from("log"), V::from("hello")),
            (V::from("bin"), V::Binary(vec![1, 2, 3])),
            (V::from("t"), V::Ext(0, vec![0; 8])),
        ]);
        let bytes = mp(&v);
        assert_eq!(skip_value(&bytes).unwrap(), bytes.len());
        let entries: Vec<_> = map_entries(&bytes).unwrap().map(Result::unwrap).collect();
        assert_eq!(entries.len(), 4);
        assert_eq!(str_payload(entries[1].0), Some(&b"log"[..]));
        assert_eq!(str_payload(entries[1].1), Some(&b"hello"[..]));
        assert_eq!(str_payload(entries[2].1), Some(&[1u8, 2, 3][..]));
        assert_eq!(str_payload(entries[0].1), None);
        assert_eq!(to_json(entries[0].1).unwrap(), "{\"x\":[1,2.5,null]}");
        assert_eq!(
            map_entries(&mp(&V::from(1))).err(),
            Some(JsonError::NotAMap)
        );
        let truncated = &bytes[..bytes.len() - 3];
        assert!(map_entries(truncated).unwrap().any(|e| e.is_err()));
    }

    #[test]
    fn truncated_and_deep_input_are_errors() {
        assert_eq!(to_json(&[0x82, 0xa1, b'a']), Err(JsonError::Truncated));
        assert_eq!(to_json(&[0xc1]), Err(JsonError::Reserved(0xc1)));
        let deep = vec![0x91; MAX_DEPTH + 10];
        assert_eq!(to_json(&deep), Err(JsonError::TooDeep));
    }
}
