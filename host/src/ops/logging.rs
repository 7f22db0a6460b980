//! The router's own log: `tracing` events on stderr (stdout belongs to the `stdout` output),
//! as text or JSON lines, with repeated messages rate-limited and secrets redacted.
//!
//! - **Level**: `RUST_LOG` when set (full `EnvFilter` syntax), else `[service] log_level`
//!   (Fluent Bit's `Log_Level` maps onto it; `warning` is accepted for `warn`), else `info`.
//! - **Format**: `[service] log_format = "text" | "json"`.
//! - **Rate limit**: [`RateLimited`] lets through at most [`REPEATS_PER_WINDOW`] events with
//!   the same call site and message per [`RATE_WINDOW`]; when the window is over it logs one
//!   line `suppressed K similar messages: <message>` at the original level.
//! - **Secrets**: every value the config took from the environment (`${VAR}`) and every secret
//!   an output resolves (`secrets = { … = "env:…" }`) is registered with [`register_secret`];
//!   the writer replaces each registered value with `${NAME}` in every line before it is
//!   written, and config errors pass through [`redact`] too. Values shorter than
//!   [`MIN_SECRET_LEN`] characters, or made only of digits, are not redacted: they would blank
//!   out ordinary words and numbers all over the log. Nothing in the router logs a config
//!   struct with `Debug`; new code must not either.

use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};
use tracing::callsite::Identifier;
use tracing::field::{Field, Visit};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Events with the same call site and message let through per window.
pub const REPEATS_PER_WINDOW: u32 = 10;
/// The rate-limit window.
pub const RATE_WINDOW: Duration = Duration::from_secs(1);
/// Distinct messages tracked at once; beyond that, new messages are not limited.
const MAX_TRACKED_MESSAGES: usize = 1024;
/// Shortest value treated as a secret.
pub const MIN_SECRET_LEN: usize = 6;
/// Most secrets registered; more are still redacted from config errors by their caller.
const MAX_SECRETS: usize = 4096;

/// The format of the router's own log lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable: `2024-01-01T00:00:00Z  INFO target: message key=value`.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`).
    Json,
}

/// A log level as written in the config (`warning` and any case accepted).
pub fn parse_level(level: &str) -> Result<LevelFilter, String> {
    match level.trim().to_ascii_lowercase().as_str() {
        "off" => Ok(LevelFilter::OFF),
        "error" => Ok(LevelFilter::ERROR),
        "warn" | "warning" => Ok(LevelFilter::WARN),
        "info" => Ok(LevelFilter::INFO),
        "debug" => Ok(LevelFilter::DEBUG),
        "trace" => Ok(LevelFilter::TRACE),
        other => Err(format!(
            "{other:?} is not a log level; use off, error, warn, info, debug or trace"
        )),
    }
}

/// Install the router's log as the global subscriber. Returns `false` if one was already set
/// (a test harness, or a second call).
pub fn init(level: Option<&str>, format: LogFormat) -> bool {
    let fallback = level
        .and_then(|l| parse_level(l).ok())
        .unwrap_or(LevelFilter::INFO);
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("RUST_LOG={spec:?} is not a valid filter ({e}); using level {fallback}");
            EnvFilter::new(fallback.to_string())
        }),
        _ => EnvFilter::new(fallback.to_string()),
    };
    let writer = Redacting(std::io::stderr);
    let layer = RateLimited::new(format_layer(format, writer));
    tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init()
        .is_ok()
}

/// The formatting layer for `format`, writing to `writer`.
pub fn format_layer<S, W>(format: LogFormat, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Text => Box::new(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false),
        ),
        LogFormat::Json => Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_writer(writer),
        ),
    }
}

// ----- secrets -----

static SECRETS: RwLock<Vec<(String, String)>> = RwLock::new(Vec::new());

