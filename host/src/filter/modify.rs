//! `modify`: set, add, remove, rename, copy and move keys, under optional conditions (Fluent
//! Bit `filter_modify`).
//!
//! Rules run in order, each on the result of the previous one; keys compare exactly
//! (case-sensitive). All conditions must hold, evaluated once on the record as it arrived,
//! before any rule. As in Fluent Bit:
//! - `set K V` replaces every `K` with one `K = V` at the end; `add K V` only when `K` is absent;
//!   values are strings.
//! - `remove K`, `remove_wildcard P` (keys starting with `P`; a trailing `*` is accepted),
//!   `remove_regex R` (keys matching `R`).
//! - `rename A B` renames `A` unless `B` exists; `hard_rename A B` drops any `B` first.
//! - `copy A B` adds `B` with `A`'s value right after `A` when there is exactly one `A` and no
//!   `B`; `hard_copy A B` replaces one existing `B`.
//! - `move_to_start P` / `move_to_end P` move the keys starting with `P`.
//!
//! Conditions: `key_exists K`, `key_does_not_exist K` (`K` may be a record accessor such as
//! `$kubernetes['labels']['app']`), `a_key_matches R`, `no_key_matches R`,
//! `key_value_equals K V`, `key_value_does_not_equal K V`, `key_value_matches K R`,
//! `key_value_does_not_match K R` (the `does_not` forms also need `K` to exist),
//! `matching_keys_have_matching_values R1 R2` and `matching_keys_do_not_have_matching_values R1
//! R2`. A value matches a pattern when it is a string (or a boolean, as `true`/`false`).

use super::{RecordFilter, Verdict};
use crate::config::fluent_bit::compile_regex;
use crate::event::Event;
use crate::event::accessor::RecordAccessor;
use crate::event::record::{RawRecord, as_bool, encode_str, str_only, str_or_bin};
use crate::ops::metrics::Metrics;
use bytes::Bytes;
use regex::bytes::Regex;
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::Arc;

/// `type = "modify"` under `[[filters]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModifyConfig {
    /// Conditions that must all hold for the rules to run (Fluent Bit `Condition …`).
    #[serde(default)]
    pub conditions: Vec<ModifyCondition>,
    /// The rules, in order, e.g. `[{ set = ["env", "prod"] }, { remove = "password" }]`.
    #[serde(default)]
    pub rules: Vec<ModifyRule>,
}

/// One rule: `{ <operation> = "KEY" }` or `{ <operation> = ["KEY", "VALUE or NEW KEY"] }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModifyRule {
    /// Set `key` to `value`, replacing it if present.
    Set(String, String),
    /// Add `key` = `value` if `key` is absent.
    Add(String, String),
    /// Remove `key`.
    Remove(String),
    /// Remove every key starting with this prefix.
    RemoveWildcard(String),
    /// Remove every key matching this regular expression.
    RemoveRegex(String),
    /// Rename a key unless the new name exists.
    Rename(String, String),
    /// Rename a key, replacing the new name if it exists.
    HardRename(String, String),
    /// Copy a key's value to a new key unless it exists.
    Copy(String, String),
    /// Copy a key's value to a new key, replacing it if it exists.
    HardCopy(String, String),
    /// Move the keys starting with this prefix to the start.
    MoveToStart(String),
    /// Move the keys starting with this prefix to the end.
    MoveToEnd(String),
}

/// One condition: `{ <condition> = "KEY" }` or `{ <condition> = ["KEY", "VALUE"] }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModifyCondition {
    /// The key (or record accessor) exists.
    KeyExists(String),
    /// The key (or record accessor) does not exist.
    KeyDoesNotExist(String),
    /// A top-level key matches the pattern.
    AKeyMatches(String),
    /// No top-level key matches the pattern.
    NoKeyMatches(String),
    /// The key's value equals the string.
    KeyValueEquals(String, String),
    /// The key exists and its value does not equal the string.
    KeyValueDoesNotEqual(String, String),
    /// The key's value matches the pattern.
    KeyValueMatches(String, String),
    /// The key exists and its value does not match the pattern.
    KeyValueDoesNotMatch(String, String),
    /// Every key matching the first pattern has a value matching the second.
    MatchingKeysHaveMatchingValues(String, String),
    /// Some key matching the first pattern has a value not matching the second.
    MatchingKeysDoNotHaveMatchingValues(String, String),
}

