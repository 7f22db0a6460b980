//! Where the load generator sees its events come out of the router, to measure latency.
//!
//! Every frame is stamped with the wall-clock time at which it is written (the EventTime of its
//! entries); the router carries `time_ns` through unchanged, so the latency of an event is the
//! arrival time minus its own time. Two ways to watch the router's output:
//!
//! - [`listen_forward`]: the load generator is the forward-protocol receiver of the router's
//!   `forward` output. It decodes with the router's own decoder and acks every chunk.
//! - [`read_stdout_lines`]: the router runs a `stdout` output piped into the load generator's
//!   stdin; each JSON line's `time_ns` is read back.
//!
//! Both include the output's own work (encoding, the write, one pipe or loopback hop), which is
//! part of what a user waits for.

use super::sender::{Address, wall_clock_ns};
use bytes::BytesMut;
use hdrhistogram::Histogram;
use std::io::{BufRead, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use wasm_router::input::forward::{DecodeLimits, Decoder, Frame, ack_response};

/// Events seen at the router's output and how late they were.
pub struct Arrivals {
    /// Events received.
    pub received: AtomicU64,
    /// Lines or frames that could not be read (not counted as events).
    pub unreadable: AtomicU64,
    latency_ns: Mutex<Histogram<u64>>,
}

impl Arrivals {
    fn new() -> Arc<Self> {
        Arc::new(Arrivals {
            received: AtomicU64::new(0),
            unreadable: AtomicU64::new(0),
            // 1 µs .. 10 min, 3 significant digits.
            latency_ns: Mutex::new(
                Histogram::new_with_bounds(1_000, 600_000_000_000, 3).expect("valid bounds"),
            ),
        })
    }

    fn record(&self, arrived_ns: u64, times_ns: impl Iterator<Item = u64>) {
        let mut histogram = self.latency_ns.lock().unwrap();
        let mut n = 0;
        for t in times_ns {
            histogram.saturating_record(arrived_ns.saturating_sub(t).max(1_000));
            n += 1;
        }
        drop(histogram);
        self.received.fetch_add(n, Ordering::Relaxed);
    }

    /// A copy of the latency histogram (nanoseconds).
    pub fn latency(&self) -> Histogram<u64> {
        self.latency_ns.lock().unwrap().clone()
    }
}

/// Listen for the router's forward output at `address`; returns at once, serving on threads.
pub fn listen_forward(address: &Address) -> Result<Arc<Arrivals>, String> {
    let arrivals = Arrivals::new();
    match address {
        Address::Tcp(a) => {
            let listener = std::net::TcpListener::bind(a)
                .map_err(|e| format!("receiver: cannot listen on {a}: {e}"))?;
            let arrivals = arrivals.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let _ = stream.set_nodelay(true);
                    let arrivals = arrivals.clone();
                    std::thread::spawn(move || serve_forward(stream, &arrivals));
                }
            });
        }
        Address::Unix(path) => {
            if std::fs::symlink_metadata(path).is_ok() {
                std::fs::remove_file(path)
                    .map_err(|e| format!("receiver: cannot replace {}: {e}", path.display()))?;
            }
            let listener = std::os::unix::net::UnixListener::bind(path)
                .map_err(|e| format!("receiver: cannot listen on {}: {e}", path.display()))?;
            let arrivals = arrivals.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let arrivals = arrivals.clone();
                    std::thread::spawn(move || serve_forward(stream, &arrivals));
                }
            });
        }
    }
    Ok(arrivals)
}

fn serve_forward<S: Read + Write>(mut stream: S, arrivals: &Arrivals) {
    let limits = DecodeLimits {
        max_request_bytes: 256 << 20,
        max_decompressed_bytes: 256 << 20,
    };
    let mut decoder = Decoder::new(limits);
    let mut buf = BytesMut::with_capacity(256 * 1024);
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(Frame::Request(request))) => {
                    arrivals.record(
                        wall_clock_ns(),
                        request.batch.events.iter().map(|e| e.time_ns),
                    );
                    if let Some(chunk) = &request.chunk
                        && stream.write_all(&ack_response(chunk)).is_err()
                    {
                        return;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    eprintln!("receiver: closing a connection from the router: {e}");
                    arrivals.unreadable.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Read the router's `stdout` output (JSON lines with `time_ns`) from our stdin on a thread.
pub fn read_stdout_lines() -> Arc<Arrivals> {
    #[derive(serde::Deserialize)]
    struct Line {
        time_ns: u64,
    }
    let arrivals = Arrivals::new();
    let sink = arrivals.clone();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut line = String::new();
        loop {
            line.clear();
            match stdin.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let arrived = wall_clock_ns();
            match serde_json::from_str::<Line>(&line) {
                Ok(l) => sink.record(arrived, std::iter::once(l.time_ns)),
                Err(_) => {
                    sink.unreadable.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    arrivals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::loadgen::frames::{Compression, FrameEncoder, Mode, chunk_id, expected_ack};

    #[test]
    fn the_forward_receiver_counts_events_measures_their_age_and_acks() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let address = Address::Tcp(format!("127.0.0.1:{port}"));
        let arrivals = listen_forward(&address).unwrap();
        let encoder = FrameEncoder {
            mode: Mode::PackedForward,
            compression: Compression::Gzip,
            tag: "t".into(),
        };
        let sent_at = wall_clock_ns() - 5_000_000;
        let mut group = encoder.encode_group(2, 10, true, sent_at, || vec![0x80]);
        let chunk = chunk_id(0, 1);
        group.set_chunk(1, &chunk);
        let mut conn = address
            .connect_within(std::time::Duration::from_secs(5))
            .unwrap();
        conn.write_all(&group.bytes).unwrap();
        let mut ack = vec![0u8; expected_ack(&chunk).len()];
        conn.read_exact(&mut ack).unwrap();
        assert_eq!(ack, expected_ack(&chunk));
        assert_eq!(arrivals.received.load(Ordering::Relaxed), 20);
        let latency = arrivals.latency();
        assert_eq!(latency.len(), 20);
        assert!(
            latency.min() >= 4_990_000,
            "events were stamped 5 ms ago: {}",
            latency.min()
        );
    }
}
