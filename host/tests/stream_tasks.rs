//! Stream tasks (`[STREAM_TASK]`, `Streams_File`) through the real binary and a real forward
//! client (PyPI `fluent-logger`): the FireLens "splitting log streams" example routes each log
//! level to its own tag, and containers tagged apart by `container_name` plus a copy of
//! everything route exactly as Fluent Bit routes them.

use crate::common;

use common::{fluent_logger_send as send, start_classic};
use serde_json::json;

const BASE_NS: u64 = 1_700_000_000_000_000_000;

/// The amazon-ecs-firelens-examples `splitting-log-streams` config, with stdout in place of
/// CloudWatch and a TCP forward input on a free port.
const SPLITTING: &str = "
[SERVICE]
    Parsers_File {dir}/parser.conf
    Streams_File stream_processing.conf

[INPUT]
    Name forward
    Listen 127.0.0.1
    Port 0

[FILTER]
    Name parser
    Match *
    Key_Name log
    Parser json
    Reserve_Data True

[OUTPUT]
    Name stdout
    Match logs.*
";

const STREAMS: &str = "
[STREAM_TASK]
    Name   debug_logs
    Exec   CREATE STREAM debug WITH (tag='logs.debug') AS SELECT * from TAG:'app*' WHERE level = 'debug';

[STREAM_TASK]
    Name   error_logs
    Exec   CREATE STREAM error WITH (tag='logs.error') AS SELECT * from TAG:'app*' WHERE level = 'error';
";

#[test]
fn the_splitting_log_streams_example_routes_each_level_to_its_tag() {
    let router = start_classic(
        SPLITTING,
        &[
            (
                "parser.conf",
                "[PARSER]\n    Name   json\n    Format json\n",
            ),
            ("stream_processing.conf", STREAMS),
        ],
        &[],
    );
    let lines = [
        ("debug", "starting"),
        ("info", "ready"),
        ("error", "failed"),
        ("debug", "detail"),
    ];
    let events: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, (level, msg))| {
            let log = json!({"level": level, "msg": msg}).to_string();
            (
                "app-firelens-1",
                BASE_NS + i as u64,
                json!({"log": log, "source": "stdout"}),
            )
        })
        .collect();
    send(&router.tcp_addr(), &events);
    router.wait_for_events(3);
    let got = router.stop();
    let mut summary: Vec<_> = got
        .iter()
        .map(|e| format!("{} {} {}", e.tag, e.record["level"], e.record["msg"]))
        .collect();
    summary.sort();
    assert_eq!(
        summary,
        [
            r#"logs.debug "debug" "detail""#,
            r#"logs.debug "debug" "starting""#,
            r#"logs.error "error" "failed""#,
        ]
    );
    // The parsed records keep their other keys and their time.
    assert!(got.iter().all(|e| e.record["source"] == "stdout"));
    let failed = got.iter().find(|e| e.record["msg"] == "failed").unwrap();
    assert_eq!(failed.time_ns, BASE_NS + 2);
}

#[test]
fn containers_split_by_name_and_a_copy_of_everything_route_as_fluent_bit() {
    let config = "
[SERVICE]
    Streams_File {dir}/streams.conf

[INPUT]
    Name forward
    Listen 127.0.0.1
    Port 0

[OUTPUT]
    Name stdout
    Match laravel

[OUTPUT]
    Name stdout
    Match nginx

[OUTPUT]
    Name stdout
    Match containers
";
    let streams = "
[STREAM_TASK]
    Name laravel
    Exec CREATE STREAM laravel WITH (tag='laravel') AS SELECT * FROM TAG:'*-firelens-*' WHERE container_name = 'laravel';

[STREAM_TASK]
    Name nginx
    Exec CREATE STREAM nginx WITH (tag='nginx') AS SELECT * FROM TAG:'*-firelens-*' WHERE container_name = 'nginx';

[STREAM_TASK]
    Name containers
    Exec CREATE STREAM containers WITH (tag='containers') AS SELECT * FROM TAG:'*-firelens-*';
";
    let router = start_classic(config, &[("streams.conf", streams)], &[]);
    let events: Vec<_> = ["laravel", "nginx", "redis", "laravel"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            (
                "web-firelens-abc",
                BASE_NS + i as u64,
                json!({"container_name": name, "log": format!("line {i}")}),
            )
        })
        .collect();
    send(&router.tcp_addr(), &events);
    router.wait_for_events(7);
    let got = router.stop();
    let by_tag = |tag: &str| -> Vec<String> {
        got.iter()
            .filter(|e| e.tag == tag)
            .map(|e| e.record["log"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(by_tag("laravel"), ["line 0", "line 3"]);
    assert_eq!(by_tag("nginx"), ["line 1"]);
    assert_eq!(
        by_tag("containers"),
        ["line 0", "line 1", "line 2", "line 3"]
    );
    assert_eq!(got.len(), 7, "{got:?}");
}
