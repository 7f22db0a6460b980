//! Partial-line reassembly: joins the pieces of lines that Docker and Fargate split at 16 KiB
//! (reference forward-protocol.md §8.1) before any other filter sees them.
//!
//! A piece is a record with `partial_message: "true"`, `partial_id`, `partial_ordinal` (from 1)
//! and `partial_last` (`"true"` on the final piece). Pieces are kept per stream — tag,
//! `container_id` and `source` — so interleaved containers and stdout/stderr never mix. When the
//! last piece arrives the joined record takes the place of the last piece in the batch: the first
//! piece's fields and time, `log` the concatenation of every piece's `log`, and no `partial_*`
//! keys. Records without `partial_message` pass untouched: while no line is open, a batch none
//! of whose records holds the bytes `partial_message` is passed on as it is, after one SIMD
//! substring search per record.
//!
//! Nothing is lost; what cannot be joined is passed on with what arrived, marked
//! `partial_incomplete: true`, `partial_reason` and keeping `partial_id`:
//! - `timeout`: no piece of the line arrived for `partial_flush_timeout` (Docker sends a line's
//!   final piece with `partial_last: "false"` when the stream ends mid-line). Since
//!   [`crate::pipeline::Filter::process`] only runs when a batch arrives, the pipeline's expiry
//!   timer ([`crate::pipeline::Pipeline::start_expiry_timer`]) passes timed-out lines on;
//! - `superseded`: a record of the same stream that does not continue the line arrived (the
//!   sender moved on; keeping the order of the stream means the held pieces go first);
//! - `size_cap`: the line grew past `partial_max_bytes`; it is passed on in pieces of that size;
//! - `missing_parts`: the ordinals had a gap, or the line's first piece was never seen;
//! - `too_many_lines`: more than [`MAX_OPEN_LINES`] lines (or [`MAX_HELD_BYTES`]) were open
//!   at once; the oldest goes first;
//! - `shutdown`: the router is stopping ([`PartialReassembly::flush_all`]).
//!
//! The same reassembly is the `multiline` filter's `mode = "partial_message"`
//! ([`PartialReassembly::for_filter`]): there it joins the filter's `key_content` for the tags the
//! filter matches.
//!
//! Pieces held here were already acknowledged to their sender: a crash loses at most the lines
//! open at that moment (normally the pieces of one read).

use crate::event::{Batch, Event};
use crate::ops::metrics::{Component, Metrics};
use crate::pipeline::Filter;
use bytes::Bytes;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Most lines held open at once (over all streams).
pub const MAX_OPEN_LINES: usize = 4096;
/// Most bytes of pieces held at once, at least (see [`PartialReassembly::new`]).
pub const MAX_HELD_BYTES: usize = 16 << 20;

const KEY_PARTIAL_MESSAGE: &[u8] = b"partial_message";
const KEY_PARTIAL_ID: &[u8] = b"partial_id";
const KEY_PARTIAL_ORDINAL: &[u8] = b"partial_ordinal";
const KEY_PARTIAL_LAST: &[u8] = b"partial_last";
const KEY_CONTAINER_ID: &[u8] = b"container_id";
const KEY_SOURCE: &[u8] = b"source";

/// The built-in reassembly filter.
pub struct PartialReassembly {
    open: Mutex<OpenLines>,
    /// The key whose pieces are joined (`log`).
    key: Bytes,
    timeout: Duration,
    max_line_bytes: usize,
    max_held_bytes: usize,
    component: Component,
    metrics: Arc<Metrics>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct StreamKey {
    tag: Bytes,
    container_id: Bytes,
    source: Bytes,
}

#[derive(Default)]
struct OpenLines {
    lines: HashMap<StreamKey, OpenLine>,
    held_bytes: usize,
}

struct OpenLine {
    partial_id: Bytes,
    time_ns: u64,
    /// The first piece's record: its other fields go into the joined record.
    first: Bytes,
    log: Vec<u8>,
    next_ordinal: u64,
    /// Why the line will be incomplete even if its last piece arrives.
    flaw: Option<&'static str>,
    last_piece_at: Instant,
}

/// A piece's `partial_*` fields.
struct Piece<'a> {
    id: Bytes,
    ordinal: Option<u64>,
    last: bool,
    log: &'a [u8],
}

