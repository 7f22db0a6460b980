//! Msgpack scanning for the forward decoder: the extent of one token, the extent of one whole
//! value, and the few scalar reads the protocol needs. Nothing here allocates or builds values.
//!
//! Records are never decoded: the decoder only needs to know where each one ends, so it walks
//! tokens with the shared skipper (`msgpack_skip`). Nesting is capped at [`MAX_DEPTH`] so hostile
//! input can neither exhaust the stack here nor hand deeply nested records to later stages.

use msgpack_skip::SkipError;
use rmp::Marker;

/// Deepest container nesting accepted inside one request or one packed entry.
pub const MAX_DEPTH: usize = msgpack_skip::MAX_DEPTH;

/// Why a value could not be scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ScanError {
    /// The bytes end inside the value.
    Truncated,
    /// The reserved marker byte 0xc1 at this offset.
    Reserved(usize),
    /// Containers nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl From<SkipError> for ScanError {
    #[inline]
    fn from(e: SkipError) -> Self {
        match e {
            SkipError::Truncated => ScanError::Truncated,
            SkipError::Invalid { offset } => ScanError::Reserved(offset),
            SkipError::TooDeep => ScanError::TooDeep,
        }
    }
}

impl ScanError {
    /// A short reason, for `DecodeError::Malformed`.
    pub(super) fn describe(self, what: &str) -> String {
        match self {
            ScanError::Truncated => format!("{what} ends inside a msgpack value"),
            ScanError::Reserved(at) => {
                format!("{what} holds the reserved msgpack marker 0xc1 at byte {at}")
            }
            ScanError::TooDeep => format!("{what} nests containers deeper than {MAX_DEPTH} levels"),
        }
    }
}

/// One token: a leaf (scalar, str, bin, ext) or the header of a container.
pub(super) use msgpack_skip::Token as Step;

/// Read the token at `pos`. `Truncated` only when the header itself is cut; a leaf's payload
/// is not checked against `data.len()`, so a caller can tell how many bytes it is waiting for.
#[inline(always)]
pub(super) fn step(data: &[u8], pos: usize) -> Result<Step, ScanError> {
    msgpack_skip::token(data, pos).map_err(ScanError::from)
}

/// The end of the complete value starting at `pos`, which sits `depth` containers deep.
#[inline]
pub(super) fn skip_value(data: &[u8], pos: usize, depth: usize) -> Result<usize, ScanError> {
    msgpack_skip::skip_value(data, pos, MAX_DEPTH.saturating_sub(depth)).map_err(ScanError::from)
}

/// A decoded token header, for the few places that need values (tag, time, options).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Head {
    Nil,
    Bool,
    /// Any unsigned integer encoding (positive fixint, uint 8..64).
    Uint(u64),
    /// Any signed integer encoding (negative fixint, int 8..64), value as read.
    Int(i64),
    Float(f64),
    /// String: payload of `len` bytes at `body`.
    Str {
        body: usize,
        len: usize,
    },
    /// Binary: payload of `len` bytes at `body`.
    Bin {
        body: usize,
        len: usize,
    },
    /// Extension of type `ty`: payload of `len` bytes at `body`.
    Ext {
        ty: i8,
        body: usize,
        len: usize,
    },
    Array {
        items: usize,
        header_end: usize,
    },
    Map {
        pairs: usize,
        header_end: usize,
    },
}

impl Head {
    /// What the value is, for error messages: "a map", "an integer", ...
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Head::Nil => "nil",
            Head::Bool => "a boolean",
            Head::Uint(_) | Head::Int(_) => "an integer",
            Head::Float(_) => "a float",
            Head::Str { .. } => "a string",
            Head::Bin { .. } => "a binary",
            Head::Ext { .. } => "an extension value",
            Head::Array { .. } => "an array",
            Head::Map { .. } => "a map",
        }
    }
}

