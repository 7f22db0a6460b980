//! One event → the bytes an AWS output sends, with the record options of Fluent Bit's AWS
//! plugins: `log_key` (send one key's value: a string raw, anything else as JSON), `data_keys`
//! (keep only these top-level keys), `replace_dots` (rename keys, nested ones included, as the
//! Go `firehose` plugin does), a time field appended (`time_key` + `time_key_format`, Firehose)
//! or put first (`json_date_key` + `json_date_format`, S3). The JSON itself comes from
//! [`crate::event::json`], streaming over the msgpack record.

use crate::event::Event;
use crate::event::json::{self, JsonError};
use crate::time::strftime::TimeFormat;
use std::fmt::Write as _;

/// How a time field's value is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeValue {
    /// A string in this strftime format.
    Formatted(TimeFormat),
    /// Seconds as a JSON number with a fraction (`double`).
    Double,
    /// Whole seconds (`epoch`).
    Epoch,
    /// Whole milliseconds (`epoch_ms`).
    EpochMs,
    /// `2023-11-14T22:13:20.123456Z` (`iso8601`, microseconds as Fluent Bit writes it).
    Iso8601,
    /// `2023-11-14 22:13:20.123456` (`java_sql_timestamp`).
    JavaSqlTimestamp,
}

impl TimeValue {
    /// S3's `json_date_format` values.
    pub fn from_json_date_format(name: &str) -> Option<TimeValue> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "double" => TimeValue::Double,
            "epoch" => TimeValue::Epoch,
            "epoch_ms" => TimeValue::EpochMs,
            "iso8601" => TimeValue::Iso8601,
            "java_sql_timestamp" => TimeValue::JavaSqlTimestamp,
            _ => return None,
        })
    }

    fn write(&self, time_ns: u64, out: &mut String) {
        match self {
            TimeValue::Formatted(f) => {
                let text = f.format(time_ns);
                json::write_json_string(out, text.as_bytes());
            }
            TimeValue::Double => {
                let secs = time_ns / 1_000_000_000;
                let micros = time_ns % 1_000_000_000 / 1_000;
                write!(out, "{secs}.{micros:06}").unwrap()
            }
            TimeValue::Epoch => write!(out, "{}", time_ns / 1_000_000_000).unwrap(),
            TimeValue::EpochMs => write!(out, "{}", time_ns / 1_000_000).unwrap(),
            TimeValue::Iso8601 => write!(
                out,
                "\"{}\"",
                TimeFormat::new("%Y-%m-%dT%H:%M:%S.%6NZ").format(time_ns)
            )
            .unwrap(),
            TimeValue::JavaSqlTimestamp => write!(
                out,
                "\"{}\"",
                TimeFormat::new("%Y-%m-%d %H:%M:%S.%6N").format(time_ns)
            )
            .unwrap(),
        }
    }
}

/// A time field added to every JSON record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeField {
    /// The key.
    pub key: String,
    /// How the value is written.
    pub value: TimeValue,
}

/// Why an event could not be rendered (the event is dropped and counted under [`Self::reason`]).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    /// The record has no `log_key`.
    #[error("the record has no key {0:?} (log_key)")]
    LogKeyMissing(String),
    /// The body is not a complete msgpack map.
    #[error("the record is not valid msgpack: {0}")]
    Malformed(#[from] JsonError),
}

impl RenderError {
    /// The drop reason for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            RenderError::LogKeyMissing(_) => "log_key_missing",
            RenderError::Malformed(_) => "malformed_record",
        }
    }
}

/// What rendering one event noticed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    /// Some string held invalid UTF-8 (written with the private-use mapping of
    /// [`json::push_utf8_mapped`]).
    pub invalid_utf8: bool,
}

/// Renders events as one output's options say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordRenderer {
    /// `log_key`.
    pub log_key: Option<String>,
    /// `data_keys`.
    pub data_keys: Option<Vec<String>>,
    /// `replace_dots`: the replacement for `.` in key names (of the record and of the maps
    /// nested in it, not of maps inside arrays, as the Go plugins do).
    pub replace_dots: Option<String>,
    /// Write the keys of every map sorted, as the Go plugins' JSON encoder does (`time_key`
    /// included); otherwise in record order, as the C plugins do.
    pub sort_keys: bool,
    /// A field put before the record's own keys (S3 `json_date_key`).
    pub leading_time: Option<TimeField>,
    /// A field put after the record's own keys (Firehose `time_key`).
    pub trailing_time: Option<TimeField>,
}

