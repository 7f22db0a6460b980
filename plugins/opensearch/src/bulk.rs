//! The Bulk API body (NDJSON): per event an action line and a document line, as Fluent Bit's
//! `opensearch_format` writes them.
//!
//! - The action line: `{"create":{"_index":"…","_type":"_doc","_id":"…"}}` (`_type` unless
//!   `suppress_type_name`, `_id` with `generate_id` or `id_key`); `update` and `upsert` are
//!   the `update` action.
//! - The document: the time key first (`time_key_format`, `.`, milliseconds or nanoseconds,
//!   `Z`), then the tag key (`include_tag_key`), then the record's keys in order (dots
//!   replaced with `replace_dots`); `update` wraps it as `{"doc":…}`, `upsert` as
//!   `{"doc_as_upsert":true,"doc":…}`. As in Fluent Bit, a record that has the time key already
//!   gets it twice (OpenSearch refuses such a document: rename the key, or set `time_key`).
//! - The index: `index` (its `%` conversions from the event's time), or with `logstash_format`
//!   the prefix (or the value of `logstash_prefix_key`, at most 128 bytes) + separator + the
//!   event's date.
//! - `generate_id`: an id from the SHA-256 of the document, written as Fluent Bit writes its
//!   hash (`XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`), so a document sent again gets the same id.
//! - `id_key`: the record's string value there (overrides `generate_id`); with `update` or
//!   `upsert`, an event without one cannot be written and is left out (and counted).

use crate::config::{
    IndexName, MAX_PREFIX_FROM_RECORD, OpenSearch, WriteOperation, safe_in_action_line,
};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use wasm_router_sdk::json::{write_json_string, write_value_json};
use wasm_router_sdk::vendor::cut_at_char_boundary;
use wasm_router_sdk::{Event, Value};

/// Writes the action and document lines of `event` into `out` (cleared first).
pub fn write_entry(os: &OpenSearch, event: &Event<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    let map = event.map().map_err(|e| format!("not a record: {e}"))?;
    let time_ns = event.time_ns();
    let seconds = (time_ns / 1_000_000_000) as i64;
    let index = index_of(os, event, seconds);
    let mut doc = Vec::with_capacity(event.body().len() + 64);
    doc.push(b'{');
    let mut time = os.time_format.format(seconds);
    let fraction = time_ns % 1_000_000_000;
    if os.time_nanos {
        let _ = write!(time, ".{fraction:09}Z");
    } else {
        let _ = write!(time, ".{:03}Z", fraction / 1_000_000);
    }
    write_json_string(&mut doc, os.time_key.as_bytes());
    doc.push(b':');
    write_json_string(&mut doc, time.as_bytes());
    if let Some(tag_key) = &os.tag_key {
        doc.push(b',');
        write_json_string(&mut doc, tag_key.as_bytes());
        doc.push(b':');
        write_json_string(&mut doc, event.tag().as_bytes());
    }
    for (key, value) in map.iter() {
        doc.push(b',');
        write_key(&mut doc, key, os.replace_dots);
        doc.push(b':');
        write_value(&mut doc, value, os.replace_dots);
    }
    doc.push(b'}');
    let id = match os
        .id_key
        .as_ref()
        .and_then(|path| event.get(path.as_slice()))
    {
        Some(Value::Str(text)) if safe_in_action_line(&String::from_utf8_lossy(text)) => {
            Some(String::from_utf8_lossy(text).into_owned())
        }
        _ if os.generate_id => Some(hash_id(&doc)),
        _ => None,
    };
    if id.is_none()
        && matches!(
            os.operation,
            WriteOperation::Update | WriteOperation::Upsert
        )
    {
        return Err(format!(
            "no string at id_key, which {} needs",
            if os.operation == WriteOperation::Update {
                "update"
            } else {
                "upsert"
            }
        ));
    }
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(os.operation.action().as_bytes());
    out.extend_from_slice(b"\":{\"_index\":");
    write_json_string(out, index.as_bytes());
    if let Some(doc_type) = &os.doc_type {
        out.extend_from_slice(b",\"_type\":");
        write_json_string(out, doc_type.as_bytes());
    }
    if let Some(id) = &id {
        out.extend_from_slice(b",\"_id\":");
        write_json_string(out, id.as_bytes());
    }
    out.extend_from_slice(b"}}\n");
    match os.operation {
        WriteOperation::Update => out.extend_from_slice(b"{\"doc\":"),
        WriteOperation::Upsert => out.extend_from_slice(b"{\"doc_as_upsert\":true,\"doc\":"),
        WriteOperation::Index | WriteOperation::Create => {}
    }
    out.extend_from_slice(&doc);
    if matches!(
        os.operation,
        WriteOperation::Update | WriteOperation::Upsert
    ) {
        out.push(b'}');
    }
    out.push(b'\n');
    Ok(())
}

