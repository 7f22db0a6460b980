//! The Datadog and New Relic output plugins (plugins/datadog, plugins/newrelic) as the real
//! binary runs them: `wasm-router test` shows the requests they build (URL, headers with the
//! key masked, body) and replays canned intake answers through their classification; and the
//! router delivers through them to a local intake per vendor (axum on 127.0.0.1:0) that checks
//! each request as the vendor would (method, path, key header, gzip, JSON shape, limits) and
//! answers 500 / 429 / 413 / 400 / 403 before accepting: every accepted event arrives exactly
//! once, and the refused ones are dead-lettered and counted. The same plugins also run from a
//! FireLens-style classic config (`[OUTPUT] Name datadog` / `newrelic`, the key from
//! `${VARIABLE}`, the plugin from `WASM_ROUTER_PLUGIN_DIR`).

use crate::common;

use common::delivery::{dead_letters, send_acked};
use common::intake::{Reply, Request, ScriptedIntake};
use common::{HANG_TIMEOUT, RouterProcess, discarded, router_command, run_to_end, scrape};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A key that must never appear in anything the router prints.
const SECRET_VALUE: &str = "dd-secret-0123456789abcdef";

/// The compile cache the plugin tests share (compiling in a debug build takes seconds).
fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")
}

/// `wasm-router ARGS…`, run to the end, with the vendors' key variables set.
fn run(args: &[&str]) -> Output {
    let mut cmd = router_command();
    cmd.env("XDG_CACHE_HOME", cache_dir())
        .env("DD_API_KEY", SECRET_VALUE)
        .env("NEW_RELIC_LICENSE_KEY", SECRET_VALUE)
        .args(args);
    run_to_end(&mut cmd, &format!("wasm-router {}", args.join(" ")))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn text(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains(SECRET_VALUE) && !stderr.contains(SECRET_VALUE),
        "the key leaked:\n{stdout}\n{stderr}"
    );
    stdout.into_owned()
}

