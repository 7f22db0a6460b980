//! `wasm-router test`, `plugin inspect` and `plugin compile`, run as the real binary.

use super::support::cache_dir;
use crate::common::{router_command, run_to_end};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// `wasm-router ARGS…` with the shared compile cache, run to the end.
pub(super) fn run(args: &[&str]) -> Output {
    let mut cmd: Command = router_command();
    cmd.env("XDG_CACHE_HOME", cache_dir()).args(args);
    run_to_end(&mut cmd, &format!("wasm-router {}", args.join(" ")))
}

pub(super) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(super) fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn test_shows_each_outcome_as_a_diff_with_instructions_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "in.jsonl",
        "{\"log\": \"pin 1234\", \"n\": 1}\n{\"tag\": \"app.b\", \"time\": 1700000000.25, \"record\": {\"log\": \"no digits\"}}\n",
    );
    let out = run(&[
        "test",
        wasm_router_test_artifacts::DIGIT_MASK,
        "--input",
        &input,
    ]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("event 1 [replace]"), "{text}");
    assert!(
        text.contains("~ log: \"pin 1234\" → \"pin ****\""),
        "{text}"
    );
    assert!(text.contains("event 2 [keep]"), "{text}");
    assert!(text.contains("instructions"), "{text}");
    assert!(text.contains("peak memory"), "{text}");

    let out = run(&[
        "test",
        wasm_router_test_artifacts::DIGIT_MASK,
        "--input",
        &input,
        "--json",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["events"][0]["outputs"][0]["record"]["log"],
        "pin ****"
    );
    assert_eq!(report["events"][1]["input"]["tag"], "app.b");
    assert_eq!(report["events"][1]["input"]["time"], 1700000000.25);
    assert!(report["events"][0]["instructions"].as_u64().unwrap() > 0);
    assert!(report["summary"]["peak_memory_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn test_exits_1_on_an_expect_mismatch_and_on_a_fault() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.jsonl", "{\"log\": \"pin 1234\"}\n");
    let right = write(dir.path(), "right.jsonl", "{\"log\": \"pin ****\"}\n");
    let wrong = write(
        dir.path(),
        "wrong.jsonl",
        "{\"tag\": \"test\", \"record\": {\"log\": \"pin 1234\"}}\n{\"log\": \"extra\"}\n",
    );
    let out = run(&[
        "test",
        wasm_router_test_artifacts::DIGIT_MASK,
        "--input",
        &input,
        "--expect",
        &right,
    ]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("expect: output matches"));

    let out = run(&[
        "test",
        wasm_router_test_artifacts::DIGIT_MASK,
        "--input",
        &input,
        "--expect",
        &wrong,
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("2 mismatch(es)"), "{text}");
    assert!(
        text.contains("~ log: \"pin 1234\" → \"pin ****\""),
        "{text}"
    );
    assert!(text.contains("expected line 2 was not produced"), "{text}");

    let out = run(&["test", wasm_router_test_artifacts::TRAP, "--input", &input]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("[fault]") && text.contains("panicked"),
        "{text}"
    );
}

#[test]
fn test_prints_an_outputs_requests_with_secrets_masked_and_replays_responses() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "in.jsonl",
        "{\"log\": \"a\"}\n{\"log\": \"b\"}\n{\"log\": \"c\"}\n",
    );
    let responses = write(
        dir.path(),
        "responses.jsonl",
        "{\"status\": 429, \"headers\": {\"Retry-After\": \"2\"}}\n{\"status\": 413, \"body\": \"too large\"}\n",
    );
    let args = [
        "test",
        wasm_router_test_artifacts::JSON_OUTPUT,
        "--input",
        &input,
        "--set",
        "url=http://127.0.0.1:9/intake",
        "--set",
        "api_key_header=DD-API-KEY",
        "--batch-size",
        "2",
        "--responses",
        &responses,
    ];
    let out = run(&args);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("request 0: POST http://127.0.0.1:9/intake (2 events"),
        "{text}"
    );
    assert!(
        text.contains("DD-API-KEY: ****  (secret `api_key`"),
        "{text}"
    );
    assert!(text.contains("\"log\": \"a\""), "{text}");
    assert!(text.contains("delivery: retry after 2000 ms"), "{text}");
    assert!(text.contains("delivery: split-and-retry"), "{text}");

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let report: Value = serde_json::from_slice(&run(&json_args).stdout).unwrap();
    let request = &report["batches"][0]["requests"][0];
    assert_eq!(request["secret_headers"][0]["value"], "****");
    assert_eq!(
        request["body"],
        serde_json::json!([{"log": "a"}, {"log": "b"}])
    );
    assert_eq!(
        report["batches"][1]["requests"][0]["delivery"],
        "split-and-retry (the router halves the events and encodes each half)"
    );
}

