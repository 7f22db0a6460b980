//! A bounds-checked msgpack reader and writer over byte slices: just what record views need
//! (read one header, skip one value, write scalars and headers). No allocation while reading.
//! The writers are public for plugins that build msgpack bodies themselves.
//!
//! Format reference: <https://github.com/msgpack/msgpack/blob/master/spec.md>. Skipping is the
//! router's own skipper (`msgpack_skip`), shared so both sides agree on where a value ends.

use msgpack_skip::SkipError;

/// A body (or a part of one) that is not well-formed msgpack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end in the middle of a value.
    #[error("msgpack data ends early: a value at byte {offset} needs more bytes")]
    Truncated {
        /// Offset of the value that does not fit.
        offset: usize,
    },
    /// A byte that msgpack never uses as a marker (`0xc1`).
    #[error("byte {byte:#04x} at offset {offset} is not a msgpack marker")]
    InvalidMarker {
        /// The byte.
        byte: u8,
        /// Its offset.
        offset: usize,
    },
    /// Containers nest deeper than [`MAX_DEPTH`] levels.
    #[error("the msgpack value at byte {offset} nests deeper than {MAX_DEPTH} levels")]
    TooDeep {
        /// Offset of the value.
        offset: usize,
    },
    /// An event body is not a msgpack map.
    #[error("the event body is not a msgpack map (it starts with byte {byte:#04x})")]
    NotAMap {
        /// The first byte of the body.
        byte: u8,
    },
    /// Bytes follow the one value the data should hold.
    #[error("{extra} bytes follow the msgpack value that ends at byte {offset}")]
    TrailingBytes {
        /// Where the value ends.
        offset: usize,
        /// How many bytes follow it.
        extra: usize,
    },
}

/// One msgpack token: a scalar with its payload, or the header of a container (whose
/// elements follow as further tokens: `2 × n` for a map, key then value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Head<'a> {
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
    /// A string's bytes.
    Str(&'a [u8]),
    /// Binary data.
    Bin(&'a [u8]),
    /// An extension value: type and data.
    Ext(i8, &'a [u8]),
    /// An array header with its element count.
    Array(u32),
    /// A map header with its entry count.
    Map(u32),
}

#[inline]
fn take<'a>(
    buf: &'a [u8],
    pos: &mut usize,
    len: usize,
    start: usize,
) -> Result<&'a [u8], DecodeError> {
    let end = pos
        .checked_add(len)
        .filter(|&end| end <= buf.len())
        .ok_or(DecodeError::Truncated { offset: start })?;
    let bytes = &buf[*pos..end];
    *pos = end;
    Ok(bytes)
}

#[inline]
fn be<const N: usize>(buf: &[u8], pos: &mut usize, start: usize) -> Result<[u8; N], DecodeError> {
    let bytes = take(buf, pos, N, start)?;
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Ok(out)
}

#[inline]
fn length(buf: &[u8], pos: &mut usize, width: usize, start: usize) -> Result<usize, DecodeError> {
    Ok(match width {
        1 => usize::from(be::<1>(buf, pos, start)?[0]),
        2 => usize::from(u16::from_be_bytes(be::<2>(buf, pos, start)?)),
        _ => u32::from_be_bytes(be::<4>(buf, pos, start)?) as usize,
    })
}

