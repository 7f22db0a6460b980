//! Encoding forward-protocol requests (reference forward-protocol.md §2.2, §2.3, §2.4, §3, §4)
//! and reading the receiver's ack (§5). Pure functions over bytes.

use crate::event::Event;
use base64::Engine as _;
use std::io::Write as _;
use std::ops::Range;

/// Split `events` into consecutive ranges whose bodies add up to about `max_bytes` each (an
/// event larger than that is a range of its own).
pub fn split(events: &[Event], max_bytes: usize) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, e) in events.iter().enumerate() {
        let size = e.body.len() + 16;
        if i > start && bytes + size > max_bytes {
            ranges.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < events.len() {
        ranges.push(start..events.len());
    }
    ranges
}

/// A fresh chunk id: base64 of 16 random bytes, as the npm client makes (§4).
pub fn new_chunk_id() -> String {
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&fastrand::u64(..).to_le_bytes());
    raw[8..].copy_from_slice(&fastrand::u64(..).to_le_bytes());
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// The carrier mode of a request (§1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `[tag, [[time, record], …], option]`: what Fluent Bit sends without compression.
    Forward,
    /// `[tag, bin(entries), option]`: what Fluentd sends (`compress text`).
    PackedForward,
    /// `[tag, bin(gzip(entries)), {"compressed": "gzip", …}]`.
    CompressedPackedForward,
}

/// How to encode.
#[derive(Clone, Copy, Debug)]
pub struct Encoding {
    /// Integer seconds instead of EventTime.
    pub time_as_integer: bool,
    /// The carrier mode.
    pub mode: Mode,
}

/// A request in `how.mode`, with the option map
/// `{"size": n, "chunk": id?, "compressed": "gzip"?, "fluent_signal": 0}`.
pub fn encode_request(tag: &[u8], events: &[Event], chunk: Option<&str>, how: Encoding) -> Vec<u8> {
    let mut out = Vec::new();
    encode_request_into(&mut out, &mut Vec::new(), tag, events, chunk, how);
    out
}

/// [`encode_request`] into `out` (cleared first), with `scratch` for gzip: a sender that keeps
/// both allocates nothing per request once they have grown.
pub fn encode_request_into(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    tag: &[u8],
    events: &[Event],
    chunk: Option<&str>,
    how: Encoding,
) {
    out.clear();
    rmp::encode::write_array_len(out, 3).unwrap();
    rmp::encode::write_str_len(out, tag.len() as u32).unwrap();
    out.extend_from_slice(tag);
    let gzip = how.mode == Mode::CompressedPackedForward;
    if how.mode == Mode::Forward {
        rmp::encode::write_array_len(out, events.len() as u32).unwrap();
        write_entries(out, events, how);
    } else if gzip {
        scratch.clear();
        write_entries(scratch, events, how);
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(scratch.len() / 4),
            flate2::Compression::fast(),
        );
        gz.write_all(scratch).expect("writing to a Vec");
        let payload = gz.finish().expect("writing to a Vec");
        rmp::encode::write_bin_len(out, payload.len() as u32).unwrap();
        out.extend_from_slice(&payload);
    } else {
        let len: usize = events
            .iter()
            .map(|e| 1 + time_len(e.time_ns, how) + e.body.len())
            .sum();
        rmp::encode::write_bin_len(out, len as u32).unwrap();
        let start = out.len();
        write_entries(out, events, how);
        debug_assert_eq!(out.len() - start, len);
    }
    let keys = 2 + u32::from(chunk.is_some()) + u32::from(gzip);
    rmp::encode::write_map_len(out, keys).unwrap();
    rmp::encode::write_str(out, "size").unwrap();
    rmp::encode::write_uint(out, events.len() as u64).unwrap();
    if let Some(chunk) = chunk {
        rmp::encode::write_str(out, "chunk").unwrap();
        rmp::encode::write_str(out, chunk).unwrap();
    }
    if gzip {
        rmp::encode::write_str(out, "compressed").unwrap();
        rmp::encode::write_str(out, "gzip").unwrap();
    }
    rmp::encode::write_str(out, "fluent_signal").unwrap();
    rmp::encode::write_uint(out, 0).unwrap();
}

/// `[time, record]` entries, back to back (a PackedForward payload).
fn write_entries(out: &mut Vec<u8>, events: &[Event], how: Encoding) {
    for e in events {
        out.push(0x92);
        let secs = e.time_ns / 1_000_000_000;
        if how.time_as_integer {
            rmp::encode::write_uint(out, secs).unwrap();
        } else {
            out.extend_from_slice(&[0xd7, 0x00]);
            out.extend_from_slice(&(secs as u32).to_be_bytes());
            out.extend_from_slice(&((e.time_ns % 1_000_000_000) as u32).to_be_bytes());
        }
        out.extend_from_slice(&e.body);
    }
}

