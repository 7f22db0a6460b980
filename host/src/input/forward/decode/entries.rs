//! Entries and times: turning `[time, record]` entries into [`Event`]s (reference §2, §3).
//!
//! The record is never decoded: its extent is found by skipping, and the event body is a
//! zero-copy slice of the buffer that holds it (the request frame, or the decompressed payload).
//! An entry whose time or record is unusable is skipped and counted, and decoding goes on
//! (reference §9.2: Fluentd's `skip_invalid_event`).

use super::msgpack::{Head, ScanError, read_head, skip_value};
use crate::event::Event;
use bytes::Bytes;

/// EventTime seconds that Fluent Bit reserves for group start / end markers (reference §3.2).
const GROUP_START_SECONDS: u32 = 0xFFFF_FFFF;
const GROUP_END_SECONDS: u32 = 0xFFFF_FFFE;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// What the time slot of an entry says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EntryTime {
    /// Nanoseconds since the epoch.
    At(u64),
    /// Zero: the receiver's clock decides (reference §3.3, as Fluentd does).
    Now,
    /// A Fluent Bit group start/end marker: not an event.
    GroupMarker,
    /// Not a usable time.
    Invalid,
}

/// Read the time at `pos` (reference §3): any integer (seconds), EventTime as fixext8 or ext8
/// (type 0, u32 seconds + u32 nanoseconds), float seconds, or a `[time, metadata]` array.
/// Returns the time and where the time value ends.
pub(super) fn read_time(
    data: &[u8],
    pos: usize,
    depth: usize,
) -> Result<(EntryTime, usize), ScanError> {
    let head = read_head(data, pos)?;
    if let Head::Array { items, header_end } = head {
        // Fluent Bit v2 entries: `[[time, metadata], record]` (reference §3.3). Use [0].
        let end = skip_value(data, pos, depth)?;
        if items == 0 {
            return Ok((EntryTime::Invalid, end));
        }
        let inner = read_head(data, header_end)?;
        let time = if matches!(inner, Head::Array { .. } | Head::Map { .. }) {
            EntryTime::Invalid
        } else {
            scalar_time(data, inner)
        };
        return Ok((time, end));
    }
    let end = match head {
        Head::Str { body, len } | Head::Bin { body, len } | Head::Ext { body, len, .. } => {
            body + len
        }
        _ => skip_value(data, pos, depth)?,
    };
    Ok((scalar_time(data, head), end))
}

fn scalar_time(data: &[u8], head: Head) -> EntryTime {
    match head {
        Head::Uint(0) | Head::Int(0) => EntryTime::Now,
        Head::Uint(seconds) => seconds_to_time(seconds),
        Head::Int(seconds) if seconds > 0 => seconds_to_time(seconds as u64),
        Head::Ext {
            ty: 0,
            body,
            len: 8,
        } => event_time(data[body..body + 8].try_into().unwrap()),
        Head::Float(seconds) => float_time(seconds),
        _ => EntryTime::Invalid,
    }
}

/// The 8 data bytes of an EventTime: u32 seconds, u32 nanoseconds, big-endian (reference §3.2).
#[inline]
fn event_time(data: [u8; 8]) -> EntryTime {
    let seconds = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
    let nanos = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    match (seconds, nanos) {
        (GROUP_START_SECONDS | GROUP_END_SECONDS, 0) => EntryTime::GroupMarker,
        (0, 0) => EntryTime::Now,
        (_, n) if n as u64 >= NANOS_PER_SECOND => EntryTime::Invalid,
        (s, n) => EntryTime::At(s as u64 * NANOS_PER_SECOND + n as u64),
    }
}

fn seconds_to_time(seconds: u64) -> EntryTime {
    seconds
        .checked_mul(NANOS_PER_SECOND)
        .map_or(EntryTime::Invalid, EntryTime::At)
}

/// Float seconds, accepted leniently as Fluent Bit does (reference §3.3).
fn float_time(seconds: f64) -> EntryTime {
    if seconds == 0.0 {
        return EntryTime::Now;
    }
    // u64 nanoseconds reach to the year 2554.
    if !(seconds > 0.0 && seconds < (u64::MAX / NANOS_PER_SECOND) as f64) {
        return EntryTime::Invalid;
    }
    let whole = seconds.trunc();
    let nanos = ((seconds - whole) * NANOS_PER_SECOND as f64).round() as u64;
    EntryTime::At(whole as u64 * NANOS_PER_SECOND + nanos.min(NANOS_PER_SECOND - 1))
}

/// Collects the events of one request.
pub(super) struct EventSink {
    pub events: Vec<Event>,
    pub invalid: usize,
    /// Set when the request holds more than `max_events` events: it is refused as too large.
    pub over_limit: bool,
    max_events: usize,
    clock: fn() -> u64,
    now: Option<u64>,
}

