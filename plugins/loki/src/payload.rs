//! One event as a Loki entry ([`line`] and its labels), and a batch's entries as push-API
//! bodies (`{"streams":[{"stream":{labels},"values":[["<ns>","<line>"],…]},…]}`,
//! <https://grafana.com/docs/loki/latest/reference/loki-http-api/#ingest-logs>), one stream
//! per distinct label set, in the order events arrive, cut at [`MAX_REQUEST_BYTES`].

use crate::config::{DropSingleKey, Loki, MAX_REQUEST_BYTES};
use wasm_router_sdk::json::{write_json_string, write_value_json};
use wasm_router_sdk::{DecodeError, Event, Map, Record, Value};

/// The text of a value in a `key_value` line or a raw single key: a string as it is, any
/// other value as JSON.
fn plain(value: Value<'_>, out: &mut Vec<u8>) {
    match value {
        Value::Str(bytes) | Value::Bin(bytes) => out.extend_from_slice(bytes),
        other => write_value_json(out, other),
    }
}

/// The log line of `event`: its record without `remove_keys`, as `line_format` says.
pub fn line(config: &Loki, event: &Event<'_>) -> Result<Vec<u8>, DecodeError> {
    let mut record = Record::new(event.body())?;
    for path in &config.remove_keys {
        record.remove(path.as_slice());
    }
    let body = record.to_msgpack()?;
    let map = Map::from_msgpack(&body)?;
    let mut out = Vec::new();
    if config.drop_single_key != DropSingleKey::Off
        && map.len() == 1
        && let Some((_, value)) = map.iter().next()
    {
        match (config.drop_single_key, value) {
            (DropSingleKey::Raw, Value::Str(_)) => plain(value, &mut out),
            _ => write_value_json(&mut out, value),
        }
        return Ok(out);
    }
    if config.key_value {
        for (i, (key, value)) in map.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            plain(key, &mut out);
            out.push(b'=');
            plain(value, &mut out);
        }
    } else {
        wasm_router_sdk::json::write_record_json(&mut out, &body)?;
    }
    Ok(out)
}

/// One stream of a body: its labels and its `values` entries.
#[derive(Debug, Default)]
struct Stream {
    labels: Vec<(String, String)>,
    values: Vec<u8>,
}

/// A push body and the batch indexes of its events.
#[derive(Debug, Default)]
pub struct Push {
    streams: Vec<Stream>,
    bytes: usize,
    /// The events it carries.
    pub events: Vec<u32>,
}

impl Push {
    /// Adds one entry under `labels`.
    fn add(&mut self, index: u32, labels: Vec<(String, String)>, time_ns: u64, line: &[u8]) {
        let stream = match self.streams.iter().position(|s| s.labels == labels) {
            Some(at) => &mut self.streams[at],
            None => {
                self.bytes += labels
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 6)
                    .sum::<usize>()
                    + 32;
                self.streams.push(Stream {
                    labels,
                    values: Vec::new(),
                });
                self.streams.last_mut().expect("just pushed")
            }
        };
        let before = stream.values.len();
        if before > 0 {
            stream.values.push(b',');
        }
        stream
            .values
            .extend_from_slice(format!("[\"{time_ns}\",").as_bytes());
        write_json_string(&mut stream.values, line);
        stream.values.push(b']');
        self.bytes += stream.values.len() - before;
        self.events.push(index);
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes + 16);
        out.extend_from_slice(b"{\"streams\":[");
        for (i, stream) in self.streams.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"stream\":{");
            for (j, (name, value)) in stream.labels.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                write_json_string(&mut out, name.as_bytes());
                out.push(b':');
                write_json_string(&mut out, value.as_bytes());
            }
            out.extend_from_slice(b"},\"values\":[");
            out.extend_from_slice(&stream.values);
            out.extend_from_slice(b"]}");
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// Push bodies of at most [`MAX_REQUEST_BYTES`] (an entry larger alone gets its own).
#[derive(Debug, Default)]
pub struct Pushes {
    current: Push,
    done: Vec<Push>,
}

impl Pushes {
    /// Adds event `index`'s entry.
    pub fn add(&mut self, index: u32, labels: Vec<(String, String)>, time_ns: u64, line: &[u8]) {
        if !self.current.events.is_empty()
            && self.current.bytes + line.len() + 64 > MAX_REQUEST_BYTES
        {
            self.done.push(std::mem::take(&mut self.current));
        }
        self.current.add(index, labels, time_ns, line);
    }

    /// The pushes, in order.
    pub fn finish(mut self) -> Vec<Push> {
        if !self.current.events.is_empty() {
            self.done.push(self.current);
        }
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_router_sdk::PluginConfig;
    use wasm_router_sdk::serde_json::{self, json};
    use wasm_router_sdk::testing::TestEvent;

    fn line_of(config: &str, record: &str) -> String {
        let config = Loki::from_json(config).unwrap();
        let event = TestEvent::json_text(record).unwrap();
        String::from_utf8(line(&config, &event.event()).unwrap()).unwrap()
    }

    #[test]
    fn lines_as_fluent_bit_writes_them() {
        assert_eq!(
            line_of("{}", r#"{"log": "a", "n": 1}"#),
            r#"{"log":"a","n":1}"#
        );
        assert_eq!(
            line_of(
                r#"{"line_format": "key_value", "remove_keys": "n, $m['x']"}"#,
                r#"{"log": "a b", "n": 1, "m": {"x": 1, "y": true}}"#
            ),
            r#"log=a b m={"y":true}"#
        );
        assert_eq!(
            line_of(r#"{"drop_single_key": "on"}"#, r#"{"log": "a"}"#),
            r#""a""#
        );
        assert_eq!(
            line_of(r#"{"drop_single_key": "raw"}"#, r#"{"log": "a"}"#),
            "a"
        );
        assert_eq!(
            line_of(r#"{"drop_single_key": "raw"}"#, r#"{"log": "a", "b": 1}"#),
            r#"{"log":"a","b":1}"#
        );
    }

    #[test]
    fn one_stream_per_label_set() {
        let mut pushes = Pushes::default();
        let a = vec![("job".to_string(), "a".to_string())];
        let b = vec![("job".to_string(), "b".to_string())];
        pushes.add(0, a.clone(), 5, b"x");
        pushes.add(1, b, 6, b"y\"");
        pushes.add(2, a, 7, b"z");
        let done = pushes.finish();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].events, [0, 1, 2]);
        let body: serde_json::Value = serde_json::from_slice(&done[0].body()).unwrap();
        assert_eq!(
            body,
            json!({"streams": [
                {"stream": {"job": "a"}, "values": [["5", "x"], ["7", "z"]]},
                {"stream": {"job": "b"}, "values": [["6", "y\""]]}
            ]})
        );
    }
}