/// Five events, one per batch, and the five answers the issue names, in order.
fn inputs_and_answers(dir: &Path) -> (String, String) {
    let input = write(
        dir,
        "in.jsonl",
        &(0..5)
            .map(|i| {
                json!({"tag": "web-firelens-1", "time": 1_700_000_000 + i, "record": {"log": format!("line {i}"), "level": "info"}})
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let responses = write(
        dir,
        "responses.jsonl",
        concat!(
            "{\"status\": 202, \"body\": \"{}\"}\n",
            "{\"status\": 400, \"body\": \"{\\\"errors\\\":[\\\"malformed\\\"]}\"}\n",
            "{\"status\": 413}\n",
            "{\"status\": 429, \"headers\": {\"Retry-After\": \"2\"}}\n",
            "{\"status\": 500, \"body\": \"internal\"}\n",
        ),
    );
    (input, responses)
}

/// The `delivery` of each request of a `--json` report, in order.
fn deliveries(report: &Value) -> Vec<String> {
    report["batches"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|batch| batch["requests"].as_array().unwrap().clone())
        .map(|request| request["delivery"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn test_shows_datadog_requests_with_the_key_masked_and_classifies_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (input, responses) = inputs_and_answers(dir.path());
    let args = [
        "test",
        wasm_router_test_artifacts::DATADOG,
        "--input",
        &input,
        "--set",
        "site=datadoghq.eu",
        "--set",
        "dd_service=web",
        "--set",
        "dd_source=nginx",
        "--set",
        "dd_tags=env:prod",
        "--batch-size",
        "1",
        "--responses",
        &responses,
    ];
    let shown = text(&run(&args));
    for wanted in [
        "POST https://http-intake.logs.datadoghq.eu/api/v2/logs (1 events, compression gzip)",
        "content-type: application/json",
        "DD-API-KEY: ****  (secret `api_key`, injected by the router)",
        "\"message\": \"line 0\"",
        "\"ddtags\": \"env:prod\"",
        "delivery: ok",
        "delivery: fail-permanent: Datadog refused the payload (HTTP 400 bad request)",
        "delivery: split-and-retry",
        "delivery: retry after 2000 ms",
        "delivery: retry (router backoff)",
    ] {
        assert!(shown.contains(wanted), "{wanted:?} in\n{shown}");
    }
    assert!(!shown.contains("warning: the URL is not under"), "{shown}");

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let report: Value = serde_json::from_str(&text(&run(&json_args))).unwrap();
    let first = &report["batches"][0]["requests"][0];
    assert_eq!(first["method"], "POST");
    assert_eq!(
        first["url"],
        "https://http-intake.logs.datadoghq.eu/api/v2/logs"
    );
    assert_eq!(
        first["secret_headers"],
        json!([{"header": "DD-API-KEY", "secret": "api_key", "value": "****"}])
    );
    assert_eq!(first["compression"], "gzip");
    assert_eq!(
        first["body"],
        json!([{"timestamp": 1_700_000_000_000u64, "ddsource": "nginx", "service": "web",
                "message": "line 0", "level": "info", "ddtags": "env:prod"}])
    );
    let decided = deliveries(&report);
    assert_eq!(decided.len(), 5, "{decided:?}");
    assert_eq!(decided[0], "ok");
    assert!(decided[1].starts_with("fail-permanent: Datadog refused the payload (HTTP 400"));
    assert!(decided[1].contains("malformed"));
    assert!(decided[2].starts_with("split-and-retry"));
    assert_eq!(decided[3], "retry after 2000 ms");
    assert_eq!(decided[4], "retry (router backoff)");
}

#[test]
fn test_shows_new_relic_requests_with_the_key_masked_and_classifies_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (input, responses) = inputs_and_answers(dir.path());
    let args = [
        "test",
        wasm_router_test_artifacts::NEWRELIC,
        "--input",
        &input,
        "--set",
        "region=EU",
        "--set",
        "auth=license_key",
        "--set",
        "tag_key=fluent.tag",
        "--set",
        r#"common_attributes={"service.name": "web"}"#,
        "--batch-size",
        "1",
        "--responses",
        &responses,
    ];
    let shown = text(&run(&args));
    for wanted in [
        "POST https://log-api.eu.newrelic.com/log/v1 (1 events, compression gzip)",
        "content-type: application/json",
        "X-License-Key: ****  (secret `license_key`, injected by the router)",
        "\"message\": \"line 0\"",
        "delivery: ok",
        "delivery: fail-permanent: New Relic refused the payload (HTTP 400)",
        "delivery: split-and-retry",
        "delivery: retry after 2000 ms",
        "delivery: retry (router backoff)",
    ] {
        assert!(shown.contains(wanted), "{wanted:?} in\n{shown}");
    }
    assert!(!shown.contains("warning: the URL is not under"), "{shown}");

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let report: Value = serde_json::from_str(&text(&run(&json_args))).unwrap();
    let first = &report["batches"][0]["requests"][0];
    assert_eq!(first["url"], "https://log-api.eu.newrelic.com/log/v1");
    assert_eq!(
        first["secret_headers"],
        json!([{"header": "X-License-Key", "secret": "license_key", "value": "****"}])
    );
    let body = &first["body"];
    assert_eq!(
        body[0]["common"]["attributes"]["fluent.tag"],
        "web-firelens-1"
    );
    assert_eq!(
        body[0]["common"]["attributes"]["plugin.type"],
        "wasm-router"
    );
    assert_eq!(body[0]["common"]["attributes"]["service.name"], "web");
    assert_eq!(
        body[0]["logs"],
        json!([{"timestamp": 1_700_000_000_000u64, "message": "line 0", "attributes": {"level": "info"}}])
    );
    let decided = deliveries(&report);
    assert_eq!(decided.len(), 5, "{decided:?}");
    assert_eq!(decided[0], "ok");
    assert!(decided[1].starts_with("fail-permanent: New Relic refused the payload (HTTP 400)"));
    assert!(decided[2].starts_with("split-and-retry"));
    assert_eq!(decided[3], "retry after 2000 ms");
    assert_eq!(decided[4], "retry (router backoff)");
}

#[test]
fn test_reports_config_mistakes_with_their_option() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.jsonl", "{\"log\": \"x\"}\n");
    for (plugin, set, wanted) in [
        (
            wasm_router_test_artifacts::DATADOG,
            "site=datadoghq.org",
            "unknown Datadog site",
        ),
        (
            wasm_router_test_artifacts::NEWRELIC,
            "region=APAC",
            "US, EU or FedRAMP",
        ),
    ] {
        let out = run(&["test", plugin, "--input", &input, "--set", set]);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{all}");
        assert!(all.contains(wanted), "{wanted:?} in\n{all}");
    }
}

// ---- End to end: the router, the plugin, and a local intake per vendor ----------------------

/// The vendor an intake imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vendor {
    Datadog,
    NewRelic,
}

impl Vendor {
    fn path(self) -> &'static str {
        match self {
            Vendor::Datadog => "/api/v2/logs",
            Vendor::NewRelic => "/log/v1",
        }
    }

    fn key_header(self) -> &'static str {
        match self {
            Vendor::Datadog => "dd-api-key",
            Vendor::NewRelic => "x-license-key",
        }
    }

    /// The `seq` of each record of a decoded body, or what is wrong with its shape.
    fn seqs(self, body: &Value, max_records: usize) -> Result<Vec<u32>, String> {
        let records: Vec<&Value> = match self {
            Vendor::Datadog => {
                let entries = body.as_array().ok_or("the body is not a JSON array")?;
                for entry in entries {
                    if !entry["message"].is_string()
                        || !entry["timestamp"].is_u64()
                        || entry["service"] != "web"
                        || entry["ddsource"] != "app"
                    {
                        return Err(format!(
                            "an entry without message/timestamp/service/ddsource: {entry}"
                        ));
                    }
                }
                entries.iter().collect()
            }
            Vendor::NewRelic => {
                let [block] = body.as_array().map(Vec::as_slice).unwrap_or_default() else {
                    return Err(format!("not one {{common, logs}} block: {body}"));
                };
                if block["common"]["attributes"]["plugin.type"] != "wasm-router" {
                    return Err(format!("no common attributes: {block}"));
                }
                let logs = block["logs"].as_array().ok_or("no logs array")?;
                for log in logs {
                    if !log["message"].is_string() || !log["timestamp"].is_u64() {
                        return Err(format!("a log without message/timestamp: {log}"));
                    }
                }
                logs.iter().map(|log| &log["attributes"]).collect()
            }
        };
        if records.len() > max_records {
            return Err(format!("{} records, over {max_records}", records.len()));
        }
        records
            .iter()
            .map(|r| {
                r["seq"]
                    .as_u64()
                    .map(|s| s as u32)
                    .ok_or_else(|| format!("a record without seq: {r}"))
            })
            .collect()
    }
}

