//! The `forward` output to an aggregator tier (issue 6 item 5), end to end between two real
//! routers: router A (forward input → forward output with a shared key, with and without TLS,
//! Forward and CompressedPackedForward) → router B (forward input with the same key → stdout).
//!
//! - Every event sent into A is printed by B exactly once, and A counts the events as sent only
//!   once B has acked them.
//! - B stopped in the middle of the stream and started again on the same port: nothing is lost.
//!   Duplicates are allowed only where the protocol allows them (a request whose ack was lost
//!   is resent); the test reports how many it saw.
//! - A wrong shared key: B refuses A (logged once, counted every time), A retries with backoff
//!   and logs why, and B prints nothing.
//! - npm `fluent-logger`'s own handshake (`security: {clientHostname, sharedKey}`), plain and
//!   over TLS, against our input: accepted with the right key, refused with the wrong one.
//!   Without acks: fluent-logger 3.4.1 drops acks that arrive before its write callback once a
//!   handshake has put the socket in flowing mode (see testing/clients/node/send_secure.js).
//!
//! Certificates are generated for each test with rcgen: a CA and a `localhost` / 127.0.0.1
//! server certificate signed by it.

use crate::common;

use common::delivery::send_acked;
use common::free_port;
use common::{HANG_TIMEOUT, PrintedEvent, RouterProcess, scrape, wait_until};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const KEY: &str = "tier-key-5f2b9c";
const SEQ_PAD: usize = 120;

/// A CA and a server certificate for `localhost` and 127.0.0.1 signed by it, as PEM files.
struct Certificates {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn certificates() -> Certificates {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "wasm-router test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    let write = |name: &str, pem: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    Certificates {
        ca: write("ca.pem", ca_cert.pem()),
        cert: write("server.pem", server_cert.pem()),
        key: write("server.key", server_key.serialize_pem()),
        _dir: dir,
    }
}

/// Router B: a forward input on `port` that requires `FORWARD_KEY` (and TLS with `tls`), and
/// a stdout output.
fn start_aggregator(port: u16, key: &str, tls: Option<&Certificates>) -> RouterProcess {
    start_aggregator_buffered(port, key, tls, None)
}

/// [`start_aggregator`] whose stdout output has a disk buffer under `buffer_dir`.
fn start_aggregator_buffered(
    port: u16,
    key: &str,
    tls: Option<&Certificates>,
    buffer_dir: Option<&std::path::Path>,
) -> RouterProcess {
    let tls = tls.map_or(String::new(), |c| {
        format!(
            "tls = {{ cert_file = {:?}, key_file = {:?} }}\n",
            c.cert.to_str().unwrap(),
            c.key.to_str().unwrap()
        )
    });
    let buffer = buffer_dir.map_or(String::new(), |d| {
        format!(
            "buffer = {{ type = \"disk\", path = {:?} }}\n",
            d.to_str().unwrap()
        )
    });
    let config = format!(
        r#"
[service]
grace = "3s"
http_listen = "127.0.0.1:0"

[[inputs]]
type = "forward"
listen = "127.0.0.1:{port}"
security = {{ shared_key = "${{FORWARD_KEY}}", self_hostname = "aggregator" }}
{tls}
[[outputs]]
type = "stdout"
match = "*"
{buffer}"#
    );
    let router = RouterProcess::start_with_env(&config, &[("FORWARD_KEY", key)]);
    router.tcp_addr();
    router
}

/// Router A: a plain forward input on a free port and a forward output to `port`.
fn start_sender(port: u16, key: &str, compress: &str, tls: Option<&Certificates>) -> RouterProcess {
    let tls = tls.map_or(String::new(), |c| {
        format!(
            "tls = true\ntls_ca_file = {:?}\ntls_server_name = \"localhost\"\n",
            c.ca.to_str().unwrap()
        )
    });
    let config = format!(
        r#"
[service]
grace = "20s"
http_listen = "127.0.0.1:0"
retry_backoff_base = "50ms"
retry_backoff_cap = "500ms"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[outputs]]
type = "forward"
name = "tier"
match = "*"
host = "127.0.0.1"
port = {port}
shared_key = "${{FORWARD_KEY}}"
self_hostname = "app-task"
compress = "{compress}"
ack_response_timeout = "5s"
connect_timeout = "2s"
max_request_bytes = "8KiB"
{tls}"#
    );
    let router = RouterProcess::start_with_env(&config, &[("FORWARD_KEY", key)]);
    router.tcp_addr();
    router
}

/// How often each `seq` was printed, from the events of one or more runs of B.
fn seq_counts(events: &[PrintedEvent]) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for e in events {
        let seq = e.record["seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("no seq in {}", e.summary()));
        *counts.entry(seq).or_default() += 1;
    }
    counts
}

/// The sum of a Prometheus counter over the samples whose labels contain every `labels` pair.
fn counter(router: &RouterProcess, name: &str, labels: &[(&str, &str)]) -> f64 {
    wasm_router::ops::prometheus_text::sum(&scrape(&router.http_addr()), name, labels)
}