/// One `"key":value` of a map being written sorted.
struct Member {
    key: String,
    text: String,
}

impl RecordRenderer {
    /// Append `event` rendered to `out`.
    pub fn render(&self, event: &Event, out: &mut String) -> Result<Rendered, RenderError> {
        let start = out.len();
        let result = match &self.log_key {
            Some(key) => self.render_log_key(key, &event.body, out),
            None => self.render_object(event, out),
        };
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn render_log_key(
        &self,
        key: &str,
        body: &[u8],
        out: &mut String,
    ) -> Result<Rendered, RenderError> {
        for entry in json::map_entries(body)? {
            let (k, v) = entry?;
            if json::str_payload(k) != Some(key.as_bytes()) {
                continue;
            }
            let invalid_utf8 = match json::str_payload(v) {
                Some(text) => json::push_utf8_mapped(out, text),
                None => self.write_value(v, out, 0, true)?,
            };
            return Ok(Rendered { invalid_utf8 });
        }
        Err(RenderError::LogKeyMissing(key.to_string()))
    }

    fn render_object(&self, event: &Event, out: &mut String) -> Result<Rendered, RenderError> {
        let entries =
            json::map_entries(&event.body)?.filter(|entry| match (entry, &self.data_keys) {
                (Ok((k, _)), Some(keep)) => json::str_payload(k)
                    .is_some_and(|name| keep.iter().any(|d| d.as_bytes() == name)),
                _ => true,
            });
        let invalid_utf8 = self.write_map(entries, out, 0, true, Some(event.time_ns))?;
        Ok(Rendered { invalid_utf8 })
    }

    /// Write one value: maps and arrays are walked when keys are renamed or sorted (renaming
    /// stops at arrays), anything else is written by [`json`].
    fn write_value(
        &self,
        value: &[u8],
        out: &mut String,
        depth: usize,
        rename: bool,
    ) -> Result<bool, JsonError> {
        let walk_maps = self.sort_keys || (rename && self.replace_dots.is_some());
        if walk_maps && let Ok(entries) = json::map_entries(value) {
            return self.write_map(entries, out, depth + 1, rename, None);
        }
        if self.sort_keys
            && let Some(items) = json::array_items(value)
        {
            if depth >= json::MAX_DEPTH {
                return Err(JsonError::TooDeep);
            }
            let mut invalid = false;
            out.push('[');
            for (i, item) in items.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                invalid |= self.write_value(item?, out, depth + 1, false)?;
            }
            out.push(']');
            return Ok(invalid);
        }
        Ok(json::write_json_stats(value, out)?.invalid_utf8_strings > 0)
    }