/// Never print `value` in the router's log; print `${name}` in its place.
pub fn register_secret(name: &str, value: &str) {
    if value.chars().count() < MIN_SECRET_LEN || value.chars().all(|c| c.is_ascii_digit()) {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if secrets.len() >= MAX_SECRETS || secrets.iter().any(|(_, v)| v == value) {
        return;
    }
    secrets.push((name.to_string(), value.to_string()));
    // Longest first, so a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.1.len()));
}

/// `text` with every registered secret replaced by `${NAME}`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = Cow::Borrowed(text);
    for (name, value) in secrets.iter() {
        if out.contains(value.as_str()) {
            out = Cow::Owned(out.replace(value.as_str(), &format!("${{{name}}}")));
        }
    }
    out
}

/// A [`MakeWriter`] whose writers redact secrets from each formatted line.
pub struct Redacting<M>(pub M);

/// The writer of [`Redacting`].
pub struct RedactingWriter<W>(W);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(self.0.make_writer())
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    /// The formatter writes each event with one `write_all` of the whole line, so a secret
    /// never straddles two calls.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

// ----- rate limit -----

/// Wraps a formatting layer: repeated messages beyond [`REPEATS_PER_WINDOW`] per
/// [`RATE_WINDOW`] are suppressed, then summarised in one line.
pub struct RateLimited<L> {
    inner: L,
    state: Mutex<LimiterState>,
}

struct LimiterState {
    messages: HashMap<(Identifier, String), Repeats>,
    last_sweep: Instant,
}

struct Repeats {
    window_start: Instant,
    seen: u32,
    suppressed: u64,
    metadata: &'static Metadata<'static>,
}

struct Summary {
    metadata: &'static Metadata<'static>,
    message: String,
    suppressed: u64,
}

