//! `wasm-router test plugin.wasm --input events.jsonl`: run a plugin on sample events, the way
//! the router would (same engine settings, limits and policies, plus fuel metering for
//! deterministic instruction counts), and show what it did.
//!
//! For a filter: each event's outcome as a field diff, the plugin's log lines and metrics,
//! instructions per event and peak memory; with `--expect` the output events are compared with
//! a golden file. For an output: the requests it would have the router send (secret headers
//! masked) and, with `--responses`, the delivery decision for each canned response.
//! Exits 1 on an `--expect` mismatch or a plugin fault.
//!
//! The run builds one [`Report`] ([`report`]), printed as text or, with `--json`, as JSON.

mod report;

use anyhow::{Context, bail};
use clap::Args;
use report::{
    BatchEntry, Encoded, EventEntry, EventJson, Expect, FaultEntry, FilterSummary, LogEntry,
    MetricEntry, Mismatch, OutputSummary, PluginSummary, Report, RequestEntry, Run,
    SecretHeaderEntry, diff, looks_secret, seconds,
};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasm_router::event::json::to_json;
use wasm_router::ops::metrics::Metrics;
use wasm_router::plugin::bindings::{
    Compression, Delivery, HttpRequest, HttpResponse, Level, Method, PluginKind,
};
use wasm_router::plugin::filter::{EventReport, MAX_CALL_EVENTS};
use wasm_router::plugin::state::PluginContext;
use wasm_router::plugin::{
    ArtifactCache, EngineOptions, FilterSettings, LoadedPlugin, OnError, PluginEngine,
    PluginLimits, WasmFilter, schema, startup,
};
use wasm_router::{Batch, Event};

/// Time given to events that have none: 2023-11-14T22:13:20Z, then one millisecond apart.
const DEFAULT_TIME_NS: u64 = 1_700_000_000_000_000_000;

/// Arguments of `wasm-router test`.
#[derive(Args)]
pub struct TestArgs {
    /// The plugin component (`.wasm`).
    plugin: PathBuf,
    /// Events, one JSON object per line: a record, or `{"tag": …, "time": seconds, "record": {…}}`.
    #[arg(short, long)]
    input: PathBuf,
    /// The plugin's config: a JSON file (`.json`) or a TOML file (anything else).
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// Set one config key, `key=value` (dotted keys nest; the value is read as JSON, or else
    /// taken as a string); applied after `--config`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Expected output events, in the `--input` format; exit 1 when the output differs.
    #[arg(long)]
    expect: Option<PathBuf>,
    /// Print one JSON report instead of text.
    #[arg(long)]
    json: bool,
    /// The tag of events given without one.
    #[arg(long, default_value = "test")]
    tag: String,
    /// Events per call.
    #[arg(long, default_value_t = MAX_CALL_EVENTS)]
    batch_size: usize,
    /// Output plugins: canned responses replayed in order, one JSON object per line:
    /// `{"status": 429, "headers": {"retry-after": "2"}, "body": "…"}`.
    #[arg(long)]
    responses: Option<PathBuf>,
    /// The failure policy (`fail_open`, `fail_closed`, `dead_letter`); default: the plugin's.
    #[arg(long)]
    on_error: Option<String>,
    /// Resource limits of each call, `KEY=VALUE[,KEY=VALUE…]`: `deadline` (default 50ms for a
    /// filter, 200ms for an output), `memory` (64MiB), `fuel` (10000000000 instructions per
    /// call), `max_calls` (100000). Repeatable. The router takes the same limits from
    /// `limits = { … }` in the plugin's config entry.
    #[arg(long = "limit", value_name = "KEY=VALUE,…")]
    limit: Vec<String>,
}

impl TestArgs {
    /// `defaults` with every `--limit` applied.
    fn limits(&self, defaults: PluginLimits) -> anyhow::Result<PluginLimits> {
        let mut limits = defaults;
        for pair in self.limit.iter().flat_map(|l| l.split(',')) {
            let (key, value) = pair.split_once('=').with_context(|| {
                format!("--limit {pair:?}: use KEY=VALUE, e.g. --limit deadline=2s,memory=256MiB")
            })?;
            limits
                .set(key.trim(), value.trim())
                .map_err(|e| anyhow::anyhow!("--limit: {e}"))?;
        }
        Ok(limits)
    }
}

