//! `multiline`: join the lines of one message — a stack trace, a split container line — into one
//! record (Fluent Bit `filter_multiline`).
//!
//! - `mode = "parser"` (the default): each record's `key_content` (default `log`) is offered to
//!   the [multiline parsers](crate::multiline) of `multiline_parser`, tried in order. Streams are
//!   kept apart by tag, `container_id` and `source`, so interleaved containers and stdout/stderr
//!   never mix. A joined record is the first line's record (its keys and time) with the lines
//!   joined; records no parser takes pass as they came.
//! - `mode = "partial_message"`: Docker's 16 KiB pieces (`partial_message`, `partial_id`,
//!   `partial_ordinal`, `partial_last`) joined by the same reassembly the router runs first
//!   ([`crate::pipeline::partial`]), on `key_content` and only for the tags the filter matches.
//!
//! A message waits `flush_timeout` (Fluent Bit `flush_ms`, default 2 s) for its next line, then
//! the pipeline's expiry timer passes it on down the chain after this filter (Fluent Bit's
//! emitter re-emits it into the pipeline); at shutdown every open message is passed on. With
//! `buffer = false` a message never outlives the batch it arrived in. Memory is bounded: a
//! message over `max_message_bytes` / `max_message_lines` is passed on in pieces, and when the
//! open messages of all streams hold more than [`MAX_HELD_BYTES`] (or [`MAX_STREAMS`] streams
//! are open) the stream with the oldest line is passed on early. Each of these is counted in
//! `component_errors_total{reason="multiline_size_cap"|"multiline_line_cap"|"multiline_held_cap"}`;
//! no line is dropped.
//!
//! Lines held here were already acknowledged to their sender: a crash loses at most the messages
//! open at that moment (normally the last lines of each stream's current stack trace).

use crate::config::{ByteSize, DurationStr};
use crate::event::json::{map_entries, str_payload};
use crate::event::{Batch, Event};
use crate::multiline::{JoinLimits, Joiner, ParserChain, resolve_names};
use crate::ops::metrics::{Component, Metrics};
use crate::parsers::command_line_files;
use crate::pipeline::Filter;
use crate::pipeline::partial::PartialReassembly;
use bytes::Bytes;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Most streams with an open message at once.
pub const MAX_STREAMS: usize = 4096;
/// Most bytes of open messages over all streams, at least (see [`MultilineFilter`]).
pub const MAX_HELD_BYTES: usize = 16 << 20;

/// What the filter joins.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MultilineMode {
    /// Lines by multiline parsers.
    #[default]
    Parser,
    /// Docker's partial-message pieces.
    PartialMessage,
}

/// `type = "multiline"` under `[[filters]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineFilterConfig {
    /// `parser` (default) or `partial_message` (Fluent Bit `mode`).
    #[serde(default)]
    pub mode: MultilineMode,
    /// The multiline parsers, tried in order (Fluent Bit `multiline.parser`), e.g.
    /// `["java", "python"]`: built-in `docker`, `cri`, `go`, `python`, `java`, `ruby`, or a
    /// `[MULTILINE_PARSER]` of a parsers file.
    #[serde(default)]
    pub multiline_parser: Vec<String>,
    /// The key holding the text (Fluent Bit `multiline.key_content`); default: each parser's own
    /// (`log` for `docker` and `cri`), else `log`.
    pub key_content: Option<String>,
    /// How long a message waits for its next line (Fluent Bit `flush_ms`; default `"2s"`).
    #[serde(default = "default_flush_timeout")]
    pub flush_timeout: DurationStr,
    /// Keep messages open across batches (Fluent Bit `buffer`, default `true`); `false`: a
    /// message ends with the batch it arrived in.
    #[serde(default = "yes")]
    pub buffer: bool,
    /// Most bytes of one joined message (default `"2MiB"`, Fluent Bit's buffer limit).
    pub max_message_bytes: Option<ByteSize>,
    /// Most lines of one joined message (default 10000).
    pub max_message_lines: Option<usize>,
    /// Files with `[MULTILINE_PARSER]` (and `[PARSER]`) sections, besides the `-R` files of the
    /// command line.
    #[serde(default)]
    pub parsers_files: Vec<PathBuf>,
}