impl EventSink {
    /// A sink for at most `max_events` events; the event list never allocates room for more.
    pub(super) fn new(capacity: usize, max_events: usize, clock: fn() -> u64) -> Self {
        Self::with_events(
            Vec::with_capacity(capacity.min(max_events)),
            max_events,
            clock,
        )
    }

    /// A sink filling `events` (empty; its capacity is kept).
    pub(super) fn with_events(events: Vec<Event>, max_events: usize, clock: fn() -> u64) -> Self {
        EventSink {
            events,
            invalid: 0,
            over_limit: false,
            max_events,
            clock,
            now: None,
        }
    }

    /// Add the record at `record` (a range of `source`) with `time`, or count it as invalid.
    /// `is_map` says whether the record is a msgpack map.
    #[inline]
    pub(super) fn push(
        &mut self,
        source: &Bytes,
        time: EntryTime,
        record: std::ops::Range<usize>,
        is_map: bool,
    ) {
        let time_ns = match time {
            EntryTime::GroupMarker => return,
            EntryTime::Invalid => {
                self.invalid += 1;
                return;
            }
            _ if !is_map => {
                self.invalid += 1;
                return;
            }
            EntryTime::At(ns) => ns,
            // One clock read per request.
            EntryTime::Now => *self.now.get_or_insert_with(self.clock),
        };
        let len = self.events.len();
        if len == self.events.capacity() {
            if len >= self.max_events {
                self.over_limit = true;
                return;
            }
            // Doubling, but never past the limit: the list is charged at its capacity.
            self.events
                .reserve_exact(len.max(64).min(self.max_events - len));
        }
        self.events.push(Event {
            time_ns,
            body: source.slice(record),
        });
    }

    /// Decode the entry `[time, record]` at `pos` of `source[..limit]` and return where it ends.
    /// `depth` is the nesting level of the entry itself.
    #[inline]
    pub(super) fn entry(
        &mut self,
        source: &Bytes,
        limit: usize,
        pos: usize,
        depth: usize,
    ) -> Result<usize, ScanError> {
        let data = &source[..limit];
        match entry_head(data, pos, depth)? {
            Some((time, record_start)) => {
                let record_end = skip_value(data, record_start, depth + 1)?;
                self.push(
                    source,
                    time,
                    record_start..record_end,
                    is_map_at(data, record_start),
                );
                Ok(record_end)
            }
            None => {
                let end = skip_value(data, pos, depth)?;
                self.invalid += 1;
                Ok(end)
            }
        }
    }

    /// The entry at `pos` (nesting level 0), already walked to `end` (by [`super::request`]'s
    /// count): only its time is read, the record spans the rest of it. Returns `end`.
    #[inline]
    pub(super) fn known_entry(
        &mut self,
        source: &Bytes,
        pos: usize,
        end: usize,
    ) -> Result<usize, ScanError> {
        let data = &source[..end];
        match entry_head(data, pos, 0)? {
            Some((time, record_start)) => {
                self.push(
                    source,
                    time,
                    record_start..end,
                    is_map_at(data, record_start),
                );
            }
            None => self.invalid += 1,
        }
        Ok(end)
    }
}

/// Whether the value at `pos` of `data` is a msgpack map.
#[inline]
pub(super) fn is_map_at(data: &[u8], pos: usize) -> bool {
    data.get(pos)
        .is_some_and(|&m| matches!(m, 0x80..=0x8f | 0xde | 0xdf))
}