impl ModifyConfig {}

#[derive(Debug)]
enum Rule {
    Set(Vec<u8>, Vec<u8>),
    Add(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    RemovePrefix(Vec<u8>),
    RemoveRegex(Regex),
    Rename {
        from: Vec<u8>,
        to: Vec<u8>,
        hard: bool,
    },
    Copy {
        from: Vec<u8>,
        to: Vec<u8>,
        hard: bool,
    },
    Move {
        prefix: Vec<u8>,
        to_start: bool,
    },
}

#[derive(Debug)]
enum Condition {
    Exists(RecordAccessor, bool),
    AnyKeyMatches(Regex, bool),
    ValueEquals(RecordAccessor, Vec<u8>, bool),
    ValueMatches(RecordAccessor, Regex, bool),
    MatchingKeysHaveMatchingValues(Regex, Regex, bool),
}

/// The compiled filter.
#[derive(Debug)]
pub struct Modify {
    conditions: Vec<Condition>,
    rules: Vec<Rule>,
}

fn prefix(p: &str) -> Vec<u8> {
    p.strip_suffix('*').unwrap_or(p).as_bytes().to_vec()
}

impl Modify {
    /// Compile `config`; the error starts with the offending key (`.rules[1]: …`).
    pub fn new(config: &ModifyConfig) -> Result<Modify, String> {
        if config.rules.is_empty() {
            return Err(": a modify filter needs at least one rule, e.g. `rules = [{ set = [\"env\", \"prod\"] }]`".into());
        }
        let mut rules = Vec::new();
        for (i, rule) in config.rules.iter().enumerate() {
            let at = |e: String| format!(".rules[{i}]: {e}");
            let two = |from: &str, to: &str| {
                if from.is_empty() || to.is_empty() {
                    Err(at("both keys must be non-empty".into()))
                } else if from == to {
                    Err(at(format!(
                        "{from:?} to itself does nothing; name another key"
                    )))
                } else {
                    Ok((from.as_bytes().to_vec(), to.as_bytes().to_vec()))
                }
            };
            let one = |k: &str| {
                if k.is_empty() {
                    Err(at("the key is empty".into()))
                } else {
                    Ok(k.as_bytes().to_vec())
                }
            };
            rules.push(match rule {
                ModifyRule::Set(k, v) => Rule::Set(one(k)?, v.as_bytes().to_vec()),
                ModifyRule::Add(k, v) => Rule::Add(one(k)?, v.as_bytes().to_vec()),
                ModifyRule::Remove(k) => Rule::Remove(one(k)?),
                ModifyRule::RemoveWildcard(p) => Rule::RemovePrefix(prefix(p)),
                ModifyRule::RemoveRegex(r) => Rule::RemoveRegex(compile_regex(r).map_err(at)?),
                ModifyRule::Rename(a, b) | ModifyRule::HardRename(a, b) => {
                    let (from, to) = two(a, b)?;
                    let hard = matches!(rule, ModifyRule::HardRename(..));
                    Rule::Rename { from, to, hard }
                }
                ModifyRule::Copy(a, b) | ModifyRule::HardCopy(a, b) => {
                    let (from, to) = two(a, b)?;
                    let hard = matches!(rule, ModifyRule::HardCopy(..));
                    Rule::Copy { from, to, hard }
                }
                ModifyRule::MoveToStart(p) => Rule::Move {
                    prefix: prefix(p),
                    to_start: true,
                },
                ModifyRule::MoveToEnd(p) => Rule::Move {
                    prefix: prefix(p),
                    to_start: false,
                },
            });
        }
        let mut conditions = Vec::new();
        for (i, c) in config.conditions.iter().enumerate() {
            let at = |e: String| format!(".conditions[{i}]: {e}");
            let accessor = |k: &str| RecordAccessor::parse(k).map_err(at);
            let regex = |r: &str| compile_regex(r).map_err(at);
            use ModifyCondition as C;
            conditions.push(match c {
                C::KeyExists(k) => Condition::Exists(accessor(k)?, true),
                C::KeyDoesNotExist(k) => Condition::Exists(accessor(k)?, false),
                C::AKeyMatches(r) => Condition::AnyKeyMatches(regex(r)?, true),
                C::NoKeyMatches(r) => Condition::AnyKeyMatches(regex(r)?, false),
                C::KeyValueEquals(k, v) => {
                    Condition::ValueEquals(accessor(k)?, v.as_bytes().to_vec(), true)
                }
                C::KeyValueDoesNotEqual(k, v) => {
                    Condition::ValueEquals(accessor(k)?, v.as_bytes().to_vec(), false)
                }
                C::KeyValueMatches(k, r) => Condition::ValueMatches(accessor(k)?, regex(r)?, true),
                C::KeyValueDoesNotMatch(k, r) => {
                    Condition::ValueMatches(accessor(k)?, regex(r)?, false)
                }
                C::MatchingKeysHaveMatchingValues(a, b) => {
                    Condition::MatchingKeysHaveMatchingValues(regex(a)?, regex(b)?, true)
                }
                C::MatchingKeysDoNotHaveMatchingValues(a, b) => {
                    Condition::MatchingKeysHaveMatchingValues(regex(a)?, regex(b)?, false)
                }
            });
        }
        Ok(Modify { conditions, rules })
    }

