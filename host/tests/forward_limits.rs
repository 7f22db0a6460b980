//! The forward input under hostile and careless clients (issue 13, items 2, 3, 5): its memory
//! is inside the budget, a new sender is always served, and SIGTERM finishes within `grace`
//! whatever the clients do. Real sockets against the router binary; what the router decided is
//! read from its `/metrics` (`component_errors_total{reason=…}`), never from timings or RSS.

use crate::common;

use common::{RouterProcess, closed_by_peer, expect_ack, message_frame, msgpack, scrape};
use serde_json::json;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Errors the input `forward` counted under `reason`.
fn input_errors(router: &RouterProcess, reason: &str) -> u64 {
    wasm_router::ops::prometheus_text::sum(
        &scrape(&router.http_addr()),
        "component_errors_total",
        &[("component_id", "forward"), ("reason", reason)],
    ) as u64
}

fn wait_for_errors(router: &RouterProcess, reason: &str, at_least: u64) {
    common::wait_until(
        &format!("{at_least} errors{{reason=\"{reason}\"}}"),
        || input_errors(router, reason) >= at_least,
        || router.log().join("\n"),
    );
}

/// One acked Message-mode event on `conn`.
fn send_acked(conn: &mut (impl Write + std::io::Read), tag: &str, chunk: &str) {
    let record = msgpack(&json!({"log": chunk}));
    conn.write_all(&message_frame(tag.as_bytes(), 1, &record, Some(chunk)))
        .unwrap();
    expect_ack(conn, chunk);
}

fn connect(router: &RouterProcess) -> TcpStream {
    let conn = TcpStream::connect(router.tcp_addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn
}

/// `[tag, bin([0, {}] × n), {"chunk": chunk}]`: the most events per wire byte (3 bytes each).
fn tiny_entries_request(n: usize, chunk: &str) -> Vec<u8> {
    let entries: Vec<u8> = std::iter::repeat_n([0x92u8, 0x00, 0x80], n)
        .flatten()
        .collect();
    let mut b = Vec::new();
    rmp::encode::write_array_len(&mut b, 3).unwrap();
    rmp::encode::write_str(&mut b, "tiny").unwrap();
    rmp::encode::write_bin(&mut b, &entries).unwrap();
    rmp::encode::write_map_len(&mut b, 1).unwrap();
    rmp::encode::write_str(&mut b, "chunk").unwrap();
    rmp::encode::write_str(&mut b, chunk).unwrap();
    b
}

/// `[tag, bin(entries), {"chunk": chunk}]` with `n` ordinary records of about 300 bytes.
fn ordinary_request(n: usize, chunk: &str) -> Vec<u8> {
    let mut entries = Vec::new();
    for i in 0..n {
        rmp::encode::write_array_len(&mut entries, 2).unwrap();
        rmp::encode::write_uint(&mut entries, 1_700_000_000 + i as u64).unwrap();
        entries.extend(msgpack(
            &json!({"log": format!("{i:06} {}", "x".repeat(290))}),
        ));
    }
    let mut b = Vec::new();
    rmp::encode::write_array_len(&mut b, 3).unwrap();
    rmp::encode::write_str(&mut b, "ordinary").unwrap();
    rmp::encode::write_bin(&mut b, &entries).unwrap();
    rmp::encode::write_map_len(&mut b, 1).unwrap();
    rmp::encode::write_str(&mut b, "chunk").unwrap();
    rmp::encode::write_str(&mut b, chunk).unwrap();
    b
}

/// A 4 MiB budget: the input's quarter is 1 MiB.
const SMALL_BUDGET: &str = r#"
[service]
grace = "5s"
http_listen = "127.0.0.1:0"
memory_budget = "4MiB"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[outputs]]
type = "null"
match = "*"
"#;

#[test]
fn a_request_that_would_decode_past_the_input_budget_is_refused_counted_and_not_acked() {
    let router = RouterProcess::start(SMALL_BUDGET);
    // 300 kB on the wire, but 100,000 events of 40 bytes each once decoded: over 1 MiB.
    let mut amplifying = connect(&router);
    amplifying
        .write_all(&tiny_entries_request(100_000, "tiny"))
        .unwrap();
    assert!(
        closed_by_peer(&mut amplifying),
        "closed without an ack (a byte read would have been the ack)"
    );
    wait_for_errors(&router, "request_too_large", 1);
    let log = router.wait_for_log("the refusal", |l| l.contains("request too large"));
    assert!(log.contains("decoded request exceeds"), "{log}");

    // The same wire size of ordinary records (1,000 × 300 bytes) fits and is acked.
    let mut ordinary = connect(&router);
    ordinary
        .write_all(&ordinary_request(1000, "ordinary"))
        .unwrap();
    expect_ack(&mut ordinary, "ordinary");
    assert_eq!(input_errors(&router, "request_too_large"), 1);
}

