//! The built-in multiline parsers, as Fluent Bit defines them (`src/multiline/flb_ml_parser_*.c`):
//!
//! - `docker`: each line is Docker's JSON (`{"log": …, "stream": …, "time": …}`); a `log` that
//!   does not end with `\n` continues in the next line of the same `stream`.
//! - `cri`: each line is `time stream P|F text`; `P` continues, `F` ends the message, per stream.
//! - `go`, `python`, `java`, `ruby`: the `regex` rules of their stack traces and panics.
//!
//! All wait [`DEFAULT_FLUSH_TIMEOUT`] for a message's next line.

use super::rules::{RuleDef, Rules};
use super::{DEFAULT_FLUSH_TIMEOUT, Kind, MultilineParser, PreParser};
use crate::event::json_msgpack::json_to_msgpack;
use crate::time::parse::TimeFormat;
use regex::bytes::Regex;
use std::sync::{Arc, LazyLock};

/// The names of the built-in parsers.
pub const NAMES: [&str; 6] = ["docker", "cri", "go", "python", "java", "ruby"];

/// The built-in parser `name`, or `None`.
pub fn get(name: &str) -> Option<MultilineParser> {
    let rules = |defs: &[(&str, &str, &str)]| {
        let defs: Vec<RuleDef<'_>> = defs
            .iter()
            .map(|&(from_states, regex, next)| RuleDef {
                from_states,
                regex,
                next_state: Some(next),
            })
            .collect();
        Kind::Regex(Rules::new(&defs).expect("built-in rules compile"))
    };
    let (kind, key_content, key_pattern, key_group, pre_parser): (
        _,
        _,
        _,
        _,
        Option<Arc<dyn PreParser>>,
    ) = match name {
        "docker" => (
            Kind::EndsWith(b"\n".to_vec()),
            Some("log"),
            None,
            Some("stream"),
            Some(Arc::new(DockerJson)),
        ),
        "cri" => (
            Kind::Equal(b"F".to_vec()),
            Some("log"),
            Some("_p"),
            Some("stream"),
            Some(Arc::new(Cri)),
        ),
        "go" => (rules(GO), None, None, None, None),
        "python" => (rules(PYTHON), None, None, None, None),
        "java" => (rules(JAVA), None, None, None, None),
        "ruby" => (rules(RUBY), None, None, None, None),
        _ => return None,
    };
    Some(MultilineParser {
        name: name.to_string(),
        kind,
        negate: false,
        flush_timeout: DEFAULT_FLUSH_TIMEOUT,
        key_content: key_content.map(str::to_string),
        key_pattern: key_pattern.map(str::to_string),
        key_group: key_group.map(str::to_string),
        pre_parser,
    })
}

const GO: &[(&str, &str, &str)] = &[
    ("start_state", r"/\bpanic: /", "go_after_panic"),
    ("start_state", "/http: panic serving/", "go_goroutine"),
    ("go_after_panic", "/^$/", "go_goroutine"),
    (
        "go_after_panic, go_after_signal, go_frame_1",
        "/^$/",
        "go_goroutine",
    ),
    ("go_after_panic", r"/^\[signal /", "go_after_signal"),
    (
        "go_goroutine",
        r"/^goroutine \d+ \[[^\]]+\]:$/",
        "go_frame_1",
    ),
    (
        "go_frame_1",
        r"/^(?:[^\s.:]+\.)*[^\s.():]+\(|^created by /",
        "go_frame_2",
    ),
    ("go_frame_2", r"/^\s/", "go_frame_1"),
];

const PYTHON: &[(&str, &str, &str)] = &[
    (
        "start_state",
        r"/^Traceback \(most recent call last\):$/",
        "python",
    ),
    ("python", r"/^[\t ]+File /", "python_code"),
    ("python_code", r"/[^\t ]/", "python"),
    ("python", r"/^(?:[^\s.():]+\.)*[^\s.():]+:/", "start_state"),
];

const JAVA: &[(&str, &str, &str)] = &[
    (
        "start_state, java_start_exception",
        r"/(.)(?:Exception|Error|Throwable|V8 errors stack trace)[:\r\n]/",
        "java_after_exception",
    ),
    (
        "java_after_exception",
        r"/^[\t ]*nested exception is:[\t ]*/",
        "java_start_exception",
    ),
    (
        "java_after_exception",
        r"/^[\r\n]*$/",
        "java_after_exception",
    ),
    (
        "java_after_exception, java",
        r"/^[\t ]+(?:eval )?at /",
        "java",
    ),
    (
        "java_after_exception, java",
        r"/^[\t ]+--- End of inner exception stack trace ---$/",
        "java",
    ),
    (
        "java_after_exception, java",
        r"/^--- End of stack trace from previous location where exception was thrown ---$/",
        "java",
    ),
    (
        "java_after_exception, java",
        r"/^[\t ]*(?:Caused by|Suppressed):/",
        "java_after_exception",
    ),
    (
        "java_after_exception, java",
        r"/^[\t ]*... \d+ (?:more|common frames omitted)/",
        "java",
    ),
];

