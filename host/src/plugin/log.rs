//! A plugin's log: `log.emit` and the plugin's stdout/stderr end up here. Lines are tagged
//! with the plugin's id, truncated at [`MAX_MESSAGE_BYTES`] and rate-limited per plugin (a token
//! bucket shared by all its instances); what the limit suppresses is counted and reported with
//! the next line that gets through.

use super::bindings::Level;
use prometheus_client::metrics::counter::Counter;
use std::sync::Mutex;
use std::time::Instant;

/// Longest message kept, in bytes; longer ones are cut at a character boundary and marked.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Lines a plugin may log per second, sustained.
pub const LINES_PER_SECOND: f64 = 50.0;
/// Lines a plugin may log in a burst.
pub const BURST_LINES: f64 = 200.0;
/// Most lines a capturing log keeps (`wasm-router test`).
pub const MAX_CAPTURED_LINES: usize = 10_000;

/// One line a plugin logged, as captured by `wasm-router test`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// Severity.
    pub level: Level,
    /// The message, truncated to [`MAX_MESSAGE_BYTES`].
    pub message: String,
}

/// Where a plugin's lines go.
enum Sink {
    /// The router's own log (tracing), target `wasm_router::plugin::guest`.
    Tracing,
    /// Kept in memory for `wasm-router test` (bounded by [`MAX_CAPTURED_LINES`]).
    Capture(Vec<LogLine>),
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
    suppressed: u64,
}

/// The log of one plugin, shared by all of its instances.
pub struct PluginLog {
    plugin: String,
    state: Mutex<(Sink, Bucket)>,
    suppressed_lines: Counter,
}

impl PluginLog {
    /// A log that writes into the router's log, tagged with `plugin`.
    pub fn to_tracing(plugin: &str) -> Self {
        Self::with_sink(plugin, Sink::Tracing)
    }

    /// A log that keeps the lines for [`take_captured`](Self::take_captured).
    pub fn capturing(plugin: &str) -> Self {
        Self::with_sink(plugin, Sink::Capture(Vec::new()))
    }

    fn with_sink(plugin: &str, sink: Sink) -> Self {
        let bucket = Bucket {
            tokens: BURST_LINES,
            refilled: Instant::now(),
            suppressed: 0,
        };
        PluginLog {
            plugin: plugin.to_string(),
            state: Mutex::new((sink, bucket)),
            suppressed_lines: Counter::default(),
        }
    }

    /// Count the lines the rate limit suppresses in `counter` too.
    pub fn counting_suppressed(mut self, counter: Counter) -> Self {
        self.suppressed_lines = counter;
        self
    }

    /// The plugin id lines are tagged with.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// Log one message. Returns false when the rate limit suppressed it.
    pub fn emit(&self, level: Level, message: &str) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (sink, bucket) = &mut *state;
        let now = Instant::now();
        let refill = now.duration_since(bucket.refilled).as_secs_f64() * LINES_PER_SECOND;
        bucket.tokens = (bucket.tokens + refill).min(BURST_LINES);
        bucket.refilled = now;
        if bucket.tokens < 1.0 {
            bucket.suppressed += 1;
            self.suppressed_lines.inc();
            return false;
        }
        bucket.tokens -= 1.0;
        let suppressed = std::mem::take(&mut bucket.suppressed);
        let message = truncate(message);
        match sink {
            Sink::Tracing => write_tracing(&self.plugin, level, &message, suppressed),
            Sink::Capture(lines) => {
                if suppressed > 0 && lines.len() < MAX_CAPTURED_LINES {
                    let note = format!("({suppressed} lines suppressed by the rate limit)");
                    lines.push(LogLine {
                        level: Level::Warn,
                        message: note,
                    });
                }
                if lines.len() < MAX_CAPTURED_LINES {
                    lines.push(LogLine {
                        level,
                        message: message.into_owned(),
                    });
                }
            }
        }
        true
    }

    /// The captured lines so far (empty for a tracing log); the capture starts again empty.
    pub fn take_captured(&self) -> Vec<LogLine> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match &mut state.0 {
            Sink::Capture(lines) => std::mem::take(lines),
            Sink::Tracing => Vec::new(),
        }
    }
}

fn truncate(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message.into();
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… ({} bytes truncated)",
        &message[..end],
        message.len() - end
    )
    .into()
}

fn write_tracing(plugin: &str, level: Level, message: &str, suppressed: u64) {
    macro_rules! event {
        ($lvl:expr) => {
            if suppressed > 0 {
                tracing::event!(target: "wasm_router::plugin::guest", $lvl, plugin, suppressed, "{message}")
            } else {
                tracing::event!(target: "wasm_router::plugin::guest", $lvl, plugin, "{message}")
            }
        };
    }
    match level {
        Level::Trace => event!(tracing::Level::TRACE),
        Level::Debug => event!(tracing::Level::DEBUG),
        Level::Info => event!(tracing::Level::INFO),
        Level::Warn => event!(tracing::Level::WARN),
        Level::Error => event!(tracing::Level::ERROR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_at_a_char_boundary() {
        let log = PluginLog::capturing("p");
        log.emit(Level::Info, &"é".repeat(3000));
        let lines = log.take_captured();
        assert!(lines[0].message.len() < MAX_MESSAGE_BYTES + 40);
        assert!(
            lines[0].message.ends_with("(1904 bytes truncated)"),
            "{}",
            &lines[0].message[4000..]
        );
    }

    #[test]
    fn bursts_are_rate_limited_and_the_suppressed_count_is_reported() {
        let log = PluginLog::capturing("p");
        let passed = (0..1000)
            .filter(|i| log.emit(Level::Debug, &format!("line {i}")))
            .count();
        // The burst gets through; sustaining 1000 lines would take many seconds of refill.
        assert!((200..1000).contains(&passed), "{passed}");
        {
            let mut state = log.state.lock().unwrap();
            state.1.tokens = 1.0;
        }
        assert!(log.emit(Level::Info, "after"));
        let lines = log.take_captured();
        let note = &lines[lines.len() - 2];
        assert!(note.message.contains("lines suppressed"), "{note:?}");
        assert_eq!(lines.last().unwrap().message, "after");
    }
}
