//! `parser`: parse one field of the record with Fluent Bit parsers (`json`, `regex`, `logfmt`,
//! `ltsv`) and make the parsed keys the record's (Fluent Bit `filter_parser`; the FireLens
//! image's `parse-json.conf` is `Key_Name log`, `Parser json`, `Reserve_Data True`).
//!
//! The first `key_name` entry holding a string is parsed with each of `parser` in turn; the
//! first that succeeds wins. The new record is the parsed keys, then — with `reserve_data` —
//! the record's other keys in their order; `preserve_key` also keeps `key_name` itself. When
//! the parser reads a time (`Time_Key` + `Time_Format`), it becomes the event's time. A value
//! no parser accepts (not a JSON object, no regex match, no logfmt/ltsv field) leaves the record
//! as it was. A time that does not fit `Time_Format` (json, regex) is counted as
//! `component_errors_total{reason="invalid_time"}` and the event keeps its time.
//!
//! Parser definitions come from [`crate::parsers`]: built-in `json` and `docker`, the
//! `parsers_files` of the filter (the classic loader puts `[SERVICE] Parsers_File` there) and
//! the `-R` files of the command line.

use super::{RecordFilter, Verdict};
use crate::event::Event;
use crate::event::record::{RawRecord, str_or_bin};
use crate::ops::metrics::{Component, Metrics};
use crate::parsers::{Parser, ParserCatalog, command_line_files};
use bytes::Bytes;
use serde::Deserialize;
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

/// `type = "parser"` under `[[filters]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParserFilterConfig {
    /// The field to parse (Fluent Bit `Key_Name`), e.g. `"log"`.
    pub key_name: String,
    /// Parsers to try, in order (Fluent Bit `Parser`, repeatable), e.g. `["json"]`.
    pub parser: Vec<String>,
    /// Keep the record's other keys after the parsed ones (Fluent Bit `Reserve_Data`).
    #[serde(default)]
    pub reserve_data: bool,
    /// Keep `key_name` itself (Fluent Bit `Preserve_Key`).
    #[serde(default)]
    pub preserve_key: bool,
    /// Files with `[PARSER]` sections (besides the built-in `json` and `docker` and the
    /// command line's `-R` files).
    #[serde(default)]
    pub parsers_files: Vec<PathBuf>,
}

impl ParserFilterConfig {
    fn parsers(&self) -> Result<Vec<Parser>, String> {
        if self.key_name.is_empty() {
            return Err(".key_name is empty; e.g. `key_name = \"log\"`".into());
        }
        if self.parser.is_empty() {
            return Err(".parser: name at least one parser, e.g. `parser = [\"json\"]`".into());
        }
        let mut files = self.parsers_files.clone();
        files.extend(command_line_files());
        let catalog = ParserCatalog::load(&files).map_err(|e| format!(".parsers_files: {e}"))?;
        self.parser
            .iter()
            .enumerate()
            .map(|(i, name)| {
                catalog
                    .resolve(name)
                    .map_err(|e| format!(".parser[{i}]: {e}"))
            })
            .collect()
    }
}

/// The compiled filter.
pub struct ParserFilter {
    key: Vec<u8>,
    parsers: Vec<Parser>,
    reserve_data: bool,
    preserve_key: bool,
    component: Component,
    metrics: Arc<Metrics>,
}

impl ParserFilter {
    /// Load the parsers of `config` for the filter component `id`.
    pub fn new(
        config: &ParserFilterConfig,
        id: &str,
        metrics: Arc<Metrics>,
    ) -> Result<ParserFilter, String> {
        Ok(ParserFilter {
            key: config.key_name.as_bytes().to_vec(),
            parsers: config.parsers()?,
            reserve_data: config.reserve_data,
            preserve_key: config.preserve_key,
            component: Component::filter(id),
            metrics,
        })
    }

    /// `event` with its field parsed, or `None` when nothing was parsed.
    pub fn parse(&self, event: &Event) -> Option<Event> {
        let record = RawRecord::parse(&event.body)?;
        let at = (0..record.entries.len()).find(|&i| {
            record.key(i) == Some(self.key.as_slice()) && str_or_bin(&record.entries[i].1).is_some()
        })?;
        let text = str_or_bin(&record.entries[at].1)?;
        let parsed = self.parsers.iter().find_map(|p| p.parse(text))?;
        if parsed.invalid_time {
            self.metrics.error(&self.component, "invalid_time");
            tracing::trace!(filter = %self.component.id, "a time did not fit the parser's Time_Format");
        }
        let mut out = RawRecord::parse(&parsed.body)?;
        let kept = record
            .entries
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                if *i == at {
                    self.preserve_key
                } else {
                    self.reserve_data
                }
            })
            .map(|(_, (k, v))| (Cow::Borrowed(&k[..]), Cow::Borrowed(&v[..])));
        out.entries.extend(kept);
        Some(Event {
            time_ns: parsed.time_ns.unwrap_or(event.time_ns),
            body: Bytes::from(out.encode()),
        })
    }
}

