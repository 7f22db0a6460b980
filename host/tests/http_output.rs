//! The `http` output plugin (plugins/http) as the real binary runs it, into a local intake on
//! 127.0.0.1 speaking plain HTTP: each body format as Fluent Bit's `http` output writes it
//! (json, json_lines, json_stream, msgpack), the date key, headers, basic auth from a secret
//! the plugin never sees, gzip; a 503 retried until every event arrived exactly once, a 400
//! dead-lettered and counted; and a FireLens-style classic `[OUTPUT] Name http` end to end.

use crate::common;

use common::delivery::{dead_letters, send_acked};
use common::intake::{Reply, Request, ScriptedIntake};
use common::{HANG_TIMEOUT, RouterProcess, discarded, router_command, scrape};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The password that must never appear in anything the router prints.
const PASSWORD: &str = "http-passwd-0123456789abcdef";

/// `Basic base64("ingest:" + PASSWORD)`.
fn basic_header() -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("ingest:{PASSWORD}"))
    )
}

/// The records of a body in `format`, each as JSON (msgpack events as `[[time, meta], record]`).
fn records(format: &str, request: &Request) -> Vec<Value> {
    let body = request.decoded_body().unwrap();
    match format {
        "json" => serde_json::from_slice::<Vec<Value>>(&body).unwrap(),
        "json_lines" => {
            let text = String::from_utf8(body).unwrap();
            assert!(text.ends_with('\n'), "{text:?}");
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
        "json_stream" => serde_json::Deserializer::from_slice(&body)
            .into_iter::<Value>()
            .map(Result::unwrap)
            .collect(),
        "msgpack" => {
            let mut rest = &body[..];
            let mut events = Vec::new();
            while !rest.is_empty() {
                let event = rmpv::decode::read_value(&mut rest).unwrap();
                let (head, record) = match &event {
                    rmpv::Value::Array(parts) if parts.len() == 2 => (&parts[0], &parts[1]),
                    other => panic!("not [[time, meta], record]: {other}"),
                };
                let rmpv::Value::Array(head) = head else {
                    panic!("{head}")
                };
                let rmpv::Value::Ext(0, time) = &head[0] else {
                    panic!("not an EventTime: {}", head[0])
                };
                let seconds = u32::from_be_bytes(time[..4].try_into().unwrap());
                let mut json: Value = serde_json::to_value(record_json(record)).unwrap();
                json["_seconds"] = seconds.into();
                events.push(json);
            }
            events
        }
        other => panic!("{other}"),
    }
}

fn record_json(value: &rmpv::Value) -> Value {
    match value {
        rmpv::Value::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.as_str().unwrap().to_string(), record_json(v)))
                .collect(),
        ),
        rmpv::Value::String(s) => s.as_str().unwrap().into(),
        rmpv::Value::Integer(n) => n.as_u64().unwrap().into(),
        other => panic!("{other}"),
    }
}

fn router_config(outputs: &str) -> String {
    format!(
        r#"
[service]
grace = "5s"
http_listen = "127.0.0.1:0"
retry_backoff_base = "10ms"
retry_backoff_cap = "50ms"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"
{outputs}
"#
    )
}

/// One `[[outputs]]` of the plugin into `port`, with `config` (TOML inline-table fields).
fn output(name: &str, port: u16, extra: &str, config: &str) -> String {
    format!(
        "\n[[outputs]]\ntype = \"wasm\"\nname = \"{name}\"\nmatch = \"*\"\npath = \"{}\"\nallow_hosts = [\"http://127.0.0.1:{port}\"]\ndead_letter = {{ path = \"{{dir}}/{name}.dead.jsonl\" }}\n{extra}config = {{ host = \"127.0.0.1\", port = {port}, {config} }}\n",
        wasm_router_test_artifacts::HTTP
    )
}

