//! WASM output plugins end to end: the real binary receives numbered events over the forward
//! protocol and runs the `json-output` / `sdk-json-output` test plugins, whose requests go to an
//! intake server in this test (axum on 127.0.0.1:0) that answers in scripted sequences.
//!
//! Checked: every event the intake accepted (2xx) arrived exactly once and every other event was
//! dead-lettered and counted under its reason (nothing lost); a request already accepted is not
//! sent again when its batch is retried; 429 / 500 are retried (Retry-After honoured), 413
//! splits, 400 is permanent; the secret header reaches the intake but never the router's log;
//! gzip bodies decode; a host outside `allow_hosts` is refused before connecting and counted;
//! redirects are not followed; unknown secrets, transport errors and bad configs are reported.

use crate::common;

use common::delivery::{dead_letters, send_acked};
use common::free_port;
use common::intake::{self, ScriptedIntake};
use common::{RouterProcess, discarded, router_command, run_to_end, scrape, wait_until};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use wasm_router::ops::prometheus_text;

/// The secret the router injects; it must reach the intake and never the router's log.
const SECRET: &str = "wr-test-intake-key-5c1f9e2a77";

// ---- The intake server ----------------------------------------------------------------------

/// How the intake answers one request (the script of an [`Intake`]).
#[derive(Clone, Debug)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    /// Put the request's `x-api-key` into the response body (as some APIs echo headers).
    echo_key: bool,
}

impl Reply {
    fn status(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            echo_key: false,
        }
    }

    fn echoing_the_key(mut self) -> Self {
        self.echo_key = true;
        self
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// One request the intake received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    /// The `seq` of every record in the (decoded) JSON array body.
    seqs: Vec<u32>,
    status: u16,
}

/// An HTTP intake on 127.0.0.1: answers from its script (then 202), `/redirect` with a 302.
struct Intake(ScriptedIntake<Reply>);

impl Intake {
    fn start(script: Vec<Reply>) -> Intake {
        Self::start_with(script, None)
    }

    /// An intake serving HTTPS with `tls`.
    fn start_tls(script: Vec<Reply>, tls: rustls::ServerConfig) -> Intake {
        Self::start_with(script, Some(tls))
    }

    fn start_with(script: Vec<Reply>, tls: Option<rustls::ServerConfig>) -> Intake {
        Intake(ScriptedIntake::start(script, tls, |request, next| {
            if request.path == "/redirect" {
                return intake::Reply::status(302).header("location", "/elsewhere");
            }
            let reply = next().unwrap_or(Reply::status(202));
            let echoed = reply
                .echo_key
                .then(|| request.headers.get("x-api-key"))
                .flatten();
            let body = serde_json::json!({"status": reply.status, "echo": echoed});
            let mut answer = intake::Reply::status(reply.status).body(body.to_string());
            for (name, value) in reply.headers {
                answer = answer.header(name, value);
            }
            answer
        }))
    }

    fn url(&self, path: &str) -> String {
        self.0.url(path)
    }

    fn seen(&self) -> Vec<Seen> {
        self.0
            .exchanges()
            .into_iter()
            .map(|exchange| Seen {
                seqs: seqs(&exchange.request),
                method: exchange.request.method,
                path: exchange.request.path,
                headers: exchange.request.headers,
                status: exchange.status,
            })
            .collect()
    }

    /// How many times each `seq` was accepted (answered 2xx).
    fn accepted(&self) -> BTreeMap<u32, u32> {
        let mut accepted = BTreeMap::new();
        for seen in self.seen() {
            if (200..300).contains(&seen.status) {
                for s in seen.seqs {
                    *accepted.entry(s).or_default() += 1;
                }
            }
        }
        accepted
    }
}

/// The `seq` of every record in a request's JSON array body (gzip decoded).
fn seqs(request: &intake::Request) -> Vec<u32> {
    let json = request.decoded_body().expect("a gzip body that decodes");
    let records: Vec<Value> = serde_json::from_slice(&json).unwrap_or_default();
    records
        .iter()
        .filter_map(|r| r["seq"].as_u64())
        .map(|s| s as u32)
        .collect()
}

/// A self-signed certificate for 127.0.0.1: the server's config, and the PEM for clients.
fn self_signed() -> (rustls::ServerConfig, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key.into())
    .unwrap();
    (config, certified.cert.pem())
}

