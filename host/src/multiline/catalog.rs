//! The multiline parsers a config can name: the [built-ins](super::builtin) and the
//! `[MULTILINE_PARSER]` sections of parsers files (Fluent Bit `flb_parser_load_multiline_parser_definitions`).
//!
//! ```text
//! [MULTILINE_PARSER]
//!     name          multiline-regex-test
//!     type          regex
//!     flush_timeout 1000
//!     rule      "start_state"   "/(Dec \d+ \d+\:\d+\:\d+)(.*)/"  "cont"
//!     rule      "cont"          "/^\s+at.*/"                     "cont"
//! ```
//!
//! Keys: `name`, `type` (`regex`, `endswith`, `equal`/`eq`), `match_string` (for `endswith` and
//! `equal`), `negate`, `key_content`, `key_pattern`, `key_group`, `parser` (a `[PARSER]` that
//! parses each line first), `flush_timeout` (milliseconds) and `rule` (for `regex`). A section is
//! checked when a filter or input names it, so a file full of parsers nothing uses loads as it
//! does in Fluent Bit; a problem is reported at its `file:line` in these terms. A file's
//! definition replaces a built-in of the same name.

use super::rules::{RuleDef, Rules};
use super::{DEFAULT_FLUSH_TIMEOUT, Kind, MultilineParser, PreParser, builtin};
use crate::config::classic::{Entry, Section};
use crate::config::fluent_bit::split_quoted;
use crate::config::parsers_files::Definitions;
use crate::parsers::{Parser, ParserCatalog};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Resolves a `[MULTILINE_PARSER]`'s `parser` key: the `[PARSER]` of that name, ready to run.
pub type ResolvePreParser<'a> = &'a dyn Fn(&str) -> Result<Arc<dyn PreParser>, String>;

/// The `[MULTILINE_PARSER]` sections known, with the built-ins behind them.
#[derive(Debug, Default)]
pub struct MultilineCatalog {
    definitions: Definitions,
}

impl MultilineCatalog {
    /// The `[MULTILINE_PARSER]` sections of `files` (later ones win; a YAML file's
    /// `multiline_parsers`). A file that cannot be read is noted and reported only if a parser
    /// is then missing; one that does not parse is an error naming its line.
    pub fn load(files: &[PathBuf]) -> Result<MultilineCatalog, String> {
        Ok(MultilineCatalog {
            definitions: Definitions::load("MULTILINE_PARSER", "", files)?,
        })
    }

    /// A catalog of the `[MULTILINE_PARSER]` sections among `sections` (read from `files`).
    pub fn from_sections(
        sections: Vec<Section>,
        files: &[PathBuf],
        unreadable: Vec<String>,
    ) -> MultilineCatalog {
        MultilineCatalog {
            definitions: Definitions::new("MULTILINE_PARSER", sections, files, unreadable),
        }
    }

    /// The parser `name` (case-sensitive, as in Fluent Bit): a file's section, else a built-in.
    /// `pre_parser` resolves a section's `parser` key.
    pub fn resolve(
        &self,
        name: &str,
        pre_parser: ResolvePreParser<'_>,
    ) -> Result<MultilineParser, String> {
        if let Some(section) = self.definitions.get(name) {
            return from_section(name, section, pre_parser);
        }
        builtin::get(name).ok_or_else(|| {
            format!(
                "multiline parser `{name}` is not defined: not built in ({}), no [MULTILINE_PARSER] of that name ({}); define it in a parsers file passed with `-R <file>` or `[SERVICE] Parsers_File`",
                builtin::NAMES.join(", "),
                self.definitions.looked_in()
            )
        })
    }
}

impl MultilineCatalog {
    /// The parser `name`, a section's `parser` key resolved among the `[PARSER]`s of `parsers`.
    pub fn resolve_with(
        &self,
        name: &str,
        parsers: &ParserCatalog,
    ) -> Result<MultilineParser, String> {
        let pre_parser = |name: &str| -> Result<Arc<dyn PreParser>, String> {
            parsers
                .resolve(name)
                .map(|p| Arc::new(p) as Arc<dyn PreParser>)
        };
        self.resolve(name, &pre_parser)
    }
}

/// The multiline parsers `names` (a `multiline_parser` list), in order: the `[MULTILINE_PARSER]`
/// sections of `files` (their `parser` key among the `[PARSER]`s of the same files), else the
/// built-ins. What the `multiline` filter and the `tail` input both name; an error starts with
/// the key (`.parsers_files: …`, `.multiline_parser[1]: …`).
pub fn resolve_names(
    names: &[String],
    files: &[PathBuf],
) -> Result<Vec<Arc<MultilineParser>>, String> {
    let catalog = MultilineCatalog::load(files).map_err(|e| format!(".parsers_files: {e}"))?;
    let parsers = ParserCatalog::load(files).map_err(|e| format!(".parsers_files: {e}"))?;
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            catalog
                .resolve_with(name, &parsers)
                .map(Arc::new)
                .map_err(|e| format!(".multiline_parser[{i}]: {e}"))
        })
        .collect()
}

