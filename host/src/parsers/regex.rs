//! `Format regex`: a `Regex` with Onigmo-style named groups `(?<name>…)`, each group that took
//! part in the match becoming a field (Fluent Bit `flb_parser_regex.c`, `flb_regex.c`).
//!
//! Fluent Bit compiles with Onigmo's Ruby syntax, so the pattern is read the Ruby way: `^` and `$`
//! match at line breaks, unnamed groups do not capture when named ones exist, `\<` and `\>` are
//! the literal `<` and `>`, `\h` is a hex digit, and `/pattern/` or `/pattern/imx` sets options
//! (`i` case-insensitive, `m` dot matches a newline, `x` extended). The pattern runs on the
//! `regex` crate (bytes API, linear time); one it cannot compile (look-around, back-references,
//! atomic groups, possessive quantifiers) falls back to `fancy-regex` in its Oniguruma mode,
//! which backtracks (bounded by its backtrack limit: a line over the limit does not parse). A
//! pattern neither compiles is refused where it is written.

use fancy_regex::RegexBuilder as FancyBuilder;
use regex::bytes::RegexBuilder;

/// A compiled `Regex`.
#[derive(Clone, Debug)]
pub struct Pattern {
    engine: Engine,
    /// The named groups in the order they open: name and group index.
    names: Vec<(String, usize)>,
}

#[derive(Clone, Debug)]
enum Engine {
    Linear(regex::bytes::Regex),
    Backtracking(fancy_regex::Regex),
}

/// The options of `/pattern/imx`.
#[derive(Default)]
struct Options {
    case_insensitive: bool,
    dot_all: bool,
    extended: bool,
}

/// `pattern` without its `/…/options` wrapping, and the options (as `flb_regex.c` reads them:
/// an unknown option letter leaves the pattern as written).
fn unwrap(pattern: &str) -> (&str, Options) {
    let mut options = Options::default();
    let Some(rest) = pattern.strip_prefix('/') else {
        return (pattern, options);
    };
    if let Some(last) = rest.rfind('/') {
        let flags = &rest[last + 1..];
        if !flags.is_empty() && flags.chars().all(|c| "imxo".contains(c)) {
            options.case_insensitive = flags.contains('i');
            options.dot_all = flags.contains('m');
            options.extended = flags.contains('x');
            return (&rest[..last], options);
        }
        if flags.is_empty() && !rest.is_empty() {
            return (&rest[..last], options);
        }
    }
    (pattern, options)
}