#[test]
fn partial_requests_past_the_input_budget_stop_reading_and_the_oldest_is_closed() {
    let router = RouterProcess::start(SMALL_BUDGET);
    // Eight connections each start a 5 MB request (allowed by buffer_max_size) and send 600 kB
    // of it: 4.8 MB in all, against the input's 1 MiB. The router stops reading them.
    let mut partial = Vec::new();
    for _ in 0..8 {
        let mut conn = connect(&router);
        let mut head = Vec::new();
        rmp::encode::write_array_len(&mut head, 2).unwrap();
        rmp::encode::write_str(&mut head, "partial").unwrap();
        rmp::encode::write_bin_len(&mut head, 5_000_000).unwrap();
        conn.write_all(&head).unwrap();
        conn.set_write_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        // Loopback socket buffers take some of it; the rest of a write that blocks is fine.
        let _ = conn.write_all(&vec![0x92; 600_000]);
        partial.push(conn);
    }
    // Waiting connections have the oldest incomplete request closed, one per second.
    wait_for_errors(&router, "memory_evicted", 1);
    // A newcomer with an ordinary request is served meanwhile.
    let mut newcomer = connect(&router);
    send_acked(&mut newcomer, "app", "newcomer");
    let mut closed = 0;
    for conn in &mut partial {
        conn.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        closed += usize::from(closed_by_peer(conn));
    }
    assert!(
        closed >= 1,
        "at least the oldest incomplete request was closed"
    );
}

#[test]
fn at_the_tcp_cap_the_longest_idle_connection_makes_room_and_unix_has_its_own_cap() {
    let router = RouterProcess::start(
        r#"
[service]
http_listen = "127.0.0.1:0"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"
unix_path = "{dir}/fluent.sock"
max_connections = 2
max_unix_connections = 1

[[outputs]]
type = "null"
match = "*"
"#,
    );
    let mut oldest = connect(&router);
    send_acked(&mut oldest, "app", "a1");
    let mut recent = connect(&router);
    send_acked(&mut recent, "app", "b1");
    let mut unix = UnixStream::connect(router.unix_path()).unwrap();
    unix.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    send_acked(&mut unix, "docker", "u1");
    send_acked(&mut recent, "app", "b2"); // `recent` was active last among the TCP ones

    // A third TCP sender is served at once; the longest-idle TCP connection is closed for it.
    let mut newcomer = connect(&router);
    send_acked(&mut newcomer, "app", "c1");
    assert!(
        closed_by_peer(&mut oldest),
        "the longest-idle one was closed"
    );
    assert_eq!(input_errors(&router, "idle_evicted"), 1);
    recent
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(!closed_by_peer(&mut recent), "the more recent one stays");
    recent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    send_acked(&mut recent, "app", "b3");
    // The unix connection did not count against the TCP cap, and still works.
    send_acked(&mut unix, "docker", "u2");

    // A second unix sender: the unix cap (1) evicts the idle unix connection, not a TCP one.
    let mut unix2 = UnixStream::connect(router.unix_path()).unwrap();
    unix2
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    send_acked(&mut unix2, "docker", "u3");
    assert!(closed_by_peer(&mut unix));
    assert_eq!(input_errors(&router, "idle_evicted"), 2);
    send_acked(&mut recent, "app", "b4");
    send_acked(&mut newcomer, "app", "c2");
}

#[test]
fn idle_timeout_closes_quiet_connections_but_not_one_mid_request() {
    let router = RouterProcess::start(
        r#"
[service]
http_listen = "127.0.0.1:0"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"
idle_timeout = "1s"

[[outputs]]
type = "null"
match = "*"
"#,
    );
    let mut quiet = connect(&router);
    send_acked(&mut quiet, "app", "q1");
    let mut slow = connect(&router);
    let frame = message_frame(b"app", 1, &msgpack(&json!({"log": "slow"})), Some("slow"));
    let (first, rest) = frame.split_at(frame.len() / 2);
    slow.write_all(first).unwrap();

    let started = Instant::now();
    assert!(closed_by_peer(&mut quiet), "closed within the read timeout");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(input_errors(&router, "idle_timeout"), 1);
    std::thread::sleep(Duration::from_millis(1500));
    // Mid-request for 1.5 s: not idle. The rest of the request completes it and it is acked.
    slow.write_all(rest).unwrap();
    expect_ack(&mut slow, "slow");
    assert_eq!(input_errors(&router, "idle_timeout"), 1);
}

#[test]
fn sigterm_finishes_within_grace_while_a_client_never_reads_its_acks() {
    let mut router = RouterProcess::start(
        r#"
[service]
grace = "2s"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[outputs]]
type = "null"
match = "*"
"#,
    );
    let addr: std::net::SocketAddr = router.tcp_addr().parse().unwrap();
    // A small receive buffer so the router's ack writes block soon.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut conn: TcpStream = socket.into();
    conn.set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    // Requests with a chunk, acks never read: once the router blocks writing acks it stops
    // reading, and our writes time out.
    let record = msgpack(&json!({"log": "x"}));
    let mut blocked = false;
    for i in 0..2_000_000u64 {
        let frame = message_frame(b"app", 1, &record, Some(&format!("chunk-{i:08}")));
        if conn.write_all(&frame).is_err() {
            blocked = true;
            break;
        }
    }
    assert!(
        blocked,
        "the router kept reading without its acks being read"
    );

    let started = Instant::now();
    router.signal("TERM");
    let status = router.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{}", router.log().join("\n"));
    assert!(
        started.elapsed() < Duration::from_secs(2 + 3),
        "exited {:?} after SIGTERM with grace = 2s\n{}",
        started.elapsed(),
        router.log().join("\n")
    );
    drop(conn);
}
