//! The router's own log: `tracing` events on stderr (stdout belongs to the `stdout` output),
//! as text or JSON lines, with repeated messages rate-limited and secrets redacted.
//!
//! - **Level**: `RUST_LOG` when set (full `EnvFilter` syntax), else `[service] log_level`
//!   (Fluent Bit's `Log_Level` maps onto it; `warning` is accepted for `warn`), else `info`.
//! - **Format**: `[service] log_format = "text" | "json"`.
//! - **Rate limit**: [`RateLimited`] lets through at most [`REPEATS_PER_WINDOW`] events with
//!   the same call site and message per [`RATE_WINDOW`]; when the window is over it logs one
//!   line `suppressed K similar messages: <message>` at the original level.
//! - **Secrets**: every secret value — an output's `secrets = { … = "env:…" }`, a forward
//!   `shared_key` / password, and each `${VAR}` value that config expansion
//!   ([`crate::config::expand_env`]) classes as a secret — is registered with
//!   [`register_secret`]; the writer replaces each registered value with `${NAME}` in every line
//!   before it is written, in every form the value can take there: raw, JSON-escaped (`\"`,
//!   `\\`, `\n`, `\u001b`, `\u00e9`), Rust-`Debug`-escaped (`\"`, `\'`, `\u{1b}`),
//!   terminal-sanitised as the text format writes it (`\x1b`), and any two of these in turn (a
//!   `Debug` value inside a JSON line). Config errors pass
//!   through [`redact`] too. Values shorter than [`MIN_SECRET_LEN`] characters, or made only of
//!   digits, are not redacted: they would blank out ordinary words and numbers all over the log.
//!   Nothing in the router logs a config struct with `Debug`; new code must not either.
//! - **Integrity**: after redaction the writer escapes every control character inside a line
//!   ([`escape_controls`]: C0 and C1 controls, DEL, U+2028/U+2029 and the bidirectional
//!   overrides) so a string from the wire — a tag, a PING hostname, a user name — can neither
//!   start a forged log line nor send terminal escape codes. Escapes are JSON's (`\n`,
//!   `\u001b`), so a JSON line stays valid JSON.

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
/// Most secret forms registered (one per form a secret can take); more are not redacted.
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
    let writer = SafeLines(std::io::stderr);
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

/// Each registered secret form (longest first) and the name it is replaced by.
static SECRETS: RwLock<Vec<(String, String)>> = RwLock::new(Vec::new());