/// The time of the entry `[time, record]` at `pos` of `data` and where its record starts;
/// `None` when the value there is not a two-element array. `depth` is the nesting level of the
/// entry itself.
#[inline]
fn entry_head(
    data: &[u8],
    pos: usize,
    depth: usize,
) -> Result<Option<(EntryTime, usize)>, ScanError> {
    // `[fixext8 EventTime, record]`: what every EventTime sender writes; skip the general path.
    if let Some(&[0x92, 0xd7, 0x00, ref time @ ..]) = data.get(pos..pos + 11) {
        return Ok(Some((event_time(time.try_into().unwrap()), pos + 11)));
    }
    match read_head(data, pos)? {
        Head::Array {
            items: 2,
            header_end,
        } => read_time(data, header_end, depth + 1).map(Some),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time_of(bytes: &[u8]) -> EntryTime {
        let (time, end) = read_time(bytes, 0, 0).unwrap();
        assert_eq!(end, bytes.len(), "time extent of {bytes:x?}");
        time
    }

    #[test]
    fn every_integer_width_is_seconds() {
        let s = 1_700_000_000u64 * NANOS_PER_SECOND;
        assert_eq!(time_of(&[0xd2, 0x65, 0x53, 0xf1, 0x00]), EntryTime::At(s));
        assert_eq!(time_of(&[0xce, 0x65, 0x53, 0xf1, 0x00]), EntryTime::At(s));
        assert_eq!(
            time_of(&[0xcf, 0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00]),
            EntryTime::At(s)
        );
        assert_eq!(
            time_of(&[0xd3, 0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00]),
            EntryTime::At(s)
        );
        assert_eq!(time_of(&[0x05]), EntryTime::At(5 * NANOS_PER_SECOND));
        assert_eq!(
            time_of(&[0xcd, 0x01, 0x00]),
            EntryTime::At(256 * NANOS_PER_SECOND)
        );
        assert_eq!(time_of(&[0x00]), EntryTime::Now);
        assert_eq!(time_of(&[0xd0, 0x00]), EntryTime::Now);
        assert_eq!(time_of(&[0xff]), EntryTime::Invalid);
        assert_eq!(
            time_of(&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            EntryTime::Invalid
        );
        assert_eq!(
            time_of(&[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            EntryTime::Invalid
        );
    }

    #[test]
    fn event_time_in_both_ext_forms() {
        let expected = EntryTime::At(0x6553_f100 * NANOS_PER_SECOND + 0x0102_0304);
        assert_eq!(
            time_of(&[0xd7, 0x00, 0x65, 0x53, 0xf1, 0x00, 0x01, 0x02, 0x03, 0x04]),
            expected
        );
        assert_eq!(
            time_of(&[
                0xc7, 0x08, 0x00, 0x65, 0x53, 0xf1, 0x00, 0x01, 0x02, 0x03, 0x04
            ]),
            expected
        );
        // u32 seconds: past 2038.
        assert_eq!(
            time_of(&[0xd7, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            EntryTime::At(0x8000_0000 * NANOS_PER_SECOND)
        );
        assert_eq!(
            time_of(&[0xd7, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]),
            EntryTime::Now
        );
        assert_eq!(
            time_of(&[0xd7, 0x01, 0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 0]),
            EntryTime::Invalid,
            "ext type 1"
        );
        assert_eq!(
            time_of(&[0xd6, 0x00, 0x65, 0x53, 0xf1, 0x00]),
            EntryTime::Invalid,
            "4 bytes"
        );
        assert_eq!(
            time_of(&[0xc7, 0x04, 0x00, 0x65, 0x53, 0xf1, 0x00]),
            EntryTime::Invalid,
            "ext8 len 4"
        );
        assert_eq!(
            time_of(&[0xd7, 0x00, 0x65, 0x53, 0xf1, 0x00, 0x3b, 0x9a, 0xca, 0x00]),
            EntryTime::Invalid,
            "nsec 1e9"
        );
    }

    #[test]
    fn group_markers_are_recognised() {
        assert_eq!(
            time_of(&[0xd7, 0x00, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
            EntryTime::GroupMarker
        );
        assert_eq!(
            time_of(&[0xd7, 0x00, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0]),
            EntryTime::GroupMarker
        );
        assert!(matches!(
            time_of(&[0xd7, 0x00, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 1]),
            EntryTime::At(_)
        ));
    }

    #[test]
    fn float_seconds_are_lenient() {
        let t = time_of(&[0xcb, 0x41, 0xd9, 0x54, 0xfc, 0x40, 0x07, 0xdf, 0x3b]); // 1700000000.123
        let EntryTime::At(ns) = t else {
            panic!("{t:?}")
        };
        assert!(
            (ns as i64 - 1_700_000_000_123_000_000).abs() < 1_000,
            "{ns}"
        );
        assert_eq!(
            time_of(&[0xca, 0x40, 0x00, 0x00, 0x00]),
            EntryTime::At(2 * NANOS_PER_SECOND)
        );
        assert_eq!(time_of(&[0xcb, 0, 0, 0, 0, 0, 0, 0, 0]), EntryTime::Now);
        assert_eq!(
            time_of(&[0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]),
            EntryTime::Invalid,
            "NaN"
        );
        assert_eq!(
            time_of(&[0xcb, 0xbf, 0xf0, 0, 0, 0, 0, 0, 0]),
            EntryTime::Invalid,
            "-1.0"
        );
    }

    #[test]
    fn time_with_metadata_uses_element_zero() {
        let t = [
            0x92, 0xd7, 0x00, 0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 7, 0x81, 0xa1, b'k', 0xa1, b'v',
        ];
        assert_eq!(
            time_of(&t),
            EntryTime::At(0x6553_f100 * NANOS_PER_SECOND + 7)
        );
        assert_eq!(
            time_of(&[0x92, 0x92, 0x01, 0x80, 0x80]),
            EntryTime::Invalid,
            "nested array"
        );
        assert_eq!(time_of(&[0x90]), EntryTime::Invalid, "empty");
    }

    #[test]
    fn other_types_are_invalid_times() {
        for bytes in [&[0xc0][..], &[0xc3], &[0xa1, b'1'], &[0xc4, 1, 1], &[0x80]] {
            assert_eq!(time_of(bytes), EntryTime::Invalid, "{bytes:x?}");
        }
    }
}
