//! The property test of `run never panics on any config`: every duration and size key of the
//! TOML config, found from the config types themselves (serde's "expected one of" lists and the
//! errors of `DurationStr` / `ByteSize`, not a hand-written list), is fed extreme values (0, 1,
//! the bound and one past it, `u64::MAX`-ish, huge unit multiples, negative, fractional, empty,
//! NaN, random). [`parse`] must accept or refuse each without panicking, and a router built
//! from an accepted config must start and shut down within its `grace` schedule without a panic
//! in any of its tasks.

use super::*;
use crate::config::{ByteSize, DurationStr};
use std::sync::atomic::{AtomicUsize, Ordering};
use toml::{Table, Value};

const PROBE: &str = "zz_probe";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Duration,
    Size,
}

/// A table of the config document: `["outputs", "0", "buffer"]`.
type Path = Vec<String>;

/// The table at `path`, created empty where missing (a nested table such as `limits`).
fn table_at<'a>(doc: &'a mut Table, path: &[String]) -> &'a mut Table {
    let mut t = doc;
    for (n, part) in path.iter().enumerate() {
        let v = t
            .entry(part.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        t = match v {
            Value::Array(items) => {
                let i: usize = path[n + 1].parse().unwrap();
                return table_at(items[i].as_table_mut().unwrap(), &path[n + 2..]);
            }
            Value::Table(inner) => inner,
            other => panic!("{path:?}: {other:?} is not a table"),
        };
    }
    t
}

fn serde_error(doc: &Table) -> Option<String> {
    Value::Table(doc.clone())
        .try_into::<Config>()
        .err()
        .map(|e| e.to_string())
}

/// The backquoted names after "expected" in a serde message: the fields or variants a type has.
fn expected_names(msg: &str) -> Vec<String> {
    let Some((_, list)) = msg.split_once("expected") else {
        return Vec::new();
    };
    let list = list.lines().next().unwrap_or_default();
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Fill the fields serde says are missing until the document deserializes (or gives up).
fn complete(doc: &mut Table, path: &[String], plugin: &str) {
    for _ in 0..16 {
        let Some(e) = serde_error(doc) else { return };
        let Some(field) = e
            .split("missing field `")
            .nth(1)
            .and_then(|r| r.split('`').next())
            .map(str::to_string)
        else {
            return;
        };
        let candidates = [
            Value::String(if field == "path" {
                plugin.to_string()
            } else {
                "x".into()
            }),
            Value::Integer(1),
            Value::Boolean(true),
            Value::Table(Table::new()),
            Value::Array(Vec::new()),
        ];
        let missing = format!("missing field `{field}`");
        let fits = candidates.into_iter().find(|c| {
            table_at(doc, path).insert(field.clone(), c.clone());
            serde_error(doc).is_none_or(|e| !e.contains("invalid type") && !e.contains(&missing))
        });
        if fits.is_none() {
            return;
        }
    }
}

/// Every duration and size key under `path` (recursing into nested tables), by its path.
fn find_keys(doc: &mut Table, path: &Path, plugin: &str, found: &mut Vec<(Path, Kind)>) {
    table_at(doc, path).insert(PROBE.into(), Value::Integer(1));
    let msg = serde_error(doc).unwrap_or_default();
    table_at(doc, path).remove(PROBE);
    let fields = expected_names(&msg);
    if !msg.contains(PROBE) || fields.is_empty() {
        // A free-form table (a plugin's `config`): no keys of the router's own.
        return;
    }
    for field in fields {
        let saved = table_at(doc, path).get(&field).cloned();
        table_at(doc, path).insert(field.clone(), Value::String("1zz_probe".into()));
        let e = serde_error(doc).unwrap_or_default();
        let mut key = path.clone();
        key.push(field.clone());
        if e.contains("\"1zz_probe\" is not a duration") {
            found.push((key, Kind::Duration));
        } else if e.contains("unknown size unit") && e.contains("1zz_probe") {
            found.push((key, Kind::Size));
        } else if e.contains("invalid type: string") && (e.contains("struct") || e.contains("map"))
        {
            table_at(doc, path).insert(field.clone(), Value::Table(Table::new()));
            complete(doc, &key, plugin);
            if serde_error(doc).is_none() {
                find_keys(doc, &key, plugin, found);
            }
        }
        match saved {
            Some(v) => table_at(doc, path).insert(field, v),
            None => table_at(doc, path).remove(&field),
        };
    }
}

/// The variants of a tagged section (`inputs`, `filters`, `outputs`), from serde's message.
fn variants(base: &Table, section: &str) -> Vec<String> {
    let mut doc = base.clone();
    let mut t = Table::new();
    t.insert("type".into(), PROBE.into());
    doc.insert(section.into(), Value::Array(vec![Value::Table(t)]));
    let names = expected_names(&serde_error(&doc).unwrap_or_default());
    assert!(!names.is_empty(), "{section}: no variants found");
    names
}

fn extreme_values(kind: Kind, rng: &mut fastrand::Rng) -> Vec<Value> {
    let s = |v: &str| Value::String(v.into());
    let mut values = vec![
        Value::Integer(0),
        Value::Integer(1),
        Value::Integer(-1),
        Value::Integer(i64::MAX),
        Value::Integer(i64::MIN),
        Value::Float(0.5),
        Value::Float(-0.5),
        Value::Float(1e300),
        Value::Float(f64::NAN),
        Value::Float(f64::INFINITY),
        s(""),
        s(" "),
        s("0"),
        s("-1"),
        s("18446744073709551615"),
        s("18446744073709551616"),
        s("99999999999999999999999999999999999999999"),
    ];
    let units: &[&str] = match kind {
        Kind::Duration => {
            values.extend(
                [
                    "0s",
                    "0ms",
                    "1ms",
                    "0.0000000001s",
                    "1.5s",
                    "-1s",
                    "87600h",
                    "87600h1ms",
                    "307445734561825861m",
                    "5124095576030432h",
                    "18446744073709551615s",
                    "18446744073709551615ms",
                    "1h1h1h1h1h1h1h1h",
                ]
                .map(s),
            );
            &["", "ms", "s", "m", "h"]
        }
        Kind::Size => {
            values.extend(
                [
                    "0B",
                    "1B",
                    "1K",
                    "1.5M",
                    "-1M",
                    "1048576GiB",
                    "1048577GiB",
                    "17179869184G",
                    "18014398509481984K",
                    "16EiB",
                ]
                .map(s),
            );
            &["", "B", "K", "KiB", "M", "MB", "G", "GiB", "T"]
        }
    };
    for _ in 0..12 {
        let n = rng.u64(..) >> rng.u32(0..64);
        let unit = units[rng.usize(..units.len())];
        values.push(s(&format!("{n}{unit}")));
    }
    values
}

/// `0`, `"0"`, `"0s"`, `"0B"`, … and values that parse to zero (`"0.0000000001s"`).
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Integer(n) => *n == 0,
        Value::String(s) => {
            DurationStr::parse(s).is_ok_and(|d| d.0.is_zero())
                || ByteSize::parse(s).is_ok_and(|b| b.0 == 0)
        }
        _ => false,
    }
}

