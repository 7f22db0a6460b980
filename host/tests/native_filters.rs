//! The native Fluent Bit filters through the real binary and a real forward client (PyPI
//! `fluent-logger`):
//! - the config the ECS agent generates with `enable-ecs-log-metadata=true` and an
//!   `exclude-pattern` (firelens-aws.md §1.5: its `grep` and `record_modifier` filters), run as
//!   generated: DEBUG lines of the app's tag are filtered out, every event gains the four
//!   metadata fields, times and order are kept (key order is checked by the unit tests);
//! - the image's `parse-json.conf` (`[SERVICE] Parsers_File` + `[FILTER] parser`) with a
//!   custom parser from `-R`, followed by a `modify` filter with a condition;
//! - `regex` (with `Types` and a time) and `logfmt` parsers from `-R` tried in turn;
//! - `wasm-router validate` refuses what the native filters cannot do, naming `file:line`.

use crate::common;

use common::{
    PrintedEvent, assert_events_eq, classic_dir, fluent_logger_send as send, start_classic,
    with_tag,
};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

const BASE_NS: u64 = 1_700_000_000_000_000_000;
const TASK_ARN: &str =
    "arn:aws:ecs:us-east-1:111122223333:task/prod/0123456789abcdef0123456789abcdef";

/// §1.5 with `enable-ecs-log-metadata` on (EC2, so `ec2_instance_id` too) and the app
/// container's `exclude-pattern=^DEBUG`, bridge mode, outputs to stdout instead of CloudWatch.
const GENERATED_WITH_METADATA: &str = "
[INPUT]
    Name forward
    Mem_Buf_Limit 50MB
    unix_path {dir}/fluent.sock

[INPUT]
    Name forward
    Listen 127.0.0.1
    Port 0

[FILTER]
    Name   grep
    Match app-firelens*
    Exclude log ^DEBUG

[FILTER]
    Name record_modifier
    Match *
    Record ec2_instance_id i-0abc1234def567890
    Record ecs_cluster prod
    Record ecs_task_arn {task_arn}
    Record ecs_task_definition web:7

[OUTPUT]
    Name stdout
    Match *-firelens*
";

#[test]
fn the_generated_metadata_config_filters_and_annotates_events_from_fluent_logger() {
    let router = start_classic(
        &GENERATED_WITH_METADATA.replace("{task_arn}", TASK_ARN),
        &[],
        &[],
    );
    let addr = router.tcp_addr();

    let app = "app-firelens-0123456789abcdef";
    let sidecar = "sidecar-firelens-0123456789abcdef";
    let mut sent = Vec::new();
    for i in 0..40u64 {
        let level = if i % 4 == 0 { "DEBUG" } else { "INFO" };
        let source = if i % 2 == 0 { "stdout" } else { "stderr" };
        let record = json!({
            "container_id": "c0ffee",
            "container_name": "/ecs-web-7-app",
            "source": source,
            "log": format!("{level} request {i}"),
        });
        sent.push((if i < 30 { app } else { sidecar }, BASE_NS + i, record));
    }
    send(&addr, &sent);

    let metadata = |record: &Value| {
        let mut r = record.as_object().unwrap().clone();
        r.insert("ec2_instance_id".into(), json!("i-0abc1234def567890"));
        r.insert("ecs_cluster".into(), json!("prod"));
        r.insert("ecs_task_arn".into(), json!(TASK_ARN));
        r.insert("ecs_task_definition".into(), json!("web:7"));
        Value::Object(r)
    };
    let expected: Vec<PrintedEvent> = sent
        .iter()
        .filter(|(tag, _, r)| *tag != app || !r["log"].as_str().unwrap().starts_with("DEBUG"))
        .map(|(tag, t, r)| PrintedEvent::new(tag, *t, metadata(r)))
        .collect();
    assert_eq!(
        expected.len(),
        40 - 8,
        "the app's 8 DEBUG lines are filtered out"
    );
    router.wait_for_events(expected.len());
    let got = router.stop();
    // One connection per tag: order is kept within each.
    for tag in [app, sidecar] {
        assert_events_eq(&with_tag(&got, tag), &with_tag(&expected, tag));
    }
    assert_eq!(got.len(), expected.len());
}