/// Reads the token at `*pos` (a scalar with its payload, or a container header), advancing
/// `*pos` past it: the building block of a streaming walk over a body.
pub fn read_head<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Head<'a>, DecodeError> {
    let start = *pos;
    // Short strings, the bulk of record keys and values, without the general dispatch.
    if let Some(&marker @ 0xa0..=0xbf) = buf.get(start) {
        let end = start + 1 + usize::from(marker & 0x1f);
        if end <= buf.len() {
            *pos = end;
            return Ok(Head::Str(&buf[start + 1..end]));
        }
    }
    let marker = *buf
        .get(start)
        .ok_or(DecodeError::Truncated { offset: start })?;
    *pos += 1;
    Ok(match marker {
        0x00..=0x7f => Head::Int(i64::from(marker)),
        0x80..=0x8f => Head::Map(u32::from(marker & 0x0f)),
        0x90..=0x9f => Head::Array(u32::from(marker & 0x0f)),
        0xa0..=0xbf => Head::Str(take(buf, pos, usize::from(marker & 0x1f), start)?),
        0xc0 => Head::Nil,
        0xc1 => {
            *pos = start;
            return Err(DecodeError::InvalidMarker {
                byte: marker,
                offset: start,
            });
        }
        0xc2 => Head::Bool(false),
        0xc3 => Head::Bool(true),
        0xc4..=0xc6 => {
            let len = length(buf, pos, 1 << (marker - 0xc4), start)?;
            Head::Bin(take(buf, pos, len, start)?)
        }
        0xc7..=0xc9 => {
            let len = length(buf, pos, 1 << (marker - 0xc7), start)?;
            let kind = be::<1>(buf, pos, start)?[0] as i8;
            Head::Ext(kind, take(buf, pos, len, start)?)
        }
        0xca => Head::F32(f32::from_be_bytes(be::<4>(buf, pos, start)?)),
        0xcb => Head::F64(f64::from_be_bytes(be::<8>(buf, pos, start)?)),
        0xcc => Head::Int(i64::from(be::<1>(buf, pos, start)?[0])),
        0xcd => Head::Int(i64::from(u16::from_be_bytes(be::<2>(buf, pos, start)?))),
        0xce => Head::Int(i64::from(u32::from_be_bytes(be::<4>(buf, pos, start)?))),
        0xcf => {
            let value = u64::from_be_bytes(be::<8>(buf, pos, start)?);
            i64::try_from(value).map_or(Head::UInt(value), Head::Int)
        }
        0xd0 => Head::Int(i64::from(be::<1>(buf, pos, start)?[0] as i8)),
        0xd1 => Head::Int(i64::from(i16::from_be_bytes(be::<2>(buf, pos, start)?))),
        0xd2 => Head::Int(i64::from(i32::from_be_bytes(be::<4>(buf, pos, start)?))),
        0xd3 => Head::Int(i64::from_be_bytes(be::<8>(buf, pos, start)?)),
        0xd4..=0xd8 => {
            let kind = be::<1>(buf, pos, start)?[0] as i8;
            Head::Ext(kind, take(buf, pos, 1 << (marker - 0xd4), start)?)
        }
        0xd9..=0xdb => {
            let len = length(buf, pos, 1 << (marker - 0xd9), start)?;
            Head::Str(take(buf, pos, len, start)?)
        }
        0xdc => Head::Array(u32::from(u16::from_be_bytes(be::<2>(buf, pos, start)?))),
        0xdd => Head::Array(u32::from_be_bytes(be::<4>(buf, pos, start)?)),
        0xde => Head::Map(u32::from(u16::from_be_bytes(be::<2>(buf, pos, start)?))),
        0xdf => Head::Map(u32::from_be_bytes(be::<4>(buf, pos, start)?)),
        0xe0..=0xff => Head::Int(i64::from(marker as i8)),
    })
}

/// Reads a map key at `*pos`: the bytes of a string or binary key, `None` for any other key
/// (skipped whole, containers included). With [`skip_value`], a walk over a map's entries.
#[inline]
pub fn read_key<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, DecodeError> {
    if let Some(&marker @ 0xa0..=0xbf) = buf.get(*pos) {
        let end = *pos + 1 + usize::from(marker & 0x1f);
        if end <= buf.len() {
            let key = &buf[*pos + 1..end];
            *pos = end;
            return Ok(Some(key));
        }
    }
    let start = *pos;
    match read_head(buf, pos)? {
        Head::Str(key) | Head::Bin(key) => Ok(Some(key)),
        Head::Array(_) | Head::Map(_) => {
            *pos = start;
            skip_value(buf, pos)?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Deepest container nesting [`skip_value`] accepts. The router refuses bodies nested deeper
/// than 128 levels; this is far above, so a body the router passes is never refused here, and
/// it bounds the stack the walk uses.
pub const MAX_DEPTH: usize = 512;

/// Skips the one value at `*pos` (containers included, nested at most [`MAX_DEPTH`] deep),
/// advancing `*pos` past it. A count that cannot fit in the remaining bytes fails early.
#[inline]
pub fn skip_value(buf: &[u8], pos: &mut usize) -> Result<(), DecodeError> {
    let start = *pos;
    *pos = msgpack_skip::skip_value(buf, start, MAX_DEPTH).map_err(|e| match e {
        SkipError::Truncated => DecodeError::Truncated { offset: start },
        SkipError::Invalid { offset } => DecodeError::InvalidMarker {
            byte: buf[offset],
            offset,
        },
        SkipError::TooDeep => DecodeError::TooDeep { offset: start },
    })?;
    Ok(())
}

/// Checks that `bytes` hold exactly one well-formed msgpack map.
pub fn validate_map(bytes: &[u8]) -> Result<(), DecodeError> {
    match bytes.first() {
        Some(0x80..=0x8f | 0xde | 0xdf) => {}
        Some(&byte) => return Err(DecodeError::NotAMap { byte }),
        None => return Err(DecodeError::Truncated { offset: 0 }),
    }
    let mut pos = 0;
    skip_value(bytes, &mut pos)?;
    if pos != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            offset: pos,
            extra: bytes.len() - pos,
        });
    }
    Ok(())
}

