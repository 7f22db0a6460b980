//! The `http` input end to end: `curl` and Python's `urllib` post JSON objects, arrays, form
//! data and gzip bodies to a running router; every record is found at the `stdout` output with
//! the tag its path (or its `tag_key`) gives, and what is refused (bad JSON, a body over
//! `buffer_max_size`, sent or decompressed) is answered 400 / 413 and counted under its reason.

use crate::common::{self, RouterProcess};
use serde_json::json;
use std::process::Command;

/// `curl` a POST of `body` to `url` with `args`; the status code.
fn curl(url: &str, body: &str, args: &[&str]) -> u16 {
    // From a file: a body can be longer than one command-line argument may be.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), body).unwrap();
    let body = format!("@{}", file.path().display());
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
        ])
        .args(args)
        .args(["--data-binary", &body, url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).parse().unwrap()
}

/// Python's `urllib` POSTs `json_text` gzipped to `url`; the status code.
fn python_gzip_post(url: &str, json_text: &str) -> u16 {
    let script = format!(
        "import gzip, urllib.request, urllib.error\n\
         req = urllib.request.Request({url:?}, data=gzip.compress({json_text:?}.encode()), method='POST',\n\
             headers={{'Content-Type': 'application/json', 'Content-Encoding': 'gzip'}})\n\
         try:\n    print(urllib.request.urlopen(req, timeout=20).status)\n\
         except urllib.error.HTTPError as e:\n    print(e.code)\n"
    );
    let out = Command::new(common::python())
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn config(port: u16, http: u16, extra: &str) -> String {
    format!(
        "[service]\nhttp_listen = \"127.0.0.1:{http}\"\n\
         [[inputs]]\ntype = \"http\"\nlisten = \"127.0.0.1:{port}\"\ntag = \"web\"\n{extra}\n\
         [[outputs]]\ntype = \"stdout\"\nmatch = \"*\"\n"
    )
}

const JSON: &str = "Content-Type: application/json";

#[test]
fn objects_arrays_forms_and_gzip_arrive_with_their_tags() {
    let (port, http) = (common::free_port(), common::free_port());
    let router = RouterProcess::start(&config(port, http, "tag_key = \"route\""));
    router.listening(1);
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(
        curl(
            &format!("{base}/app.log"),
            r#"{"msg":"one"}"#,
            &["-H", JSON]
        ),
        201
    );
    assert_eq!(
        curl(
            &format!("{base}/"),
            r#"[{"msg":"two"},{"msg":"three","route":"by.key"}]"#,
            &["-H", JSON]
        ),
        201
    );
    // curl -d sends application/x-www-form-urlencoded.
    assert_eq!(
        curl(&format!("{base}/forms"), "msg=hello%20form&level=info", &[]),
        201
    );
    assert_eq!(
        python_gzip_post(
            &format!("{base}/zipped"),
            r#"[{"msg":"four"},{"msg":"five"}]"#
        ),
        201
    );
    // The events are in the buffer once the client has its answer.
    let events = router.wait_for_events(6);
    let mut got: Vec<_> = events
        .iter()
        .map(|e| (e.tag.clone(), e.record.clone()))
        .collect();
    got.sort_by_key(|(tag, r)| (tag.clone(), r.to_string()));
    assert_eq!(
        got,
        [
            ("app.log".to_string(), json!({"msg": "one"})),
            (
                "by.key".to_string(),
                json!({"msg": "three", "route": "by.key"})
            ),
            (
                "forms".to_string(),
                json!({"msg": "hello form", "level": "info"})
            ),
            ("web".to_string(), json!({"msg": "two"})),
            ("zipped".to_string(), json!({"msg": "five"})),
            ("zipped".to_string(), json!({"msg": "four"})),
        ]
    );
    let samples = common::scrape(&router.http_addr());
    let received = wasm_router::ops::prometheus_text::sum(
        &samples,
        "component_received_events_total",
        &[("component_id", "http")],
    );
    assert_eq!(received, 6.0);
}

#[test]
fn bad_bodies_are_answered_400_or_413_and_counted() {
    let (port, http) = (common::free_port(), common::free_port());
    let router = RouterProcess::start(&config(
        port,
        http,
        "buffer_max_size = \"1KiB\"\nsuccessful_response_code = 200",
    ));
    router.listening(1);
    let url = format!("http://127.0.0.1:{port}/t");
    assert_eq!(curl(&url, r#"{"broken":"#, &["-H", JSON]), 400);
    assert_eq!(curl(&url, "[1, 2]", &["-H", JSON]), 400);
    assert_eq!(
        curl(&url, r#"{"a":1}"#, &["-H", "Content-Type: text/plain"]),
        400
    );
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(2000));
    assert_eq!(curl(&url, &big, &["-H", JSON]), 413);
    // Small on the wire, over the limit once decompressed.
    assert_eq!(python_gzip_post(&url, &big), 413);
    assert_eq!(curl(&url, r#"{"good":true}"#, &["-H", JSON]), 200);
    let events = router.wait_for_events(1);
    let http = router.http_addr();
    let errors = |reason: &str| {
        wasm_router::ops::prometheus_text::sum(
            &common::scrape(&http),
            "component_errors_total",
            &[("component_id", "http"), ("reason", reason)],
        )
    };
    assert_eq!(errors("invalid_json"), 2.0);
    assert_eq!(errors("invalid_content_type"), 1.0);
    assert_eq!(errors("request_too_large"), 2.0);
    let events_after = router.stop();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events_after.len(),
        1,
        "nothing of a refused request is kept"
    );
    assert_eq!(events_after[0].record, json!({"good": true}));
}

/// The classic `[INPUT] http` of the FireLens dev configs (`host`, `port`), end to end.
#[test]
fn a_classic_http_input_serves_on_its_port() {
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("fluent-bit.conf");
    std::fs::write(
        &conf,
        format!(
            "[INPUT]\n     Name http\n     host 127.0.0.1\n     port {port}\n\n[OUTPUT]\n     Name stdout\n     Match *\n"
        ),
    )
    .unwrap();
    let conf = conf.to_str().unwrap().to_string();
    let router = RouterProcess::start_with_args(&["run", "-c", &conf], dir);
    router.listening(1);
    assert_eq!(
        curl(
            &format!("http://127.0.0.1:{port}/dev.test"),
            r#"{"hello":"firelens"}"#,
            &["-H", JSON]
        ),
        201
    );
    let events = router.stop();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].tag, "dev.test");
    assert_eq!(events[0].record, json!({"hello": "firelens"}));
}

/// Idle clients cannot lock others out: at `max_connections` the longest-idle connection is
/// closed for a newcomer, which is served.
#[test]
fn idle_connections_at_the_cap_make_room_for_a_client() {
    let (port, http) = (common::free_port(), common::free_port());
    let router = RouterProcess::start(&config(port, http, "max_connections = 2"));
    router.listening(1);
    let idle: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    assert_eq!(
        curl(
            &format!("http://127.0.0.1:{port}/"),
            r#"{"after":"idle"}"#,
            &["-H", JSON]
        ),
        201
    );
    let events = router.wait_for_events(1);
    assert_eq!(events[0].record, json!({"after": "idle"}));
    let evicted = wasm_router::ops::prometheus_text::sum(
        &common::scrape(&router.http_addr()),
        "component_errors_total",
        &[("component_id", "http"), ("reason", "idle_evicted")],
    );
    assert!(evicted >= 2.0, "{evicted}");
    drop(idle);
}

/// `tls = { cert_file, key_file }`: the input serves HTTPS; curl verifies the certificate.
#[test]
fn tls_serves_https() {
    let (port, http) = (common::free_port(), common::free_port());
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let pem = tempfile::tempdir().unwrap();
    let (cert, key) = (pem.path().join("cert.pem"), pem.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let router = RouterProcess::start(&config(
        port,
        http,
        &format!("tls = {{ cert_file = {cert:?}, key_file = {key:?} }}"),
    ));
    router.listening(1);
    let cacert = cert.to_str().unwrap();
    assert_eq!(
        curl(
            &format!("https://127.0.0.1:{port}/secure"),
            r#"{"over":"tls"}"#,
            &["-H", JSON, "--cacert", cacert]
        ),
        201
    );
    let events = router.stop();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].tag, "secure");
    assert_eq!(events[0].record, json!({"over": "tls"}));
}

/// A body that cannot fit the inputs' share of the memory budget is answered 503 (counted),
/// not read into memory; a small one still goes through.
#[test]
fn a_body_over_the_input_memory_is_answered_503() {
    let (port, http) = (common::free_port(), common::free_port());
    let router = RouterProcess::start(
        &config(port, http, "").replace("[service]\n", "[service]\nmemory_budget = \"2MiB\"\n"),
    );
    router.listening(1);
    let url = format!("http://127.0.0.1:{port}/t");
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(1 << 20));
    assert_eq!(curl(&url, &big, &["-H", JSON]), 503);
    assert_eq!(curl(&url, r#"{"small":1}"#, &["-H", JSON]), 201);
    let events = router.wait_for_events(1);
    assert_eq!(events[0].record, json!({"small": 1}));
    let unavailable = wasm_router::ops::prometheus_text::sum(
        &common::scrape(&router.http_addr()),
        "component_errors_total",
        &[("component_id", "http"), ("reason", "memory_unavailable")],
    );
    assert_eq!(unavailable, 1.0);
}
