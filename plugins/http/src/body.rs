//! One event written in the body format ([`write_event`]), and a batch's events cut into
//! bodies of at most the configured size ([`Bodies`]).
//!
//! JSON formats write the record as Fluent Bit's `flb_pack_msgpack_to_json_format` does: the
//! date key first, then the record's keys in order (a record key equal to the date key is
//! written too, as Fluent Bit does). `msgpack` writes each event as Fluent Bit's chunk
//! encoding: `[[EventTime, {}], record]`, the time as msgpack extension type 0 (seconds and
//! nanoseconds, big-endian), as the Forward protocol's EventTime.

use crate::config::{Format, Http};
use wasm_router_sdk::json::write_record_json;
use wasm_router_sdk::{DecodeError, Event, Map};

/// Writes `event` as one element of `config`'s format into `out` (cleared first).
pub fn write_event(config: &Http, event: &Event<'_>, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    out.clear();
    Map::from_msgpack(event.body())?;
    match config.format {
        Format::Msgpack => {
            out.extend_from_slice(&[0x92, 0x92, 0xd7, 0x00]);
            let seconds = (event.time_ns() / 1_000_000_000) as u32;
            let nanos = (event.time_ns() % 1_000_000_000) as u32;
            out.extend_from_slice(&seconds.to_be_bytes());
            out.extend_from_slice(&nanos.to_be_bytes());
            out.push(0x80);
            out.extend_from_slice(event.body());
        }
        Format::Json | Format::JsonLines | Format::JsonStream => {
            match &config.date {
                None => write_record_json(out, event.body())?,
                Some((key, format)) => {
                    out.push(b'{');
                    wasm_router_sdk::json::write_json_string(out, key.as_bytes());
                    out.push(b':');
                    format.write(out, event.time_ns());
                    let mark = out.len();
                    write_record_json(out, event.body())?;
                    // `{…}` of the record: replace its `{` by a comma, unless it is empty.
                    if out.len() - mark == 2 {
                        out.truncate(mark);
                        out.push(b'}');
                    } else {
                        out[mark] = b',';
                    }
                }
            }
            if config.format == Format::JsonLines {
                out.push(b'\n');
            }
        }
    }
    Ok(())
}

/// A body and the batch indexes of the events it carries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Body {
    /// The bytes, uncompressed.
    pub bytes: Vec<u8>,
    /// The events.
    pub events: Vec<u32>,
}

/// Bodies of one format, each at most `max_bytes` unless one event alone is larger (it is
/// then sent in a body of its own rather than lost).
#[derive(Debug)]
pub struct Bodies {
    format: Format,
    max_bytes: usize,
    current: Body,
    done: Vec<Body>,
}

impl Bodies {
    /// Empty, for `format` and bodies of `max_bytes`.
    pub fn new(format: Format, max_bytes: usize) -> Bodies {
        Bodies {
            format,
            max_bytes,
            current: Body::default(),
            done: Vec::new(),
        }
    }

    /// Adds event `index`, already written as `element`.
    pub fn push(&mut self, index: u32, element: &[u8]) {
        let json = self.format == Format::Json;
        // `[` or `,` before, `]` after.
        let added = element.len() + usize::from(json);
        let closing = usize::from(json);
        if !self.current.events.is_empty()
            && self.current.bytes.len() + added + closing > self.max_bytes
        {
            self.close();
        }
        if json {
            self.current.bytes.push(if self.current.events.is_empty() {
                b'['
            } else {
                b','
            });
        }
        self.current.bytes.extend_from_slice(element);
        self.current.events.push(index);
    }

    fn close(&mut self) {
        if self.current.events.is_empty() {
            return;
        }
        if self.format == Format::Json {
            self.current.bytes.push(b']');
        }
        self.done.push(std::mem::take(&mut self.current));
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

    fn written(config: &str, record: &str) -> String {
        let config = Http::from_json(config).unwrap();
        let event = TestEvent::json_text(record)
            .unwrap()
            .with_time_ns(1_700_000_000_500_000_000);
        let mut out = Vec::new();
        write_event(&config, &event.event(), &mut out).unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn json_records_with_the_date_first() {
        assert_eq!(
            written("{}", r#"{"log": "a", "n": 1}"#),
            r#"{"date":1700000000.500000,"log":"a","n":1}"#
        );
        assert_eq!(written("{}", "{}"), r#"{"date":1700000000.500000}"#);
        assert_eq!(
            written(
                r#"{"format": "json_lines", "json_date_key": "false"}"#,
                r#"{"log": "a"}"#
            ),
            "{\"log\":\"a\"}\n"
        );
    }

    #[test]
    fn msgpack_is_fluent_bit_event_encoding() {
        let config = Http::from_json(r#"{"format": "msgpack"}"#).unwrap();
        let event = TestEvent::json_text(r#"{"a": 1}"#)
            .unwrap()
            .with_time_ns(5_000_000_007);
        let mut out = Vec::new();
        write_event(&config, &event.event(), &mut out).unwrap();
        assert_eq!(
            out,
            [
                0x92, 0x92, 0xd7, 0, 0, 0, 0, 5, 0, 0, 0, 7, 0x80, 0x81, 0xa1, b'a', 1
            ]
        );
    }

    #[test]
    fn bodies_split_at_the_size_and_keep_an_oversized_event() {
        let mut bodies = Bodies::new(Format::Json, 10);
        for (i, element) in [&b"{1}"[..], b"{2}", b"{3}", b"{0123456789}"]
            .iter()
            .enumerate()
        {
            bodies.push(i as u32, element);
        }
        let done = bodies.finish();
        let texts: Vec<_> = done
            .iter()
            .map(|b| String::from_utf8_lossy(&b.bytes).into_owned())
            .collect();
        assert_eq!(texts, ["[{1},{2}]", "[{3}]", "[{0123456789}]"]);
        assert_eq!(done[0].events, [0, 1]);
        let mut lines = Bodies::new(Format::JsonLines, 8);
        for i in 0..3 {
            lines.push(i, b"{\"a\"}\n");
        }
        assert_eq!(lines.finish().len(), 3);
    }
}
