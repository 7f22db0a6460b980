//! Parser definitions for the `parser` filter: Fluent Bit `[PARSER]` sections from parsers files
//! (`-R <file>`, `[SERVICE] Parsers_File`, or a filter's `parsers_files`), plus the two
//! definitions of Fluent Bit's own `parsers.conf` that FireLens configs rely on, built in:
//! `json` (`Time_Key time`, `Time_Format %d/%b/%Y:%H:%M:%S %z`) and `docker` (`Time_Key time`,
//! `Time_Format %Y-%m-%dT%H:%M:%S.%L`, `Time_Keep On`). A file's definition replaces a built-in
//! one of the same name.
//!
//! Only `Format json` runs natively, with `Time_Key`, `Time_Format`, `Time_Keep` and
//! `Time_Offset`. A filter that names a parser of another format (`regex`, `logfmt`, `ltsv`)
//! or with other keys (`Decode_Field_As`, `Types`, …) is refused at startup, naming the
//! parser's `file:line` and the fix; parsers no filter uses are never looked at, so Fluent Bit's
//! full `parsers.conf` loads fine.

use super::json_msgpack::json_to_msgpack;
use super::record::{RawRecord, str_only};
use super::time_parse::TimeFormat;
use crate::config::classic::{Origin, Parser as ClassicParser, Section};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// Parsers files given on the command line (`-R`), available to every parser filter.
static COMMAND_LINE_FILES: RwLock<Vec<PathBuf>> = RwLock::new(Vec::new());

/// Make the `-R` files of the command line available to every parser filter (call before the
/// config is loaded; reloads see them too).
pub fn set_command_line_files(files: &[PathBuf]) {
    *COMMAND_LINE_FILES
        .write()
        .unwrap_or_else(|e| e.into_inner()) = files.to_vec();
}