/// Never print `value` in the router's log, in any form it can take there; print `${name}`
/// in its place.
pub fn register_secret(name: &str, value: &str) {
    if value.chars().count() < MIN_SECRET_LEN || value.chars().all(|c| c.is_ascii_digit()) {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if secrets.len() >= MAX_SECRETS || secrets.iter().any(|(v, _)| v == value) {
        return;
    }
    for form in logged_forms(value) {
        if !secrets.iter().any(|(v, _)| *v == form) {
            secrets.push((form, name.to_string()));
        }
    }
    // Longest first, so a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
}

/// Every form `value` can take in a log line: raw, and escaped once or twice by JSON or
/// `Debug` (a `Debug`-formatted error inside a JSON line is both).
fn logged_forms(value: &str) -> Vec<String> {
    let escapes: [fn(&str) -> String; 5] = [
        json_escaped,
        json_ascii_escaped,
        debug_escaped,
        debug_char_escaped,
        terminal_sanitized,
    ];
    let mut forms = vec![value.to_string()];
    let mut last = forms.clone();
    for _ in 0..2 {
        let mut next = Vec::new();
        for form in &last {
            for escape in escapes {
                let escaped = escape(form);
                if !forms.contains(&escaped) {
                    forms.push(escaped.clone());
                    next.push(escaped);
                }
            }
        }
        last = next;
    }
    forms
}

/// As `serde_json` writes a string, without the quotes.
fn json_escaped(value: &str) -> String {
    let quoted = serde_json::to_string(value).expect("a string serialises");
    quoted[1..quoted.len() - 1].to_string()
}

/// As an ASCII-only JSON encoder writes a string (`\u00e9`, surrogate pairs), without quotes.
fn json_ascii_escaped(value: &str) -> String {
    let mut out = String::new();
    for c in json_escaped(value).chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// As `{:?}` writes a string, without the quotes.
fn debug_escaped(value: &str) -> String {
    let quoted = format!("{value:?}");
    quoted[1..quoted.len() - 1].to_string()
}

/// As `{:?}` writes the string's characters one by one (`\'` escaped too).
fn debug_char_escaped(value: &str) -> String {
    debug_escaped(value).replace('\'', "\\'")
}

/// As `tracing-subscriber`'s text format writes a value: the characters that drive a
/// terminal as `\\x1b`, `\\x07`, `\\x08`, `\\x0c`, `\\x7f`, C1 controls as `\\u{85}`.
fn terminal_sanitized(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            '\u{80}'..='\u{9f}' => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `text` with every registered secret, in any of its forms, replaced by `${NAME}`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = Cow::Borrowed(text);
    for (form, name) in secrets.iter() {
        if out.contains(form.as_str()) {
            out = Cow::Owned(out.replace(form.as_str(), &format!("${{{name}}}")));
        }
    }
    out
}

/// Whether `c` must not appear raw inside a log line: C0 and C1 controls, DEL, the Unicode
/// line and paragraph separators, and the bidirectional embeddings, overrides and isolates.
fn is_unsafe_in_line(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `line` (one formatted event, ending in its `\n`) with every unsafe character before the end
/// escaped as JSON escapes it: `\n`, `\r`, `\t`, else `\uXXXX`.
pub fn escape_controls(line: &str) -> Cow<'_, str> {
    let body = line.strip_suffix('\n').unwrap_or(line);
    if !body.chars().any(is_unsafe_in_line) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 16);
    for c in body.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe_in_line(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    if body.len() < line.len() {
        out.push('\n');
    }
    Cow::Owned(out)
}

/// A [`MakeWriter`] whose writers redact secrets from each formatted line, then escape its
/// control characters.
pub struct SafeLines<M>(pub M);

/// The writer of [`SafeLines`].
pub struct SafeLineWriter<W>(W);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for SafeLines<M> {
    type Writer = SafeLineWriter<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        SafeLineWriter(self.0.make_writer())
    }
}

impl<W: Write> Write for SafeLineWriter<W> {
    /// The formatter writes each event with one `write_all` of the whole line, so a secret
    /// never straddles two calls and the only line break that ends a line is the last byte.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let redacted = redact(&text);
        self.0.write_all(escape_controls(&redacted).as_bytes())?;
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

/// An error and its sources on one line, each source added unless the text already says it
/// (`client error (Connect): tcp connect error: Connection refused (os error 111)`): top-level
/// messages alone ("dispatch failure") do not say what happened.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
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
        let layer = RateLimited::new(format_layer(format, SafeLines(out.clone())));
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
    fn secrets_are_redacted_in_every_escaped_form() {
        let secret = "Zq\"Xv\\w'o\nYk-é\u{1b}";
        register_secret("WR_TEST_ESCAPED", secret);
        let debug = format!("{secret:?}");
        let json = serde_json::to_string(secret).unwrap();
        let ascii_json = json.replace('é', "\\u00e9");
        let debug_in_json = serde_json::to_string(&debug).unwrap();
        for shown in [
            secret.to_string(),
            debug.clone(),
            json.clone(),
            ascii_json,
            debug.replace('\'', "\\'"),
            debug_in_json,
            serde_json::to_string(&json).unwrap(),
        ] {
            let line = format!("error: {shown} refused");
            let redacted = redact(&line);
            assert!(
                redacted.contains("${WR_TEST_ESCAPED}"),
                "{line} -> {redacted}"
            );
            assert!(
                !redacted.contains("Xv") && !redacted.contains("Yk"),
                "{line} -> {redacted}"
            );
        }

        // Through both formatters, as a field recorded with `Debug` and inside the message.
        for format in [LogFormat::Text, LogFormat::Json] {
            let out = Captured::default();
            tracing::subscriber::with_default(subscriber(format, &out), || {
                tracing::warn!(key = secret, detail = ?secret, "cannot use {secret}");
            });
            let text = out.text();
            assert_eq!(text.matches("${WR_TEST_ESCAPED}").count(), 3, "{text}");
            assert!(!text.contains("Xv") && !text.contains("Yk"), "{text}");
        }
    }

    #[test]
    fn control_characters_cannot_forge_lines_or_colours() {
        assert_eq!(escape_controls("plain line\n"), "plain line\n");
        assert_eq!(
            escape_controls("a\nb\r\u{1b}[31mc\u{85}d\u{2028}e\u{202e}f\u{7f}\n"),
            "a\\nb\\r\\u001b[31mc\\u0085d\\u2028e\\u202ef\\u007f\n"
        );
        let forged = "web\n2026-01-01T00:00:00Z ERROR forged: disk full\u{1b}[2J";
        for format in [LogFormat::Text, LogFormat::Json] {
            let out = Captured::default();
            tracing::subscriber::with_default(subscriber(format, &out), || {
                tracing::info!(hostname = %forged, "client {forged} connected");
                tracing::info!(tag = forged, "next");
            });
            let text = out.text();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 2, "{text}");
            assert!(!text.contains('\u{1b}'), "{text}");
            assert!(!lines.iter().any(|l| l.starts_with("2026-01-01")), "{text}");
            if format == LogFormat::Json {
                for line in &lines {
                    let value: serde_json::Value = serde_json::from_str(line).unwrap();
                    assert!(value["message"].is_string(), "{line}");
                }
                let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
                assert_eq!(first["hostname"], forged);
            } else {
                assert!(
                    lines[0].contains("client web\\n2026-01-01T00:00:00Z ERROR forged"),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn levels_accept_fluent_bit_spellings() {
        assert_eq!(parse_level("Warning").unwrap(), LevelFilter::WARN);
        assert_eq!(parse_level("debug").unwrap(), LevelFilter::DEBUG);
        assert_eq!(parse_level("off").unwrap(), LevelFilter::OFF);
        assert!(parse_level("loud").unwrap_err().contains("use off, error"));
    }
}
