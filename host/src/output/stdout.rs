//! `stdout`: one JSON line per event —
//! `{"tag":"app","time":"2026-11-21T04:46:02.123456789Z","time_ns":…,"record":{…}}`.
//! Invalid UTF-8 in tags and records is mapped reversibly: each bad byte becomes U+E000 + the
//! byte ([`crate::event::json`]).

use super::component::{BuildFuture, OutputComponent, OutputContext, OutputTask};
use super::{DeliveryError, DeliveryProgress, Output};
use crate::event::{Batch, json};
use crate::time::rfc3339;
use std::fmt::Write as _;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// `type = "stdout"`: no keys of its own.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {}

impl OutputComponent for StdoutConfig {
    fn build<'a>(&'a self, _cx: OutputContext<'a>, task: OutputTask) -> BuildFuture<'a> {
        Box::pin(async move { Ok(task.run(StdoutOutput::new())) })
    }
}

/// The `stdout` output (or any writer, for tests).
pub struct StdoutOutput<W = tokio::io::Stdout> {
    writer: W,
    line: String,
}

impl StdoutOutput {
    /// An output writing to the process's standard output.
    pub fn new() -> Self {
        Self::with_writer(tokio::io::stdout())
    }
}

impl Default for StdoutOutput {
    fn default() -> Self {
        Self::new()
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> StdoutOutput<W> {
    /// An output writing JSON lines to `writer`.
    pub fn with_writer(writer: W) -> Self {
        StdoutOutput {
            writer,
            line: String::new(),
        }
    }
}

/// Render one batch as JSON lines into `out`.
pub fn render_batch(batch: &Batch, out: &mut String) {
    let mut tag = String::new();
    // A tag is rendered like any string value: quoted, escaped, lossy.
    json::write_json(&msgpack_str(&batch.tag), &mut tag).expect("a msgpack str always renders");
    for event in &batch.events {
        let start = out.len();
        write!(
            out,
            "{{\"tag\":{tag},\"time\":\"{}\",\"time_ns\":{},\"record\":",
            rfc3339(event.time_ns),
            event.time_ns
        )
        .unwrap();
        if let Err(e) = json::write_json(&event.body, out) {
            // The decoder only passes complete msgpack values, so this is a bug; keep the line.
            out.truncate(start);
            write!(
                out,
                "{{\"tag\":{tag},\"time_ns\":{},\"error\":\"{e}\"",
                event.time_ns
            )
            .unwrap();
        }
        out.push_str("}\n");
    }
}

fn msgpack_str(bytes: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(bytes.len() + 5);
    rmp::encode::write_str_len(&mut buf, bytes.len() as u32).unwrap();
    buf.extend_from_slice(bytes);
    buf
}

impl<W: AsyncWrite + Unpin + Send + 'static> Output for StdoutOutput<W> {
    async fn deliver(
        &mut self,
        batch: &Batch,
        _progress: &mut DeliveryProgress,
    ) -> Result<(), DeliveryError> {
        self.line.clear();
        render_batch(batch, &mut self.line);
        let result = async {
            self.writer.write_all(self.line.as_bytes()).await?;
            self.writer.flush().await
        }
        .await;
        result.map_err(|e| DeliveryError::Permanent {
            reason: "stdout_write_failed".into(),
            detail: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use bytes::Bytes;

    #[test]
    fn one_json_line_per_event_with_mapped_tag() {
        let body = Bytes::from_static(&[0x81, 0xa3, b'l', b'o', b'g', 0xa2, b'h', b'i']);
        let batch = Batch::new(
            Bytes::from_static(b"app\xff"),
            vec![Event { time_ns: 5, body }; 2],
        );
        let mut out = String::new();
        render_batch(&batch, &mut out);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0]["tag"], "app\u{E0FF}",
            "invalid UTF-8 mapped as Fluent Bit does"
        );
        assert_eq!(lines[0]["time_ns"], 5);
        assert_eq!(lines[0]["record"]["log"], "hi");
    }
}