#[test]
fn parse_json_with_a_parser_from_minus_r_then_modify() {
    let parsers = "[PARSER]\n    Name app\n    Format json\n    Time_Key ts\n    Time_Format %Y-%m-%dT%H:%M:%S.%L%z\n\n[PARSER]\n    Name access\n    Format regex\n    Regex ^(?<host>[^ ]*)\n";
    let config = "
[SERVICE]
    Parsers_File /fluent-bit/parsers/parsers.conf

[INPUT]
    Name forward
    Listen 127.0.0.1
    Port 0

[FILTER]
    Name parser
    Match *
    Key_Name log
    Parser app
    Parser json
    Reserve_Data True

[FILTER]
    Name modify
    Match *
    Condition Key_value_equals source stderr
    Rename level severity
    Set stream \"standard error\"

[OUTPUT]
    Name stdout
    Match *
";
    let router = start_classic(
        config,
        &[("parsers.conf", parsers)],
        &["-R", "{dir}/parsers.conf"],
    );
    let addr = router.tcp_addr();
    let tag = "web-firelens-1";
    let sent = vec![
        (
            tag,
            BASE_NS,
            json!({"source": "stdout", "log": "{\"level\":\"info\",\"ts\":\"2024-01-01T00:00:00.5+00:00\",\"n\":1}"}),
        ),
        (
            tag,
            BASE_NS + 1,
            json!({"source": "stderr", "log": "{\"level\":\"error\",\"msg\":\"boom\"}"}),
        ),
        (
            tag,
            BASE_NS + 2,
            json!({"source": "stderr", "log": "plain text"}),
        ),
    ];
    send(&addr, &sent);
    let expected = vec![
        PrintedEvent::new(
            tag,
            1_704_067_200_500_000_000,
            json!({"level": "info", "n": 1, "source": "stdout"}),
        ),
        PrintedEvent::new(
            tag,
            BASE_NS + 1,
            json!({"severity": "error", "msg": "boom", "source": "stderr", "stream": "standard error"}),
        ),
        PrintedEvent::new(
            tag,
            BASE_NS + 2,
            json!({"source": "stderr", "log": "plain text", "stream": "standard error"}),
        ),
    ];
    router.wait_for_events(expected.len());
    assert_events_eq(&router.stop(), &expected);
}

#[test]
fn regex_and_logfmt_parsers_with_types_and_time() {
    let parsers = r#"[PARSER]
    Name   access
    Format regex
    Regex  ^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+) (?<path>[^ ]*) [^"]*" (?<code>[^ ]*) (?<size>[^ ]*)$
    Time_Key time
    Time_Format %d/%b/%Y:%H:%M:%S %z
    Types code:integer size:integer

[PARSER]
    Name   kv
    Format logfmt
    Time_Key ts
    Time_Format %s
"#;
    let config = "
[INPUT]
    Name forward
    Listen 127.0.0.1
    Port 0

[FILTER]
    Name parser
    Match *
    Key_Name log
    Parser access
    Parser kv
    Reserve_Data On

[OUTPUT]
    Name stdout
    Match *
";
    let router = start_classic(
        config,
        &[("parsers.conf", parsers)],
        &["-R", "{dir}/parsers.conf"],
    );
    let addr = router.tcp_addr();
    let tag = "web";
    let sent = vec![
        (
            tag,
            BASE_NS,
            json!({"log": "10.0.0.1 - bob [10/Oct/2000:13:55:36 -0700] \"GET /index.html HTTP/1.1\" 200 512", "source": "stdout"}),
        ),
        (
            tag,
            BASE_NS + 1,
            json!({"log": "ts=1700000000 level=warn msg=\"disk \\\"full\\\"\" retry", "source": "stderr"}),
        ),
        (tag, BASE_NS + 2, json!({"log": "   "})),
    ];
    send(&addr, &sent);
    let expected = vec![
        PrintedEvent::new(
            tag,
            971_211_336_000_000_000,
            json!({"host": "10.0.0.1", "user": "bob", "method": "GET", "path": "/index.html", "code": 200, "size": 512, "source": "stdout"}),
        ),
        PrintedEvent::new(
            tag,
            1_700_000_000_000_000_000,
            json!({"level": "warn", "msg": "disk \"full\"", "retry": true, "source": "stderr"}),
        ),
        PrintedEvent::new(tag, BASE_NS + 2, json!({"log": "   "})),
    ];
    router.wait_for_events(expected.len());
    assert_events_eq(&router.stop(), &expected);
}

/// `validate` of the classic `config`, with `files` beside it (see [`classic_dir`]).
fn validate(config: &str, files: &[(&str, &str)]) -> (bool, String) {
    let (_dir, path) = classic_dir(config, files);
    common::validate(&path, &[])
}

const INPUT: &str = "[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n[OUTPUT]\n    Name null\n    Match *\n";