/// The Ruby-only escapes rewritten for the `regex` crate: `\<` `\>` (literals in Ruby, word
/// boundaries in `regex`), `\h` `\H` (hex digit).
fn to_rust_syntax(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut in_class = 0usize;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(lit @ ('<' | '>')) => out.push(lit),
                Some('h') if in_class > 0 => out.push_str("0-9a-fA-F"),
                Some('h') => out.push_str("[0-9a-fA-F]"),
                Some('H') if in_class == 0 => out.push_str("[^0-9a-fA-F]"),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '[' => {
                in_class += 1;
                out.push(c);
            }
            ']' if in_class > 0 => {
                in_class -= 1;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

impl Pattern {
    /// Compile `pattern` (the `Regex` value). The error says why and what to do.
    pub fn new(pattern: &str) -> Result<Pattern, String> {
        let (body, options) = unwrap(pattern);
        let linear = RegexBuilder::new(&to_rust_syntax(body))
            .multi_line(true)
            .case_insensitive(options.case_insensitive)
            .dot_matches_new_line(options.dot_all)
            .ignore_whitespace(options.extended)
            .build();
        let (engine, names): (Engine, Vec<(String, usize)>) = match linear {
            Ok(re) => {
                let names = named(re.capture_names());
                (Engine::Linear(re), names)
            }
            Err(linear_error) => {
                let fancy = FancyBuilder::new(body)
                    .oniguruma_mode(true)
                    .ignore_numbered_groups_when_named_groups_exist(true)
                    .multi_line(true)
                    .case_insensitive(options.case_insensitive)
                    .dot_matches_new_line(options.dot_all)
                    .ignore_whitespace(options.extended)
                    .build()
                    .map_err(|fancy_error| {
                        let linear_error = linear_error.to_string();
                        let reason = linear_error.lines().last().unwrap_or("").trim();
                        let reason = reason.strip_prefix("error: ").unwrap_or(reason);
                        format!(
                            "Regex `{pattern}` cannot run here: {reason}; the backtracking engine (for look-around and back-references) says: {fancy_error}. Rewrite that part of the pattern"
                        )
                    })?;
                let names = named(fancy.capture_names());
                (Engine::Backtracking(fancy), names)
            }
        };
        if names.is_empty() {
            return Err(format!(
                "Regex `{pattern}` has no named group, so it would never yield a field; name the parts to keep, e.g. `^(?<level>\\w+) (?<message>.*)$`"
            ));
        }
        Ok(Pattern { engine, names })
    }

    /// Whether the pattern runs on the backtracking engine.
    pub fn backtracks(&self) -> bool {
        matches!(self.engine, Engine::Backtracking(_))
    }

    /// The named groups of the first match in `text`, in pattern order; a group that did not
    /// take part is empty. `None` when the pattern does not match.
    pub fn fields<'t>(&self, text: &'t [u8]) -> Option<Vec<(&str, &'t [u8])>> {
        let spans: Vec<Option<std::ops::Range<usize>>> = match &self.engine {
            Engine::Linear(re) => {
                let caps = re.captures(text)?;
                self.names
                    .iter()
                    .map(|(_, i)| caps.get(*i).map(|m| m.range()))
                    .collect()
            }
            Engine::Backtracking(re) => {
                let caps = re.captures(text).ok()??;
                self.names
                    .iter()
                    .map(|(_, i)| caps.get(*i).map(|m| m.range()))
                    .collect()
            }
        };
        Some(
            self.names
                .iter()
                .zip(spans)
                .map(|((name, _), span)| (name.as_str(), span.map_or(&b""[..], |r| &text[r])))
                .collect(),
        )
    }
}

fn named<'a>(names: impl Iterator<Item = Option<&'a str>>) -> Vec<(String, usize)> {
    names
        .enumerate()
        .filter_map(|(i, n)| Some((n?.to_string(), i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pattern: &str, text: &str) -> Option<Vec<(String, String)>> {
        let p = Pattern::new(pattern).unwrap();
        p.fields(text.as_bytes()).map(|f| {
            f.into_iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8(v.to_vec()).unwrap()))
                .collect()
        })
    }

    fn pairs(v: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn named_groups_in_order_and_unmatched_ones_empty() {
        assert_eq!(
            fields(r"^(?<a>\w+)(?: (?<b>\d+))? (?<c>.*)$", "x rest"),
            pairs(&[("a", "x"), ("b", ""), ("c", "rest")])
        );
        assert_eq!(fields(r"^(?<a>\d+)$", "abc"), None);
        // Unnamed groups do not become fields.
        assert_eq!(fields(r"(?<k>\w+)=(\d+)", "n=5"), pairs(&[("k", "n")]));
    }

    #[test]
    fn ruby_syntax_literal_angles_slashes_options_and_hex() {
        let p = r"/^\<(?<pri>[0-9]+)\>(?<msg>.*)$/";
        assert_eq!(fields(p, "<13>hi"), pairs(&[("pri", "13"), ("msg", "hi")]));
        assert!(!Pattern::new(p).unwrap().backtracks());
        assert_eq!(
            fields(r"/^(?<w>hello)$/i", "HeLLo"),
            pairs(&[("w", "HeLLo")])
        );
        assert_eq!(fields(r"^(?<w>a.b)$", "a\nb"), None);
        assert_eq!(fields(r"/^(?<w>a.b)$/m", "a\nb"), pairs(&[("w", "a\nb")]));
        assert_eq!(fields(r"^(?<x>\h+)$", "c0ffee"), pairs(&[("x", "c0ffee")]));
        // `^` and `$` are line anchors, as in Ruby.
        assert_eq!(
            fields(r"^(?<second>b+)$", "aaa\nbb\n"),
            pairs(&[("second", "bb")])
        );
        // An unknown option letter leaves the slashes in the pattern.
        assert_eq!(fields(r"/(?<a>x)/q", "/x/q"), pairs(&[("a", "x")]));
    }

    #[test]
    fn look_around_and_back_references_fall_back_to_the_backtracking_engine() {
        let p = Pattern::new(r"^(?<word>\w+) (?<again>\k<word>)(?! no)").unwrap();
        assert!(p.backtracks());
        assert_eq!(
            fields(r"^(?<word>\w+) (?<again>\k<word>)(?! no)", "hey hey yes"),
            pairs(&[("word", "hey"), ("again", "hey")])
        );
        assert_eq!(
            fields(r"^(?<word>\w+) (?<again>\k<word>)(?! no)", "hey hey no"),
            None
        );
        assert_eq!(
            fields(r"^\<(?<n>\d+)\>(?=x)", "<7>x"),
            pairs(&[("n", "7")]),
            "literal angles in the fallback too"
        );
        assert_eq!(
            fields(r"^(?<a>(?>a+))b(?<rest>.*)$", "aaab!"),
            pairs(&[("a", "aaa"), ("rest", "!")])
        );
    }

    #[test]
    fn patterns_that_cannot_run_are_refused_with_the_reason() {
        // `\X` (a grapheme cluster) is Onigmo's alone.
        let e = Pattern::new(r"^(?<a>\X)$").unwrap_err();
        assert!(
            e.contains("cannot run here") && e.contains("Invalid escape") && e.contains("Rewrite"),
            "{e}"
        );
        // Subroutine calls run on the backtracking engine.
        assert!(Pattern::new(r"^(?<a>x)\g<a>$").unwrap().backtracks());
        let e = Pattern::new(r"^(?<a>x").unwrap_err();
        assert!(e.contains("cannot run here"), "{e}");
        let e = Pattern::new(r"^\w+ (\d+)$").unwrap_err();
        assert!(e.contains("no named group"), "{e}");
    }
}