/// One event from `--input` or `--expect`.
#[derive(Clone, Debug)]
struct SampleEvent {
    /// Line number, from 1.
    line: usize,
    tag: Option<String>,
    time_ns: Option<u64>,
    record: Value,
}

/// Run the command.
pub fn run(args: TestArgs) -> anyhow::Result<std::process::ExitCode> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let config = load_config(args.config.as_deref(), &args.set)?;
    let inputs = read_samples(&args.input)?;
    let engine = Arc::new(PluginEngine::new(EngineOptions {
        fuel: true,
        ..EngineOptions::default()
    })?);
    let plugin = Arc::new(LoadedPlugin::load(
        engine,
        &args.plugin,
        None,
        &ArtifactCache::from_config(None),
    )?);
    let (report, failed) = match plugin.kind() {
        PluginKind::Filter => test_filter(&args, plugin, &config, &inputs)?,
        PluginKind::Output => test_output(&args, plugin, &config, &inputs)?,
    };
    super::print_stdout(&if args.json {
        report.json()?
    } else {
        report.text()
    })?;
    Ok(if failed {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    })
}

// ---- Filters ---------------------------------------------------------------------------------

/// Run a filter on the events; returns the report and whether the run failed (a fault or an
/// `--expect` mismatch).
fn test_filter(
    args: &TestArgs,
    plugin: Arc<LoadedPlugin>,
    config: &Value,
    inputs: &[SampleEvent],
) -> anyhow::Result<(Report, bool)> {
    let info = plugin.info().clone();
    let on_error = match &args.on_error {
        Some(p) => OnError::parse(p).with_context(|| {
            format!("--on-error {p:?}: use fail_open, fail_closed or dead_letter")
        })?,
        None => OnError::default_for(&info.name, &info.description, &info.config_schema),
    };
    let defaults = FilterSettings::new(on_error);
    let settings = FilterSettings {
        max_instances: 1,
        limits: args.limits(defaults.limits)?,
        ..defaults
    };
    let metrics = Metrics::new();
    let filter = WasmFilter::new(
        plugin.clone(),
        &info.name,
        config,
        settings,
        metrics.clone(),
        true,
    )?;

    let events: Vec<(String, Event)> = inputs
        .iter()
        .enumerate()
        .map(|(i, s)| to_event(s, i, &args.tag))
        .collect::<anyhow::Result<_>>()?;
    let mut reports: Vec<EventReport> = Vec::new();
    let mut start = 0;
    while start < events.len() {
        let tag = &events[start].0;
        let mut end = start + 1;
        while end < events.len()
            && end - start < args.batch_size.min(MAX_CALL_EVENTS)
            && events[end].0 == *tag
        {
            end += 1;
        }
        let batch = Batch::new(
            bytes::Bytes::copy_from_slice(tag.as_bytes()),
            events[start..end].iter().map(|(_, e)| e.clone()).collect(),
        );
        let (_, batch_reports) = filter.process_traced(batch);
        reports.extend(batch_reports.into_iter().map(|r| EventReport {
            index: r.index + start,
            ..r
        }));
        start = end;
    }

    let telemetry = &filter.context().telemetry;
    let entries: Vec<EventEntry> = reports
        .into_iter()
        .map(|r| {
            let (tag, input) = &events[r.index];
            EventEntry {
                index: r.index,
                outcome: r.outcome,
                message: r.message,
                instructions: r.instructions,
                input: event_json(tag.as_bytes(), input),
                outputs: r.outputs.iter().map(|(t, e)| event_json(t, e)).collect(),
                call_events: r.call_events,
            }
        })
        .collect();
    let outputs: Vec<&EventJson> = entries.iter().flat_map(|e| &e.outputs).collect();
    let faults = entries.iter().filter(|e| e.outcome == "fault").count();
    let expect = match &args.expect {
        Some(path) => {
            let mismatches = compare(&outputs, &read_samples(path)?);
            Some(Expect {
                matched: mismatches.is_empty(),
                mismatches,
            })
        }
        None => None,
    };
    let instructions: Vec<u64> = entries.iter().filter_map(|e| e.instructions).collect();
    let summary = FilterSummary {
        events_in: inputs.len(),
        events_out: outputs.len(),
        faults,
        calls: telemetry.calls(),
        instructions_per_event: (!instructions.is_empty())
            .then(|| instructions.iter().sum::<u64>() / instructions.len() as u64),
        peak_memory_bytes: telemetry.peak_memory_bytes(),
        memory_cap_bytes: settings.limits.memory_bytes,
        on_error: on_error.as_str(),
    };
    let failed = faults > 0 || expect.as_ref().is_some_and(|e| !e.matched);
    let run = Run::Filter {
        events: entries,
        summary,
        expect,
    };
    Ok((report(&plugin, run, filter.context()), failed))
}