/// The `-R` files of the command line.
pub fn command_line_files() -> Vec<PathBuf> {
    COMMAND_LINE_FILES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

const BUILT_IN: &str = "[PARSER]\n    Name   json\n    Format json\n    Time_Key time\n    Time_Format %d/%b/%Y:%H:%M:%S %z\n\n[PARSER]\n    Name         docker\n    Format       json\n    Time_Key     time\n    Time_Format  %Y-%m-%dT%H:%M:%S.%L\n    Time_Keep    On\n";

/// The keys a natively run (`Format json`) parser may have.
const JSON_KEYS: [&str; 9] = [
    "name",
    "format",
    "time_key",
    "time_format",
    "time_keep",
    "time_offset",
    "time_strict",
    "skip_empty_values",
    "regex",
];

/// Every `[PARSER]` known to a filter.
pub struct ParserCatalog {
    sections: Vec<Section>,
    files: Vec<PathBuf>,
    unreadable: Vec<String>,
}

impl ParserCatalog {
    /// The built-in parsers and those of `files` (later definitions win). A file that cannot be
    /// read is noted and only reported if a parser is then missing; a file that does not parse
    /// is an error naming its line.
    pub fn load(files: &[PathBuf]) -> Result<ParserCatalog, String> {
        let env = |name: &str| std::env::var(name).ok();
        let mut sections = ClassicParser::new(&env)
            .parse_text(BUILT_IN, Path::new("<built-in parsers>"))
            .map_err(|e| e.to_string())?;
        let mut unreadable = Vec::new();
        for file in files {
            if let Err(e) = std::fs::metadata(file) {
                unreadable.push(format!("{}: {e}", file.display()));
                continue;
            }
            let parsed = if crate::config::yaml::is_yaml(file) {
                crate::config::yaml::parse_file(file, &env)
            } else {
                ClassicParser::new(&env).parse_file(file)
            }
            .map_err(|e| format!("parsers file {}: {e}", file.display()))?;
            sections.extend(parsed);
        }
        sections.retain(|s| s.kind == "PARSER");
        Ok(ParserCatalog {
            sections,
            files: files.to_vec(),
            unreadable,
        })
    }

    /// The runnable parser called `name` (case-sensitive, as in Fluent Bit).
    pub fn resolve(&self, name: &str) -> Result<JsonParser, String> {
        let Some(section) = self
            .sections
            .iter()
            .rev()
            .find(|s| s.get("name").is_some_and(|e| e.value == name))
        else {
            let files = if self.files.is_empty() {
                "no parsers file was given".to_string()
            } else {
                format!(
                    "parsers files: {}",
                    self.files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let unreadable = if self.unreadable.is_empty() {
                String::new()
            } else {
                format!(" (could not read {})", self.unreadable.join("; "))
            };
            return Err(format!(
                "parser `{name}` is not defined: not built in (json, docker) and not in the {files}{unreadable}; define it in a [PARSER] section of a file passed with `-R <file>` or `[SERVICE] Parsers_File`"
            ));
        };
        JsonParser::from_section(name, section)
    }
}

/// A `Format json` parser, ready to run.
#[derive(Debug)]
pub struct JsonParser {
    name: String,
    time_key: Vec<u8>,
    time_format: Option<TimeFormat>,
    time_keep: bool,
}

/// What [`JsonParser::parse`] made of a text.
#[derive(Debug, PartialEq, Eq)]
pub struct ParsedRecord {
    /// The parsed object as a msgpack map.
    pub body: Vec<u8>,
    /// The time read from `Time_Key`, when the parser has a `Time_Format` and it fit.
    pub time_ns: Option<u64>,
    /// The time field was there but did not fit `Time_Format` (it is kept in the record).
    pub invalid_time: bool,
}

fn at_origin(origin: &Origin) -> String {
    if origin.file == Path::new("<built-in parsers>") {
        "built-in parser".to_string()
    } else {
        origin.to_string()
    }
}

impl JsonParser {
    fn from_section(name: &str, s: &Section) -> Result<JsonParser, String> {
        let where_ = at_origin(&s.origin);
        let format = s.get("format").map(|e| e.value.to_ascii_lowercase());
        match format.as_deref() {
            Some("json") => {}
            Some(other) => {
                return Err(format!(
                    "{where_}: parser `{name}` has `Format {other}`; only `Format json` runs natively — parse {other} lines with a WASM filter (see {}, plugins/parse-json is a starting point)",
                    crate::config::DOCS_WASM_FILTERS
                ));
            }
            None => {
                return Err(format!(
                    "{where_}: parser `{name}` has no `Format`; add `Format json`"
                ));
            }
        }
        if let Some(e) = s
            .entries
            .iter()
            .find(|e| !JSON_KEYS.contains(&e.key.as_str()))
        {
            return Err(format!(
                "{}: `{}` of parser `{name}` is not supported; remove it, or do this step in a WASM filter (see {})",
                at_origin(&e.origin),
                e.key,
                crate::config::DOCS_WASM_FILTERS
            ));
        }
        let time_offset = s.get("time_offset").map(|e| e.value.as_str());
        let time_format = match s.get("time_format") {
            None => None,
            Some(e) => Some(
                TimeFormat::new(&e.value, time_offset)
                    .map_err(|m| format!("{}: parser `{name}`: {m}", at_origin(&e.origin)))?,
            ),
        };
        let time_keep = match s.get("time_keep") {
            None => false,
            Some(e) => match e.value.to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" | "1" => true,
                "off" | "false" | "no" | "0" => false,
                v => {
                    return Err(format!(
                        "{}: Time_Keep {v:?} of parser `{name}` is not On/Off",
                        at_origin(&e.origin)
                    ));
                }
            },
        };
        Ok(JsonParser {
            name: name.to_string(),
            time_key: s
                .get("time_key")
                .map_or(b"time".to_vec(), |e| e.value.as_bytes().to_vec()),
            time_format,
            time_keep,
        })
    }

    /// The parser's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Parse `text`: `None` unless it is one JSON object (Fluent Bit's json parser refuses
    /// arrays, scalars and trailing text too).
    pub fn parse(&self, text: &[u8]) -> Option<ParsedRecord> {
        let body = json_to_msgpack(text).ok()?;
        if !matches!(body.first(), Some(0x80..=0x8f | 0xde | 0xdf)) {
            return None;
        }
        let Some(format) = &self.time_format else {
            return Some(ParsedRecord {
                body,
                time_ns: None,
                invalid_time: false,
            });
        };
        let (time_ns, invalid_time, without_time) = {
            let record = RawRecord::parse(&body)?;
            let time_text = record
                .position(&self.time_key)
                .and_then(|at| Some((at, str_only(&record.entries[at].1)?)));
            match time_text {
                None => (None, false, None),
                Some((at, text)) => match format.parse(text) {
                    None => (None, true, None),
                    Some(ns) if self.time_keep => (Some(ns), false, None),
                    Some(ns) => {
                        let mut rest = record.clone();
                        rest.entries.remove(at);
                        (Some(ns), false, Some(rest.encode()))
                    }
                },
            }
        };
        Some(ParsedRecord {
            body: without_time.unwrap_or(body),
            time_ns,
            invalid_time,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::record::tests::json;

    fn catalog(text: &str) -> (tempfile::TempDir, ParserCatalog) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("parsers.conf");
        std::fs::write(&file, text).unwrap();
        let c = ParserCatalog::load(&[file]).unwrap();
        (dir, c)
    }

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn built_in_json_and_docker_parse_as_fluent_bit_does() {
        let c = ParserCatalog::load(&[]).unwrap();
        let json_parser = c.resolve("json").unwrap();
        let p = json_parser
            .parse(br#"{"time":"10/Oct/2000:13:55:36 -0700","msg":"hi"}"#)
            .unwrap();
        assert_eq!(p.time_ns, Some(971_211_336 * SEC));
        assert_eq!(json(&p.body), r#"{"msg":"hi"}"#);
        // An ISO time does not fit json's format: kept, time untouched.
        let p = json_parser
            .parse(br#"{"time":"2024-01-01T00:00:00Z","msg":"hi"}"#)
            .unwrap();
        assert!(p.invalid_time && p.time_ns.is_none());
        assert_eq!(
            json(&p.body),
            r#"{"time":"2024-01-01T00:00:00Z","msg":"hi"}"#
        );
        let docker = c.resolve("docker").unwrap();
        let p = docker
            .parse(br#"{"log":"x","time":"2024-01-01T00:00:00.25"}"#)
            .unwrap();
        assert_eq!(p.time_ns, Some(1_704_067_200 * SEC + 250_000_000));
        assert_eq!(
            json(&p.body),
            r#"{"log":"x","time":"2024-01-01T00:00:00.25"}"#
        );
        assert_eq!(json_parser.parse(b"[1,2]"), None);
        assert_eq!(json_parser.parse(b"not json"), None);
        assert_eq!(json_parser.parse(b"{\"a\":1} trailing"), None);
    }

    #[test]
    fn file_parsers_override_built_ins_and_other_formats_are_refused_where_defined() {
        let (_dir, c) = catalog(
            "[PARSER]\n    Name json\n    Format json\n\n[PARSER]\n    Name apache\n    Format regex\n    Regex ^(?<host>[^ ]*)\n\n[PARSER]\n    Name typed\n    Format json\n    Types a:integer\n\n[MULTILINE_PARSER]\n    name ml\n    type regex\n",
        );
        let p = c
            .resolve("json")
            .unwrap()
            .parse(br#"{"time":"x"}"#)
            .unwrap();
        assert_eq!(
            json(&p.body),
            r#"{"time":"x"}"#,
            "no Time_Format: untouched"
        );
        let e = c.resolve("apache").unwrap_err();
        assert!(
            e.contains("parsers.conf:5") && e.contains("Format regex") && e.contains("WASM filter"),
            "{e}"
        );
        let e = c.resolve("typed").unwrap_err();
        assert!(
            e.contains("parsers.conf:13") && e.contains("`types`"),
            "{e}"
        );
        let e = c.resolve("nope").unwrap_err();
        assert!(
            e.contains("`nope` is not defined") && e.contains("-R"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_parsers_file_is_reported_only_when_a_parser_is_missing() {
        let c = ParserCatalog::load(&[PathBuf::from("/nonexistent/parsers.conf")]).unwrap();
        assert!(c.resolve("json").is_ok());
        let e = c.resolve("custom").unwrap_err();
        assert!(
            e.contains("could not read /nonexistent/parsers.conf"),
            "{e}"
        );
    }

    #[test]
    fn time_keep_and_offset() {
        let (_dir, c) = catalog(
            "[PARSER]\n    Name local\n    Format json\n    Time_Key ts\n    Time_Format %Y-%m-%d %H:%M:%S\n    Time_Offset -0100\n    Time_Keep On\n",
        );
        let p = c
            .resolve("local")
            .unwrap()
            .parse(br#"{"ts":"2024-01-01 00:00:00"}"#)
            .unwrap();
        assert_eq!(p.time_ns, Some((1_704_067_200 + 3600) * SEC));
        assert_eq!(json(&p.body), r#"{"ts":"2024-01-01 00:00:00"}"#);
    }
}
