//! Disk buffer faults (issue 13, "Ack only what is safe"), with the real `wasm-router` binary,
//! a sender that waits for each ack like Fluent Bit, a forward receiver standing in for the
//! aggregator, and real disk faults: a full tmpfs (`mount -t tmpfs -o size=…`) and a directory
//! made read-only (a read-only bind mount over it). The tests run as root.
//!
//! What every test checks: an event the sender got an ack for is delivered — after space is
//! freed or the directory is writable again, without restarting the router — and nothing is
//! counted as dropped while the buffer waits for the disk.

use crate::common;

use common::delivery::{CountingReceiver, forward_request, seq_record, start_in_process, tally};
use common::free_port;
use common::{BASE_NS, HANG_TIMEOUT, RouterProcess, ack_bytes, scrape, wait_until};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use wasm_router::ops::prometheus_text::sum;

/// A tmpfs of `size` mounted on a fresh directory; unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path()));
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fill the file system with a ballast file, then give back `kib` KiB of it.
    fn fill_leaving(&self, kib: u64) -> PathBuf {
        let path = self.path().join("ballast");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = [0u8; 4096];
        let mut len = 0u64;
        while f.write_all(&block).is_ok() {
            len += 4096;
        }
        f.set_len(len.saturating_sub(kib * 1024)).unwrap();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// `dir` made read-only by a read-only bind mount over it; writable again on drop. Files the
/// router opened before stay writable through their descriptors (as after a remount of a
/// file system with files open): what fails is creating and deleting files — a rotation.
struct ReadOnly {
    dir: PathBuf,
    mounted: bool,
}

impl ReadOnly {
    fn make(dir: &Path) -> ReadOnly {
        // Made read-only on a staging mount point nothing writes through, then bound over
        // `dir` in one step (a remount of a mount with files open for writing is refused).
        let stage = tempfile::tempdir().unwrap();
        run(Command::new("mount")
            .arg("--bind")
            .arg(dir)
            .arg(stage.path()));
        let staged = Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(stage.path())
            .status()
            .unwrap()
            .success()
            && Command::new("mount")
                .arg("--bind")
                .arg(stage.path())
                .arg(dir)
                .status()
                .unwrap()
                .success();
        run(Command::new("umount").arg(stage.path()));
        assert!(staged, "a read-only bind mount over {}", dir.display());
        ReadOnly {
            dir: dir.to_path_buf(),
            mounted: true,
        }
    }

    fn writable_again(mut self) {
        // Lazy: the router's reader may hold a segment open through the read-only mount.
        run(Command::new("umount").arg("-l").arg(&self.dir));
        self.mounted = false;
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap();
    assert!(status.success(), "{cmd:?} failed (these tests run as root)");
}

/// Forward input, a `forward` output named `agg` to 127.0.0.1:`port` with a disk buffer in
/// `buffer_dir` (`max_bytes`, `when_full = "block"`), metrics on an HTTP port.
fn config(port: u16, buffer_dir: &Path, max_bytes: &str) -> String {
    format!(
        r#"
[service]
grace = "2s"
retry_backoff_cap = "100ms"
http_listen = "127.0.0.1:0"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[outputs]]
type = "forward"
name = "agg"
match = "*"
port = {port}
buffer = {{ type = "disk", path = "{}", max_bytes = "{max_bytes}", when_full = "block" }}
"#,
        buffer_dir.display()
    )
}

/// How a sender's run ended.
#[derive(Debug, PartialEq, Eq)]
enum SendEnd {
    /// Every request was acked.
    AllAcked,
    /// The router closed the connection without acking the request starting at this seq.
    NotAcked(u32),
}

/// A sender on its own thread: numbered events `0..count` in Forward-mode requests of
/// `per_request`, each waiting for its ack; `acked` counts the acked events.
struct Sender {
    acked: Arc<AtomicU32>,
    thread: JoinHandle<SendEnd>,
}

impl Sender {
    fn start(addr: String, count: u32, per_request: u32, pad: usize) -> Sender {
        let acked = Arc::new(AtomicU32::new(0));
        let counter = acked.clone();
        let thread = std::thread::spawn(move || {
            let mut conn = TcpStream::connect(&addr).unwrap();
            conn.set_read_timeout(Some(HANG_TIMEOUT)).unwrap();
            let mut seq = 0;
            while seq < count {
                let n = per_request.min(count - seq);
                let entries: Vec<(u64, Vec<u8>)> = (seq..seq + n)
                    .map(|s| (BASE_NS + u64::from(s), seq_record(s, pad)))
                    .collect();
                let chunk = format!("c{seq}");
                let want = ack_bytes(&chunk);
                let mut got = vec![0; want.len()];
                let acked = conn
                    .write_all(&forward_request("app", &entries, Some(&chunk)))
                    .and_then(|()| conn.read_exact(&mut got));
                if acked.is_err() {
                    return SendEnd::NotAcked(seq);
                }
                assert_eq!(got, want, "wrong ack for {chunk}");
                seq += n;
                counter.store(seq, Ordering::SeqCst);
            }
            SendEnd::AllAcked
        });
        Sender { acked, thread }
    }

    fn acked(&self) -> u32 {
        self.acked.load(Ordering::SeqCst)
    }
}

fn metric(http: &str, name: &str, reason: Option<&str>) -> u64 {
    let mut labels = vec![("component_id", "agg")];
    if let Some(reason) = reason {
        labels.push(("reason", reason));
    }
    sum(&scrape(http), name, &labels) as u64
}

fn stalled(http: &str) -> bool {
    metric(http, "buffer_stalled", None) == 1
}

fn discarded_total(http: &str) -> u64 {
    sum(
        &scrape(http),
        "component_discarded_events_total",
        &[("component_id", "agg")],
    ) as u64
}

/// Wait until the buffer reports a stall; then the sender's acks have stopped: check that
/// they stay stopped for a while, and that everything acked so far was written (it arrives).
fn stall_holds(router: &RouterProcess, http: &str, sender: &Sender) -> u32 {
    wait_until(
        "the buffer to stall",
        || stalled(http),
        || router.log().join("\n"),
    );
    let at_stall = sender.acked();
    std::thread::sleep(Duration::from_millis(700));
    assert!(stalled(http), "still stalled");
    assert_eq!(
        sender.acked(),
        at_stall,
        "no ack while the disk cannot write"
    );
    assert!(
        !sender.thread.is_finished(),
        "the sender waits, not disconnected"
    );
    router.wait_for_log("the stall logged once", |l| {
        l.contains("disk buffer: cannot write")
    });
    at_stall
}

/// Finish: the sender gets every ack, the receiver every event exactly as often as it was
/// sent, the stall gauge is back to 0 and nothing was counted as dropped.
fn all_delivered(
    router: RouterProcess,
    http: &str,
    sender: Sender,
    receiver: &CountingReceiver,
    events: u32,
) {
    assert_eq!(sender.thread.join().unwrap(), SendEnd::AllAcked);
    receiver.wait_events(u64::from(events), || router.log().join("\n"));
    let (missing, twice, extra) = tally(&receiver.counts());
    assert_eq!((missing, twice, extra), (0, 0, 0));
    assert!(!stalled(http));
    assert_eq!(discarded_total(http), 0);
    router.wait_for_log("the recovery", |l| l.contains("writing works again"));
    let log = router.log();
    router.stop();
    let count = |what: &str| log.iter().filter(|l| l.contains(what)).count();
    assert_eq!(
        count("disk buffer: cannot write"),
        count("disk buffer: writing works again"),
        "one line when an episode starts, one when it ends"
    );
}

/// A full disk in the middle of a segment: the active segment (8 MiB for a 64 MiB buffer) is
/// larger than the tmpfs, so delivering what is written frees nothing; pushes wait, the
/// sender's acks stop; once the ballast is deleted every event arrives — the router was never
/// restarted.
#[test]
fn a_full_disk_stops_acks_and_every_acked_event_arrives_once_space_is_freed() {
    const EVENTS: u32 = 20_000;
    let fs = Tmpfs::mount("4m");
    let port = free_port();
    let receiver = CountingReceiver::start(port, EVENTS);
    let router = RouterProcess::start(&config(port, &fs.path().join("buffer"), "64MiB"));
    let http = router.http_addr();
    let ballast = fs.fill_leaving(256);
    let sender = Sender::start(router.tcp_addr(), EVENTS, 100, 100);
    let at_stall = stall_holds(&router, &http, &sender);
    assert!(at_stall < EVENTS);
    // What was acked is written: it is delivered while the stall lasts.
    receiver.wait_events(u64::from(at_stall), || router.log().join("\n"));
    std::fs::remove_file(ballast).unwrap();
    all_delivered(router, &http, sender, &receiver, EVENTS);
    eprintln!(
        "full disk: {EVENTS} sent, {at_stall} acked before the stall, all {EVENTS} acked and delivered once after space was freed, 0 counted"
    );
}

/// A full disk at rotation (4 KiB segments, one tmpfs page each, so space runs out exactly when
/// the next segment's header is written) while the endpoint is down. Once the endpoint is back,
/// delivering the older segments deletes them, the rotation is retried and succeeds.
#[test]
fn a_full_disk_at_rotation_recovers_once_delivery_frees_segments() {
    const EVENTS: u32 = 1_000;
    let fs = Tmpfs::mount("128k");
    let port = free_port();
    let router = RouterProcess::start(&config(port, &fs.path().join("buffer"), "32KiB"));
    let http = router.http_addr();
    // Leave room for three or four more segments: less than the buffer's own bound (28 KiB).
    let _ballast = fs.fill_leaving(16);
    let sender = Sender::start(router.tcp_addr(), EVENTS, 10, 100);
    let at_stall = stall_holds(&router, &http, &sender);
    assert!(at_stall > 0 && at_stall < EVENTS);
    let receiver = CountingReceiver::start(port, EVENTS);
    all_delivered(router, &http, sender, &receiver, EVENTS);
    eprintln!(
        "rotation on a full disk: {EVENTS} sent, {at_stall} acked before the stall, all acked and delivered once with the endpoint back, 0 counted"
    );
}

/// The buffer directory becomes read-only while a sender is writing: the next rotation fails
/// with EROFS, pushes wait and acks stop; once it is writable again every event arrives.
#[test]
fn a_read_only_directory_stops_acks_and_every_acked_event_arrives_once_writable() {
    const EVENTS: u32 = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let buffer = dir.path().join("buffer");
    let port = free_port();
    let receiver = CountingReceiver::start(port, EVENTS);
    let router = RouterProcess::start(&config(port, &buffer, "32KiB"));
    let http = router.http_addr();
    let sender = Sender::start(router.tcp_addr(), EVENTS, 10, 100);
    wait_until(
        "some acks",
        || sender.acked() >= 200,
        || router.log().join("\n"),
    );
    let read_only = ReadOnly::make(&buffer);
    let at_stall = stall_holds(&router, &http, &sender);
    assert!(at_stall < EVENTS);
    receiver.wait_events(u64::from(at_stall), || router.log().join("\n"));
    read_only.writable_again();
    all_delivered(router, &http, sender, &receiver, EVENTS);
    eprintln!(
        "read-only directory: {EVENTS} sent, {at_stall} acked before the stall, all acked and delivered once after it was writable again, 0 counted"
    );
}

/// SIGTERM while a sender is blocked on a full buffer (endpoint down, the disk buffer at its
/// bound): at the grace deadline the waiting push fails; the sender gets no ack for that
/// request (the connection closes), its events are counted `shutdown_undelivered`, and every
/// acked event is still on disk: the next start delivers all of them (in-process, to read the
/// counter exactly after the shutdown).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_blocked_at_the_shutdown_deadline_is_not_acked_and_is_counted() {
    use wasm_router::ops::metrics::{Component, Metrics};
    const EVENTS: u32 = 5_000;
    const PER_REQUEST: u32 = 10;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = config(port, &dir.path().join("buffer"), "64KiB")
        .replace("grace = \"2s\"", "grace = \"1s\"");
    let metrics = Metrics::new();
    let (addr, trigger, running) = start_in_process(&text, metrics.clone()).await;
    let sender = Sender::start(addr, EVENTS, PER_REQUEST, 100);
    // Full: the acks stop (the endpoint is down, the buffer holds 64 KiB).
    let mut last = u32::MAX;
    while sender.acked() != last || last == 0 {
        last = sender.acked();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(!sender.thread.is_finished(), "the sender waits for its ack");
    trigger.trigger();
    running.await.unwrap();
    let acked = sender.acked();
    let end = tokio::task::spawn_blocking(move || sender.thread.join().unwrap())
        .await
        .unwrap();
    assert_eq!(
        end,
        SendEnd::NotAcked(acked),
        "the blocked request is not acked"
    );
    let out = Component::output("agg");
    assert_eq!(
        metrics.discarded(&out, "shutdown_undelivered"),
        u64::from(PER_REQUEST),
        "exactly the blocked request's events"
    );

    // The next start delivers every acked event, and none of the refused request.
    let receiver = Arc::new(CountingReceiver::start(port, EVENTS));
    let metrics = Metrics::new();
    let (_addr, trigger, running) = start_in_process(&text, metrics.clone()).await;
    let r = receiver.clone();
    tokio::task::spawn_blocking(move || r.wait_events(u64::from(acked), String::new))
        .await
        .unwrap();
    trigger.trigger();
    running.await.unwrap();
    let counts = receiver.counts();
    let (missing, _, extra) = tally(&counts[..acked as usize]);
    assert_eq!((missing, extra), (0, 0), "every acked event, once");
    assert!(counts[acked as usize..].iter().all(|&c| c == 0));
    eprintln!(
        "SIGTERM with a blocked push: {acked} acked and all delivered after the restart; the blocked request ({PER_REQUEST} events) not acked, counted shutdown_undelivered {}",
        PER_REQUEST
    );
}