/// Output events against expected ones; returns the mismatches (empty = match).
fn compare(outputs: &[&EventJson], expected: &[SampleEvent]) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    for i in 0..outputs.len().max(expected.len()) {
        match (outputs.get(i), expected.get(i)) {
            (Some(got), Some(want)) => {
                let mut problems = diff(&want.record, &got.record);
                if let Some(tag) = &want.tag
                    && got.tag != *tag
                {
                    problems.push(format!("~ tag: {tag:?} → {}", json!(got.tag)));
                }
                if let Some(t) = want.time_ns
                    && got.time != seconds_json(t)
                {
                    problems.push(format!("~ time: {} → {}", seconds(t), got.time));
                }
                if !problems.is_empty() {
                    mismatches.push(Mismatch::Differs {
                        output: i + 1,
                        expected_line: want.line,
                        differences: problems,
                    });
                }
            }
            (Some(got), None) => mismatches.push(Mismatch::Unexpected {
                output: i + 1,
                unexpected: serde_json::to_value(got).unwrap_or(Value::Null),
            }),
            (None, Some(want)) => mismatches.push(Mismatch::Missing {
                expected_line: want.line,
                missing: want.record.clone(),
            }),
            (None, None) => {}
        }
    }
    mismatches
}

// ---- Outputs ---------------------------------------------------------------------------------

/// Run an output on the events (and the canned responses); returns the report and whether a
/// call faulted.
fn test_output(
    args: &TestArgs,
    plugin: Arc<LoadedPlugin>,
    config: &Value,
    inputs: &[SampleEvent],
) -> anyhow::Result<(Report, bool)> {
    let info = plugin.info().clone();
    let metrics = Metrics::new();
    let limits = args.limits(PluginLimits::output_defaults())?;
    let (started, mut instance) =
        startup::start(plugin.clone(), &info.name, config, limits, &metrics, true)?;
    let mut responses = match &args.responses {
        Some(path) => read_responses(path)?.into_iter(),
        None => Vec::new().into_iter(),
    };
    let events: Vec<(String, Event)> = inputs
        .iter()
        .enumerate()
        .map(|(i, s)| to_event(s, i, &args.tag))
        .collect::<anyhow::Result<_>>()?;
    let mut batches = Vec::new();
    let mut faults = 0;
    let mut peak = 0usize;
    for (n, chunk) in events
        .chunks(args.batch_size.min(MAX_CALL_EVENTS))
        .enumerate()
    {
        let tag = &chunk[0].0;
        let batch_events: Vec<Event> = chunk.iter().map(|(_, e)| e.clone()).collect();
        let encoded = instance.encode(tag, &batch_events);
        peak = peak.max(instance.peak_memory());
        let instructions = instance
            .fuel_used()
            .map(|f| f / batch_events.len().max(1) as u64);
        let encoded = match encoded {
            Err(fault) => {
                faults += 1;
                instance = started.new_instance()?;
                Encoded::Fault(fault_entry(&fault))
            }
            Ok(Err(message)) => Encoded::Error(message),
            Ok(Ok(requests)) => {
                let mut entries = Vec::new();
                for request in requests {
                    let mut entry = request_entry(&request);
                    if let Some(canned) = responses.next() {
                        let response = HttpResponse {
                            id: request.id,
                            ..canned
                        };
                        entry.response = Some((status_text(&response), response.body.len()));
                        match instance.on_response(response) {
                            Ok(delivery) => entry.delivery = Some(delivery_text(&delivery)),
                            Err(fault) => {
                                faults += 1;
                                entry.fault = Some(fault_entry(&fault));
                                instance = started.new_instance()?;
                            }
                        }
                    }
                    entries.push(entry);
                }
                Encoded::Requests(entries)
            }
        };
        batches.push(BatchEntry {
            batch: n + 1,
            events: batch_events.len(),
            instructions_per_event: instructions,
            tag: tag.clone(),
            encoded,
        });
    }
    let run = Run::Output {
        batches,
        summary: OutputSummary {
            events_in: inputs.len(),
            faults,
            peak_memory_bytes: peak as u64,
            memory_cap_bytes: limits.memory_bytes,
        },
        responses_given: args.responses.is_some(),
        expect_given: args.expect.is_some(),
    };
    Ok((report(&plugin, run, &started.context), faults > 0))
}

