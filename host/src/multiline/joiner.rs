//! [`Joiner`]: the multiline state of one stream (Fluent Bit `flb_ml_append_*` and
//! `flb_ml_flush_stream_group`).
//!
//! Each line is offered to the parsers of the chain: first the one that took the stream's last
//! line, then the others in order. A parser takes a line when its pre-parser (if any) accepts it,
//! the record has the text key, and its kind says the line starts or continues a message. A line
//! no parser takes ends every message open in the stream and passes on as it came.
//!
//! A message becomes one record: the first line's record (its other keys and its time) with the
//! text key holding the lines joined — by `\n` for `regex` parsers, as they are for `endswith` /
//! `equal` (Docker and CRI pieces carry their own line ends). A bare text line (no record, no
//! text key) becomes `{"log": …}` ending with `\n`, as in Fluent Bit.
//!
//! A message is passed on when its parser says it is complete, when the next message of its
//! group begins, when no parser takes a line of the stream, when it waited `timeout` for its next
//! line ([`Joiner::flush_expired`]) and at the end ([`Joiner::flush_all`]). A message that would
//! grow past [`JoinLimits`] is passed on as it is and the line begins the next piece, which
//! continues in the same state: nothing is dropped, and each cut is counted in [`Cuts`].

use super::{Kind, ParserChain};
use crate::event::Event;
use crate::event::json::{map_entries, str_payload};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most groups (`key_group` values, e.g. stdout and stderr) one parser keeps per stream; a line
/// of a further group is not joined (Fluent Bit: `FLB_ML_MAX_GROUPS`, 6).
pub const MAX_GROUPS: usize = 8;

/// How big one joined message may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinLimits {
    /// Most bytes of joined text (Fluent Bit's `multiline_buffer_limit`, 2 MiB).
    pub max_bytes: usize,
    /// Most lines.
    pub max_lines: usize,
}

impl Default for JoinLimits {
    fn default() -> Self {
        JoinLimits {
            max_bytes: 2 << 20,
            max_lines: 10_000,
        }
    }
}

/// Messages passed on in pieces because they reached a limit, by which.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cuts {
    /// Reached [`JoinLimits::max_bytes`].
    pub size_cap: u64,
    /// Reached [`JoinLimits::max_lines`].
    pub line_cap: u64,
}

/// One stream's open messages.
#[derive(Debug)]
pub struct Joiner {
    chain: Arc<ParserChain>,
    limits: JoinLimits,
    /// Per parser of the chain, its groups.
    groups: Vec<Vec<Group>>,
    /// The parser that took the last line.
    last_parser: Option<usize>,
    held_bytes: usize,
    cuts: Cuts,
    /// Where the line being offered starts (see [`Joiner::push_text`]).
    line_at: u64,
}

#[derive(Debug)]
struct Group {
    /// The `key_group` value (`None`: the parser has no `key_group`, or the line had none).
    name: Option<Vec<u8>>,
    /// The rule the message is in (`regex` parsers).
    rule: Option<usize>,
    text: Vec<u8>,
    lines: usize,
    /// The first line: its time and record (`None` for a bare text line).
    first: Option<(u64, Option<Bytes>)>,
    /// A bare text line: joined by and ending with `\n`.
    bare: bool,
    last_line_at: Instant,
    /// Where its first line starts (`push_text`'s `at`).
    first_at: u64,
}

impl Group {
    fn bytes(&self) -> usize {
        self.text.len()
            + self
                .first
                .as_ref()
                .and_then(|(_, r)| r.as_ref())
                .map_or(0, Bytes::len)
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }
}

