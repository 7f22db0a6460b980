//! The on-disk format of a disk buffer: segment files of checksummed records, one record per
//! batch. Pure encoding and decoding over byte slices; the file handling is in the parent module.
//!
//! A segment file starts with [`SEGMENT_MAGIC`] (8 bytes), then records back to back:
//!
//! ```text
//! offset  size  field
//!      0     4  magic "WRe2"
//!      4     4  payload length (u32 LE)
//!      8     4  event count (u32 LE)
//!     12     8  accepted at, ns since the epoch (u64 LE): when the buffer took the batch
//!     20     8  run (u64 LE): the first segment id of the run of the router that wrote it
//!     28     8  first event's number in its run (u64 LE): events are numbered 0, 1, … in
//!               write order by each run
//!     36     4  CRC-32 of bytes 4..36 (the header fields)
//!     40     4  CRC-32 of the payload
//!     44     …  payload: tag length (u32 LE), tag, then per event:
//!                 time_ns (u64 LE), body length (u32 LE), body (the msgpack record as received)
//! ```
//!
//! The header has its own checksum so that a damaged payload can be skipped exactly (its
//! length and event count are still trusted, and counted), while a damaged header is skipped by
//! scanning for the next magic whose header checksum holds. The event numbers tell how many
//! events a damaged region held: the next intact record of the same run says where its events
//! start. Version 1 records (magic "WRec", 28-byte header without run and number) are still
//! read.

use crate::event::{Batch, Event};
use bytes::Bytes;

/// The first 8 bytes of every segment file (format version 1).
pub const SEGMENT_MAGIC: &[u8; 8] = b"WRSEG\x00\x01\n";
/// The first 4 bytes of every record written now.
pub const RECORD_MAGIC: &[u8; 4] = b"WRe2";
/// The first 4 bytes of a record of format version 1.
pub const RECORD_MAGIC_V1: &[u8; 4] = b"WRec";
/// Bytes before a record's payload (version 1: [`RECORD_HEADER_LEN_V1`]).
pub const RECORD_HEADER_LEN: usize = 44;
/// Bytes before a version 1 record's payload.
pub const RECORD_HEADER_LEN_V1: usize = 28;

/// Where a record's events stand among the events one run of the router wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sequence {
    /// The run: the id of the first segment it wrote.
    pub run: u64,
    /// The number of the record's first event in its run.
    pub first: u64,
}
/// Largest payload accepted when reading; a header claiming more is corrupt.
pub const MAX_PAYLOAD: usize = 512 << 20;

/// A record's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Bytes of payload after the header.
    pub payload_len: u32,
    /// Events in the payload.
    pub events: u32,
    /// When the buffer accepted the batch, ns since the epoch.
    pub accepted_at_ns: u64,
    /// Where its events stand (version 1 records: unknown).
    pub sequence: Option<Sequence>,
    /// Bytes of the header.
    pub header_len: usize,
}

impl RecordHeader {
    /// Header plus payload.
    pub fn record_len(&self) -> usize {
        self.header_len + self.payload_len as usize
    }
}

/// Bytes [`encode_record`] appends for `batch`.
pub fn encoded_len(batch: &Batch) -> usize {
    RECORD_HEADER_LEN
        + 4
        + batch.tag.len()
        + batch
            .events
            .iter()
            .map(|e| 12 + e.body.len())
            .sum::<usize>()
}

/// Append the record of `batch`, accepted at `accepted_at_ns`, to `out`; its [`Sequence`] is set
/// with [`set_sequence`] when it is written.
pub fn encode_record(batch: &Batch, accepted_at_ns: u64, out: &mut Vec<u8>) {
    let start = out.len();
    out.reserve(encoded_len(batch));
    out.extend_from_slice(&[0; RECORD_HEADER_LEN]);
    out.extend_from_slice(&(batch.tag.len() as u32).to_le_bytes());
    out.extend_from_slice(&batch.tag);
    for event in &batch.events {
        out.extend_from_slice(&event.time_ns.to_le_bytes());
        out.extend_from_slice(&(event.body.len() as u32).to_le_bytes());
        out.extend_from_slice(&event.body);
    }
    let payload_len = (out.len() - start - RECORD_HEADER_LEN) as u32;
    let payload_crc = crc32fast::hash(&out[start + RECORD_HEADER_LEN..]);
    let header = &mut out[start..start + RECORD_HEADER_LEN];
    header[0..4].copy_from_slice(RECORD_MAGIC);
    header[4..8].copy_from_slice(&payload_len.to_le_bytes());
    header[8..12].copy_from_slice(&(batch.events.len() as u32).to_le_bytes());
    header[12..20].copy_from_slice(&accepted_at_ns.to_le_bytes());
    header[40..44].copy_from_slice(&payload_crc.to_le_bytes());
    set_sequence(&mut out[start..], Sequence { run: 0, first: 0 });
}

