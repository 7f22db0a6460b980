//! Golden `wasm-router test` runs of the first-party `redact` and `parse-json` plugins. Each
//! directory `host/tests/golden/plugins/<plugin>/` holds the input events, the config, the
//! expected output events (`expected.jsonl`, also checked through `--expect`) and the expected
//! report (`report.json`: outcomes, outputs, logs, plugin metrics; instruction counts, memory
//! and the file hash left out). After a deliberate change to a plugin, rewrite them with
//! `UPDATE_GOLDEN=1 cargo test -p wasm-router --test plugins golden` and review the diff.

use super::support::cache_dir;
use crate::common::{router_command, run_to_end};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn dir(plugin: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/plugins")
        .join(plugin)
}

fn run(args: &[&str]) -> std::process::Output {
    let mut cmd = router_command();
    cmd.env("XDG_CACHE_HOME", cache_dir()).args(args);
    run_to_end(&mut cmd, &format!("wasm-router {}", args.join(" ")))
}

/// The report without what changes when the plugin is merely rebuilt.
fn normalized(mut report: Value) -> Value {
    report["plugin"].as_object_mut().unwrap().remove("sha256");
    for key in ["instructions_per_event", "peak_memory_bytes"] {
        report["summary"].as_object_mut().unwrap().remove(key);
    }
    for event in report["events"].as_array_mut().unwrap() {
        event.as_object_mut().unwrap().remove("instructions");
    }
    report
}

fn golden(plugin: &str, wasm: &str) {
    let dir = dir(plugin);
    let path = |name: &str| dir.join(name).display().to_string();
    let (input, config, expected, report_file) = (
        path("input.jsonl"),
        path("config.toml"),
        path("expected.jsonl"),
        path("report.json"),
    );
    let out = run(&[
        "test", wasm, "--input", &input, "--config", &config, "--json",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = normalized(serde_json::from_slice(&out.stdout).unwrap());
    let outputs: Vec<String> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            e["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o.to_string())
        })
        .collect();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(
            &report_file,
            serde_json::to_string_pretty(&report).unwrap() + "\n",
        )
        .unwrap();
        std::fs::write(&expected, outputs.join("\n") + "\n").unwrap();
    }
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_file).unwrap()).unwrap();
    assert_eq!(
        serde_json::to_string_pretty(&report).unwrap(),
        serde_json::to_string_pretty(&want).unwrap(),
        "{plugin}: the report differs from {report_file}"
    );
    let out = run(&[
        "test", wasm, "--input", &input, "--config", &config, "--expect", &expected,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("expect: output matches"),
        "{text}"
    );
}

#[test]
fn redact_masks_every_detector_and_keeps_clean_events() {
    golden("redact", wasm_router_test_artifacts::REDACT);
}

#[test]
fn parse_json_merges_json_logs_and_leaves_the_rest() {
    golden("parse-json", wasm_router_test_artifacts::PARSE_JSON);
}
