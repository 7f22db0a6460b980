//! Bad input on the forward input (issue 2, "Checked by"; reference forward-protocol.md §9,
//! §10): each bad connection is closed on its own, with one log line naming the peer and the
//! reason, after the events it sent before the bad bytes were delivered — or, for invalid
//! UTF-8 and top-level nil, its events are accepted. Meanwhile a well-behaved sender (Debian's
//! fluent-logger-golang, acks on) keeps one connection open across the bad input, sending
//! throughout, and every one of its events is delivered exactly once.

use crate::common;

use common::{
    BASE_NS, HANG_TIMEOUT, Lines, PrintedEvent, RouterProcess, STEP_NS, assert_events_eq,
    go_record, with_tag,
};
use serde_json::json;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;

/// `buffer_max_size` of the router under test: small, so limits are cheap to cross.
const LIMIT: usize = 64 * 1024;

const LIMITED_CONFIG: &str = r#"
[service]
grace = "10s"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"
unix_path = "{dir}/fluent.sock"
buffer_max_size = "64KiB"

[[outputs]]
type = "stdout"
match = "*"
"#;

/// Events the well-behaved sender sends: half before the bad input, half during it.
const GOOD_EVENTS: u64 = 2000;
/// Valid events each bad connection sends (and gets acked) before its bad bytes.
const VALID_BEFORE: u64 = 3;

/// The well-behaved sender: testing/clients/go over TCP with RequestAck and EventTime,
/// holding one connection across the test.
struct GoodSender {
    child: Child,
    stdin: ChildStdin,
}

