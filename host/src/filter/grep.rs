//! `grep`: keep or drop events by regular expressions over record values (Fluent Bit
//! `filter_grep`, what FireLens generates for `include-pattern` / `exclude-pattern`).
//!
//! Each rule is a record accessor (`log`, `$kubernetes['labels']['app']`) and a pattern, either
//! `regex` (keep what matches) or `exclude` (drop what matches). Only string values can match:
//! a missing key, a number, a map… never matches (Fluent Bit's record accessor does the same).
//! The pattern matches anywhere in the value unless anchored.
//!
//! `logical_op` (Fluent Bit 2.1+):
//! - `legacy` (the default) is Fluent Bit's original, order-dependent evaluation: rules are
//!   checked in order; a `regex` that does not match drops the event, an `exclude` that matches
//!   drops it, and the first `regex` that matches keeps it without looking at later rules.
//!   With only `exclude` rules this is "drop if any matches"; with one `regex` rule it is "keep
//!   if it matches" — the FireLens cases. Several `regex` rules are *not* all required here
//!   (fluent/fluent-bit#3259); use `logical_op = "and"` for that.
//! - `and` / `or`: all (any) rules must match; with `regex` rules a match keeps the event, with
//!   `exclude` rules it drops it. Fluent Bit refuses to mix `regex` and `exclude` in these modes,
//!   and so does this filter.
//!
//! Events dropped are counted as `component_discarded_events_total{reason="grep_excluded"}`.

use super::{RecordFilter, Verdict};
use crate::config::fluent_bit::compile_regex;
use crate::event::Event;
use crate::event::accessor::RecordAccessor;
use crate::event::record::str_only;
use crate::ops::metrics::Metrics;
use serde::Deserialize;
use std::sync::Arc;

/// `type = "grep"` under `[[filters]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrepConfig {
    /// The rules, in order (Fluent Bit `Regex KEY PATTERN` / `Exclude KEY PATTERN`).
    #[serde(default)]
    pub rules: Vec<GrepRuleConfig>,
    /// How the rules combine: `legacy` (default), `and` or `or`.
    #[serde(default)]
    pub logical_op: LogicalOp,
}

/// One rule: a key and exactly one of `regex` and `exclude`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrepRuleConfig {
    /// The value to test: a key (`log`) or a record accessor (`$kubernetes['labels']['app']`).
    pub key: String,
    /// Keep events whose value matches this pattern.
    #[serde(default)]
    pub regex: Option<String>,
    /// Drop events whose value matches this pattern.
    #[serde(default)]
    pub exclude: Option<String>,
}

/// `logical_op`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogicalOp {
    /// Fluent Bit's original order-dependent evaluation.
    #[default]
    Legacy,
    /// Every rule must match.
    #[serde(alias = "AND")]
    And,
    /// At least one rule must match.
    #[serde(alias = "OR")]
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RuleKind {
    Regex,
    Exclude,
}

#[derive(Debug)]
struct Rule {
    kind: RuleKind,
    accessor: RecordAccessor,
    pattern: regex::bytes::Regex,
}

impl GrepConfig {}

/// The compiled filter.
#[derive(Debug)]
pub struct Grep {
    rules: Vec<Rule>,
    op: LogicalOp,
}

impl Grep {
    /// Compile `config`. The error starts with the offending key path (`.rules[1].regex: …`).
    pub fn new(config: &GrepConfig) -> Result<Grep, String> {
        if config.rules.is_empty() {
            return Err(": a grep filter needs at least one rule, e.g. `rules = [{ key = \"log\", regex = \"ERROR\" }]`".into());
        }
        let mut rules = Vec::new();
        for (i, r) in config.rules.iter().enumerate() {
            let at = format!(".rules[{i}]");
            let (kind, pattern, field) = match (&r.regex, &r.exclude) {
                (Some(p), None) => (RuleKind::Regex, p, "regex"),
                (None, Some(p)) => (RuleKind::Exclude, p, "exclude"),
                _ => {
                    return Err(format!(
                        "{at}: set exactly one of `regex` (keep what matches) and `exclude` (drop what matches)"
                    ));
                }
            };
            let accessor = RecordAccessor::parse(&r.key).map_err(|e| format!("{at}.key: {e}"))?;
            let pattern = compile_regex(pattern).map_err(|e| format!("{at}.{field}: {e}"))?;
            rules.push(Rule {
                kind,
                accessor,
                pattern,
            });
        }
        if config.logical_op != LogicalOp::Legacy && rules.iter().any(|r| r.kind != rules[0].kind) {
            return Err(format!(
                ".logical_op = {:?}: `regex` and `exclude` rules cannot be mixed with `and`/`or` (Fluent Bit refuses it too); put them in two grep filters",
                format!("{:?}", config.logical_op).to_lowercase()
            ));
        }
        Ok(Grep {
            rules,
            op: config.logical_op,
        })
    }

    /// Whether `body` passes the filter.
    pub fn keeps(&self, body: &[u8]) -> bool {
        let matches = |rule: &Rule| {
            rule.accessor
                .lookup_in(body)
                .and_then(str_only)
                .is_some_and(|value| rule.pattern.is_match(value))
        };
        match self.op {
            LogicalOp::Legacy => {
                for rule in &self.rules {
                    match (rule.kind, matches(rule)) {
                        (RuleKind::Regex, true) => return true,
                        (RuleKind::Regex, false) | (RuleKind::Exclude, true) => return false,
                        (RuleKind::Exclude, false) => {}
                    }
                }
                true
            }
            op => {
                let found = if op == LogicalOp::And {
                    self.rules.iter().all(matches)
                } else {
                    self.rules.iter().any(matches)
                };
                // Validated: every rule has the kind of the first.
                (self.rules[0].kind == RuleKind::Regex) == found
            }
        }
    }
}

