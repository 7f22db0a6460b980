//! The router against hostile clients and careless configs, on the real binary:
//!
//! - The health and metrics server keeps answering while 100 connections sit idle and 20 more
//!   trickle half a request line: the longest-idle connections are closed to make room, and the
//!   request-head timeout closes the tricklers.
//! - A PING hostname from an unauthenticated forward client (npm `fluent-logger`'s handshake)
//!   that carries a line break, a fake log line and a colour code is logged escaped, on one
//!   line, in the text and the JSON format.
//! - `validate` and `run` errors show secret `${VAR}` values as `${NAME}` however they are
//!   printed (here `Debug`-escaped, with `"` and `\` in them), in both config formats, and show
//!   the other `${VAR}` values as they are.
//!
//! Nothing here asserts a duration except as a generous bound that only catches a hang.

use crate::common;

use common::{RouterProcess, closed_by_peer, router_command, run_to_end};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a health check may take while the server is under abuse (the ECS default
/// health-check timeout); the aim is well under 1 s.
const HEALTH_CHECK_BOUND: Duration = Duration::from_secs(5);

/// `GET path` on a new connection, bounded by `timeout`: (status, body).
fn http_get(addr: &str, path: &str, timeout: Duration) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(timeout)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw)
        .unwrap_or_else(|e| panic!("no answer to GET {path} within {timeout:?}: {e}"));
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("bad response {raw:?}"));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

#[test]
fn health_answers_while_idle_and_trickling_connections_fill_the_server() {
    let router = RouterProcess::start(
        r#"
[service]
grace = "1s"
http_listen = "127.0.0.1:0"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[outputs]]
type = "null"
match = "*"
"#,
    );
    let http = router.http_addr();
    let mut idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&http).unwrap())
        .collect();
    let mut trickling: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(&http).unwrap();
            s.write_all(b"GET /api/v1/hea").unwrap();
            s
        })
        .collect();

    let started = Instant::now();
    let (status, body) = http_get(&http, "/api/v1/health", HEALTH_CHECK_BOUND);
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert!(
        started.elapsed() < HEALTH_CHECK_BOUND,
        "the health check took {:?}",
        started.elapsed()
    );

    // At most 64 connections are kept: the oldest idle ones were closed to make room.
    let mut closed = 0;
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        closed += usize::from(closed_by_peer(s));
    }
    assert!(
        closed >= 120 + 1 - 64,
        "only {closed} of the idle connections were closed"
    );
    // The request-head timeout closes the rest, tricklers included.
    common::wait_until(
        "every half-sent request closed by the request-head timeout",
        || {
            trickling.iter_mut().all(|s| {
                s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                closed_by_peer(s)
            })
        },
        || router.log().join("\n"),
    );
    let (status, _) = http_get(&http, "/metrics", HEALTH_CHECK_BOUND);
    assert_eq!(status, 200);
    assert!(
        router
            .log()
            .iter()
            .any(|l| l.contains("closed the longest-idle one")),
        "{}",
        router.log().join("\n")
    );
}

/// The hostname a hostile client gives in its PING: a line break, a forged line, colours.
const FORGED_HOSTNAME: &str =
    "evil-host\n2026-01-01T00:00:00.000000Z ERROR wasm_router: forged: disk full\u{1b}[31m";

#[test]
fn a_forged_ping_hostname_is_logged_escaped_on_one_line() {
    for format in ["text", "json"] {
        let router = RouterProcess::start(&format!(
            r#"
[service]
grace = "1s"
log_format = "{format}"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"
security = {{ shared_key = "the-right-key-7d1e" }}

[[outputs]]
type = "null"
match = "*"
"#
        ));
        let addr = if format == "json" {
            let line = router.wait_for_log("the listener", |l| l.contains("\"listening\""));
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            value["addr"]
                .as_str()
                .unwrap()
                .trim_start_matches("tcp://")
                .to_string()
        } else {
            router.tcp_addr()
        };
        let node = common::node_dir();
        let out = run_to_end(
            Command::new("node")
                .current_dir(&node)
                .arg(node.join("send_secure.js"))
                .args(["--address", &addr, "--tag", "app.x", "--count", "1"])
                .args(["--shared-key", "a-wrong-key-0000"])
                .args(["--client-hostname", FORGED_HOSTNAME]),
            "the node sender",
        );
        assert!(
            !out.status.success(),
            "the handshake with a wrong key succeeded"
        );
        let line = router.wait_for_log("the refused handshake", |l| {
            l.contains("failed the shared-key handshake")
        });
        let log = router.log();
        assert!(
            !log.iter().any(|l| l.starts_with("2026-01-01")),
            "a forged line reached the log ({format}):\n{}",
            log.join("\n")
        );
        assert!(
            line.contains("evil-host\\n2026-01-01T00:00:00.000000Z ERROR wasm_router: forged"),
            "{format}: {line}"
        );
        assert!(
            line.contains("\\x1b[31m") || line.contains("\\u001b[31m"),
            "{format}: {line}"
        );
        if format == "json" {
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(value["client_hostname"], FORGED_HOSTNAME, "{line}");
        }
    }
}

