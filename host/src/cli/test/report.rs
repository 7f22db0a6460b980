//! The report of one `wasm-router test` run: one value, built once, rendered either as JSON
//! (`--json`, through serde) or as text for a person ([`Report::text`]). Fields only the text
//! needs (a call's size, the canned response's status) are skipped in JSON.

use crate::cli::format::{bytes, thousands};
use serde::{Serialize, Serializer};
use serde_json::Value;
use std::fmt::Write as _;

/// Longest request body printed, in bytes.
const MAX_PRINTED_BODY: usize = 16 * 1024;

/// What a run of `wasm-router test` showed.
#[derive(Serialize)]
pub struct Report {
    pub plugin: PluginSummary,
    #[serde(flatten)]
    pub run: Run,
    pub logs: Vec<LogEntry>,
    pub metrics: Vec<MetricEntry>,
}

/// The plugin's identity.
#[derive(Serialize)]
pub struct PluginSummary {
    pub name: String,
    pub version: String,
    pub kind: &'static str,
    pub description: String,
    pub sha256: String,
    /// Its `requested-hosts`: a request elsewhere gets a warning (none requested: no warning).
    #[serde(skip)]
    pub requested_hosts: Vec<String>,
}

/// What the plugin did, by kind.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Run {
    Filter {
        events: Vec<EventEntry>,
        summary: FilterSummary,
        expect: Option<Expect>,
    },
    Output {
        batches: Vec<BatchEntry>,
        summary: OutputSummary,
        /// `--responses` was given: say when it ran out.
        #[serde(skip)]
        responses_given: bool,
        /// `--expect` was given (it applies to filters only).
        #[serde(skip)]
        expect_given: bool,
    },
}

/// An event as `{"tag", "time", "record"}`.
#[derive(Serialize)]
pub struct EventJson {
    pub tag: String,
    pub time: Value,
    pub record: Value,
    #[serde(skip)]
    pub time_ns: u64,
}

/// What became of one input event.
#[derive(Serialize)]
pub struct EventEntry {
    pub index: usize,
    pub outcome: &'static str,
    pub message: Option<String>,
    pub instructions: Option<u64>,
    pub input: EventJson,
    pub outputs: Vec<EventJson>,
    /// Events in the call this event was part of.
    #[serde(skip)]
    pub call_events: usize,
}

#[derive(Serialize)]
pub struct FilterSummary {
    pub events_in: usize,
    pub events_out: usize,
    pub faults: usize,
    pub calls: u64,
    pub instructions_per_event: Option<u64>,
    pub peak_memory_bytes: u64,
    pub memory_cap_bytes: usize,
    pub on_error: &'static str,
}

/// The output events against `--expect`.
#[derive(Serialize)]
pub struct Expect {
    pub matched: bool,
    pub mismatches: Vec<Mismatch>,
}

/// One difference from `--expect`.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Mismatch {
    Differs {
        output: usize,
        expected_line: usize,
        differences: Vec<String>,
    },
    Unexpected {
        output: usize,
        unexpected: Value,
    },
    Missing {
        expected_line: usize,
        missing: Value,
    },
}

/// One batch handed to `encode`.
#[derive(Serialize)]
pub struct BatchEntry {
    pub batch: usize,
    pub events: usize,
    pub instructions_per_event: Option<u64>,
    #[serde(skip)]
    pub tag: String,
    #[serde(flatten)]
    pub encoded: Encoded,
}

/// What `encode` returned.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoded {
    Fault(FaultEntry),
    Error(String),
    Requests(Vec<RequestEntry>),
}

#[derive(Serialize)]
pub struct FaultEntry {
    pub kind: &'static str,
    pub message: String,
}

/// One request the plugin asked the router to send, and what it said of the canned answer.
#[derive(Serialize)]
pub struct RequestEntry {
    pub id: u32,
    pub method: &'static str,
    pub url: String,
    /// Plain headers, credential-looking values masked.
    pub headers: Vec<(String, String)>,
    pub secret_headers: Vec<SecretHeaderEntry>,
    pub compression: &'static str,
    pub events: Vec<u32>,
    #[serde(serialize_with = "body_json")]
    pub body: Vec<u8>,
    /// The canned response: its status text and body size.
    #[serde(skip)]
    pub response: Option<(String, usize)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultEntry>,
}

/// A header the router fills from a secret; `value` is its prefix and `****`.
#[derive(Serialize)]
pub struct SecretHeaderEntry {
    pub header: String,
    pub secret: String,
    pub value: String,
}

