//! `type = "exec"`: Fluent Bit's `in_exec`. Runs `command` with `sh -c` every `interval` (or
//! once, `oneshot`) and makes each line it prints on stdout a record: `{"exec": "<line>"}`, or
//! what `parser` makes of the line. FireLens configs use it to publish the router's own metrics
//! (`curl -s http://127.0.0.1:2020/api/v1/metrics/prometheus`) and to clean up old log files.
//!
//! - A run starts only when the previous one has exited: a command that hangs delays the next
//!   run (counted as `interval_overrun`) instead of piling up copies. There is no timeout, as in
//!   Fluent Bit: a command may stream lines for as long as it likes (`tail -F`).
//! - Lines are pushed into the pipeline as they arrive; while its buffers are full the input
//!   stops reading, so the command blocks on its stdout and no line is dropped.
//! - A line longer than `buf_size` is skipped whole (`record_too_large`); one the parser cannot
//!   read is dropped (`parse_failed`). A command that cannot start (`spawn_failed`) or exits
//!   non-zero or by a signal (`command_failed`) is logged and counted.
//! - `exit_after_oneshot`: once the command has exited and its lines are in the buffers, the
//!   router shuts down as on SIGTERM (delivering what it holds), exiting 0, or with the
//!   command's exit code under `propagate_exit_code` (128 + the signal when it was killed, as a
//!   shell reports it).
//! - At shutdown a running command's process group gets SIGTERM (as Fluent Bit does); its lines
//!   are read until it exits or the input drain time ends, then the group gets SIGKILL.

use super::{BindError, InputEnd};
use crate::config::{ByteSize, DurationStr, positive_size};
use crate::event::record::{write_map_len, write_str};
use crate::event::{Batch, Event, now_ns};
use crate::ops::metrics::{Component, Metrics};
use crate::ops::shutdown::Shutdown;
use crate::parsers::{Parser, ParserCatalog, command_line_files};
use crate::pipeline::Pipeline;
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

/// Default `buf_size`: the longest line (Fluent Bit's 4096 bytes).
pub const DEFAULT_BUF_SIZE: u64 = 4096;
/// Most bytes `buf_size` may be: one line is held whole in memory.
pub const MAX_BUF_SIZE: u64 = 64 << 20;
/// Default `interval` (Fluent Bit's `Interval_Sec 1`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The key of a line in its record, as Fluent Bit names it.
pub const LINE_KEY: &str = "exec";
/// The exit code reported for a command that could not be started (the shell's "not found").
const SPAWN_FAILED_CODE: u8 = 127;

/// `type = "exec"` under `[[inputs]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecInputConfig {
    /// A name for metrics and logs; default `exec`.
    #[serde(default)]
    pub name: Option<String>,
    /// The command, run with `sh -c` (Fluent Bit `Command`).
    pub command: String,
    /// The tag of every record (default `exec`; Fluent Bit: the instance name, `exec.0`).
    #[serde(default)]
    pub tag: Option<String>,
    /// Time from one run's start to the next (default 1 s; Fluent Bit `Interval_Sec` +
    /// `Interval_NSec`). A run still going at the next start delays it.
    #[serde(default)]
    pub interval: Option<DurationStr>,
    /// Parse each line with this parser (Fluent Bit `Parser`, any format) instead of making it
    /// `{"exec": "<line>"}`.
    #[serde(default)]
    pub parser: Option<String>,
    /// Files with `[PARSER]` sections (besides the built-in `json` and `docker` and the
    /// command line's `-R` files).
    #[serde(default)]
    pub parsers_files: Vec<PathBuf>,
    /// The longest line (default 4096 bytes, Fluent Bit `Buf_Size`); a longer one is skipped
    /// and counted (`record_too_large`).
    #[serde(default)]
    pub buf_size: Option<ByteSize>,
    /// Run the command once, at start (Fluent Bit `Oneshot`).
    #[serde(default)]
    pub oneshot: bool,
    /// Shut the router down once the oneshot command has exited and its lines are buffered
    /// (Fluent Bit `Exit_After_Oneshot`; implies `oneshot`).
    #[serde(default)]
    pub exit_after_oneshot: bool,
    /// With `exit_after_oneshot`: the router exits with the command's exit code (Fluent Bit
    /// `Propagate_Exit_Code`).
    #[serde(default)]
    pub propagate_exit_code: bool,
}

