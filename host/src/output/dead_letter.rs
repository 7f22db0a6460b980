//! Dead-letter destinations: where an output sends the events it gives up on, with the reason.
//!
//! - A file of JSON lines, one per event:
//!   `{"time":"<when>","output":"<id>","reason":"<reason>","detail":"<detail>","tag":"<tag>","time_ns":<n>,"record":{…}}`.
//!   Bounded by `max_bytes` (default 64 MiB): beyond it an event is not written and the error
//!   `dead_letter_full` is counted. Several outputs may share one file.
//! - Another output, by name: the events are pushed into its buffer (its `when_full` applies)
//!   with two fields added to each record, `dead_letter_reason` and `dead_letter_output`.
//!
//! The events were already counted as discarded by the output that gave up on them; the
//! dead-letter copy is counted as sent by the component `dead_letter/<output>`, and a failed
//! copy as the error `dead_letter_failed` (or `dead_letter_full`) of the output.

use crate::buffer::BufferWriter;
use crate::event::{Batch, Event, json};
use crate::ops::metrics::{Component, Metrics};
use crate::time::rfc3339;
use bytes::Bytes;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Default bound of a dead-letter file.
pub const DEFAULT_DEAD_LETTER_BYTES: u64 = 64 << 20;

/// `dead_letter = { … }` of an output: exactly one of `path` and `output`.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// A file of JSON lines, one per event: `{"time","output","reason","detail","tag","time_ns","record"}`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The `name` of another output; its events carry `dead_letter_reason` and `dead_letter_output`.
    #[serde(default)]
    pub output: Option<String>,
    /// Most bytes of the file (default 64MiB); beyond it events are counted as `dead_letter_full`.
    #[serde(default)]
    pub max_bytes: Option<crate::config::ByteSize>,
}

/// Where an output's dead letters go.
#[derive(Clone)]
pub enum DeadLetter {
    /// A JSON-lines file.
    File(DeadLetterFile),
    /// Another output's buffer.
    Output {
        /// The other output's name.
        name: String,
        /// Its buffer.
        buffer: BufferWriter,
    },
}

/// A dead-letter file, shared by every output that names it.
#[derive(Clone)]
pub struct DeadLetterFile {
    inner: Arc<Mutex<FileState>>,
}

struct FileState {
    path: PathBuf,
    file: std::fs::File,
    size: u64,
    max_bytes: u64,
}

/// Why a dead-letter file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error(
    "dead-letter file {path}: cannot open it for appending: {source}; check that its directory exists and is writable"
)]
pub struct DeadLetterError {
    path: String,
    source: std::io::Error,
}

impl DeadLetterFile {
    /// Open (create, append to) the file at `path`, bounded to `max_bytes`.
    pub fn open(path: &Path, max_bytes: u64) -> Result<Self, DeadLetterError> {
        let err = |source| DeadLetterError {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        let size = file.metadata().map_err(err)?.len();
        Ok(DeadLetterFile {
            inner: Arc::new(Mutex::new(FileState {
                path: path.to_path_buf(),
                file,
                size,
                max_bytes,
            })),
        })
    }

    /// The file's path.
    pub fn path(&self) -> PathBuf {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .path
            .clone()
    }
}

impl DeadLetter {
    /// Hand `batch`'s events, given up on by `from` for `reason`, to this destination.
    pub async fn send(
        &self,
        from: &Component,
        batch: &Batch,
        reason: &str,
        detail: &str,
        metrics: &Metrics,
    ) {
        if batch.is_empty() {
            return;
        }
        let copy = Component {
            kind: "dead_letter",
            id: from.id.clone(),
        };
        match self {
            DeadLetter::File(file) => {
                let text = render(from, batch, reason, detail);
                let inner = file.inner.clone();
                let written = tokio::task::spawn_blocking(move || append(&inner, &text)).await;
                match written {
                    Ok(Ok(())) => metrics.sent(&copy, batch.len() as u64),
                    Ok(Err(e)) => {
                        let full = e.kind() == std::io::ErrorKind::StorageFull;
                        tracing::error!(component = %from.id, path = %file.path().display(), error = %e, events = batch.len(),
                            "cannot write dead letters");
                        metrics.error(
                            from,
                            if full {
                                "dead_letter_full"
                            } else {
                                "dead_letter_failed"
                            },
                        );
                    }
                    Err(e) => {
                        tracing::error!(component = %from.id, error = %e, "dead-letter write task failed");
                        metrics.error(from, "dead_letter_failed");
                    }
                }
            }
            DeadLetter::Output { name, buffer } => {
                let fields = [
                    ("dead_letter_reason", reason),
                    ("dead_letter_output", from.id.as_str()),
                ];
                let events = batch
                    .events
                    .iter()
                    .map(|e| Event {
                        time_ns: e.time_ns,
                        body: append_fields(&e.body, &fields).unwrap_or_else(|| e.body.clone()),
                    })
                    .collect();
                match buffer.push(Batch::new(batch.tag.clone(), events)).await {
                    Ok(()) => metrics.sent(&copy, batch.len() as u64),
                    Err(e) => {
                        // The target's buffer counted the events under its own component.
                        tracing::warn!(component = %from.id, dead_letter_output = %name, error = %e, "dead-letter output refused events");
                        metrics.error(from, "dead_letter_failed");
                    }
                }
            }
        }
    }
}

fn append(inner: &Mutex<FileState>, text: &str) -> std::io::Result<()> {
    let mut st = inner.lock().unwrap_or_else(|e| e.into_inner());
    if st.size + text.len() as u64 > st.max_bytes {
        return Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!(
                "the file reached its max_bytes ({}); move it away or raise dead_letter.max_bytes",
                st.max_bytes
            ),
        ));
    }
    st.file.write_all(text.as_bytes())?;
    st.size += text.len() as u64;
    Ok(())
}