#[derive(Serialize)]
pub struct OutputSummary {
    pub events_in: usize,
    pub faults: usize,
    pub peak_memory_bytes: u64,
    pub memory_cap_bytes: usize,
}

#[derive(Serialize)]
pub struct LogEntry {
    pub level: &'static str,
    pub message: String,
}

#[derive(Serialize)]
pub struct MetricEntry {
    pub name: String,
    #[serde(serialize_with = "labels_json")]
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A body as JSON when it is JSON, else as (lossy) text.
fn body_json<S: Serializer>(body: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => v.serialize(serializer),
        Err(_) => String::from_utf8_lossy(body).serialize(serializer),
    }
}

fn labels_json<S: Serializer>(labels: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(labels.iter().map(|(k, v)| (k, v)))
}

/// Header names whose values are credentials: shown masked even when sent as plain headers.
pub fn looks_secret(header: &str) -> bool {
    let h = header.to_ascii_lowercase();
    [
        "authorization",
        "api-key",
        "apikey",
        "api_key",
        "token",
        "secret",
        "password",
        "license",
    ]
    .iter()
    .any(|s| h.contains(s))
}

impl Report {
    /// The report as pretty JSON (keys in `serde_json`'s map order), with a final newline.
    pub fn json(&self) -> serde_json::Result<String> {
        Ok(serde_json::to_string_pretty(&serde_json::to_value(self)?)? + "\n")
    }

    /// The report as text.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let p = &self.plugin;
        let _ = writeln!(
            out,
            "plugin {} {} ({}): {}",
            p.name, p.version, p.kind, p.description
        );
        match &self.run {
            Run::Filter {
                events,
                summary,
                expect,
            } => {
                let _ = writeln!(out, "on_error: {}", summary.on_error);
                let _ = writeln!(out);
                for event in events {
                    write_event(&mut out, event);
                }
                self.write_logs(&mut out);
                self.write_metrics(&mut out);
                write_filter_summary(&mut out, summary);
                if let Some(expect) = expect {
                    write_expect(&mut out, &expect.mismatches);
                }
            }
            Run::Output {
                batches,
                summary,
                responses_given,
                expect_given,
            } => {
                let _ = writeln!(out);
                for batch in batches {
                    write_batch(&mut out, batch, &p.requested_hosts, *responses_given);
                }
                self.write_logs(&mut out);
                let _ = writeln!(
                    out,
                    "\nsummary: {} events, {} fault(s); peak memory {} of a {} cap",
                    summary.events_in,
                    summary.faults,
                    bytes(summary.peak_memory_bytes as f64),
                    bytes(summary.memory_cap_bytes as f64)
                );
                if *expect_given {
                    let _ = writeln!(out, "note: --expect applies to filters only");
                }
            }
        }
        out
    }

    fn write_logs(&self, out: &mut String) {
        let _ = writeln!(out, "\nlogs ({}):", self.logs.len());
        for l in &self.logs {
            let _ = writeln!(out, "  {:<5} {}", l.level.to_ascii_uppercase(), l.message);
        }
    }

    fn write_metrics(&self, out: &mut String) {
        let _ = writeln!(out, "\nmetrics ({}):", self.metrics.len());
        for s in &self.metrics {
            let labels = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(",");
            let suffix = if s.name.ends_with("_total") || labels.is_empty() {
                String::new()
            } else {
                format!("{{{labels}}}")
            };
            let _ = writeln!(out, "  {}{suffix} {}", s.name, s.value);
        }
    }
}

fn write_event(out: &mut String, r: &EventEntry) {
    let mut head = format!("event {} [{}]", r.index + 1, r.outcome);
    if r.outcome == "expand" {
        let _ = write!(head, " → {} event(s)", r.outputs.len());
    }
    match (r.instructions, r.call_events) {
        (Some(n), 1) => {
            let _ = write!(head, "  ({} instructions)", thousands(n));
        }
        (Some(n), events) => {
            let _ = write!(
                head,
                "  (~{} instructions: the average of a call of {events} events)",
                thousands(n)
            );
        }
        (None, _) => {}
    }
    let _ = writeln!(out, "{head}");
    if let Some(message) = &r.message {
        let fate = if r.outputs.is_empty() {
            "dropped"
        } else {
            "passed on unchanged"
        };
        let _ = writeln!(out, "  {message} → {fate}");
    }
    if matches!(
        r.outcome,
        "keep" | "drop" | "error" | "fault" | "circuit_open"
    ) {
        return;
    }
    let input = &r.input;
    for (i, output) in r.outputs.iter().enumerate() {
        if r.outputs.len() > 1 {
            let _ = writeln!(out, "  #{}:", i + 1);
        }
        if output.tag != input.tag {
            let _ = writeln!(out, "    tag: {:?} → {:?}", input.tag, output.tag);
        }
        if output.time_ns != input.time_ns {
            let _ = writeln!(
                out,
                "    time: {} → {}",
                seconds(input.time_ns),
                seconds(output.time_ns)
            );
        }
        let changes = diff(&input.record, &output.record);
        if changes.is_empty() {
            let _ = writeln!(out, "    (record unchanged)");
        }
        for line in changes {
            let _ = writeln!(out, "    {line}");
        }
    }
}