/// Set the [`Sequence`] of the record [`encode_record`] wrote at the start of `record`.
pub fn set_sequence(record: &mut [u8], sequence: Sequence) {
    record[20..28].copy_from_slice(&sequence.run.to_le_bytes());
    record[28..36].copy_from_slice(&sequence.first.to_le_bytes());
    let header_crc = crc32fast::hash(&record[4..36]);
    record[36..40].copy_from_slice(&header_crc.to_le_bytes());
}

/// What is at the start of a byte slice.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole, valid record of `len` bytes.
    Record {
        /// The batch it holds.
        batch: Batch,
        /// When the buffer accepted it.
        accepted_at_ns: u64,
        /// Bytes it occupies.
        len: usize,
        /// Where its events stand.
        sequence: Option<Sequence>,
    },
    /// The slice ends inside a record; `need` bytes from its start would complete it (when the
    /// header is readable), or more bytes are needed to read the header at all.
    Incomplete {
        /// Total bytes of the record, when its header is valid.
        need: Option<usize>,
    },
    /// The record's header is valid but its payload fails its checksum or does not decode:
    /// skip exactly `len` bytes; `events` events are lost.
    BadPayload {
        /// Bytes to skip.
        len: usize,
        /// Events lost.
        events: u32,
        /// Where they stood.
        sequence: Option<Sequence>,
    },
    /// No valid header here: scan for the next one with [`find_next_header`].
    BadHeader,
}

/// Read the header at the start of `buf`, if it is complete and valid.
fn header(buf: &[u8]) -> Result<Option<RecordHeader>, ()> {
    let n = buf.len().min(4);
    let header_len = if buf[..n] == RECORD_MAGIC[..n] {
        RECORD_HEADER_LEN
    } else if buf[..n] == RECORD_MAGIC_V1[..n] {
        RECORD_HEADER_LEN_V1
    } else {
        return Err(());
    };
    // A prefix of a magic may be the start of a record still to be read.
    if n < 4 || buf.len() < header_len {
        return Ok(None);
    }
    let fields = &buf[4..header_len - 8];
    let stored_crc = u32::from_le_bytes(buf[header_len - 8..header_len - 4].try_into().unwrap());
    if crc32fast::hash(fields) != stored_crc {
        return Err(());
    }
    let sequence = (header_len == RECORD_HEADER_LEN).then(|| Sequence {
        run: u64::from_le_bytes(buf[20..28].try_into().unwrap()),
        first: u64::from_le_bytes(buf[28..36].try_into().unwrap()),
    });
    let h = RecordHeader {
        payload_len: u32::from_le_bytes(buf[4..8].try_into().unwrap()),
        events: u32::from_le_bytes(buf[8..12].try_into().unwrap()),
        accepted_at_ns: u64::from_le_bytes(buf[12..20].try_into().unwrap()),
        sequence,
        header_len,
    };
    if h.payload_len as usize > MAX_PAYLOAD {
        return Err(());
    }
    Ok(Some(h))
}

/// Parse the record at the start of `buf`. The batch's tag and bodies share `buf`'s memory.
pub fn parse_record(buf: &Bytes) -> Parsed {
    let h = match header(buf) {
        Err(()) => return Parsed::BadHeader,
        Ok(None) => return Parsed::Incomplete { need: None },
        Ok(Some(h)) => h,
    };
    let len = h.record_len();
    if buf.len() < len {
        return Parsed::Incomplete { need: Some(len) };
    }
    let payload = buf.slice(h.header_len..len);
    let stored_crc = u32::from_le_bytes(buf[h.header_len - 4..h.header_len].try_into().unwrap());
    let bad = Parsed::BadPayload {
        len,
        events: h.events,
        sequence: h.sequence,
    };
    if crc32fast::hash(&payload) != stored_crc {
        return bad;
    }
    match decode_payload(&payload, h.events) {
        Some(batch) => Parsed::Record {
            batch,
            accepted_at_ns: h.accepted_at_ns,
            len,
            sequence: h.sequence,
        },
        None => bad,
    }
}

