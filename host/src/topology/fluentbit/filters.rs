//! `[FILTER]` sections of the native filters — `grep`, `record_modifier`, `modify`, `parser` —
//! mapped onto their `[[filters]]` tables (see [`crate::filter`]).
//!
//! Each key is checked where it is written, so a bad pattern, a rule with the wrong number of
//! arguments or a parser with a mistake (a `Regex` neither engine runs, an unknown `Types`
//! type or decoder, …) names its `file:line`. `[SERVICE] Parsers_File`
//! entries (relative to the file they are in) are collected wherever they appear and given to
//! every parser and multiline filter when the whole config has been read.

use super::{at, on_off, unknown};
use crate::config::classic::{Entry, Section};
use crate::config::fluent_bit::{compile_regex, split_quoted};
use crate::event::accessor::RecordAccessor;
use crate::filter::modify::{Modify, ModifyConfig};
use crate::parsers::{ParserCatalog, command_line_files};
use std::path::PathBuf;
use toml::{Table, Value};

/// What the native filters need once every section has been read.
#[derive(Default)]
pub struct PendingFilters {
    /// `[SERVICE] Parsers_File`s, resolved against their file's directory.
    parsers_files: Vec<PathBuf>,
    /// For each parser filter: its index in `[[filters]]` and its `Parser` entries.
    parser_filters: Vec<(usize, Vec<Entry>)>,
    /// For each multiline filter: its index and its `multiline.parser` entries.
    multiline_filters: Vec<(usize, Vec<Entry>)>,
}

impl PendingFilters {
    /// Note a `[SERVICE] Parsers_File` entry.
    pub fn parsers_file(&mut self, e: &Entry) {
        self.parsers_files.push(super::relative_to(e));
    }

    /// Note a YAML config file that defines parsers inline (`parsers:`).
    pub fn inline_parsers(&mut self, file: &std::path::Path) {
        if !self.parsers_files.iter().any(|f| f == file) {
            self.parsers_files.push(file.to_path_buf());
        }
    }

    /// The `[SERVICE] Parsers_File`s noted so far.
    pub fn files(&self) -> &[PathBuf] {
        &self.parsers_files
    }

    /// Note a multiline filter at `index` in `[[filters]]` with its `multiline.parser` entries.
    pub fn multiline_filter(&mut self, index: usize, parsers: Vec<Entry>) {
        self.multiline_filters.push((index, parsers));
    }