impl GoodSender {
    /// Start it and wait until it has sent (and had acked) the first half of its events.
    fn start(router: &RouterProcess) -> Self {
        let mut child = Command::new(common::go_client())
            .args([
                "-network",
                "tcp",
                "-address",
                &router.tcp_addr(),
                "-tag",
                "good",
                "-ack",
                "-subsecond",
            ])
            .args([
                "-count",
                &GOOD_EVENTS.to_string(),
                "-pause-after",
                &(GOOD_EVENTS / 2).to_string(),
            ])
            .args(["-base-ns", &BASE_NS.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the Go sender");
        let stdin = child.stdin.take().unwrap();
        let stdout: Arc<Lines> = Lines::collect(child.stdout.take().unwrap());
        assert!(
            stdout.wait_until(HANG_TIMEOUT, |lines| lines.iter().any(|l| l == "paused")),
            "the Go sender never paused after {} events",
            GOOD_EVENTS / 2
        );
        GoodSender { child, stdin }
    }

    /// Let it send the second half.
    fn resume(&mut self) {
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Wait for it to succeed; returns the events it sent.
    fn finish(self) -> Vec<PrintedEvent> {
        let mut child = self.child;
        child.stdin = Some(self.stdin);
        let out = common::wait_output(child, "the Go sender");
        common::assert_success(&out, "the well-behaved Go sender");
        (0..GOOD_EVENTS)
            .map(|i| PrintedEvent::new("good", BASE_NS + i * STEP_NS, go_record(i)))
            .collect()
    }
}

/// A connection to the router over TCP or the unix socket.
enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Tcp,
    Unix,
}

impl Conn {
    fn open(router: &RouterProcess, transport: Transport) -> Conn {
        let conn = match transport {
            Transport::Tcp => Conn::Tcp(TcpStream::connect(router.tcp_addr()).unwrap()),
            Transport::Unix => Conn::Unix(UnixStream::connect(router.unix_path()).unwrap()),
        };
        // Hang guards only: a router that stops reading fails the test instead of blocking it.
        match &conn {
            Conn::Tcp(s) => {
                s.set_read_timeout(Some(HANG_TIMEOUT)).unwrap();
                s.set_write_timeout(Some(HANG_TIMEOUT)).unwrap();
            }
            Conn::Unix(s) => {
                s.set_read_timeout(Some(HANG_TIMEOUT)).unwrap();
                s.set_write_timeout(Some(HANG_TIMEOUT)).unwrap();
            }
        }
        conn
    }

    /// How the router's log names this peer.
    fn peer(&self) -> String {
        match self {
            Conn::Tcp(s) => s.local_addr().unwrap().to_string(),
            Conn::Unix(s) => format!(
                "unix:{}",
                s.peer_addr().unwrap().as_pathname().unwrap().display()
            ),
        }
    }

    fn shutdown_write(&self) {
        let _ = match self {
            Conn::Tcp(s) => s.shutdown(Shutdown::Write),
            Conn::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What one bad connection sends.
struct BadInput {
    /// Send [`VALID_BEFORE`] good events (acked) first, and one more (not acked) in the same
    /// write as the bad bytes, so it reaches the router in the same read.
    valid_before: bool,
    bytes: Vec<u8>,
    /// Half-close after the bytes, as a sender that gives up would.
    then_close: bool,
}

impl BadInput {
    fn new(bytes: Vec<u8>) -> Self {
        BadInput {
            valid_before: true,
            bytes,
            then_close: false,
        }
    }
    fn then_close(mut self) -> Self {
        self.then_close = true;
        self
    }
}

/// What the router must do with a bad connection.
enum Expect {
    /// Close it and log one line naming the peer, whose reason contains this text.
    Closed(&'static str),
    /// Accept it: read `acks` in order, deliver `events`, and keep the connection usable.
    Accepted {
        acks: Vec<&'static str>,
        events: Vec<PrintedEvent>,
    },
    /// Nothing to deliver and nothing to log (a connection that sends nothing).
    Quiet,
}

fn valid_record(tag: &str, i: u64) -> serde_json::Value {
    json!({"log": format!("{tag} valid {i}"), "seq": i})
}

/// Send `count` valid Message-mode events under `tag`, the last one asking for an ack, and
/// read that ack. Returns the events as they must be printed.
fn send_valid(conn: &mut Conn, tag: &str, count: u64) -> Vec<PrintedEvent> {
    let mut expected = Vec::new();
    for i in 0..count {
        let time_ns = BASE_NS + i;
        let chunk = (i + 1 == count).then_some("valid-ack");
        common::write_lenient(
            conn,
            &common::message_frame(
                tag.as_bytes(),
                time_ns,
                &common::msgpack(&valid_record(tag, i)),
                chunk,
            ),
        );
        expected.push(PrintedEvent::new(tag, time_ns, valid_record(tag, i)));
    }
    common::expect_ack(conn, "valid-ack");
    expected
}

fn names_peer(line: &str, peer: &str) -> bool {
    line.split_whitespace().any(|w| w == format!("peer={peer}"))
}

/// The scenario every test runs: a router with a 64 KiB request limit; the Go sender sends
/// half its events and pauses; each bad connection in turn sends its valid events, the Go
/// sender resumes, the bad bytes go out while it sends; then the outcome is checked against
/// `expect`, and at the end every event that must be printed was printed, exactly once.
fn check(transport: Transport, inputs: Vec<BadInput>, expect: Expect) {
    let router = RouterProcess::start(LIMITED_CONFIG);
    let mut good = GoodSender::start(&router);
    let mut must_print = Vec::new();
    let mut tags = vec!["good".to_string()];
    let mut resumed = false;
    for (n, input) in inputs.into_iter().enumerate() {
        let mut conn = Conn::open(&router, transport);
        let peer = conn.peer();
        if input.valid_before {
            let tag = format!("before.{n}");
            must_print.extend(send_valid(&mut conn, &tag, VALID_BEFORE));
            tags.push(tag);
        }
        if !resumed {
            good.resume();
            resumed = true;
        }
        let mut bytes = Vec::new();
        if input.valid_before {
            let (tag, record) = (
                format!("inline.{n}"),
                json!({"log": "just before the bad bytes"}),
            );
            bytes = common::message_frame(tag.as_bytes(), BASE_NS, &common::msgpack(&record), None);
            must_print.push(PrintedEvent::new(&tag, BASE_NS, record));
            tags.push(tag);
        }
        bytes.extend_from_slice(&input.bytes);
        common::write_lenient(&mut conn, &bytes);
        if input.then_close {
            conn.shutdown_write();
        }
        match &expect {
            Expect::Closed(reason) => {
                assert!(
                    common::closed_by_peer(&mut conn),
                    "connection {n} ({peer}) was not closed by the router"
                );
                let line =
                    router.wait_for_log(&format!("a line naming {peer}"), |l| names_peer(l, &peer));
                assert!(
                    line.contains("reason="),
                    "the log line gives no reason: {line}"
                );
                assert!(
                    line.contains(reason),
                    "the log line's reason should mention {reason:?}: {line}"
                );
                let lines = router
                    .log()
                    .into_iter()
                    .filter(|l| names_peer(l, &peer))
                    .count();
                assert_eq!(
                    lines, 1,
                    "one log line per bad connection, {lines} name {peer}"
                );
            }
            Expect::Accepted { acks, .. } => {
                for chunk in acks {
                    common::expect_ack(&mut conn, chunk);
                }
                let tag = format!("after.{n}");
                must_print.extend(send_valid(&mut conn, &tag, 1));
                tags.push(tag);
            }
            Expect::Quiet => {
                assert!(
                    common::closed_by_peer(&mut conn),
                    "the router kept an empty connection open after it closed"
                );
            }
        }
    }
    if !resumed {
        good.resume();
    }
    let good_events = good.finish();
    if let Expect::Accepted { events, .. } = &expect {
        must_print.extend(events.iter().cloned());
        tags.extend(events.iter().map(|e| e.tag.clone()));
    }
    router.wait_for_events(good_events.len() + must_print.len());
    let log = router.log();
    let printed = router.stop();

    assert_events_eq(&with_tag(&printed, "good"), &good_events);
    tags.dedup();
    for tag in &tags[1..] {
        let want: Vec<PrintedEvent> = must_print
            .iter()
            .filter(|e| &e.tag == tag)
            .cloned()
            .collect();
        assert_events_eq(&with_tag(&printed, tag), &want);
    }
    assert_eq!(
        printed.len(),
        good_events.len() + must_print.len(),
        "events from the bad bytes were printed"
    );
    if !matches!(expect, Expect::Closed(_)) {
        let closing: Vec<&String> = log
            .iter()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        assert!(
            closing.is_empty(),
            "accepted input must not be logged as a problem: {closing:#?}"
        );
    }
}

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

#[test]
fn random_bytes_close_only_their_own_connection() {
    let inputs = (1..=8)
        .map(|seed| BadInput::new(random_bytes(seed, 4096)).then_close())
        .collect();
    check(Transport::Tcp, inputs, Expect::Closed(""));
}

#[test]
fn random_bytes_on_the_unix_socket_close_only_that_connection() {
    check(
        Transport::Unix,
        vec![BadInput::new(random_bytes(42, 4096)).then_close()],
        Expect::Closed(""),
    );
}

#[test]
fn truncated_frames_then_close() {
    let record = common::msgpack(&json!({"log": "cut short", "n": 1}));
    let frame = common::message_frame(b"cut", BASE_NS, &record, Some("never-acked"));
    let mut packed = Vec::new();
    rmp::encode::write_array_len(&mut packed, 3).unwrap();
    rmp::encode::write_str(&mut packed, "cut.packed").unwrap();
    rmp::encode::write_bin_len(&mut packed, 1000).unwrap();
    packed.extend_from_slice(&[0x92, 0xd7, 0x00, 0, 0, 0, 1, 0, 0, 0, 2, 0x80]);
    let inputs = [1, 5, frame.len() / 2, frame.len() - 1]
        .into_iter()
        .map(|cut| BadInput::new(frame[..cut].to_vec()).then_close())
        .chain([BadInput::new(packed).then_close()])
        .collect();
    check(Transport::Tcp, inputs, Expect::Closed("malformed"));
}

#[test]
fn a_frame_over_the_limit_closes_the_connection() {
    // A complete frame three times the limit.
    let big = common::message_frame(
        b"big",
        BASE_NS,
        &common::msgpack(&json!({"log": "y".repeat(3 * LIMIT)})),
        None,
    );
    // A frame that announces 100 MiB and keeps coming: the router must not wait for the end.
    let mut endless = Vec::new();
    rmp::encode::write_array_len(&mut endless, 3).unwrap();
    rmp::encode::write_str(&mut endless, "endless").unwrap();
    endless.extend_from_slice(&common::event_time(BASE_NS));
    rmp::encode::write_map_len(&mut endless, 1).unwrap();
    rmp::encode::write_str(&mut endless, "log").unwrap();
    rmp::encode::write_str_len(&mut endless, 100 << 20).unwrap();
    endless.resize(endless.len() + (1 << 20), b'z');
    check(
        Transport::Tcp,
        vec![BadInput::new(big), BadInput::new(endless)],
        Expect::Closed("limit"),
    );
}

#[test]
fn a_gzip_bomb_is_cut_at_the_decompression_limit() {
    use std::io::Write as _;
    let mut entry = vec![0x92];
    entry.extend_from_slice(&common::event_time(BASE_NS));
    // Each entry is well under the limit; together they decompress to 256 times it.
    entry.extend_from_slice(&common::msgpack(&json!({"log": "b".repeat(LIMIT / 2)})));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..(256 * LIMIT) / entry.len() {
        gz.write_all(&entry).unwrap();
    }
    let payload = gz.finish().unwrap();
    assert!(
        payload.len() < LIMIT / 2,
        "the bomb must fit the request limit compressed ({} bytes)",
        payload.len()
    );
    let mut frame = Vec::new();
    rmp::encode::write_array_len(&mut frame, 3).unwrap();
    rmp::encode::write_str(&mut frame, "bomb").unwrap();
    rmp::encode::write_bin_len(&mut frame, payload.len() as u32).unwrap();
    frame.extend_from_slice(&payload);
    rmp::encode::write_map_len(&mut frame, 2).unwrap();
    rmp::encode::write_str(&mut frame, "compressed").unwrap();
    rmp::encode::write_str(&mut frame, "gzip").unwrap();
    rmp::encode::write_str(&mut frame, "chunk").unwrap();
    rmp::encode::write_str(&mut frame, "bomb-1").unwrap();
    check(
        Transport::Tcp,
        vec![BadInput::new(frame)],
        Expect::Closed("limit"),
    );
}

#[test]
fn a_top_level_value_that_is_not_an_array_closes_the_connection() {
    let map = common::msgpack(&json!({"tag": "not.an.array", "log": "hello"}));
    let string = common::msgpack(&json!("just a string"));
    check(
        Transport::Tcp,
        vec![BadInput::new(map), BadInput::new(string)],
        Expect::Closed("malformed"),
    );
}

#[test]
fn an_option_that_is_not_a_map_closes_the_connection() {
    let with_option = |option: serde_json::Value| {
        let mut frame = Vec::new();
        rmp::encode::write_array_len(&mut frame, 4).unwrap();
        rmp::encode::write_str(&mut frame, "opt").unwrap();
        frame.extend_from_slice(&common::event_time(BASE_NS));
        frame.extend_from_slice(&common::msgpack(&json!({"log": "bad option"})));
        frame.extend_from_slice(&common::msgpack(&option));
        frame
    };
    let inputs = vec![
        BadInput::new(with_option(json!("chunk-please"))),
        BadInput::new(with_option(json!([1, 2]))),
    ];
    check(Transport::Tcp, inputs, Expect::Closed("malformed"));
}

/// `{"k\xfe": "v\xff", "log": "a\xc3(b"}`: invalid UTF-8 in a key and in values.
fn invalid_utf8_record() -> Vec<u8> {
    let mut record = Vec::new();
    rmp::encode::write_map_len(&mut record, 2).unwrap();
    for s in [&b"k\xfe"[..], b"v\xff", b"log", b"a\xc3(b"] {
        rmp::encode::write_str_len(&mut record, s.len() as u32).unwrap();
        record.extend_from_slice(s);
    }
    record
}

#[test]
fn invalid_utf8_in_tag_keys_and_values_is_delivered_mapped() {
    let mut bytes =
        common::message_frame(b"utf8.bad\xff", BASE_NS + 1, &invalid_utf8_record(), None);
    bytes.extend(common::message_frame(
        b"utf8.bad\xff",
        BASE_NS + 2,
        &invalid_utf8_record(),
        Some("utf8-ack"),
    ));
    let mapped = json!({"k\u{E0FE}": "v\u{E0FF}", "log": "a\u{E0C3}(b"});
    let events = vec![
        PrintedEvent::new("utf8.bad\u{E0FF}", BASE_NS + 1, mapped.clone()),
        PrintedEvent::new("utf8.bad\u{E0FF}", BASE_NS + 2, mapped),
    ];
    check(
        Transport::Tcp,
        vec![BadInput::new(bytes)],
        Expect::Accepted {
            acks: vec!["utf8-ack"],
            events,
        },
    );
}

#[test]
fn invalid_utf8_over_the_unix_socket_is_delivered_mapped() {
    let bytes = common::message_frame(
        b"utf8.unix\xc0",
        BASE_NS + 3,
        &invalid_utf8_record(),
        Some("utf8-unix"),
    );
    let events = vec![PrintedEvent::new(
        "utf8.unix\u{E0C0}",
        BASE_NS + 3,
        json!({"k\u{E0FE}": "v\u{E0FF}", "log": "a\u{E0C3}(b"}),
    )];
    check(
        Transport::Unix,
        vec![BadInput::new(bytes)],
        Expect::Accepted {
            acks: vec!["utf8-unix"],
            events,
        },
    );
}

#[test]
fn top_level_nil_is_ignored_quietly() {
    let record = json!({"log": "after nil"});
    let mut bytes = vec![0xc0];
    bytes.extend(common::message_frame(
        b"nil.between",
        BASE_NS + 5,
        &common::msgpack(&record),
        Some("nil-ack"),
    ));
    bytes.extend([0xc0, 0xc0]);
    let events = vec![PrintedEvent::new("nil.between", BASE_NS + 5, record)];
    check(
        Transport::Tcp,
        vec![BadInput::new(bytes)],
        Expect::Accepted {
            acks: vec!["nil-ack"],
            events,
        },
    );
}

#[test]
fn zero_byte_connections_are_quiet() {
    let empty = || BadInput {
        valid_before: false,
        bytes: Vec::new(),
        then_close: true,
    };
    check(
        Transport::Tcp,
        (0..5).map(|_| empty()).collect(),
        Expect::Quiet,
    );
    check(Transport::Unix, vec![empty()], Expect::Quiet);
}
