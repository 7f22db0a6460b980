//! The `regex` state machine of a multiline parser (Fluent Bit `flb_ml_rule.c`).
//!
//! A rule is `rule "from_states" "/regex/" "next_state"`: from any of its (comma-separated)
//! states, a line its regex matches (anywhere in the line) moves the message to `next_state`.
//! Rules from `start_state` begin a message. While a message is open, only the rules of its
//! current state that are not start rules continue it; a line none of them takes may begin a new
//! message, else it is not this parser's. A message whose state leads back to a start rule is
//! complete at once (Python's last traceback line).

use crate::config::fluent_bit::compile_regex;
use regex::bytes::Regex;

/// The first state of every message.
pub const START_STATE: &str = "start_state";

/// One rule as written: `from_states`, the regex, `next_state`.
#[derive(Clone, Debug)]
pub struct RuleDef<'a> {
    /// The states it applies in, comma-separated (`"start_state, java_start_exception"`).
    pub from_states: &'a str,
    /// The regex, `/…/` or bare.
    pub regex: &'a str,
    /// The state a match moves to.
    pub next_state: Option<&'a str>,
}

/// Why rules did not compile: which rule (from 0; `None`: the set) and what to do.
#[derive(Debug, PartialEq, Eq)]
pub struct RuleError {
    /// The rule at fault.
    pub rule: Option<usize>,
    /// What is wrong and the fix.
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rule {
            Some(i) => write!(f, "rule {}: {}", i + 1, self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A parser's compiled rules.
#[derive(Debug)]
pub struct Rules {
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct Rule {
    from: Vec<String>,
    start: bool,
    regex: Regex,
    /// The rules whose from-states include this rule's next state.
    next: Vec<usize>,
}

impl Rules {
    /// Compile `defs`. The first rule must start from `start_state`, and every next state must
    /// be a state some rule starts from, as Fluent Bit checks.
    pub fn new(defs: &[RuleDef<'_>]) -> Result<Rules, RuleError> {
        let mut rules = Vec::with_capacity(defs.len());
        for (i, def) in defs.iter().enumerate() {
            let fail = |message: String| RuleError {
                rule: Some(i),
                message,
            };
            let from: Vec<String> = def
                .from_states
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if from.is_empty() {
                return Err(fail(
                    "has no state; e.g. `rule \"start_state\" \"/^\\S/\" \"cont\"`".into(),
                ));
            }
            let start = from.iter().any(|s| s == START_STATE);
            if i == 0 && !start {
                return Err(fail(format!(
                    "starts from {:?}; the first rule must start from \"start_state\"",
                    def.from_states
                )));
            }
            let regex = compile_regex(&line_anchored(def.regex))
                .map_err(|e| fail(e.replacen("(?m)", "", 1)))?;
            rules.push((
                Rule {
                    from,
                    start,
                    regex,
                    next: Vec::new(),
                },
                def.next_state.map(str::to_string),
            ));
        }
        if rules.is_empty() {
            return Err(RuleError {
                rule: None,
                message: "has no rule; add e.g. `rule \"start_state\" \"/^\\S/\" \"cont\"` and `rule \"cont\" \"/^\\s+/\" \"cont\"`".into(),
            });
        }
        let froms: Vec<Vec<String>> = rules.iter().map(|(r, _)| r.from.clone()).collect();
        for (i, (rule, next_state)) in rules.iter_mut().enumerate() {
            let Some(next_state) = next_state else {
                continue;
            };
            rule.next = froms
                .iter()
                .enumerate()
                .filter(|(_, from)| from.iter().any(|s| s == next_state))
                .map(|(j, _)| j)
                .collect();
            if rule.next.is_empty() {
                return Err(RuleError {
                    rule: Some(i),
                    message: format!(
                        "next state {next_state:?} is not the state of any rule; add a rule from {next_state:?} or correct its spelling"
                    ),
                });
            }
        }
        Ok(Rules {
            rules: rules.into_iter().map(|(r, _)| r).collect(),
        })
    }

    /// The first start rule that matches `line`.
    pub fn start(&self, line: &[u8]) -> Option<usize> {
        self.rules
            .iter()
            .position(|r| r.start && r.regex.is_match(line))
    }

    /// The rule that continues a message whose last rule was `current` with `line`.
    pub fn continuation(&self, current: usize, line: &[u8]) -> Option<usize> {
        self.rules[current]
            .next
            .iter()
            .copied()
            .find(|&j| !self.rules[j].start && self.rules[j].regex.is_match(line))
    }

    /// Whether a message whose last rule is `rule` is complete (its next state is a start).
    pub fn completes(&self, rule: usize) -> bool {
        self.rules[rule].next.iter().any(|&j| self.rules[j].start)
    }
}

/// `pattern` with `^` and `$` matching at line breaks too, as in Fluent Bit's Onigmo (Ruby
/// syntax), so `/^$/` takes an empty line that still has its `\n`.
fn line_anchored(pattern: &str) -> String {
    match pattern.strip_prefix('/') {
        Some(rest) if rest.contains('/') => format!("/(?m){rest}"),
        _ => format!("(?m){pattern}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def<'a>(from: &'a str, regex: &'a str, next: &'a str) -> RuleDef<'a> {
        RuleDef {
            from_states: from,
            regex,
            next_state: Some(next),
        }
    }

    #[test]
    fn states_move_and_complete() {
        let r = Rules::new(&[
            def("start_state", "/^Start/", "cont"),
            def("cont", "/^\\s+/", "cont"),
            def("cont", "/^End/", "start_state"),
        ])
        .unwrap();
        assert_eq!(r.start(b"Start x"), Some(0));
        assert_eq!(r.start(b"  x"), None);
        assert_eq!(r.continuation(0, b"  at"), Some(1));
        assert_eq!(r.continuation(1, b"End"), Some(2));
        assert_eq!(r.continuation(1, b"Start again"), None);
        assert!(!r.completes(1));
        assert!(r.completes(2));
    }

    #[test]
    fn bad_rules_are_named() {
        let e = Rules::new(&[def("cont", "/x/", "cont")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("first rule must start from"), "{e}");
        let e = Rules::new(&[def("start_state", "/x/", "nowhere")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("rule 1") && e.contains("\"nowhere\""), "{e}");
        let e = Rules::new(&[def("start_state", "/(x/", "start_state")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rule 1") && e.contains("not a valid regular expression"),
            "{e}"
        );
        assert!(Rules::new(&[]).unwrap_err().message.contains("no rule"));
    }

    #[test]
    fn anchors_match_at_line_breaks_and_flags_stay() {
        let r = Rules::new(&[def("start_state", "/^$/", "start_state")]).unwrap();
        assert_eq!(r.start(b"\n"), Some(0));
        let r = Rules::new(&[def("start_state", "/^error/i", "start_state")]).unwrap();
        assert_eq!(r.start(b"ERROR x"), Some(0));
    }
}