/// Waits until `done` holds, showing the router's log if it never does.
fn wait_for(router: &RouterProcess, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG_TIMEOUT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}; log:\n{}",
            router.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn each_format_reaches_the_intake_as_fluent_bit_writes_it() {
    let intake = ScriptedIntake::<()>::start([], None, |_, _| Reply::status(200));
    let port = intake.addr.port();
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    let secret = format!(
        "secrets = {{ basic_auth = \"basic:ingest:file:{}\" }}\n",
        password.display()
    );
    let outputs = [
        output("json", port, "", "uri = \"/json\", format = \"json\", header = [\"X-Source ecs\", \"X-Source firelens\"]"),
        output(
            "json_lines",
            port,
            &secret,
            "uri = \"/lines\", format = \"json_lines\", json_date_key = \"timestamp\", json_date_format = \"iso8601\", basic_auth = true, compress = \"gzip\"",
        ),
        output("json_stream", port, "", "uri = \"/stream\", format = \"json_stream\", json_date_key = \"false\", header_tag = \"FLUENT-TAG\""),
        output("msgpack", port, "", "uri = \"/msgpack\", format = \"msgpack\""),
    ]
    .concat();
    let router = RouterProcess::start(&router_config(&outputs));
    send_acked(&router.tcp_addr(), "app-firelens-1", 0, 30, 10, 20);
    let paths = [
        ("/json", "json"),
        ("/lines", "json_lines"),
        ("/stream", "json_stream"),
        ("/msgpack", "msgpack"),
    ];
    let by_path = || {
        let mut seen: BTreeMap<String, Vec<Request>> = BTreeMap::new();
        for exchange in intake.exchanges() {
            seen.entry(exchange.request.path.clone())
                .or_default()
                .push(exchange.request);
        }
        seen
    };
    wait_for(&router, "a format is missing events", || {
        let seen = by_path();
        paths.iter().all(|(path, format)| {
            seen.get(*path).is_some_and(|requests| {
                requests
                    .iter()
                    .map(|r| records(format, r).len())
                    .sum::<usize>()
                    >= 30
            })
        })
    });
    let seen = by_path();
    for (path, format) in paths {
        let requests = &seen[path];
        let mut seqs = Vec::new();
        for request in requests {
            assert_eq!(request.method, "POST");
            for record in records(format, request) {
                seqs.push(record["seq"].as_u64().unwrap());
                assert!(
                    record["log"].as_str().unwrap().starts_with("line "),
                    "{record}"
                );
                match format {
                    "json" => assert_eq!(record["date"].as_f64().unwrap().floor(), 1_700_000_000.0),
                    "json_lines" => assert!(
                        record["timestamp"]
                            .as_str()
                            .unwrap()
                            .starts_with("2023-11-14T22:13:20.12"),
                        "{record}"
                    ),
                    "json_stream" => assert!(record.get("date").is_none(), "{record}"),
                    _ => assert_eq!(record["_seconds"], 1_700_000_000),
                }
            }
        }
        seqs.sort_unstable();
        assert_eq!(
            seqs,
            (0..30).collect::<Vec<u64>>(),
            "{format}: every event once"
        );
        let first = &requests[0];
        let content_type = first.header("content-type");
        match format {
            "json" => {
                assert_eq!(content_type, "application/json");
                // Repeated headers are all sent (allow_duplicated_headers, Fluent Bit's default).
                assert!(
                    first.header("x-source").contains("ecs"),
                    "{:?}",
                    first.headers
                );
                assert_eq!(first.header("authorization"), "");
            }
            "json_lines" => {
                assert_eq!(content_type, "application/x-ndjson");
                assert_eq!(first.header("content-encoding"), "gzip");
                assert_eq!(first.header("authorization"), basic_header());
            }
            "json_stream" => {
                assert_eq!(content_type, "application/json");
                assert_eq!(first.header("fluent-tag"), "app-firelens-1");
            }
            _ => assert_eq!(content_type, "application/msgpack"),
        }
    }
    assert!(
        !router.log_text().contains(PASSWORD),
        "the password is in the log"
    );
}

#[test]
fn a_503_is_retried_until_delivered_once_and_a_400_is_dead_lettered_and_counted() {
    // The first request is answered 503, the second 400, every later one 200.
    let intake = ScriptedIntake::start([503u16, 400], None, |_, next| {
        Reply::status(next().unwrap_or(200)).body("{\"error\":\"scripted\"}")
    });
    let port = intake.addr.port();
    let router = RouterProcess::start(&router_config(&output(
        "http",
        port,
        "",
        "format = \"json\"",
    )));
    let http = router.http_addr();
    let total = 100;
    send_acked(&router.tcp_addr(), "app", 0, total, 10, 20);
    let dead_path = router.dir.path().join("http.dead.jsonl");
    let accepted = || {
        let mut accepted: BTreeMap<u64, u32> = BTreeMap::new();
        for exchange in intake.exchanges() {
            if exchange.status == 200 {
                for record in records("json", &exchange.request) {
                    *accepted.entry(record["seq"].as_u64().unwrap()).or_default() += 1;
                }
            }
        }
        accepted
    };
    wait_for(&router, "events still missing", || {
        accepted().len() + dead_letters(&dead_path).len() >= total as usize
    });
    let accepted = accepted();
    assert!(
        accepted.values().all(|n| *n == 1),
        "accepted twice: {accepted:?}"
    );
    let exchanges = intake.exchanges();
    assert_eq!(exchanges[0].status, 503);
    assert_eq!(exchanges[1].status, 400);
    let refused: Vec<u64> = records("json", &exchanges[1].request)
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    let dead = dead_letters(&dead_path);
    let mut dead_seqs: Vec<u64> = dead.iter().map(|(seq, _, _)| u64::from(*seq)).collect();
    dead_seqs.sort_unstable();
    assert_eq!(dead_seqs, refused, "dead letters = the events answered 400");
    assert!(
        dead.iter().all(|(_, reason, _)| reason == "http_400"),
        "{dead:?}"
    );
    let mut all: Vec<u64> = accepted.keys().copied().chain(dead_seqs).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..u64::from(total)).collect::<Vec<_>>(),
        "every event delivered or dead-lettered, once"
    );
    assert_eq!(
        discarded(&scrape(&http), "http", "http_400"),
        refused.len() as u64
    );
}

