//! Parser definitions: Fluent Bit `[PARSER]` sections from parsers files (`-R <file>`,
//! `[SERVICE] Parsers_File`, or a filter's `parsers_files`), plus the two definitions of Fluent
//! Bit's own `parsers.conf` that FireLens configs rely on, built in: `json` (`Time_Key time`,
//! `Time_Format %d/%b/%Y:%H:%M:%S %z`) and `docker` (`Time_Format %Y-%m-%dT%H:%M:%S.%L`,
//! `Time_Keep On` and its `Decode_Field_As` rules). A file's definition replaces a built-in one
//! of the same name. [`ParserCatalog::resolve`] gives a runnable [`Parser`], for the `parser`
//! filter and for inputs that parse lines.
//!
//! Every format of Fluent Bit runs: `json`, `regex` ([`regex`]: named groups, Onigmo syntax),
//! `logfmt` ([`logfmt`]) and `ltsv` ([`ltsv`]), with `Types` and `Decode_Field(_As)`
//! ([`decode`]), `Skip_Empty_Values` (regex; default On) and `Logfmt_No_Bare_Keys`. `Types`
//! applies to regex, logfmt and ltsv values (Fluent Bit ignores it for json).
//!
//! Time keys apply to every format: `Time_Key` (default `time`) is read with `Time_Format`
//! ([`crate::time::parse`]; a format without a year takes the current one, as Fluent Bit does).
//! Text after the format is ignored, as `strptime` does (Docker's `…T00:00:00.123Z` fits
//! `%Y-%m-%dT%H:%M:%S.%L`); `Time_Strict Off` takes as much of the format as fits. Zone-less
//! times are UTC shifted by `Time_Offset`, or in the system zone (`Time_System_Timezone On`:
//! `TZ`, `/etc/localtime`) or an IANA one (`Time_Zone`). `Time_Keep On` keeps the field. A time
//! that does not fit is handled per format as in Fluent Bit: json keeps the field and the
//! event's time, regex drops the field and keeps the event's time (both flagged
//! [`ParsedRecord::invalid_time`]), logfmt and ltsv fail the line.
//!
//! A parser with a mistake is refused when something names it, at its `file:line`; parsers
//! nothing uses are never looked at.

pub mod decode;
pub mod logfmt;
pub mod ltsv;
pub mod regex;

use crate::config::classic::{Entry, Origin, Section};
use crate::config::parsers_files::Definitions;
use crate::event::json_msgpack::json_to_msgpack;
use crate::event::record::{RawRecord, encode_str, str_only, write_map_len};
use crate::time::parse::TimeFormat;
use decode::{Decoders, Types};
use std::borrow::Cow;
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

const BUILT_IN: &str = "[PARSER]\n    Name   json\n    Format json\n    Time_Key time\n    Time_Format %d/%b/%Y:%H:%M:%S %z\n\n[PARSER]\n    Name         docker\n    Format       json\n    Time_Key     time\n    Time_Format  %Y-%m-%dT%H:%M:%S.%L\n    Time_Keep    On\n    Decode_Field_As   escaped_utf8   log   do_next\n    Decode_Field_As   escaped        log\n    Decode_Field_As   escaped        stream\n";

/// The keys a `[PARSER]` may have.
const KEYS: [&str; 15] = [
    "name",
    "format",
    "regex",
    "time_key",
    "time_format",
    "time_offset",
    "time_keep",
    "time_strict",
    "time_system_timezone",
    "time_zone",
    "skip_empty_values",
    "logfmt_no_bare_keys",
    "types",
    "decode_field",
    "decode_field_as",
];

/// Every `[PARSER]` known to a filter or input.
pub struct ParserCatalog {
    definitions: Definitions,
}

impl ParserCatalog {
    /// The built-in parsers and those of `files` (classic, or YAML with `parsers:`; later
    /// definitions win). A file that cannot be read is noted and only reported if a parser is
    /// then missing; a file that does not parse is an error naming its line.
    pub fn load(files: &[PathBuf]) -> Result<ParserCatalog, String> {
        Ok(ParserCatalog {
            definitions: Definitions::load("PARSER", BUILT_IN, files)?,
        })
    }

    /// The names of the parsers defined, in definition order (built-ins first).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.definitions.names()
    }

    /// The runnable parser called `name` (case-sensitive, as in Fluent Bit).
    pub fn resolve(&self, name: &str) -> Result<Parser, String> {
        let Some(section) = self.definitions.get(name) else {
            return Err(format!(
                "parser `{name}` is not defined: not built in (json, docker), {}; define it in a [PARSER] section of a file passed with `-R <file>` or `[SERVICE] Parsers_File`",
                self.definitions.looked_in()
            ));
        };
        Parser::from_section(name, section)
    }
}

/// A parser, ready to run on one text.
#[derive(Clone, Debug)]
pub struct Parser {
    name: String,
    format: Format,
    time: Option<TimeRule>,
    types: Types,
    decoders: Decoders,
}