const RUBY: &[(&str, &str, &str)] = &[
    (
        "start_state, ruby_start_exception",
        r"/^.+:\d+:in\s+.*/",
        "ruby_after_exception",
    ),
    (
        "ruby_after_exception, ruby",
        r"/^\s+from\s+.*:\d+:in\s+.*/",
        "ruby",
    ),
];

/// Docker's JSON log lines; `time` is read and kept (Fluent Bit's `_ml_json_docker`).
#[derive(Debug)]
pub struct DockerJson;

static DOCKER_TIME: LazyLock<[TimeFormat; 2]> = LazyLock::new(|| {
    [
        TimeFormat::new("%Y-%m-%dT%H:%M:%S.%L%z", None).expect("valid"),
        TimeFormat::new("%Y-%m-%dT%H:%M:%S.%L", None).expect("valid"),
    ]
});

impl PreParser for DockerJson {
    fn parse(&self, text: &[u8]) -> Option<(Vec<u8>, Option<u64>)> {
        let body = json_to_msgpack(text).ok()?;
        if !matches!(body.first(), Some(0x80..=0x8f | 0xde | 0xdf)) {
            return None;
        }
        let time = crate::event::json::map_entries(&body)
            .ok()?
            .filter_map(Result::ok)
            .find(|(k, _)| crate::event::json::str_payload(k) == Some(b"time"))
            .and_then(|(_, v)| crate::event::json::str_payload(v))
            .and_then(|t| DOCKER_TIME.iter().find_map(|f| f.parse(t)));
        Some((body, time))
    }
}

/// CRI log lines: `time stream P|F text` → `time`, `stream`, `_p`, `log`; `time` is read and
/// kept (Fluent Bit's `_ml_cri`).
#[derive(Debug)]
pub struct Cri;

static CRI_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?<time>.+?) (?<stream>stdout|stderr) (?<_p>F|P) (?<log>.*)$").expect("valid")
});
static CRI_TIME: LazyLock<TimeFormat> =
    LazyLock::new(|| TimeFormat::new("%Y-%m-%dT%H:%M:%S.%L%z", None).expect("valid"));

impl PreParser for Cri {
    fn parse(&self, text: &[u8]) -> Option<(Vec<u8>, Option<u64>)> {
        let caps = CRI_LINE.captures(text)?;
        let mut body = Vec::with_capacity(text.len() + 32);
        let _ = rmp::encode::write_map_len(&mut body, 4);
        for name in ["time", "stream", "_p", "log"] {
            let value = caps.name(name).map_or(&b""[..], |m| m.as_bytes());
            for s in [name.as_bytes(), value] {
                let _ = rmp::encode::write_str_len(&mut body, s.len() as u32);
                body.extend_from_slice(s);
            }
        }
        let time = caps.name("time").and_then(|t| CRI_TIME.parse(t.as_bytes()));
        Some((body, time))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_exists() {
        for name in NAMES {
            assert_eq!(get(name).unwrap().name, name);
        }
        assert!(get("nope").is_none());
    }

    #[test]
    fn docker_and_cri_lines_parse_with_their_time() {
        let (body, time) = DockerJson
            .parse(br#"{"log":"a\n","stream":"stdout","time":"2021-02-01T16:45:03.5Z"}"#)
            .unwrap();
        assert_eq!(time, Some(1_612_197_903_500_000_000));
        assert_eq!(
            crate::event::json::to_json(&body).unwrap(),
            r#"{"log":"a\n","stream":"stdout","time":"2021-02-01T16:45:03.5Z"}"#
        );
        assert!(DockerJson.parse(b"plain text").is_none());
        assert!(DockerJson.parse(b"[1]").is_none());
        let (body, time) = Cri
            .parse(b"2019-05-07T18:57:50.904275087+00:00 stdout P 1a. some ")
            .unwrap();
        assert_eq!(time, Some(1_557_255_470_904_275_087));
        assert_eq!(
            crate::event::json::to_json(&body).unwrap(),
            r#"{"time":"2019-05-07T18:57:50.904275087+00:00","stream":"stdout","_p":"P","log":"1a. some "}"#
        );
        assert!(Cri.parse(b"no cri here").is_none());
    }
}
