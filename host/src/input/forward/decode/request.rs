//! One complete request frame → [`Request`]: carrier mode, options, entries (reference §2, §4).

use super::decompress::{Compression, decompress};
use super::entries::{EventSink, is_map_at, read_time};
use super::framing::ArrayLayout;
use super::msgpack::{Head, ScanError, read_head, skip_value};
use super::{DecodeError, DecodeLimits, Mode, Request, SizeLimit};
use crate::event::{Batch, Event};
use bytes::Bytes;
use std::ops::Range;

/// Smallest valid entry: fixarray(2), a 1-byte time, an empty fixmap.
const MIN_ENTRY_BYTES: usize = 3;
/// First reservation for a request's events; the vector grows past it as events arrive.
const MAX_INITIAL_EVENTS: usize = 4096;
/// Packed payloads larger than this have their entries counted for [`held_bound`].
const EXACT_COUNT_ABOVE: usize = 64 * 1024;
/// Entry ends kept from that count for decoding (16 KiB per connection at most).
const MAX_KNOWN_ENDS: usize = MAX_INITIAL_EVENTS;

/// What one connection's decoder keeps between requests, to save work and allocations.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    /// Where the ready frame's first entries end, when [`held_bound`] counted them.
    pub entry_ends: Vec<u32>,
    /// An empty one-event list for the next Message-mode request ([`super::Decoder::recycle`]).
    pub single: Option<Vec<Event>>,
}

/// The option map's fields the receiver acts on (reference §4). Other keys are ignored.
#[derive(Debug, Default)]
struct Options {
    /// Range of the raw `chunk` value (header included), to echo in the ack.
    chunk: Option<Range<usize>>,
    compression: Option<Compression>,
    fluent_signal: i64,
}

