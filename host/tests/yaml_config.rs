//! Fluent Bit's YAML config format through the real binary: a `fluent-bit.yaml` with a forward
//! input, a grep filter, a stream task and a stdout output routes events from a real forward
//! client (PyPI `fluent-logger`) as its classic twin does; a mistake names the YAML line.

use crate::common;

use common::{RouterProcess, fluent_logger_send as send};
use serde_json::json;

const CONFIG: &str = "
env:
  OUT_TAG: errors
service:
  log_level: info
pipeline:
  inputs:
    - name: forward
      listen: 127.0.0.1
      port: 0
  filters:
    - name: grep
      match: 'app*'
      exclude:
        - log ^DEBUG
  outputs:
    - name: stdout
      match: 'app*'
    - name: stdout
      match: ${OUT_TAG}
stream_processor:
  - name: errors
    exec: \"CREATE STREAM e WITH (tag='errors') AS SELECT log FROM TAG:'app*' WHERE level = 'error';\"
";

#[test]
fn a_yaml_config_routes_like_its_classic_twin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fluent-bit.yaml");
    std::fs::write(&path, CONFIG).unwrap();
    let mut cmd = common::router_command();
    cmd.arg("-c").arg(&path);
    let router = RouterProcess::spawn(&mut cmd, dir);
    let base = 1_700_000_000_000_000_000u64;
    send(
        &router.tcp_addr(),
        &[
            ("app", base, json!({"log": "DEBUG noise", "level": "debug"})),
            (
                "app",
                base + 1,
                json!({"log": "disk full", "level": "error"}),
            ),
            ("app", base + 2, json!({"log": "served", "level": "info"})),
        ],
    );
    router.wait_for_events(3);
    let got = router.stop();
    // Two outputs print side by side: compare as a set.
    let mut summary: Vec<String> = got
        .iter()
        .map(|e| format!("{} {}", e.tag, e.record))
        .collect();
    summary.sort();
    assert_eq!(
        summary,
        [
            r#"app {"level":"error","log":"disk full"}"#,
            r#"app {"level":"info","log":"served"}"#,
            r#"errors {"log":"disk full"}"#,
        ]
    );
}

#[test]
fn validate_names_the_yaml_line_of_each_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fluent-bit.yaml");
    std::fs::write(
        &path,
        "pipeline:\n  inputs:\n    - name: forward\n      Listen: 127.0.0.1\n      bogus: 1\n    - name: nope\n  outputs:\n    - name: stdout\n      match: '*'\n",
    )
    .unwrap();
    let (ok, text) = common::validate(&path, &[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("fluent-bit.yaml:5: unknown key `bogus`"),
        "{text}"
    );
    assert!(
        text.contains("fluent-bit.yaml:6: input `nope` is not supported"),
        "{text}"
    );
}
