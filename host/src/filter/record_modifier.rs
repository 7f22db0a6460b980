//! `record_modifier`: append fixed fields, remove or allow-list keys, add a UUID (Fluent Bit
//! `filter_record_modifier`; FireLens uses it for `enable-ecs-log-metadata`: `ecs_cluster`,
//! `ecs_task_arn`, `ecs_task_definition`, `ec2_instance_id`).
//!
//! As in Fluent Bit: `records` are appended after the record's own keys, in order, as strings,
//! even when the record already has that key (`${VAR}`s were expanded when the config was
//! read); `remove_keys` and `allowlist_keys` compare keys case-insensitively, a trailing `*`
//! matches any key starting with what precedes it, and the two cannot be combined; `uuid_key`
//! appends a random UUID v4 to each record. Records that only gain keys are not decoded: the
//! map header is rewritten and the new entries appended to the original bytes.

use super::{RecordFilter, Verdict};
use crate::event::Event;
use crate::event::record::{RawRecord, map_header, write_map_len, write_str};
use crate::ops::metrics::Metrics;
use bytes::Bytes;
use serde::Deserialize;
use std::sync::Arc;

/// `type = "record_modifier"` under `[[filters]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordModifierConfig {
    /// Fields appended to every record, in order (Fluent Bit `Record KEY VALUE`).
    #[serde(default)]
    pub records: Vec<RecordField>,
    /// Keys removed (Fluent Bit `Remove_key`; `prefix*` wildcards).
    #[serde(default)]
    pub remove_keys: Vec<String>,
    /// Keys kept, every other removed (Fluent Bit `Allowlist_key` / `Whitelist_key`).
    #[serde(default, alias = "whitelist_keys")]
    pub allowlist_keys: Vec<String>,
    /// Append a random UUID under this key (Fluent Bit `Uuid_key`).
    #[serde(default)]
    pub uuid_key: Option<String>,
}

/// One appended field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordField {
    /// The key.
    pub key: String,
    /// The value (a string).
    pub value: String,
}

impl RecordModifierConfig {}

/// A `remove_keys` / `allowlist_keys` entry.
#[derive(Debug)]
struct KeyPattern {
    text: Vec<u8>,
    prefix: bool,
}

impl KeyPattern {
    fn new(text: &str) -> KeyPattern {
        match text.strip_suffix('*') {
            Some(prefix) => KeyPattern {
                text: prefix.as_bytes().to_vec(),
                prefix: true,
            },
            None => KeyPattern {
                text: text.as_bytes().to_vec(),
                prefix: false,
            },
        }
    }

    fn matches(&self, key: &[u8]) -> bool {
        if self.prefix {
            key.len() >= self.text.len() && key[..self.text.len()].eq_ignore_ascii_case(&self.text)
        } else {
            key.eq_ignore_ascii_case(&self.text)
        }
    }
}

#[derive(Debug)]
enum KeySelection {
    All,
    Remove(Vec<KeyPattern>),
    Allow(Vec<KeyPattern>),
}

/// The compiled filter.
#[derive(Debug)]
pub struct RecordModifier {
    /// The appended fields, already encoded as msgpack key/value pairs.
    appended: Vec<u8>,
    appended_count: usize,
    selection: KeySelection,
    uuid_key: Option<Vec<u8>>,
}

impl RecordModifier {
    /// Compile `config`; the error starts with the offending key (`.remove_keys: …`).
    pub fn new(config: &RecordModifierConfig) -> Result<RecordModifier, String> {
        let selection = match (
            config.remove_keys.is_empty(),
            config.allowlist_keys.is_empty(),
        ) {
            (true, true) => KeySelection::All,
            (false, true) => KeySelection::Remove(
                config
                    .remove_keys
                    .iter()
                    .map(|k| KeyPattern::new(k))
                    .collect(),
            ),
            (true, false) => KeySelection::Allow(
                config
                    .allowlist_keys
                    .iter()
                    .map(|k| KeyPattern::new(k))
                    .collect(),
            ),
            (false, false) => {
                return Err(": `remove_keys` and `allowlist_keys` cannot be combined (Fluent Bit refuses it too); use one, or two record_modifier filters".into());
            }
        };
        for (i, field) in config.records.iter().enumerate() {
            if field.key.is_empty() {
                return Err(format!(
                    ".records[{i}].key is empty; e.g. `{{ key = \"ecs_cluster\", value = \"prod\" }}`"
                ));
            }
        }
        if config.uuid_key.as_deref() == Some("") {
            return Err(".uuid_key is empty; e.g. `uuid_key = \"uuid\"`".into());
        }
        let mut appended = Vec::new();
        for field in &config.records {
            write_str(&mut appended, field.key.as_bytes());
            write_str(&mut appended, field.value.as_bytes());
        }
        Ok(RecordModifier {
            appended,
            appended_count: config.records.len(),
            selection,
            uuid_key: config.uuid_key.as_ref().map(|k| k.as_bytes().to_vec()),
        })
    }