/// A `[PARSER]` as a multiline parser's pre-parser.
impl PreParser for Parser {
    fn parse(&self, text: &[u8]) -> Option<(Vec<u8>, Option<u64>)> {
        let parsed = Parser::parse(self, text)?;
        Some((parsed.body, parsed.time_ns))
    }
}

fn from_section(
    name: &str,
    s: &Section,
    pre_parser: ResolvePreParser<'_>,
) -> Result<MultilineParser, String> {
    let at = |e: &Entry| format!("{}: multiline parser `{name}`", e.origin);
    let mut kind_entry = None;
    let (mut match_string, mut negate, mut flush_timeout) = (None, false, DEFAULT_FLUSH_TIMEOUT);
    let (mut key_content, mut key_pattern, mut key_group, mut pre) = (None, None, None, None);
    let mut rules: Vec<(&Entry, Vec<String>)> = Vec::new();
    for e in &s.entries {
        match e.key.as_str() {
            "name" => {}
            "type" => kind_entry = Some(e),
            "match_string" => match_string = Some(e.value.clone()),
            "negate" => {
                negate = match e.value.to_ascii_lowercase().as_str() {
                    "on" | "true" | "yes" | "1" => true,
                    "off" | "false" | "no" | "0" => false,
                    v => return Err(format!("{}: negate {v:?} is not On/Off", at(e))),
                }
            }
            "key_content" => key_content = Some(e.value.clone()),
            "key_pattern" => key_pattern = Some(e.value.clone()),
            "key_group" => key_group = Some(e.value.clone()),
            "parser" => {
                pre = Some(
                    pre_parser(&e.value)
                        .map_err(|m| format!("{}: parser {}: {m}", at(e), e.value))?,
                )
            }
            "flush_timeout" => {
                let ms: u64 = e.value.parse().map_err(|_| {
                    format!(
                        "{}: flush_timeout {:?}: use milliseconds, e.g. `flush_timeout 1000`",
                        at(e),
                        e.value
                    )
                })?;
                if ms > 0 {
                    flush_timeout = Duration::from_millis(ms);
                }
            }
            "rule" => {
                let parts = split_quoted(&e.value).map_err(|m| format!("{}: rule: {m}", at(e)))?;
                if !(2..=3).contains(&parts.len()) {
                    return Err(format!(
                        "{}: rule takes \"state\" \"/regex/\" \"next_state\" in double quotes, got {} part(s)",
                        at(e),
                        parts.len()
                    ));
                }
                rules.push((e, parts));
            }
            _ => {
                return Err(format!(
                    "{}: unknown key `{}` in [MULTILINE_PARSER]; remove it (accepted keys: name, type, match_string, negate, key_content, key_pattern, key_group, parser, flush_timeout, rule)",
                    at(e),
                    e.key
                ));
            }
        }
    }
    let Some(kind_entry) = kind_entry else {
        return Err(format!(
            "{}: multiline parser `{name}` has no `type`; add `type regex` (with `rule` lines), `type endswith` or `type equal`",
            s.origin
        ));
    };
    let needs_match = |what: &str| {
        match_string
            .as_ref()
            .map(|m| m.as_bytes().to_vec())
            .ok_or_else(|| {
                format!(
                    "{}: `type {what}` needs `match_string`, e.g. `match_string \\`",
                    at(kind_entry)
                )
            })
    };
    let kind = match kind_entry.value.to_ascii_lowercase().as_str() {
        "regex" => {
            let defs: Vec<RuleDef<'_>> = rules
                .iter()
                .map(|(_, p)| RuleDef {
                    from_states: &p[0],
                    regex: &p[1],
                    next_state: p.get(2).map(String::as_str),
                })
                .collect();
            Kind::Regex(Rules::new(&defs).map_err(|e| match e.rule {
                Some(i) => format!("{}: rule: {}", at(rules[i].0), e.message),
                None => format!("{}: {}", at(kind_entry), e.message),
            })?)
        }
        "endswith" => Kind::EndsWith(needs_match("endswith")?),
        "equal" | "eq" => Kind::Equal(needs_match("equal")?),
        other => {
            return Err(format!(
                "{}: type {other:?}: use regex, endswith or equal",
                at(kind_entry)
            ));
        }
    };
    if !matches!(kind, Kind::Regex(_))
        && let Some((e, _)) = rules.first()
    {
        return Err(format!(
            "{}: `rule` is for `type regex`; remove it or change the type",
            at(e)
        ));
    }
    Ok(MultilineParser {
        name: name.to_string(),
        kind,
        negate,
        flush_timeout,
        key_content,
        key_pattern,
        key_group,
        pre_parser: pre,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_parsers(name: &str) -> Result<Arc<dyn PreParser>, String> {
        Err(format!("no [PARSER] {name}"))
    }

    fn catalog(text: &str) -> (tempfile::TempDir, MultilineCatalog) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("parsers_multiline.conf");
        std::fs::write(&file, text).unwrap();
        let c = MultilineCatalog::load(&[file]).unwrap();
        (dir, c)
    }

    #[test]
    fn sections_load_and_override_built_ins() {
        let (_dir, c) = catalog(
            "[PARSER]\n    Name x\n    Format json\n\n[MULTILINE_PARSER]\n    name          multiline-regex-test\n    type          regex\n    flush_timeout 1000\n    rule      \"start_state\"   \"/(Dec \\d+ \\d+\\:\\d+\\:\\d+)(.*)/\"  \"cont\"\n    rule      \"cont\"          \"/^\\s+at.*/\"                     \"cont\"\n    \n[MULTILINE_PARSER]\n    name java\n    type endswith\n    match_string ;\n",
        );
        let p = c.resolve("multiline-regex-test", &no_parsers).unwrap();
        assert_eq!(p.flush_timeout, Duration::from_millis(1000));
        let Kind::Regex(rules) = &p.kind else {
            panic!("regex")
        };
        assert_eq!(rules.start(b"Dec 14 06:41:08 Exception"), Some(0));
        assert_eq!(rules.continuation(0, b"    at com.x"), Some(1));
        assert!(matches!(
            c.resolve("java", &no_parsers).unwrap().kind,
            Kind::EndsWith(_)
        ));
        assert!(matches!(
            c.resolve("python", &no_parsers).unwrap().kind,
            Kind::Regex(_)
        ));
        let e = c.resolve("nope", &no_parsers).unwrap_err();
        assert!(
            e.contains("`nope` is not defined") && e.contains("parsers_multiline.conf"),
            "{e}"
        );
    }

    #[test]
    fn a_yaml_file_s_multiline_parsers_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fluent-bit.yaml");
        std::fs::write(
            &file,
            "multiline_parsers:\n  - name: ml\n    type: regex\n    rules:\n      - {state: start_state, regex: '/^\\d/', next_state: cont}\n      - {state: cont, regex: '/^\\s+/', next_state: cont}\n",
        )
        .unwrap();
        let c = MultilineCatalog::load(&[file]).unwrap();
        let Kind::Regex(rules) = c.resolve("ml", &no_parsers).unwrap().kind else {
            panic!("regex")
        };
        assert_eq!(rules.start(b"1 first"), Some(0));
        assert_eq!(rules.continuation(0, b"  more"), Some(1));
    }

    #[test]
    fn mistakes_are_reported_at_their_line() {
        let cases = [
            (
                "    type regex\n    rule \"start_state\" \"/(/\" \"cont\"\n",
                ":4:",
                "not a valid regular expression",
            ),
            (
                "    type regex\n    rule \"start_state\" \"/x/\" \"nowhere\"\n",
                ":4:",
                "\"nowhere\"",
            ),
            (
                "    type regex\n    rule \"cont\" \"/x/\"\n",
                ":4:",
                "must start from \"start_state\"",
            ),
            (
                "    type regex\n    rule start_state\n",
                ":4:",
                "got 1 part",
            ),
            ("    type regex\n", ":3:", "no rule"),
            ("    type endswith\n", ":3:", "needs `match_string`"),
            ("    type lines\n", ":3:", "use regex, endswith or equal"),
            ("    key_content log\n", ":1:", "has no `type`"),
            (
                "    type regex\n    flush_timeout soon\n",
                ":4:",
                "milliseconds",
            ),
            (
                "    type regex\n    colour blue\n",
                ":4:",
                "unknown key `colour`",
            ),
            (
                "    type equal\n    match_string F\n    parser cri_regex\n",
                ":5:",
                "no [PARSER] cri_regex",
            ),
        ];
        for (body, line, what) in cases {
            let (_dir, c) = catalog(&format!("[MULTILINE_PARSER]\n    name m\n{body}"));
            let e = c.resolve("m", &no_parsers).unwrap_err();
            assert!(
                e.contains(line) && e.contains(what) && e.contains("`m`"),
                "{body}: {e}"
            );
        }
    }
}