static PANICS: AtomicUsize = AtomicUsize::new(0);
const WORKER: &str = "extreme-values-worker";

/// Build a router from `config` (binding only 127.0.0.1:0), shut it down at once, and wait for
/// it within a bound: a panic in any task is counted by the hook, a hang is an error.
fn build_and_shut_down(rt: &tokio::runtime::Runtime, config: &Config) -> Result<(), String> {
    rt.block_on(async {
        let metrics = crate::ops::metrics::Metrics::new();
        let Ok(router) = crate::topology::Router::build(config, metrics).await else {
            // Refused at build (e.g. a plugin): an error, not a panic.
            return Ok(());
        };
        let (trigger, shutdown) = crate::ops::shutdown::channel();
        trigger.trigger();
        tokio::time::timeout(std::time::Duration::from_secs(20), router.run(shutdown))
            .await
            .map(drop)
            .map_err(|_| "shutdown did not finish within 20s".to_string())
    })
}

/// Outputs that reach AWS are checked through `parse` only: building them loads credentials.
fn builds_offline(config: &Config) -> bool {
    config.outputs.iter().all(|o| {
        !matches!(
            o,
            OutputConfig::CloudwatchLogs(_) | OutputConfig::Firehose(_) | OutputConfig::S3(_)
        )
    })
}