/// The index of an event at `seconds`.
fn index_of(os: &OpenSearch, event: &Event<'_>, seconds: i64) -> String {
    match &os.index {
        IndexName::Fixed(name) => name.clone(),
        IndexName::Timed(format) => format.format(seconds),
        IndexName::Logstash {
            prefix,
            separator,
            prefix_key,
            date,
        } => {
            let from_record = prefix_key
                .as_ref()
                .and_then(|path| event.get_str(path.as_slice()))
                .filter(|v| !v.is_empty() && safe_in_action_line(v))
                .map(|v| {
                    String::from_utf8_lossy(cut_at_char_boundary(
                        v.as_bytes(),
                        MAX_PREFIX_FROM_RECORD,
                    ))
                    .into_owned()
                });
            let mut index = from_record.unwrap_or_else(|| prefix.clone());
            index.push_str(separator);
            date.write(seconds, &mut index);
            index
        }
    }
}

/// Fluent Bit's id text of a 128-bit hash, from the first 16 bytes of the SHA-256 of `doc`.
fn hash_id(doc: &[u8]) -> String {
    let h = Sha256::digest(doc);
    let mut id = String::with_capacity(36);
    for (i, byte) in h[..16].iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        let _ = write!(id, "{byte:02X}");
    }
    id
}

fn write_key(out: &mut Vec<u8>, key: Value<'_>, replace_dots: bool) {
    let mut text = match key {
        Value::Str(bytes) | Value::Bin(bytes) => bytes.to_vec(),
        other => {
            let mut text = Vec::new();
            write_value_json(&mut text, other);
            text
        }
    };
    if replace_dots {
        for b in &mut text {
            if *b == b'.' {
                *b = b'_';
            }
        }
    }
    write_json_string(out, &text);
}

fn write_value(out: &mut Vec<u8>, value: Value<'_>, replace_dots: bool) {
    if !replace_dots {
        write_value_json(out, value);
        return;
    }
    match value {
        Value::Map(map) => {
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_key(out, key, true);
                out.push(b':');
                write_value(out, item, true);
            }
            out.push(b'}');
        }
        Value::Array(array) => {
            out.push(b'[');
            for (i, item) in array.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item, true);
            }
            out.push(b']');
        }
        other => write_value_json(out, other),
    }
}

/// One request body and the events it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// NDJSON.
    pub bytes: Vec<u8>,
    /// The batch indexes, in the order of the body's entries (and of the answer's items).
    pub events: Vec<u32>,
}

/// Cuts entries into bodies of at most `max` bytes (an entry larger than that alone gets a body
/// of its own).
#[derive(Debug)]
pub struct Bodies {
    max: usize,
    current: Body,
    done: Vec<Body>,
}

impl Bodies {
    /// Bodies of at most `max` bytes.
    pub fn new(max: usize) -> Bodies {
        Bodies {
            max,
            current: Body {
                bytes: Vec::new(),
                events: Vec::new(),
            },
            done: Vec::new(),
        }
    }

    /// Adds the entry of event `event`.
    pub fn push(&mut self, event: u32, entry: &[u8]) {
        if !self.current.events.is_empty() && self.current.bytes.len() + entry.len() > self.max {
            self.close();
        }
        self.current.bytes.extend_from_slice(entry);
        self.current.events.push(event);
    }

    fn close(&mut self) {
        if !self.current.events.is_empty() {
            let body = std::mem::replace(
                &mut self.current,
                Body {
                    bytes: Vec::new(),
                    events: Vec::new(),
                },
            );
            self.done.push(body);
        }
    }

