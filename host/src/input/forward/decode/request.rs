//! One complete request frame → [`Request`]: carrier mode, options, entries (reference §2, §4).

use super::decompress::{Compression, decompress};
use super::entries::{EventSink, read_time};
use super::framing::ArrayLayout;
use super::msgpack::{Head, ScanError, read_head, skip_value};
use super::{DecodeError, DecodeLimits, Mode, Request};
use crate::event::Batch;
use bytes::Bytes;
use std::ops::Range;

/// Smallest valid entry: fixarray(2), a 1-byte time, an empty fixmap.
const MIN_ENTRY_BYTES: usize = 3;
/// First reservation for a request's events; the vector grows past it as events arrive.
const MAX_INITIAL_EVENTS: usize = 4096;

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
pub(super) fn parse_request(frame: Bytes, layout: &ArrayLayout, limits: &DecodeLimits, clock: fn() -> u64) -> Result<Request, DecodeError> {
    let data = &frame[..];
    let (tag, second) = match read_head(data, layout.header_end).map_err(|e| scan_error(e, "tag"))? {
        Head::Str { body, len } => (frame.slice(body..body + len), body + len),
        other => return Err(malformed(format!("tag is {}, expected a string", other.kind()))),
    };
    let option_at = |pos: usize, index: usize| if layout.items > index { parse_options(data, pos) } else { Ok(Options::default()) };
    match read_head(data, second).map_err(|e| scan_error(e, "request"))? {
        Head::Uint(_) | Head::Int(_) | Head::Ext { .. } | Head::Float(_) => {
            if layout.items < 3 {
                return Err(malformed("Message-mode request has no record; expected [tag, time, record, option?]".into()));
            }
            let (time, _) = read_time(data, second, 1).map_err(|e| scan_error(e, "time"))?;
            let record = layout.element(2).expect("the framing scan records elements 0 to 3");
            let (record_start, record_end) = (record.start, record.end);
            let options = option_at(record_end, 3)?;
            let mut sink = EventSink::new(1, clock);
            let is_map = matches!(data[record_start], 0x80..=0x8f | 0xde | 0xdf);
            sink.push(&frame, time, record_start..record_end, is_map);
            Ok(request(&frame, tag, sink, &options, Mode::Message))
        }
        Head::Array { items, header_end } => {
            let capacity = items.min((data.len() - header_end) / MIN_ENTRY_BYTES).min(MAX_INITIAL_EVENTS);
            let mut sink = EventSink::new(capacity, clock);
            let mut pos = header_end;
            for _ in 0..items {
                pos = sink.entry(&frame, data.len(), pos, 2).map_err(|e| scan_error(e, "Forward entries"))?;
            }
            let options = option_at(pos, 2)?;
            Ok(request(&frame, tag, sink, &options, Mode::Forward))
        }
        Head::Str { body, len } | Head::Bin { body, len } => {
            let payload = body..body + len;
            let options = option_at(payload.end, 2)?;
            let compression = Compression::sniff(&data[payload.clone()], options.compression.unwrap_or(Compression::None));
            let mode = if compression == Compression::None { Mode::PackedForward } else { Mode::CompressedPackedForward };
            if options.fluent_signal != 0 {
                // Metrics, traces, ... are not `[time, record]` streams: do not even decompress.
                return Ok(request(&frame, tag, EventSink::new(0, clock), &options, mode));
            }
            let sink = if compression == Compression::None {
                packed_entries(&frame, payload, clock)?
            } else {
                let plain = Bytes::from(decompress(compression, &data[payload], limits.max_decompressed_bytes)?);
                packed_entries(&plain, 0..plain.len(), clock)?
            };
            Ok(request(&frame, tag, sink, &options, mode))
        }
        other => Err(malformed(format!(
            "second element is {}; expected a time (Message mode), an array of entries (Forward) or a binary/string of packed entries (PackedForward)",
            other.kind()
        ))),
    }
}

/// The request, or for a non-log `fluent_signal` an empty one that is still acked: metrics,
/// traces, ... are not `[time, record]` streams (reference §4, §10.4).
fn request(frame: &Bytes, tag: Bytes, sink: EventSink, options: &Options, mode: Mode) -> Request {
    let chunk = options.chunk.clone().map(|r| frame.slice(r));
    if options.fluent_signal != 0 {
        return Request { batch: Batch::new(tag, Vec::new()), chunk, invalid_events: 0, skipped_signal: Some(options.fluent_signal), mode };
    }
    Request { batch: Batch::new(tag, sink.events), chunk, invalid_events: sink.invalid, skipped_signal: None, mode }
}

/// The entries of a packed payload: a msgpack stream of `[time, record]`, read until the
/// payload is used up (reference §2.3). An entry cut off by the end of the payload is an error.
fn packed_entries(source: &Bytes, payload: Range<usize>, clock: fn() -> u64) -> Result<EventSink, DecodeError> {
    let mut sink = EventSink::new((payload.len() / 64).min(MAX_INITIAL_EVENTS), clock);
    let mut pos = payload.start;
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
        other => return Err(malformed(format!("option is {}, expected a map or nil", other.kind()))),
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
            b"chunk" => match read_head(data, value_start).map_err(|e| scan_error(e, "option chunk"))? {
                Head::Str { .. } => options.chunk = Some(value_start..value_end),
                other => return Err(malformed(format!("option chunk is {}, expected a string", other.kind()))),
            },
            b"compressed" => {
                options.compression = match read_head(data, value_start).map_err(|e| scan_error(e, "option compressed"))? {
                    Head::Str { body, len } => Some(Compression::from_option(&data[body..body + len])),
                    _ => None,
                }
            }
            b"fluent_signal" => {
                options.fluent_signal = match read_head(data, value_start).map_err(|e| scan_error(e, "option fluent_signal"))? {
                    Head::Uint(n) => i64::try_from(n).unwrap_or(i64::MAX),
                    Head::Int(n) => n,
                    other => return Err(malformed(format!("option fluent_signal is {}, expected an integer", other.kind()))),
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
