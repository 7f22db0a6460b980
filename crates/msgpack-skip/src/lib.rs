//! Where one msgpack value ends, found without decoding it: the one skipper of the router
//! (forward input, JSON rendering, plugin body checks, partial-message merging) and of the
//! plugin SDK's record views.
//!
//! [`token`] reads one token (a leaf, or a container's header); [`skip_value`] walks a whole
//! value. Nothing allocates. Containers may nest at most a given number of levels, so hostile
//! input can neither exhaust the stack (the walk recurses once per level) nor hand deeply
//! nested values to later stages. A count that cannot fit in the bytes left (every value takes
//! at least one byte) fails at once, which bounds the walk by the input's length.
//!
//! Format reference: <https://github.com/msgpack/msgpack/blob/master/spec.md>.

#![no_std]

/// The nesting limit the router uses: containers nested deeper are refused.
pub const MAX_DEPTH: usize = 128;

/// Why a value could not be skipped. Callers map it to their own error type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipError {
    /// The bytes end inside the value.
    Truncated,
    /// The byte at `offset` is not msgpack: the reserved marker `0xc1`.
    Invalid {
        /// Where the byte is.
        offset: usize,
    },
    /// Containers nest deeper than the limit.
    TooDeep,
}

/// One token: a leaf (scalar, str, bin, ext) or the header of a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// A leaf that ends at `end` (which may lie past the bytes available).
    Leaf {
        /// The offset after the leaf.
        end: usize,
    },
    /// A container header ending at `header_end`, followed by `items` values (2 per map entry).
    Container {
        /// The offset after the header.
        header_end: usize,
        /// How many values follow: the array's length, or twice the map's.
        items: u64,
    },
}

/// Reads the token at `pos`. [`SkipError::Truncated`] only when the header itself is cut; a
/// leaf's payload is not checked against `data.len()`, so a caller streaming its input can tell
/// how many bytes it is waiting for.
#[inline(always)]
pub fn token(data: &[u8], pos: usize) -> Result<Token, SkipError> {
    let marker = *data.get(pos).ok_or(SkipError::Truncated)?;
    let p = pos + 1;
    let leaf = |end: usize| Ok(Token::Leaf { end });
    let container = |header_end: usize, items: u64| Ok(Token::Container { header_end, items });
    match marker {
        // Positive and negative fixint, nil, false, true.
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => leaf(p),
        0x80..=0x8f => container(p, 2 * u64::from(marker & 0x0f)),
        0x90..=0x9f => container(p, u64::from(marker & 0x0f)),
        0xa0..=0xbf => leaf(p + usize::from(marker & 0x1f)),
        0xc1 => Err(SkipError::Invalid { offset: pos }),
        // bin 8/16/32, str 8/16/32: a length, then the payload.
        0xc4 | 0xd9 => leaf(after(p, 1, be_len::<1>(data, p)?)),
        0xc5 | 0xda => leaf(after(p, 2, be_len::<2>(data, p)?)),
        0xc6 | 0xdb => leaf(after(p, 4, be_len::<4>(data, p)?)),
        // ext 8/16/32: a length, the type byte, then the payload.
        0xc7 => leaf(after(p, 2, be_len::<1>(data, p)?)),
        0xc8 => leaf(after(p, 3, be_len::<2>(data, p)?)),
        0xc9 => leaf(after(p, 5, be_len::<4>(data, p)?)),
        // float 32/64, uint 8..64, int 8..64.
        0xcc | 0xd0 => leaf(p + 1),
        0xcd | 0xd1 => leaf(p + 2),
        0xca | 0xce | 0xd2 => leaf(p + 4),
        0xcb | 0xcf | 0xd3 => leaf(p + 8),
        // fixext 1/2/4/8/16: the type byte, then the payload.
        0xd4 => leaf(p + 2),
        0xd5 => leaf(p + 3),
        0xd6 => leaf(p + 5),
        0xd7 => leaf(p + 9),
        0xd8 => leaf(p + 17),
        0xdc => container(p + 2, be_len::<2>(data, p)? as u64),
        0xdd => container(p + 4, be_len::<4>(data, p)? as u64),
        0xde => container(p + 2, 2 * be_len::<2>(data, p)? as u64),
        0xdf => container(p + 4, 2 * be_len::<4>(data, p)? as u64),
    }
}

/// The end of a payload of `len` bytes after a `header` of so many bytes at `pos`; saturating,
/// so a length near `u32::MAX` on a 32-bit target (wasm) cannot wrap around to a small end.
#[inline(always)]
fn after(pos: usize, header: usize, len: usize) -> usize {
    pos.saturating_add(header).saturating_add(len)
}

#[inline(always)]
fn be_len<const N: usize>(data: &[u8], pos: usize) -> Result<usize, SkipError> {
    let bytes = data.get(pos..pos + N).ok_or(SkipError::Truncated)?;
    Ok(bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize))
}

