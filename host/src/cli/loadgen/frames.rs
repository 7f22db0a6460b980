//! Forward-protocol frames, encoded once before the run (reference forward-protocol.md §2, §4).
//!
//! A [`Group`] is what one connection writes between two acks: a run of frames whose last frame
//! carries the `chunk` option (or, without acks, a run of about a thousand events). Its bytes
//! are contiguous, so a flat-out sender writes a whole group with one `write`. The sender only
//! patches bytes in place: the 16-character chunk id (unique per request) and, when measuring
//! latency, the EventTime of each entry. A compressed frame cannot be patched; it is re-encoded
//! when its time must change.

use clap::ValueEnum;
use std::io::Write as _;
use std::ops::Range;

/// How a request carries its events (reference §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// `[tag, time, record, option]`: one event per request, as Docker's fluentd driver sends.
    Message,
    /// `[tag, [[time, record], ...], option?]`, as Fluent Bit's out_forward sends.
    Forward,
    /// `[tag, bin(entries), option]`, as Fluentd's out_forward and fluent-logger (node) send.
    #[value(alias = "packed")]
    PackedForward,
    /// `[tag, bin(gzip|zstd(entries)), {"compressed": …}]`.
    #[value(alias = "compressed")]
    CompressedPackedForward,
}

/// The compression of CompressedPackedForward payloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    /// One gzip member, default level (what Fluent Bit's `compress gzip` sends).
    Gzip,
    /// zstd, level 3 (Fluent Bit and Fluentd ≥ 1.19 accept it).
    Zstd,
}

/// Characters of a chunk id: 16 lowercase hex digits (connection and sequence number).
pub const CHUNK_LEN: usize = 16;

/// The bytes of the ack a receiver sends for chunk id `chunk` (reference §5).
pub fn expected_ack(chunk: &[u8; CHUNK_LEN]) -> Vec<u8> {
    let mut chunk_msgpack = vec![0xa0 | CHUNK_LEN as u8];
    chunk_msgpack.extend_from_slice(chunk);
    wasm_router::input::forward::ack_response(&chunk_msgpack)
}

/// The chunk id of request `seq` on connection `connection`.
pub fn chunk_id(connection: u16, seq: u64) -> [u8; CHUNK_LEN] {
    let mut id = [0u8; CHUNK_LEN];
    let text = format!("{connection:04x}{:012x}", seq & 0xffff_ffff_ffff);
    id.copy_from_slice(text.as_bytes());
    id
}

/// Encodes frames of one mode under one tag.
#[derive(Clone, Debug)]
pub struct FrameEncoder {
    /// The carrier mode.
    pub mode: Mode,
    /// The compression of CompressedPackedForward.
    pub compression: Compression,
    /// The tag of every request.
    pub tag: String,
}

/// Where one frame lies in its group's bytes, and what the sender may patch in it.
#[derive(Clone, Debug)]
pub struct FrameLayout {
    /// The frame's bytes in [`Group::bytes`].
    pub range: Range<usize>,
    /// The records of the frame, as indices into [`Group::records`].
    pub records: Range<usize>,
    /// Offsets (in the group) of each entry's 8 EventTime bytes; empty for compressed frames.
    pub time_offsets: Vec<usize>,
    /// Offset (in the group) of the chunk id, when the frame asks for an ack.
    pub chunk_offset: Option<usize>,
}

impl FrameLayout {
    /// Events in the frame.
    pub fn events(&self) -> u64 {
        self.records.len() as u64
    }
}

/// Frames written back to back between two acks.
pub struct Group {
    /// The encoded frames.
    pub bytes: Vec<u8>,
    /// Each frame's place in `bytes`.
    pub frames: Vec<FrameLayout>,
    /// The records (kept to re-encode compressed frames with a new time).
    pub records: Vec<Vec<u8>>,
}

impl Group {
    /// Events in the group.
    pub fn events(&self) -> u64 {
        self.frames.iter().map(FrameLayout::events).sum()
    }

    /// Write chunk id `chunk` into frame `frame` (which must ask for an ack).
    pub fn set_chunk(&mut self, frame: usize, chunk: &[u8; CHUNK_LEN]) {
        let at = self.frames[frame]
            .chunk_offset
            .expect("frame asks for an ack");
        self.bytes[at..at + CHUNK_LEN].copy_from_slice(chunk);
    }

    /// Set the EventTime of every entry of frame `frame` to `time_ns`. Returns false for a
    /// compressed frame, which must be re-encoded instead ([`FrameEncoder::encode_frame`]).
    pub fn set_time(&mut self, frame: usize, time_ns: u64) -> bool {
        let layout = &self.frames[frame];
        if layout.time_offsets.is_empty() {
            return false;
        }
        let time = event_time_bytes(time_ns);
        for &at in &layout.time_offsets {
            self.bytes[at..at + 8].copy_from_slice(&time);
        }
        true
    }
}