    /// `body` modified, or `None` when nothing changed (or it is not a msgpack map).
    pub fn modify(&self, body: &[u8]) -> Option<Vec<u8>> {
        let mut record = RawRecord::parse(body)?;
        if !self.conditions.iter().all(|c| holds(c, &record)) {
            return None;
        }
        let mut changed = false;
        for rule in &self.rules {
            changed |= apply(rule, &mut record);
        }
        changed.then(|| record.encode())
    }
}

/// A value as Fluent Bit's modify matches it against a pattern: strings, and booleans as text.
fn matchable(value: &[u8]) -> Option<&[u8]> {
    str_only(value).or_else(|| as_bool(value).map(|b| if b { &b"true"[..] } else { &b"false"[..] }))
}

fn holds(condition: &Condition, record: &RawRecord<'_>) -> bool {
    let key_matches =
        |r: &Regex, i: usize| matchable(&record.entries[i].0).is_some_and(|k| r.is_match(k));
    match condition {
        Condition::Exists(a, want) => a.lookup(record).is_some() == *want,
        Condition::AnyKeyMatches(r, want) => {
            (0..record.entries.len()).any(|i| key_matches(r, i)) == *want
        }
        Condition::ValueEquals(a, v, want) => match a.lookup(record) {
            None => false,
            Some(value) => (str_or_bin(value) == Some(v.as_slice())) == *want,
        },
        Condition::ValueMatches(a, r, want) => match a.lookup(record) {
            None => false,
            Some(value) => matchable(value).is_some_and(|s| r.is_match(s)) == *want,
        },
        Condition::MatchingKeysHaveMatchingValues(keys, values, want) => {
            let all = (0..record.entries.len())
                .filter(|&i| key_matches(keys, i))
                .all(|i| matchable(&record.entries[i].1).is_some_and(|v| values.is_match(v)));
            all == *want
        }
    }
}

fn starts_with(record: &RawRecord<'_>, i: usize, prefix: &[u8]) -> bool {
    record.key(i).is_some_and(|k| k.starts_with(prefix))
}

/// Apply one rule; returns whether the record changed.
fn apply(rule: &Rule, record: &mut RawRecord<'_>) -> bool {
    let before = record.entries.len();
    match rule {
        Rule::Set(k, v) => {
            record.retain_keys(|key| key != Some(k.as_slice()));
            record.push_str(k, v);
            true
        }
        Rule::Add(k, v) => {
            if record.count(k) > 0 {
                return false;
            }
            record.push_str(k, v);
            true
        }
        Rule::Remove(k) => {
            record.retain_keys(|key| key != Some(k.as_slice()));
            record.entries.len() != before
        }
        Rule::RemovePrefix(p) => {
            record.retain_keys(|key| !key.is_some_and(|key| key.starts_with(p)));
            record.entries.len() != before
        }
        Rule::RemoveRegex(r) => {
            record
                .entries
                .retain(|(k, _)| !matchable(k).is_some_and(|k| r.is_match(k)));
            record.entries.len() != before
        }
        Rule::Rename { from, to, hard } => {
            let conflicts = record.count(to);
            if record.count(from) == 0 || (conflicts > 0 && !hard) {
                return false;
            }
            record.retain_keys(|key| key != Some(to.as_slice()));
            let new_key = encode_str(to);
            for i in 0..record.entries.len() {
                if record.key(i) == Some(from.as_slice()) {
                    record.entries[i].0 = Cow::Owned(new_key.clone());
                }
            }
            true
        }
        Rule::Copy { from, to, hard } => {
            let conflicts = record.count(to);
            if record.count(from) != 1 || conflicts > usize::from(*hard) {
                return false;
            }
            record.retain_keys(|key| key != Some(to.as_slice()));
            let at = record.position(from).expect("counted once");
            let value = record.entries[at].1.clone();
            record
                .entries
                .insert(at + 1, (Cow::Owned(encode_str(to)), value));
            true
        }
        Rule::Move { prefix, to_start } => {
            let view: &RawRecord<'_> = record;
            let moved: Vec<bool> = (0..before).map(|i| starts_with(view, i, prefix)).collect();
            if !moved.contains(&true) {
                return false;
            }
            let mut entries = std::mem::take(&mut record.entries);
            let mut first = Vec::with_capacity(before);
            let mut second = Vec::with_capacity(before);
            for (entry, m) in entries.drain(..).zip(moved) {
                if m == *to_start {
                    first.push(entry);
                } else {
                    second.push(entry);
                }
            }
            first.extend(second);
            record.entries = first;
            true
        }
    }
}

impl RecordFilter for Modify {
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

impl super::NativeConfig for ModifyConfig {
    type Filter = Modify;