    /// `body` with the fields removed and appended, or `None` when it is not a msgpack map
    /// (passed on unchanged, as Fluent Bit does).
    pub fn modify(&self, body: &[u8]) -> Option<Vec<u8>> {
        let added = self.appended_count + usize::from(self.uuid_key.is_some());
        let kept = match &self.selection {
            KeySelection::All => None,
            KeySelection::Remove(patterns) => {
                let mut record = RawRecord::parse(body)?;
                record.retain_keys(|k| !k.is_some_and(|k| patterns.iter().any(|p| p.matches(k))));
                Some(record.encode())
            }
            KeySelection::Allow(patterns) => {
                let mut record = RawRecord::parse(body)?;
                record.retain_keys(|k| k.is_some_and(|k| patterns.iter().any(|p| p.matches(k))));
                Some(record.encode())
            }
        };
        let map = kept.as_deref().unwrap_or(body);
        let (count, header) = map_header(map)?;
        let mut out = Vec::with_capacity(map.len() + self.appended.len() + 64);
        write_map_len(&mut out, count + added);
        out.extend_from_slice(&map[header..]);
        out.extend_from_slice(&self.appended);
        if let Some(key) = &self.uuid_key {
            write_str(&mut out, key);
            write_str(&mut out, uuid_v4().as_bytes());
        }
        Some(out)
    }
}

/// A random UUID v4, lower-case hex with dashes (what Fluent Bit's `Uuid_key` writes).
fn uuid_v4() -> String {
    let mut b: [u8; 16] = fastrand::u128(..).to_le_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl RecordFilter for RecordModifier {
    fn apply(&self, event: &Event) -> Verdict {
        match self.modify(&event.body) {
            Some(body) => Verdict::Replace(Event {
                time_ns: event.time_ns,
                body: Bytes::from(body),
            }),
            None => Verdict::Keep,
        }
    }
}

impl super::NativeConfig for RecordModifierConfig {
    type Filter = RecordModifier;

    fn compile(&self, _id: &str, _metrics: &Arc<Metrics>) -> Result<RecordModifier, String> {
        RecordModifier::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::record::tests::{body, json};
    use serde_json::json;

    fn modifier(toml_text: &str) -> Result<RecordModifier, String> {
        let config: RecordModifierConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        RecordModifier::new(&config)
    }

    #[test]
    fn the_firelens_metadata_fields_are_appended_in_order() {
        let m = modifier(
            "records = [{ key = \"ecs_cluster\", value = \"prod\" }, { key = \"ecs_task_definition\", value = \"web:7\" }]",
        )
        .unwrap();
        let out = m
            .modify(&body(json!({"log": "hello", "source": "stdout"})))
            .unwrap();
        assert_eq!(
            json(&out),
            r#"{"log":"hello","source":"stdout","ecs_cluster":"prod","ecs_task_definition":"web:7"}"#
        );
        // Fluent Bit appends even when the key exists.
        let out = m.modify(&body(json!({"ecs_cluster": "x"}))).unwrap();
        assert_eq!(
            json(&out),
            r#"{"ecs_cluster":"x","ecs_cluster":"prod","ecs_task_definition":"web:7"}"#
        );
        // 14 keys + 2 crosses from a fixmap to a map16 header.
        let wide: serde_json::Map<_, _> = (0..14).map(|i| (format!("k{i}"), json!(i))).collect();
        let out = m.modify(&body(serde_json::Value::Object(wide))).unwrap();
        assert_eq!(out[0], 0xde);
        assert_eq!(RawRecord::parse(&out).unwrap().entries.len(), 16);
        assert_eq!(m.modify(&body(json!([1, 2]))), None);
    }

    #[test]
    fn remove_and_allowlist_keys_case_insensitive_with_wildcards() {
        let r = body(json!({"Swap.total": 1, "swap.free": 2, "Mem.used": 3, "log": "x"}));
        let m = modifier("remove_keys = [\"swap.*\", \"LOG\"]").unwrap();
        assert_eq!(json(&m.modify(&r).unwrap()), r#"{"Mem.used":3}"#);
        let m = modifier("whitelist_keys = [\"mem.USED\", \"log\"]").unwrap();
        assert_eq!(json(&m.modify(&r).unwrap()), r#"{"Mem.used":3,"log":"x"}"#);
        let e = modifier("remove_keys = [\"a\"]\nallowlist_keys = [\"b\"]").unwrap_err();
        assert!(e.contains("cannot be combined"), "{e}");
    }

    #[test]
    fn uuid_key_appends_a_fresh_v4_per_record() {
        let m = modifier("uuid_key = \"id\"").unwrap();
        let one = m.modify(&body(json!({"log": "x"}))).unwrap();
        let two = m.modify(&body(json!({"log": "x"}))).unwrap();
        assert_ne!(one, two);
        let v: serde_json::Value = serde_json::from_str(&json(&one)).unwrap();
        let id = v["id"].as_str().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    }
}