/// Decode the request in `frame`, a complete top-level array of `layout.items` (≥ 2) elements
/// laid out by the framing scan. Whatever follows the option is ignored, as Fluentd and Fluent
/// Bit do.
pub(super) fn parse_request(
    frame: Bytes,
    layout: &ArrayLayout,
    limits: &DecodeLimits,
    plain: Option<Bytes>,
    max_held: usize,
    clock: fn() -> u64,
    scratch: &mut Scratch,
) -> Result<Request, DecodeError> {
    let known_ends = &scratch.entry_ends;
    let data = &frame[..];
    let element = |i: usize| {
        layout
            .element(i)
            .expect("the framing scan records elements 0 to 3")
    };
    let tag = match read_head(data, layout.header_end).map_err(|e| scan_error(e, "tag"))? {
        Head::Str { body, len } => frame.slice(body..body + len),
        other => {
            return Err(malformed(format!(
                "tag is {}, expected a string",
                other.kind()
            )));
        }
    };
    let second = element(1);
    let head = read_head(data, second.start).map_err(|e| scan_error(e, "request"))?;
    let option_index = match head {
        Head::Uint(_) | Head::Int(_) | Head::Ext { .. } | Head::Float(_) if layout.items < 3 => {
            return Err(malformed(
                "Message-mode request has no record; expected [tag, time, record, option?]".into(),
            ));
        }
        Head::Uint(_) | Head::Int(_) | Head::Ext { .. } | Head::Float(_) => 3,
        Head::Array { .. } | Head::Str { .. } | Head::Bin { .. } => 2,
        other => {
            return Err(malformed(format!(
                "second element is {}; expected a time (Message mode), an array of entries (Forward) or a binary/string of packed entries (PackedForward)",
                other.kind()
            )));
        }
    };
    let options = match layout.element(option_index) {
        Some(option) => parse_options(data, option.start)?,
        None => Options::default(),
    };
    let chunk = options.chunk.clone().map(|r| frame.slice(r));
    match head {
        Head::Array { items, header_end } => {
            if options.fluent_signal != 0 {
                return Ok(skipped_signal(
                    tag,
                    chunk,
                    options.fluent_signal,
                    Mode::Forward,
                ));
            }
            let capacity = items
                .min((second.end - header_end) / MIN_ENTRY_BYTES)
                .min(MAX_INITIAL_EVENTS);
            let max_events = events_within(max_held, frame.len())?;
            let mut sink = EventSink::new(capacity, max_events, clock);
            let mut pos = header_end;
            for _ in 0..items {
                pos = sink
                    .entry(&frame, second.end, pos, 2)
                    .map_err(|e| scan_error(e, "Forward entries"))?;
            }
            request(tag, chunk, Mode::Forward, sink, frame.len(), max_held)
        }
        Head::Str { body, len } | Head::Bin { body, len } => {
            let payload = body..body + len;
            let compression = Compression::sniff(
                &data[payload.clone()],
                options.compression.unwrap_or(Compression::None),
            );
            let mode = if compression == Compression::None {
                Mode::PackedForward
            } else {
                Mode::CompressedPackedForward
            };
            if options.fluent_signal != 0 {
                // Not even decompressed: the payload is cmetrics / ctraces / ..., not entries.
                return Ok(skipped_signal(tag, chunk, options.fluent_signal, mode));
            }
            let (sink, source_bytes) = if compression == Compression::None {
                let max_events = events_within(max_held, frame.len())?;
                (
                    packed_entries(&frame, payload, max_events, clock, known_ends)?,
                    frame.len(),
                )
            } else {
                let plain = match plain {
                    Some(plain) => plain,
                    None => {
                        let room = max_held.saturating_sub(frame.len());
                        Bytes::from(decompress(
                            compression,
                            &data[payload],
                            limits.max_decompressed_bytes.min(room),
                        )?)
                    }
                };
                let source_bytes = frame.len() + plain.len();
                let max_events = events_within(max_held, source_bytes)?;
                (
                    packed_entries(&plain, 0..plain.len(), max_events, clock, known_ends)?,
                    source_bytes,
                )
            };
            request(tag, chunk, mode, sink, source_bytes, max_held)
        }
        _ => {
            if options.fluent_signal != 0 {
                return Ok(skipped_signal(
                    tag,
                    chunk,
                    options.fluent_signal,
                    Mode::Message,
                ));
            }
            let (time, _) = read_time(data, second.start, 1).map_err(|e| scan_error(e, "time"))?;
            let record = element(2);
            let is_map = is_map_at(data, record.start);
            let events = scratch
                .single
                .take()
                .unwrap_or_else(|| Vec::with_capacity(1));
            let mut sink = EventSink::with_events(events, 1, clock);
            sink.push(&frame, time, record, is_map);
            request(tag, chunk, Mode::Message, sink, frame.len(), usize::MAX)
        }
    }
}

/// The request of `sink`'s events, whose bodies point into `source_bytes` of buffers; refused
/// when the events did not fit in `max_held` bytes.
fn request(
    tag: Bytes,
    chunk: Option<Bytes>,
    mode: Mode,
    sink: EventSink,
    source_bytes: usize,
    max_held: usize,
) -> Result<Request, DecodeError> {
    if sink.over_limit {
        return Err(DecodeError::TooLarge {
            limit: max_held,
            what: SizeLimit::Decoded,
        });
    }
    Ok(Request {
        held_bytes: source_bytes + sink.events.capacity() * size_of::<Event>(),
        batch: Batch::new(tag, sink.events),
        chunk,
        invalid_events: sink.invalid,
        skipped_signal: None,
        mode,
    })
}

/// The packed payload of the request in `frame` and how it is compressed, if it is a
/// PackedForward / CompressedPackedForward request.
fn packed_payload<'a>(frame: &'a [u8], layout: &ArrayLayout) -> Option<(&'a [u8], Compression)> {
    let second = layout.element(1)?;
    let (Ok(Head::Str { body, len }) | Ok(Head::Bin { body, len })) =
        read_head(frame, second.start)
    else {
        return None;
    };
    let option = layout
        .element(2)
        .and_then(|o| parse_options(frame, o.start).ok());
    if option.as_ref().is_some_and(|o| o.fluent_signal != 0) {
        return None;
    }
    let payload = frame.get(body..body + len).unwrap_or_default();
    let compression = Compression::sniff(
        payload,
        option
            .and_then(|o| o.compression)
            .unwrap_or(Compression::None),
    );
    Some((payload, compression))
}

