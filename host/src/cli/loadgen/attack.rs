//! `wasm-router bench-load --attack …`: the two memory attacks of issue 13 against a running
//! router, reporting the router's peak RSS (VmHWM) — the benchmark behind "RSS stays within
//! `memory_budget` + 32 MiB under any mix of clients".
//!
//! - `partial`: every connection starts a request that declares a 6,000,000-byte payload and
//!   sends all of it but the last byte, then waits; a connection the router closes reconnects
//!   and starts again.
//! - `amplify`: every connection sends complete requests of 2,000,000 three-byte `[0,{}]`
//!   entries (6 MB on the wire, about 13 times that once decoded), with a chunk, one after
//!   another, waiting for the ack or the close.
//!
//! Both run for `--duration` (default 20 s); only loopback routers are meant as targets.

use anyhow::{Context, bail};
use clap::ValueEnum;
use serde::Serialize;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Which attack to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Attack {
    /// Incomplete ~6 MB requests held open on every connection.
    Partial,
    /// Complete 6 MB requests of 3-byte entries that amplify when decoded.
    Amplify,
}

/// Bytes of payload each attack request declares.
const PAYLOAD: usize = 6_000_000;
/// Longest a single write or read of the attacker waits before it checks the clock again.
const IO_TIMEOUT: Duration = Duration::from_millis(500);

/// What one attack run saw.
#[derive(Debug, Serialize)]
pub struct AttackReport {
    /// The attack.
    pub attack: Attack,
    /// Connections held at once.
    pub connections: usize,
    /// Seconds it ran.
    pub seconds: f64,
    /// Bytes the router took off the attackers' sockets.
    pub bytes_sent: u64,
    /// Connections opened (including reconnects).
    pub connects: u64,
    /// Connections the router closed.
    pub closed_by_router: u64,
    /// Requests acked (amplify).
    pub acked: u64,
    /// The router's peak RSS over its life (VmHWM), MiB, when its pid was given.
    pub peak_rss_mib: Option<f64>,
}

#[derive(Default)]
struct Tally {
    bytes: AtomicU64,
    connects: AtomicU64,
    closed: AtomicU64,
    acked: AtomicU64,
}

/// Run `attack` with `connections` connections against `address` (TCP) for `duration`.
pub fn run(
    attack: Attack,
    address: &str,
    connections: usize,
    duration: Duration,
    watch_pid: Option<u32>,
) -> anyhow::Result<AttackReport> {
    if address.starts_with("unix://") {
        bail!("--attack needs a TCP address (host:port), got {address}");
    }
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let request = Arc::new(match attack {
        Attack::Partial => partial_request(),
        Attack::Amplify => amplifying_request(),
    });
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (tally, stop, request) = (tally.clone(), stop.clone(), request.clone());
            let address = address.to_string();
            std::thread::spawn(move || attacker(attack, &address, &request, &tally, &stop))
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let peak_rss_mib = match watch_pid {
        Some(pid) => Some(
            super::procwatch::Watched::new(pid)
                .map_err(anyhow::Error::msg)?
                .status_kib("VmHWM")
                .context("reading the router's VmHWM")? as f64
                / 1024.0,
        ),
        None => None,
    };
    Ok(AttackReport {
        attack,
        connections,
        seconds: start.elapsed().as_secs_f64(),
        bytes_sent: tally.bytes.load(Ordering::Relaxed),
        connects: tally.connects.load(Ordering::Relaxed),
        closed_by_router: tally.closed.load(Ordering::Relaxed),
        acked: tally.acked.load(Ordering::Relaxed),
        peak_rss_mib,
    })
}