fn decode_payload(payload: &Bytes, events: u32) -> Option<Batch> {
    let mut pos = 0usize;
    let mut take = |n: usize| -> Option<Bytes> {
        let end = pos.checked_add(n)?;
        let s = payload.get(pos..end)?;
        let out = payload.slice_ref(s);
        pos = end;
        Some(out)
    };
    let tag_len = u32::from_le_bytes(take(4)?[..].try_into().ok()?) as usize;
    let tag = take(tag_len)?;
    let mut list = Vec::with_capacity((events as usize).min(payload.len() / 12 + 1));
    for _ in 0..events {
        let time_ns = u64::from_le_bytes(take(8)?[..].try_into().ok()?);
        let body_len = u32::from_le_bytes(take(4)?[..].try_into().ok()?) as usize;
        list.push(Event {
            time_ns,
            body: take(body_len)?,
        });
    }
    (pos == payload.len()).then(|| Batch::new(tag, list))
}

/// The offset, after `from`, of the next position in `buf` that holds a valid record header
/// (or could, if `buf` ends inside a possible header). `None`: nothing in `buf` can be one.
pub fn find_next_header(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from + 1;
    while at < buf.len() {
        let rest = &buf[at..];
        match rest.iter().position(|&b| b == RECORD_MAGIC[0]) {
            None => return None,
            Some(i) => at += i,
        }
        if header(&buf[at..]).is_ok() {
            return Some(at);
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(tag: &'static [u8], bodies: &[&'static [u8]]) -> Batch {
        let events = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| Event {
                time_ns: 1000 + i as u64,
                body: Bytes::from_static(b),
            })
            .collect();
        Batch::new(Bytes::from_static(tag), events)
    }

    fn encode(b: &Batch, at: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_record(b, at, &mut out);
        out
    }

    #[test]
    fn round_trip_keeps_tag_times_bodies_and_acceptance_time() {
        let b = batch(
            b"app.web",
            &[b"\x81\xa3log\xa2hi", b"\x80", b"\x81\xa1k\xc4\x02\xff\xfe"],
        );
        let bytes = encode(&b, 42);
        assert_eq!(bytes.len(), encoded_len(&b));
        match parse_record(&Bytes::from(bytes.clone())) {
            Parsed::Record {
                batch,
                accepted_at_ns,
                len,
                sequence,
            } => {
                assert_eq!(sequence, Some(Sequence { run: 0, first: 0 }));
                assert_eq!(batch, b);
                assert_eq!(accepted_at_ns, 42);
                assert_eq!(len, bytes.len());
            }
            other => panic!("{other:?}"),
        }
        // An empty batch and an empty tag are records too.
        let empty = Batch::new(Bytes::new(), vec![]);
        assert!(matches!(
            parse_record(&Bytes::from(encode(&empty, 0))),
            Parsed::Record { .. }
        ));
    }

    #[test]
    fn every_truncation_is_incomplete_never_a_record() {
        let bytes = encode(&batch(b"t", &[b"\x81\xa1a\x01", b"\x81\xa1b\x02"]), 7);
        for cut in 0..bytes.len() {
            match parse_record(&Bytes::copy_from_slice(&bytes[..cut])) {
                Parsed::Incomplete { need } => {
                    if cut >= RECORD_HEADER_LEN {
                        assert_eq!(need, Some(bytes.len()));
                    }
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_flipped_payload_bit_is_skipped_exactly_with_its_event_count() {
        let b = batch(b"t", &[b"\x81\xa1a\x01", b"\x81\xa1b\x02", b"\x80"]);
        let mut bytes = encode(&b, 7);
        let len = bytes.len();
        for i in RECORD_HEADER_LEN..len {
            bytes[i] ^= 0x10;
            assert_eq!(
                parse_record(&Bytes::copy_from_slice(&bytes)),
                Parsed::BadPayload {
                    len,
                    events: 3,
                    sequence: Some(Sequence { run: 0, first: 0 })
                },
                "byte {i}"
            );
            bytes[i] ^= 0x10;
        }
    }

    #[test]
    fn a_flipped_header_bit_is_a_bad_header_and_the_next_record_is_found() {
        let first = encode(&batch(b"a", &[b"\x80"]), 1);
        let second = encode(&batch(b"b", &[b"\x81\xa1x\x01"]), 2);
        for i in 0..RECORD_HEADER_LEN - 4 {
            let mut bytes = first.clone();
            bytes[i] ^= 0x01;
            bytes.extend_from_slice(&second);
            let buf = Bytes::from(bytes);
            assert_eq!(parse_record(&buf), Parsed::BadHeader, "byte {i}");
            let next = find_next_header(&buf, 0).expect("second record");
            assert_eq!(next, first.len(), "byte {i}");
            assert!(matches!(
                parse_record(&buf.slice(next..)),
                Parsed::Record { .. }
            ));
        }
        // Garbage with no record after it.
        assert_eq!(find_next_header(&[0u8; 100], 0), None);
        // Random bytes that happen to contain the magic but no valid header checksum.
        let mut junk = vec![0u8; 64];
        junk[10..14].copy_from_slice(RECORD_MAGIC);
        assert_eq!(find_next_header(&junk, 0), None);
        // A magic at the very end may be the start of a header still being read.
        let mut tail = vec![0u8; 10];
        tail.extend_from_slice(b"WR");
        assert_eq!(find_next_header(&tail, 0), Some(10));
    }

    #[test]
    fn a_header_claiming_a_huge_payload_is_bad() {
        let mut bytes = encode(&batch(b"t", &[b"\x80"]), 1);
        bytes[4..8].copy_from_slice(&(MAX_PAYLOAD as u32 + 1).to_le_bytes());
        set_sequence(&mut bytes, Sequence { run: 0, first: 0 });
        assert_eq!(parse_record(&Bytes::from(bytes)), Parsed::BadHeader);
    }

    #[test]
    fn a_payload_whose_lengths_disagree_with_its_event_count_is_bad() {
        let mut bytes = encode(&batch(b"t", &[b"\x80", b"\x80"]), 1);
        // Claim 3 events with a valid header checksum: decoding runs out of payload.
        bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
        set_sequence(&mut bytes, Sequence { run: 2, first: 9 });
        let len = bytes.len();
        assert_eq!(
            parse_record(&Bytes::from(bytes)),
            Parsed::BadPayload {
                len,
                events: 3,
                sequence: Some(Sequence { run: 2, first: 9 })
            }
        );
    }

    #[test]
    fn the_sequence_is_set_at_write_time_and_version_1_records_are_still_read() {
        let b = batch(b"t", &[b"\x80", b"\x81\xa1a\x01"]);
        let mut bytes = encode(&b, 5);
        set_sequence(
            &mut bytes,
            Sequence {
                run: 7,
                first: 1234,
            },
        );
        let Parsed::Record { sequence, .. } = parse_record(&Bytes::from(bytes.clone())) else {
            panic!()
        };
        assert_eq!(
            sequence,
            Some(Sequence {
                run: 7,
                first: 1234
            })
        );
        // The same record as version 1 wrote it: no run and number in a 28-byte header.
        let mut v1 = Vec::new();
        v1.extend_from_slice(RECORD_MAGIC_V1);
        v1.extend_from_slice(&bytes[4..20]);
        let crc = crc32fast::hash(&v1[4..20]);
        v1.extend_from_slice(&crc.to_le_bytes());
        v1.extend_from_slice(&bytes[40..44]);
        v1.extend_from_slice(&bytes[RECORD_HEADER_LEN..]);
        match parse_record(&Bytes::from(v1.clone())) {
            Parsed::Record {
                batch,
                accepted_at_ns,
                len,
                sequence,
            } => {
                assert_eq!(
                    (batch, accepted_at_ns, len, sequence),
                    (b, 5, v1.len(), None)
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
