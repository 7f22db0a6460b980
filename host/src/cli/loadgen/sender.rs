//! One connection of the load generator: a thread that writes pre-encoded groups (flat out, or
//! paced to a rate), and, with acks, a second thread that reads the acks and checks each one
//! against the chunk id the writer sent, in order (reference forward-protocol.md §5).
//!
//! `ack_window` acks may be outstanding; with 1 the writer waits for each ack before it sends on,
//! as Docker's driver and Fluent Bit's out_forward do.

use super::frames::{CHUNK_LEN, FrameEncoder, Group, Mode, chunk_id, expected_ack};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where to connect.
#[derive(Clone, Debug)]
pub enum Address {
    /// `host:port`.
    Tcp(String),
    /// A unix socket path.
    Unix(std::path::PathBuf),
}

impl Address {
    /// `unix:///path` or `host:port`.
    pub fn parse(s: &str) -> Self {
        match s.strip_prefix("unix://") {
            Some(path) => Address::Unix(path.into()),
            None => Address::Tcp(s.to_string()),
        }
    }

    /// Connect once.
    pub fn connect(&self) -> std::io::Result<Connection> {
        Ok(match self {
            Address::Tcp(a) => {
                let s = TcpStream::connect(a)?;
                s.set_nodelay(true)?;
                Connection::Tcp(s)
            }
            Address::Unix(p) => Connection::Unix(UnixStream::connect(p)?),
        })
    }

    /// Connect, retrying every 20 ms until `timeout` (the router may still be starting).
    pub fn connect_within(&self, timeout: Duration) -> std::io::Result<Connection> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.connect() {
                Ok(c) => return Ok(c),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "{a}"),
            Address::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// A connected stream.
pub enum Connection {
    /// TCP.
    Tcp(TcpStream),
    /// Unix socket.
    Unix(UnixStream),
}

impl Connection {
    fn try_clone(&self) -> std::io::Result<Connection> {
        Ok(match self {
            Connection::Tcp(s) => Connection::Tcp(s.try_clone()?),
            Connection::Unix(s) => Connection::Unix(s.try_clone()?),
        })
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Connection::Tcp(s) => s.read(buf),
            Connection::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Connection::Tcp(s) => s.write(buf),
            Connection::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Counters shared by every connection, read by the progress display and the report.
#[derive(Default)]
pub struct Counters {
    /// Events written.
    pub sent_events: AtomicU64,
    /// Bytes written.
    pub sent_bytes: AtomicU64,
    /// Events whose request was acked.
    pub acked_events: AtomicU64,
    /// Acks received.
    pub acks: AtomicU64,
}

/// What one connection sends and how.
pub struct SendPlan {
    /// Index of the connection (part of every chunk id).
    pub connection: u16,
    /// The pre-encoded groups, sent round-robin.
    pub pool: Vec<Group>,
    /// Re-encodes compressed frames when times must change.
    pub encoder: FrameEncoder,
    /// Stop after this many events (rounded up to whole groups)…
    pub events: Option<u64>,
    /// …or once this much time has passed since the start.
    pub duration: Option<Duration>,
    /// Events per second for this connection; `None`: flat out.
    pub rate: Option<f64>,
    /// Acks that may be outstanding (0: no acks are requested).
    pub ack_window: usize,
    /// Stamp each frame with the time it is written (for latency measurement).
    pub stamp_times: bool,
    /// Give up waiting for an ack after this long.
    pub ack_timeout: Duration,
}

/// What one connection did.
pub struct SendOutcome {
    /// When the writer finished.
    pub finished_sending: Instant,
    /// When the last ack arrived.
    pub last_ack: Option<Instant>,
    /// Time from writing a request with a chunk to reading its ack.
    pub ack_latency_ns: Histogram<u64>,
}

struct PendingAck {
    expected: Vec<u8>,
    events: u64,
    written: Instant,
}

#[derive(Default)]
struct AckState {
    pending: VecDeque<PendingAck>,
    failed: Option<String>,
    last_ack: Option<Instant>,
}

struct AckQueue {
    state: Mutex<AckState>,
    changed: Condvar,
    window: usize,
}

impl AckQueue {
    /// Wait for room in the window, then register an ack to expect.
    fn push(&self, pending: PendingAck, timeout: Duration) -> Result<(), String> {
        let mut state = self.state.lock().unwrap();
        let deadline = Instant::now() + timeout;
        while state.pending.len() >= self.window && state.failed.is_none() {
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "no ack within {timeout:?} ({} outstanding)",
                    state.pending.len()
                ));
            }
            state = self.changed.wait_timeout(state, deadline - now).unwrap().0;
        }
        if let Some(e) = &state.failed {
            return Err(e.clone());
        }
        state.pending.push_back(pending);
        Ok(())
    }