fn default_flush_timeout() -> DurationStr {
    DurationStr(Duration::from_secs(2))
}

fn yes() -> bool {
    true
}

impl MultilineFilterConfig {
    fn key(&self) -> &str {
        self.key_content.as_deref().unwrap_or("log")
    }

    fn limits(&self) -> JoinLimits {
        let default = JoinLimits::default();
        JoinLimits {
            max_bytes: self
                .max_message_bytes
                .map_or(default.max_bytes, |b| b.0 as usize),
            max_lines: self.max_message_lines.unwrap_or(default.max_lines),
        }
    }

    /// The parser chain; errors start with the key (`.multiline_parser[1]: …`).
    fn chain(&self) -> Result<ParserChain, String> {
        if self.multiline_parser.is_empty() {
            return Err(".multiline_parser: name at least one parser, e.g. `multiline_parser = [\"java\"]` (built in: docker, cri, go, python, java, ruby)".into());
        }
        let mut files = self.parsers_files.clone();
        files.extend(command_line_files());
        let parsers = resolve_names(&self.multiline_parser, &files)?;
        Ok(ParserChain::new(parsers, self.key_content.clone()).with_fallback_key("log"))
    }

    fn check(&self) -> Result<(), String> {
        if self.key().is_empty() {
            return Err(".key_content is empty; e.g. `key_content = \"log\"`".into());
        }
        if self.flush_timeout.0.is_zero() {
            return Err(".flush_timeout must be more than 0, e.g. \"2s\"".into());
        }
        if self.max_message_bytes.is_some_and(|b| b.0 == 0) || self.max_message_lines == Some(0) {
            return Err(".max_message_bytes and .max_message_lines must be more than 0".into());
        }
        match self.mode {
            MultilineMode::Parser => self.chain().map(drop),
            MultilineMode::PartialMessage if !self.multiline_parser.is_empty() => Err(
                ".multiline_parser cannot be used with `mode = \"partial_message\"` (Fluent Bit refuses it too); use two multiline filters".into(),
            ),
            MultilineMode::PartialMessage if !self.buffer => Err(
                ".buffer = false cannot be used with `mode = \"partial_message\"` (the pieces of a line arrive in different batches)".into(),
            ),
            MultilineMode::PartialMessage => Ok(()),
        }
    }
}

impl crate::filter::FilterComponent for MultilineFilterConfig {
    fn validate(&self, key: &str, problems: &mut Vec<String>) {
        if let Err(e) = self.check() {
            problems.push(format!("{key}{e}"));
        }
    }

    fn build(
        &self,
        cx: crate::filter::FilterContext<'_>,
    ) -> Result<(String, Arc<dyn Filter>), String> {
        self.check()?;
        let id = cx.id().to_string();
        let filter: Arc<dyn Filter> = match self.mode {
            MultilineMode::PartialMessage => PartialReassembly::for_filter(
                &id,
                self.key(),
                self.flush_timeout.0,
                self.limits().max_bytes,
                cx.metrics,
            ),
            MultilineMode::Parser => Arc::new(MultilineFilter::new(
                Arc::new(self.chain()?),
                self.limits(),
                self.flush_timeout.0,
                self.buffer,
                &id,
                cx.metrics,
            )),
        };
        Ok((id, filter))
    }
}