impl ExecInputConfig {
    /// Check the keys, adding one problem per mistake, each starting with `key` (`inputs[0]`).
    pub fn validate(&self, key: &str, problems: &mut Vec<String>) {
        if self.command.trim().is_empty() {
            problems.push(format!(
                "{key}.command is empty; e.g. `command = \"df -k /\"`"
            ));
        }
        if self.interval.is_some_and(|i| i.0.is_zero()) {
            problems.push(format!("{key}.interval must be more than 0, e.g. \"10s\""));
        }
        positive_size(key, "buf_size", self.buf_size, "\"4KiB\"", problems);
        if self.buf_size.is_some_and(|b| b.0 > MAX_BUF_SIZE) {
            problems.push(format!(
                "{key}.buf_size must be at most 64MiB (one line is held whole), e.g. \"1MiB\""
            ));
        }
        if self.propagate_exit_code && !self.exit_after_oneshot {
            problems.push(format!(
                "{key}.propagate_exit_code needs `exit_after_oneshot = true` (the exit code is the router's when it exits after the command); set it or remove propagate_exit_code"
            ));
        }
        if let Err(e) = self.resolve_parser() {
            problems.push(format!("{key}.parser: {e}"));
        }
    }

    /// The parser named by `parser`, if any.
    fn resolve_parser(&self) -> Result<Option<Parser>, String> {
        let Some(name) = &self.parser else {
            return Ok(None);
        };
        let mut files = self.parsers_files.clone();
        files.extend(command_line_files());
        ParserCatalog::load(&files)?.resolve(name).map(Some)
    }

    fn oneshot(&self) -> bool {
        self.oneshot || self.exit_after_oneshot
    }
}

/// A started exec input.
pub struct ExecInput {
    component: Component,
    metrics: Arc<Metrics>,
    command: String,
    tag: Bytes,
    every: Duration,
    parser: Option<Parser>,
    max_line: usize,
    oneshot: bool,
    exit_after_oneshot: bool,
    propagate_exit_code: bool,
}

impl ExecInput {
    /// The input of `config` (validated before).
    pub fn new(config: &ExecInputConfig, metrics: Arc<Metrics>) -> Result<Self, BindError> {
        let name = config.name.clone().unwrap_or_else(|| "exec".to_string());
        let parser = config.resolve_parser().map_err(|e| BindError {
            input: name.clone(),
            addr: format!("parser {:?}", config.parser.as_deref().unwrap_or_default()),
            source: std::io::Error::other(e),
        })?;
        Ok(ExecInput {
            component: Component::input(name),
            metrics,
            command: config.command.clone(),
            tag: Bytes::from(config.tag.clone().unwrap_or_else(|| "exec".to_string())),
            every: config.interval.map_or(DEFAULT_INTERVAL, |i| i.0),
            parser,
            max_line: config
                .buf_size
                .map_or(DEFAULT_BUF_SIZE, |b| b.0.min(MAX_BUF_SIZE)) as usize,
            oneshot: config.oneshot(),
            exit_after_oneshot: config.exit_after_oneshot,
            propagate_exit_code: config.propagate_exit_code,
        })
    }

