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

/// Decode the request in `frame`, whose top-level array was laid out by the framing scan.
pub(super) fn parse_request(frame: Bytes, layout: &ArrayLayout, limits: &DecodeLimits, clock: fn() -> u64) -> Result<Request, DecodeError> {
    let data = &frame[..];
    let element = |i: usize| layout.element(i).expect("the framing scan records the first 4 elements");
    let tag = match read_head(data, element(0).start).map_err(|e| scan_error(e, "tag"))? {
        Head::Str { body, len } => frame.slice(body..body + len),
        other => return Err(malformed(format!("tag is {}, expected a string", other.kind()))),
    };
    let second = element(1);
    let mode = match read_head(data, second.start).map_err(|e| scan_error(e, "request"))? {
        Head::Uint(_) | Head::Int(_) | Head::Ext { .. } | Head::Float(_) => Mode::Message,
        Head::Array { .. } => Mode::Forward,
        Head::Str { .. } | Head::Bin { .. } => Mode::PackedForward,
        other => {
            return Err(malformed(format!(
                "second element is {}; expected a time (Message mode), an array of entries (Forward) or a binary/string of packed entries (PackedForward)",
                other.kind()
            )));
        }
    };
    if mode == Mode::Message && layout.items < 3 {
        return Err(malformed("Message-mode request has no record; expected [tag, time, record, option?]".into()));
    }
    let option_index = if mode == Mode::Message { 3 } else { 2 };
    let options = match layout.element(option_index) {
        Some(range) => parse_options(data, range)?,
        None => Options::default(),
    };
    let chunk = options.chunk.clone().map(|r| frame.slice(r));
    if options.fluent_signal != 0 {
        // Metrics, traces, ... are not `[time, record]` streams: skip, keep the connection, ack.
        let mode = packed_mode(mode, &options, &frame[second.clone()]);
        return Ok(Request {
            batch: Batch::new(tag, Vec::new()),
            chunk,
            invalid_events: 0,
            skipped_signal: Some(options.fluent_signal),
            mode,
        });
    }
    match mode {
        Mode::Message => {
            let mut sink = EventSink::new(1, clock);
            let (time, _) = read_time(data, second.start, 1).map_err(|e| scan_error(e, "time"))?;
            let record = element(2);
            let is_map = matches!(data[record.start], 0x80..=0x8f | 0xde | 0xdf);
            sink.push(&frame, time, record, is_map);
            Ok(request(tag, sink, chunk, None, mode))
        }
        Mode::Forward => {
            let Head::Array { items, header_end } = read_head(data, second.start).map_err(|e| scan_error(e, "entries"))? else {
                unreachable!("classified as Forward by its array header")
            };
            let capacity = items.min((second.end - header_end) / MIN_ENTRY_BYTES).min(MAX_INITIAL_EVENTS);
            let mut sink = EventSink::new(capacity, clock);
            let mut pos = header_end;
            for _ in 0..items {
                pos = sink.entry(&frame, second.end, pos, 2).map_err(|e| scan_error(e, "Forward entries"))?;
            }
            Ok(request(tag, sink, chunk, None, mode))
        }
        Mode::PackedForward | Mode::CompressedPackedForward => {
            let (Head::Str { body, len } | Head::Bin { body, len }) =
                read_head(data, second.start).map_err(|e| scan_error(e, "entries"))?
            else {
                unreachable!("classified as PackedForward by its str/bin header")
            };
            let payload = body..body + len;
            match packed_mode(mode, &options, &frame[payload.clone()]) {
                Mode::CompressedPackedForward => {
                    let compression = Compression::sniff(&frame[payload.clone()], options.compression.unwrap_or(Compression::None));
                    let plain = Bytes::from(decompress(compression, &frame[payload], limits.max_decompressed_bytes)?);
                    let range = 0..plain.len();
                    let sink = packed_entries(&plain, range, clock)?;
                    Ok(request(tag, sink, chunk, None, Mode::CompressedPackedForward))
                }
                _ => {
                    let sink = packed_entries(&frame, payload, clock)?;
                    Ok(request(tag, sink, chunk, None, Mode::PackedForward))
                }
            }
        }
    }
}

fn request(tag: Bytes, sink: EventSink, chunk: Option<Bytes>, skipped_signal: Option<i64>, mode: Mode) -> Request {
    Request { batch: Batch::new(tag, sink.events), chunk, invalid_events: sink.invalid, skipped_signal, mode }
}

/// PackedForward or CompressedPackedForward, from the option and the payload's magic bytes.
fn packed_mode(mode: Mode, options: &Options, payload: &[u8]) -> Mode {
    if mode == Mode::Message || mode == Mode::Forward {
        return mode;
    }
    match Compression::sniff(payload, options.compression.unwrap_or(Compression::None)) {
        Compression::None => Mode::PackedForward,
        Compression::Gzip | Compression::Zstd => Mode::CompressedPackedForward,
    }
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
fn parse_options(data: &[u8], range: Range<usize>) -> Result<Options, DecodeError> {
    let data = &data[..range.end];
    let mut options = Options::default();
    let (pairs, mut pos) = match read_head(data, range.start).map_err(|e| scan_error(e, "option"))? {
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
