//! Helpers for the delivery tests (host/tests/delivery.rs): a forward-protocol sender that
//! streams pre-encoded requests and reads acks, numbered records, a counting receiver that
//! stands in for an aggregator, free ports, and the peak RSS of a process.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasm_router::input::forward::{Decoder, Frame, ack_response};

/// A router for the TOML config `text` running in this process (so a test can read its
/// metrics exactly after it stopped): its first input's TCP address, the trigger that stops
/// it, and its task.
pub async fn start_in_process(
    text: &str,
    metrics: Arc<wasm_router::ops::metrics::Metrics>,
) -> (
    String,
    wasm_router::ops::shutdown::ShutdownTrigger,
    tokio::task::JoinHandle<u8>,
) {
    let config = wasm_router::topology::parse(text, "in-process test").unwrap();
    let router = wasm_router::topology::Router::build(&config, metrics)
        .await
        .unwrap();
    let addr = router.local_addrs()[0]
        .to_string()
        .trim_start_matches("tcp://")
        .to_string();
    let (trigger, shutdown) = wasm_router::ops::shutdown::channel();
    (addr, trigger, tokio::spawn(router.run(shutdown)))
}

/// The msgpack record `{"seq": <u32>, "log": "<pad bytes of text>"}`; `seq` is always a
/// `uint32` so [`seq_of`] can find it at a fixed offset.
pub fn seq_record(seq: u32, pad: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(pad + 32);
    b.extend_from_slice(&[0x82, 0xa3, b's', b'e', b'q', 0xce]);
    b.extend_from_slice(&seq.to_be_bytes());
    rmp::encode::write_str(&mut b, "log").unwrap();
    let text: String = format!("line {seq} ")
        .chars()
        .chain(std::iter::repeat('x'))
        .take(pad)
        .collect();
    rmp::encode::write_str(&mut b, &text).unwrap();
    b
}

/// The `seq` of a record made by [`seq_record`].
pub fn seq_of(body: &[u8]) -> Option<u32> {
    (body.len() >= 10 && body[..6] == [0x82, 0xa3, b's', b'e', b'q', 0xce])
        .then(|| u32::from_be_bytes(body[6..10].try_into().unwrap()))
}

/// A Forward-mode request `[tag, [[EventTime, record], …], {"chunk": chunk}?]`.
pub fn forward_request(tag: &str, entries: &[(u64, Vec<u8>)], chunk: Option<&str>) -> Vec<u8> {
    let mut b = Vec::new();
    rmp::encode::write_array_len(&mut b, if chunk.is_some() { 3 } else { 2 }).unwrap();
    rmp::encode::write_str(&mut b, tag).unwrap();
    rmp::encode::write_array_len(&mut b, entries.len() as u32).unwrap();
    for (time_ns, record) in entries {
        b.push(0x92);
        b.extend_from_slice(&crate::common::event_time(*time_ns));
        b.extend_from_slice(record);
    }
    if let Some(chunk) = chunk {
        rmp::encode::write_map_len(&mut b, 1).unwrap();
        rmp::encode::write_str(&mut b, "chunk").unwrap();
        rmp::encode::write_str(&mut b, chunk).unwrap();
    }
    b
}

/// Send `count` numbered events (`seq` from `first`) as Forward-mode requests of `per_request`
/// events with acks, waiting for each ack like Fluent Bit does. Returns when every request is
/// acked.
pub fn send_acked(addr: &str, tag: &str, first: u32, count: u32, per_request: u32, pad: usize) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(crate::common::HANG_TIMEOUT))
        .unwrap();
    let mut seq = first;
    while seq < first + count {
        let n = per_request.min(first + count - seq);
        let entries: Vec<(u64, Vec<u8>)> = (seq..seq + n)
            .map(|s| (crate::common::BASE_NS + u64::from(s), seq_record(s, pad)))
            .collect();
        let chunk = format!("c{seq}");
        conn.write_all(&forward_request(tag, &entries, Some(&chunk)))
            .unwrap();
        crate::common::expect_ack(&mut conn, &chunk);
        seq += n;
    }
}