/// The decompressed payload of the request in `frame`, if it is a compressed packed one.
pub(super) fn decompress_payload(
    frame: &[u8],
    layout: &ArrayLayout,
    limits: &DecodeLimits,
) -> Result<Option<Bytes>, DecodeError> {
    match packed_payload(frame, layout) {
        Some((payload, compression)) if compression != Compression::None => Ok(Some(Bytes::from(
            decompress(compression, payload, limits.max_decompressed_bytes)?,
        ))),
        _ => Ok(None),
    }
}

/// How many entries `payload` holds (a scan; stops at the first broken one). The ends of the
/// first [`MAX_KNOWN_ENDS`] entries are kept in `ends` (offsets in `payload`), so that decoding
/// the same payload does not walk their records again ([`packed_entries`]).
fn count_entries(payload: &[u8], ends: &mut Vec<u32>) -> usize {
    ends.clear();
    let mut count = 0usize;
    let mut pos = 0;
    while pos < payload.len() {
        match skip_value(payload, pos, 1) {
            Ok(end) => pos = end,
            Err(_) => break,
        }
        if ends.len() < MAX_KNOWN_ENDS
            && let Ok(end) = u32::try_from(pos)
        {
            ends.push(end);
        }
        count += 1;
    }
    count
}

/// The most memory the request in `frame` (complete, laid out as `layout`) can hold once decoded:
/// the request, its decompressed payload, and one [`Event`] per possible entry (an entry takes
/// at least [`MIN_ENTRY_BYTES`]). Cheap: reads the heads and the option map only, or counts the
/// entries of a large or decompressed (`plain`) payload, keeping where they end in `ends` for
/// [`parse_request`] (cleared otherwise). A compressed payload not yet decompressed is bounded
/// by the room decompressing it needs.
pub(super) fn held_bound(
    frame: &[u8],
    layout: &ArrayLayout,
    limits: &DecodeLimits,
    plain: Option<&Bytes>,
    ends: &mut Vec<u32>,
) -> usize {
    ends.clear();
    let per_event = size_of::<Event>();
    let entries = |bytes: usize| (bytes / MIN_ENTRY_BYTES + 1).saturating_mul(per_event);
    let Some(second) = layout.element(1) else {
        return frame.len();
    };
    match read_head(frame, second.start) {
        Ok(Head::Array { items, .. }) => frame.len().saturating_add(
            items
                .min(frame.len() / MIN_ENTRY_BYTES + 1)
                .saturating_mul(per_event),
        ),
        Ok(Head::Str { body, len } | Head::Bin { body, len }) => {
            let option = layout
                .element(2)
                .and_then(|o| parse_options(frame, o.start).ok())
                .and_then(|o| o.compression)
                .unwrap_or(Compression::None);
            let payload = frame.get(body..body + len).unwrap_or_default();
            let mut counted =
                |payload: &[u8]| (count_entries(payload, ends) + 1).saturating_mul(per_event);
            if let Some(plain) = plain {
                frame
                    .len()
                    .saturating_add(plain.len())
                    .saturating_add(counted(plain))
            } else if Compression::sniff(payload, option) != Compression::None {
                frame.len().saturating_add(limits.max_decompressed_bytes)
            } else if len <= EXACT_COUNT_ABOVE {
                frame.len().saturating_add(entries(len))
            } else {
                // Large: count the entries, so the charge is what the events will take rather
                // than the worst case of 3-byte entries.
                frame.len().saturating_add(counted(payload))
            }
        }
        _ => frame.len() + per_event,
    }
}

/// How many events fit in `max_held` bytes next to `source_bytes` of request buffers.
fn events_within(max_held: usize, source_bytes: usize) -> Result<usize, DecodeError> {
    match max_held.checked_sub(source_bytes) {
        Some(room) => Ok(room / size_of::<Event>()),
        None => Err(DecodeError::TooLarge {
            limit: max_held,
            what: SizeLimit::Decoded,
        }),
    }
}