/// A file holding [`SECRET`], for `secrets = { api_key = "file:…" }`.
fn secret_file() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api_key"), format!("{SECRET}\n")).unwrap();
    dir
}

fn router_config(outputs: &str) -> String {
    format!(
        r#"
[service]
grace = "5s"
http_listen = "127.0.0.1:0"
log_level = "debug"
retry_backoff_base = "10ms"
retry_backoff_cap = "50ms"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"
{outputs}"#
    )
}

fn wasm_output(name: &str, plugin: &str, matches: &str, allow: &str, extra: &str) -> String {
    format!(
        "\n[[outputs]]\ntype = \"wasm\"\nname = \"{name}\"\nmatch = \"{matches}\"\npath = \"{plugin}\"\nallow_hosts = [\"{allow}\"]\n{extra}\n"
    )
}

/// Every accepted event arrived once, every other one was dead-lettered, none both.
fn assert_exactly_once(intake: &Intake, dead: &[(u32, String, String)], total: u32) {
    let accepted = intake.accepted();
    let twice: Vec<_> = accepted.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "events accepted more than once: {twice:?}"
    );
    for (seq, reason, _) in dead {
        assert!(
            !accepted.contains_key(seq),
            "event {seq} was accepted and also dead-lettered ({reason})"
        );
    }
    let mut all: Vec<u32> = accepted
        .keys()
        .copied()
        .chain(dead.iter().map(|d| d.0))
        .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all, (0..total).collect::<Vec<_>>(), "events lost");
}

// ---- Tests ----------------------------------------------------------------------------------

