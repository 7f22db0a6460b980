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
    /// Some string needed U+FFFD replacements.
    pub invalid_utf8: bool,
}

/// Renders events as one output's options say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordRenderer {
    /// `log_key`.
    pub log_key: Option<String>,
    /// `data_keys`.
    pub data_keys: Option<Vec<String>>,
    /// `replace_dots`: the replacement for `.` in key names.
    pub replace_dots: Option<String>,
    /// A field put before the record's own keys (S3 `json_date_key`).
    pub leading_time: Option<TimeField>,
    /// A field put after the record's own keys (Firehose `time_key`).
    pub trailing_time: Option<TimeField>,
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
            return Ok(match json::str_payload(v) {
                Some(text) => {
                    let lossy = String::from_utf8_lossy(text);
                    out.push_str(&lossy);
                    Rendered {
                        invalid_utf8: matches!(lossy, std::borrow::Cow::Owned(_)),
                    }
                }
                None => Rendered {
                    invalid_utf8: json::write_json_stats(v, out)?.invalid_utf8_strings > 0,
                },
            });
        }
        Err(RenderError::LogKeyMissing(key.to_string()))
    }

    fn render_object(&self, event: &Event, out: &mut String) -> Result<Rendered, RenderError> {
        let mut invalid = false;
        out.push('{');
        let mut first = true;
        if let Some(field) = &self.leading_time {
            time_field(field, event.time_ns, out);
            first = false;
        }
        for entry in json::map_entries(&event.body)? {
            let (k, v) = entry?;
            if let Some(keep) = &self.data_keys
                && !json::str_payload(k)
                    .is_some_and(|name| keep.iter().any(|d| d.as_bytes() == name))
            {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            invalid |= self.write_entry(k, v, out, 0)?;
        }
        if let Some(field) = &self.trailing_time {
            if !first {
                out.push(',');
            }
            time_field(field, event.time_ns, out);
        }
        out.push('}');
        Ok(Rendered {
            invalid_utf8: invalid,
        })
    }

    /// Write `key:value`; with `replace_dots`, nested maps are walked to rename their keys too.
    fn write_entry(
        &self,
        key: &[u8],
        value: &[u8],
        out: &mut String,
        depth: usize,
    ) -> Result<bool, JsonError> {
        let mut invalid = self.write_key(key, out)?;
        out.push(':');
        let nested = self.replace_dots.is_some() && json::map_entries(value).is_ok();
        if nested {
            if depth >= json::MAX_DEPTH {
                return Err(JsonError::TooDeep);
            }
            out.push('{');
            for (i, entry) in json::map_entries(value)?.enumerate() {
                let (k, v) = entry?;
                if i > 0 {
                    out.push(',');
                }
                invalid |= self.write_entry(k, v, out, depth + 1)?;
            }
            out.push('}');
        } else {
            invalid |= json::write_json_stats(value, out)?.invalid_utf8_strings > 0;
        }
        Ok(invalid)
    }

    fn write_key(&self, key: &[u8], out: &mut String) -> Result<bool, JsonError> {
        match (json::str_payload(key), &self.replace_dots) {
            (Some(name), Some(replacement)) if name.contains(&b'.') => {
                let lossy = String::from_utf8_lossy(name);
                let renamed = lossy.replace('.', replacement);
                json::write_json_string(out, renamed.as_bytes());
                Ok(matches!(lossy, std::borrow::Cow::Owned(_)))
            }
            (Some(name), _) => Ok(json::write_json_string(out, name)),
            (None, _) => {
                let mut text = String::new();
                let stats = json::write_json_stats(key, &mut text)?;
                json::write_json_string(out, text.as_bytes());
                Ok(stats.invalid_utf8_strings > 0)
            }
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
    fn whole_record_keeps_order_and_renders_bin_lossily() {
        let (text, rendered) = render(&RecordRenderer::default(), &event(firelens_record()));
        assert_eq!(
            text,
            "{\"container_id\":\"abc\",\"source\":\"stdout\",\"log\":\"GET / 200\",\"k8s.pod\":{\"a.b\":1},\"raw\":\"bin\u{FFFD}val\"}"
        );
        assert!(rendered.invalid_utf8);
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
