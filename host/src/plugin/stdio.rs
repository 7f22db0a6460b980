//! A plugin's stdout and stderr: each complete line becomes a line of the plugin's log (stdout
//! at `info`, stderr at `warn` — a Rust guest's panic message arrives this way), under the same
//! truncation and rate limit as `log.emit`. Writes always succeed, so a chatty plugin can never
//! fail on, or block in, `println!`.

use super::bindings::Level;
use super::log::{MAX_MESSAGE_BYTES, PluginLog};
use bytes::Bytes;
use std::sync::Arc;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Most bytes accepted per write permit.
const WRITE_PERMIT: usize = 64 * 1024;

/// A stdout or stderr that writes lines into a plugin's log.
#[derive(Clone)]
pub struct PluginStdio {
    log: Arc<PluginLog>,
    level: Level,
}

impl PluginStdio {
    /// Lines written here go to `log` at `level`.
    pub fn new(log: Arc<PluginLog>, level: Level) -> Self {
        PluginStdio { log, level }
    }
}

impl IsTerminal for PluginStdio {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PluginStdio {
    /// Only WASIp3 guests use this, and the host links no WASIp3: discard.
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(tokio::io::sink())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineStream {
            log: self.log.clone(),
            level: self.level,
            line: Vec::new(),
        })
    }
}

struct LineStream {
    log: Arc<PluginLog>,
    level: Level,
    line: Vec<u8>,
}

impl LineStream {
    /// Emit the current line; blank lines (a panic message starts with one) are skipped.
    fn emit_line(&mut self) {
        let text = String::from_utf8_lossy(&self.line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        if !text.trim().is_empty() {
            self.log.emit(self.level, text);
        }
        self.line.clear();
    }
}

impl OutputStream for LineStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            match rest.iter().position(|b| *b == b'\n') {
                Some(end) => {
                    self.push(&rest[..end]);
                    self.emit_line();
                    rest = &rest[end + 1..];
                }
                None => {
                    self.push(rest);
                    rest = &[];
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl LineStream {
    /// Append to the current line; a line longer than the message cap is emitted in pieces.
    fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = MAX_MESSAGE_BYTES - self.line.len();
            let take = room.min(bytes.len());
            self.line.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.line.len() >= MAX_MESSAGE_BYTES {
                self.emit_line();
            }
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineStream {
    async fn ready(&mut self) {}
}

impl Drop for LineStream {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.emit_line();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_become_log_lines() {
        let log = Arc::new(PluginLog::capturing("p"));
        let mut s = PluginStdio::new(log.clone(), Level::Warn).p2_stream();
        s.write(Bytes::from_static(b"panicked at src/lib.rs:3:5:\r\nboom"))
            .unwrap();
        s.write(Bytes::from_static(b"!\n\n")).unwrap();
        s.write(Bytes::from_static(b"partial")).unwrap();
        drop(s);
        let lines: Vec<String> = log.take_captured().into_iter().map(|l| l.message).collect();
        assert_eq!(lines, ["panicked at src/lib.rs:3:5:", "boom!", "partial"]);
    }
}