/// One attacking connection at a time, reconnecting when the router closes it.
fn attacker(attack: Attack, address: &str, request: &[u8], tally: &Tally, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut conn) = TcpStream::connect(address) else {
            std::thread::sleep(IO_TIMEOUT);
            continue;
        };
        tally.connects.fetch_add(1, Ordering::Relaxed);
        let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
        let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
        let closed = match attack {
            Attack::Partial => hold_partial(&mut conn, request, tally, stop),
            Attack::Amplify => loop {
                if stop.load(Ordering::Relaxed) {
                    break false;
                }
                if write_until(&mut conn, request, tally, stop) || !read_ack(&mut conn, stop) {
                    break true;
                }
                tally.acked.fetch_add(1, Ordering::Relaxed);
            },
        };
        if closed {
            tally.closed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Send all of `request` (all but its last byte), then hold the connection. True when the
/// router closed it.
fn hold_partial(conn: &mut TcpStream, request: &[u8], tally: &Tally, stop: &AtomicBool) -> bool {
    if write_until(conn, request, tally, stop) {
        return true;
    }
    let mut byte = [0u8; 1];
    while !stop.load(Ordering::Relaxed) {
        match conn.read(&mut byte) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Write `bytes`, tolerating the router not reading for a while. True when the router closed
/// the connection; false when done or stopped.
fn write_until(conn: &mut TcpStream, mut bytes: &[u8], tally: &Tally, stop: &AtomicBool) -> bool {
    while !bytes.is_empty() && !stop.load(Ordering::Relaxed) {
        match conn.write(bytes) {
            Ok(0) => return true,
            Ok(n) => {
                tally.bytes.fetch_add(n as u64, Ordering::Relaxed);
                bytes = &bytes[n..];
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Wait for an ack (any bytes); false when the router closed the connection or on stop.
fn read_ack(conn: &mut TcpStream, stop: &AtomicBool) -> bool {
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        match conn.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(e) if is_timeout(&e) => {}
            Err(_) => return false,
        }
    }
    false
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// `[tag, bin32(PAYLOAD)` and PAYLOAD − 1 bytes of it: never complete.
fn partial_request() -> Vec<u8> {
    let mut b = Vec::with_capacity(PAYLOAD + 16);
    rmp::encode::write_array_len(&mut b, 2).unwrap();
    rmp::encode::write_str(&mut b, "attack.partial").unwrap();
    rmp::encode::write_bin_len(&mut b, PAYLOAD as u32).unwrap();
    b.resize(b.len() + PAYLOAD - 1, 0x92);
    b
}

/// `[tag, bin(PAYLOAD / 3 × [0,{}]), {"chunk": …}]`.
fn amplifying_request() -> Vec<u8> {
    let mut b = Vec::with_capacity(PAYLOAD + 64);
    rmp::encode::write_array_len(&mut b, 3).unwrap();
    rmp::encode::write_str(&mut b, "attack.amplify").unwrap();
    rmp::encode::write_bin_len(&mut b, PAYLOAD as u32).unwrap();
    for _ in 0..PAYLOAD / 3 {
        b.extend_from_slice(&[0x92, 0x00, 0x80]);
    }
    rmp::encode::write_map_len(&mut b, 1).unwrap();
    rmp::encode::write_str(&mut b, "chunk").unwrap();
    rmp::encode::write_str(&mut b, "attack-amplify-chunk").unwrap();
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_requests_have_the_declared_shapes() {
        let partial = partial_request();
        let mut decoder = wasm_router::input::forward::Decoder::default();
        let mut buf = bytes::BytesMut::from(&partial[..]);
        assert!(decoder.decode(&mut buf).unwrap().is_none(), "incomplete");
        buf.extend_from_slice(&[0x92]);
        // The last byte completes the payload (of 0x92 bytes: not valid entries, but whole).
        assert!(decoder.decode(&mut buf).is_err() || buf.is_empty());

        let amplify = amplifying_request();
        let mut buf = bytes::BytesMut::from(&amplify[..]);
        let Some(wasm_router::input::forward::Frame::Request(req)) =
            wasm_router::input::forward::Decoder::default()
                .decode(&mut buf)
                .unwrap()
        else {
            panic!("a request");
        };
        assert_eq!(req.batch.len(), PAYLOAD / 3);
        assert!(req.held_bytes > 13 * amplify.len());
    }
}