#[derive(Clone, Debug)]
enum Format {
    Json,
    Regex {
        pattern: regex::Pattern,
        skip_empty: bool,
    },
    Logfmt {
        no_bare_keys: bool,
    },
    Ltsv,
}

/// A value found by a text format: text, or `true` for a logfmt key without a value.
#[derive(Debug, PartialEq, Eq)]
pub enum Value<'t> {
    Text(Cow<'t, [u8]>),
    True,
}

/// What [`Parser::parse`] made of a text.
#[derive(Debug, PartialEq, Eq)]
pub struct ParsedRecord {
    /// The parsed fields as a msgpack map.
    pub body: Vec<u8>,
    /// The time read from `Time_Key`, when the parser has a `Time_Format` and it fit.
    pub time_ns: Option<u64>,
    /// The time field was there but did not fit `Time_Format`.
    pub invalid_time: bool,
}

/// `Time_Key` with `Time_Format` and the keys that go with them.
#[derive(Clone, Debug)]
struct TimeRule {
    key: Vec<u8>,
    format: TimeFormat,
    /// The format has no year: the current one is put in front (`%Y ` + format).
    add_year: bool,
    /// The zone of zone-less times, when not UTC + `Time_Offset` (its current year too).
    zone: Option<jiff::tz::TimeZone>,
    keep: bool,
    strict: bool,
}

impl TimeRule {
    fn parse(&self, text: &[u8]) -> Option<u64> {
        let with_year;
        let text = if self.add_year {
            let year = jiff::Timestamp::now()
                .to_zoned(self.zone.clone().unwrap_or(jiff::tz::TimeZone::UTC))
                .year();
            with_year = [format!("{year} ").as_bytes(), text].concat();
            &with_year[..]
        } else {
            text
        };
        if self.strict {
            self.format.parse_prefix(text)
        } else {
            self.format.parse_partial(text)
        }
    }
}

/// What a text format does when the time field does not fit (Fluent Bit differs per format).
#[derive(Clone, Copy, PartialEq, Eq)]
enum BadTime {
    /// regex: the field is left out, the event keeps its time.
    DropField,
    /// logfmt, ltsv: the line does not parse.
    Fail,
}

fn at_origin(origin: &Origin) -> String {
    if origin.file == Path::new("<built-in parsers>") {
        "built-in parser".to_string()
    } else {
        origin.to_string()
    }
}

fn on_off(e: &Entry, name: &str) -> Result<bool, String> {
    match e.value.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        v => Err(format!(
            "{}: {} {v:?} of parser `{name}` is not On/Off",
            at_origin(&e.origin),
            e.key
        )),
    }
}

/// The zone of zone-less times: `Time_Zone NAME` (an IANA name), or the system's with
/// `Time_System_Timezone On`; `None` for UTC shifted by `Time_Offset`.
fn local_zone(s: &Section, name: &str, system: bool) -> Result<Option<jiff::tz::TimeZone>, String> {
    let Some(e) = s.get("time_zone") else {
        return Ok(system.then(jiff::tz::TimeZone::system));
    };
    let conflict = if s.get("time_format").is_none() {
        Some("needs a `Time_Format`")
    } else if system {
        Some("cannot be combined with `Time_System_Timezone On`; keep one")
    } else if s.get("time_offset").is_some() {
        Some("cannot be combined with `Time_Offset`; keep one")
    } else {
        None
    };
    let at = at_origin(&e.origin);
    if let Some(why) = conflict {
        return Err(format!("{at}: parser `{name}`: `Time_Zone` {why}"));
    }
    jiff::tz::TimeZone::get(&e.value).map(Some).map_err(|err| {
        format!(
            "{at}: parser `{name}`: Time_Zone `{}` is not a known time zone ({err}); use an IANA name such as `Europe/Paris`",
            e.value
        )
    })
}