    /// Wait until every registered ack arrived.
    fn drain(&self, timeout: Duration) -> Result<Option<Instant>, String> {
        let mut state = self.state.lock().unwrap();
        let deadline = Instant::now() + timeout;
        while !state.pending.is_empty() && state.failed.is_none() {
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "{} ack(s) still missing after {timeout:?}",
                    state.pending.len()
                ));
            }
            state = self.changed.wait_timeout(state, deadline - now).unwrap().0;
        }
        match &state.failed {
            Some(e) => Err(e.clone()),
            None => Ok(state.last_ack),
        }
    }

    fn fail(&self, why: String) {
        let mut state = self.state.lock().unwrap();
        state.failed.get_or_insert(why);
        self.changed.notify_all();
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 10 min, 3 significant digits.
    Histogram::new_with_bounds(1_000, 600_000_000_000, 3).expect("valid histogram bounds")
}

/// Nanoseconds since the Unix epoch.
pub fn wall_clock_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Run one connection: wait at `start_line` (so every connection starts together and the
/// caller can take its first measurements), then send per `plan`. `start` is read after the
/// barrier.
pub fn run_connection(
    mut conn: Connection,
    mut plan: SendPlan,
    counters: Arc<Counters>,
    start_line: Arc<Barrier>,
    start: Arc<Mutex<Option<Instant>>>,
) -> Result<SendOutcome, String> {
    let acks = Arc::new(AckQueue {
        state: Mutex::new(AckState::default()),
        changed: Condvar::new(),
        window: plan.ack_window.max(1),
    });
    let ack_histogram = Arc::new(Mutex::new(new_histogram()));
    let reader = if plan.ack_window > 0 {
        let reader_conn = conn
            .try_clone()
            .map_err(|e| format!("cloning the connection: {e}"))?;
        let (acks, counters, histogram) = (acks.clone(), counters.clone(), ack_histogram.clone());
        Some(std::thread::spawn(move || {
            read_acks(reader_conn, &acks, &counters, &histogram)
        }))
    } else {
        None
    };

    start_line.wait();
    let start = start
        .lock()
        .unwrap()
        .expect("the start time is set before the barrier opens");
    let result = write_groups(&mut conn, &mut plan, &counters, &acks, start);
    let finished_sending = Instant::now();
    let drained = match result {
        Ok(()) if plan.ack_window > 0 => acks.drain(plan.ack_timeout),
        Ok(()) => Ok(None),
        Err(e) => {
            acks.fail(e.clone());
            Err(e)
        }
    };
    // Closing the socket ends the reader thread.
    if let Connection::Tcp(s) = &conn {
        let _ = s.shutdown(std::net::Shutdown::Both);
    } else if let Connection::Unix(s) = &conn {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
    if let Some(reader) = reader {
        let _ = reader.join();
    }
    let last_ack = drained?;
    let ack_latency_ns = std::mem::replace(&mut *ack_histogram.lock().unwrap(), new_histogram());
    Ok(SendOutcome {
        finished_sending,
        last_ack,
        ack_latency_ns,
    })
}

fn write_groups(
    conn: &mut Connection,
    plan: &mut SendPlan,
    counters: &Counters,
    acks: &AckQueue,
    start: Instant,
) -> Result<(), String> {
    let paced = plan.rate.is_some() || plan.stamp_times;
    let mut sent: u64 = 0;
    let mut seq: u64 = 0;
    let mut scratch = Vec::new();
    let mut next = 0usize;
    loop {
        if plan.events.is_some_and(|n| sent >= n)
            || plan.duration.is_some_and(|d| start.elapsed() >= d)
        {
            return Ok(());
        }
        let this = next;
        next = (next + 1) % plan.pool.len();
        let group = &mut plan.pool[this];
        if !paced {
            // Flat out: one write for the whole group.
            register_chunks(
                group,
                plan.connection,
                &mut seq,
                plan.ack_window,
                acks,
                plan.ack_timeout,
            )?;
            conn.write_all(&group.bytes)
                .map_err(|e| format!("writing: {e}"))?;
            let events = group.events();
            sent += events;
            counters.sent_events.fetch_add(events, Ordering::Relaxed);
            counters
                .sent_bytes
                .fetch_add(group.bytes.len() as u64, Ordering::Relaxed);
            continue;
        }
        // Paced or stamped: one frame at a time.
        for f in 0..group.frames.len() {
            if let Some(rate) = plan.rate {
                let due = start + Duration::from_secs_f64(sent as f64 / rate);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            let layout = group.frames[f].clone();
            if let Some(at) = layout.chunk_offset {
                seq += 1;
                let chunk = chunk_id(plan.connection, seq);
                group.bytes[at..at + CHUNK_LEN].copy_from_slice(&chunk);
                acks.push(
                    PendingAck {
                        expected: expected_ack(&chunk),
                        events: group.events(),
                        written: Instant::now(),
                    },
                    plan.ack_timeout,
                )?;
            }
            let bytes: &[u8] = if plan.stamp_times && !group.set_time(f, wall_clock_ns()) {
                scratch.clear();
                let records = &group.records[layout.records.clone()];
                let new = plan.encoder.encode_frame(
                    &mut scratch,
                    records,
                    0,
                    wall_clock_ns(),
                    layout.chunk_offset.is_some(),
                );
                if let (Some(old), Some(at)) = (layout.chunk_offset, new.chunk_offset) {
                    let chunk: [u8; CHUNK_LEN] =
                        group.bytes[old..old + CHUNK_LEN].try_into().unwrap();
                    scratch[at..at + CHUNK_LEN].copy_from_slice(&chunk);
                }
                &scratch
            } else {
                &group.bytes[layout.range.clone()]
            };
            conn.write_all(bytes).map_err(|e| format!("writing: {e}"))?;
            let events = layout.events();
            sent += events;
            counters.sent_events.fetch_add(events, Ordering::Relaxed);
            counters
                .sent_bytes
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            if plan.duration.is_some_and(|d| start.elapsed() >= d) && layout.chunk_offset.is_some()
            {
                return Ok(());
            }
        }
    }
}

/// Give the frame of `group` that asks for an ack (its last) a fresh chunk id and register
/// the ack, which covers every event of the group.
fn register_chunks(
    group: &mut Group,
    connection: u16,
    seq: &mut u64,
    window: usize,
    acks: &AckQueue,
    timeout: Duration,
) -> Result<(), String> {
    if window == 0 {
        return Ok(());
    }
    let events = group.events();
    for f in 0..group.frames.len() {
        if group.frames[f].chunk_offset.is_some() {
            *seq += 1;
            let chunk = chunk_id(connection, *seq);
            group.set_chunk(f, &chunk);
            acks.push(
                PendingAck {
                    expected: expected_ack(&chunk),
                    events,
                    written: Instant::now(),
                },
                timeout,
            )?;
        }
    }
    Ok(())
}

/// Read acks until the connection closes; each must be the next one expected.
fn read_acks(
    mut conn: Connection,
    acks: &AckQueue,
    counters: &Counters,
    histogram: &Mutex<Histogram<u64>>,
) {
    let ack_len = expected_ack(&[b'0'; CHUNK_LEN]).len();
    let mut buf = vec![0u8; ack_len];
    loop {
        if let Err(e) = conn.read_exact(&mut buf) {
            let state = acks.state.lock().unwrap();
            let outstanding = state.pending.len();
            drop(state);
            if outstanding > 0 {
                acks.fail(format!(
                    "connection closed with {outstanding} ack(s) outstanding: {e}"
                ));
            }
            return;
        }
        let now = Instant::now();
        let mut state = acks.state.lock().unwrap();
        let Some(pending) = state.pending.pop_front() else {
            drop(state);
            acks.fail(format!("an ack nobody asked for: {buf:02x?}"));
            return;
        };
        if pending.expected != buf {
            drop(state);
            acks.fail(format!(
                "unexpected ack {buf:02x?}, expected {:02x?}",
                pending.expected
            ));
            return;
        }
        state.last_ack = Some(now);
        drop(state);
        acks.changed.notify_all();
        counters
            .acked_events
            .fetch_add(pending.events, Ordering::Relaxed);
        counters.acks.fetch_add(1, Ordering::Relaxed);
        let _ = histogram
            .lock()
            .unwrap()
            .record((now - pending.written).as_nanos().max(1_000) as u64);
    }
}

/// Events per group: with acks, frames up to the ack interval; without, about a thousand events.
pub fn frames_per_group(mode: Mode, events_per_frame: usize, ack_every: u64) -> usize {
    let per_frame = if mode == Mode::Message {
        1
    } else {
        events_per_frame.max(1)
    } as u64;
    let target = if ack_every > 0 { ack_every } else { 1000 };
    target.div_ceil(per_frame).max(1) as usize
}