#[test]
fn scripted_answers_deliver_each_accepted_event_once_and_dead_letter_the_rest() {
    let intake = Intake::start(vec![
        Reply::status(429).with("retry-after", "1"),
        Reply::status(500),
        Reply::status(413),
        Reply::status(400).echoing_the_key(),
    ]);
    let secrets = secret_file();
    let extra = format!(
        "secrets = {{ api_key = \"file:{}/api_key\" }}\nconfig = {{ url = \"{}\", gzip = true, api_key_header = \"X-Api-Key\" }}\ndead_letter = {{ path = \"{{dir}}/dead.jsonl\" }}\n",
        secrets.path().display(),
        intake.url("/v1/logs")
    );
    let config = router_config(&wasm_output(
        "intake",
        wasm_router_test_artifacts::JSON_OUTPUT,
        "*",
        &intake.url(""),
        &extra,
    ));
    let router = RouterProcess::start(&config);
    let http = router.http_addr();
    let total = 200;
    send_acked(&router.tcp_addr(), "app", 0, total, 50, 60);
    let dead_path = router.dir.path().join("dead.jsonl");
    wait_until(
        "every event accepted or dead-lettered",
        || intake.accepted().len() + dead_letters(&dead_path).len() >= total as usize,
        || {
            format!(
                "seen: {:?}\nlog:\n{}",
                intake.seen().len(),
                router.log().join("\n")
            )
        },
    );
    let dead = dead_letters(&dead_path);
    assert_exactly_once(&intake, &dead, total);

    let seen = intake.seen();
    let statuses: Vec<u16> = seen.iter().map(|s| s.status).collect();
    assert_eq!(statuses[..4], [429, 500, 413, 400], "{statuses:?}");
    // The 429 and the 500 were retried with the same events; the 413 was split in halves.
    assert_eq!(seen[0].seqs, seen[1].seqs);
    assert_eq!(seen[1].seqs, seen[2].seqs);
    assert!(seen[2].seqs.len() > 1, "the first batch has several events");
    assert_eq!(seen[3].seqs, seen[2].seqs[..seen[2].seqs.len() / 2]);
    assert_eq!(seen[4].seqs, seen[2].seqs[seen[2].seqs.len() / 2..]);
    // The 400 is permanent: exactly its events were dead-lettered, and counted.
    let mut dead_seqs: Vec<u32> = dead.iter().map(|d| d.0).collect();
    dead_seqs.sort_unstable();
    assert_eq!(dead_seqs, seen[3].seqs);
    assert!(
        dead.iter().all(|(_, reason, _)| reason == "http_400"),
        "{dead:?}"
    );
    // The intake echoed the key in its 400 body: the plugin (whose reason quotes the body)
    // was handed it masked.
    assert!(
        dead.iter()
            .all(|(_, _, detail)| detail.contains("****") && !detail.contains(SECRET)),
        "{dead:?}"
    );
    let samples = scrape(&http);
    assert_eq!(discarded(&samples, "intake", "http_400"), dead.len() as u64);
    assert!(
        prometheus_text::sum(
            &samples,
            "component_retries_total",
            &[("component_id", "intake")]
        ) >= 2.0
    );
    for s in &seen {
        assert_eq!(s.method, "POST");
        assert_eq!(s.path, "/v1/logs");
        assert_eq!(s.headers.get("x-api-key").map(String::as_str), Some(SECRET));
        assert_eq!(
            s.headers.get("content-encoding").map(String::as_str),
            Some("gzip")
        );
        assert_eq!(
            s.headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
    }
    let log = router.log().join("\n");
    drop(router);
    assert!(
        !log.contains(SECRET),
        "the secret appears in the router's log:\n{log}"
    );
    assert!(log.contains("WASM output loaded"), "{log}");
}

#[test]
fn a_retried_batch_resends_only_the_requests_that_were_not_accepted() {
    // sdk-json-output cuts a batch into bodies of at most max_body_bytes: several requests.
    let intake = Intake::start(vec![
        Reply::status(202),
        Reply::status(503),
        Reply::status(202),
        Reply::status(429).with("retry-after", "1"),
        Reply::status(202),
        Reply::status(500),
    ]);
    let extra = format!(
        "config = {{ url = \"{}\", max_body_bytes = 1500 }}\n",
        intake.url("/bulk")
    );
    let config = router_config(&wasm_output(
        "bulk",
        wasm_router_test_artifacts::SDK_JSON_OUTPUT,
        "*",
        &intake.url(""),
        &extra,
    ));
    let router = RouterProcess::start(&config);
    let total = 300;
    send_acked(&router.tcp_addr(), "app", 0, total, 100, 80);
    wait_until(
        "every event accepted",
        || intake.accepted().len() >= total as usize,
        || {
            format!(
                "seen: {:?}\nlog:\n{}",
                intake.seen().len(),
                router.log().join("\n")
            )
        },
    );
    assert_exactly_once(&intake, &[], total);
    let seen = intake.seen();
    assert!(
        seen.iter()
            .all(|s| !s.headers.contains_key("content-encoding"))
    );
    // The first batch needed several requests, and only the failed ones were sent again.
    let first_batch_requests = seen.iter().take_while(|s| s.seqs[0] < 100).count();
    assert!(first_batch_requests > 3, "{first_batch_requests} requests");
    let failed: Vec<&Seen> = seen.iter().filter(|s| s.status >= 400).collect();
    for f in failed {
        let resent = seen.iter().filter(|s| s.seqs == f.seqs).count();
        assert!(
            resent >= 2,
            "a failed request was not sent again: {:?}",
            f.seqs
        );
    }
}

#[test]
fn refusals_are_counted_and_explained_and_redirects_are_not_followed() {
    let intake = Intake::start(Vec::new());
    let outside = Intake::start(Vec::new());
    let dead_port = free_port();
    let allowed = intake.url("");
    let outputs = [
        // A URL outside allow_hosts: refused before connecting.
        wasm_output(
            "outside",
            wasm_router_test_artifacts::JSON_OUTPUT,
            "outside.*",
            &allowed,
            &format!("config = {{ url = \"{}\" }}\n", outside.url("/v1/logs")),
        ),
        // A 302: handed to the plugin (which gives up on it), never followed.
        wasm_output(
            "redirected",
            wasm_router_test_artifacts::JSON_OUTPUT,
            "redirect.*",
            &allowed,
            &format!("config = {{ url = \"{}\" }}\n", intake.url("/redirect")),
        ),
        // The plugin names a secret the output does not configure.
        wasm_output(
            "nosecret",
            wasm_router_test_artifacts::JSON_OUTPUT,
            "nosecret.*",
            &allowed,
            &format!(
                "config = {{ url = \"{}\", api_key_header = \"X-Api-Key\" }}\n",
                intake.url("/v1/logs")
            ),
        ),
        // Nothing listens: a transport error, which the plugin says to retry; two retries.
        wasm_output(
            "down",
            wasm_router_test_artifacts::JSON_OUTPUT,
            "down.*",
            &format!("http://127.0.0.1:{dead_port}"),
            &format!(
                "config = {{ url = \"http://127.0.0.1:{dead_port}/v1/logs\" }}\nretry_limit = 2\nconnect_timeout = \"2s\"\n"
            ),
        ),
    ];
    let router = RouterProcess::start(&router_config(&outputs.concat()));
    let http = router.http_addr();
    let addr = router.tcp_addr();
    for tag in ["outside.a", "redirect.a", "nosecret.a", "down.a"] {
        send_acked(&addr, tag, 0, 10, 10, 20);
    }
    wait_until(
        "every refusal counted",
        || {
            let samples = scrape(&http);
            discarded(&samples, "outside", "host_not_allowed") == 10
                && discarded(&samples, "redirected", "http_302") == 10
                && discarded(&samples, "nosecret", "unknown_secret") == 10
                && discarded(&samples, "down", "retries_exhausted") == 10
        },
        || format!("{:?}\nlog:\n{}", scrape(&http), router.log().join("\n")),
    );
    assert!(outside.seen().is_empty(), "a refused host was contacted");
    let paths: Vec<String> = intake.seen().iter().map(|s| s.path.clone()).collect();
    assert_eq!(
        paths,
        ["/redirect"],
        "the redirect was followed, or the secret-less request sent"
    );
    let log = router.log().join("\n");
    let refusal = log
        .lines()
        .find(|l| l.contains("allow_hosts") && l.contains("ERROR"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    assert!(
        refusal.contains("json-output")
            && refusal.contains(&outside.url(""))
            && refusal.contains("add"),
        "{refusal}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("api_key") && l.contains("does not configure")),
        "{log}"
    );
    assert!(log.contains("transport error"), "{log}");
}

#[test]
fn validate_loads_the_plugin_and_reports_secrets_and_config_problems() {
    let dir = tempfile::tempdir().unwrap();
    let validate = |outputs: &str, env: &[(&str, &str)]| {
        let path = dir.path().join("router.toml");
        std::fs::write(&path, router_config(outputs)).unwrap();
        let mut cmd = router_command();
        cmd.arg("validate").arg("--config").arg(&path);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = run_to_end(&mut cmd, "wasm-router validate");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let plugin = wasm_router_test_artifacts::JSON_OUTPUT;
    let good = wasm_output(
        "dd",
        plugin,
        "*",
        "http://127.0.0.1:9",
        "secrets = { api_key = \"env:WR_TEST_VALIDATE_KEY\" }\nconfig = { url = \"http://127.0.0.1:9/x\", api_key_header = \"K\" }\n",
    );
    let (ok, text) = validate(&good, &[("WR_TEST_VALIDATE_KEY", "some-long-secret-value")]);
    assert!(ok, "{text}");
    assert!(!text.contains("some-long-secret-value"), "{text}");

    let (ok, text) = validate(&good, &[]);
    assert!(!ok);
    assert!(
        text.contains("router.toml")
            && text.contains("outputs[0].secrets.api_key")
            && text.contains("WR_TEST_VALIDATE_KEY is not set"),
        "{text}"
    );

    let refused = wasm_output(
        "dd",
        plugin,
        "*",
        "http://127.0.0.1:9",
        "config = { gzip = true }\n",
    );
    let (ok, text) = validate(&refused, &[]);
    assert!(!ok);
    assert!(
        text.contains("outputs[0]") && text.contains("url") && text.contains("config"),
        "{text}"
    );

    let filter = wasm_output(
        "dd",
        wasm_router_test_artifacts::KEEP_ALL,
        "*",
        "http://127.0.0.1:9",
        "",
    );
    let (ok, text) = validate(&filter, &[]);
    assert!(!ok);
    assert!(text.contains("[[filters]]"), "{text}");

    let (ok, text) = validate(&wasm_output("dd", plugin, "*", "127.0.0.1:9", ""), &[]);
    assert!(!ok);
    assert!(
        text.contains("allow_hosts entry") && text.contains("https://host"),
        "{text}"
    );
}

#[test]
fn wasm_router_test_shows_requests_with_secret_headers_masked() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    std::fs::write(
        &input,
        "{\"seq\": 1, \"log\": \"a\"}\n{\"seq\": 2, \"log\": \"b\"}\n",
    )
    .unwrap();
    let responses = dir.path().join("responses.jsonl");
    std::fs::write(
        &responses,
        "{\"status\": 429, \"headers\": {\"retry-after\": \"2\"}}\n",
    )
    .unwrap();
    let out = run_to_end(
        router_command()
            .env("WR_TEST_CLI_KEY", SECRET)
            .arg("test")
            .arg(wasm_router_test_artifacts::JSON_OUTPUT)
            .arg("--input")
            .arg(&input)
            .args([
                "--set",
                "url=http://127.0.0.1:9/v1",
                "--set",
                "api_key_header=X-Api-Key",
            ])
            .arg("--responses")
            .arg(&responses),
        "wasm-router test",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("X-Api-Key: ****"), "{text}");
    assert!(text.contains("retry after 2000 ms"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
}

#[test]
fn https_intakes_are_reached_through_the_system_trust_store() {
    let (tls, pem) = self_signed();
    let intake = Intake::start_tls(Vec::new(), tls);
    let certs = tempfile::tempdir().unwrap();
    let ca_file = certs.path().join("ca.pem");
    std::fs::write(&ca_file, pem).unwrap();
    let secrets = secret_file();
    let extra = format!(
        "secrets = {{ api_key = \"file:{}/api_key\" }}\nconfig = {{ url = \"{}\", gzip = true, api_key_header = \"X-Api-Key\" }}\n",
        secrets.path().display(),
        intake.url("/v1/logs")
    );
    let config = router_config(&wasm_output(
        "tls",
        wasm_router_test_artifacts::JSON_OUTPUT,
        "*",
        &intake.url(""),
        &extra,
    ));
    // rustls-native-certs reads SSL_CERT_FILE instead of the system store when it is set.
    let router = RouterProcess::start_with_env(&config, &[("SSL_CERT_FILE", &ca_file)]);
    let addr = router.tcp_addr();
    send_acked(&addr, "app", 0, 20, 10, 30);
    wait_until(
        "every event accepted over HTTPS",
        || intake.accepted().len() >= 20,
        || router.log_text(),
    );
    drop(router);
    assert_exactly_once(&intake, &[], 20);
    let seen = intake.seen();
    assert!(
        seen.iter()
            .all(|s| s.headers.get("x-api-key").map(String::as_str) == Some(SECRET))
    );
}

#[test]
fn plugin_faults_reject_their_call_and_a_retry_after_date_is_honoured() {
    let faulty = Intake::start(vec![Reply::status(418)]);
    let retry_at = std::time::SystemTime::now() + Duration::from_secs(4);
    let dated = Intake::start(vec![
        Reply::status(503).with("retry-after", httpdate::fmt_http_date(retry_at)),
    ]);
    let outputs = [
        wasm_output(
            "faulty",
            wasm_router_test_artifacts::JSON_OUTPUT,
            "faulty.*",
            &faulty.url(""),
            &format!(
                "config = {{ url = \"{}\", trap_on_status = 418 }}\ndead_letter = {{ path = \"{{dir}}/dead.jsonl\" }}\n",
                faulty.url("/v1/logs")
            ),
        ),
        // json-output reads only delta-seconds: for a date it answers retry(none), and the
        // router reads the header itself.
        wasm_output(
            "dated",
            wasm_router_test_artifacts::JSON_OUTPUT,
            "dated.*",
            &dated.url(""),
            // Sent at once: the wait measured is the Retry-After date's alone.
            &format!(
                "config = {{ url = \"{}\" }}\nbatch_timeout = \"0s\"\n",
                dated.url("/v1/logs")
            ),
        ),
    ];
    let router = RouterProcess::start(&router_config(&outputs.concat()));
    let http = router.http_addr();
    let addr = router.tcp_addr();
    send_acked(&addr, "faulty.a", 0, 10, 10, 20);
    send_acked(&addr, "dated.a", 0, 10, 10, 20);
    wait_until(
        "the fault counted",
        || discarded(&scrape(&http), "faulty", "plugin_fault_trap") == 10,
        || router.log().join("\n"),
    );
    // The faulted instance was replaced: the next batch is delivered.
    send_acked(&addr, "faulty.a", 10, 10, 10, 20);
    wait_until(
        "the next batch accepted",
        || faulty.accepted().len() == 10 && dated.accepted().len() == 10,
        || router.log().join("\n"),
    );
    assert_eq!(
        faulty.accepted().keys().copied().collect::<Vec<_>>(),
        (10..20).collect::<Vec<_>>()
    );
    let dead = dead_letters(&router.dir.path().join("dead.jsonl"));
    assert_eq!(dead.len(), 10, "{dead:?}");
    assert!(
        dead.iter()
            .all(|d| d.1 == "plugin_fault_trap" && d.2.contains("on-response faulted")),
        "{dead:?}"
    );
    let samples = scrape(&http);
    assert!(
        prometheus_text::sum(
            &samples,
            "wasm_plugin_faults_total",
            &[("plugin", "faulty"), ("reason", "trap")]
        ) >= 1.0
    );
    assert_eq!(
        prometheus_text::sum(
            &samples,
            "wasm_output_requests_total",
            &[("output", "dated"), ("result", "5xx")]
        ),
        1.0
    );
    // The router waited as the date said (give or take the second the date is rounded to).
    let retry = router.wait_for_log("the dated retry", |l| {
        l.contains("retrying delivery") && l.contains("component=dated")
    });
    let wait = retry
        .split_whitespace()
        .find_map(|w| w.strip_prefix("wait="))
        .unwrap_or_else(|| panic!("{retry}"));
    let seconds: f64 = wait
        .strip_suffix('s')
        .and_then(|w| w.parse().ok())
        .unwrap_or(0.0);
    assert!(
        seconds >= 2.0,
        "waited {wait} for a Retry-After 4 s ahead: {retry}"
    );
}

#[test]
fn a_large_batch_is_encoded_in_calls_of_at_most_max_call_events() {
    let intake = Intake::start(Vec::new());
    let extra = format!("config = {{ url = \"{}\" }}\n", intake.url("/v1/logs"));
    let config = router_config(&wasm_output(
        "intake",
        wasm_router_test_artifacts::JSON_OUTPUT,
        "*",
        &intake.url(""),
        &extra,
    ));
    let router = RouterProcess::start(&config);
    // One request, so one batch of 2,500 events: more than one call's worth.
    let total = 2500;
    send_acked(&router.tcp_addr(), "app", 0, total, total, 20);
    wait_until(
        "every event accepted",
        || intake.accepted().len() >= total as usize,
        || format!("log:\n{}", router.log().join("\n")),
    );
    assert_exactly_once(&intake, &[], total);
    let seen = intake.seen();
    let max_call = wasm_router::plugin::filter::MAX_CALL_EVENTS;
    assert!(
        seen.len() >= (total as usize).div_ceil(max_call),
        "{} requests",
        seen.len()
    );
    assert!(
        seen.iter().all(|s| s.seqs.len() <= max_call),
        "a request carries more than one call's events: {:?}",
        seen.iter().map(|s| s.seqs.len()).collect::<Vec<_>>()
    );
}

#[test]
fn a_path_grant_is_not_escaped_with_dot_segments() {
    let intake = Intake::start(Vec::new());
    let grant = intake.url("/api/");
    // (output, URL the plugin asks for, whether it stays inside the grant)
    let cases = [
        ("plain", "/api/../admin", false),
        ("lower", "/api/%2e%2e/admin", false),
        ("upper", "/api/%2E%2E/admin", false),
        ("dotted", "/api/./../admin", false),
        ("slash", "/api/..%2Fadmin", false),
        ("inside", "/api/v2/../logs", true),
    ];
    let outputs: String = cases
        .iter()
        .map(|(name, path, _)| {
            wasm_output(
                name,
                wasm_router_test_artifacts::JSON_OUTPUT,
                &format!("{name}.*"),
                &grant,
                &format!("config = {{ url = \"{}\" }}\n", intake.url(path)),
            )
        })
        .collect();
    let router = RouterProcess::start(&router_config(&outputs));
    let http = router.http_addr();
    let addr = router.tcp_addr();
    for (name, _, _) in &cases {
        send_acked(&addr, &format!("{name}.a"), 0, 5, 5, 20);
    }
    wait_until(
        "every escape refused and the inside request delivered",
        || {
            let samples = scrape(&http);
            cases
                .iter()
                .filter(|(_, _, inside)| !inside)
                .all(|(name, _, _)| discarded(&samples, name, "host_not_allowed") == 5)
                && intake.accepted().len() == 5
        },
        || format!("{:?}\nlog:\n{}", scrape(&http), router.log().join("\n")),
    );
    let paths: Vec<String> = intake.seen().iter().map(|s| s.path.clone()).collect();
    assert_eq!(paths, ["/api/logs"], "sent: {paths:?}");
    // The refusal is logged (the line may reach the log just after the counter moved).
    router.wait_for_log("the refusal of /api/../admin", |l| {
        l.contains("request refused") && l.contains("/api/../admin")
    });
}