impl Parser {
    fn from_section(name: &str, s: &Section) -> Result<Parser, String> {
        let where_ = at_origin(&s.origin);
        let here = |e: &Entry, m: String| format!("{}: parser `{name}`: {m}", at_origin(&e.origin));
        if let Some(e) = s.entries.iter().find(|e| !KEYS.contains(&e.key.as_str())) {
            return Err(here(
                e,
                format!(
                    "`{}` is not a parser key; remove it (keys: Name, Format, Regex, Time_Key, Time_Format, Time_Offset, Time_Keep, Time_Strict, Time_System_Timezone, Time_Zone, Skip_Empty_Values, Logfmt_No_Bare_Keys, Types, Decode_Field, Decode_Field_As)",
                    e.key
                ),
            ));
        }
        let flag = |key: &str, default: bool| match s.get(key) {
            None => Ok(default),
            Some(e) => on_off(e, name),
        };
        let format = match s.get("format") {
            None => {
                return Err(format!(
                    "{where_}: parser `{name}` has no `Format`; add one of `Format json`, `Format regex`, `Format logfmt`, `Format ltsv`"
                ));
            }
            Some(e) => match e.value.to_ascii_lowercase().as_str() {
                "json" => Format::Json,
                "regex" => {
                    let Some(r) = s.get("regex") else {
                        return Err(here(
                            e,
                            "`Format regex` needs a `Regex` with named groups, e.g. `Regex ^(?<level>\\w+) (?<message>.*)$`".into(),
                        ));
                    };
                    Format::Regex {
                        pattern: regex::Pattern::new(&r.value).map_err(|m| here(r, m))?,
                        skip_empty: flag("skip_empty_values", true)?,
                    }
                }
                "logfmt" => Format::Logfmt {
                    no_bare_keys: flag("logfmt_no_bare_keys", false)?,
                },
                "ltsv" => Format::Ltsv,
                other => {
                    return Err(here(
                        e,
                        format!(
                            "`Format {other}` is not a format; use json, regex, logfmt or ltsv"
                        ),
                    ));
                }
            },
        };
        let zone = local_zone(s, name, flag("time_system_timezone", false)?)?;
        let time = match s.get("time_format") {
            None => None,
            Some(e) => {
                // The system zone or Time_Zone replace Time_Offset (Fluent Bit ignores the
                // offset with the system zone and refuses it with Time_Zone, see local_zone).
                let offset = s
                    .get("time_offset")
                    .filter(|_| zone.is_none())
                    .map(|o| o.value.as_str());
                let f = e.value.as_str();
                let add_year = !(f.contains("%Y") || f.contains("%y") || f.contains("%s"));
                let full = if add_year {
                    format!("%Y {f}")
                } else {
                    f.to_string()
                };
                let mut format = TimeFormat::new(&full, offset).map_err(|m| here(e, m))?;
                if let Some(zone) = &zone {
                    format = format.in_zone(zone.clone());
                }
                Some(TimeRule {
                    key: s
                        .get("time_key")
                        .map_or(b"time".to_vec(), |k| k.value.as_bytes().to_vec()),
                    format,
                    add_year,
                    zone,
                    keep: flag("time_keep", false)?,
                    strict: flag("time_strict", true)?,
                })
            }
        };
        let types = match s.get("types") {
            None => Types::default(),
            Some(e) => Types::from_entry(e).map_err(|m| here(e, m))?,
        };
        let decoders = Decoders::from_section(s).map_err(|(e, m)| here(&e, m))?;
        Ok(Parser {
            name: name.to_string(),
            format,
            time,
            types,
            decoders,
        })
    }

    /// The parser's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Parse `text`: `None` when it is not of the parser's format (json: not one JSON object;
    /// regex: no match; logfmt, ltsv: no field, or a time that does not fit).
    pub fn parse(&self, text: &[u8]) -> Option<ParsedRecord> {
        match &self.format {
            Format::Json => self.parse_json(text),
            Format::Regex {
                pattern,
                skip_empty,
            } => {
                let fields = pattern.fields(text)?.into_iter().filter_map(|(k, v)| {
                    (!(v.is_empty() && *skip_empty))
                        .then_some((k.as_bytes(), Value::Text(Cow::Borrowed(v))))
                });
                self.finish(fields, BadTime::DropField)
            }
            Format::Logfmt { no_bare_keys } => {
                let fields = logfmt::fields(text, *no_bare_keys)?;
                self.finish(fields.into_iter(), BadTime::Fail)
            }
            Format::Ltsv => {
                let fields = ltsv::fields(text)
                    .into_iter()
                    .map(|(k, v)| (k, Value::Text(Cow::Borrowed(v))));
                self.finish(fields, BadTime::Fail)
            }
        }
    }