    /// The bodies, in order.
    pub fn finish(mut self) -> Vec<Body> {
        self.close();
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_router_sdk::PluginConfig;
    use wasm_router_sdk::testing::TestEvent;

    const T: u64 = 1_700_000_000_123_456_789;

    fn entry(config: &str, record: serde_json::Value) -> Result<String, String> {
        let os = OpenSearch::from_json(config).unwrap();
        let event = TestEvent::json(record).with_tag("app.web").with_time_ns(T);
        let mut out = Vec::new();
        write_entry(&os, &event.event(), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn fluent_bit_defaults() {
        assert_eq!(
            entry("{}", serde_json::json!({"log": "hi", "n": 1})).unwrap(),
            "{\"create\":{\"_index\":\"fluent-bit\",\"_type\":\"_doc\"}}\n{\"@timestamp\":\"2023-11-14T22:13:20.123Z\",\"log\":\"hi\",\"n\":1}\n"
        );
    }

    #[test]
    fn logstash_indexes_tags_dots_and_nanoseconds() {
        let line = entry(
            r#"{"logstash_format": true, "logstash_prefix": "app", "logstash_prefix_key": "$kubernetes['ns']", "suppress_type_name": true, "include_tag_key": true, "tag_key": "tag", "replace_dots": true, "time_key_nanos": true, "write_operation": "index"}"#,
            serde_json::json!({"a.b": {"c.d": [{"e.f": 1}]}, "kubernetes": {"ns": "prod"}}),
        )
        .unwrap();
        assert_eq!(
            line,
            "{\"index\":{\"_index\":\"prod-2023.11.14\"}}\n{\"@timestamp\":\"2023-11-14T22:13:20.123456789Z\",\"tag\":\"app.web\",\"a_b\":{\"c_d\":[{\"e_f\":1}]},\"kubernetes\":{\"ns\":\"prod\"}}\n"
        );
        // Without the key (or with an unsafe value) the prefix is used.
        let line = entry(
            r#"{"logstash_format": true, "logstash_prefix_key": "ns", "logstash_dateformat": "%Y%m"}"#,
            serde_json::json!({"ns": "a\"b"}),
        )
        .unwrap();
        assert!(
            line.starts_with("{\"create\":{\"_index\":\"logstash-202311\",\"_type\":\"_doc\"}}\n"),
            "{line}"
        );
    }

    #[test]
    fn ids_generated_from_the_document_or_taken_from_the_record() {
        let a = entry(r#"{"generate_id": true}"#, serde_json::json!({"log": "x"})).unwrap();
        let b = entry(r#"{"generate_id": true}"#, serde_json::json!({"log": "x"})).unwrap();
        let c = entry(r#"{"generate_id": true}"#, serde_json::json!({"log": "y"})).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let id = a
            .split("\"_id\":\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        let own = entry(
            r#"{"generate_id": true, "id_key": "rid", "write_operation": "upsert"}"#,
            serde_json::json!({"rid": "r-1"}),
        )
        .unwrap();
        assert!(own.starts_with("{\"update\":{\"_index\":\"fluent-bit\",\"_type\":\"_doc\",\"_id\":\"r-1\"}}\n{\"doc_as_upsert\":true,\"doc\":{"), "{own}");
        assert!(own.ends_with("}}\n"), "{own}");
        let missing = entry(
            r#"{"id_key": "rid", "write_operation": "update"}"#,
            serde_json::json!({"rid": 5}),
        );
        assert!(missing.unwrap_err().contains("id_key"));
    }

    #[test]
    fn bodies_are_cut_by_size() {
        let mut bodies = Bodies::new(10);
        bodies.push(0, b"aaaa\n");
        bodies.push(1, b"bbbb\n");
        bodies.push(2, b"cccccccccccccc\n");
        bodies.push(3, b"d\n");
        let done = bodies.finish();
        let events: Vec<_> = done.iter().map(|b| b.events.clone()).collect();
        assert_eq!(events, [vec![0, 1], vec![2], vec![3]]);
    }
}