impl<L> RateLimited<L> {
    /// Limit what reaches `inner`.
    pub fn new(inner: L) -> Self {
        RateLimited {
            inner,
            state: Mutex::new(LimiterState {
                messages: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// Whether `event` (with `message`) may pass; summaries of windows that ended are added
    /// to `summaries`.
    fn admit(
        &self,
        metadata: &'static Metadata<'static>,
        message: &str,
        summaries: &mut Vec<Summary>,
    ) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if now.duration_since(state.last_sweep) >= RATE_WINDOW {
            state.last_sweep = now;
            state.messages.retain(|(_, message), r| {
                if now.duration_since(r.window_start) < RATE_WINDOW {
                    return true;
                }
                if r.suppressed > 0 {
                    summaries.push(Summary {
                        metadata: r.metadata,
                        message: message.clone(),
                        suppressed: r.suppressed,
                    });
                }
                false
            });
        }
        let key = (metadata.callsite(), message.to_string());
        if !state.messages.contains_key(&key) && state.messages.len() >= MAX_TRACKED_MESSAGES {
            return true;
        }
        let r = state.messages.entry(key).or_insert(Repeats {
            window_start: now,
            seen: 0,
            suppressed: 0,
            metadata,
        });
        if now.duration_since(r.window_start) >= RATE_WINDOW {
            if r.suppressed > 0 {
                summaries.push(Summary {
                    metadata,
                    message: message.to_string(),
                    suppressed: r.suppressed,
                });
            }
            *r = Repeats {
                window_start: now,
                seen: 0,
                suppressed: 0,
                metadata,
            };
        }
        r.seen += 1;
        if r.seen <= REPEATS_PER_WINDOW {
            true
        } else {
            r.suppressed += 1;
            false
        }
    }
}

#[derive(Default)]
struct MessageVisitor(Option<String>);

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = Some(value.to_string());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S, L> Layer<S> for RateLimited<L>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }
    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }
    fn register_callsite(
        &self,
        metadata: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        self.inner.register_callsite(metadata)
    }
    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        self.inner.on_new_span(attrs, id, ctx);
    }
    fn on_record(
        &self,
        span: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        self.inner.on_record(span, values, ctx);
    }
    fn on_follows_from(
        &self,
        span: &tracing::span::Id,
        follows: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        self.inner.on_follows_from(span, follows, ctx);
    }
    fn on_enter(&self, id: &tracing::span::Id, ctx: Context<'_, S>) {
        self.inner.on_enter(id, ctx);
    }
    fn on_exit(&self, id: &tracing::span::Id, ctx: Context<'_, S>) {
        self.inner.on_exit(id, ctx);
    }
    fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
        self.inner.on_close(id, ctx);
    }
    fn on_id_change(&self, old: &tracing::span::Id, new: &tracing::span::Id, ctx: Context<'_, S>) {
        self.inner.on_id_change(old, new, ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        let Some(message) = visitor.0 else {
            return self.inner.on_event(event, ctx);
        };
        let mut summaries = Vec::new();
        let admitted = self.admit(metadata, &message, &mut summaries);
        for s in summaries {
            let fields = s.metadata.fields();
            let Some(message_field) = fields.field("message") else {
                continue;
            };
            let text = format!(
                "suppressed {} similar messages: {}",
                s.suppressed, s.message
            );
            let value = tracing::field::display(&text);
            let values = [(&message_field, Some(&value as &dyn tracing::Value))];
            let valueset = fields.value_set(&values);
            self.inner
                .on_event(&Event::new(s.metadata, &valueset), ctx.clone());
        }
        if admitted {
            self.inner.on_event(event, ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl<'a> MakeWriter<'a> for Captured {
        type Writer = CapturedWriter;
        fn make_writer(&'a self) -> CapturedWriter {
            CapturedWriter(self.0.clone())
        }
    }
    struct CapturedWriter(Arc<Mutex<Vec<u8>>>);
    impl Write for CapturedWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn subscriber(format: LogFormat, out: &Captured) -> impl Subscriber + Send + Sync {
        let layer = RateLimited::new(format_layer(format, Redacting(out.clone())));
        tracing_subscriber::registry()
            .with(LevelFilter::INFO)
            .with(layer)
    }

    #[test]
    fn repeated_messages_are_limited_then_summarised() {
        let out = Captured::default();
        tracing::subscriber::with_default(subscriber(LogFormat::Text, &out), || {
            for i in 0..100 {
                tracing::warn!(attempt = i, "destination refused the batch");
            }
            tracing::info!("a different message");
            std::thread::sleep(RATE_WINDOW + Duration::from_millis(50));
            tracing::info!("after the window");
        });
        let text = out.text();
        assert_eq!(
            text.matches("destination refused the batch").count(),
            REPEATS_PER_WINDOW as usize + 1,
            "{text}"
        );
        assert!(
            text.contains("suppressed 90 similar messages: destination refused the batch"),
            "{text}"
        );
        assert_eq!(text.matches("a different message").count(), 1);
        assert!(text.contains("after the window"));
    }

    #[test]
    fn secrets_are_replaced_by_their_variable_name_in_json_and_errors() {
        register_secret("WR_TEST_API_KEY", "sk-test-5f9a2c-verysecret");
        register_secret("WR_TEST_SHORT", "abc");
        register_secret("WR_TEST_NUMBER", "123456789");
        let out = Captured::default();
        tracing::subscriber::with_default(subscriber(LogFormat::Json, &out), || {
            tracing::error!(
                header = "DD-API-KEY: sk-test-5f9a2c-verysecret",
                "request failed"
            );
        });
        let text = out.text();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["header"], "DD-API-KEY: ${WR_TEST_API_KEY}", "{text}");
        assert_eq!(line["level"], "ERROR");
        assert!(!text.contains("verysecret"));
        assert_eq!(
            redact("key=sk-test-5f9a2c-verysecret abc 123456789"),
            "key=${WR_TEST_API_KEY} abc 123456789"
        );
    }

    #[test]
    fn levels_accept_fluent_bit_spellings() {
        assert_eq!(parse_level("Warning").unwrap(), LevelFilter::WARN);
        assert_eq!(parse_level("debug").unwrap(), LevelFilter::DEBUG);
        assert_eq!(parse_level("off").unwrap(), LevelFilter::OFF);
        assert!(parse_level("loud").unwrap_err().contains("use off, error"));
    }
}