impl PartialReassembly {
    /// A filter that flushes lines after `timeout` and caps joined lines at `max_line_bytes`.
    pub fn new(timeout: Duration, max_line_bytes: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Self::for_filter(
            "partial_reassembly",
            "log",
            timeout,
            max_line_bytes,
            metrics,
        )
    }

    /// The reassembly as the filter component `id`, joining the pieces of `key`.
    pub fn for_filter(
        id: &str,
        key: &str,
        timeout: Duration,
        max_line_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(PartialReassembly {
            open: Mutex::default(),
            key: Bytes::copy_from_slice(key.as_bytes()),
            timeout,
            max_line_bytes: max_line_bytes.max(1),
            max_held_bytes: MAX_HELD_BYTES.max(2 * max_line_bytes),
            component: Component::filter(id),
            metrics,
        })
    }

    /// The filter's telemetry identity.
    pub fn component(&self) -> &Component {
        &self.component
    }

    fn lock(&self) -> MutexGuard<'_, OpenLines> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lines whose last piece came `timeout` or longer before `now`, as incomplete records.
    pub fn expire(&self, now: Instant) -> Vec<Batch> {
        let mut open = self.lock();
        let stale: Vec<StreamKey> = open
            .lines
            .iter()
            .filter(|(_, l)| now.saturating_duration_since(l.last_piece_at) >= self.timeout)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out: Vec<Batch> = Vec::new();
        for key in stale {
            let event = self.close_line(&mut open, &key, Some("timeout"));
            push_event(&mut out, key.tag, event);
        }
        out
    }

    /// Every open line, as incomplete records (at shutdown).
    pub fn flush_all(&self) -> Vec<Batch> {
        let mut open = self.lock();
        let keys: Vec<StreamKey> = open.lines.keys().cloned().collect();
        let mut out = Vec::new();
        for key in keys {
            let event = self.close_line(&mut open, &key, Some("shutdown"));
            push_event(&mut out, key.tag, event);
        }
        out
    }

    /// Remove the open line of `key` and build its record; `reason` set = incomplete.
    fn close_line(
        &self,
        open: &mut OpenLines,
        key: &StreamKey,
        reason: Option<&'static str>,
    ) -> Event {
        let line = open.lines.remove(key).expect("an open line");
        open.held_bytes -= line.log.len() + line.first.len();
        let reason = line.flaw.or(reason);
        if let Some(reason) = reason {
            self.metrics
                .error(&self.component, &format!("partial_{reason}"));
        }
        let body = joined_record(&line.first, &self.key, &line.log, reason, &line.partial_id);
        Event {
            time_ns: line.time_ns,
            body,
        }
    }

    fn process_event(&self, open: &mut OpenLines, tag: &Bytes, event: Event, out: &mut Vec<Event>) {
        let Some(fields) = map_fields(&event.body) else {
            out.push(event);
            return;
        };
        let body = &event.body;
        let get = |name: &[u8]| {
            fields
                .iter()
                .find(|f| &body[f.key.clone()] == name)
                .map(|f| f.value.clone())
        };
        let is_piece = get(KEY_PARTIAL_MESSAGE)
            .and_then(|v| str_value(body, v))
            .is_some_and(|v| v == b"true");
        if !is_piece && open.lines.is_empty() {
            out.push(event);
            return;
        }
        let text = |name| {
            get(name)
                .and_then(|v| str_value(body, v))
                .map(|s| body.slice_ref(s))
                .unwrap_or_default()
        };
        let key = StreamKey {
            tag: tag.clone(),
            container_id: text(KEY_CONTAINER_ID),
            source: text(KEY_SOURCE),
        };
        if !is_piece {
            if open.lines.contains_key(&key) {
                out.push(self.close_line(open, &key, Some("superseded")));
            }
            out.push(event);
            return;
        }
        let piece = Piece {
            id: text(KEY_PARTIAL_ID),
            ordinal: get(KEY_PARTIAL_ORDINAL).and_then(|v| uint_value(body, v)),
            last: get(KEY_PARTIAL_LAST)
                .and_then(|v| str_value(body, v))
                .is_some_and(|v| v == b"true"),
            log: get(&self.key)
                .and_then(|v| str_value(body, v))
                .unwrap_or_default(),
        };
        if open
            .lines
            .get(&key)
            .is_some_and(|l| l.partial_id != piece.id)
        {
            out.push(self.close_line(open, &key, Some("superseded")));
        }
        if let Some(line) = open.lines.get(&key)
            && line.log.len() + piece.log.len() > self.max_line_bytes
        {
            out.push(self.close_line(open, &key, Some("size_cap")));
            self.open_line(open, &key, &event, &piece, Some("size_cap"));
        } else if let Some(line) = open.lines.get_mut(&key) {
            if piece.ordinal != Some(line.next_ordinal) {
                line.flaw.get_or_insert("missing_parts");
            }
            line.next_ordinal = piece.ordinal.unwrap_or(line.next_ordinal) + 1;
            line.log.extend_from_slice(piece.log);
            line.last_piece_at = Instant::now();
            open.held_bytes += piece.log.len();
        } else {
            let flaw = (piece.ordinal != Some(1)).then_some("missing_parts");
            self.open_line(open, &key, &event, &piece, flaw);
        }
        if piece.last {
            out.push(self.close_line(open, &key, None));
        }
        self.enforce_bounds(open, out);
    }