impl RecordFilter for Grep {
    fn drop_reason(&self) -> &'static str {
        "grep_excluded"
    }

    fn apply(&self, event: &Event) -> Verdict {
        if self.keeps(&event.body) {
            Verdict::Keep
        } else {
            Verdict::Drop
        }
    }
}

impl super::NativeConfig for GrepConfig {
    type Filter = Grep;

    fn compile(&self, _id: &str, _metrics: &Arc<Metrics>) -> Result<Grep, String> {
        Grep::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::record::tests::body;
    use serde_json::json;

    fn grep(toml_text: &str) -> Result<Grep, String> {
        let config: GrepConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        Grep::new(&config)
    }

    fn kept(g: &Grep, records: &[serde_json::Value]) -> Vec<usize> {
        records
            .iter()
            .enumerate()
            .filter(|(_, r)| g.keeps(&body((*r).clone())))
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn the_firelens_include_and_exclude_filters() {
        let records = [
            json!({"log": "DEBUG x"}),
            json!({"log": "INFO y"}),
            json!({"log": "ERROR DEBUG z"}),
            json!({"other": "DEBUG"}),
            json!({"log": 5}),
        ];
        let exclude = grep("rules = [{ key = \"log\", exclude = \"^DEBUG\" }]").unwrap();
        assert_eq!(kept(&exclude, &records), vec![1, 2, 3, 4]);
        let include = grep("rules = [{ key = \"log\", regex = \"DEBUG\" }]").unwrap();
        assert_eq!(kept(&include, &records), vec![0, 2]);
    }

    #[test]
    fn legacy_is_order_dependent_as_in_fluent_bit() {
        let records = [
            json!({"a": "1", "b": "1"}),
            json!({"a": "1", "b": "0"}),
            json!({"a": "0", "b": "1"}),
        ];
        // The first matching Regex keeps the event: `b` is not looked at.
        let two = grep("rules = [{ key = \"a\", regex = \"1\" }, { key = \"b\", regex = \"1\" }]")
            .unwrap();
        assert_eq!(kept(&two, &records), vec![0, 1]);
        // An Exclude before the Regex is checked; after it, it is not.
        let exclude_first =
            grep("rules = [{ key = \"b\", exclude = \"0\" }, { key = \"a\", regex = \"1\" }]")
                .unwrap();
        assert_eq!(kept(&exclude_first, &records), vec![0]);
        let regex_first =
            grep("rules = [{ key = \"a\", regex = \"1\" }, { key = \"b\", exclude = \"0\" }]")
                .unwrap();
        assert_eq!(kept(&regex_first, &records), vec![0, 1]);
    }

    #[test]
    fn and_or_and_nested_keys() {
        let records = [
            json!({"k": {"labels": {"app": "web"}}, "log": "GET /"}),
            json!({"k": {"labels": {"app": "db"}}, "log": "GET /"}),
            json!({"k": {"labels": {"app": "web"}}, "log": "POST /"}),
        ];
        let and = grep("logical_op = \"and\"\nrules = [{ key = \"$k['labels']['app']\", regex = \"^web$\" }, { key = \"log\", regex = \"^GET\" }]").unwrap();
        assert_eq!(kept(&and, &records), vec![0]);
        let or = grep("logical_op = \"or\"\nrules = [{ key = \"$k['labels']['app']\", regex = \"^web$\" }, { key = \"log\", regex = \"^GET\" }]").unwrap();
        assert_eq!(kept(&or, &records), vec![0, 1, 2]);
        let or_exclude = grep("logical_op = \"or\"\nrules = [{ key = \"$k['labels']['app']\", exclude = \"^db$\" }, { key = \"log\", exclude = \"^POST\" }]").unwrap();
        assert_eq!(kept(&or_exclude, &records), vec![0]);
        let and_exclude = grep("logical_op = \"and\"\nrules = [{ key = \"$k['labels']['app']\", exclude = \"^web$\" }, { key = \"log\", exclude = \"^POST\" }]").unwrap();
        assert_eq!(kept(&and_exclude, &records), vec![0, 1]);
    }

    #[test]
    fn mistakes_name_the_rule_and_the_fix() {
        let e = grep("rules = [{ key = \"log\", regex = \"(\" }]").unwrap_err();
        assert!(e.starts_with(".rules[0].regex: "), "{e}");
        let e = grep("rules = [{ key = \"log\" }]").unwrap_err();
        assert!(e.contains("exactly one of"), "{e}");
        let e = grep("rules = []").unwrap_err();
        assert!(e.contains("at least one rule"), "{e}");
        let e = grep("logical_op = \"or\"\nrules = [{ key = \"a\", regex = \"x\" }, { key = \"b\", exclude = \"y\" }]").unwrap_err();
        assert!(e.contains("cannot be mixed") && e.contains("\"or\""), "{e}");
        let e = grep("rules = [{ key = \"$a[x]\", regex = \"x\" }]").unwrap_err();
        assert!(e.starts_with(".rules[0].key: "), "{e}");
    }
}