fn event_time_bytes(time_ns: u64) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&((time_ns / 1_000_000_000) as u32).to_be_bytes());
    b[4..].copy_from_slice(&((time_ns % 1_000_000_000) as u32).to_be_bytes());
    b
}

impl FrameEncoder {
    /// Append one frame holding `records` (all with time `time_ns`) to `out`. With `ack` the
    /// option map ends with a `chunk` of [`CHUNK_LEN`] placeholder characters.
    /// Offsets in the returned layout are relative to the start of `out`.
    pub fn encode_frame(
        &self,
        out: &mut Vec<u8>,
        records: &[Vec<u8>],
        first_record: usize,
        time_ns: u64,
        ack: bool,
    ) -> FrameLayout {
        let start = out.len();
        let time = event_time_bytes(time_ns);
        let mut time_offsets = Vec::new();
        let n = records.len();
        let extra_options = |mode: Mode| match mode {
            Mode::Message => 0,
            Mode::Forward => 1,
            Mode::PackedForward => 1,
            Mode::CompressedPackedForward => 2,
        };
        let option_entries = extra_options(self.mode) + usize::from(ack);
        // Message mode always sends 4 elements (`{}` without an ack), as Docker does; the other
        // modes leave the option out when there is nothing to say (Fluent Bit's default).
        let elements = match self.mode {
            Mode::Message => 4,
            _ => 2 + usize::from(option_entries > 0),
        };
        rmp::encode::write_array_len(out, elements as u32).unwrap();
        rmp::encode::write_str(out, &self.tag).unwrap();
        match self.mode {
            Mode::Message => {
                assert_eq!(n, 1, "Message mode carries one event per request");
                out.extend_from_slice(&[0xd7, 0x00]);
                time_offsets.push(out.len());
                out.extend_from_slice(&time);
                out.extend_from_slice(&records[0]);
            }
            Mode::Forward => {
                rmp::encode::write_array_len(out, n as u32).unwrap();
                for record in records {
                    out.extend_from_slice(&[0x92, 0xd7, 0x00]);
                    time_offsets.push(out.len());
                    out.extend_from_slice(&time);
                    out.extend_from_slice(record);
                }
            }
            Mode::PackedForward => {
                let len: usize = records.iter().map(|r| r.len() + 11).sum();
                rmp::encode::write_bin_len(out, len as u32).unwrap();
                for record in records {
                    out.extend_from_slice(&[0x92, 0xd7, 0x00]);
                    time_offsets.push(out.len());
                    out.extend_from_slice(&time);
                    out.extend_from_slice(record);
                }
            }
            Mode::CompressedPackedForward => {
                let mut entries = Vec::with_capacity(records.iter().map(|r| r.len() + 11).sum());
                for record in records {
                    entries.extend_from_slice(&[0x92, 0xd7, 0x00]);
                    entries.extend_from_slice(&time);
                    entries.extend_from_slice(record);
                }
                let compressed = match self.compression {
                    Compression::Gzip => {
                        let mut gz = flate2::write::GzEncoder::new(
                            Vec::new(),
                            flate2::Compression::default(),
                        );
                        gz.write_all(&entries).unwrap();
                        gz.finish().unwrap()
                    }
                    Compression::Zstd => {
                        zstd::bulk::compress(&entries, 3).expect("zstd compression of a buffer")
                    }
                };
                rmp::encode::write_bin(out, &compressed).unwrap();
            }
        }
        let mut chunk_offset = None;
        if elements == 4 || option_entries > 0 {
            rmp::encode::write_map_len(out, option_entries as u32).unwrap();
            if self.mode != Mode::Message {
                rmp::encode::write_str(out, "size").unwrap();
                rmp::encode::write_uint(out, n as u64).unwrap();
            }
            if self.mode == Mode::CompressedPackedForward {
                rmp::encode::write_str(out, "compressed").unwrap();
                rmp::encode::write_str(out, self.compression_name()).unwrap();
            }
            if ack {
                rmp::encode::write_str(out, "chunk").unwrap();
                out.push(0xa0 | CHUNK_LEN as u8);
                chunk_offset = Some(out.len());
                out.extend_from_slice(&[b'0'; CHUNK_LEN]);
            }
        }
        FrameLayout {
            range: start..out.len(),
            records: first_record..first_record + n,
            time_offsets,
            chunk_offset,
        }
    }