/// One request the intake received, and its answer.
#[derive(Clone, Debug)]
struct Seen {
    seqs: Vec<u32>,
    status: u16,
}

/// A vendor's intake on 127.0.0.1:0: checks each request as the vendor would, then answers
/// from its script (status, optional Retry-After), then 202.
struct VendorIntake {
    vendor: Vendor,
    max_records: usize,
    addr: std::net::SocketAddr,
    intake: ScriptedIntake<(u16, Option<&'static str>)>,
    /// Every request the vendor would refuse for its form (method, path, key, encoding,
    /// shape, limits): must stay empty.
    problems: Arc<Mutex<Vec<String>>>,
}

impl VendorIntake {
    fn start(
        vendor: Vendor,
        max_records: usize,
        script: &[(u16, Option<&'static str>)],
    ) -> VendorIntake {
        let problems = Arc::new(Mutex::new(Vec::new()));
        let refused = problems.clone();
        let intake = ScriptedIntake::start(script.to_vec(), None, move |request, next| {
            if let Err((status, problem)) = check(vendor, max_records, request) {
                refused.lock().unwrap().push(problem);
                return Reply::status(status);
            }
            let (status, retry_after) = next().unwrap_or((202, None));
            let mut reply = Reply::status(status).body(format!("{{\"status\":{status}}}"));
            if let Some(seconds) = retry_after {
                reply = reply.header("retry-after", seconds);
            }
            reply
        });
        VendorIntake {
            vendor,
            max_records,
            addr: intake.addr,
            intake,
            problems,
        }
    }

    fn base_url(&self) -> String {
        self.intake.url("")
    }

    /// The requests that passed the vendor's checks, with their answers.
    fn seen(&self) -> Vec<Seen> {
        self.intake
            .exchanges()
            .iter()
            .filter(|exchange| exchange.scripted)
            .map(|exchange| Seen {
                seqs: check(self.vendor, self.max_records, &exchange.request).unwrap(),
                status: exchange.status,
            })
            .collect()
    }

    /// How many times each `seq` was accepted (answered 2xx).
    fn accepted(&self) -> std::collections::BTreeMap<u32, u32> {
        let mut accepted = std::collections::BTreeMap::new();
        for seen in self.seen() {
            if (200..300).contains(&seen.status) {
                for seq in seen.seqs {
                    *accepted.entry(seq).or_default() += 1;
                }
            }
        }
        accepted
    }

    fn problems(&self) -> Vec<String> {
        self.problems.lock().unwrap().clone()
    }
}

/// The `seq`s of a request the vendor accepts for its form, or the status and the reason it
/// would refuse it with.
fn check(vendor: Vendor, max_records: usize, request: &Request) -> Result<Vec<u32>, (u16, String)> {
    if request.method != "POST" || request.path != vendor.path() {
        return Err((404, format!("{} {}", request.method, request.path)));
    }
    let key = request.header(vendor.key_header());
    if key != SECRET_VALUE {
        return Err((403, format!("{} is {key:?}", vendor.key_header())));
    }
    let (content_type, encoding) = (
        request.header("content-type"),
        request.header("content-encoding"),
    );
    if content_type != "application/json" || encoding != "gzip" {
        return Err((
            400,
            format!("content-type {content_type:?}, content-encoding {encoding:?}"),
        ));
    }
    let compressed_limit = match vendor {
        Vendor::Datadog => usize::MAX,
        Vendor::NewRelic => 1_000_000,
    };
    if request.body.len() > compressed_limit {
        return Err((413, format!("{} compressed bytes", request.body.len())));
    }
    let text = request
        .decoded_body()
        .map_err(|e| (400, format!("not gzip: {e}")))?;
    if vendor == Vendor::Datadog && text.len() > 5_000_000 {
        return Err((413, format!("{} uncompressed bytes", text.len())));
    }
    serde_json::from_slice::<Value>(&text)
        .map_err(|e| e.to_string())
        .and_then(|body| vendor.seqs(&body, max_records))
        .map_err(|problem| (400, problem))
}

fn router_config(output: &str) -> String {
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

[[outputs]]
type = "wasm"
match = "*"
dead_letter = {{ path = "{{dir}}/dead.jsonl" }}
{output}
"#
    )
}

/// Sends `total` numbered events through the router to `intake`, whose script answers the
/// first requests, and checks that nothing is lost: every event the intake accepted arrived
/// exactly once, every event of a request refused for good (400, 403) was dead-lettered with
/// that status and counted, no request broke the vendor's rules, and the key stayed out of
/// the router's log.
fn deliver_exactly_once(intake: &VendorIntake, output: &str, total: u32) {
    let router = RouterProcess::start(&router_config(output));
    let http = router.http_addr();
    send_acked(&router.tcp_addr(), "app", 0, total, 50, 60);
    let dead_path = router.dir.path().join("dead.jsonl");
    let deadline = Instant::now() + HANG_TIMEOUT;
    while intake.accepted().len() + dead_letters(&dead_path).len() < total as usize {
        assert!(
            Instant::now() < deadline,
            "events still missing; seen {:?}\nlog:\n{}",
            intake.seen(),
            router.log().join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(intake.problems(), Vec::<String>::new());

    let accepted = intake.accepted();
    let twice: Vec<_> = accepted.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "accepted more than once: {twice:?}");
    let dead = dead_letters(&dead_path);
    let mut all: Vec<u32> = accepted
        .keys()
        .copied()
        .chain(dead.iter().map(|(seq, _, _)| *seq))
        .collect();
    all.sort_unstable();
    let unique = {
        let mut u = all.clone();
        u.dedup();
        u
    };
    assert_eq!(all, unique, "an event was both accepted and dead-lettered");
    assert_eq!(unique, (0..total).collect::<Vec<_>>(), "events lost");

    let seen = intake.seen();
    let mut refused: Vec<u32> = seen
        .iter()
        .filter(|s| matches!(s.status, 400 | 403))
        .flat_map(|s| s.seqs.iter().copied())
        .collect();
    refused.sort_unstable();
    let mut dead_seqs: Vec<u32> = dead.iter().map(|(seq, _, _)| *seq).collect();
    dead_seqs.sort_unstable();
    assert_eq!(
        dead_seqs, refused,
        "dead letters = the events answered 400/403"
    );
    assert!(
        !refused.is_empty(),
        "the script refuses some requests: {seen:?}"
    );
    // The router gives one reason per batch (the one most of its refused events have), so an
    // event answered 400 may carry its batch's `http_403`; each is one of the two.
    assert!(
        dead.iter()
            .all(|(_, r, _)| r == "http_400" || r == "http_403"),
        "{dead:?}"
    );
    let samples = scrape(&http);
    let counted =
        discarded(&samples, "vendor", "http_400") + discarded(&samples, "vendor", "http_403");
    assert_eq!(counted, dead.len() as u64, "refused events are counted");
    let statuses: Vec<u16> = seen.iter().map(|s| s.status).collect();
    assert_eq!(statuses[..5], [500, 429, 413, 400, 403], "{statuses:?}");
    assert!(
        seen.iter().all(|s| s.seqs.len() <= intake.max_records),
        "{seen:?}"
    );
    let log = router.log().join("\n");
    assert!(
        !log.contains(SECRET_VALUE),
        "the key is in the router's log"
    );
}

/// The answers of the first five requests: a retry, a rate limit, a split, two refusals.
const SCRIPT: &[(u16, Option<&str>)] = &[
    (500, None),
    (429, Some("1")),
    (413, None),
    (400, None),
    (403, None),
];

/// A directory holding the key in a file named `key`, for `secrets = { … = "file:…" }`.
fn key_file() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), format!("{SECRET_VALUE}\n")).unwrap();
    dir
}