/// A request whose `fluent_signal` is not 0 (logs): metrics, traces, ... are not `[time, record]`
/// streams, so the payload is skipped; the request is still acked (reference §4, §10.4).
fn skipped_signal(tag: Bytes, chunk: Option<Bytes>, signal: i64, mode: Mode) -> Request {
    Request {
        held_bytes: 0,
        batch: Batch::new(tag, Vec::new()),
        chunk,
        invalid_events: 0,
        skipped_signal: Some(signal),
        mode,
    }
}

/// The entries of a packed payload: a msgpack stream of `[time, record]`, read until the
/// payload is used up (reference §2.3). An entry cut off by the end of the payload is an error.
fn packed_entries(
    source: &Bytes,
    payload: Range<usize>,
    max_events: usize,
    clock: fn() -> u64,
    known_ends: &[u32],
) -> Result<EventSink, DecodeError> {
    let capacity = (payload.len() / 64).min(MAX_INITIAL_EVENTS);
    let mut sink = EventSink::new(capacity, max_events, clock);
    let mut pos = payload.start;
    // Entries whose ends the count found: only their times are read.
    for &end in known_ends {
        let end = payload.start + end as usize;
        if end > payload.end || end <= pos {
            break;
        }
        pos = sink
            .known_entry(source, pos, end)
            .map_err(|e| scan_error(e, "packed entries"))?;
    }
    while pos < payload.end {
        pos = sink.entry(source, payload.end, pos, 0).map_err(|e| match e {
            ScanError::Truncated => malformed(format!(
                "packed entries are truncated: the entry at byte {} of the {}-byte payload does not end inside it",
                pos - payload.start,
                payload.len()
            )),
            e => scan_error(e, "packed entries"),
        })?;
    }
    Ok(sink)
}

/// Read the option map (reference §4). `nil` counts as no options; any other non-map is an error.
fn parse_options(data: &[u8], start: usize) -> Result<Options, DecodeError> {
    let mut options = Options::default();
    let (pairs, mut pos) = match read_head(data, start).map_err(|e| scan_error(e, "option"))? {
        Head::Nil => return Ok(options),
        Head::Map { pairs, header_end } => (pairs, header_end),
        other => {
            return Err(malformed(format!(
                "option is {}, expected a map or nil",
                other.kind()
            )));
        }
    };
    for _ in 0..pairs {
        let key = read_head(data, pos).map_err(|e| scan_error(e, "option"))?;
        let value_start = skip_value(data, pos, 2).map_err(|e| scan_error(e, "option"))?;
        let value_end = skip_value(data, value_start, 2).map_err(|e| scan_error(e, "option"))?;
        let key = match key {
            Head::Str { body, len } => &data[body..body + len],
            _ => b"",
        };
        match key {
            b"chunk" => {
                match read_head(data, value_start).map_err(|e| scan_error(e, "option chunk"))? {
                    Head::Str { .. } => options.chunk = Some(value_start..value_end),
                    other => {
                        return Err(malformed(format!(
                            "option chunk is {}, expected a string",
                            other.kind()
                        )));
                    }
                }
            }
            b"compressed" => {
                options.compression = match read_head(data, value_start)
                    .map_err(|e| scan_error(e, "option compressed"))?
                {
                    Head::Str { body, len } => {
                        Some(Compression::from_option(&data[body..body + len]))
                    }
                    _ => None,
                }
            }
            b"fluent_signal" => {
                options.fluent_signal = match read_head(data, value_start)
                    .map_err(|e| scan_error(e, "option fluent_signal"))?
                {
                    Head::Uint(n) => i64::try_from(n).unwrap_or(i64::MAX),
                    Head::Int(n) => n,
                    other => {
                        return Err(malformed(format!(
                            "option fluent_signal is {}, expected an integer",
                            other.kind()
                        )));
                    }
                }
            }
            _ => {}
        }
        pos = value_end;
    }
    Ok(options)
}

fn malformed(reason: String) -> DecodeError {
    DecodeError::Malformed(reason)
}

fn scan_error(e: ScanError, what: &str) -> DecodeError {
    DecodeError::Malformed(e.describe(what))
}
