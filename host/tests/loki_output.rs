//! The `loki` output plugin (plugins/loki) from a FireLens-style classic `[OUTPUT] Name loki`,
//! into a Loki push stand-in on 127.0.0.1 that checks each push as Loki reads it (path,
//! `application/json`, `{"streams":[{"stream":{labels},"values":[["<ns>","<line>"]]}]}`),
//! answers the first push 503 and the rest 204: every event arrives exactly once, in the
//! stream of its labels, with the tenant and basic auth from a password the plugin never sees.

use crate::common;

use common::delivery::send_acked;
use common::intake::{Reply, Request, ScriptedIntake};
use common::{HANG_TIMEOUT, RouterProcess, router_command};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const PASSWORD: &str = "glc-loki-token-0123456789abcdef";

/// One entry of a push: its stream's labels, the record's `seq`, and the line as JSON.
type Entry = (BTreeMap<String, String>, u64, Value);

/// The entries of a push Loki would accept, or why it would not.
fn entries(request: &Request) -> Result<Vec<Entry>, String> {
    if request.method != "POST" || request.path != "/loki/api/v1/push" {
        return Err(format!("{} {}", request.method, request.path));
    }
    if request.header("content-type") != "application/json" {
        return Err(format!("content-type {:?}", request.header("content-type")));
    }
    let body: Value = serde_json::from_slice(&request.decoded_body().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for stream in body["streams"].as_array().ok_or("no streams")? {
        let labels: BTreeMap<String, String> =
            serde_json::from_value(stream["stream"].clone()).map_err(|e| e.to_string())?;
        for value in stream["values"].as_array().ok_or("no values")? {
            let ns = value[0].as_str().ok_or("the time is not a string")?;
            ns.parse::<u64>().map_err(|_| format!("time {ns:?}"))?;
            let line: Value = serde_json::from_str(value[1].as_str().ok_or("no line")?)
                .map_err(|e| e.to_string())?;
            let seq = line["seq"].as_u64().ok_or("no seq in the line")?;
            found.push((labels.clone(), seq, line));
        }
    }
    Ok(found)
}

#[test]
fn classic_loki_output_pushes_every_event_once_in_its_stream() {
    let intake = ScriptedIntake::start([503u16], None, |request, next| match entries(request) {
        Err(problem) => Reply::status(400).body(problem),
        Ok(_) => Reply::status(next().unwrap_or(204)),
    });
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(
        wasm_router_test_artifacts::LOKI,
        plugins.path().join("loki.wasm"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fluent-bit.conf");
    std::fs::write(
        &path,
        format!(
            "[SERVICE]\n    Grace 5\n[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n[OUTPUT]\n    Name loki\n    Match app-firelens*\n    Host 127.0.0.1\n    Port {}\n    http_user 123456\n    http_passwd ${{LOKI_PASSWD}}\n    labels job=firelens, source=$missing\n    tenant_id team-a\n    remove_keys pad\n    compress gzip\n",
            intake.addr.port()
        ),
    )
    .unwrap();
    let mut cmd = router_command();
    cmd.arg("run")
        .arg("-c")
        .arg(&path)
        .env("LOKI_PASSWD", PASSWORD)
        .env("WASM_ROUTER_PLUGIN_DIR", plugins.path());
    let router = RouterProcess::spawn(&mut cmd, dir);
    send_acked(&router.tcp_addr(), "app-firelens-1", 0, 60, 10, 20);
    let accepted = || {
        intake
            .exchanges()
            .iter()
            .filter(|e| e.status == 204)
            .flat_map(|e| entries(&e.request).unwrap())
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + HANG_TIMEOUT;
    while accepted().len() < 60 {
        assert!(
            Instant::now() < deadline,
            "events still missing; exchanges {:?}\nlog:\n{}",
            intake
                .exchanges()
                .iter()
                .map(|e| e.status)
                .collect::<Vec<_>>(),
            router.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let exchanges = intake.exchanges();
    assert_eq!(exchanges[0].status, 503, "the first push is answered 503");
    assert!(
        exchanges.iter().all(|e| e.status != 400),
        "a push Loki would refuse"
    );
    let mut seqs: Vec<u64> = accepted().iter().map(|(_, seq, _)| *seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..60).collect::<Vec<_>>(), "every event once");
    for (labels, _, line) in accepted() {
        assert_eq!(
            labels,
            BTreeMap::from([("job".to_string(), "firelens".to_string())])
        );
        assert!(
            line.get("pad").is_none() && line["log"].is_string(),
            "{line}"
        );
    }
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("123456:{PASSWORD}"))
    );
    for exchange in &exchanges {
        assert_eq!(exchange.request.header("authorization"), basic);
        assert_eq!(exchange.request.header("x-scope-orgid"), "team-a");
        assert_eq!(exchange.request.header("content-encoding"), "gzip");
    }
    assert!(
        !router.log_text().contains(PASSWORD),
        "the password is in the log"
    );
}