/// Send `count` events through A to B and check that B printed each exactly once and that A
/// counted them as sent.
fn every_event_arrives_once(compress: &str, tls: bool) {
    let certs = tls.then(certificates);
    let port = free_port();
    let b = start_aggregator(port, KEY, certs.as_ref());
    let a = start_sender(port, KEY, compress, certs.as_ref());
    let count = 2000u32;
    send_acked(&a.tcp_addr(), "app.web", 0, count, 100, SEQ_PAD);
    let printed = b.wait_for_events(count as usize);
    wait_until(
        "A to count every event as sent",
        || {
            counter(
                &a,
                "component_sent_events_total",
                &[("component_id", "tier")],
            ) == f64::from(count)
        },
        String::new,
    );
    a.stop();
    let printed_after = b.stop();
    assert!(printed_after.len() >= printed.len());
    let counts = seq_counts(&printed_after);
    assert_eq!(counts.len(), count as usize, "every seq arrived");
    assert!(
        counts.values().all(|&n| n == 1),
        "a seq arrived twice: {:?}",
        counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .take(5)
            .collect::<Vec<_>>()
    );
    assert!(printed_after.iter().all(|e| e.tag == "app.web"));
    assert_eq!(
        printed_after[0].time_ns,
        common::BASE_NS,
        "times are kept to the nanosecond"
    );
}

#[test]
fn forward_mode_with_the_shared_key() {
    every_event_arrives_once("none", false);
}

#[test]
fn compressed_packed_forward_with_the_shared_key() {
    every_event_arrives_once("gzip", false);
}

#[test]
fn forward_mode_over_tls_with_the_shared_key() {
    every_event_arrives_once("none", true);
}

#[test]
fn compressed_packed_forward_over_tls_with_the_shared_key() {
    every_event_arrives_once("gzip", true);
}

/// B is stopped while A is sending and started again on the same port: every event arrives.
/// `kill`: SIGKILL instead of SIGTERM, with B's output on a disk buffer that its second run
/// recovers (what B acked must survive it).
fn aggregator_goes_away_and_returns(kill: bool) {
    let certs = certificates();
    let buffers = tempfile::tempdir().unwrap();
    let buffer_dir = kill.then(|| buffers.path());
    let port = free_port();
    let mut b1 = start_aggregator_buffered(port, KEY, Some(&certs), buffer_dir);
    let a = start_sender(port, KEY, "gzip", Some(&certs));
    let a_addr = a.tcp_addr();
    // The sender keeps sending rounds of 50 events until B has come back and printed some.
    let back = Arc::new(AtomicBool::new(false));
    let sender = {
        let back = back.clone();
        std::thread::spawn(move || {
            let mut sent = 0u32;
            while !back.load(Ordering::SeqCst) || sent < 1000 {
                send_acked(&a_addr, "app.web", sent, 50, 10, SEQ_PAD);
                sent += 50;
                std::thread::sleep(Duration::from_millis(10));
            }
            sent
        })
    };
    b1.wait_for_events(300);
    let first_run = if kill {
        b1.signal("KILL");
        b1.wait_exit(HANG_TIMEOUT);
        b1.events_after_exit()
    } else {
        b1.stop()
    };
    let sent_while_down = counter(
        &a,
        "component_sent_events_total",
        &[("component_id", "tier")],
    );
    let b2 = start_aggregator_buffered(port, KEY, Some(&certs), buffer_dir);
    b2.wait_for_events(1);
    back.store(true, Ordering::SeqCst);
    let total = sender.join().unwrap();
    assert!(
        first_run.len() < total as usize,
        "B's first run printed everything; the test needs it stopped in the middle"
    );
    wait_until(
        "B's second run to print the rest",
        || seq_counts(&[first_run.clone(), b2.events()].concat()).len() == total as usize,
        String::new,
    );
    a.stop();
    let second_run = b2.stop();
    let counts = seq_counts(&[first_run.clone(), second_run.clone()].concat());
    let missing: Vec<u64> = (0..u64::from(total))
        .filter(|s| !counts.contains_key(s))
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    if !kill {
        // A resends only requests whose ack it did not get (one in flight per connection):
        // an 8 KiB request holds at most ~60 of these events.
        assert!(
            duplicates <= 64,
            "{duplicates} duplicates: more than one unacked request was resent"
        );
        assert!(
            sent_while_down <= first_run.len() as f64,
            "A counted {sent_while_down} as sent, but B printed only {}",
            first_run.len()
        );
    }
    eprintln!(
        "restart (kill: {kill}): {total} sent; first run printed {}, second {}, duplicates {duplicates}; A counted {sent_while_down} sent while B was down",
        first_run.len(),
        second_run.len()
    );
}

