//! The Log API's detailed JSON payload
//! (<https://docs.newrelic.com/docs/logs/log-api/introduction-log-api/>, "JSON body"):
//!
//! ```json
//! [{"common": {"attributes": {"plugin.type": "wasm-router", …}},
//!   "logs": [{"timestamp": 1700000000123, "message": "…", "attributes": {…}}, …]}]
//! ```
//!
//! One event is one log: `timestamp` is the event time in milliseconds (rounded half up), as
//! newrelic-fluent-bit-output sets it; `message` is the record's `message_key` value (`log`
//! by default; without it the record's own `message`), as text; every other record entry goes
//! into `attributes`. A record's own `timestamp` (and its `message` when `message_key` is
//! there too) is left out: the event time and the `message_key` value are the ones New Relic
//! sees.

use crate::config::NewRelic;
use wasm_router_sdk::json::{write_json_string, write_value_json};
use wasm_router_sdk::vendor::{cut_at_char_boundary, millis};
use wasm_router_sdk::{DecodeError, Event, Map, Value};

/// The text before the array of logs (`[{"common":…,"logs":`) for a batch under `tag`.
pub fn prefix(config: &NewRelic, tag: &str) -> Vec<u8> {
    let mut attributes = config.common_attributes.clone();
    if let Some(tag_key) = &config.tag_key {
        attributes.insert(tag_key.clone(), tag.into());
    }
    let common = wasm_router_sdk::serde_json::json!({"attributes": attributes});
    let mut out = b"[{\"common\":".to_vec();
    out.extend_from_slice(common.to_string().as_bytes());
    out.extend_from_slice(b",\"logs\":");
    out
}

/// The text after the array of logs.
pub const SUFFIX: &[u8] = b"}]";

/// The record value that becomes `message`.
fn message_value<'a>(config: &NewRelic, record: &Map<'a>) -> Option<(&'a [u8], Value<'a>)> {
    let key = config.message_key.as_bytes();
    record
        .iter()
        .find(|(k, _)| k.as_bytes() == Some(key))
        .or_else(|| {
            record
                .iter()
                .find(|(k, _)| k.as_bytes() == Some(b"message"))
        })
        .and_then(|(k, v)| Some((k.as_bytes()?, v)))
}

/// The length of the message text of `event`, if it is a string.
pub fn message_len(config: &NewRelic, event: &Event<'_>) -> Option<usize> {
    let record = Map::from_msgpack(event.body()).ok()?;
    message_value(config, &record).and_then(|(_, value)| value.as_bytes().map(<[u8]>::len))
}

/// Writes `event` as one log object into `out` (cleared first); with `message_limit`, a
/// string message is cut to that many bytes. Returns whether it was cut.
pub fn write_log(
    config: &NewRelic,
    event: &Event<'_>,
    message_limit: Option<usize>,
    out: &mut Vec<u8>,
) -> Result<bool, DecodeError> {
    out.clear();
    let record = Map::from_msgpack(event.body())?;
    let message = message_value(config, &record);
    let mut cut = false;
    out.extend_from_slice(b"{\"timestamp\":");
    out.extend_from_slice(millis(event.time_ns()).to_string().as_bytes());
    if let Some((_, value)) = message {
        out.extend_from_slice(b",\"message\":");
        match value.as_bytes() {
            Some(text) => {
                let kept = message_limit.map_or(text, |limit| cut_at_char_boundary(text, limit));
                cut = kept.len() < text.len();
                write_json_string(out, kept);
            }
            None => {
                let mut text = Vec::new();
                write_value_json(&mut text, value);
                write_json_string(out, &text);
            }
        }
    }
    let message_key = message.map(|(key, _)| key);
    let mut first = true;
    let mut message_skipped = false;
    for (key, value) in record.iter() {
        let key_text = match key.as_bytes() {
            Some(bytes) => {
                if bytes == b"timestamp" || bytes == b"message" {
                    continue;
                }
                if Some(bytes) == message_key && !message_skipped {
                    message_skipped = true;
                    continue;
                }
                bytes.to_vec()
            }
            None => {
                let mut text = Vec::new();
                write_value_json(&mut text, key);
                text
            }
        };
        out.extend_from_slice(if first {
            b",\"attributes\":{".as_slice()
        } else {
            b",".as_slice()
        });
        first = false;
        write_json_string(out, &key_text);
        out.push(b':');
        write_value_json(out, value);
    }
    if !first {
        out.push(b'}');
    }
    out.push(b'}');
    Ok(cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_router_sdk::PluginConfig;
    use wasm_router_sdk::serde_json::{self, json};
    use wasm_router_sdk::testing::TestEvent;

    fn log(config: &str, record: &str, time_ns: u64) -> String {
        let config = NewRelic::from_json(config).unwrap();
        let event = TestEvent::json_text(record).unwrap().with_time_ns(time_ns);
        let mut out = Vec::new();
        write_log(&config, &event.event(), None, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn log_becomes_message_and_the_rest_attributes() {
        assert_eq!(
            log(
                "{}",
                r#"{"log": "GET / 200", "source": "stdout", "k": {"a": 1}}"#,
                1_700_000_000_123_600_000
            ),
            r#"{"timestamp":1700000000124,"message":"GET / 200","attributes":{"source":"stdout","k":{"a":1}}}"#
        );
    }

    #[test]
    fn the_event_time_and_the_message_key_win() {
        assert_eq!(
            log(
                "{}",
                r#"{"message": "old", "log": "new", "timestamp": 5}"#,
                0
            ),
            r#"{"timestamp":0,"message":"new"}"#
        );
        assert_eq!(
            log("{}", r#"{"message": "mine", "n": 1}"#, 0),
            r#"{"timestamp":0,"message":"mine","attributes":{"n":1}}"#
        );
        assert_eq!(
            log(r#"{"message_key": "msg"}"#, r#"{"msg": {"x": 1}}"#, 0),
            r#"{"timestamp":0,"message":"{\"x\":1}"}"#
        );
        assert_eq!(
            log("{}", r#"{"n": 1}"#, 0),
            r#"{"timestamp":0,"attributes":{"n":1}}"#
        );
    }

    #[test]
    fn the_prefix_holds_common_attributes_and_the_tag() {
        let config = NewRelic::from_json(
            r#"{"common_attributes": {"service.name": "api"}, "tag_key": "fluent.tag"}"#,
        )
        .unwrap();
        let mut payload = prefix(&config, "web-firelens-1");
        payload.extend_from_slice(b"[]");
        payload.extend_from_slice(SUFFIX);
        let parsed: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            parsed,
            json!([{"common": {"attributes": {
                "plugin.type": "wasm-router", "plugin.version": env!("CARGO_PKG_VERSION"),
                "service.name": "api", "fluent.tag": "web-firelens-1"}}, "logs": []}])
        );
    }

    #[test]
    fn messages_are_cut_at_character_boundaries() {
        let config = NewRelic::from_json("{}").unwrap();
        let event = TestEvent::json(json!({"log": "aé€"}));
        let mut out = Vec::new();
        assert!(write_log(&config, &event.event(), Some(4), &mut out).unwrap());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"timestamp":0,"message":"aé"}"#
        );
        assert_eq!(message_len(&config, &event.event()), Some(6));
    }
}