fn write_filter_summary(out: &mut String, s: &FilterSummary) {
    let _ = writeln!(
        out,
        "\nsummary: {} events in, {} out, {} fault(s), {} call(s); {} instructions/event; peak memory {} of a {} cap",
        s.events_in,
        s.events_out,
        s.faults,
        s.calls,
        s.instructions_per_event
            .map_or("n/a".to_string(), thousands),
        bytes(s.peak_memory_bytes as f64),
        bytes(s.memory_cap_bytes as f64),
    );
    if s.peak_memory_bytes as usize > s.memory_cap_bytes / 2 {
        let _ = writeln!(
            out,
            "warning: peak memory is above half of the cap; the router recycles instances above 75%"
        );
    }
}

fn write_expect(out: &mut String, mismatches: &[Mismatch]) {
    if mismatches.is_empty() {
        let _ = writeln!(out, "\nexpect: output matches");
        return;
    }
    let _ = writeln!(out, "\nexpect: {} mismatch(es)", mismatches.len());
    for m in mismatches {
        match m {
            Mismatch::Differs {
                output,
                expected_line,
                differences,
            } => {
                let _ = writeln!(
                    out,
                    "  output event {output} vs expected line {expected_line}: (expected → got)"
                );
                for line in differences {
                    let _ = writeln!(out, "    {line}");
                }
            }
            Mismatch::Unexpected { output, unexpected } => {
                let _ = writeln!(
                    out,
                    "  output event {output} was not expected: {unexpected}"
                );
            }
            Mismatch::Missing {
                expected_line,
                missing,
            } => {
                let _ = writeln!(
                    out,
                    "  expected line {expected_line} was not produced: {missing}"
                );
            }
        }
    }
}

fn write_batch(out: &mut String, b: &BatchEntry, requested_hosts: &[String], responses: bool) {
    let _ = writeln!(
        out,
        "batch {} ({} events, tag {:?}):",
        b.batch, b.events, b.tag
    );
    match &b.encoded {
        Encoded::Fault(fault) => {
            let _ = writeln!(out, "  fault ({}): {}", fault.kind, fault.message);
        }
        Encoded::Error(message) => {
            let _ = writeln!(out, "  encode refused the batch: {message}");
        }
        Encoded::Requests(requests) => {
            if let Some(n) = b.instructions_per_event {
                let _ = writeln!(out, "  {} instructions/event", thousands(n));
            }
            for r in requests {
                write_request(out, r, requested_hosts);
                match &r.response {
                    Some((status, bytes)) => {
                        let _ = writeln!(out, "    response: {status} ({bytes} bytes)");
                    }
                    None if responses => {
                        let _ =
                            writeln!(out, "    (no canned response left: delivery not simulated)");
                    }
                    None => {}
                }
                if let Some(delivery) = &r.delivery {
                    let _ = writeln!(out, "    delivery: {delivery}");
                }
                if let Some(fault) = &r.fault {
                    let _ = writeln!(
                        out,
                        "    on-response fault ({}): {}",
                        fault.kind, fault.message
                    );
                }
            }
        }
    }
}