/// A line as offered: a record, or bare text.
#[derive(Clone, Copy)]
enum Line<'a> {
    Record(&'a Bytes),
    Text(&'a [u8]),
}

/// A line as one parser sees it after its pre-parser.
struct Parsed {
    record: Option<Bytes>,
    time_ns: u64,
}

impl Joiner {
    /// The state of a new stream that `chain` parses.
    pub fn new(chain: Arc<ParserChain>, limits: JoinLimits) -> Joiner {
        let groups = chain.parsers().iter().map(|_| Vec::new()).collect();
        Joiner {
            chain,
            limits,
            groups,
            last_parser: None,
            held_bytes: 0,
            cuts: Cuts::default(),
            line_at: 0,
        }
    }

    /// Offer a record; what is complete is appended to `out`, in order.
    pub fn push_record(&mut self, event: Event, now: Instant, out: &mut Vec<Event>) {
        self.line_at = 0;
        if !self.offer(Line::Record(&event.body), event.time_ns, now, out) {
            self.flush_all(out);
            out.push(event);
        }
    }

    /// Offer a line of text read at `time_ns` (an input that reads files), which starts at `at`
    /// in its file: [`Joiner::oldest_held_at`] reports it back while the line is held.
    pub fn push_text(
        &mut self,
        text: &[u8],
        at: u64,
        time_ns: u64,
        now: Instant,
        out: &mut Vec<Event>,
    ) {
        self.line_at = at;
        if !self.offer(Line::Text(text), time_ns, now, out) {
            self.flush_all(out);
            let key = self.chain.key_content(0);
            let mut joined = text.to_vec();
            if key.is_none() && joined.last() != Some(&b'\n') {
                joined.push(b'\n');
            }
            out.push(Event {
                time_ns,
                body: Bytes::from(single_key_map(key.unwrap_or("log"), &joined)),
            });
        }
    }

    /// Pass on the messages whose last line came `timeout` or longer before `now`.
    pub fn flush_expired(&mut self, now: Instant, timeout: Duration, out: &mut Vec<Event>) {
        for p in 0..self.groups.len() {
            for g in 0..self.groups[p].len() {
                let group = &self.groups[p][g];
                if !group.is_empty() && now.saturating_duration_since(group.last_line_at) >= timeout
                {
                    self.flush(p, g, false, out);
                }
            }
        }
    }

    /// Pass on every open message.
    pub fn flush_all(&mut self, out: &mut Vec<Event>) {
        for p in 0..self.groups.len() {
            for g in 0..self.groups[p].len() {
                self.flush(p, g, false, out);
            }
        }
    }

    /// Whether no message is open.
    pub fn is_empty(&self) -> bool {
        self.held_bytes == 0 && self.groups.iter().flatten().all(Group::is_empty)
    }

    /// Bytes of the open messages (their text and first records).
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// When the least recent line of an open message came.
    pub fn oldest_line_at(&self) -> Option<Instant> {
        self.groups
            .iter()
            .flatten()
            .filter(|g| !g.is_empty())
            .map(|g| g.last_line_at)
            .min()
    }

    /// Where the first line of the oldest open message starts (`push_text`'s `at`): no line
    /// before it is held.
    pub fn oldest_held_at(&self) -> Option<u64> {
        self.groups
            .iter()
            .flatten()
            .filter(|g| !g.is_empty())
            .map(|g| g.first_at)
            .min()
    }

    /// The cuts counted since the last call.
    pub fn take_cuts(&mut self) -> Cuts {
        std::mem::take(&mut self.cuts)
    }

    /// Offer `line` to the parsers: the last one first, then the others in order.
    fn offer(&mut self, line: Line<'_>, time_ns: u64, now: Instant, out: &mut Vec<Event>) -> bool {
        let last = self.last_parser;
        if let Some(p) = last
            && self.try_parser(p, line, time_ns, now, out)
        {
            return true;
        }
        for p in 0..self.groups.len() {
            if Some(p) != last && self.try_parser(p, line, time_ns, now, out) {
                self.last_parser = Some(p);
                return true;
            }
        }
        false
    }

    fn try_parser(
        &mut self,
        p: usize,
        line: Line<'_>,
        time_ns: u64,
        now: Instant,
        out: &mut Vec<Event>,
    ) -> bool {
        let chain = self.chain.clone();
        let parser = &chain.parsers()[p];
        let key = chain.key_content(p);
        let Some(parsed) = pre_parse(parser.pre_parser.as_deref(), key, line, time_ns) else {
            return false;
        };
        let (content, pattern, group_name) = match (&parsed.record, line) {
            (Some(record), _) => {
                let Some(content) = key.and_then(|k| str_field(record, k)) else {
                    return false;
                };
                let field = |k: &Option<String>| k.as_deref().and_then(|k| str_field(record, k));
                (
                    content,
                    field(&parser.key_pattern),
                    field(&parser.key_group),
                )
            }
            (None, Line::Text(text)) => (text, None, None),
            (None, Line::Record(_)) => return false,
        };
        let Some(g) = self.group(p, group_name, now) else {
            return false;
        };
        match &parser.kind {
            Kind::Regex(rules) => {
                let current = self.groups[p][g].rule;
                if let Some(next) = current.and_then(|r| rules.continuation(r, content)) {
                    self.append(p, g, content, true, &parsed, now, out);
                    self.groups[p][g].rule = Some(next);
                    if rules.completes(next) {
                        self.flush(p, g, false, out);
                    }
                    return true;
                }
                let Some(start) = rules.start(content) else {
                    return false;
                };
                self.flush(p, g, false, out);
                self.append(p, g, content, true, &parsed, now, out);
                self.groups[p][g].rule = Some(start);
                if rules.completes(start) {
                    self.flush(p, g, false, out);
                }
                true
            }
            Kind::EndsWith(end) | Kind::Equal(end) => {
                let tested = pattern.unwrap_or(content);
                let matched = match &parser.kind {
                    Kind::EndsWith(_) if tested.len() < end.len() => return false,
                    Kind::EndsWith(_) => tested.ends_with(end),
                    _ => tested == &end[..],
                };
                self.append(p, g, content, false, &parsed, now, out);
                if matched != parser.negate {
                    self.flush(p, g, false, out);
                }
                true
            }
        }
    }

    /// The index of the group `name` of parser `p`, made if new (at most [`MAX_GROUPS`]).
    fn group(&mut self, p: usize, name: Option<&[u8]>, now: Instant) -> Option<usize> {
        let groups = &mut self.groups[p];
        if let Some(g) = groups.iter().position(|g| g.name.as_deref() == name) {
            return Some(g);
        }
        if groups.len() >= MAX_GROUPS {
            return None;
        }
        groups.push(Group {
            name: name.map(<[u8]>::to_vec),
            rule: None,
            text: Vec::new(),
            lines: 0,
            first: None,
            bare: false,
            last_line_at: now,
            first_at: 0,
        });
        Some(groups.len() - 1)
    }

    /// Add `content` to group `g` of parser `p`: `as_line` joins it to what is there by a `\n`
    /// (`regex` parsers, and every bare text line). A message at its limits is passed on first.
    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        p: usize,
        g: usize,
        content: &[u8],
        as_line: bool,
        parsed: &Parsed,
        now: Instant,
        out: &mut Vec<Event>,
    ) {
        let limits = self.limits;
        let group = &self.groups[p][g];
        if !group.is_empty() {
            if group.text.len() + content.len() + 1 > limits.max_bytes {
                self.cuts.size_cap += 1;
                self.flush(p, g, true, out);
            } else if group.lines >= limits.max_lines {
                self.cuts.line_cap += 1;
                self.flush(p, g, true, out);
            }
        }
        let key_is_none = self.chain.key_content(p).is_none();
        let line_at = self.line_at;
        let group = &mut self.groups[p][g];
        let before = group.bytes();
        if group.first.is_none() {
            group.first = Some((parsed.time_ns, parsed.record.clone()));
            group.bare = parsed.record.is_none() && key_is_none;
            group.first_at = line_at;
        }
        let separate = (as_line || group.bare) && !group.text.is_empty();
        if separate && group.text.last() != Some(&b'\n') {
            group.text.push(b'\n');
        }
        if content.is_empty() && as_line && group.lines > 0 {
            group.text.push(b'\n');
        } else {
            group.text.extend_from_slice(content);
        }
        group.lines += 1;
        group.last_line_at = now;
        self.held_bytes = self.held_bytes + group.bytes() - before;
    }

    /// Pass on group `g` of parser `p`, if it holds a message; `keep_rule` keeps its state (a cut).
    fn flush(&mut self, p: usize, g: usize, keep_rule: bool, out: &mut Vec<Event>) {
        let key = self.chain.key_content(p).unwrap_or("log").to_string();
        let group = &mut self.groups[p][g];
        if !keep_rule {
            group.rule = None;
        }
        let Some((time_ns, record)) = group.first.take() else {
            return;
        };
        self.held_bytes -= group.text.len() + record.as_ref().map_or(0, Bytes::len);
        let mut text = std::mem::take(&mut group.text);
        group.lines = 0;
        if group.bare && text.last() != Some(&b'\n') {
            text.push(b'\n');
        }
        let body = match record {
            Some(record) => Bytes::from(with_field(&record, &key, &text)),
            None => Bytes::from(single_key_map(&key, &text)),
        };
        out.push(Event { time_ns, body });
    }
}