    /// Write a map from its entries; at the top (`time_ns` given) with the time fields.
    fn write_map<'a>(
        &self,
        entries: impl Iterator<Item = Result<(&'a [u8], &'a [u8]), JsonError>>,
        out: &mut String,
        depth: usize,
        rename: bool,
        time_ns: Option<u64>,
    ) -> Result<bool, JsonError> {
        if depth > json::MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        let mut invalid = false;
        out.push('{');
        let mut first = true;
        if let (Some(field), Some(t)) = (&self.leading_time, time_ns) {
            time_field(field, t, out);
            first = false;
        }
        let trailing = self.trailing_time.as_ref().zip(time_ns);
        if self.sort_keys {
            let mut members = Vec::new();
            for entry in entries {
                let (k, v) = entry?;
                let mut text = String::new();
                let key = self.key_text(k, rename, &mut invalid)?;
                json::write_json_string(&mut text, key.as_bytes());
                text.push(':');
                invalid |= self.write_value(v, &mut text, depth, rename)?;
                members.push(Member { key, text });
            }
            if let Some((field, t)) = trailing {
                let mut text = String::new();
                time_field(field, t, &mut text);
                members.push(Member {
                    key: field.key.clone(),
                    text,
                });
            }
            members.sort_by(|a, b| a.key.cmp(&b.key));
            for m in members {
                if !std::mem::take(&mut first) {
                    out.push(',');
                }
                out.push_str(&m.text);
            }
        } else {
            for entry in entries {
                let (k, v) = entry?;
                if !std::mem::take(&mut first) {
                    out.push(',');
                }
                match json::str_payload(k) {
                    // The common case, without a copy of the key.
                    Some(name) if !(rename && self.replace_dots.is_some()) => {
                        invalid |= json::write_json_string(out, name);
                    }
                    _ => {
                        let key = self.key_text(k, rename, &mut invalid)?;
                        json::write_json_string(out, key.as_bytes());
                    }
                }
                out.push(':');
                invalid |= self.write_value(v, out, depth, rename)?;
            }
            if let Some((field, t)) = trailing {
                if !first {
                    out.push(',');
                }
                time_field(field, t, out);
            }
        }
        out.push('}');
        Ok(invalid)
    }

    /// A key's text: a string key (invalid UTF-8 mapped, dots replaced when renaming), or the
    /// JSON text of another key type.
    fn key_text(&self, key: &[u8], rename: bool, invalid: &mut bool) -> Result<String, JsonError> {
        let mut text = String::new();
        match json::str_payload(key) {
            Some(name) => *invalid |= json::push_utf8_mapped(&mut text, name),
            None => *invalid |= json::write_json_stats(key, &mut text)?.invalid_utf8_strings > 0,
        }
        match (&self.replace_dots, rename) {
            (Some(replacement), true) if text.contains('.') => Ok(text.replace('.', replacement)),
            _ => Ok(text),
        }
    }
}

