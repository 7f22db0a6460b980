//! Capped decompression of CompressedPackedForward payloads (reference §2.4, §4 `compressed`).
//!
//! gzip payloads may hold several members back to back, so a multi-member decoder is used.
//! Output stops one byte past the limit: a small payload that inflates to gigabytes costs at
//! most about twice the limit in memory before it is refused.

use super::{DecodeError, SizeLimit};
use std::io::Read;

/// How a PackedForward payload is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Compression {
    /// Plain concatenated entries (`compressed` missing, `"text"`, or unknown).
    None,
    /// gzip, possibly several members.
    Gzip,
    /// zstd, possibly several frames (Fluent Bit, Fluentd ≥ 1.19).
    Zstd,
}

impl Compression {
    /// The value of the `compressed` option.
    pub(super) fn from_option(value: &[u8]) -> Self {
        match value {
            b"gzip" => Compression::Gzip,
            b"zstd" => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// Magic bytes win over the option when the two disagree, as in Fluent Bit's in_forward
    /// (reference §2.4). A plain entry stream starts with an array marker, never with these.
    pub(super) fn sniff(payload: &[u8], option: Compression) -> Self {
        match payload {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => option,
        }
    }
}

/// Decompress `payload`, refusing output larger than `max_bytes`.
pub(super) fn decompress(
    compression: Compression,
    payload: &[u8],
    max_bytes: usize,
) -> Result<Vec<u8>, DecodeError> {
    match compression {
        Compression::None => Ok(payload.to_vec()),
        Compression::Gzip => read_capped(
            flate2::read::MultiGzDecoder::new(payload),
            payload.len(),
            max_bytes,
            "gzip",
        ),
        Compression::Zstd => {
            let mut decoder =
                zstd::stream::read::Decoder::with_buffer(payload).map_err(|e| zstd_error(&e))?;
            // A frame may declare a window of up to 2^31 bytes; the decoder would allocate it.
            decoder
                .window_log_max(zstd_window_log(max_bytes))
                .map_err(|e| zstd_error(&e))?;
            read_capped(decoder, payload.len(), max_bytes, "zstd")
        }
    }
}

/// The largest zstd window accepted: enough for the output limit, within 8 MiB..128 MiB
/// (zstd's own default cap is 2^27; common encoders use at most 2^23 below level 20).
fn zstd_window_log(max_bytes: usize) -> u32 {
    let needed = usize::BITS - max_bytes.saturating_sub(1).leading_zeros();
    needed.clamp(23, 27)
}

fn zstd_error(e: &std::io::Error) -> DecodeError {
    DecodeError::Malformed(format!("zstd payload cannot be decompressed: {e}"))
}

fn read_capped(
    reader: impl Read,
    compressed_len: usize,
    max_bytes: usize,
    what: &str,
) -> Result<Vec<u8>, DecodeError> {
    // Logs compress about 5-10x; start there and let the vector grow, never past the limit + 1.
    let mut out = Vec::with_capacity(
        compressed_len
            .saturating_mul(8)
            .min(max_bytes.saturating_add(1)),
    );
    reader
        .take(max_bytes as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            DecodeError::Malformed(format!("{what} payload cannot be decompressed: {e}"))
        })?;
    if out.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            limit: max_bytes,
            what: SizeLimit::Decompressed,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_members_are_concatenated() {
        let mut payload = gzip(b"hello ");
        payload.extend(gzip(b"world"));
        assert_eq!(
            decompress(Compression::Gzip, &payload, 100).unwrap(),
            b"hello world"
        );
    }

    #[test]
    fn zstd_frames_are_concatenated() {
        let mut payload = zstd::encode_all(&b"hello "[..], 3).unwrap();
        payload.extend(zstd::encode_all(&b"world"[..], 3).unwrap());
        assert_eq!(
            decompress(Compression::Zstd, &payload, 100).unwrap(),
            b"hello world"
        );
    }

    #[test]
    fn output_over_the_limit_is_refused() {
        let payload = gzip(&[0u8; 10_000]);
        assert!(matches!(
            decompress(Compression::Gzip, &payload, 9_999),
            Err(DecodeError::TooLarge {
                limit: 9_999,
                what: SizeLimit::Decompressed
            })
        ));
        assert_eq!(
            decompress(Compression::Gzip, &payload, 10_000)
                .unwrap()
                .len(),
            10_000
        );
        let payload = zstd::encode_all(&[0u8; 10_000][..], 3).unwrap();
        assert!(matches!(
            decompress(Compression::Zstd, &payload, 9_999),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn corrupt_payloads_are_malformed() {
        let mut payload = gzip(b"hello");
        let n = payload.len();
        payload[n - 3] ^= 0xff; // length trailer
        assert!(matches!(
            decompress(Compression::Gzip, &payload, 100),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decompress(Compression::Gzip, b"not gzip", 100),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decompress(Compression::Zstd, b"not zstd", 100),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn sniffing_trusts_magic_bytes() {
        assert_eq!(
            Compression::sniff(&[0x1f, 0x8b, 8], Compression::None),
            Compression::Gzip
        );
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd], Compression::Gzip),
            Compression::Zstd
        );
        assert_eq!(
            Compression::sniff(&[0x92, 0x01], Compression::Gzip),
            Compression::Gzip
        );
        assert_eq!(
            Compression::sniff(&[0x92, 0x01], Compression::None),
            Compression::None
        );
        assert_eq!(zstd_window_log(6_144_000), 23);
        assert_eq!(zstd_window_log(100 << 20), 27);
        assert_eq!(zstd_window_log(usize::MAX), 27);
    }
}