/// Appends a map header for `len` entries (the entries follow: key, value, key, …).
pub fn write_map_header(out: &mut Vec<u8>, len: u32) {
    match len {
        0..=15 => out.push(0x80 | len as u8),
        16..=0xffff => {
            out.push(0xde);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdf);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

/// Appends an array header for `len` elements.
pub fn write_array_header(out: &mut Vec<u8>, len: u32) {
    match len {
        0..=15 => out.push(0x90 | len as u8),
        16..=0xffff => {
            out.push(0xdc);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdd);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

/// Writes a msgpack str holding `bytes` as they are (valid UTF-8 or not: senders put
/// arbitrary bytes in str values, and the record keeps them).
pub fn write_str(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.push(0xd9);
        out.push(len as u8);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

/// Appends a msgpack bin holding `bytes`.
pub fn write_bin(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len();
    if len <= 0xff {
        out.push(0xc4);
        out.push(len as u8);
    } else if len <= 0xffff {
        out.push(0xc5);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

/// Appends an integer in its smallest encoding.
pub fn write_i64(out: &mut Vec<u8>, value: i64) {
    if value >= 0 {
        write_u64(out, value as u64);
    } else if value >= -32 {
        out.push(value as i8 as u8);
    } else if value >= i64::from(i8::MIN) {
        out.push(0xd0);
        out.push(value as i8 as u8);
    } else if value >= i64::from(i16::MIN) {
        out.push(0xd1);
        out.extend_from_slice(&(value as i16).to_be_bytes());
    } else if value >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(value as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// Appends an unsigned integer in its smallest encoding.
pub fn write_u64(out: &mut Vec<u8>, value: u64) {
    if value < 0x80 {
        out.push(value as u8);
    } else if value <= 0xff {
        out.push(0xcc);
        out.push(value as u8);
    } else if value <= 0xffff {
        out.push(0xcd);
        out.extend_from_slice(&(value as u16).to_be_bytes());
    } else if value <= 0xffff_ffff {
        out.push(0xce);
        out.extend_from_slice(&(value as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// Appends a 64-bit float.
pub fn write_f64(out: &mut Vec<u8>, value: f64) {
    out.push(0xcb);
    out.extend_from_slice(&value.to_be_bytes());
}

/// Appends a boolean.
pub fn write_bool(out: &mut Vec<u8>, value: bool) {
    out.push(if value { 0xc3 } else { 0xc2 });
}

/// Appends `nil`.
pub fn write_nil(out: &mut Vec<u8>) {
    out.push(0xc0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(value: &serde_json::Value) -> Vec<u8> {
        rmp_serde::to_vec(value).unwrap()
    }

    #[test]
    fn reads_every_integer_width_and_sign() {
        for value in [
            0i64,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            write_i64(&mut out, value);
            assert_eq!(
                read_head(&out, &mut 0).unwrap(),
                Head::Int(value),
                "{value}"
            );
            assert_eq!(rmp_serde::from_slice::<i64>(&out).unwrap(), value);
        }
        let mut out = Vec::new();
        write_u64(&mut out, u64::MAX);
        assert_eq!(read_head(&out, &mut 0).unwrap(), Head::UInt(u64::MAX));
    }

    #[test]
    fn strings_of_every_width_round_trip_through_rmp_serde() {
        for len in [0usize, 31, 32, 255, 256, 65535, 65536] {
            let text = "x".repeat(len);
            let mut out = Vec::new();
            write_str(&mut out, text.as_bytes());
            assert_eq!(rmp_serde::from_slice::<String>(&out).unwrap(), text);
            let mut pos = 0;
            assert_eq!(
                read_head(&out, &mut pos).unwrap(),
                Head::Str(text.as_bytes())
            );
            assert_eq!(pos, out.len());
        }
    }

    #[test]
    fn skips_nested_values_and_reports_truncation() {
        let body = encode(&serde_json::json!({"a": [1, {"b": "c"}, [[]]], "d": null, "e": 1.5}));
        let mut pos = 0;
        skip_value(&body, &mut pos).unwrap();
        assert_eq!(pos, body.len());
        validate_map(&body).unwrap();
        for cut in 0..body.len() {
            assert!(validate_map(&body[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn rejects_huge_counts_without_looping() {
        // An array claiming 2^32-1 elements in a 5-byte buffer fails at once.
        let bytes = [0xdd, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            skip_value(&bytes, &mut 0),
            Err(DecodeError::Truncated { offset: 0 })
        );
    }

    #[test]
    fn validate_map_names_what_is_wrong() {
        assert_eq!(
            validate_map(&[0xc1]),
            Err(DecodeError::NotAMap { byte: 0xc1 })
        );
        assert_eq!(
            validate_map(&[0x92, 1, 2]),
            Err(DecodeError::NotAMap { byte: 0x92 })
        );
        assert_eq!(
            validate_map(&[0x81, 0xa1, b'a', 1, 0]),
            Err(DecodeError::TrailingBytes {
                offset: 4,
                extra: 1
            })
        );
        assert!(matches!(
            validate_map(&[0x82, 0xa1, b'a', 1]),
            Err(DecodeError::Truncated { .. })
        ));
        assert_eq!(
            validate_map(&[0x81, 0xc1, 0]),
            Err(DecodeError::InvalidMarker {
                byte: 0xc1,
                offset: 1
            })
        );
    }
}