    /// Run the command every interval (or once) until `shutdown`.
    pub async fn run(
        self,
        pipeline: Arc<Pipeline>,
        mut shutdown: Shutdown,
        drain: Duration,
    ) -> InputEnd {
        if self.oneshot {
            let code = self.run_once(&pipeline, &mut shutdown, drain).await;
            if !self.exit_after_oneshot || shutdown.is_triggered() {
                return InputEnd::Stopped;
            }
            tracing::info!(input = %self.component.id, exit_code = code, "the oneshot command exited; shutting down (exit_after_oneshot)");
            return InputEnd::ExitRouter(if self.propagate_exit_code { code } else { 0 });
        }
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait() => return InputEnd::Stopped,
            }
            let started = Instant::now();
            self.run_once(&pipeline, &mut shutdown, drain).await;
            if shutdown.is_triggered() {
                return InputEnd::Stopped;
            }
            if started.elapsed() > self.every {
                tracing::warn!(input = %self.component.id, took = ?started.elapsed(), interval = ?self.every, "the command ran past its interval; the next run started only after it exited");
                self.metrics.error(&self.component, "interval_overrun");
            }
        }
    }

    /// Run the command once, pushing its lines as they come; its exit code as a shell reports
    /// it.
    async fn run_once(&self, pipeline: &Pipeline, shutdown: &mut Shutdown, drain: Duration) -> u8 {
        let spawned = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Its own process group: shutdown stops what the shell started too.
            .process_group(0)
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                tracing::warn!(input = %self.component.id, command = %self.command, error = %e, "cannot start the command");
                self.metrics.error(&self.component, "spawn_failed");
                return SPAWN_FAILED_CODE;
            }
        };
        let mut stopper = Stopper {
            group: child
                .id()
                .and_then(|id| rustix::process::Pid::from_raw(id as i32)),
            kill_at: None,
            drain,
            input: &self.component,
        };
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = LineSplitter::new(self.max_line);
        let mut buf = BytesMut::new();
        loop {
            buf.reserve(self.max_line.clamp(4096, 64 * 1024));
            let read = tokio::select! {
                read = stdout.read_buf(&mut buf) => read,
                // After SIGTERM the command's last lines are still read, until SIGKILL.
                () = stopper.stop(shutdown) => if stopper.killed() { break } else { continue },
            };
            match read {
                Ok(0) => {
                    lines.finish(&mut buf);
                    self.dispatch(lines.take(), pipeline).await;
                    break;
                }
                Ok(_) => {
                    lines.split(&mut buf);
                    self.dispatch(lines.take(), pipeline).await;
                }
                Err(e) => {
                    tracing::warn!(input = %self.component.id, error = %e, "cannot read the command's output");
                    self.metrics.error(&self.component, "read_failed");
                    stopper.signal(rustix::process::Signal::KILL);
                    break;
                }
            }
        }
        drop(stdout);
        // A command may close its stdout and go on running: shutdown stops it here too.
        let waited = loop {
            tokio::select! {
                waited = child.wait() => break waited,
                () = stopper.stop(shutdown) => {}
            }
        };
        match waited {
            Ok(status) => self.exited(status),
            Err(e) => {
                tracing::warn!(input = %self.component.id, error = %e, "cannot wait for the command");
                self.metrics.error(&self.component, "command_failed");
                128
            }
        }
    }

    /// Log and count a failed run; the exit code as a shell reports it.
    fn exited(&self, status: ExitStatus) -> u8 {
        use std::os::unix::process::ExitStatusExt;
        let code = match (status.code(), status.signal()) {
            (Some(code), _) => code as u8,
            (None, Some(signal)) => 128u8.saturating_add(signal as u8),
            (None, None) => 128,
        };
        if !status.success() {
            tracing::warn!(input = %self.component.id, command = %self.command, %status, "the command failed");
            self.metrics.error(&self.component, "command_failed");
        }
        code
    }

    /// Count `lines` and push their records into the pipeline, waiting while buffers are full.
    async fn dispatch(&self, lines: Vec<Line>, pipeline: &Pipeline) {
        let mut events = Vec::new();
        let mut bytes = 0u64;
        for line in lines {
            let text = match line {
                Line::Text(text) => text,
                Line::TooLong => {
                    self.metrics.received(&self.component, 1, 0);
                    self.metrics
                        .events_dropped(&self.component, "record_too_large", 1);
                    continue;
                }
            };
            bytes += text.len() as u64;
            match self.record(&text) {
                Some(event) => events.push(event),
                None => {
                    tracing::debug!(input = %self.component.id, "the parser could not read a line");
                    self.metrics.received(&self.component, 1, text.len() as u64);
                    self.metrics
                        .events_dropped(&self.component, "parse_failed", 1);
                    bytes -= text.len() as u64;
                }
            }
        }
        if events.is_empty() {
            return;
        }
        self.metrics
            .received(&self.component, events.len() as u64, bytes);
        if let Err(e) = pipeline
            .dispatch(Batch::new(self.tag.clone(), events))
            .await
        {
            // The refused push counted its events as dropped.
            tracing::warn!(input = %self.component.id, error = %e, "a buffer refused records of this input");
            self.metrics.error(&self.component, "buffer_refused");
        }
    }

    /// The event of one line: parsed, or `{"exec": line}`; `None` when the parser refuses it.
    fn record(&self, line: &[u8]) -> Option<Event> {
        let now = now_ns();
        match &self.parser {
            Some(parser) => {
                let parsed = parser.parse(line)?;
                Some(Event {
                    time_ns: parsed.time_ns.unwrap_or(now),
                    body: Bytes::from(parsed.body),
                })
            }
            None => {
                let mut body = Vec::with_capacity(line.len() + LINE_KEY.len() + 8);
                write_map_len(&mut body, 1);
                write_str(&mut body, LINE_KEY.as_bytes());
                write_str(&mut body, line);
                Some(Event {
                    time_ns: now,
                    body: Bytes::from(body),
                })
            }
        }
    }
}

/// Stops a running command at shutdown: SIGTERM to its process group (as Fluent Bit does),
/// then SIGKILL once the drain time has passed.
struct Stopper<'a> {
    group: Option<rustix::process::Pid>,
    /// When SIGKILL follows, once SIGTERM was sent.
    kill_at: Option<Instant>,
    drain: Duration,
    input: &'a Component,
}