fn time_field(field: &TimeField, time_ns: u64, out: &mut String) {
    json::write_json_string(out, field.key.as_bytes());
    out.push(':');
    field.value.write(time_ns, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rmpv::Value as V;
    use serde_json::json;

    const T: u64 = 1_700_000_000_123_456_789;

    fn event(v: V) -> Event {
        let mut b = Vec::new();
        rmpv::encode::write_value(&mut b, &v).unwrap();
        Event {
            time_ns: T,
            body: Bytes::from(b),
        }
    }

    fn firelens_record() -> V {
        V::Map(vec![
            (V::from("container_id"), V::from("abc")),
            (V::from("source"), V::from("stdout")),
            (V::from("log"), V::from("GET / 200")),
            (
                V::from("k8s.pod"),
                V::Map(vec![(V::from("a.b"), V::from(1))]),
            ),
            (V::from("raw"), V::Binary(b"bin\xffval".to_vec())),
        ])
    }

    fn render(r: &RecordRenderer, e: &Event) -> (String, Rendered) {
        let mut out = String::new();
        let rendered = r.render(e, &mut out).unwrap();
        (out, rendered)
    }

    #[test]
    fn whole_record_keeps_order_and_maps_invalid_utf8_reversibly() {
        let (text, rendered) = render(&RecordRenderer::default(), &event(firelens_record()));
        assert_eq!(
            text,
            "{\"container_id\":\"abc\",\"source\":\"stdout\",\"log\":\"GET / 200\",\"k8s.pod\":{\"a.b\":1},\"raw\":\"bin\u{E0FF}val\"}"
        );
        assert!(rendered.invalid_utf8);
        let r = RecordRenderer {
            log_key: Some("raw".into()),
            ..Default::default()
        };
        let (text, rendered) = render(&r, &event(firelens_record()));
        assert_eq!(json::unmap_utf8(&text), b"bin\xffval");
        assert!(rendered.invalid_utf8);
    }

    #[test]
    fn sorted_keys_as_the_go_plugins_write_them() {
        let record = V::Map(vec![
            (V::from("log"), V::from("x")),
            (
                V::from("b.c"),
                V::Map(vec![
                    (V::from("z"), V::from(1)),
                    (V::from("a.a"), V::from(2)),
                ]),
            ),
            (
                V::from("arr"),
                V::Array(vec![V::Map(vec![
                    (V::from("y.y"), V::from(1)),
                    (V::from("x"), V::Nil),
                ])]),
            ),
            (V::from("a"), V::from(true)),
        ]);
        let r = RecordRenderer {
            sort_keys: true,
            replace_dots: Some("_".into()),
            trailing_time: Some(TimeField {
                key: "time".into(),
                value: TimeValue::Epoch,
            }),
            ..Default::default()
        };
        assert_eq!(
            render(&r, &event(record.clone())).0,
            "{\"a\":true,\"arr\":[{\"x\":null,\"y.y\":1}],\"b_c\":{\"a_a\":2,\"z\":1},\"log\":\"x\",\"time\":1700000000}"
        );
        let r = RecordRenderer {
            log_key: Some("b.c".into()),
            sort_keys: true,
            ..Default::default()
        };
        assert_eq!(render(&r, &event(record.clone())).0, "{\"a.a\":2,\"z\":1}");
        assert_eq!(
            render(&RecordRenderer::default(), &event(record)).0,
            "{\"log\":\"x\",\"b.c\":{\"z\":1,\"a.a\":2},\"arr\":[{\"y.y\":1,\"x\":null}],\"a\":true}",
            "record order otherwise"
        );
    }

    #[test]
    fn log_key_sends_strings_raw_and_other_values_as_json() {
        let r = RecordRenderer {
            log_key: Some("log".into()),
            ..Default::default()
        };
        assert_eq!(render(&r, &event(firelens_record())).0, "GET / 200");
        let r = RecordRenderer {
            log_key: Some("k8s.pod".into()),
            ..Default::default()
        };
        assert_eq!(render(&r, &event(firelens_record())).0, "{\"a.b\":1}");
        let r = RecordRenderer {
            log_key: Some("missing".into()),
            ..Default::default()
        };
        let mut out = String::from("keep");
        let err = r.render(&event(firelens_record()), &mut out).unwrap_err();
        assert_eq!(err.reason(), "log_key_missing");
        assert_eq!(out, "keep", "a failed render leaves the buffer as it was");
    }

    #[test]
    fn data_keys_replace_dots_and_time_key() {
        let r = RecordRenderer {
            data_keys: Some(vec!["log".into(), "k8s.pod".into()]),
            replace_dots: Some("_".into()),
            trailing_time: Some(TimeField {
                key: "time".into(),
                value: TimeValue::Formatted(TimeFormat::new("%Y-%m-%dT%H:%M:%S.%L")),
            }),
            ..Default::default()
        };
        let (text, _) = render(&r, &event(firelens_record()));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            json!({"log": "GET / 200", "k8s_pod": {"a_b": 1}, "time": "2023-11-14T22:13:20.123"})
        );
        assert!(
            text.ends_with(",\"time\":\"2023-11-14T22:13:20.123\"}"),
            "time_key comes last: {text}"
        );
    }

    #[test]
    fn json_date_key_comes_first_in_every_format() {
        let cases = [
            ("iso8601", "\"2023-11-14T22:13:20.123456Z\""),
            ("java_sql_timestamp", "\"2023-11-14 22:13:20.123456\""),
            ("double", "1700000000.123456"),
            ("epoch", "1700000000"),
            ("epoch_ms", "1700000000123"),
        ];
        for (name, value) in cases {
            let r = RecordRenderer {
                leading_time: Some(TimeField {
                    key: "date".into(),
                    value: TimeValue::from_json_date_format(name).unwrap(),
                }),
                ..Default::default()
            };
            let (text, _) = render(&r, &event(V::Map(vec![(V::from("log"), V::from("x"))])));
            assert_eq!(
                text,
                format!("{{\"date\":{value},\"log\":\"x\"}}"),
                "{name}"
            );
        }
        assert_eq!(TimeValue::from_json_date_format("nope"), None);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let e = Event {
            time_ns: 0,
            body: Bytes::from_static(&[0x82, 0xa1, b'a']),
        };
        let err = RecordRenderer::default()
            .render(&e, &mut String::new())
            .unwrap_err();
        assert_eq!(err.reason(), "malformed_record");
        let not_a_map = Event {
            time_ns: 0,
            body: Bytes::from_static(&[0x01]),
        };
        assert!(
            RecordRenderer::default()
                .render(&not_a_map, &mut String::new())
                .is_err()
        );
    }
}