#[test]
fn every_duration_and_size_key_survives_extreme_values() {
    // Count the panics of this test's threads only (`cargo test` runs others beside it).
    let previous = std::sync::Arc::new(std::panic::take_hook());
    let chained = previous.clone();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or_default();
        if name.starts_with(WORKER) || name.contains("every_duration_and_size_key") {
            PANICS.fetch_add(1, Ordering::SeqCst);
        }
        chained(info);
    }));
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(WORKER)
        .enable_all()
        .build()
        .unwrap();
    let base: Table = toml::from_str(&format!(
        "[service]\nplugin_cache_dir = \"{0}/cache\"\nhttp_listen = \"127.0.0.1:0\"\n\
         [[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:0\"\n\
         [[outputs]]\ntype = \"null\"\nmatch = \"*\"\n",
        dir.path().display()
    ))
    .unwrap();
    assert!(serde_error(&base).is_none());

    // Every component kind, each as the one under test; plus a disk buffer.
    let mut bases: Vec<(Table, Path, &str)> = vec![
        (base.clone(), vec!["service".into()], ""),
        (base.clone(), vec!["inputs".into(), "0".into()], ""),
    ];
    for (section, plugin) in [
        ("filters", wasm_router_test_artifacts::KEEP_ALL),
        ("outputs", wasm_router_test_artifacts::JSON_OUTPUT),
    ] {
        for kind in variants(&base, section) {
            let mut doc = base.clone();
            let mut t = Table::new();
            t.insert("type".into(), kind.clone().into());
            t.insert("match".into(), "*".into());
            doc.insert(section.into(), Value::Array(vec![Value::Table(t)]));
            let path = vec![section.to_string(), "0".into()];
            complete(&mut doc, &path, plugin);
            // What `validate` requires beyond serde, so that extreme values are also accepted.
            let required: Table = toml::from_str(match kind.as_str() {
                "cloudwatch_logs" | "cloudwatch" => {
                    "region = \"us-east-1\"\nlog_group_name = \"g\"\nlog_stream_name = \"s\""
                }
                "firehose" | "kinesis_firehose" => {
                    "region = \"us-east-1\"\ndelivery_stream = \"d\""
                }
                "s3" => "region = \"us-east-1\"\nbucket = \"b\"",
                "wasm" if section == "outputs" => "allow_hosts = [\"http://127.0.0.1:9\"]",
                _ => "",
            })
            .unwrap();
            table_at(&mut doc, &path).extend(required);
            bases.push((doc, path, plugin));
        }
    }
    let mut disk = base.clone();
    let buffer: Table = toml::from_str(&format!(
        "type = \"disk\"\npath = \"{}/disk\"",
        dir.path().display()
    ))
    .unwrap();
    table_at(&mut disk, &["outputs".into(), "0".into()]).insert("buffer".into(), buffer.into());
    bases.push((disk, vec!["outputs".into(), "0".into()], ""));

    let mut rng = fastrand::Rng::with_seed(13);
    let (mut keys_seen, mut accepted, mut refused, mut built) = (Vec::new(), 0, 0, 0);
    let mut failures = Vec::new();
    let mut zero_accepted = Vec::new();
    for (mut doc, path, plugin) in bases {
        assert!(
            serde_error(&doc).is_none(),
            "{path:?}: base does not parse: {doc}"
        );
        let mut keys = Vec::new();
        find_keys(&mut doc, &path, plugin, &mut keys);
        for (key, kind) in keys {
            keys_seen.push(format!("{}: {kind:?}", key.join(".")));
            for value in extreme_values(kind, &mut rng) {
                let mut case = doc.clone();
                let (last, parent) = key.split_last().unwrap();
                table_at(&mut case, parent).insert(last.clone(), value.clone());
                let text = toml::to_string(&case).unwrap();
                let what = format!("{} = {value}", key.join("."));
                let before = PANICS.load(Ordering::SeqCst);
                let parsed = std::panic::catch_unwind(|| parse(&text, "extremes.toml"));
                match parsed {
                    Err(_) => failures.push(format!("{what}: parse panicked")),
                    Ok(Err(_)) => refused += 1,
                    Ok(Ok(config)) => {
                        accepted += 1;
                        if is_zero(&value) {
                            zero_accepted.push(key.join("."));
                        }
                        if builds_offline(&config) {
                            built += 1;
                            if let Err(e) = build_and_shut_down(&rt, &config) {
                                failures.push(format!("{what}: {e}"));
                            }
                        }
                    }
                }
                if PANICS.load(Ordering::SeqCst) > before {
                    failures.push(format!("{what}: a task panicked"));
                }
            }
        }
    }
    drop(std::panic::take_hook());
    if let Ok(previous) = std::sync::Arc::try_unwrap(previous) {
        std::panic::set_hook(previous);
    }
    eprintln!(
        "{} keys, {accepted} values accepted ({built} built and shut down), {refused} refused:\n{}",
        keys_seen.len(),
        keys_seen.join("\n")
    );
    zero_accepted.sort();
    zero_accepted.dedup();
    eprintln!("zero accepted for: {zero_accepted:?}");
    for expected in [
        "service.grace: Duration",
        "service.retry_backoff_base: Duration",
        "service.memory_budget: Size",
        "inputs.0.buffer_max_size: Size",
        "outputs.0.buffer.max_bytes: Size",
        "outputs.0.retry_until: Duration",
    ] {
        assert!(
            keys_seen.iter().any(|k| k == expected),
            "{expected} was not found among the keys"
        );
    }
    assert!(
        accepted > 0 && refused > 0 && built > 0,
        "accepted {accepted}, refused {refused}, built {built}"
    );
    // Zero is refused wherever it makes no sense; where it means something it is listed here.
    let zero_means_something = [
        "service.grace",                       // stop at once, deliver nothing more
        "outputs.0.store_dir_limit_size",      // s3, as in Fluent Bit: no limit
        "outputs.0.quarantine_dir_limit_size", // s3, as in Fluent Bit: no limit
        "outputs.0.max_response_bytes",        // wasm output: the plugin gets no response body
        "outputs.0.batch_timeout",             // send at once, no flush window
        "service.batch_timeout",               // every output sends at once
    ];
    for key in &zero_accepted {
        assert!(
            zero_means_something.contains(&key.as_str()),
            "{key} accepts 0; refuse it in validate (\"must be more than 0\") or list it here with its meaning"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