#[test]
fn classic_http_output_delivers_through_the_plugin() {
    let intake = ScriptedIntake::start([503u16], None, |_, next| {
        Reply::status(next().unwrap_or(200))
    });
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(
        wasm_router_test_artifacts::HTTP,
        plugins.path().join("http.wasm"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fluent-bit.conf");
    std::fs::write(
        &path,
        format!(
            "[SERVICE]\n    Grace 5\n[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n[OUTPUT]\n    Name http\n    Match app-firelens*\n    Host 127.0.0.1\n    Port {}\n    URI ${{URI_1}}\n    Format json_lines\n    Json_date_key timestamp\n    Json_date_format iso8601\n    Header X-Api-Source ecs\n    compress gzip\n    HTTP_User ingest\n    HTTP_Passwd ${{HTTP_PASSWD}}\n    Retry_Limit 5\n",
            intake.addr.port()
        ),
    )
    .unwrap();
    let mut cmd = router_command();
    cmd.arg("run")
        .arg("-c")
        .arg(&path)
        .env("URI_1", "/receiver/v1/http/abc")
        .env("HTTP_PASSWD", PASSWORD)
        .env("WASM_ROUTER_PLUGIN_DIR", plugins.path());
    let router = RouterProcess::spawn(&mut cmd, dir);
    send_acked(&router.tcp_addr(), "app-firelens-1", 0, 50, 10, 20);
    let delivered = || {
        intake
            .exchanges()
            .iter()
            .filter(|e| e.status == 200)
            .flat_map(|e| records("json_lines", &e.request))
            .map(|r| r["seq"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    wait_for(&router, "events still missing", || delivered().len() >= 50);
    let mut seqs = delivered();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..50).collect::<Vec<u64>>());
    let exchanges = intake.exchanges();
    assert_eq!(exchanges[0].status, 503);
    for exchange in &exchanges {
        let request = &exchange.request;
        assert_eq!(request.path, "/receiver/v1/http/abc");
        assert_eq!(request.header("authorization"), basic_header());
        assert_eq!(request.header("x-api-source"), "ecs");
        assert_eq!(request.header("content-encoding"), "gzip");
    }
    assert!(
        !router.log_text().contains(PASSWORD),
        "the password is in the log"
    );
}

#[test]
fn test_shows_the_request_with_the_credentials_masked_and_no_host_warning() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"tag\": \"app\", \"time\": 1700000000, \"record\": {\"log\": \"hello\"}}\n",
    )
    .unwrap();
    let mut cmd = router_command();
    cmd.args([
        "test",
        wasm_router_test_artifacts::HTTP,
        "--input",
        input.to_str().unwrap(),
        "--set",
        "host=logs.example.com",
        "--set",
        "tls=true",
        "--set",
        "format=json_lines",
        "--set",
        "basic_auth=true",
        "--set",
        "json_date_format=iso8601",
    ]);
    let out = common::run_to_end(&mut cmd, "wasm-router test http.wasm");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    for wanted in [
        "POST https://logs.example.com/ (1 events, compression none)",
        "Content-Type: application/x-ndjson",
        "Authorization: Basic ****  (secret `basic_auth`, injected by the router)",
        "\"date\": \"2023-11-14T22:13:20.000000Z\"",
    ] {
        assert!(shown.contains(wanted), "{wanted:?} in\n{shown}");
    }
    assert!(!shown.contains("warning"), "{shown}");
}
