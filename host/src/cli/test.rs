//! `wasm-router test plugin.wasm --input events.jsonl`: run a plugin on sample events, the way
//! the router would (same engine settings, limits and policies, plus fuel metering for
//! deterministic instruction counts), and show what it did.
//!
//! For a filter: each event's outcome as a field diff, the plugin's log lines and metrics,
//! instructions per event and peak memory; with `--expect` the output events are compared with
//! a golden file. For an output: the requests it would have the router send (secret headers
//! masked) and, with `--responses`, the delivery decision for each canned response.
//! Exits 1 on an `--expect` mismatch or a plugin fault.

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasm_router::event::json::to_json;
use wasm_router::ops::metrics::Metrics;
use wasm_router::plugin::bindings::{
    Compression, Delivery, HttpRequest, HttpResponse, Level, Method, PluginKind,
};
use wasm_router::plugin::filter::{EventReport, MAX_CALL_EVENTS};
use wasm_router::plugin::instance::PluginInstance;
use wasm_router::plugin::log::LogLine;
use wasm_router::plugin::state::PluginContext;
use wasm_router::plugin::telemetry::PluginFamilies;
use wasm_router::plugin::{
    ArtifactCache, EngineOptions, FilterSettings, LoadedPlugin, OnError, PluginEngine,
    PluginLimits, WasmFilter, schema,
};
use wasm_router::{Batch, Event};

/// Time given to events that have none: 2023-11-14T22:13:20Z, then one millisecond apart.
const DEFAULT_TIME_NS: u64 = 1_700_000_000_000_000_000;
/// Longest request body printed, in bytes.
const MAX_PRINTED_BODY: usize = 16 * 1024;

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
        &ArtifactCache::from_config(None),
    )?);
    schema::validate(&plugin.info().config_schema, &config)
        .map_err(|e| anyhow::anyhow!("{}: config refused: {e}", args.plugin.display()))?;
    let failed = match plugin.kind() {
        PluginKind::Filter => test_filter(&args, plugin, &config, &inputs)?,
        PluginKind::Output => test_output(&args, plugin, &config, &inputs)?,
    };
    Ok(if failed {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    })
}

// ---- Filters ---------------------------------------------------------------------------------

