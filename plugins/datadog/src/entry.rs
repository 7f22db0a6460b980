//! One event as one Datadog log entry (a JSON object), in the order Fluent Bit's datadog
//! output writes it: the time under `json_date_key` (milliseconds, rounded half up), the tag
//! under `tag_key` if included, `ddsource`, `service`, `hostname`, then the record's entries
//! (`dd_message_key` renamed `message`, `dd_status_key` renamed `status`, ECS metadata moved
//! into tags with `provider = "ecs"`), then `ddtags`.
//!
//! Unlike Fluent Bit, an entry never repeats a key: a record key that the plugin writes itself
//! (`ddsource` when `dd_source` is set, `message` when the record has `dd_message_key`…) is
//! left out, so the configured value is the one Datadog sees. A record's own `ddtags` string
//! is kept, with the configured `dd_tags` after it.

use crate::config::{Datadog, Provider};
use wasm_router_sdk::json::{write_json_string, write_value_json};
use wasm_router_sdk::vendor::{cut_at_char_boundary, millis};
use wasm_router_sdk::{DecodeError, Event, Map, Value};

/// Tags `provider = "ecs"` derives from FireLens's ECS metadata, as Fluent Bit's
/// `plugins/out_datadog/datadog_remap.c` does.
const ECS_KEYS: [&str; 6] = [
    "container_id",
    "container_name",
    "container_image",
    "ecs_cluster",
    "ecs_task_definition",
    "ecs_task_arn",
];

/// What writing one entry did to its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Written whole.
    Whole,
    /// `message` cut to fit.
    MessageTruncated,
}

fn key_bytes<'a>(key: &Value<'a>) -> Option<&'a [u8]> {
    key.as_bytes()
}

fn write_key_value_str(out: &mut Vec<u8>, first: &mut bool, key: &[u8], value: &[u8]) {
    separator(out, first);
    write_json_string(out, key);
    out.push(b':');
    write_json_string(out, value);
}

fn separator(out: &mut Vec<u8>, first: &mut bool) {
    if !*first {
        out.push(b',');
    }
    *first = false;
}

fn push_tag(tags: &mut Vec<u8>, key: &str, value: &[u8]) {
    if !tags.is_empty() {
        tags.push(b',');
    }
    tags.extend_from_slice(key.as_bytes());
    tags.push(b':');
    tags.extend_from_slice(value);
}