/// `line` through the parser's pre-parser: `None` when it declines the line.
fn pre_parse(
    pre_parser: Option<&dyn super::PreParser>,
    key: Option<&str>,
    line: Line<'_>,
    time_ns: u64,
) -> Option<Parsed> {
    let Some(pre) = pre_parser else {
        return Some(Parsed {
            record: match line {
                Line::Record(r) => Some(r.clone()),
                Line::Text(_) => None,
            },
            time_ns,
        });
    };
    let text = match line {
        Line::Text(t) => t,
        Line::Record(r) => str_field(r, key?)?,
    };
    let (record, time) = pre.parse(text)?;
    Some(Parsed {
        record: Some(Bytes::from(record)),
        time_ns: time.unwrap_or(time_ns),
    })
}

/// The string value of the top-level `key` of `record`.
fn str_field<'r>(record: &'r [u8], key: &str) -> Option<&'r [u8]> {
    map_entries(record)
        .ok()?
        .map_while(Result::ok)
        .find(|(k, _)| str_payload(k) == Some(key.as_bytes()))
        .and_then(|(_, v)| matches!(v.first(), Some(0xa0..=0xbf | 0xd9..=0xdb)).then_some(v))
        .and_then(str_payload)
}

/// `{key: text}`.
fn single_key_map(key: &str, text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + text.len() + 10);
    let _ = rmp::encode::write_map_len(&mut out, 1);
    write_str(&mut out, key.as_bytes());
    write_str(&mut out, text);
    out
}

/// `record` with `key` set to the string `text` (other entries byte for byte).
fn with_field(record: &[u8], key: &str, text: &[u8]) -> Vec<u8> {
    let Ok(entries) = map_entries(record) else {
        return single_key_map(key, text);
    };
    let entries: Vec<(&[u8], &[u8])> = entries.map_while(Result::ok).collect();
    let has_key = entries
        .iter()
        .any(|(k, _)| str_payload(k) == Some(key.as_bytes()));
    let mut out = Vec::with_capacity(record.len() + text.len() + 10);
    let _ = rmp::encode::write_map_len(&mut out, (entries.len() + usize::from(!has_key)) as u32);
    for (k, v) in entries {
        out.extend_from_slice(k);
        if str_payload(k) == Some(key.as_bytes()) {
            write_str(&mut out, text);
        } else {
            out.extend_from_slice(v);
        }
    }
    if !has_key {
        write_str(&mut out, key.as_bytes());
        write_str(&mut out, text);
    }
    out
}

fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    let _ = rmp::encode::write_str_len(out, s.len() as u32);
    out.extend_from_slice(s);
}