/// The JSON lines of `batch`.
fn render(from: &Component, batch: &Batch, reason: &str, detail: &str) -> String {
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    let head = format!(
        "{{\"time\":\"{}\",\"output\":{},\"reason\":{},\"detail\":{},\"tag\":{},",
        rfc3339(crate::event::now_ns()),
        quote(&from.id),
        quote(reason),
        quote(detail),
        quote(&batch.tag_lossy())
    );
    let mut out = String::new();
    for event in &batch.events {
        out.push_str(&head);
        out.push_str(&format!("\"time_ns\":{},\"record\":", event.time_ns));
        let start = out.len();
        if json::write_json(&event.body, &mut out).is_err() {
            out.truncate(start);
            out.push_str("null");
        }
        out.push_str("}\n");
    }
    out
}

/// `body` (a msgpack map) with `fields` added as string pairs; `None` if it is not a map.
pub fn append_fields(body: &[u8], fields: &[(&str, &str)]) -> Option<Bytes> {
    let (len, header) = match *body.first()? {
        m @ 0x80..=0x8f => (u32::from(m & 0x0f), 1),
        0xde => (
            u32::from(u16::from_be_bytes(body.get(1..3)?.try_into().ok()?)),
            3,
        ),
        0xdf => (u32::from_be_bytes(body.get(1..5)?.try_into().ok()?), 5),
        _ => return None,
    };
    let mut out = Vec::with_capacity(
        body.len()
            + fields
                .iter()
                .map(|(k, v)| k.len() + v.len() + 10)
                .sum::<usize>(),
    );
    rmp::encode::write_map_len(&mut out, len + fields.len() as u32).ok()?;
    out.extend_from_slice(&body[header..]);
    for (k, v) in fields {
        rmp::encode::write_str(&mut out, k).ok()?;
        rmp::encode::write_str(&mut out, v).ok()?;
    }
    Some(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(log: &str) -> Bytes {
        let mut b = Vec::new();
        rmp::encode::write_map_len(&mut b, 1).unwrap();
        rmp::encode::write_str(&mut b, "log").unwrap();
        rmp::encode::write_str(&mut b, log).unwrap();
        Bytes::from(b)
    }

    #[test]
    fn appended_fields_keep_the_record_and_widen_the_header() {
        let out = append_fields(&record("hi"), &[("a", "1"), ("b", "2")]).unwrap();
        assert_eq!(
            json::to_json(&out).unwrap(),
            r#"{"log":"hi","a":"1","b":"2"}"#
        );
        // A 15-key fixmap becomes a map16 with 17 keys.
        let mut big = Vec::new();
        rmp::encode::write_map_len(&mut big, 15).unwrap();
        for i in 0..15 {
            rmp::encode::write_str(&mut big, &format!("k{i}")).unwrap();
            rmp::encode::write_uint(&mut big, i).unwrap();
        }
        let out = append_fields(&big, &[("x", "y"), ("z", "w")]).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json::to_json(&out).unwrap()).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 17);
        assert_eq!(v["z"], "w");
        assert!(append_fields(&[0x91, 0x01], &[("a", "b")]).is_none());
    }

    #[tokio::test]
    async fn a_file_gets_one_json_line_per_event_and_stops_at_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        let metrics = Metrics::new();
        let from = Component::output("cw");
        let dl = DeadLetter::File(DeadLetterFile::open(&path, 450).unwrap());
        let batch = Batch::new(
            Bytes::from_static(b"app"),
            vec![
                Event {
                    time_ns: 5,
                    body: record("x")
                };
                2
            ],
        );
        dl.send(&from, &batch, "rejected_by_api", "too old", &metrics)
            .await;
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["reason"], "rejected_by_api");
        assert_eq!(lines[0]["detail"], "too old");
        assert_eq!(lines[0]["output"], "cw");
        assert_eq!(lines[0]["tag"], "app");
        assert_eq!(lines[0]["time_ns"], 5);
        assert_eq!(lines[0]["record"]["log"], "x");
        // The next write would pass 450 bytes: refused whole, counted as an error.
        dl.send(&from, &batch, "rejected_by_api", "too old", &metrics)
            .await;
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        assert!(metrics.encode().contains("reason=\"dead_letter_full\""));
    }
}