impl Stopper<'_> {
    fn signal(&self, signal: rustix::process::Signal) {
        if let Some(group) = self.group {
            // The group may be gone already.
            let _ = rustix::process::kill_process_group(group, signal);
        }
    }

    /// Whether SIGKILL was sent.
    fn killed(&self) -> bool {
        self.kill_at.is_some() && self.group.is_none()
    }

    /// Resolves when shutdown sent SIGTERM, and again when the drain time is over and SIGKILL
    /// was sent; then never again.
    async fn stop(&mut self, shutdown: &mut Shutdown) {
        match self.kill_at {
            None => {
                shutdown.wait().await;
                self.signal(rustix::process::Signal::TERM);
                self.kill_at = Some(Instant::now() + self.drain);
            }
            Some(at) if self.group.is_some() => {
                tokio::time::sleep_until(at).await;
                tracing::warn!(input = %self.input.id, "the command did not exit within the drain time after SIGTERM; killing it");
                self.signal(rustix::process::Signal::KILL);
                self.group = None;
            }
            Some(_) => std::future::pending().await,
        }
    }
}

/// One line of output.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A line without its `\n` (and `\r`).
    Text(Vec<u8>),
    /// A line longer than the limit, skipped.
    TooLong,
}

/// Cuts output into lines, sans-io; a line longer than `max` is reported once and skipped up
/// to its end.
struct LineSplitter {
    max: usize,
    /// Inside a line already reported as too long.
    skipping: bool,
    out: Vec<Line>,
}

impl LineSplitter {
    fn new(max: usize) -> Self {
        LineSplitter {
            max,
            skipping: false,
            out: Vec::new(),
        }
    }

    /// Take every complete line off `buf`.
    fn split(&mut self, buf: &mut BytesMut) {
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line = buf.split_to(end + 1);
            self.line(&line[..end]);
        }
        if buf.len() > self.max {
            if !self.skipping {
                self.out.push(Line::TooLong);
                self.skipping = true;
            }
            buf.clear();
        }
    }

    /// The output ended: what is left is the last line.
    fn finish(&mut self, buf: &mut BytesMut) {
        self.split(buf);
        if !buf.is_empty() {
            let rest = buf.split();
            self.line(&rest);
        }
        self.skipping = false;
    }

    fn line(&mut self, line: &[u8]) {
        if std::mem::take(&mut self.skipping) {
            return;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > self.max {
            self.out.push(Line::TooLong);
        } else {
            self.out.push(Line::Text(line.to_vec()));
        }
    }

    fn take(&mut self) -> Vec<Line> {
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ExecInputConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn lines_are_cut_and_a_long_one_is_skipped_whole() {
        let mut s = LineSplitter::new(5);
        let mut buf = BytesMut::from(&b"one\r\ntwo\nthis is"[..]);
        s.split(&mut buf);
        buf.extend_from_slice(b" far too long\nok\nlast");
        s.split(&mut buf);
        s.finish(&mut buf);
        let text = |t: &str| Line::Text(t.as_bytes().to_vec());
        assert_eq!(
            s.take(),
            [
                text("one"),
                text("two"),
                Line::TooLong,
                text("ok"),
                text("last")
            ]
        );
        // Too long within one read, and an empty line.
        let mut buf = BytesMut::from(&b"123456\n\n"[..]);
        s.split(&mut buf);
        assert_eq!(s.take(), [Line::TooLong, text("")]);
    }

    #[test]
    fn mistakes_name_the_key_and_the_fix() {
        let c = parse(
            "command = \" \"\ninterval = \"0s\"\nbuf_size = \"1GiB\"\npropagate_exit_code = true\nparser = \"nope\"\n",
        );
        let mut problems = Vec::new();
        c.validate("inputs[3]", &mut problems);
        let text = problems.join("\n");
        for needle in [
            "inputs[3].command is empty",
            "inputs[3].interval must be more than 0",
            "inputs[3].buf_size must be at most 64MiB",
            "inputs[3].propagate_exit_code needs `exit_after_oneshot = true`",
            "inputs[3].parser: parser `nope` is not defined",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        let mut problems = Vec::new();
        parse("command = \"date\"\nparser = \"json\"\nexit_after_oneshot = true\n")
            .validate("inputs[0]", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_line_becomes_an_exec_record_or_what_the_parser_makes_of_it() {
        let plain = ExecInput::new(&parse("command = \"x\"\n"), Metrics::new()).unwrap();
        let event = plain.record(b"hello").unwrap();
        let v: serde_json::Value = rmp_serde::from_slice(&event.body).unwrap();
        assert_eq!(v, serde_json::json!({"exec": "hello"}));
        let parsed = ExecInput::new(
            &parse("command = \"x\"\nparser = \"json\"\n"),
            Metrics::new(),
        )
        .unwrap();
        let event = parsed.record(br#"{"a":1}"#).unwrap();
        let v: serde_json::Value = rmp_serde::from_slice(&event.body).unwrap();
        assert_eq!(v, serde_json::json!({"a": 1}));
        assert!(parsed.record(b"not json").is_none());
        assert!(parse("command = \"x\"\nexit_after_oneshot = true\n").oneshot());
    }
}
