//! From a line to a record, and from a file's path to its tag.
//!
//! [`LineRecords::record`] is the one step that turns a line into an event: `{key: line}`, or
//! what `parser` made of it, plus `path_key` and `offset_key`. With multiline parsers the
//! file's joiner makes the record and [`LineRecords::add_keys`] adds those two.

use crate::event::{Event, now_ns};
use crate::parsers::Parser;
use bytes::Bytes;

/// How a line becomes a record.
pub struct LineRecords {
    /// The key of the line's text.
    pub key: String,
    /// The key of the file's path, if any.
    pub path_key: Option<String>,
    /// The key of the offset after the line, if any.
    pub offset_key: Option<String>,
    /// The parser applied to each line, if any.
    pub parser: Option<Parser>,
}

/// A record made from one line.
pub struct LineRecord {
    /// The event.
    pub event: Event,
    /// The parser read a time that did not fit its `Time_Format` (the event has the read time).
    pub invalid_time: bool,
}

impl LineRecords {
    /// The record of `line` of the file `path`, which ends just before `offset`.
    pub fn record(&self, line: &[u8], path: &str, offset: u64) -> LineRecord {
        let extra = u32::from(self.path_key.is_some()) + u32::from(self.offset_key.is_some());
        let mut body = Vec::with_capacity(line.len() + 32);
        let mut time_ns = None;
        let mut invalid_time = false;
        let parsed = self.parser.as_ref().and_then(|p| p.parse(line));
        match parsed {
            Some(parsed) => {
                time_ns = parsed.time_ns;
                invalid_time = parsed.invalid_time;
                let mut rest = parsed.body.as_slice();
                let len = rmp::decode::read_map_len(&mut rest).expect("the parser makes a map");
                rmp::encode::write_map_len(&mut body, len + extra).expect("a Vec takes writes");
                body.extend_from_slice(rest);
            }
            None => {
                rmp::encode::write_map_len(&mut body, 1 + extra).expect("a Vec takes writes");
                write_str(&mut body, self.key.as_bytes());
                write_str(&mut body, line);
            }
        }
        self.write_keys(&mut body, path, offset);
        LineRecord {
            event: Event {
                time_ns: time_ns.unwrap_or_else(now_ns),
                body: Bytes::from(body),
            },
            invalid_time,
        }
    }
}

impl LineRecords {
    /// `event` (a joined record, a msgpack map) with `path_key` and `offset_key` added.
    pub fn add_keys(&self, mut event: Event, path: &str, offset: u64) -> Event {
        let extra = u32::from(self.path_key.is_some()) + u32::from(self.offset_key.is_some());
        if extra == 0 {
            return event;
        }
        let mut rest = &event.body[..];
        let Ok(len) = rmp::decode::read_map_len(&mut rest) else {
            return event;
        };
        let mut body = Vec::with_capacity(event.body.len() + path.len() + 32);
        rmp::encode::write_map_len(&mut body, len + extra).expect("a Vec takes writes");
        body.extend_from_slice(rest);
        self.write_keys(&mut body, path, offset);
        event.body = Bytes::from(body);
        event
    }

    fn write_keys(&self, body: &mut Vec<u8>, path: &str, offset: u64) {
        if let Some(key) = &self.path_key {
            write_str(body, key.as_bytes());
            write_str(body, path.as_bytes());
        }
        if let Some(key) = &self.offset_key {
            write_str(body, key.as_bytes());
            rmp::encode::write_uint(body, offset).expect("a Vec takes writes");
        }
    }
}

/// A msgpack string of `text` (invalid UTF-8 replaced, as JSON outputs need).
fn write_str(out: &mut Vec<u8>, text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    rmp::encode::write_str(out, &text).expect("a Vec takes writes");
}

/// The tag of the file at `path` (absolute) for the configured `tag`: Fluent Bit replaces the
/// first `*` by the path, turns `/`, `\` and `:` into `.` (dropping one at the start), and
/// drops doubled dots, other `*`s and a dot at the end. A tag without `*` is used as it is.
pub fn expand_tag(tag: &str, path: &str) -> String {
    let Some(star) = tag.find('*') else {
        return tag.to_string();
    };
    let composed = format!("{}{}{}", &tag[..star], path, &tag[star + 1..]);
    let mut out = String::with_capacity(composed.len());
    for c in composed.chars() {
        let c = if matches!(c, '/' | '\\' | ':') {
            '.'
        } else {
            c
        };
        match c {
            '.' if out.is_empty() || out.ends_with('.') => {}
            '*' => {}
            c => out.push(c),
        }
    }
    if out.ends_with('.') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_in_the_tag_becomes_the_path_with_dots() {
        assert_eq!(
            expand_tag("kube.*", "/var/log/containers/app_ns_c-1.log"),
            "kube.var.log.containers.app_ns_c-1.log"
        );
        assert_eq!(expand_tag("*", "/var/log/a.log"), "var.log.a.log");
        assert_eq!(expand_tag("app.*.logs", "/tmp/x"), "app.tmp.x.logs");
        assert_eq!(expand_tag("plain", "/tmp/x"), "plain");
        assert_eq!(expand_tag("a.*.*", "/tmp/x/"), "a.tmp.x");
    }

    #[test]
    fn a_line_becomes_key_line_plus_path_and_offset_or_what_the_parser_made() {
        let records = LineRecords {
            key: "log".into(),
            path_key: Some("file".into()),
            offset_key: Some("offset".into()),
            parser: None,
        };
        let r = records.record(b"hello \xff", "/var/log/a.log", 12);
        let v: serde_json::Value = rmp_serde::from_slice(&r.event.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"log": "hello \u{fffd}", "file": "/var/log/a.log", "offset": 12})
        );
        let catalog = crate::parsers::ParserCatalog::load(&[]).unwrap();
        let records = LineRecords {
            key: "log".into(),
            path_key: Some("file".into()),
            offset_key: None,
            parser: Some(catalog.resolve("json").unwrap()),
        };
        let r = records.record(br#"{"level":"info","n":1}"#, "/a", 22);
        let v: serde_json::Value = rmp_serde::from_slice(&r.event.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"level": "info", "n": 1, "file": "/a"})
        );
        let r = records.record(b"not json", "/a", 8);
        let v: serde_json::Value = rmp_serde::from_slice(&r.event.body).unwrap();
        assert_eq!(v, serde_json::json!({"log": "not json", "file": "/a"}));
        // A joined record gets the same keys.
        let joined = Event {
            time_ns: 1,
            body: Bytes::from(
                rmp_serde::to_vec_named(&serde_json::json!({"log": "a\nb"})).unwrap(),
            ),
        };
        let v: serde_json::Value =
            rmp_serde::from_slice(&records.add_keys(joined, "/a", 9).body).unwrap();
        assert_eq!(v, serde_json::json!({"log": "a\nb", "file": "/a"}));
    }
}