    fn open_line(
        &self,
        open: &mut OpenLines,
        key: &StreamKey,
        event: &Event,
        piece: &Piece<'_>,
        flaw: Option<&'static str>,
    ) {
        let line = OpenLine {
            partial_id: piece.id.clone(),
            time_ns: event.time_ns,
            first: event.body.clone(),
            log: piece.log.to_vec(),
            next_ordinal: piece.ordinal.unwrap_or(1) + 1,
            flaw,
            last_piece_at: Instant::now(),
        };
        open.held_bytes += line.log.len() + line.first.len();
        open.lines.insert(key.clone(), line);
    }

    /// Close the oldest lines while too many are open or they hold too many bytes.
    fn enforce_bounds(&self, open: &mut OpenLines, out: &mut Vec<Event>) {
        while open.lines.len() > MAX_OPEN_LINES || open.held_bytes > self.max_held_bytes {
            let Some(oldest) = open
                .lines
                .iter()
                .min_by_key(|(_, l)| l.last_piece_at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            out.push(self.close_line(open, &oldest, Some("too_many_lines")));
        }
    }
}

fn push_event(out: &mut Vec<Batch>, tag: Bytes, event: Event) {
    match out.iter_mut().find(|b| b.tag == tag) {
        Some(b) => b.events.push(event),
        None => out.push(Batch::new(tag, vec![event])),
    }
}

/// Whether `body` may be a piece: it holds the bytes `partial_message` somewhere. One SIMD
/// search, instead of reading the map's fields, for the records that cannot be (nearly all).
fn may_be_piece(body: &[u8]) -> bool {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(KEY_PARTIAL_MESSAGE));
    FINDER.find(body).is_some()
}

impl Filter for PartialReassembly {
    fn process(&self, batch: Batch) -> Vec<Batch> {
        let mut open = self.lock();
        // No line is open and no record names `partial_message`: every event passes as it is.
        if open.lines.is_empty() && !batch.events.iter().any(|e| may_be_piece(&e.body)) {
            return vec![batch];
        }
        let tag = batch.tag.clone();
        let mut events = Vec::with_capacity(batch.events.len());
        for event in batch.events {
            self.process_event(&mut open, &tag, event, &mut events);
        }
        vec![Batch::new(tag, events)]
    }

    fn expiry_tick(&self) -> Option<Duration> {
        Some((self.timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)))
    }

    fn expire(&self, now: Instant) -> Vec<Batch> {
        PartialReassembly::expire(self, now)
    }

    fn flush_held(&self) -> Vec<Batch> {
        self.flush_all()
    }
}