#[test]
fn inspect_shows_metadata_schema_imports_and_exports() {
    let out = run(&["plugin", "inspect", wasm_router_test_artifacts::JSON_OUTPUT]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    for wanted in [
        "name:              json-output",
        "kind:              output",
        "requested hosts:   http://127.0.0.1",
        "requested secrets: api_key",
        "\"required\"",
        "encode: func(batch: record { tag, time-ns, body-ends, bodies })",
    ] {
        assert!(text.contains(wanted), "{wanted:?} in\n{text}");
    }
    let out = run(&[
        "plugin",
        "inspect",
        wasm_router_test_artifacts::KEEP_ALL,
        "--json",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["kind"], "filter");
    let imports: Vec<&str> = report["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(
        imports.contains(&"wasm-router:plugin/log@0.1.0"),
        "{imports:?}"
    );
    // A plugin that loads has every import granted (or denied at call); each says what it gets.
    for import in report["imports"].as_array().unwrap() {
        assert_eq!(import["access"], "granted", "{import}");
        assert!(!import["access_note"].as_str().unwrap().is_empty());
    }
    let out = run(&["plugin", "inspect", wasm_router_test_artifacts::KEEP_ALL]);
    let text = stdout(&out);
    assert!(
        text.contains("wasm-router:plugin/log@0.1.0 (instance) [granted: the plugin contract]"),
        "{text}"
    );
    let exports: Vec<&str> = report["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(exports, ["info", "init", "process"]);
}

#[test]
fn test_takes_limits_and_a_fault_says_which_limit_to_raise_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.jsonl", "{\"log\": \"a\"}\n");
    let out = run(&[
        "test",
        wasm_router_test_artifacts::INFINITE_LOOP,
        "--input",
        &input,
        "--limit",
        "deadline=20ms,memory=32MiB",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for wanted in [
        "past its 20ms deadline",
        "limits = { deadline = \"200ms\" }",
        "[[filters]] or [[outputs]]",
        "--limit deadline=",
        "of a 32.0 MiB cap",
    ] {
        assert!(text.contains(wanted), "{wanted:?} in\n{text}");
    }
    let out = run(&[
        "test",
        wasm_router_test_artifacts::MEMORY_BOMB,
        "--input",
        &input,
        "--limit",
        "memory=8MiB",
        "--limit",
        "deadline=10s",
    ]);
    let text = stdout(&out);
    assert!(
        text.contains("memory cap of 8388608 bytes") && text.contains("--limit memory="),
        "{text}"
    );
    let out = run(&[
        "test",
        wasm_router_test_artifacts::KEEP_ALL,
        "--input",
        &input,
        "--limit",
        "speed=1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("use deadline, memory, fuel or max_calls")
    );
}

#[test]
fn compile_fills_the_cache_or_writes_an_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache").display().to_string();
    let first = run(&[
        "plugin",
        "compile",
        wasm_router_test_artifacts::KEEP_ALL,
        "--cache-dir",
        &cache,
    ]);
    assert!(
        stdout(&first).contains("compiled into the cache"),
        "{}",
        stdout(&first)
    );
    let second = run(&[
        "plugin",
        "compile",
        wasm_router_test_artifacts::KEEP_ALL,
        "--cache-dir",
        &cache,
    ]);
    assert!(
        stdout(&second).contains("already in the cache"),
        "{}",
        stdout(&second)
    );

    let artifact = dir.path().join("keep-all.cwasm");
    let out = run(&[
        "plugin",
        "compile",
        wasm_router_test_artifacts::KEEP_ALL,
        "-o",
        artifact.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(&artifact).unwrap().starts_with(b"\x7fELF"));
    // The router refuses to load an artifact as a plugin, and says what to configure instead.
    let out = run(&["plugin", "inspect", artifact.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("configure the .wasm file"));
}