/// Appends the tags Fluent Bit derives from one ECS metadata value.
fn ecs_tags(tags: &mut Vec<u8>, key: &str, value: &[u8]) {
    match key {
        "container_name" => push_tag(tags, key, value.strip_prefix(b"/").unwrap_or(value)),
        "ecs_cluster" => {
            let name = find(value, b"cluster/").map_or(value, |at| &value[at + 8..]);
            push_tag(tags, "cluster_name", name);
        }
        "ecs_task_definition" => match value.iter().position(|&b| b == b':') {
            Some(colon) => {
                push_tag(tags, "task_family", &value[..colon]);
                push_tag(tags, "task_version", &value[colon + 1..]);
            }
            None => push_tag(tags, key, value),
        },
        "ecs_task_arn" => {
            push_tag(tags, "task_arn", value);
            if let Some(rest) = value.strip_prefix(b"arn:aws:ecs:")
                && let Some(colon) = rest.iter().position(|&b| b == b':')
            {
                push_tag(tags, "region", &rest[..colon]);
            }
            let id = find(value, b"task/").map_or(value, |at| &value[at + 5..]);
            push_tag(tags, "task_id", id);
        }
        _ => push_tag(tags, key, value),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Writes `event` as one entry into `out` (cleared first). With `message_limit`, a string
/// `message` is cut to that many bytes of its text.
pub fn write_entry(
    config: &Datadog,
    event: &Event<'_>,
    message_limit: Option<usize>,
    out: &mut Vec<u8>,
) -> Result<Written, DecodeError> {
    out.clear();
    let record = Map::from_msgpack(event.body())?;
    let has = |key: &str| record.get(key).is_some();
    let renames_message = has(&config.message_key);
    let renames_status = config.status_key.as_deref().is_some_and(has);
    let mut written = Written::Whole;
    let mut first = true;
    out.push(b'{');

    separator(out, &mut first);
    write_json_string(out, config.date_key.as_bytes());
    out.push(b':');
    out.extend_from_slice(millis(event.time_ns()).to_string().as_bytes());
    if let Some(tag_key) = &config.tag_key {
        write_key_value_str(out, &mut first, tag_key.as_bytes(), event.tag().as_bytes());
    }
    for (key, value) in [
        ("ddsource", &config.source),
        ("service", &config.service),
        ("hostname", &config.hostname),
    ] {
        if let Some(value) = value {
            write_key_value_str(out, &mut first, key.as_bytes(), value.as_bytes());
        }
    }

    let written_by_plugin = |key: &[u8]| {
        key == config.date_key.as_bytes()
            || config.tag_key.as_deref().map(str::as_bytes) == Some(key)
            || (key == b"ddsource" && config.source.is_some())
            || (key == b"service" && config.service.is_some())
            || (key == b"hostname" && config.hostname.is_some())
            || (key == b"message" && renames_message && key != config.message_key.as_bytes())
            || (key == b"status"
                && renames_status
                && Some(key) != config.status_key.as_deref().map(str::as_bytes))
    };

    let mut tags: Vec<u8> = Vec::new();
    let mut message_written = false;
    let mut status_written = false;
    for (key, value) in record.iter() {
        let Some(key) = key_bytes(&key) else {
            separator(out, &mut first);
            let mut text = Vec::new();
            write_value_json(&mut text, key);
            write_json_string(out, &text);
            out.push(b':');
            write_value_json(out, value);
            continue;
        };
        if config.provider == Some(Provider::Ecs)
            && let Some(ecs_key) = ECS_KEYS.iter().find(|k| k.as_bytes() == key)
            && let Some(text) = value.as_bytes().filter(|text| !text.is_empty())
        {
            ecs_tags(&mut tags, ecs_key, text);
            continue;
        }
        if key == b"ddtags" {
            let mut json_text = Vec::new();
            let text = match value.as_bytes() {
                Some(text) => text,
                None => {
                    write_value_json(&mut json_text, value);
                    &json_text
                }
            };
            if !text.is_empty() {
                if !tags.is_empty() {
                    tags.push(b',');
                }
                tags.extend_from_slice(text);
            }
            continue;
        }
        if key == config.message_key.as_bytes() && !message_written {
            message_written = true;
            separator(out, &mut first);
            out.extend_from_slice(b"\"message\":");
            match (message_limit, value.as_bytes()) {
                (Some(limit), Some(text)) if text.len() > limit => {
                    write_json_string(out, cut_at_char_boundary(text, limit));
                    written = Written::MessageTruncated;
                }
                _ => write_value_json(out, value),
            }
            continue;
        }
        if config.status_key.as_deref().map(str::as_bytes) == Some(key) && !status_written {
            status_written = true;
            separator(out, &mut first);
            out.extend_from_slice(b"\"status\":");
            write_value_json(out, value);
            continue;
        }
        if written_by_plugin(key) {
            continue;
        }
        separator(out, &mut first);
        write_json_string(out, key);
        out.push(b':');
        write_value_json(out, value);
    }
    if let Some(configured) = &config.tags {
        if !tags.is_empty() {
            tags.push(b',');
        }
        tags.extend_from_slice(configured.as_bytes());
    }
    if !tags.is_empty() {
        write_key_value_str(out, &mut first, b"ddtags", &tags);
    }
    out.push(b'}');
    Ok(written)
}

/// The length of the `message` text of `event` (before escaping), if it is a string.
pub fn message_len(config: &Datadog, event: &Event<'_>) -> Option<usize> {
    event
        .get([config.message_key.as_str()])
        .and_then(|value| value.as_bytes().map(<[u8]>::len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_router_sdk::PluginConfig;
    use wasm_router_sdk::serde_json::{self, Value as Json, json};
    use wasm_router_sdk::testing::TestEvent;

    fn entry(config: &str, record: Json, tag: &str, time_ns: u64) -> Json {
        let config = Datadog::from_json(config).unwrap();
        let event = TestEvent::json_text(&record.to_string())
            .unwrap()
            .with_tag(tag)
            .with_time_ns(time_ns);
        let mut out = Vec::new();
        write_entry(&config, &event.event(), None, &mut out).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn fluent_bit_fields_and_the_record() {
        let got = entry(
            r#"{"dd_service": "api", "dd_source": "nginx", "dd_tags": "team:logs,env:prod",
                "dd_hostname": "ip-10-0-0-1", "include_tag_key": true}"#,
            json!({"log": "GET / 200", "source": "stdout", "nested": {"a": [1, 2]}}),
            "web-firelens-1",
            1_700_000_000_123_500_000,
        );
        assert_eq!(
            got,
            json!({
                "timestamp": 1_700_000_000_124u64,
                "tagkey": "web-firelens-1",
                "ddsource": "nginx",
                "service": "api",
                "hostname": "ip-10-0-0-1",
                "message": "GET / 200",
                "source": "stdout",
                "nested": {"a": [1, 2]},
                "ddtags": "team:logs,env:prod"
            })
        );
    }

    #[test]
    fn keys_are_never_repeated_and_configured_values_win() {
        let config = Datadog::from_json(
            r#"{"dd_service": "api", "dd_message_key": "msg", "dd_status_key": "level", "json_date_key": "date"}"#,
        )
        .unwrap();
        let event = TestEvent::json_text(
            r#"{"msg": "m", "message": "old", "service": "record", "level": "warn", "status": "x", "date": 1, "ddtags": "a:b"}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        write_entry(&config, &event.event(), None, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            r#"{"date":0,"service":"api","message":"m","status":"warn","ddtags":"a:b"}"#
        );
    }

    #[test]
    fn a_record_without_the_message_key_keeps_its_own_message() {
        let got = entry("{}", json!({"message": "mine", "n": 1}), "t", 0);
        assert_eq!(got, json!({"timestamp": 0, "message": "mine", "n": 1}));
    }

    #[test]
    fn ecs_metadata_becomes_datadog_tags() {
        let got = entry(
            r#"{"provider": "ecs", "dd_tags": "team:a"}"#,
            json!({
                "log": "x",
                "container_id": "abc",
                "container_name": "/ecs-web-1",
                "ecs_cluster": "arn:aws:ecs:eu-west-1:123:cluster/prod",
                "ecs_task_definition": "web:42",
                "ecs_task_arn": "arn:aws:ecs:eu-west-1:123:task/prod/f00",
                "container_image": ""
            }),
            "t",
            0,
        );
        assert_eq!(
            got["ddtags"],
            "container_id:abc,container_name:ecs-web-1,cluster_name:prod,\
             task_arn:arn:aws:ecs:eu-west-1:123:task/prod/f00,region:eu-west-1,task_id:prod/f00,\
             task_family:web,task_version:42,team:a"
        );
        assert_eq!(got["container_image"], "");
        assert!(got.get("ecs_cluster").is_none());
    }

    #[test]
    fn the_message_is_cut_to_the_limit() {
        let config = Datadog::from_json("{}").unwrap();
        let event = TestEvent::json(json!({"log": "abcdefghij", "k": "v"}));
        let mut out = Vec::new();
        let written = write_entry(&config, &event.event(), Some(4), &mut out).unwrap();
        assert_eq!(written, Written::MessageTruncated);
        assert_eq!(out, br#"{"timestamp":0,"k":"v","message":"abcd"}"#);
        assert_eq!(message_len(&config, &event.event()), Some(10));
    }

    #[test]
    fn cuts_never_split_a_character() {
        let text = "aé€".as_bytes();
        assert_eq!(cut_at_char_boundary(text, 2), b"a");
        assert_eq!(cut_at_char_boundary(text, 3), "aé".as_bytes());
        assert_eq!(cut_at_char_boundary(text, 5), "aé".as_bytes());
        assert_eq!(cut_at_char_boundary(text, 6), text);
        assert_eq!(cut_at_char_boundary(text, 60), text);
    }

    #[test]
    fn times_round_half_up_to_milliseconds() {
        assert_eq!(millis(1_499_999), 1);
        assert_eq!(millis(1_500_000), 2);
        assert_eq!(millis(0), 0);
    }
}