fn fault_entry(fault: &wasm_router::plugin::Fault) -> FaultEntry {
    FaultEntry {
        kind: fault.kind(),
        message: fault.to_string(),
    }
}

/// A request as reported: credential-looking plain headers masked, secret headers shown by
/// their prefix.
fn request_entry(r: &HttpRequest) -> RequestEntry {
    RequestEntry {
        id: r.id,
        method: method_name(r.method),
        url: r.url.clone(),
        headers: r
            .headers
            .iter()
            .map(|(k, v)| {
                let v = if looks_secret(k) { "****" } else { v.as_str() };
                (k.clone(), v.to_string())
            })
            .collect(),
        secret_headers: r
            .secret_headers
            .iter()
            .map(|s| SecretHeaderEntry {
                header: s.header.clone(),
                secret: s.secret.clone(),
                value: format!("{}****", s.prefix),
            })
            .collect(),
        compression: compression_name(r.compression),
        events: r.events.clone(),
        body: r.body.clone(),
        response: None,
        delivery: None,
        fault: None,
    }
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
    }
}

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "none",
        Compression::Gzip => "gzip",
    }
}

fn status_text(r: &HttpResponse) -> String {
    match &r.transport_error {
        Some(e) => format!("transport error: {e}"),
        None => format!("HTTP {}", r.status),
    }
}

fn delivery_text(d: &Delivery) -> String {
    match d {
        Delivery::Ok => "ok".into(),
        Delivery::Retry(None) => "retry (router backoff)".into(),
        Delivery::Retry(Some(ms)) => format!("retry after {ms} ms"),
        Delivery::FailPermanent(reason) => format!("fail-permanent: {reason}"),
        Delivery::SplitAndRetry => {
            "split-and-retry (the router halves the events and encodes each half)".into()
        }
    }
}

fn read_responses(path: &Path) -> anyhow::Result<Vec<HttpResponse>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut responses = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at = || format!("{} line {}", path.display(), i + 1);
        let v: Value = serde_json::from_str(line).with_context(at)?;
        let status = v.get("status").and_then(Value::as_u64).with_context(|| {
            format!("{}: needs \"status\": a number (0 = transport error)", at())
        })?;
        let headers = match v.get("headers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_string),
                    )
                })
                .collect(),
            Some(other) => bail!("{}: \"headers\" must be an object, got {other}", at()),
        };
        let body = match v.get("body") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s.clone().into_bytes(),
            Some(other) => other.to_string().into_bytes(),
        };
        let transport_error = v
            .get("transport_error")
            .and_then(Value::as_str)
            .map(str::to_string);
        responses.push(HttpResponse {
            id: 0,
            status: u16::try_from(status).with_context(at)?,
            headers,
            body,
            transport_error,
        });
    }
    Ok(responses)
}

// ---- Shared ----------------------------------------------------------------------------------

/// The config object: `--config` (JSON or TOML), then each `--set`.
fn load_config(path: Option<&Path>, sets: &[String]) -> anyhow::Result<Value> {
    let mut config = match path {
        None => Value::Object(Map::new()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            if path.extension().is_some_and(|e| e == "json") {
                serde_json::from_str(&text)
                    .with_context(|| format!("{}: not JSON", path.display()))?
            } else {
                let table: toml::Table = toml::from_str(&text)
                    .with_context(|| format!("{}: not TOML", path.display()))?;
                schema::config_json(Some(&table))
            }
        }
    };
    if !config.is_object() {
        bail!("the plugin config must be an object, got {config}");
    }
    for set in sets {
        let (key, value) = set
            .split_once('=')
            .with_context(|| format!("--set {set:?}: use key=value"))?;
        let value =
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        let mut node = &mut config;
        let parts: Vec<&str> = key.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let map = node.as_object_mut().with_context(|| {
                format!("--set {key}: {} is not an object", parts[..i].join("."))
            })?;
            if i + 1 == parts.len() {
                map.insert(part.to_string(), value.clone());
                break;
            }
            node = map
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    Ok(config)
}

fn read_samples(path: &Path) -> anyhow::Result<Vec<SampleEvent>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{} line {}", path.display(), i + 1);
        let Value::Object(object) = serde_json::from_str(line).with_context(at)? else {
            bail!(
                "{}: each line must be a JSON object (a record, or {{\"tag\", \"time\", \"record\"}})",
                at()
            );
        };
        let wrapped = object.contains_key("record")
            && object
                .keys()
                .all(|k| ["tag", "time", "record"].contains(&k.as_str()));
        let event = if wrapped {
            let record = object["record"].clone();
            if !record.is_object() {
                bail!("{}: \"record\" must be an object", at());
            }
            let tag = match object.get("tag") {
                None => None,
                Some(Value::String(t)) => Some(t.clone()),
                Some(other) => bail!("{}: \"tag\" must be a string, got {other}", at()),
            };
            let time_ns = match object.get("time") {
                None => None,
                Some(t) => Some(parse_seconds(t).with_context(|| {
                    format!(
                        "{}: \"time\" must be seconds since the epoch, got {t}",
                        at()
                    )
                })?),
            };
            SampleEvent {
                line: i + 1,
                tag,
                time_ns,
                record,
            }
        } else {
            SampleEvent {
                line: i + 1,
                tag: None,
                time_ns: None,
                record: Value::Object(object),
            }
        };
        events.push(event);
    }
    Ok(events)
}