    fn compression_name(&self) -> &'static str {
        match self.compression {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// A group of `frames` frames of `events_per_frame` records each (Message mode: one), the
    /// last one asking for an ack when `ack`. Records come from `next_record`.
    pub fn encode_group(
        &self,
        frames: usize,
        events_per_frame: usize,
        ack: bool,
        time_ns: u64,
        mut next_record: impl FnMut() -> Vec<u8>,
    ) -> Group {
        let per_frame = if self.mode == Mode::Message {
            1
        } else {
            events_per_frame.max(1)
        };
        let records: Vec<Vec<u8>> = (0..frames * per_frame).map(|_| next_record()).collect();
        let mut bytes =
            Vec::with_capacity(records.iter().map(|r| r.len() + 16).sum::<usize>() + frames * 64);
        let mut layouts = Vec::with_capacity(frames);
        for f in 0..frames {
            let first = f * per_frame;
            let last_frame = f + 1 == frames;
            layouts.push(self.encode_frame(
                &mut bytes,
                &records[first..first + per_frame],
                first,
                time_ns,
                ack && last_frame,
            ));
        }
        Group {
            bytes,
            frames: layouts,
            records,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use wasm_router::input::forward::{Decoder, Frame, decode::Mode as DecodedMode};

    fn record(i: usize) -> Vec<u8> {
        let mut out = Vec::new();
        rmp::encode::write_map_len(&mut out, 1).unwrap();
        rmp::encode::write_str(&mut out, "log").unwrap();
        rmp::encode::write_str(&mut out, &format!("line {i}")).unwrap();
        out
    }

    fn decode_all(bytes: &[u8]) -> Vec<wasm_router::input::forward::Request> {
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            if let Frame::Request(r) = frame {
                out.push(r);
            }
        }
        assert!(buf.is_empty(), "every byte belongs to a frame");
        out
    }

    #[test]
    fn every_mode_decodes_with_the_routers_own_decoder_and_chunks_and_times_patch_in_place() {
        let cases = [
            (Mode::Message, Compression::Gzip, DecodedMode::Message),
            (Mode::Forward, Compression::Gzip, DecodedMode::Forward),
            (
                Mode::PackedForward,
                Compression::Gzip,
                DecodedMode::PackedForward,
            ),
            (
                Mode::CompressedPackedForward,
                Compression::Gzip,
                DecodedMode::CompressedPackedForward,
            ),
            (
                Mode::CompressedPackedForward,
                Compression::Zstd,
                DecodedMode::CompressedPackedForward,
            ),
        ];
        for (mode, compression, decoded_mode) in cases {
            let encoder = FrameEncoder {
                mode,
                compression,
                tag: "app-firelens-1".into(),
            };
            let mut n = 0;
            let mut group = encoder.encode_group(3, 4, true, 1_700_000_000_000_000_001, || {
                n += 1;
                record(n - 1)
            });
            let per_frame = if mode == Mode::Message { 1 } else { 4 };
            assert_eq!(group.events(), 3 * per_frame);
            let chunk = chunk_id(7, 42);
            group.set_chunk(2, &chunk);
            let patched = group.set_time(1, 1_800_000_000_123_456_789);
            assert_eq!(patched, mode != Mode::CompressedPackedForward, "{mode:?}");

            let requests = decode_all(&group.bytes);
            assert_eq!(requests.len(), 3, "{mode:?}");
            for (f, request) in requests.iter().enumerate() {
                assert_eq!(request.mode, decoded_mode);
                assert_eq!(&request.batch.tag[..], b"app-firelens-1");
                assert_eq!(request.batch.len() as u64, per_frame);
                assert_eq!(request.invalid_events, 0);
                let expected_time = if f == 1 && patched {
                    1_800_000_000_123_456_789
                } else {
                    1_700_000_000_000_000_001
                };
                for (i, event) in request.batch.events.iter().enumerate() {
                    assert_eq!(event.time_ns, expected_time);
                    assert_eq!(event.body[..], record(f * per_frame as usize + i)[..]);
                }
            }
            assert!(requests[0].chunk.is_none() && requests[1].chunk.is_none());
            let chunk_msgpack = requests[2]
                .chunk
                .clone()
                .expect("the last frame asks for an ack");
            assert_eq!(
                wasm_router::input::forward::ack_response(&chunk_msgpack),
                expected_ack(&chunk)
            );
        }
    }

    #[test]
    fn a_recompressed_frame_carries_the_new_time() {
        let encoder = FrameEncoder {
            mode: Mode::CompressedPackedForward,
            compression: Compression::Gzip,
            tag: "t".into(),
        };
        let group = encoder.encode_group(1, 5, false, 1, || record(0));
        let mut out = Vec::new();
        encoder.encode_frame(
            &mut out,
            &group.records,
            0,
            2_000_000_000_000_000_000,
            false,
        );
        let requests = decode_all(&out);
        assert!(
            requests[0]
                .batch
                .events
                .iter()
                .all(|e| e.time_ns == 2_000_000_000_000_000_000)
        );
    }

    #[test]
    fn chunk_ids_are_distinct_per_connection_and_sequence() {
        assert_eq!(&chunk_id(1, 2), b"0001000000000002");
        assert_ne!(chunk_id(1, 2), chunk_id(2, 2));
        assert_ne!(chunk_id(1, 2), chunk_id(1, 3));
    }
}