    fn compile(&self, _id: &str, _metrics: &Arc<Metrics>) -> Result<Modify, String> {
        Modify::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::record::tests::{body, json};
    use serde_json::json;

    fn modify(toml_text: &str) -> Result<Modify, String> {
        let config: ModifyConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        Modify::new(&config)
    }

    fn run(m: &Modify, v: serde_json::Value) -> String {
        let b = body(v);
        json(&m.modify(&b).unwrap_or(b))
    }

    #[test]
    fn set_add_remove() {
        let m = modify("rules = [{ set = [\"a\", \"1\"] }, { add = [\"b\", \"2\"] }, { add = [\"c\", \"3\"] }, { remove = \"d\" }]").unwrap();
        assert_eq!(
            run(&m, json!({"a": 0, "b": 0, "d": 0, "e": 0})),
            r#"{"b":0,"e":0,"a":"1","c":"3"}"#
        );
        let m = modify(
            "rules = [{ remove_wildcard = \"Swap*\" }, { remove_regex = \"^tmp_[0-9]+$\" }]",
        )
        .unwrap();
        assert_eq!(
            run(
                &m,
                json!({"Swap.a": 1, "Swapped": 2, "Mem": 3, "tmp_1": 4, "tmp_x": 5})
            ),
            r#"{"Mem":3,"tmp_x":5}"#
        );
    }

    #[test]
    fn rename_and_copy_soft_and_hard() {
        let rename = modify("rules = [{ rename = [\"a\", \"b\"] }]").unwrap();
        assert_eq!(run(&rename, json!({"a": 1, "c": 2})), r#"{"b":1,"c":2}"#);
        assert_eq!(run(&rename, json!({"a": 1, "b": 2})), r#"{"a":1,"b":2}"#);
        let hard = modify("rules = [{ hard_rename = [\"a\", \"b\"] }]").unwrap();
        assert_eq!(run(&hard, json!({"b": 2, "a": 1})), r#"{"b":1}"#);
        let copy = modify("rules = [{ copy = [\"a\", \"b\"] }]").unwrap();
        assert_eq!(
            run(&copy, json!({"a": {"x": 1}, "c": 2})),
            r#"{"a":{"x":1},"b":{"x":1},"c":2}"#
        );
        assert_eq!(run(&copy, json!({"a": 1, "b": 2})), r#"{"a":1,"b":2}"#);
        let hard_copy = modify("rules = [{ hard_copy = [\"a\", \"b\"] }]").unwrap();
        assert_eq!(run(&hard_copy, json!({"b": 2, "a": 1})), r#"{"a":1,"b":1}"#);
        let moves =
            modify("rules = [{ move_to_start = \"z*\" }, { move_to_end = \"a\" }]").unwrap();
        assert_eq!(
            run(&moves, json!({"a": 1, "m": 2, "z1": 3, "z2": 4})),
            r#"{"z1":3,"z2":4,"m":2,"a":1}"#
        );
    }

    #[test]
    fn conditions_gate_every_rule() {
        let m = modify("conditions = [{ key_value_matches = [\"level\", \"^(ERROR|WARN)$\"] }, { key_exists = \"$k['app']\" }]\nrules = [{ set = [\"alert\", \"true\"] }]").unwrap();
        assert_eq!(
            run(&m, json!({"k": {"app": "web"}, "level": "ERROR"})),
            r#"{"k":{"app":"web"},"level":"ERROR","alert":"true"}"#
        );
        assert_eq!(
            run(&m, json!({"k": {"app": "web"}, "level": "INFO"})),
            r#"{"k":{"app":"web"},"level":"INFO"}"#
        );
        assert_eq!(run(&m, json!({"level": "ERROR"})), r#"{"level":"ERROR"}"#);
        let cases = [
            ("{ key_does_not_exist = \"x\" }", json!({"y": 1}), true),
            ("{ a_key_matches = \"^x\" }", json!({"xa": 1}), true),
            ("{ no_key_matches = \"^x\" }", json!({"xa": 1}), false),
            (
                "{ key_value_equals = [\"x\", \"v\"] }",
                json!({"x": "v"}),
                true,
            ),
            (
                "{ key_value_does_not_equal = [\"x\", \"v\"] }",
                json!({}),
                false,
            ),
            (
                "{ key_value_does_not_equal = [\"x\", \"v\"] }",
                json!({"x": "w"}),
                true,
            ),
            (
                "{ key_value_matches = [\"x\", \"^tr\"] }",
                json!({"x": true}),
                true,
            ),
            (
                "{ key_value_does_not_match = [\"x\", \"^a\"] }",
                json!({"x": "b"}),
                true,
            ),
            (
                "{ matching_keys_have_matching_values = [\"^l\", \"^o\"] }",
                json!({"l1": "ok", "l2": "on"}),
                true,
            ),
            (
                "{ matching_keys_do_not_have_matching_values = [\"^l\", \"^o\"] }",
                json!({"l1": "ok", "l2": "no"}),
                true,
            ),
        ];
        for (condition, record, applies) in cases {
            let m = modify(&format!(
                "conditions = [{condition}]\nrules = [{{ set = [\"hit\", \"1\"] }}]"
            ))
            .unwrap();
            assert_eq!(
                m.modify(&body(record.clone())).is_some(),
                applies,
                "{condition} on {record}"
            );
        }
    }

    #[test]
    fn mistakes_name_the_rule_and_the_fix() {
        let e = modify("rules = [{ rename = [\"a\", \"a\"] }]").unwrap_err();
        assert!(e.starts_with(".rules[0]: ") && e.contains("itself"), "{e}");
        let e = modify("rules = [{ remove_regex = \"(\" }]").unwrap_err();
        assert!(e.starts_with(".rules[0]: "), "{e}");
        let e = modify(
            "conditions = [{ key_value_matches = [\"a\", \"[\"] }]\nrules = [{ remove = \"a\" }]",
        )
        .unwrap_err();
        assert!(e.starts_with(".conditions[0]: "), "{e}");
        assert!(
            modify("rules = []")
                .unwrap_err()
                .contains("at least one rule")
        );
        let e = modify("rules = [{ upper = \"a\" }]").unwrap_err();
        assert!(e.contains("upper"), "{e}");
    }
}