fn to_event(
    sample: &SampleEvent,
    index: usize,
    default_tag: &str,
) -> anyhow::Result<(String, Event)> {
    let body = rmp_serde::to_vec_named(&sample.record)
        .with_context(|| format!("line {}: cannot encode the record", sample.line))?;
    let time_ns = sample
        .time_ns
        .unwrap_or(DEFAULT_TIME_NS + index as u64 * 1_000_000);
    Ok((
        sample
            .tag
            .clone()
            .unwrap_or_else(|| default_tag.to_string()),
        Event {
            time_ns,
            body: body.into(),
        },
    ))
}

/// Seconds since the epoch (a JSON number) as nanoseconds, exactly for up to 9 decimals.
fn parse_seconds(t: &Value) -> Option<u64> {
    let text = t.as_number()?.to_string();
    if text.starts_with('-') {
        return None;
    }
    if text.contains(['e', 'E']) {
        return t.as_f64().map(|s| (s * 1e9).round() as u64);
    }
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    whole
        .parse::<u64>()
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(frac.parse().ok()?)
}

fn record_json(event: &Event) -> Value {
    to_json(&event.body)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

fn event_json(tag: &[u8], event: &Event) -> EventJson {
    EventJson {
        tag: String::from_utf8_lossy(tag).into_owned(),
        time: seconds_json(event.time_ns),
        record: record_json(event),
        time_ns: event.time_ns,
    }
}

/// Seconds as JSON: an integer when whole, else a decimal with up to nanosecond digits.
fn seconds_json(ns: u64) -> Value {
    if ns.is_multiple_of(1_000_000_000) {
        json!(ns / 1_000_000_000)
    } else {
        serde_json::from_str(&seconds(ns)).unwrap_or(Value::Null)
    }
}

/// The report of a run: the plugin, what it did, its log lines and its metrics.
fn report(plugin: &LoadedPlugin, run: Run, context: &PluginContext) -> Report {
    let info = plugin.info();
    Report {
        plugin: PluginSummary {
            name: info.name.clone(),
            version: info.version.clone(),
            kind: kind_name(info.kind),
            description: info.description.clone(),
            sha256: plugin.sha256(),
            requested_hosts: info.requested_hosts.clone(),
        },
        run,
        logs: context
            .log
            .take_captured()
            .into_iter()
            .map(|l| LogEntry {
                level: level_name(l.level),
                message: l.message,
            })
            .collect(),
        metrics: context
            .metrics
            .snapshot()
            .into_iter()
            .map(|s| MetricEntry {
                name: s.name,
                labels: s.labels,
                value: s.value,
            })
            .collect(),
    }
}

/// `filter` or `output`.
pub fn kind_name(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Filter => "filter",
        PluginKind::Output => "output",
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_builds_nested_values_from_json_or_text() {
        let c = load_config(
            None,
            &[
                "fields=[\"log\"]".into(),
                "mask.char=#".into(),
                "mask.keep=4".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            c,
            json!({"fields": ["log"], "mask": {"char": "#", "keep": 4}})
        );
        assert!(load_config(None, &["novalue".into()]).is_err());
    }

    #[test]
    fn whole_seconds_are_json_integers() {
        assert_eq!(
            seconds_json(1_700_000_000_000_000_000),
            json!(1_700_000_000u64)
        );
    }
}