/// The `parser` mode filter: one [`Joiner`] per stream.
pub struct MultilineFilter {
    chain: Arc<ParserChain>,
    limits: JoinLimits,
    timeout: Duration,
    buffer: bool,
    max_held_bytes: usize,
    streams: Mutex<Streams>,
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
struct Streams {
    open: HashMap<StreamKey, Joiner>,
    held_bytes: usize,
}

impl MultilineFilter {
    /// A filter joining with `chain`, messages waiting `timeout` for their next line.
    pub fn new(
        chain: Arc<ParserChain>,
        limits: JoinLimits,
        timeout: Duration,
        buffer: bool,
        id: &str,
        metrics: Arc<Metrics>,
    ) -> MultilineFilter {
        MultilineFilter {
            chain,
            limits,
            timeout,
            buffer,
            max_held_bytes: MAX_HELD_BYTES.max(4 * limits.max_bytes),
            streams: Mutex::default(),
            component: Component::filter(id),
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Streams> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` on the joiner of `key` (made if new), keeping the byte count, counting cuts and
    /// forgetting a stream with nothing open.
    fn with_stream(&self, streams: &mut Streams, key: StreamKey, f: impl FnOnce(&mut Joiner)) {
        let joiner = streams
            .open
            .entry(key.clone())
            .or_insert_with(|| Joiner::new(self.chain.clone(), self.limits));
        let before = joiner.held_bytes();
        f(joiner);
        let cuts = joiner.take_cuts();
        streams.held_bytes = streams.held_bytes + joiner.held_bytes() - before;
        if joiner.is_empty() {
            streams.open.remove(&key);
        }
        for (reason, n) in [
            ("multiline_size_cap", cuts.size_cap),
            ("multiline_line_cap", cuts.line_cap),
        ] {
            for _ in 0..n {
                self.metrics.error(&self.component, reason);
            }
        }
    }

    /// Pass on the streams with the oldest lines while too many are open or they hold too much.
    fn enforce_bounds(&self, streams: &mut Streams, out: &mut Vec<(Bytes, Event)>) {
        while streams.open.len() > MAX_STREAMS || streams.held_bytes > self.max_held_bytes {
            let Some(oldest) = streams
                .open
                .iter()
                .min_by_key(|(_, j)| j.oldest_line_at())
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.metrics.error(&self.component, "multiline_held_cap");
            self.release(streams, oldest, out, |j, events| j.flush_all(events));
        }
    }

    fn release(
        &self,
        streams: &mut Streams,
        key: StreamKey,
        out: &mut Vec<(Bytes, Event)>,
        f: impl FnOnce(&mut Joiner, &mut Vec<Event>),
    ) {
        let tag = key.tag.clone();
        let mut events = Vec::new();
        self.with_stream(streams, key, |j| f(j, &mut events));
        out.extend(events.into_iter().map(|e| (tag.clone(), e)));
    }

    /// Every open message of every stream, by tag.
    fn release_all(&self, now: Option<Instant>) -> Vec<Batch> {
        let mut streams = self.lock();
        let keys: Vec<StreamKey> = streams.open.keys().cloned().collect();
        let mut out = Vec::new();
        for key in keys {
            self.release(&mut streams, key, &mut out, |j, events| match now {
                Some(now) => j.flush_expired(now, self.timeout, events),
                None => j.flush_all(events),
            });
        }
        by_tag(out)
    }
}

/// Events in order, grouped into batches by tag (the order within a tag is kept).
fn by_tag(events: Vec<(Bytes, Event)>) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    for (tag, event) in events {
        match out.iter_mut().find(|b| b.tag == tag) {
            Some(b) => b.events.push(event),
            None => out.push(Batch::new(tag, vec![event])),
        }
    }
    out
}

/// The string value of the top-level `key` of `record` (empty when missing).
fn text_field(record: &Bytes, key: &[u8]) -> Bytes {
    map_entries(record)
        .ok()
        .and_then(|mut entries| {
            entries
                .by_ref()
                .map_while(Result::ok)
                .find(|(k, _)| str_payload(k) == Some(key))
                .and_then(|(_, v)| str_payload(v))
                .map(|v| record.slice_ref(v))
        })
        .unwrap_or_default()
}

impl Filter for MultilineFilter {
    fn process(&self, batch: Batch) -> Vec<Batch> {
        let now = Instant::now();
        let mut streams = self.lock();
        let tag = batch.tag.clone();
        let mut out = Vec::with_capacity(batch.events.len());
        let mut touched = Vec::new();
        for event in batch.events {
            let key = StreamKey {
                tag: tag.clone(),
                container_id: text_field(&event.body, b"container_id"),
                source: text_field(&event.body, b"source"),
            };
            if !self.buffer {
                touched.push(key.clone());
            }
            let mut events = Vec::new();
            self.with_stream(&mut streams, key, |j| {
                j.push_record(event, now, &mut events)
            });
            out.extend(events.into_iter().map(|e| (tag.clone(), e)));
            self.enforce_bounds(&mut streams, &mut out);
        }
        for key in touched {
            if streams.open.contains_key(&key) {
                self.release(&mut streams, key, &mut out, |j, events| j.flush_all(events));
            }
        }
        let mut batches = by_tag(out);
        if batches.is_empty() {
            batches.push(Batch::new(tag, Vec::new()));
        }
        batches
    }

    fn expiry_tick(&self) -> Option<Duration> {
        Some((self.timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)))
    }

    fn expire(&self, now: Instant) -> Vec<Batch> {
        self.release_all(Some(now))
    }

    fn flush_held(&self) -> Vec<Batch> {
        self.release_all(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn config(toml: &str) -> MultilineFilterConfig {
        toml::from_str(toml).unwrap()
    }

    fn filter(toml: &str) -> (Arc<dyn Filter>, Arc<Metrics>) {
        let metrics = Metrics::new();
        let cx = crate::filter::FilterContext {
            name: None,
            default_id: "multiline.0",
            metrics: metrics.clone(),
            plugin_cache_dir: None,
        };
        let (_, f) = crate::filter::FilterComponent::build(&config(toml), cx).unwrap();
        (f, metrics)
    }

    fn batch(records: &[Value]) -> Batch {
        let events = records
            .iter()
            .map(|r| Event {
                time_ns: 1,
                body: Bytes::from(rmp_serde::to_vec_named(r).unwrap()),
            })
            .collect();
        Batch::new(Bytes::from_static(b"app"), events)
    }

    fn logs(batches: &[Batch]) -> Vec<String> {
        batches
            .iter()
            .flat_map(|b| &b.events)
            .map(|e| {
                let v: Value =
                    serde_json::from_str(&crate::event::json::to_json(&e.body).unwrap()).unwrap();
                v["log"].as_str().unwrap().to_string()
            })
            .collect()
    }

    fn line(container: &str, log: &str) -> Value {
        json!({"container_id": container, "source": "stderr", "log": log})
    }

    #[test]
    fn streams_are_kept_apart_and_a_held_message_expires_after_the_timeout() {
        let (f, _) = filter("multiline_parser = [\"java\"]\nflush_timeout = \"50ms\"\n");
        let out = f.process(batch(&[
            line("a", "java.lang.IllegalStateException: boom"),
            line("b", "java.lang.RuntimeException: other"),
            line("a", "    at A.a(A.java:1)"),
            line("b", "    at B.b(B.java:2)"),
            line("a", "done"),
        ]));
        assert_eq!(
            logs(&out),
            [
                "java.lang.IllegalStateException: boom\n    at A.a(A.java:1)",
                "done"
            ]
        );
        assert!(f.expire(Instant::now()).is_empty(), "b waits");
        let out = f.expire(Instant::now() + Duration::from_millis(60));
        assert_eq!(
            logs(&out),
            ["java.lang.RuntimeException: other\n    at B.b(B.java:2)"]
        );
        assert_eq!(out[0].tag, Bytes::from_static(b"app"));
        assert!(f.flush_held().is_empty());
        assert_eq!(f.expiry_tick(), Some(Duration::from_micros(12_500)));
    }

    #[test]
    fn without_buffer_a_message_ends_with_its_batch() {
        let (f, _) = filter("multiline_parser = [\"java\"]\nbuffer = false\n");
        let out = f.process(batch(&[
            line("a", "java.lang.IllegalStateException: boom"),
            line("a", "    at A.a(A.java:1)"),
        ]));
        assert_eq!(
            logs(&out),
            ["java.lang.IllegalStateException: boom\n    at A.a(A.java:1)"]
        );
        assert!(f.flush_held().is_empty());
    }

    #[test]
    fn held_messages_are_bounded_and_the_cuts_counted() {
        let chain = Arc::new(
            ParserChain::new(
                vec![Arc::new(crate::multiline::builtin::get("java").unwrap())],
                None,
            )
            .with_fallback_key("log"),
        );
        let limits = JoinLimits {
            max_bytes: 1 << 20,
            max_lines: 2,
        };
        let metrics = Metrics::new();
        let f = MultilineFilter::new(
            chain.clone(),
            limits,
            Duration::from_secs(60),
            true,
            "ml",
            metrics.clone(),
        );
        let count = |reason: &str| {
            metrics
                .errors
                .get_or_create(&crate::ops::metrics::ReasonLabels {
                    component_kind: "filter",
                    component_id: "ml".into(),
                    reason: reason.into(),
                })
                .get()
        };
        let records: Vec<Value> = (0..=MAX_STREAMS)
            .map(|c| line(&c.to_string(), "java.lang.IllegalStateException: boom"))
            .collect();
        let out = f.process(batch(&records));
        assert_eq!(
            logs(&out).len(),
            1,
            "one stream too many: one went out early"
        );
        assert_eq!(count("multiline_held_cap"), 1);
        assert_eq!(f.lock().open.len(), MAX_STREAMS);
        let flushed = f.flush_held();
        assert_eq!(flushed.iter().map(Batch::len).sum::<usize>(), MAX_STREAMS);
        assert_eq!(f.lock().held_bytes, 0);
        assert!(f.lock().open.is_empty());

        let out = f.process(batch(&[
            line("a", "java.lang.IllegalStateException: boom"),
            line("a", "    at A.a(A.java:1)"),
            line("a", "    at A.b(A.java:2)"),
        ]));
        assert_eq!(
            logs(&out),
            ["java.lang.IllegalStateException: boom\n    at A.a(A.java:1)"]
        );
        assert_eq!(count("multiline_line_cap"), 1);
    }

    #[test]
    fn partial_message_mode_joins_docker_pieces_on_key_content() {
        let (f, _) = filter("mode = \"partial_message\"\nkey_content = \"message\"\n");
        let piece = |ordinal: u32, last: &str, text: &str| json!({"partial_message": "true", "partial_id": "p", "partial_ordinal": ordinal.to_string(), "partial_last": last, "message": text});
        let out = f.process(batch(&[piece(1, "false", "ab"), piece(2, "true", "cd")]));
        let v: Value =
            serde_json::from_str(&crate::event::json::to_json(&out[0].events[0].body).unwrap())
                .unwrap();
        assert_eq!(v, json!({"message": "abcd"}));
    }

    #[test]
    fn config_mistakes_name_the_key() {
        let check = |toml: &str| config(toml).check().unwrap_err();
        assert!(check("").contains(".multiline_parser: name at least one"));
        let e = check("multiline_parser = [\"java\", \"nodejs\"]");
        assert!(
            e.starts_with(".multiline_parser[1]:") && e.contains("`nodejs`"),
            "{e}"
        );
        assert!(
            check("mode = \"partial_message\"\nmultiline_parser = [\"java\"]")
                .contains("cannot be used")
        );
        assert!(
            check("multiline_parser = [\"java\"]\nflush_timeout = \"0s\"").contains("more than 0")
        );
        assert!(toml::from_str::<MultilineFilterConfig>("mode = \"lines\"").is_err());
    }
}