/// `wasm-router <command> -c <file>` with `env`: (exit code, stderr).
fn run_config(command: &str, file: &std::path::Path, env: &[(&str, &str)]) -> (i32, String) {
    let out = run_to_end(
        router_command()
            .args([command, "-c", file.to_str().unwrap()])
            .envs(env.iter().copied()),
        "wasm-router",
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_errors_hide_secret_values_in_any_form_and_show_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let token = r#"pa"ss\wo-rd42"#;
    let tier_key = r#"ti"er\key-99"#;
    let api_key = r#"dd"se\cret-1"#;

    // TOML: a secret named so (`…TOKEN`), one in a credential option (`shared_key`), and a
    // plain value (a name) in a broken regular expression, which the error quotes.
    let toml = dir.path().join("router.toml");
    std::fs::write(
        &toml,
        r#"
[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[outputs]]
type = "stdout"
match_regex = "^${WR_OUTPUT_NAME}-("

[[outputs]]
type = "forward"
match = "x"
host = "127.0.0.1"
shared_key = '${WR_TIER}'
compress = '${WR_TEST_TOKEN}'
"#,
    )
    .unwrap();
    let env = [
        ("WR_OUTPUT_NAME", "cloudwatch"),
        ("WR_TEST_TOKEN", token),
        ("WR_TIER", tier_key),
    ];
    for command in ["validate", "run"] {
        let (code, stderr) = run_config(command, &toml, &env);
        assert_eq!(code, 1, "{command}: {stderr}");
        assert!(
            stderr.contains("compress = \"${WR_TEST_TOKEN}\""),
            "{command}: {stderr}"
        );
        assert!(stderr.contains("^cloudwatch-("), "{command}: {stderr}");
        for shown in ["pa\\\"ss", "pa\"ss", "wo-rd42", "key-99"] {
            assert!(!stderr.contains(shown), "{command} shows {shown}: {stderr}");
        }
    }

    // Fluent Bit classic: a secret named so, printed `Debug`-escaped by the error; the plugin
    // name from a variable stays readable.
    let classic = dir.path().join("fluent-bit.conf");
    std::fs::write(
        &classic,
        "[INPUT]\n    Name   forward\n    Listen 127.0.0.1\n    Port   0\n\n[OUTPUT]\n    Name  ${OUTPUT_PLUGIN}\n    Match *\n    storage.total_limit_size ${DD_API_KEY}\n",
    )
    .unwrap();
    let env = [("OUTPUT_PLUGIN", "stdout"), ("DD_API_KEY", api_key)];
    for command in ["validate", "run"] {
        let (code, stderr) = run_config(command, &classic, &env);
        assert_eq!(code, 1, "{command}: {stderr}");
        assert!(
            stderr.contains("storage.total_limit_size: \"${DD_API_KEY}\""),
            "{command}: {stderr}"
        );
        assert!(!stderr.contains("se\\\\cret"), "{command}: {stderr}");
        assert!(!stderr.contains("cret-1"), "{command}: {stderr}");
    }
    std::fs::write(
        &classic,
        "[INPUT]\n    Name   forward\n    Listen 127.0.0.1\n    Port   0\n\n[OUTPUT]\n    Name  ${OUTPUT_PLUGIN}\n    Match_Regex ^${OUTPUT_PLUGIN}-(\n",
    )
    .unwrap();
    let (code, stderr) = run_config("validate", &classic, &env);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("^stdout-("), "{stderr}");
}