    /// The record of a text format's fields: time, types, then decoders.
    fn finish<'t>(
        &self,
        fields: impl Iterator<Item = (&'t [u8], Value<'t>)>,
        bad_time: BadTime,
    ) -> Option<ParsedRecord> {
        let mut entries: Vec<u8> = Vec::new();
        let mut count = 0;
        let mut time_ns = None;
        let mut invalid_time = false;
        for (key, value) in fields {
            if let (Some(rule), Value::Text(text)) = (&self.time, &value)
                && key == rule.key.as_slice()
                && !(text.is_empty() && bad_time == BadTime::Fail)
            {
                match rule.parse(text) {
                    Some(ns) => {
                        time_ns = Some(ns);
                        if !rule.keep {
                            continue;
                        }
                    }
                    None if bad_time == BadTime::Fail => return None,
                    None => {
                        invalid_time = true;
                        continue;
                    }
                }
            }
            entries.extend(encode_str(key));
            match value {
                Value::Text(text) => entries.extend(self.types.value(key, &text)),
                Value::True => {
                    let _ = rmp::encode::write_bool(&mut entries, true);
                }
            }
            count += 1;
        }
        if count == 0 && bad_time == BadTime::Fail {
            return None;
        }
        let mut body = Vec::with_capacity(entries.len() + 5);
        write_map_len(&mut body, count);
        body.extend(entries);
        if !self.decoders.is_empty() {
            body = self.decoders.apply(body);
        }
        Some(ParsedRecord {
            body,
            time_ns,
            invalid_time,
        })
    }

    /// `Format json`: one JSON object (Fluent Bit's json parser refuses arrays, scalars and
    /// trailing text too); decoders, then the time field.
    fn parse_json(&self, text: &[u8]) -> Option<ParsedRecord> {
        let mut body = json_to_msgpack(text).ok()?;
        if !matches!(body.first(), Some(0x80..=0x8f | 0xde | 0xdf)) {
            return None;
        }
        if !self.decoders.is_empty() {
            body = self.decoders.apply(body);
        }
        let Some(rule) = &self.time else {
            return Some(ParsedRecord {
                body,
                time_ns: None,
                invalid_time: false,
            });
        };
        let (time_ns, invalid_time, without_time) = {
            let record = RawRecord::parse(&body)?;
            let time_text = record
                .position(&rule.key)
                .and_then(|at| Some((at, str_only(&record.entries[at].1)?)));
            match time_text {
                None => (None, false, None),
                Some((at, text)) => match rule.parse(text) {
                    None => (None, true, None),
                    Some(ns) if rule.keep => (Some(ns), false, None),
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
    use crate::event::record::tests::json;
    use crate::time::calendar::civil_from_days;

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
    fn file_parsers_override_built_ins_and_mistakes_are_refused_where_written() {
        let (_dir, c) = catalog(
            "[PARSER]\n    Name json\n    Format json\n\n[PARSER]\n    Name bad_regex\n    Format regex\n    Regex ^(?<a>x\n\n[PARSER]\n    Name typed\n    Format logfmt\n    Types a:number\n\n[PARSER]\n    Name odd\n    Format csv\n\n[PARSER]\n    Name zoned\n    Format json\n    Time_Format %H\n    Time_Zone Mars/Olympus\n\n[PARSER]\n    Name noregex\n    Format regex\n\n[MULTILINE_PARSER]\n    name ml\n    type regex\n",
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
        let e = c.resolve("bad_regex").unwrap_err();
        assert!(
            e.starts_with(&format!(
                "{}:8: parser `bad_regex`: Regex",
                _dir.path().join("parsers.conf").display()
            )),
            "{e}"
        );
        let e = c.resolve("typed").unwrap_err();
        assert!(
            e.contains("parsers.conf:13") && e.contains("`number` is not a type"),
            "{e}"
        );
        let e = c.resolve("odd").unwrap_err();
        assert!(
            e.contains("parsers.conf:17") && e.contains("`Format csv`"),
            "{e}"
        );
        let e = c.resolve("zoned").unwrap_err();
        assert!(
            e.contains("parsers.conf:23") && e.contains("`Mars/Olympus` is not a known time zone"),
            "{e}"
        );
        let e = c.resolve("noregex").unwrap_err();
        assert!(
            e.contains("parsers.conf:27") && e.contains("needs a `Regex`"),
            "{e}"
        );
        let e = c.resolve("nope").unwrap_err();
        assert!(
            e.contains("`nope` is not defined") && e.contains("-R"),
            "{e}"
        );
    }

    #[test]
    fn yaml_files_define_parsers_inline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fluent-bit.yaml");
        std::fs::write(
            &file,
            "parsers:\n  - name: kv\n    format: logfmt\n    types: n:integer\n  - name: bad\n    format: regex\n    regex: '(?<a>\\X)'\n",
        )
        .unwrap();
        let c = ParserCatalog::load(std::slice::from_ref(&file)).unwrap();
        let p = c.resolve("kv").unwrap().parse(b"n=5 ok").unwrap();
        assert_eq!(json(&p.body), r#"{"n":5,"ok":true}"#);
        let e = c.resolve("bad").unwrap_err();
        assert!(e.contains("fluent-bit.yaml:7: parser `bad`: Regex"), "{e}");
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
    fn time_zone_and_the_system_zone() {
        let (_dir, c) = catalog(
            "[PARSER]\n    Name tokyo\n    Format json\n    Time_Format %Y-%m-%d %H:%M:%S\n    Time_Zone Asia/Tokyo\n\n[PARSER]\n    Name local\n    Format json\n    Time_Format %Y-%m-%d %H:%M:%S\n    Time_Offset +0500\n    Time_System_Timezone On\n\n[PARSER]\n    Name both\n    Format json\n    Time_Format %H\n    Time_Offset +0100\n    Time_Zone UTC\n",
        );
        let line = br#"{"time":"2024-01-01 09:00:00"}"#;
        let p = c.resolve("tokyo").unwrap().parse(line).unwrap();
        assert_eq!(p.time_ns, Some(1_704_067_200 * SEC));
        // The system zone wins over Time_Offset, as in Fluent Bit.
        let p = c.resolve("local").unwrap().parse(line).unwrap();
        let dt = jiff::civil::date(2024, 1, 1).at(9, 0, 0, 0);
        let expected = jiff::tz::TimeZone::system()
            .to_ambiguous_timestamp(dt)
            .compatible()
            .unwrap()
            .as_second();
        assert_eq!(p.time_ns, Some(expected as u64 * SEC));
        let e = c.resolve("both").unwrap_err();
        assert!(
            e.contains("parsers.conf:19") && e.contains("cannot be combined with `Time_Offset`"),
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

    #[test]
    fn regex_fields_types_time_and_skip_empty() {
        let (_dir, c) = catalog(
            "[PARSER]\n    Name app\n    Format regex\n    Regex ^(?<time>[^ ]+) (?<level>\\w+)(?: pid=(?<pid>\\d+))? (?<took>\\S+) (?<ok>\\w+) (?<message>.*)$\n    Time_Key time\n    Time_Format %Y-%m-%dT%H:%M:%S%z\n    Types pid:integer took:float ok:bool\n\n[PARSER]\n    Name keep_empty\n    Format regex\n    Regex ^(?<a>\\w*),(?<b>\\w*)$\n    Skip_Empty_Values Off\n",
        );
        let app = c.resolve("app").unwrap();
        let p = app
            .parse(b"2024-01-01T00:00:00Z info pid=12 0.5 true hello world")
            .unwrap();
        assert_eq!(p.time_ns, Some(1_704_067_200 * SEC));
        assert_eq!(
            json(&p.body),
            r#"{"level":"info","pid":12,"took":0.5,"ok":true,"message":"hello world"}"#
        );
        let p = app.parse(b"2024-01-01T00:00:00Z info 1 no x").unwrap();
        assert_eq!(
            json(&p.body),
            r#"{"level":"info","took":1.0,"ok":"no","message":"x"}"#,
            "an empty group is skipped; a non-bool stays text"
        );
        // A time that does not fit: the field is dropped and flagged, as Fluent Bit does.
        let p = app.parse(b"yesterday info 1 true x").unwrap();
        assert!(p.invalid_time && p.time_ns.is_none());
        assert_eq!(
            json(&p.body),
            r#"{"level":"info","took":1.0,"ok":true,"message":"x"}"#
        );
        assert_eq!(app.parse(b"no match"), None);
        let p = c.resolve("keep_empty").unwrap().parse(b",x").unwrap();
        assert_eq!(json(&p.body), r#"{"a":"","b":"x"}"#);
    }

    #[test]
    fn logfmt_and_ltsv_with_time_keys() {
        let (_dir, c) = catalog(
            "[PARSER]\n    Name lf\n    Format logfmt\n    Time_Key ts\n    Time_Format %Y-%m-%d %H:%M:%S\n    Time_Offset +0100\n    Types n:integer\n\n[PARSER]\n    Name lf_strict\n    Format logfmt\n    Logfmt_No_Bare_Keys On\n\n[PARSER]\n    Name lt\n    Format ltsv\n    Time_Key time\n    Time_Format [%d/%b/%Y:%H:%M:%S %z]\n    Time_Keep On\n",
        );
        let lf = c.resolve("lf").unwrap();
        let p = lf
            .parse(br#"ts="2024-01-01 01:00:00" level=warn msg="disk \"full\"" n=3 debug"#)
            .unwrap();
        assert_eq!(p.time_ns, Some(1_704_067_200 * SEC));
        assert_eq!(
            json(&p.body),
            r#"{"level":"warn","msg":"disk \"full\"","n":3,"debug":true}"#
        );
        assert_eq!(
            lf.parse(br#"ts=never level=warn"#),
            None,
            "a bad time fails the line"
        );
        assert_eq!(lf.parse(b"   "), None, "no field");
        let strict = c.resolve("lf_strict").unwrap();
        assert_eq!(strict.parse(b"a=1 bare"), None);
        assert_eq!(json(&strict.parse(b"a=1").unwrap().body), r#"{"a":"1"}"#);
        let lt = c.resolve("lt").unwrap();
        let p = lt
            .parse(
                b"host:10.0.0.1\ttime:[10/Oct/2000:13:55:36 -0700]\treq:GET / HTTP/1.1\tstatus:200",
            )
            .unwrap();
        assert_eq!(p.time_ns, Some(971_211_336 * SEC));
        assert_eq!(
            json(&p.body),
            r#"{"host":"10.0.0.1","time":"[10/Oct/2000:13:55:36 -0700]","req":"GET / HTTP/1.1","status":"200"}"#
        );
        assert_eq!(lt.parse(b"time:[bad]\ta:1"), None);
        assert_eq!(lt.parse(b"not ltsv"), None);
    }

    #[test]
    fn time_strict_year_less_formats_and_json_decoders() {
        let (_dir, c) = catalog(
            "[PARSER]\n    Name loose\n    Format json\n    Time_Format %Y-%m-%d %H:%M:%S\n    Time_Strict Off\n\n[PARSER]\n    Name strict\n    Format json\n    Time_Format %Y-%m-%d %H:%M:%S\n\n[PARSER]\n    Name syslog\n    Format regex\n    Regex ^(?<time>\\w+ +\\d+ [\\d:]+) (?<msg>.*)$\n    Time_Format %b %d %H:%M:%S\n\n[PARSER]\n    Name nested\n    Format json\n    Decode_Field_As json payload\n",
        );
        let line = br#"{"time":"2024-01-01","a":1}"#;
        let p = c.resolve("loose").unwrap().parse(line).unwrap();
        assert_eq!(p.time_ns, Some(1_704_067_200 * SEC));
        assert_eq!(json(&p.body), r#"{"a":1}"#);
        let p = c.resolve("strict").unwrap().parse(line).unwrap();
        assert!(p.invalid_time);
        // A format without a year takes the current one (Fluent Bit's syslog parsers).
        let p = c
            .resolve("syslog")
            .unwrap()
            .parse(b"Jan  2 03:04:05 up")
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let (year, _, _) = civil_from_days(now / 86_400);
        let jan2 =
            crate::time::calendar::days_from_civil(year, 1, 2) * 86_400 + 3 * 3600 + 4 * 60 + 5;
        assert_eq!(p.time_ns, Some(jan2 as u64 * SEC));
        assert_eq!(json(&p.body), r#"{"msg":"up"}"#);
        let p = c
            .resolve("nested")
            .unwrap()
            .parse(br#"{"payload":"{\"k\":[1,2]}","x":true}"#)
            .unwrap();
        assert_eq!(json(&p.body), r#"{"payload":{"k":[1,2]},"x":true}"#);
    }

    /// A parser's name, a line of its format, the fields it yields (JSON) and its time in
    /// seconds (`None`: no time, or a year-less one checked apart).
    type Sample = (&'static str, &'static str, &'static str, Option<u64>);

    #[test]
    fn a_parser_can_be_shared_across_tasks() {
        fn shared<T: Send + Sync + Clone>() {}
        shared::<Parser>();
    }

    /// Samples for the parsers of the FireLens image's `parsers.conf`, in file order.
    fn stock_samples() -> Vec<Sample> {
        vec![
            (
                "apache",
                r#"192.168.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://example.com/start.html" "Mozilla/4.08""#,
                r#"{"host":"192.168.0.1","user":"frank","method":"GET","path":"/apache_pb.gif","code":"200","size":"2326","referer":"http://example.com/start.html","agent":"Mozilla/4.08"}"#,
                Some(971_211_336),
            ),
            (
                "apache2",
                r#"192.168.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "-" "Mozilla/4.08 (X11)""#,
                r#"{"host":"192.168.0.1","user":"-","method":"GET","path":"/apache_pb.gif","code":"200","size":"2326","referer":"-","agent":"Mozilla/4.08 (X11)"}"#,
                Some(971_211_336),
            ),
            (
                "apache_error",
                "[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied by server configuration: /export/home/live/ap/htdocs/test",
                r#"{"time":"Oct 11 14:32:52 2000","level":"error","client":"127.0.0.1","message":"client denied by server configuration: /export/home/live/ap/htdocs/test"}"#,
                None,
            ),
            (
                "nginx",
                r#"172.17.0.1 - - [10/Oct/2000:20:55:36 +0000] "POST /api/v1 HTTP/1.1" 201 15 "-" "curl/8.5.0""#,
                r#"{"remote":"172.17.0.1","host":"-","user":"-","method":"POST","path":"/api/v1","code":"201","size":"15","referer":"-","agent":"curl/8.5.0"}"#,
                Some(971_211_336),
            ),
            (
                "k8s-nginx-ingress",
                r#"10.1.0.5 - [10.1.0.5] - - [10/Oct/2000:20:55:36 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.29" 118 0.001 [default-web-80] 10.2.0.7:8080 2 0.001 200 3f2a9c"#,
                r#"{"host":"10.1.0.5","real_ip":"10.1.0.5","user":"-","method":"GET","path":"/healthz","code":"200","size":"2","referer":"-","agent":"kube-probe/1.29","request_length":"118","request_time":"0.001","proxy_upstream_name":"default-web-80","upstream_addr":"10.2.0.7:8080","upstream_response_length":"2","upstream_response_time":"0.001","upstream_status":"200","last":"3f2a9c"}"#,
                Some(971_211_336),
            ),
            (
                "json",
                r#"{"time":"10/Oct/2000:13:55:36 -0700","level":"info"}"#,
                r#"{"level":"info"}"#,
                Some(971_211_336),
            ),
            (
                "docker",
                r#"{"log":"say \\\"hi\\\"\\tnow\n","stream":"stdout","time":"2000-10-10T20:55:36.5Z"}"#,
                r#"{"log":"say \"hi\"\tnow\n","stream":"stdout","time":"2000-10-10T20:55:36.5Z"}"#,
                Some(971_211_336),
            ),
            (
                "docker-daemon",
                r#"time="2000-10-10T20:55:36.000000000Z" level=info msg="Loading containers: start.""#,
                r#"{"time":"2000-10-10T20:55:36.000000000Z","level":"info","msg":"Loading containers: start."}"#,
                Some(971_211_336),
            ),
            (
                "syslog-rfc5424",
                r#"<165>1 2000-10-10T20:55:36.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3"] An application event"#,
                r#"{"pri":"165","time":"2000-10-10T20:55:36.003Z","host":"mymachine.example.com","ident":"evntslog","pid":"-","msgid":"ID47","extradata":"[exampleSDID@32473 iut=\"3\"]","message":"An application event"}"#,
                Some(971_211_336),
            ),
            (
                "syslog-rfc3164-local",
                "<13>Oct 10 20:55:36 sshd[4242]: Accepted publickey",
                r#"{"pri":"13","time":"Oct 10 20:55:36","ident":"sshd","pid":"4242","message":"Accepted publickey"}"#,
                None,
            ),
            (
                "syslog-rfc3164",
                "<34>Oct  1 20:55:36 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
                r#"{"pri":"34","time":"Oct  1 20:55:36","host":"mymachine","ident":"su","message":"'su root' failed for lonvick on /dev/pts/8"}"#,
                None,
            ),
            (
                "mongodb",
                "2000-10-10T20:55:36.123+0000 I NETWORK  [listener] connection accepted from 127.0.0.1:53270 #1 (1 connection now open) 12ms",
                r#"{"time":"2000-10-10T20:55:36.123+0000","severity":"I","component":"NETWORK","context":"listener","message":"connection accepted from 127.0.0.1:53270 #1 (1 connection now open)","ms":"12"}"#,
                Some(971_211_336),
            ),
            (
                "cri",
                "2000-10-10T20:55:36.5+00:00 stderr F panic: boom",
                r#"{"stream":"stderr","logtag":"F","message":"panic: boom"}"#,
                Some(971_211_336),
            ),
            (
                "kube-custom",
                "kube.var.log.containers.web-7d4b9_default_nginx-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.log",
                r#"{"tag":"kube","pod_name":"var.log.containers.web-7d4b9","namespace_name":"default","container_name":"nginx","docker_id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}"#,
                None,
            ),
            (
                "filter-kube-test",
                "kube.web-1_default_app-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.log",
                r#"{"tag":"kube","pod_name":"web-1","namespace_name":"default","container_name":"app","docker_id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}"#,
                None,
            ),
        ]
    }

    /// Load `file` and check that its parsers are exactly those of `samples`, each parsing its
    /// line into its fields and time.
    fn check_samples(file: &str, samples: &[Sample]) -> ParserCatalog {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/parsers/testdata")
            .join(file);
        let c = ParserCatalog::load(&[file]).unwrap();
        let names: Vec<&str> = c.names().skip(2).collect();
        let tested: Vec<&str> = samples.iter().map(|s| s.0).collect();
        assert_eq!(names, tested, "every stock parser has a sample");
        for (name, line, fields, seconds) in samples {
            let parser = c.resolve(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            let p = parser
                .parse(line.as_bytes())
                .unwrap_or_else(|| panic!("{name} did not parse its sample"));
            assert_eq!(json(&p.body), *fields, "{name}");
            assert!(!p.invalid_time, "{name}");
            if let Some(s) = seconds {
                assert_eq!(p.time_ns.map(|ns| ns / SEC), Some(*s), "{name}");
            }
        }
        c
    }

    /// Every parser of Fluent Bit's stock `parsers.conf` (the FireLens image's copy) loads and
    /// parses a line of its format.
    #[test]
    fn fluent_bits_stock_parsers_conf() {
        let samples = stock_samples();
        let c = check_samples("fluent-bit-parsers.conf", &samples);
        // The year-less syslog times take the current year: checked by month and day only.
        for (name, line, month_day) in [
            ("syslog-rfc3164-local", samples[9].1, (10, 10)),
            ("syslog-rfc3164", samples[10].1, (10, 1)),
        ] {
            let ns = c
                .resolve(name)
                .unwrap()
                .parse(line.as_bytes())
                .unwrap()
                .time_ns
                .unwrap();
            let (_, m, d) = civil_from_days((ns / SEC / 86_400) as i64);
            assert_eq!((m, d), month_day, "{name}");
            assert_eq!(ns / SEC % 86_400, 20 * 3600 + 55 * 60 + 36, "{name}");
        }
    }

    /// The same for the newest upstream `parsers.conf`, which adds `logfmt`, `envoy`,
    /// `istio-envoy-proxy` and `kmsg-netfilter-log` and changes a few definitions.
    #[test]
    fn fluent_bits_upstream_parsers_conf() {
        let changed: Vec<Sample> = vec![
            (
                "k8s-nginx-ingress",
                r#"10.1.0.5 - - [10/Oct/2000:20:55:36 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.29" 118 0.001 [default-web-80] [] 10.2.0.7:8080 2 0.001 200 3f2a9c"#,
                r#"{"host":"10.1.0.5","user":"-","method":"GET","path":"/healthz","code":"200","size":"2","referer":"-","agent":"kube-probe/1.29","request_length":"118","request_time":"0.001","proxy_upstream_name":"default-web-80","upstream_addr":"10.2.0.7:8080","upstream_response_length":"2","upstream_response_time":"0.001","upstream_status":"200","reg_id":"3f2a9c"}"#,
                Some(971_211_336),
            ),
            (
                "logfmt",
                r#"level=info msg="started server" port=8080 tls"#,
                r#"{"level":"info","msg":"started server","port":"8080","tls":true}"#,
                None,
            ),
            (
                "envoy",
                r#"[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80""#,
                r#"{"start_time":"2016-04-15T20:17:00.310Z","method":"POST","path":"/api/v1/locations","protocol":"HTTP/2","code":"204","response_flags":"-","bytes_received":"154","bytes_sent":"0","duration":"226","x_envoy_upstream_service_time":"100","x_forwarded_for":"10.0.35.28","user_agent":"nsq2http","request_id":"cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2","authority":"locations","upstream_host":"tcp://10.0.2.1:80"}"#,
                Some(1_460_751_420),
            ),
            (
                "istio-envoy-proxy",
                r#"[2020-05-13T14:53:21.133Z] "GET /productpage HTTP/1.1" 200 - via_upstream - "-" 0 5183 43 41 "-" "curl/7.64" "2b5a2f2b-8f4e-4b77-8b21-0f2c7b3f1a1e" "productpage:9080" "10.1.2.3:9080" outbound|9080||productpage.default.svc.cluster.local 10.1.2.4:52000 10.0.0.5:9080 10.1.2.4:41234 - default"#,
                r#"{"start_time":"2020-05-13T14:53:21.133Z","method":"GET","path":"/productpage","protocol":"HTTP/1.1","response_code":"200","response_flags":"-","response_code_details":"via_upstream","connection_termination_details":"-","upstream_transport_failure_reason":"-","bytes_received":"0","bytes_sent":"5183","duration":"43","x_envoy_upstream_service_time":"41","x_forwarded_for":"-","user_agent":"curl/7.64","x_request_id":"2b5a2f2b-8f4e-4b77-8b21-0f2c7b3f1a1e","authority":"productpage:9080","upstream_host":"10.1.2.3:9080","upstream_cluster":"outbound|9080||productpage.default.svc.cluster.local","upstream_local_address":"10.1.2.4:52000","downstream_local_address":"10.0.0.5:9080","downstream_remote_address":"10.1.2.4:41234","requested_server_name":"-","route_name":"default"}"#,
                Some(1_589_381_601),
            ),
            (
                "cri",
                "2000-10-10T20:55:36.5+00:00 stderr F panic: boom",
                r#"{"time":"2000-10-10T20:55:36.5+00:00","stream":"stderr","logtag":"F","message":"panic: boom"}"#,
                Some(971_211_336),
            ),
            (
                "kmsg-netfilter-log",
                "<4>1 2000-10-10T20:55:36.000+00:00 myhost kernel - - - [12345.678] IPTABLES-DROP: IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=10.0.0.1 DST=10.0.0.2 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54321 DF PROTO=TCP SPT=12345 DPT=80 WINDOW=29200 RES=0x00 SYN URGP=0",
                r#"{"pri":"4","host":"myhost","logprefix":"IPTABLES-DROP:","in":"eth0","macsrc":"00:11:22:33:44:55","macdst":"66:77:88:99:aa:bb","ethtype":"08:00","saddr":"10.0.0.1","daddr":"10.0.0.2","len":"60","tos":"0x00","prec":"0x00","ttl":"64","id":"54321","proto":"TCP","sport":"12345","dport":"80","window":"29200","res":"0x00","flag":"SYN","urgp":"0"}"#,
                Some(971_211_336),
            ),
        ];
        let order = [
            "apache",
            "apache2",
            "apache_error",
            "nginx",
            "k8s-nginx-ingress",
            "json",
            "logfmt",
            "docker",
            "docker-daemon",
            "syslog-rfc5424",
            "syslog-rfc3164-local",
            "syslog-rfc3164",
            "mongodb",
            "envoy",
            "istio-envoy-proxy",
            "cri",
            "kube-custom",
            "kmsg-netfilter-log",
        ];
        let stock = stock_samples();
        let samples: Vec<Sample> = order
            .iter()
            .map(|name| {
                // Upstream's docker parser has no decoders: the escapes stay.
                let docker = (
                    "docker",
                    r#"{"log":"say \\\"hi\\\"","time":"2000-10-10T20:55:36.5Z"}"#,
                    r#"{"log":"say \\\"hi\\\"","time":"2000-10-10T20:55:36.5Z"}"#,
                    Some(971_211_336),
                );
                changed
                    .iter()
                    .chain(std::iter::once(&docker))
                    .chain(&stock)
                    .find(|s| s.0 == *name)
                    .copied()
                    .unwrap()
            })
            .collect();
        check_samples("fluent-bit-parsers-upstream.conf", &samples);
    }
}
