//! The records the load generator sends: what Docker's fluentd log driver puts on the FireLens
//! socket (reference forward-protocol.md §8.1), as msgpack maps of an exact size.
//!
//! `firelens`: `{"container_id": <64 hex>, "container_name": "/ecs-app-1", "source": "stdout",
//! "log": <line>}`, every value a string, as Docker sends them. The log lines are varied, realistic
//! application lines (request logs, warnings with an e-mail address, errors with an IP address),
//! so filters that look at digits or personal data have the work they would have in production.
//! `json-log`: the same record whose `log` holds a JSON object, as apps that log JSON produce.

use clap::ValueEnum;

/// The shape of the records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Docker/FireLens fields with a plain text `log` line.
    Firelens,
    /// Docker/FireLens fields whose `log` is a JSON object (for parse-json style filters).
    JsonLog,
}

/// The smallest record [`RecordFactory`] can build: the fixed fields plus a short `log`.
pub const MIN_RECORD_BYTES: usize = 140;
/// The largest record [`RecordFactory`] builds (the `log` stays a str16).
pub const MAX_RECORD_BYTES: usize = 65_000;

/// Builds records of one shape and one exact encoded size for one container.
pub struct RecordFactory {
    shape: Shape,
    size: usize,
    container_id: String,
    rng: fastrand::Rng,
}

impl RecordFactory {
    /// Records of `size` bytes each (clamped to [`MIN_RECORD_BYTES`]..=[`MAX_RECORD_BYTES`]); `seed` picks the container
    /// id and the log lines, so runs are repeatable.
    pub fn new(shape: Shape, size: usize, seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let container_id: String = (0..64).map(|_| hex_digit(rng.u8(0..16))).collect();
        RecordFactory {
            shape,
            size: size.clamp(MIN_RECORD_BYTES, MAX_RECORD_BYTES),
            container_id,
            rng,
        }
    }

    /// The next record, msgpack-encoded, exactly `size` bytes long.
    pub fn next_record(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size);
        rmp::encode::write_map_len(&mut out, 4).unwrap();
        write_str(&mut out, "container_id");
        write_str(&mut out, &self.container_id);
        write_str(&mut out, "container_name");
        write_str(&mut out, "/ecs-app-1");
        write_str(&mut out, "source");
        write_str(&mut out, "stdout");
        write_str(&mut out, "log");
        let room = self.size - out.len();
        let log_len = log_len_for(room);
        let line = match self.shape {
            Shape::Firelens => text_line(&mut self.rng, log_len),
            Shape::JsonLog => json_line(&mut self.rng, log_len),
        };
        write_str_exact(&mut out, &line, room);
        debug_assert_eq!(out.len(), self.size);
        out
    }
}

/// The string length whose msgpack encoding (header + bytes) is exactly `room` bytes.
fn log_len_for(room: usize) -> usize {
    match room {
        0..=32 => room - 1,
        33..=257 => room - 2,
        _ => room - 3,
    }
}

/// Write `s` with the header that makes the encoding exactly `room` bytes (str8 / str16 may be
/// wider than the smallest header, which msgpack allows).
fn write_str_exact(out: &mut Vec<u8>, s: &str, room: usize) {
    let len = s.len();
    match room - len {
        1 => out.push(0xa0 | len as u8),
        2 => out.extend_from_slice(&[0xd9, len as u8]),
        _ => {
            out.push(0xda);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(s.as_bytes());
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    rmp::encode::write_str(out, s).unwrap();
}

fn hex_digit(v: u8) -> char {
    char::from_digit(v as u32, 16).unwrap()
}

const PATHS: &[&str] = &[
    "/api/v1/orders",
    "/api/v1/users",
    "/healthz",
    "/api/v2/cart/items",
    "/static/app.js",
];
const USERS: &[&str] = &["maria.garcia", "j.smith", "ops-bot", "li.wei", "a.kumar"];

/// A plain-text application log line of exactly `len` bytes.
fn text_line(rng: &mut fastrand::Rng, len: usize) -> String {
    let ts = format!(
        "2026-11-21T04:{:02}:{:02}.{:03}Z",
        rng.u8(0..60),
        rng.u8(0..60),
        rng.u16(0..1000)
    );
    let mut line = match rng.u8(0..10) {
        0..=5 => format!(
            "{ts} INFO  request_id={:016x} GET {}/{} status=200 duration_ms={} client=10.{}.{}.{}",
            rng.u64(..),
            PATHS[rng.usize(..PATHS.len())],
            rng.u32(1..100_000),
            rng.u16(1..900),
            rng.u8(0..255),
            rng.u8(0..255),
            rng.u8(1..255)
        ),
        6 | 7 => format!(
            "{ts} WARN  payment retry for {}@example.com order={} attempt={} of 5",
            USERS[rng.usize(..USERS.len())],
            rng.u32(100_000..999_999),
            rng.u8(1..5)
        ),
        8 => format!(
            "{ts} ERROR upstream timeout after {}ms host=172.16.{}.{}:8080 retrying in {}s",
            rng.u16(1000..30_000),
            rng.u8(0..255),
            rng.u8(1..255),
            rng.u8(1..30)
        ),
        _ => format!(
            "{ts} DEBUG cache hit key=session:{:032x} ttl={}",
            rng.u128(..),
            rng.u16(1..3600)
        ),
    };
    fit(&mut line, len, rng);
    line
}

/// A JSON-object log line of exactly `len` bytes.
fn json_line(rng: &mut fastrand::Rng, len: usize) -> String {
    let head = format!(
        "{{\"level\":\"info\",\"status\":200,\"duration_ms\":{},\"path\":\"{}\",\"msg\":\"",
        rng.u16(1..900),
        PATHS[rng.usize(..PATHS.len())]
    );
    let tail = "\"}";
    let mut msg = String::new();
    let room = len.saturating_sub(head.len() + tail.len());
    fit(&mut msg, room, rng);
    let mut line = format!("{head}{msg}{tail}");
    if line.len() > len {
        line.truncate(len);
    }
    line
}

/// Pad `line` with words (or cut it) to exactly `len` ASCII bytes.
fn fit(line: &mut String, len: usize, rng: &mut fastrand::Rng) {
    const WORDS: &[&str] = &[
        "ok", "cache", "user", "retry", "db", "latency", "shard", "queue", "flush", "tls",
    ];
    while line.len() < len {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(WORDS[rng.usize(..WORDS.len())]);
    }
    line.truncate(len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_have_the_exact_size_and_the_firelens_fields() {
        for size in [
            MIN_RECORD_BYTES,
            157,
            200,
            226,
            381,
            382,
            1024,
            MAX_RECORD_BYTES,
        ] {
            let mut f = RecordFactory::new(Shape::Firelens, size, 1);
            for _ in 0..50 {
                let rec = f.next_record();
                assert_eq!(rec.len(), size);
                let value: serde_json::Value = rmp_serde::from_slice(&rec).unwrap();
                assert_eq!(value["container_id"].as_str().unwrap().len(), 64);
                assert_eq!(value["container_name"], "/ecs-app-1");
                assert_eq!(value["source"], "stdout");
                assert!(value["log"].is_string());
            }
        }
    }

    #[test]
    fn json_log_records_hold_json() {
        let mut f = RecordFactory::new(Shape::JsonLog, 250, 2);
        let rec = f.next_record();
        assert_eq!(rec.len(), 250);
        let value: serde_json::Value = rmp_serde::from_slice(&rec).unwrap();
        let log: serde_json::Value = serde_json::from_str(value["log"].as_str().unwrap()).unwrap();
        assert_eq!(log["level"], "info");
    }
}