/// The joined record: `first`'s fields without `partial_*`, with `key` (`log`) = `log`; when
/// `incomplete` is set, also `partial_id`, `partial_incomplete: true` and `partial_reason`.
fn joined_record(
    first: &Bytes,
    key: &[u8],
    log: &[u8],
    incomplete: Option<&str>,
    partial_id: &[u8],
) -> Bytes {
    let Some(fields) = map_fields(first) else {
        return first.clone();
    };
    let is_partial_key = |k: &[u8]| {
        [
            KEY_PARTIAL_MESSAGE,
            KEY_PARTIAL_ID,
            KEY_PARTIAL_ORDINAL,
            KEY_PARTIAL_LAST,
        ]
        .contains(&k)
    };
    let kept: Vec<&Field> = fields
        .iter()
        .filter(|f| !is_partial_key(&first[f.key.clone()]))
        .collect();
    let has_log = kept.iter().any(|f| &first[f.key.clone()] == key);
    let extra = usize::from(!has_log) + if incomplete.is_some() { 3 } else { 0 };
    let mut out = Vec::with_capacity(first.len() + log.len() + 64);
    rmp::encode::write_map_len(&mut out, (kept.len() + extra) as u32).unwrap();
    let write_log = |out: &mut Vec<u8>| {
        rmp::encode::write_str_len(out, key.len() as u32).unwrap();
        out.extend_from_slice(key);
        rmp::encode::write_str_len(out, log.len() as u32).unwrap();
        out.extend_from_slice(log);
    };
    for f in kept {
        if &first[f.key.clone()] == key {
            write_log(&mut out);
        } else {
            out.extend_from_slice(&first[f.key_with_header.start..f.value.end]);
        }
    }
    if !has_log {
        write_log(&mut out);
    }
    if let Some(reason) = incomplete {
        rmp::encode::write_str(&mut out, "partial_id").unwrap();
        rmp::encode::write_str_len(&mut out, partial_id.len() as u32).unwrap();
        out.extend_from_slice(partial_id);
        rmp::encode::write_str(&mut out, "partial_incomplete").unwrap();
        rmp::encode::write_bool(&mut out, true).unwrap();
        rmp::encode::write_str(&mut out, "partial_reason").unwrap();
        rmp::encode::write_str(&mut out, reason).unwrap();
    }
    Bytes::from(out)
}

// ---- A minimal msgpack map walker: top-level keys located, values skipped, nothing decoded.

/// One top-level field of a map.
struct Field {
    /// The key's bytes (a str or bin key; other keys never match a name).
    key: Range<usize>,
    /// The key including its msgpack header.
    key_with_header: Range<usize>,
    /// The value's encoding.
    value: Range<usize>,
}

/// The fields of the msgpack map in `buf`, or `None` if it is not one.
fn map_fields(buf: &[u8]) -> Option<Vec<Field>> {
    let (len, mut pos) = match *buf.first()? {
        m @ 0x80..=0x8f => (usize::from(m & 0x0f), 1),
        0xde => (
            usize::from(u16::from_be_bytes(buf.get(1..3)?.try_into().ok()?)),
            3,
        ),
        0xdf => (
            u32::from_be_bytes(buf.get(1..5)?.try_into().ok()?) as usize,
            5,
        ),
        _ => return None,
    };
    if len > buf.len() {
        return None;
    }
    let mut fields = Vec::with_capacity(len);
    for _ in 0..len {
        let key_start = pos;
        let key_end = skip(buf, pos)?;
        let key = str_range(buf, key_start..key_end).unwrap_or(key_end..key_end);
        let value_end = skip(buf, key_end)?;
        fields.push(Field {
            key,
            key_with_header: key_start..key_end,
            value: key_end..value_end,
        });
        pos = value_end;
    }
    Some(fields)
}

/// The payload of the str or bin encoded at `range`.
fn str_range(buf: &[u8], range: Range<usize>) -> Option<Range<usize>> {
    let header = match *buf.get(range.start)? {
        0xa0..=0xbf => 1,
        0xd9 | 0xc4 => 2,
        0xda | 0xc5 => 3,
        0xdb | 0xc6 => 5,
        _ => return None,
    };
    Some(range.start + header..range.end)
}

fn str_value(buf: &[u8], range: Range<usize>) -> Option<&[u8]> {
    str_range(buf, range).map(|r| &buf[r])
}