#[test]
fn datadog_intake_receives_every_accepted_event_once() {
    let intake = VendorIntake::start(Vendor::Datadog, 20, SCRIPT);
    let key = key_file();
    let output = format!(
        "name = \"vendor\"\npath = \"{}\"\nallow_hosts = [\"{url}\"]\nsecrets = {{ api_key = \"file:{}/key\" }}\nconfig = {{ url = \"{url}\", dd_service = \"web\", dd_source = \"app\", max_entries_per_request = 20 }}\n",
        wasm_router_test_artifacts::DATADOG,
        key.path().display(),
        url = intake.base_url(),
    );
    deliver_exactly_once(&intake, &output, 200);
}

#[test]
fn new_relic_intake_receives_every_accepted_event_once() {
    let intake = VendorIntake::start(Vendor::NewRelic, 20, SCRIPT);
    let key = key_file();
    let output = format!(
        "name = \"vendor\"\npath = \"{}\"\nallow_hosts = [\"{url}\"]\nsecrets = {{ license_key = \"file:{}/key\" }}\nconfig = {{ base_uri = \"{url}\", auth = \"license_key\", max_records = 20, common_attributes = {{ \"service.name\" = \"web\" }} }}\n",
        wasm_router_test_artifacts::NEWRELIC,
        key.path().display(),
        url = intake.base_url(),
    );
    deliver_exactly_once(&intake, &output, 200);
}