    /// Give every parser and multiline filter the `Parsers_File`s, and check that each parser
    /// it names exists and runs natively, naming the `Parser` / `multiline.parser` line when not
    /// (every such line, one per line).
    pub fn finish(&self, filters: &mut [Value]) -> Result<(), String> {
        if self.parser_filters.is_empty() && self.multiline_filters.is_empty() {
            return Ok(());
        }
        let files: Vec<Value> = self
            .parsers_files
            .iter()
            .map(|p| Value::String(p.display().to_string()))
            .collect();
        let mut all = self.parsers_files.clone();
        all.extend(command_line_files());
        let catalog = ParserCatalog::load(&all)?;
        let mut problems = Vec::new();
        for (index, parsers) in &self.multiline_filters {
            if let Some(Value::Table(t)) = filters.get_mut(*index) {
                t.insert("parsers_files".into(), Value::Array(files.clone()));
            }
            if let Err(m) = super::multiline::check_parsers(parsers, &all, &catalog) {
                problems.push(m);
            }
        }
        for (index, parsers) in &self.parser_filters {
            if let Some(Value::Table(t)) = filters.get_mut(*index) {
                t.insert("parsers_files".into(), Value::Array(files.clone()));
            }
            for e in parsers {
                if let Err(m) = catalog.resolve(&e.value) {
                    problems.push(format!("{}: Parser {}: {m}", at(e), e.value));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

/// The keys every `[FILTER]` has (`Name`, `Match`, `Match_Regex`, `Alias`) put in place in `t`;
/// whether `e` was one.
pub(super) fn placement(t: &mut Table, e: &Entry) -> bool {
    match e.key.as_str() {
        "name" => true,
        "match" | "match_regex" => {
            t.insert(e.key.clone(), e.value.clone().into());
            true
        }
        "alias" => {
            t.insert("name".into(), e.value.clone().into());
            true
        }
        _ => false,
    }
}

/// `KEY VALUE` split at the first blank; both parts required.
fn key_and_rest<'e>(e: &'e Entry, what: &str) -> Result<(&'e str, &'e str), String> {
    match e.value.split_once(char::is_whitespace) {
        Some((k, rest)) if !rest.trim().is_empty() => Ok((k, rest.trim())),
        _ => Err(format!(
            "{}: `{}` needs {what}, e.g. `{}`",
            at(e),
            e.key,
            match e.key.as_str() {
                "record" => "Record ecs_cluster prod",
                "regex" => "Regex log ^ERROR",
                _ => "Exclude log ^DEBUG",
            }
        )),
    }
}

/// Map the `[FILTER]` section `s` of the native filter `name` onto its table; `index` is the
/// position it will have in `[[filters]]`.
pub fn map(
    name: &str,
    s: &Section,
    index: usize,
    pending: &mut PendingFilters,
    warnings: &mut Vec<String>,
) -> Result<Table, String> {
    let mut t = Table::new();
    t.insert("type".into(), name.into());
    match name {
        "grep" => grep(s, &mut t, warnings)?,
        "record_modifier" => record_modifier(s, &mut t)?,
        "modify" => modify(s, &mut t, warnings)?,
        "parser" => {
            let parsers = parser(s, &mut t, warnings)?;
            pending.parser_filters.push((index, parsers));
        }
        _ => unreachable!("only native filters are mapped here"),
    }
    Ok(t)
}

fn grep(s: &Section, t: &mut Table, warnings: &mut Vec<String>) -> Result<(), String> {
    let mut rules = Vec::new();
    let mut kinds = Vec::new();
    let mut legacy = true;
    let mut logical_op_line = None;
    for e in &s.entries {
        if placement(t, e) {
            continue;
        }
        match e.key.as_str() {
            "regex" | "exclude" => {
                let (key, pattern) = key_and_rest(e, "KEY REGEX")?;
                RecordAccessor::parse(key).map_err(|m| format!("{}: {m}", at(e)))?;
                compile_regex(pattern).map_err(|m| format!("{}: {} {m}", at(e), e.key))?;
                let mut rule = Table::new();
                rule.insert("key".into(), key.into());
                rule.insert(e.key.clone(), pattern.into());
                rules.push(Value::Table(rule));
                kinds.push(e.key.as_str());
            }
            "logical_op" => {
                let op = e.value.to_ascii_lowercase();
                if !["legacy", "and", "or"].contains(&op.as_str()) {
                    return Err(format!(
                        "{}: Logical_Op {:?}: use AND, OR or legacy",
                        at(e),
                        e.value
                    ));
                }
                legacy = op == "legacy";
                logical_op_line = Some(at(e));
                t.insert("logical_op".into(), op.into());
            }
            _ => {
                return Err(unknown(
                    e,
                    "[FILTER] grep",
                    "Match, Match_Regex, Alias, Regex, Exclude, Logical_Op",
                ));
            }
        }
    }
    if rules.is_empty() {
        return Err(format!(
            "{}: [FILTER] grep has no rule; add `Regex KEY REGEX` or `Exclude KEY REGEX`",
            s.origin
        ));
    }
    if let Some(line) = logical_op_line.filter(|_| !legacy && kinds.iter().any(|k| *k != kinds[0]))
    {
        return Err(format!(
            "{line}: Logical_Op AND/OR cannot be used with both Regex and Exclude rules (Fluent Bit refuses it too); put the Regex and the Exclude rules in two grep filters"
        ));
    }
    if legacy && kinds.iter().skip_while(|k| **k != "regex").count() > 1 {
        warnings.push(format!(
            "{}: [FILTER] grep with the default `Logical_Op legacy`: the first `Regex` that matches keeps the event and the rules after it are not checked (as in Fluent Bit); set `Logical_Op AND` to require every rule",
            s.origin
        ));
    }
    t.insert("rules".into(), Value::Array(rules));
    Ok(())
}

fn record_modifier(s: &Section, t: &mut Table) -> Result<(), String> {
    let (mut records, mut remove, mut allow) = (Vec::new(), Vec::new(), Vec::new());
    for e in &s.entries {
        if placement(t, e) {
            continue;
        }
        match e.key.as_str() {
            "record" => {
                let (key, value) = key_and_rest(e, "KEY VALUE")?;
                let mut field = Table::new();
                field.insert("key".into(), key.into());
                field.insert("value".into(), value.into());
                records.push(Value::Table(field));
            }
            "remove_key" => remove.push(Value::String(e.value.clone())),
            "allowlist_key" | "whitelist_key" => allow.push(Value::String(e.value.clone())),
            "uuid_key" => {
                t.insert("uuid_key".into(), e.value.clone().into());
            }
            _ => {
                return Err(unknown(
                    e,
                    "[FILTER] record_modifier",
                    "Match, Match_Regex, Alias, Record, Remove_key, Allowlist_key, Whitelist_key, Uuid_key",
                ));
            }
        }
    }
    if !remove.is_empty() && !allow.is_empty() {
        return Err(format!(
            "{}: [FILTER] record_modifier: Remove_key and Allowlist_key cannot be combined (Fluent Bit refuses it too); use one, or two record_modifier filters",
            s.origin
        ));
    }
    for (key, list) in [
        ("records", records),
        ("remove_keys", remove),
        ("allowlist_keys", allow),
    ] {
        if !list.is_empty() {
            t.insert(key.into(), Value::Array(list));
        }
    }
    Ok(())
}

const ONE_ARGUMENT_RULES: [&str; 5] = [
    "remove",
    "remove_wildcard",
    "remove_regex",
    "move_to_start",
    "move_to_end",
];
const TWO_ARGUMENT_RULES: [&str; 7] = [
    "set",
    "add",
    "rename",
    "hard_rename",
    "copy",
    "hard_copy",
    "add_if_not_present",
];
const ONE_ARGUMENT_CONDITIONS: [&str; 4] = [
    "key_exists",
    "key_does_not_exist",
    "a_key_matches",
    "no_key_matches",
];
const TWO_ARGUMENT_CONDITIONS: [&str; 6] = [
    "key_value_equals",
    "key_value_does_not_equal",
    "key_value_matches",
    "key_value_does_not_match",
    "matching_keys_have_matching_values",
    "matching_keys_do_not_have_matching_values",
];

/// `{ name = "a" }` or `{ name = ["a", "b"] }`.
fn operation(name: &str, args: &[String]) -> Value {
    let value = match args {
        [one] => Value::String(one.clone()),
        many => Value::Array(many.iter().cloned().map(Value::String).collect()),
    };
    let mut t = Table::new();
    t.insert(name.into(), value);
    Value::Table(t)
}

fn modify(s: &Section, t: &mut Table, warnings: &mut Vec<String>) -> Result<(), String> {
    let (mut rules, mut conditions) = (Vec::new(), Vec::new());
    for e in &s.entries {
        if placement(t, e) {
            continue;
        }
        let args = split_quoted(&e.value).map_err(|m| format!("{}: {m}", at(e)))?;
        let (op, args) = if e.key == "condition" {
            let Some((first, rest)) = args.split_first() else {
                return Err(format!(
                    "{}: Condition needs a condition and its arguments, e.g. `Condition Key_value_equals level error`",
                    at(e)
                ));
            };
            let op = first.to_ascii_lowercase();
            let wanted = if ONE_ARGUMENT_CONDITIONS.contains(&op.as_str()) {
                1
            } else if TWO_ARGUMENT_CONDITIONS.contains(&op.as_str()) {
                2
            } else {
                return Err(format!(
                    "{}: unknown condition `{first}`; use one of {}, {}",
                    at(e),
                    ONE_ARGUMENT_CONDITIONS.join(", "),
                    TWO_ARGUMENT_CONDITIONS.join(", ")
                ));
            };
            if rest.len() != wanted {
                return Err(format!(
                    "{}: Condition {first} takes {wanted} argument(s), got {}; put quotes around a value with spaces",
                    at(e),
                    rest.len()
                ));
            }
            (op, rest.to_vec())
        } else {
            let wanted = if ONE_ARGUMENT_RULES.contains(&e.key.as_str()) {
                1
            } else if TWO_ARGUMENT_RULES.contains(&e.key.as_str()) {
                2
            } else {
                return Err(unknown(
                    e,
                    "[FILTER] modify",
                    "Match, Match_Regex, Alias, Condition, Set, Add, Remove, Remove_wildcard, Remove_regex, Rename, Hard_rename, Copy, Hard_copy, Move_to_start, Move_to_end",
                ));
            };
            if args.len() != wanted {
                return Err(format!(
                    "{}: `{}` takes {}, got {} value(s); put quotes around a value with spaces, e.g. `Set message \"a b\"`",
                    at(e),
                    e.key,
                    if wanted == 1 { "KEY" } else { "KEY VALUE" },
                    args.len()
                ));
            }
            let op = if e.key == "add_if_not_present" {
                warnings.push(format!(
                    "{}: Add_if_not_present is deprecated in Fluent Bit; it is `Add`",
                    at(e)
                ));
                "add".to_string()
            } else {
                e.key.clone()
            };
            (op, args)
        };
        let value = operation(&op, &args);
        check_modify(e, &value, e.key == "condition")?;
        if e.key == "condition" {
            conditions.push(value);
        } else {
            rules.push(value);
        }
    }
    if rules.is_empty() {
        return Err(format!(
            "{}: [FILTER] modify has no rule; add e.g. `Set KEY VALUE` or `Remove KEY`",
            s.origin
        ));
    }
    t.insert("rules".into(), Value::Array(rules));
    if !conditions.is_empty() {
        t.insert("conditions".into(), Value::Array(conditions));
    }
    Ok(())
}

/// Compile one rule or condition alone, to report a bad pattern at its line.
fn check_modify(e: &Entry, value: &Value, is_condition: bool) -> Result<(), String> {
    let mut t = Table::new();
    let remove_any = operation("remove", &["-".to_string()]);
    let (rules, conditions) = if is_condition {
        (vec![remove_any], vec![value.clone()])
    } else {
        (vec![value.clone()], vec![])
    };
    t.insert("rules".into(), Value::Array(rules));
    t.insert("conditions".into(), Value::Array(conditions));
    let config: ModifyConfig = Value::Table(t)
        .try_into()
        .map_err(|err| format!("{}: {err}", at(e)))?;
    Modify::new(&config).map(|_| ()).map_err(|m| {
        format!(
            "{}: {}",
            at(e),
            m.split_once(": ").map_or(m.as_str(), |(_, r)| r)
        )
    })
}

fn parser(s: &Section, t: &mut Table, warnings: &mut Vec<String>) -> Result<Vec<Entry>, String> {
    let mut parsers = Vec::new();
    for e in &s.entries {
        if placement(t, e) {
            continue;
        }
        match e.key.as_str() {
            "key_name" => {
                t.insert("key_name".into(), e.value.clone().into());
            }
            "parser" => parsers.push(e.clone()),
            "reserve_data" | "preserve_key" => {
                t.insert(e.key.clone(), on_off(e)?.into());
            }
            "unescape_key" => warnings.push(format!(
                "{}: Unescape_Key is deprecated in Fluent Bit and ignored",
                at(e)
            )),
            _ => {
                return Err(unknown(
                    e,
                    "[FILTER] parser",
                    "Match, Match_Regex, Alias, Key_Name, Parser, Reserve_Data, Preserve_Key",
                ));
            }
        }
    }
    if !t.contains_key("key_name") {
        return Err(format!(
            "{}: [FILTER] parser needs `Key_Name`, e.g. `Key_Name log`",
            s.origin
        ));
    }
    if parsers.is_empty() {
        return Err(format!(
            "{}: [FILTER] parser needs `Parser`, e.g. `Parser json`",
            s.origin
        ));
    }
    t.insert(
        "parser".into(),
        Value::Array(
            parsers
                .iter()
                .map(|e| Value::String(e.value.clone()))
                .collect(),
        ),
    );
    Ok(parsers)
}