fn test_filter(
    args: &TestArgs,
    plugin: Arc<LoadedPlugin>,
    config: &Value,
    inputs: &[SampleEvent],
) -> anyhow::Result<bool> {
    let info = plugin.info().clone();
    let on_error = match &args.on_error {
        Some(p) => OnError::parse(p).with_context(|| {
            format!("--on-error {p:?}: use fail_open, fail_closed or dead_letter")
        })?,
        None => OnError::default_for(&info.name, &info.description, &info.config_schema),
    };
    let settings = FilterSettings {
        max_instances: 1,
        ..FilterSettings::new(on_error)
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

    let logs = filter.context().log.take_captured();
    let series = filter.context().metrics.snapshot();
    let telemetry = &filter.context().telemetry;
    let outputs: Vec<Value> = reports
        .iter()
        .flat_map(|r| r.outputs.iter().map(|(t, e)| event_json(t, e)))
        .collect();
    let faults = reports.iter().filter(|r| r.outcome == "fault").count();
    let expect = match &args.expect {
        Some(path) => Some(compare(&outputs, &read_samples(path)?)),
        None => None,
    };
    let instructions: Vec<u64> = reports.iter().filter_map(|r| r.instructions).collect();
    let summary = json!({
        "events_in": inputs.len(),
        "events_out": outputs.len(),
        "faults": faults,
        "calls": telemetry.calls(),
        "instructions_per_event": if instructions.is_empty() { Value::Null } else { json!(instructions.iter().sum::<u64>() / instructions.len() as u64) },
        "peak_memory_bytes": telemetry.peak_memory_bytes(),
        "memory_cap_bytes": settings.limits.memory_bytes,
        "on_error": on_error.as_str(),
    });

    if args.json {
        let report = json!({
            "plugin": plugin_json(&plugin),
            "events": reports.iter().map(|r| {
                let input = &events[r.index];
                json!({
                    "index": r.index,
                    "outcome": r.outcome,
                    "message": r.message,
                    "instructions": r.instructions,
                    "input": event_json(input.0.as_bytes(), &input.1),
                    "outputs": r.outputs.iter().map(|(t, e)| event_json(t, e)).collect::<Vec<_>>(),
                })
            }).collect::<Vec<_>>(),
            "logs": logs_json(&logs),
            "metrics": series.iter().map(|s| json!({"name": s.name, "labels": labels_json(&s.labels), "value": s.value})).collect::<Vec<_>>(),
            "summary": summary,
            "expect": expect.as_ref().map(|m| json!({"matched": m.is_empty(), "mismatches": m})),
        });
        super::print_stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        let mut out = String::new();
        write_plugin_header(&mut out, &plugin, Some(on_error));
        for r in &reports {
            write_event_report(&mut out, r, &events[r.index]);
        }
        write_logs(&mut out, &logs);
        writeln!(out, "\nmetrics ({}):", series.len())?;
        for s in &series {
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
            writeln!(out, "  {}{suffix} {}", s.name, s.value)?;
        }
        writeln!(
            out,
            "\nsummary: {} events in, {} out, {} fault(s), {} call(s); {} instructions/event; peak memory {} of a {} cap",
            inputs.len(),
            outputs.len(),
            faults,
            telemetry.calls(),
            summary["instructions_per_event"]
                .as_u64()
                .map_or("n/a".to_string(), group_digits),
            human_bytes(telemetry.peak_memory_bytes()),
            human_bytes(settings.limits.memory_bytes as u64),
        )?;
        if telemetry.peak_memory_bytes() as usize > settings.limits.memory_bytes / 2 {
            writeln!(
                out,
                "warning: peak memory is above half of the cap; the router recycles instances above 75%"
            )?;
        }
        if let Some(mismatches) = &expect {
            write_expect(&mut out, mismatches);
        }
        super::print_stdout(&out)?;
    }
    Ok(faults > 0 || expect.is_some_and(|m| !m.is_empty()))
}

fn write_event_report(out: &mut String, r: &EventReport, input: &(String, Event)) {
    let mut head = format!("event {} [{}]", r.index + 1, r.outcome);
    if r.outcome == "expand" {
        let _ = write!(head, " → {} event(s)", r.outputs.len());
    }
    match (r.instructions, r.call_events) {
        (Some(n), 1) => {
            let _ = write!(head, "  ({} instructions)", group_digits(n));
        }
        (Some(n), events) => {
            let _ = write!(
                head,
                "  (~{} instructions: the average of a call of {events} events)",
                group_digits(n)
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
    let before = record_json(&input.1);
    for (i, (tag, event)) in r.outputs.iter().enumerate() {
        if r.outputs.len() > 1 {
            let _ = writeln!(out, "  #{}:", i + 1);
        }
        if tag.as_ref() != input.0.as_bytes() {
            let _ = writeln!(
                out,
                "    tag: {:?} → {:?}",
                input.0,
                String::from_utf8_lossy(tag)
            );
        }
        if event.time_ns != input.1.time_ns {
            let _ = writeln!(
                out,
                "    time: {} → {}",
                seconds(input.1.time_ns),
                seconds(event.time_ns)
            );
        }
        let changes = diff(&before, &record_json(event));
        if changes.is_empty() {
            let _ = writeln!(out, "    (record unchanged)");
        }
        for line in changes {
            let _ = writeln!(out, "    {line}");
        }
    }
}

/// Field-level differences between two records: `+ added`, `- removed`, `~ changed`, by path.
fn diff(before: &Value, after: &Value) -> Vec<String> {
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

/// Output events against expected ones; returns the mismatches (empty = match).
fn compare(outputs: &[Value], expected: &[SampleEvent]) -> Vec<Value> {
    let mut mismatches = Vec::new();
    for i in 0..outputs.len().max(expected.len()) {
        match (outputs.get(i), expected.get(i)) {
            (Some(got), Some(want)) => {
                let mut problems = diff(&want.record, &got["record"]);
                if let Some(tag) = &want.tag
                    && got["tag"] != json!(tag)
                {
                    problems.push(format!("~ tag: {tag:?} → {}", got["tag"]));
                }
                if let Some(t) = want.time_ns
                    && got["time"] != seconds_json(t)
                {
                    problems.push(format!("~ time: {} → {}", seconds(t), got["time"]));
                }
                if !problems.is_empty() {
                    mismatches.push(json!({"output": i + 1, "expected_line": want.line, "differences": problems}));
                }
            }
            (Some(got), None) => mismatches.push(json!({"output": i + 1, "unexpected": got})),
            (None, Some(want)) => {
                mismatches.push(json!({"expected_line": want.line, "missing": want.record}))
            }
            (None, None) => {}
        }
    }
    mismatches
}

fn write_expect(out: &mut String, mismatches: &[Value]) {
    if mismatches.is_empty() {
        let _ = writeln!(out, "\nexpect: output matches");
        return;
    }
    let _ = writeln!(out, "\nexpect: {} mismatch(es)", mismatches.len());
    for m in mismatches {
        if let Some(d) = m.get("differences") {
            let _ = writeln!(
                out,
                "  output event {} vs expected line {}: (expected → got)",
                m["output"], m["expected_line"]
            );
            for line in d.as_array().into_iter().flatten() {
                let _ = writeln!(out, "    {}", line.as_str().unwrap_or_default());
            }
        } else if let Some(u) = m.get("unexpected") {
            let _ = writeln!(out, "  output event {} was not expected: {u}", m["output"]);
        } else {
            let _ = writeln!(
                out,
                "  expected line {} was not produced: {}",
                m["expected_line"], m["missing"]
            );
        }
    }
}

// ---- Outputs ---------------------------------------------------------------------------------

fn test_output(
    args: &TestArgs,
    plugin: Arc<LoadedPlugin>,
    config: &Value,
    inputs: &[SampleEvent],
) -> anyhow::Result<bool> {
    let info = plugin.info().clone();
    let metrics = Metrics::new();
    let context = Arc::new(PluginContext::new(
        &info.name,
        &metrics,
        PluginFamilies::of(&metrics),
        true,
    ));
    let limits = PluginLimits::output_defaults();
    let new_instance = || -> anyhow::Result<PluginInstance> {
        let mut instance = PluginInstance::new(&plugin, context.clone(), limits)?;
        if let Err(problems) = instance.init(&config.to_string())? {
            let problems: Vec<String> = problems
                .iter()
                .map(|p| format!("at `config{}`: {}", p.path, p.message))
                .collect();
            bail!(
                "{}: plugin `{}` refused its config: {}",
                args.plugin.display(),
                info.name,
                problems.join("; ")
            );
        }
        Ok(instance)
    };
    let mut instance = new_instance()?;
    let mut responses = match &args.responses {
        Some(path) => read_responses(path)?.into_iter(),
        None => Vec::new().into_iter(),
    };
    let events: Vec<(String, Event)> = inputs
        .iter()
        .enumerate()
        .map(|(i, s)| to_event(s, i, &args.tag))
        .collect::<anyhow::Result<_>>()?;
    let mut out = String::new();
    let mut report_batches = Vec::new();
    let mut faults = 0;
    let mut peak = 0usize;
    write_plugin_header(&mut out, &plugin, None);
    for (n, chunk) in events
        .chunks(args.batch_size.min(MAX_CALL_EVENTS))
        .enumerate()
    {
        let tag = &chunk[0].0;
        let batch_events: Vec<Event> = chunk.iter().map(|(_, e)| e.clone()).collect();
        let _ = writeln!(
            out,
            "batch {} ({} events, tag {tag:?}):",
            n + 1,
            batch_events.len()
        );
        let encoded = instance.encode(tag, &batch_events);
        peak = peak.max(instance.peak_memory());
        let instructions = instance
            .fuel_used()
            .map(|f| f / batch_events.len().max(1) as u64);
        let mut batch_json = json!({"batch": n + 1, "events": batch_events.len(), "instructions_per_event": instructions});
        match encoded {
            Err(fault) => {
                faults += 1;
                let _ = writeln!(out, "  fault ({}): {fault}", fault.kind());
                batch_json["fault"] = json!({"kind": fault.kind(), "message": fault.to_string()});
                instance = new_instance()?;
            }
            Ok(Err(message)) => {
                let _ = writeln!(out, "  encode refused the batch: {message}");
                batch_json["error"] = json!(message);
            }
            Ok(Ok(requests)) => {
                if let Some(n) = instructions {
                    let _ = writeln!(out, "  {} instructions/event", group_digits(n));
                }
                let mut requests_json = Vec::new();
                for request in &requests {
                    write_request(&mut out, request, &info.requested_hosts);
                    let mut r = request_json(request);
                    if let Some(canned) = responses.next() {
                        let response = HttpResponse {
                            id: request.id,
                            ..canned
                        };
                        let _ = writeln!(
                            out,
                            "    response: {} ({} bytes)",
                            status_text(&response),
                            response.body.len()
                        );
                        match instance.on_response(response) {
                            Ok(delivery) => {
                                let _ = writeln!(out, "    delivery: {}", delivery_text(&delivery));
                                r["delivery"] = json!(delivery_text(&delivery));
                            }
                            Err(fault) => {
                                faults += 1;
                                let _ = writeln!(
                                    out,
                                    "    on-response fault ({}): {fault}",
                                    fault.kind()
                                );
                                r["fault"] =
                                    json!({"kind": fault.kind(), "message": fault.to_string()});
                                instance = new_instance()?;
                            }
                        }
                    } else if args.responses.is_some() {
                        let _ =
                            writeln!(out, "    (no canned response left: delivery not simulated)");
                    }
                    requests_json.push(r);
                }
                batch_json["requests"] = json!(requests_json);
            }
        }
        report_batches.push(batch_json);
    }
    let logs = context.log.take_captured();
    let series = context.metrics.snapshot();
    if args.json {
        let report = json!({
            "plugin": plugin_json(&plugin),
            "batches": report_batches,
            "logs": logs_json(&logs),
            "metrics": series.iter().map(|s| json!({"name": s.name, "labels": labels_json(&s.labels), "value": s.value})).collect::<Vec<_>>(),
            "summary": {"events_in": inputs.len(), "faults": faults, "peak_memory_bytes": peak, "memory_cap_bytes": limits.memory_bytes},
        });
        super::print_stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        write_logs(&mut out, &logs);
        let _ = writeln!(
            out,
            "\nsummary: {} events, {} fault(s); peak memory {} of a {} cap",
            inputs.len(),
            faults,
            human_bytes(peak as u64),
            human_bytes(limits.memory_bytes as u64)
        );
        if args.expect.is_some() {
            let _ = writeln!(out, "note: --expect applies to filters only");
        }
        super::print_stdout(&out)?;
    }
    Ok(faults > 0)
}

/// Header names whose values are credentials: shown masked even when sent as plain headers.
fn looks_secret(header: &str) -> bool {
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

fn write_request(out: &mut String, r: &HttpRequest, requested_hosts: &[String]) {
    let _ = writeln!(
        out,
        "  request {}: {} {} ({} events, compression {})",
        r.id,
        method_name(r.method),
        r.url,
        r.events.len(),
        compression_name(r.compression)
    );
    if !requested_hosts
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
            "    {}: {}****  (secret `{}`, injected by the router)",
            s.header, s.prefix, s.secret
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

fn request_json(r: &HttpRequest) -> Value {
    json!({
        "id": r.id,
        "method": method_name(r.method),
        "url": r.url,
        "headers": r.headers.iter().map(|(k, v)| json!([k, if looks_secret(k) { "****" } else { v.as_str() }])).collect::<Vec<_>>(),
        "secret_headers": r.secret_headers.iter().map(|s| json!({"header": s.header, "secret": s.secret, "value": format!("{}****", s.prefix)})).collect::<Vec<_>>(),
        "compression": compression_name(r.compression),
        "events": r.events,
        "body": serde_json::from_slice::<Value>(&r.body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&r.body))),
    })
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

fn event_json(tag: &[u8], event: &Event) -> Value {
    json!({"tag": String::from_utf8_lossy(tag), "time": seconds_json(event.time_ns), "record": record_json(event)})
}

/// Seconds as JSON: an integer when whole, else a decimal with up to nanosecond digits.
fn seconds_json(ns: u64) -> Value {
    if ns.is_multiple_of(1_000_000_000) {
        json!(ns / 1_000_000_000)
    } else {
        serde_json::from_str(&seconds(ns)).unwrap_or(Value::Null)
    }
}

fn seconds(ns: u64) -> String {
    let frac = ns % 1_000_000_000;
    if frac == 0 {
        return (ns / 1_000_000_000).to_string();
    }
    let digits = format!("{frac:09}");
    format!("{}.{}", ns / 1_000_000_000, digits.trim_end_matches('0'))
}

fn plugin_json(plugin: &LoadedPlugin) -> Value {
    let info = plugin.info();
    json!({
        "name": info.name,
        "version": info.version,
        "kind": kind_name(info.kind),
        "description": info.description,
        "sha256": plugin.sha256(),
    })
}

fn write_plugin_header(out: &mut String, plugin: &LoadedPlugin, on_error: Option<OnError>) {
    let info = plugin.info();
    let _ = writeln!(
        out,
        "plugin {} {} ({}): {}",
        info.name,
        info.version,
        kind_name(info.kind),
        info.description
    );
    if let Some(p) = on_error {
        let _ = writeln!(out, "on_error: {}", p.as_str());
    }
    let _ = writeln!(out);
}

/// `filter` or `output`.
pub fn kind_name(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Filter => "filter",
        PluginKind::Output => "output",
    }
}

fn logs_json(logs: &[LogLine]) -> Vec<Value> {
    logs.iter()
        .map(|l| json!({"level": level_name(l.level), "message": l.message}))
        .collect()
}

fn write_logs(out: &mut String, logs: &[LogLine]) {
    let _ = writeln!(out, "\nlogs ({}):", logs.len());
    for l in logs {
        let _ = writeln!(
            out,
            "  {:<5} {}",
            level_name(l.level).to_ascii_uppercase(),
            l.message
        );
    }
}

fn labels_json(labels: &[(String, String)]) -> Value {
    Value::Object(labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
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

/// `1234567` → `1,234,567`.
fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1536` → `1.5 KiB`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn numbers_and_times_print_readably() {
        assert_eq!(group_digits(1234567), "1,234,567");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(seconds(1_700_000_000_001_000_000), "1700000000.001");
        assert_eq!(
            seconds_json(1_700_000_000_000_000_000),
            json!(1_700_000_000u64)
        );
    }
}