// ---- End to end from a FireLens-style classic config ----------------------------------------

/// The router run on a classic (Fluent Bit) config with its own environment.
fn start_classic(classic: &str, env: &[(&str, &str)]) -> RouterProcess {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fluent-bit.conf");
    std::fs::write(&path, classic).unwrap();
    let mut cmd = router_command();
    cmd.arg("run")
        .arg("-c")
        .arg(&path)
        .envs(env.iter().copied());
    RouterProcess::spawn(&mut cmd, dir)
}

/// A plugin directory holding the built plugins under the names the classic loader expects.
fn plugin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, built) in [
        ("datadog.wasm", wasm_router_test_artifacts::DATADOG),
        ("newrelic.wasm", wasm_router_test_artifacts::NEWRELIC),
    ] {
        std::fs::copy(built, dir.path().join(name)).unwrap();
    }
    dir
}

/// Runs `output` (a classic `[OUTPUT]` section) with the key in `key_variable`, sends `total`
/// events, and checks that the intake accepted each exactly once after a 500, with no request
/// it would refuse and the key out of the router's log.
fn classic_delivers(intake: &VendorIntake, output: &str, key_variable: &str, total: u32) {
    let plugins = plugin_dir();
    let classic = format!(
        "[SERVICE]\n    Grace 5\n[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n{output}"
    );
    let router = start_classic(
        &classic,
        &[
            (key_variable, SECRET_VALUE),
            ("WASM_ROUTER_PLUGIN_DIR", plugins.path().to_str().unwrap()),
        ],
    );
    send_acked(&router.tcp_addr(), "app-firelens-1", 0, total, 50, 60);
    let deadline = Instant::now() + HANG_TIMEOUT;
    while intake.accepted().len() < total as usize {
        assert!(
            Instant::now() < deadline,
            "events still missing; seen {:?}\nlog:\n{}",
            intake.seen(),
            router.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(intake.problems(), Vec::<String>::new());
    assert!(
        intake.accepted().values().all(|n| *n == 1),
        "{:?}",
        intake.accepted()
    );
    assert_eq!(intake.seen()[0].status, 500);
    let log = router.log_text();
    assert!(
        !log.contains(SECRET_VALUE),
        "the key is in the router's log"
    );
}

#[test]
fn classic_datadog_output_delivers_through_the_plugin() {
    let intake = VendorIntake::start(Vendor::Datadog, 1000, &[(500, None)]);
    let output = format!(
        "[OUTPUT]\n    Name datadog\n    Match *\n    Host 127.0.0.1\n    Port {}\n    TLS off\n    compress gzip\n    apikey ${{DD_API_KEY}}\n    dd_service web\n    dd_source app\n    Retry_Limit no_limits\n",
        intake.addr.port()
    );
    classic_delivers(&intake, &output, "DD_API_KEY", 120);
}

#[test]
fn classic_newrelic_output_delivers_through_the_plugin() {
    let intake = VendorIntake::start(Vendor::NewRelic, 1024, &[(500, None)]);
    let output = format!(
        "[OUTPUT]\n    Name newrelic\n    Match *\n    endpoint {}/log/v1\n    licenseKey ${{NEW_RELIC_LICENSE_KEY}}\n",
        intake.base_url()
    );
    classic_delivers(&intake, &output, "NEW_RELIC_LICENSE_KEY", 120);
}

#[test]
fn validate_loads_the_vendor_plugin_of_a_classic_config() {
    let plugins = plugin_dir();
    let dir = tempfile::tempdir().unwrap();
    let validate = |host: &str| {
        let conf = write(
            dir.path(),
            "fluent-bit.conf",
            &format!(
                "[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n[OUTPUT]\n    Name datadog\n    Match *\n    Host {host}\n    TLS on\n    apikey ${{DD_API_KEY}}\n    dd_service web\n"
            ),
        );
        let mut cmd = router_command();
        cmd.env("XDG_CACHE_HOME", cache_dir())
            .env("DD_API_KEY", SECRET_VALUE)
            .env("WASM_ROUTER_PLUGIN_DIR", plugins.path())
            .args(["validate", "-c", &conf]);
        let out = run_to_end(&mut cmd, "wasm-router validate");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(SECRET_VALUE), "the key leaked:\n{all}");
        (out.status.success(), all)
    };
    let (ok, all) = validate("http-intake.logs.datadoghq.eu");
    assert!(ok, "{all}");
    // The config uses one site and grants it: no warning about the seven it does not use.
    assert!(
        !all.contains("allow_hosts") && !all.contains("datadoghq.com"),
        "{all}"
    );
    let (ok, all) = validate("http-intake.logs.datadoghq.org");
    assert!(!ok, "{all}");
    assert!(all.contains("unknown Datadog site"), "{all}");
}

#[test]
fn an_intake_outside_allow_hosts_is_refused_before_connecting_and_counted() {
    let key = key_file();
    // The EU site, but only the US intake granted: nothing may leave the machine.
    let output = format!(
        "name = \"vendor\"\npath = \"{}\"\nallow_hosts = [\"https://http-intake.logs.datadoghq.com\"]\nsecrets = {{ api_key = \"file:{}/key\" }}\nconfig = {{ site = \"datadoghq.eu\" }}\n",
        wasm_router_test_artifacts::DATADOG,
        key.path().display(),
    );
    let router = RouterProcess::start(&router_config(&output));
    let http = router.http_addr();
    send_acked(&router.tcp_addr(), "app", 0, 20, 10, 60);
    let dead_path = router.dir.path().join("dead.jsonl");
    let deadline = Instant::now() + HANG_TIMEOUT;
    while dead_letters(&dead_path).len() < 20 {
        assert!(
            Instant::now() < deadline,
            "events not refused; log:\n{}",
            router.log().join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let dead = dead_letters(&dead_path);
    assert!(
        dead.iter()
            .all(|(_, reason, _)| reason == "host_not_allowed"),
        "{dead:?}"
    );
    assert_eq!(discarded(&scrape(&http), "vendor", "host_not_allowed"), 20);
    let log = router.log().join("\n");
    assert!(
        log.contains("http-intake.logs.datadoghq.eu"),
        "the refusal names the host:\n{log}"
    );
    assert!(!log.contains(SECRET_VALUE));
}