fn write_request(out: &mut String, r: &RequestEntry, requested_hosts: &[String]) {
    let _ = writeln!(
        out,
        "  request {}: {} {} ({} events, compression {})",
        r.id,
        r.method,
        r.url,
        r.events.len(),
        r.compression
    );
    // A plugin that requests no host (`http`, `loki`) goes where the operator's config says.
    if !requested_hosts.is_empty()
        && !requested_hosts
            .iter()
            .any(|h| r.url.starts_with(h.as_str()))
    {
        let _ = writeln!(
            out,
            "    warning: the URL is not under any of the plugin's requested-hosts; the router refuses hosts the operator did not allow"
        );
    }
    for (k, v) in &r.headers {
        if looks_secret(k) {
            let _ = writeln!(
                out,
                "    {k}: ****  (warning: a credential in a plain header; use secret-headers so the router injects it)"
            );
        } else {
            let _ = writeln!(out, "    {k}: {v}");
        }
    }
    for s in &r.secret_headers {
        let _ = writeln!(
            out,
            "    {}: {}  (secret `{}`, injected by the router)",
            s.header, s.value, s.secret
        );
    }
    let _ = writeln!(out, "    body ({} bytes):", r.body.len());
    for line in printable_body(&r.body).lines() {
        let _ = writeln!(out, "      {line}");
    }
}

fn printable_body(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    if text.len() > MAX_PRINTED_BODY {
        let mut end = MAX_PRINTED_BODY;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}\n… ({} more bytes)", &text[..end], text.len() - end)
    } else {
        text
    }
}

/// Field-level differences between two records: `+ added`, `- removed`, `~ changed`, by path.
pub fn diff(before: &Value, after: &Value) -> Vec<String> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    flatten("", before, &mut a);
    flatten("", after, &mut b);
    let mut lines = Vec::new();
    for (path, old) in &a {
        match b.iter().find(|(p, _)| p == path) {
            None => lines.push(format!("- {path}: {old}")),
            Some((_, new)) if new != old => lines.push(format!("~ {path}: {old} → {new}")),
            Some(_) => {}
        }
    }
    for (path, new) in &b {
        if !a.iter().any(|(p, _)| p == path) {
            lines.push(format!("+ {path}: {new}"));
        }
    }
    lines
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, v, out);
            }
        }
        _ => out.push((
            if prefix.is_empty() {
                "(record)".into()
            } else {
                prefix.to_string()
            },
            v.clone(),
        )),
    }
}

/// Nanoseconds since the epoch as decimal seconds, without trailing zeros.
pub fn seconds(ns: u64) -> String {
    let frac = ns % 1_000_000_000;
    if frac == 0 {
        return (ns / 1_000_000_000).to_string();
    }
    let digits = format!("{frac:09}");
    format!("{}.{}", ns / 1_000_000_000, digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diffs_name_added_removed_and_changed_paths() {
        let a = json!({"log": "card 4111", "user": {"id": 1, "ip": "10.0.0.1"}, "gone": true});
        let b = json!({"log": "card ****", "user": {"id": 1}, "new": [1]});
        assert_eq!(
            diff(&a, &b),
            [
                "- gone: true",
                "~ log: \"card 4111\" → \"card ****\"",
                "- user.ip: \"10.0.0.1\"",
                "+ new: [1]"
            ]
        );
    }

    #[test]
    fn times_print_readably() {
        assert_eq!(seconds(1_700_000_000_001_000_000), "1700000000.001");
    }

    /// The JSON form keeps its shape: the outcome of `encode` under its own key, the canned
    /// answer's delivery only when there was one, bodies as JSON when they are JSON.
    #[test]
    fn output_batches_serialize_as_before() {
        let request = RequestEntry {
            id: 0,
            method: "POST",
            url: "https://x".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            secret_headers: vec![SecretHeaderEntry {
                header: "api-key".into(),
                secret: "k".into(),
                value: "****".into(),
            }],
            compression: "gzip",
            events: vec![0, 1],
            body: br#"[{"a":1}]"#.to_vec(),
            response: None,
            delivery: Some("ok".into()),
            fault: None,
        };
        let batch = BatchEntry {
            batch: 1,
            events: 2,
            instructions_per_event: None,
            tag: "t".into(),
            encoded: Encoded::Requests(vec![request]),
        };
        assert_eq!(
            serde_json::to_value(&batch).unwrap(),
            json!({"batch": 1, "events": 2, "instructions_per_event": null, "requests": [{
                "id": 0, "method": "POST", "url": "https://x",
                "headers": [["content-type", "application/json"]],
                "secret_headers": [{"header": "api-key", "secret": "k", "value": "****"}],
                "compression": "gzip", "events": [0, 1], "body": [{"a": 1}], "delivery": "ok"}]})
        );
        let refused = BatchEntry {
            encoded: Encoded::Error("no".into()),
            ..batch
        };
        assert_eq!(
            serde_json::to_value(&refused).unwrap()["error"],
            json!("no")
        );
    }
}