/// Bytes of an entry's time.
fn time_len(time_ns: u64, how: Encoding) -> usize {
    if !how.time_as_integer {
        return 10;
    }
    match time_ns / 1_000_000_000 {
        0..=0x7f => 1,
        0x80..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// What the start of the receiver's reply holds.
#[derive(Debug, PartialEq, Eq)]
pub enum AckRead {
    /// More bytes are needed.
    Incomplete,
    /// A whole msgpack value of `len` bytes: the ack for `chunk`, or something else.
    Value {
        /// Bytes it occupies.
        len: usize,
        /// The `ack` value when it is a map with a string `ack`.
        ack: Option<String>,
    },
    /// A HELO: the receiver wants the shared-key handshake, which is not configured.
    Helo,
    /// Not msgpack.
    Invalid,
}

/// Read one reply from the front of `buf`.
pub fn read_ack(buf: &[u8]) -> AckRead {
    let mut cursor = std::io::Cursor::new(buf);
    match rmpv::decode::read_value(&mut cursor) {
        Ok(value)
            if value
                .as_array()
                .and_then(|a| a.first())
                .and_then(|v| v.as_str())
                == Some("HELO") =>
        {
            AckRead::Helo
        }
        Ok(value) => {
            let ack = value.as_map().and_then(|m| {
                m.iter()
                    .find(|(k, _)| k.as_str() == Some("ack"))
                    .and_then(|(_, v)| v.as_str().map(str::to_string))
            });
            AckRead::Value {
                len: cursor.position() as usize,
                ack,
            }
        }
        Err(rmpv::decode::Error::InvalidMarkerRead(e))
        | Err(rmpv::decode::Error::InvalidDataRead(e))
            if e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            AckRead::Incomplete
        }
        Err(_) => AckRead::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::forward::{Decoder, Frame};
    use bytes::{Bytes, BytesMut};

    fn events(n: usize, body_len: usize) -> Vec<Event> {
        (0..n)
            .map(|i| {
                let mut body = vec![0x81, 0xa1, b'b'];
                rmp::encode::write_str(&mut body, &"x".repeat(body_len)).unwrap();
                Event {
                    time_ns: 1_700_000_000_123_456_789 + i as u64,
                    body: Bytes::from(body),
                }
            })
            .collect()
    }

    #[test]
    fn splits_by_bytes_and_keeps_oversized_events_alone() {
        let ev = events(10, 100);
        let ranges = split(&ev, 350);
        assert_eq!(ranges.iter().map(|r| r.len()).sum::<usize>(), 10);
        assert!(ranges.iter().all(|r| r.len() <= 3));
        let big = events(3, 1000);
        assert_eq!(split(&big, 100), vec![0..1, 1..2, 2..3]);
        assert!(split(&[], 100).is_empty());
    }

    /// Our own decoder reads what we encode, in every mode, with times and bodies intact.
    #[test]
    fn the_forward_decoder_reads_every_encoding_back() {
        let ev = events(5, 20);
        let modes = [
            Mode::Forward,
            Mode::PackedForward,
            Mode::CompressedPackedForward,
        ];
        for (time_as_integer, mode) in [false, true]
            .into_iter()
            .flat_map(|t| modes.map(|m| (t, m)))
        {
            let how = Encoding {
                time_as_integer,
                mode,
            };
            let bytes = encode_request(b"app.web", &ev, Some("abc=="), how);
            let mut buf = BytesMut::from(&bytes[..]);
            let Some(Frame::Request(req)) = Decoder::default().decode(&mut buf).unwrap() else {
                panic!()
            };
            assert!(buf.is_empty());
            assert_eq!(&req.batch.tag[..], b"app.web");
            assert_eq!(req.chunk.as_deref(), Some(&b"\xa5abc=="[..]));
            assert_eq!(req.batch.len(), 5);
            let wire_mode = match mode {
                Mode::Forward => crate::input::forward::decode::Mode::Forward,
                Mode::PackedForward => crate::input::forward::decode::Mode::PackedForward,
                Mode::CompressedPackedForward => {
                    crate::input::forward::decode::Mode::CompressedPackedForward
                }
            };
            assert_eq!(req.mode, wire_mode, "{how:?}");
            for (got, want) in req.batch.events.iter().zip(&ev) {
                assert_eq!(got.body, want.body);
                let want_time = if time_as_integer {
                    want.time_ns / 1_000_000_000 * 1_000_000_000
                } else {
                    want.time_ns
                };
                assert_eq!(got.time_ns, want_time, "{how:?}");
            }
        }
    }

    #[test]
    fn reads_acks_whole_split_and_wrong() {
        let mut ack = vec![0x81, 0xa3, b'a', b'c', b'k'];
        rmp::encode::write_str(&mut ack, "abc==").unwrap();
        assert_eq!(
            read_ack(&ack),
            AckRead::Value {
                len: ack.len(),
                ack: Some("abc==".into())
            }
        );
        for cut in 0..ack.len() {
            assert_eq!(read_ack(&ack[..cut]), AckRead::Incomplete, "cut {cut}");
        }
        assert_eq!(read_ack(&[0x80]), AckRead::Value { len: 1, ack: None });
        let helo = crate::input::forward::handshake::encode_helo(
            &crate::input::forward::handshake::Helo {
                nonce: vec![1; 16],
                auth: Vec::new(),
                keepalive: true,
            },
        );
        assert_eq!(read_ack(&helo), AckRead::Helo);
        assert_ne!(new_chunk_id(), new_chunk_id());
    }
}