/// A non-negative integer, or a decimal string of one (Docker sends `partial_ordinal` as text).
fn uint_value(buf: &[u8], range: Range<usize>) -> Option<u64> {
    if let Some(s) = str_value(buf, range.clone()) {
        return std::str::from_utf8(s).ok()?.parse().ok();
    }
    let mut slice = &buf[range];
    rmp::decode::read_int(&mut slice).ok()
}

/// The end of the value starting at `pos` (nested at most [`msgpack_skip::MAX_DEPTH`] deep).
fn skip(buf: &[u8], pos: usize) -> Option<usize> {
    msgpack_skip::skip_value(buf, pos, msgpack_skip::MAX_DEPTH).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn body(v: &Value) -> Bytes {
        Bytes::from(rmp_serde::to_vec_named(v).unwrap())
    }

    fn record(container: &str, source: &str, log: &str) -> Value {
        json!({"container_id": container, "container_name": "/app", "source": source, "log": log})
    }

    fn piece(
        container: &str,
        source: &str,
        id: &str,
        ordinal: u64,
        last: bool,
        log: &str,
    ) -> Value {
        let mut r = record(container, source, log);
        let m = r.as_object_mut().unwrap();
        m.insert("partial_message".into(), "true".into());
        m.insert("partial_id".into(), id.into());
        m.insert("partial_ordinal".into(), ordinal.to_string().into());
        m.insert(
            "partial_last".into(),
            (if last { "true" } else { "false" }).into(),
        );
        r
    }

    fn run(filter: &PartialReassembly, records: &[Value]) -> Vec<Value> {
        let events = records
            .iter()
            .enumerate()
            .map(|(i, r)| Event {
                time_ns: i as u64,
                body: body(r),
            })
            .collect();
        let out = filter.process(Batch::new(Bytes::from_static(b"app"), events));
        assert_eq!(out.len(), 1);
        out[0]
            .events
            .iter()
            .map(|e| serde_json::from_str(&crate::event::json::to_json(&e.body).unwrap()).unwrap())
            .collect()
    }

    fn filter() -> Arc<PartialReassembly> {
        PartialReassembly::new(Duration::from_secs(3600), 1 << 20, Metrics::new())
    }

    #[test]
    fn interleaved_pieces_are_joined_per_stream_in_order() {
        let f = filter();
        let out = run(
            &f,
            &[
                piece("a", "stdout", "p1", 1, false, "A1-"),
                record("b", "stdout", "b line 1"),
                piece("a", "stderr", "q1", 1, false, "E1-"),
                piece("a", "stdout", "p1", 2, false, "A2-"),
                piece("a", "stderr", "q1", 2, true, "E2"),
                record("b", "stdout", "b line 2"),
                piece("a", "stdout", "p1", 3, true, "A3"),
            ],
        );
        let logs: Vec<&str> = out.iter().map(|r| r["log"].as_str().unwrap()).collect();
        assert_eq!(logs, ["b line 1", "E1-E2", "b line 2", "A1-A2-A3"]);
        assert_eq!(
            out[3],
            json!({"container_id": "a", "container_name": "/app", "source": "stdout", "log": "A1-A2-A3"})
        );
        assert!(f.lock().lines.is_empty());
    }

    #[test]
    fn pieces_spread_over_batches_join_and_keep_the_first_time() {
        let f = filter();
        assert!(run(&f, &[piece("a", "stdout", "p", 1, false, "x")]).is_empty());
        let events = vec![Event {
            time_ns: 99,
            body: body(&piece("a", "stdout", "p", 2, true, "y")),
        }];
        let out = f.process(Batch::new(Bytes::from_static(b"app"), events));
        assert_eq!(out[0].events.len(), 1);
        assert_eq!(out[0].events[0].time_ns, 0, "the first piece's time");
    }

    #[test]
    fn a_lone_piece_is_flushed_on_timeout_marked() {
        let f = PartialReassembly::new(Duration::from_millis(50), 1 << 20, Metrics::new());
        assert!(run(&f, &[piece("a", "stdout", "p", 1, false, "lonely")]).is_empty());
        assert!(f.expire(Instant::now()).is_empty());
        let out = f.expire(Instant::now() + Duration::from_millis(60));
        assert_eq!(out.len(), 1);
        let r: Value =
            serde_json::from_str(&crate::event::json::to_json(&out[0].events[0].body).unwrap())
                .unwrap();
        assert_eq!(r["log"], "lonely");
        assert_eq!(r["partial_incomplete"], true);
        assert_eq!(r["partial_reason"], "timeout");
        assert_eq!(r["partial_id"], "p");
        assert!(r.get("partial_message").is_none() && r.get("partial_last").is_none());
    }

    #[test]
    fn a_new_line_of_the_same_stream_flushes_the_held_one_first() {
        let f = filter();
        let out = run(
            &f,
            &[
                piece("a", "stdout", "p", 1, false, "cut"),
                record("a", "stdout", "next"),
            ],
        );
        assert_eq!(out[0]["log"], "cut");
        assert_eq!(out[0]["partial_reason"], "superseded");
        assert_eq!(out[1]["log"], "next");
        // A piece of another line, too.
        let out = run(
            &f,
            &[
                piece("a", "stdout", "p", 1, false, "one"),
                piece("a", "stdout", "q", 1, true, "two"),
            ],
        );
        assert_eq!(out[0]["partial_reason"], "superseded");
        assert_eq!(out[1], record("a", "stdout", "two"));
    }

    #[test]
    fn the_size_cap_passes_long_lines_on_in_pieces() {
        let f = PartialReassembly::new(Duration::from_secs(60), 10, Metrics::new());
        let out = run(
            &f,
            &[
                piece("a", "stdout", "p", 1, false, "0123456"),
                piece("a", "stdout", "p", 2, false, "789"),
                piece("a", "stdout", "p", 3, false, "abcdef"),
                piece("a", "stdout", "p", 4, true, "gh"),
            ],
        );
        let logs: Vec<&str> = out.iter().map(|r| r["log"].as_str().unwrap()).collect();
        assert_eq!(logs.concat(), "0123456789abcdefgh", "nothing lost");
        assert_eq!(logs, ["0123456789", "abcdefgh"]);
        assert!(out.iter().all(|r| r["partial_reason"] == "size_cap"));
    }

    #[test]
    fn gaps_and_orphans_are_marked() {
        let f = filter();
        let out = run(
            &f,
            &[
                piece("a", "stdout", "p", 1, false, "a"),
                piece("a", "stdout", "p", 3, true, "c"),
            ],
        );
        assert_eq!(out[0]["log"], "ac");
        assert_eq!(out[0]["partial_reason"], "missing_parts");
        let out = run(&f, &[piece("a", "stdout", "p", 2, true, "tail")]);
        assert_eq!(out[0]["partial_reason"], "missing_parts");
    }

    #[test]
    fn records_without_pieces_pass_byte_for_byte() {
        let f = filter();
        let odd = [
            Bytes::from_static(b"\x80"),
            Bytes::from_static(b"\x92\x01\x02"),
            body(&json!({"partial_message": "false", "log": "x"})),
            body(&json!({"nested": {"partial_message": "true"}, "n": [1, 2.5, null, true]})),
        ];
        let events: Vec<Event> = odd
            .iter()
            .map(|b| Event {
                time_ns: 1,
                body: b.clone(),
            })
            .collect();
        let out = f.process(Batch::new(Bytes::from_static(b"t"), events.clone()));
        assert_eq!(out[0].events, events);
    }

    #[test]
    fn the_walker_skips_every_msgpack_type() {
        let v = json!({"a": [1, -5, 300, -70000, 1e10, "s", null, false, {"k": [[]]}], "b": "x".repeat(70000)});
        let bytes = body(&v);
        let fields = map_fields(&bytes).unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].value.end, bytes.len());
        for cut in 0..bytes.len() {
            assert!(map_fields(&bytes[..cut]).is_none(), "cut {cut}");
        }
        // ext types and bin
        let mut b = vec![
            0x83, 0xa1, b'e', 0xd7, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0xa1, b'f', 0xc7, 0x02, 0x05, 1,
            2,
        ];
        b.extend_from_slice(&[0xa1, b'g', 0xc4, 0x01, 0xff]);
        assert_eq!(map_fields(&b).unwrap().len(), 3);
    }
}