/// Resident-set figures of a process from `/proc/<pid>/status`, in bytes: (VmRSS, VmHWM).
pub fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A forward-protocol receiver on a fixed port (an aggregator standing in for Fluentd): acks
/// every request and counts how often each `seq` arrived.
pub struct CountingReceiver {
    seen: Arc<Mutex<Vec<u32>>>,
    events: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl CountingReceiver {
    /// Listen on 127.0.0.1:`port` for seqs below `max_seq`.
    pub fn start(port: u16, max_seq: u32) -> Self {
        Self::start_with_ack_delay(port, max_seq, Duration::ZERO)
    }

    /// Like [`CountingReceiver::start`], waiting `delay` before each ack (a slow aggregator).
    pub fn start_with_ack_delay(port: u16, max_seq: u32, delay: Duration) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("cannot bind port {port}: {e}"));
        listener.set_nonblocking(true).unwrap();
        let seen = Arc::new(Mutex::new(vec![0u32; max_seq as usize]));
        let events = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, e, st) = (seen.clone(), events.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (s, e, st) = (s.clone(), e.clone(), st.clone());
                        std::thread::spawn(move || serve(conn, &s, &e, &st, delay));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        CountingReceiver {
            seen,
            events,
            stop,
            port,
        }
    }

    /// Events received so far (duplicates included).
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// How often each seq arrived.
    pub fn counts(&self) -> Vec<u32> {
        self.seen.lock().unwrap().clone()
    }

    /// Wait until at least `n` events arrived; panics (with `context()`) after the hang timeout.
    pub fn wait_events(&self, n: u64, context: impl Fn() -> String) {
        let deadline = Instant::now() + crate::common::HANG_TIMEOUT;
        while self.events() < n {
            assert!(
                Instant::now() < deadline,
                "receiver on port {} got {} of {n} events\n{}",
                self.port,
                self.events(),
                context()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for CountingReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    mut conn: TcpStream,
    seen: &Mutex<Vec<u32>>,
    events: &AtomicU64,
    stop: &AtomicBool,
    delay: Duration,
) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut decoder = Decoder::default();
    let mut buf = bytes::BytesMut::with_capacity(1 << 20);
    let mut chunk = vec![0u8; 256 << 10];
    while !stop.load(Ordering::Relaxed) {
        loop {
            let frame = match decoder.decode(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => panic!("the receiver could not decode what the router sent: {e}"),
            };
            let Frame::Request(req) = frame else { continue };
            {
                let mut seen = seen.lock().unwrap();
                for e in &req.batch.events {
                    let seq = seq_of(&e.body).expect("a numbered record") as usize;
                    seen[seq] += 1;
                }
            }
            events.fetch_add(req.batch.len() as u64, Ordering::Relaxed);
            if let Some(c) = req.chunk {
                std::thread::sleep(delay);
                if conn.write_all(&ack_response(&c)).is_err() {
                    return;
                }
            }
        }
        match conn.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// Summary of per-seq arrival counts: (missing, arrived more than once, extra copies).
pub fn tally(counts: &[u32]) -> (usize, usize, u64) {
    let missing = counts.iter().filter(|&&c| c == 0).count();
    let twice = counts.iter().filter(|&&c| c > 1).count();
    let extra = counts
        .iter()
        .filter(|&&c| c > 1)
        .map(|&c| u64::from(c - 1))
        .sum();
    (missing, twice, extra)
}

/// The `seq` of each record in a dead-letter file (of [`seq_record`] events), with the
/// reason and detail of its line.
pub fn dead_letters(path: &std::path::Path) -> Vec<(u32, String, String)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["record"]["seq"].as_u64().expect("a seq record") as u32,
                v["reason"].as_str().unwrap_or("").to_string(),
                v["detail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}