#[test]
fn what_the_native_filters_cannot_do_is_refused_with_the_line_and_the_fix() {
    // A parser Regex that neither engine runs (`\X` is Onigmo's alone): the Regex line.
    let (ok, out) = validate(
        &format!(
            "[SERVICE]\n    Parsers_File {{dir}}/parsers.conf\n{INPUT}[FILTER]\n    Name parser\n    Match *\n    Key_Name log\n    Parser access\n"
        ),
        &[(
            "parsers.conf",
            "[PARSER]\n    Name access\n    Format regex\n    Regex ^(?<host>\\X)\n",
        )],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("fluent-bit.conf:14: Parser access")
            && out.contains("parsers.conf:4: parser `access`: Regex")
            && out.contains("Rewrite"),
        "{out}"
    );
    // Onigmo-only syntax in a grep pattern.
    let (ok, out) = validate(
        &format!("{INPUT}[FILTER]\n    Name grep\n    Match *\n    Regex log (?<!x)y\n"),
        &[],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("fluent-bit.conf:11:") && out.contains("look-around"),
        "{out}"
    );
    // A modify condition that does not exist.
    let (ok, out) = validate(
        &format!(
            "{INPUT}[FILTER]\n    Name modify\n    Match *\n    Condition Key_is_big log\n    Remove x\n"
        ),
        &[],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("fluent-bit.conf:11:") && out.contains("unknown condition `Key_is_big`"),
        "{out}"
    );
    // The same filters in TOML, wrong: the key path and the fix.
    let dir = tempfile::tempdir().unwrap();
    let toml_path = dir.path().join("router.toml");
    std::fs::write(
        &toml_path,
        "[[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:0\"\n[[filters]]\ntype = \"grep\"\nmatch = \"*\"\nlogical_op = \"and\"\nrules = [{ key = \"log\", regex = \"a\" }, { key = \"log\", exclude = \"b\" }]\n[[outputs]]\ntype = \"null\"\nmatch = \"*\"\n",
    )
    .unwrap();
    let out = common::router_command()
        .args(["validate", "-c", toml_path.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("filters[0].logical_op") && text.contains("two grep filters"),
        "{text}"
    );
    assert!(Path::new(&toml_path).exists());
}

#[test]
fn the_metadata_example_validates_with_the_image_parse_json_config() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/firelens/metadata.conf");
    let text = std::fs::read_to_string(example).unwrap();
    assert!(text.contains("@INCLUDE /fluent-bit/configs/parse-json.conf"));
    // The image's parse-json.conf (aws-for-fluent-bit configs/parse-json.conf), next to it.
    let parse_json = "[SERVICE]\n    Parsers_File /fluent-bit/parsers/parsers.conf\n    Flush 1\n    Grace 30\n\n[FILTER]\n    Name parser\n    Match *\n    Key_Name log\n    Parser json\n    Reserve_Data True\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("parse-json.conf"), parse_json).unwrap();
    let path = dir.path().join("fluent-bit.conf");
    std::fs::write(
        &path,
        text.replace("/fluent-bit/configs/parse-json.conf", "parse-json.conf"),
    )
    .unwrap();
    let out = common::router_command()
        .args(["validate", "-c", path.to_str().unwrap()])
        .env("role_arn_0", "arn:aws:iam::111122223333:role/logs")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("valid"), "{text}");
}

#[test]
fn a_changed_native_filter_is_reloaded_when_its_config_file_changes() {
    let config = |pattern: &str| {
        format!(
            "[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n\n[FILTER]\n    Name grep\n    Match *\n    Exclude log {pattern}\n\n[OUTPUT]\n    Name stdout\n    Match *\n"
        )
    };
    let router = start_classic(&config("^DEBUG"), &[], &[]);
    let addr = router.tcp_addr();
    let records = |n: u64| {
        vec![
            ("app", BASE_NS + n, json!({"log": format!("DEBUG {n}")})),
            ("app", BASE_NS + n + 1, json!({"log": format!("INFO {n}")})),
        ]
    };
    send(&addr, &records(0));
    router.wait_for_events(1);

    // Replaced the way deployments do: write, then rename over the old file.
    let path = router.dir.path().join("fluent-bit.conf");
    let tmp = router.dir.path().join(".fluent-bit.conf.tmp");
    std::fs::write(&tmp, config("^INFO")).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    router.wait_for_log("the reload of the grep filter", |l| {
        l.contains("reload done") && l.contains("reloaded_plugins=1")
    });
    send(&addr, &records(10));
    router.wait_for_events(2);
    let got = router.stop();
    let logs: Vec<&str> = got
        .iter()
        .map(|e| e.record["log"].as_str().unwrap())
        .collect();
    assert_eq!(logs, ["INFO 0", "DEBUG 10"]);
}

#[test]
fn validate_takes_minus_r_like_run() {
    let dir = tempfile::tempdir().unwrap();
    let parsers = dir.path().join("parsers.conf");
    std::fs::write(&parsers, "[PARSER]\n    Name app\n    Format json\n").unwrap();
    let config = dir.path().join("fluent-bit.conf");
    std::fs::write(
        &config,
        "[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n\n[FILTER]\n    Name parser\n    Match *\n    Key_Name log\n    Parser app\n\n[OUTPUT]\n    Name stdout\n    Match *\n",
    )
    .unwrap();
    let validate = |extra: &[&Path]| {
        Command::new(env!("CARGO_BIN_EXE_wasm-router"))
            .arg("validate")
            .arg("-c")
            .arg(&config)
            .args(extra.iter().flat_map(|p| [Path::new("-R"), p]))
            .output()
            .unwrap()
    };
    let without = validate(&[]);
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(
        !without.status.success() && stderr.contains("app"),
        "{stderr}"
    );
    let with = validate(&[&parsers]);
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    assert!(String::from_utf8_lossy(&with.stdout).contains("valid"));
}