#[test]
fn an_aggregator_that_stops_and_returns_loses_nothing() {
    aggregator_goes_away_and_returns(false);
}

#[test]
fn an_aggregator_killed_with_a_disk_buffer_loses_nothing() {
    aggregator_goes_away_and_returns(true);
}

#[test]
fn a_wrong_shared_key_is_refused_logged_and_retried_and_nothing_is_delivered() {
    let port = free_port();
    let b = start_aggregator(port, KEY, None);
    let a = start_sender(port, "not-the-key-123", "none", None);
    let a_addr = a.tcp_addr();
    // A acks what it buffered: the events wait in A's buffer, not in the sender.
    send_acked(&a_addr, "app.web", 0, 50, 10, SEQ_PAD);
    let refused = a.wait_for_log("the handshake failure", |l| {
        l.contains("shared-key handshake") && l.contains("shared_key mismatch")
    });
    assert!(refused.contains("fix"), "{refused}");
    b.wait_for_log("the refused client", |l| {
        l.contains("failed the shared-key handshake") && l.contains("app-task")
    });
    wait_until(
        "B to refuse A at least three times",
        || {
            counter(
                &b,
                "component_errors_total",
                &[("component_id", "forward"), ("reason", "auth_failed")],
            ) >= 3.0
        },
        String::new,
    );
    wait_until(
        "A to count retries",
        || counter(&a, "component_retries_total", &[("component_id", "tier")]) >= 2.0,
        String::new,
    );
    let log = b.log();
    assert_eq!(
        log.iter()
            .filter(|l| l.contains("failed the shared-key handshake"))
            .count(),
        1,
        "B logs the refusal once:\n{}",
        log.join("\n")
    );
    assert!(
        !log.join("\n").contains(KEY),
        "B's log shows the shared key"
    );
    assert_eq!(
        counter(
            &a,
            "component_sent_events_total",
            &[("component_id", "tier")]
        ),
        0.0
    );
    drop(a);
    assert!(
        b.stop().is_empty(),
        "B printed events from a refused client"
    );
}

/// Run testing/clients/node/send_secure.js; returns (success, stderr).
fn node_secure(address: &str, tag: &str, count: u32, key: &str, extra: &[&str]) -> (bool, String) {
    let dir = common::node_dir();
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir)
        .arg(dir.join("send_secure.js"))
        .args(["--address", address, "--tag", tag])
        .args(["--count", &count.to_string(), "--shared-key", key])
        .args(["--client-hostname", "node-client"])
        .args(extra);
    let out = common::run_to_end(&mut cmd, "the node sender");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn node_expected(tag: &str, count: u32) -> Vec<PrintedEvent> {
    (0..count)
        .map(|i| {
            PrintedEvent::new(
                tag,
                (1_700_000_000 + u64::from(i)) * 1_000_000_000,
                serde_json::json!({"seq": i, "msg": format!("secure {i}")}),
            )
        })
        .collect()
}

#[test]
fn npm_fluent_logger_handshakes_with_our_input() {
    let certs = certificates();
    let (plain_port, tls_port) = (free_port(), free_port());
    let plain = start_aggregator(plain_port, KEY, None);
    let tls = start_aggregator(tls_port, KEY, Some(&certs));
    let count = 200;
    for (router, port, mode, extra) in [
        (&plain, plain_port, "Message", vec![]),
        (&plain, plain_port, "CompressedPackedForward", vec![]),
        (
            &tls,
            tls_port,
            "PackedForward",
            vec![
                "--tls-ca",
                certs.ca.to_str().unwrap(),
                "--tls-servername",
                "localhost",
            ],
        ),
    ] {
        let tag = format!("node.{}", mode.to_lowercase());
        let mut args = vec!["--mode", mode];
        args.extend(extra.iter().copied());
        let (ok, stderr) = node_secure(&format!("127.0.0.1:{port}"), &tag, count, KEY, &args);
        assert!(ok, "node {mode} with the right key failed: {stderr}");
        let with_tag = || -> Vec<PrintedEvent> {
            router
                .events()
                .into_iter()
                .filter(|e| e.tag == tag)
                .collect()
        };
        wait_until(
            "B to print the node client's events",
            || with_tag().len() >= count as usize,
            String::new,
        );
        let printed = with_tag();
        common::assert_events_eq(&printed, &node_expected(&tag, count));
    }
    let (ok, stderr) = node_secure(
        &format!("127.0.0.1:{plain_port}"),
        "node.wrong",
        5,
        "wrong-key-0000",
        &[],
    );
    assert!(!ok, "node with a wrong key succeeded");
    assert!(
        stderr.contains("Authentication failed: shared_key mismatch"),
        "{stderr}"
    );
    plain.wait_for_log("the refused node client", |l| {
        l.contains("failed the shared-key handshake") && l.contains("node-client")
    });
    let printed = plain.stop();
    assert!(printed.iter().all(|e| e.tag != "node.wrong"));
    tls.stop();
}