/// The end of the complete value starting at `pos`, in which containers may nest at most
/// `max_depth` levels (the value itself, if a container, is the first level).
#[inline]
pub fn skip_value(data: &[u8], pos: usize, max_depth: usize) -> Result<usize, SkipError> {
    match token(data, pos)? {
        Token::Leaf { end } if end <= data.len() => Ok(end),
        Token::Leaf { .. } => Err(SkipError::Truncated),
        Token::Container { header_end, items } => skip_items(data, header_end, items, max_depth),
    }
}

/// Skips the `items` values of a container starting at `pos`; `levels` counts the nesting
/// still allowed, this container's included.
fn skip_items(data: &[u8], mut pos: usize, items: u64, levels: usize) -> Result<usize, SkipError> {
    if levels == 0 {
        return Err(SkipError::TooDeep);
    }
    // Every value takes at least one byte: a count beyond what is left cannot be satisfied.
    if items > (data.len() - pos.min(data.len())) as u64 {
        return Err(SkipError::Truncated);
    }
    for _ in 0..items {
        pos = match token(data, pos)? {
            Token::Leaf { end } if end <= data.len() => end,
            Token::Leaf { .. } => return Err(SkipError::Truncated),
            Token::Container { header_end, items } => {
                skip_items(data, header_end, items, levels - 1)?
            }
        };
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// An array of 32 values: one of every msgpack encoding.
    fn every_marker() -> Vec<u8> {
        let mut v = Vec::from([0xdc, 0x00, 32]);
        v.extend_from_slice(&[
            0xc0, 0xc3, 0x01, 0xff, 0xcc, 1, 0xcd, 0, 1, 0xce, 0, 0, 0, 1,
        ]);
        v.extend_from_slice(&[0xcf, 0, 0, 0, 0, 0, 0, 0, 1, 0xd0, 1, 0xd1, 0, 1]);
        v.extend_from_slice(&[0xd2, 0, 0, 0, 1, 0xd3, 0, 0, 0, 0, 0, 0, 0, 1]);
        v.extend_from_slice(&[0xca, 0, 0, 0, 0, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(&[0xa1, b'x', 0xd9, 1, b'y', 0xc4, 2, 1, 2, 0xd4, 5, 9]);
        v.extend_from_slice(&[0xc7, 1, 5, 9, 0x81, 0xa1, b'a', 0x90]);
        v.extend_from_slice(&[0xda, 0, 1, b'z', 0xdb, 0, 0, 0, 1, b'z']);
        v.extend_from_slice(&[0xc5, 0, 1, 7, 0xc6, 0, 0, 0, 1, 7]);
        v.extend_from_slice(&[0xc8, 0, 1, 5, 9, 0xc9, 0, 0, 0, 1, 5, 9]);
        v.extend_from_slice(&[0xd5, 1, 0, 0, 0xd6, 1, 0, 0, 0, 0]);
        v.extend_from_slice(&[0xd7, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(&[0xd8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(&[0xde, 0, 1, 0xc0, 0xc0, 0xdf, 0, 0, 0, 0]);
        v
    }

    #[test]
    fn skips_every_marker_and_every_cut_is_truncated() {
        let v = every_marker();
        assert_eq!(skip_value(&v, 0, MAX_DEPTH), Ok(v.len()));
        for cut in 0..v.len() {
            assert_eq!(
                skip_value(&v[..cut], 0, MAX_DEPTH),
                Err(SkipError::Truncated),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn tokens_tell_leaves_from_headers() {
        assert_eq!(token(&[0xa3], 0), Ok(Token::Leaf { end: 4 }));
        assert_eq!(
            token(&[0x00, 0xde, 0, 2], 1),
            Ok(Token::Container {
                header_end: 4,
                items: 4
            })
        );
        assert_eq!(token(&[0xdc, 0], 0), Err(SkipError::Truncated));
    }

    #[test]
    fn the_reserved_marker_is_invalid() {
        assert_eq!(
            skip_value(&[0x92, 0x01, 0xc1], 0, MAX_DEPTH),
            Err(SkipError::Invalid { offset: 2 })
        );
    }

    #[test]
    fn nesting_is_capped() {
        let ok: Vec<u8> = core::iter::repeat_n(0x91, 9).chain([0x90]).collect();
        assert_eq!(skip_value(&ok, 0, 10), Ok(ok.len()));
        assert_eq!(skip_value(&ok, 0, 9), Err(SkipError::TooDeep));
        assert_eq!(skip_value(&[0x01], 0, 0), Ok(1));
        let very_deep = std::vec![0x91; 1_000_000];
        assert_eq!(
            skip_value(&very_deep, 0, MAX_DEPTH),
            Err(SkipError::TooDeep)
        );
    }

    #[test]
    fn huge_declared_counts_fail_fast() {
        for header in [0xdd, 0xdf] {
            let bytes = [header, 0xff, 0xff, 0xff, 0xff, 0x01];
            assert_eq!(skip_value(&bytes, 0, MAX_DEPTH), Err(SkipError::Truncated));
        }
    }
}