/// Decode the header of the value at `pos`. Payloads (`Str`, `Bin`, `Ext`) are checked to be
/// within `data`, so `&data[body..body + len]` is always valid.
pub(super) fn read_head(data: &[u8], pos: usize) -> Result<Head, ScanError> {
    let marker = *data.get(pos).ok_or(ScanError::Truncated)?;
    let p = pos + 1;
    let bytes = |n: usize| data.get(p..p + n).ok_or(ScanError::Truncated);
    let uint = |n: usize| -> Result<u64, ScanError> {
        Ok(bytes(n)?.iter().fold(0u64, |a, &b| (a << 8) | b as u64))
    };
    let payload = |body: usize, len: usize| -> Result<(usize, usize), ScanError> {
        if body.checked_add(len).is_some_and(|end| end <= data.len()) {
            Ok((body, len))
        } else {
            Err(ScanError::Truncated)
        }
    };
    let ext = |len_width: usize, len: usize| -> Result<Head, ScanError> {
        let ty = *data.get(p + len_width).ok_or(ScanError::Truncated)? as i8;
        let (body, len) = payload(p + len_width + 1, len)?;
        Ok(Head::Ext { ty, body, len })
    };
    Ok(match Marker::from_u8(marker) {
        Marker::FixPos(n) => Head::Uint(n as u64),
        Marker::FixNeg(n) => Head::Int(n as i64),
        Marker::Null => Head::Nil,
        Marker::True | Marker::False => Head::Bool,
        Marker::U8 => Head::Uint(uint(1)?),
        Marker::U16 => Head::Uint(uint(2)?),
        Marker::U32 => Head::Uint(uint(4)?),
        Marker::U64 => Head::Uint(uint(8)?),
        Marker::I8 => Head::Int(uint(1)? as u8 as i8 as i64),
        Marker::I16 => Head::Int(uint(2)? as u16 as i16 as i64),
        Marker::I32 => Head::Int(uint(4)? as u32 as i32 as i64),
        Marker::I64 => Head::Int(uint(8)? as i64),
        Marker::F32 => Head::Float(f32::from_bits(uint(4)? as u32) as f64),
        Marker::F64 => Head::Float(f64::from_bits(uint(8)?)),
        Marker::FixStr(n) => {
            let (body, len) = payload(p, n as usize)?;
            Head::Str { body, len }
        }
        Marker::Str8
        | Marker::Str16
        | Marker::Str32
        | Marker::Bin8
        | Marker::Bin16
        | Marker::Bin32 => {
            let width = match Marker::from_u8(marker) {
                Marker::Str8 | Marker::Bin8 => 1,
                Marker::Str16 | Marker::Bin16 => 2,
                _ => 4,
            };
            let (body, len) = payload(p + width, uint(width)? as usize)?;
            if matches!(
                Marker::from_u8(marker),
                Marker::Str8 | Marker::Str16 | Marker::Str32
            ) {
                Head::Str { body, len }
            } else {
                Head::Bin { body, len }
            }
        }
        Marker::FixExt1 => ext(0, 1)?,
        Marker::FixExt2 => ext(0, 2)?,
        Marker::FixExt4 => ext(0, 4)?,
        Marker::FixExt8 => ext(0, 8)?,
        Marker::FixExt16 => ext(0, 16)?,
        Marker::Ext8 => ext(1, uint(1)? as usize)?,
        Marker::Ext16 => ext(2, uint(2)? as usize)?,
        Marker::Ext32 => ext(4, uint(4)? as usize)?,
        Marker::FixArray(n) => Head::Array {
            items: n as usize,
            header_end: p,
        },
        Marker::Array16 => Head::Array {
            items: uint(2)? as usize,
            header_end: p + 2,
        },
        Marker::Array32 => Head::Array {
            items: uint(4)? as usize,
            header_end: p + 4,
        },
        Marker::FixMap(n) => Head::Map {
            pairs: n as usize,
            header_end: p,
        },
        Marker::Map16 => Head::Map {
            pairs: uint(2)? as usize,
            header_end: p + 2,
        },
        Marker::Map32 => Head::Map {
            pairs: uint(4)? as usize,
            header_end: p + 4,
        },
        Marker::Reserved => return Err(ScanError::Reserved(pos)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_every_marker_family() {
        // [nil, true, 1, -1, u8, u16, u32, u64, i8..i64, f32, f64, str, bin, ext, {a:[]}]
        let mut v = vec![0xdc, 0x00, 20];
        v.extend_from_slice(&[
            0xc0, 0xc3, 0x01, 0xff, 0xcc, 1, 0xcd, 0, 1, 0xce, 0, 0, 0, 1,
        ]);
        v.extend_from_slice(&[
            0xcf, 0, 0, 0, 0, 0, 0, 0, 1, 0xd0, 1, 0xd1, 0, 1, 0xd2, 0, 0, 0, 1,
        ]);
        v.extend_from_slice(&[
            0xd3, 0, 0, 0, 0, 0, 0, 0, 1, 0xca, 0, 0, 0, 0, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        v.extend_from_slice(&[
            0xa1, b'x', 0xd9, 1, b'y', 0xc4, 2, 1, 2, 0xd4, 5, 9, 0xc7, 1, 5, 9,
        ]);
        v.extend_from_slice(&[0x81, 0xa1, b'a', 0x90]);
        assert_eq!(skip_value(&v, 0, 0), Ok(v.len()));
        for cut in 0..v.len() {
            assert_eq!(
                skip_value(&v[..cut], 0, 0),
                Err(ScanError::Truncated),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn reserved_marker_is_an_error() {
        assert_eq!(
            skip_value(&[0x92, 0x01, 0xc1], 0, 0),
            Err(ScanError::Reserved(2))
        );
    }

    #[test]
    fn nesting_is_capped() {
        let ok: Vec<u8> = std::iter::repeat_n(0x91, MAX_DEPTH - 1)
            .chain([0x90])
            .collect();
        assert_eq!(skip_value(&ok, 0, 0), Ok(ok.len()));
        let deep: Vec<u8> = std::iter::repeat_n(0x91, MAX_DEPTH).chain([0x90]).collect();
        assert_eq!(skip_value(&deep, 0, 0), Err(ScanError::TooDeep));
        let very_deep = vec![0x91; 1_000_000];
        assert_eq!(skip_value(&very_deep, 0, 0), Err(ScanError::TooDeep));
    }

    #[test]
    fn huge_declared_counts_fail_fast() {
        assert_eq!(
            skip_value(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01], 0, 0),
            Err(ScanError::Truncated)
        );
        assert_eq!(
            skip_value(&[0xdb, 0xff, 0xff, 0xff, 0xff, 0x01], 0, 0),
            Err(ScanError::Truncated)
        );
    }

    #[test]
    fn heads_decode_values_and_payload_bounds() {
        assert_eq!(
            read_head(&[0xd2, 0x6b, 0x01, 0x15, 0x7e], 0),
            Ok(Head::Int(0x6b01157e))
        );
        assert_eq!(
            read_head(&[0xce, 0xff, 0xff, 0xff, 0xff], 0),
            Ok(Head::Uint(u32::MAX as u64))
        );
        assert_eq!(read_head(&[0xe0], 0), Ok(Head::Int(-32)));
        assert_eq!(read_head(&[0xd0, 0x80], 0), Ok(Head::Int(-128)));
        assert_eq!(
            read_head(&[0xc7, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8], 0),
            Ok(Head::Ext {
                ty: 0,
                body: 3,
                len: 8
            })
        );
        assert_eq!(read_head(&[0xc7, 8, 0, 1, 2], 0), Err(ScanError::Truncated));
        assert_eq!(
            read_head(&[0xdf, 0, 0, 0, 2], 0),
            Ok(Head::Map {
                pairs: 2,
                header_end: 5
            })
        );
        assert_eq!(
            read_head(&[0xdb, 0, 0, 0, 1, b'z'], 0),
            Ok(Head::Str { body: 5, len: 1 })
        );
    }
}