impl RecordFilter for ParserFilter {
    fn apply(&self, event: &Event) -> Verdict {
        match self.parse(event) {
            Some(new) => Verdict::Replace(new),
            None => Verdict::Keep,
        }
    }
}

impl super::NativeConfig for ParserFilterConfig {
    type Filter = ParserFilter;

    fn compile(&self, id: &str, metrics: &Arc<Metrics>) -> Result<ParserFilter, String> {
        ParserFilter::new(self, id, metrics.clone())
    }

    /// Every parser exists and runs natively (its `file:line` in the message).
    fn check(&self) -> Result<(), String> {
        self.parsers().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::record::tests::{body, json};
    use serde_json::json;

    fn filter(toml_text: &str) -> Result<ParserFilter, String> {
        let config: ParserFilterConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        ParserFilter::new(&config, "parser.0", Metrics::new())
    }

    fn event(v: serde_json::Value) -> Event {
        Event {
            time_ns: 7,
            body: Bytes::from(body(v)),
        }
    }

    #[test]
    fn the_firelens_parse_json_config() {
        let f = filter("key_name = \"log\"\nparser = [\"json\"]\nreserve_data = true").unwrap();
        let out = f
            .parse(&event(json!({"container_id": "abc", "log": "{\"level\":\"info\",\"n\":1}", "source": "stdout"})))
            .unwrap();
        assert_eq!(
            json(&out.body),
            r#"{"level":"info","n":1,"container_id":"abc","source":"stdout"}"#
        );
        assert_eq!(out.time_ns, 7);
        assert_eq!(f.parse(&event(json!({"log": "plain text"}))), None);
        assert_eq!(f.parse(&event(json!({"log": "[1]"}))), None);
        assert_eq!(f.parse(&event(json!({"log": 5}))), None);
        assert_eq!(f.parse(&event(json!({"message": "{}"}))), None);
    }

    #[test]
    fn reserve_data_preserve_key_and_time() {
        let record = json!({"a": 1, "log": "{\"x\":2,\"time\":\"01/Jan/2024:00:00:00 +0000\"}"});
        let only = filter("key_name = \"log\"\nparser = [\"json\"]").unwrap();
        let out = only.parse(&event(record.clone())).unwrap();
        assert_eq!(json(&out.body), r#"{"x":2}"#);
        assert_eq!(out.time_ns, 1_704_067_200_000_000_000);
        let keep = filter("key_name = \"log\"\nparser = [\"json\"]\npreserve_key = true").unwrap();
        let out = keep.parse(&event(record.clone())).unwrap();
        assert_eq!(
            json(&out.body),
            r#"{"x":2,"log":"{\"x\":2,\"time\":\"01/Jan/2024:00:00:00 +0000\"}"}"#
        );
        let both = filter(
            "key_name = \"log\"\nparser = [\"json\"]\npreserve_key = true\nreserve_data = true",
        )
        .unwrap();
        let out = both.parse(&event(record)).unwrap();
        assert_eq!(
            json(&out.body),
            r#"{"x":2,"a":1,"log":"{\"x\":2,\"time\":\"01/Jan/2024:00:00:00 +0000\"}"}"#
        );
    }

    #[test]
    fn an_invalid_time_is_counted_and_the_event_keeps_its_time() {
        let metrics = Metrics::new();
        let config: ParserFilterConfig =
            toml::from_str("key_name = \"log\"\nparser = [\"json\"]").unwrap();
        let f = ParserFilter::new(&config, "p", metrics.clone()).unwrap();
        let out = f
            .parse(&event(json!({"log": "{\"time\":\"yesterday\"}"})))
            .unwrap();
        assert_eq!(out.time_ns, 7);
        assert_eq!(json(&out.body), r#"{"time":"yesterday"}"#);
        assert!(
            metrics
                .encode()
                .contains("component_errors_total{component_kind=\"filter\",component_id=\"p\",reason=\"invalid_time\"} 1"),
            "{}",
            metrics.encode()
        );
    }

    #[test]
    fn parsers_are_tried_in_order_and_mistakes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.conf");
        std::fs::write(
            &file,
            "[PARSER]\n    Name strict\n    Format json\n    Time_Key t\n    Time_Format %s\n",
        )
        .unwrap();
        let f = filter(&format!(
            "key_name = \"log\"\nparser = [\"strict\", \"json\"]\nparsers_files = [{:?}]",
            file
        ))
        .unwrap();
        let out = f.parse(&event(json!({"log": "{\"t\":\"100\"}"}))).unwrap();
        assert_eq!(out.time_ns, 100_000_000_000);
        let e = filter("key_name = \"log\"\nparser = [\"json\", \"nope\"]")
            .err()
            .unwrap();
        assert!(
            e.starts_with(".parser[1]: parser `nope` is not defined"),
            "{e}"
        );
        let e = filter("key_name = \"\"\nparser = [\"json\"]")
            .err()
            .unwrap();
        assert!(e.contains("key_name"), "{e}");
    }
}
