//! Configuration: the native TOML model, `${VAR}` expansion and validation.
//!
//! Loading is two steps: [`load`] parses a file into [`Config`] (serde, unknown keys refused
//! with the key and its position), then [`Config::validate`] checks what serde cannot (patterns,
//! addresses, ranges) without building anything, so `wasm-router validate` stops there.

mod expand;
#[cfg(test)]
mod extreme_values_tests;
pub mod fluentbit;
mod units;

pub use expand::expand_env;
pub use units::{ByteSize, DurationStr};

use crate::buffer::{FsyncPolicy, WhenFull};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The configuration the router runs when it is given none: forward on 127.0.0.1:24224 → stdout.
pub const EMBEDDED_DEFAULT: &str = r#"
[service]
grace = "5s"

[[inputs]]
type = "forward"
listen = "127.0.0.1:24224"

[[outputs]]
type = "stdout"
match = "*"
"#;

/// A configuration error: which file, where, what is wrong and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    /// The file (or `<embedded default>`).
    pub file: String,
    /// What is wrong, where, and the fix.
    pub message: String,
}

/// The whole configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Process-wide settings.
    #[serde(default)]
    pub service: ServiceConfig,
    /// Where events come from.
    #[serde(default)]
    pub inputs: Vec<InputConfig>,
    /// Filters, applied in this order to the tags they match.
    #[serde(default)]
    pub filters: Vec<FilterConfig>,
    /// Where events go; every output whose `match` covers a tag gets a copy.
    #[serde(default)]
    pub outputs: Vec<OutputConfig>,
}

/// `[service]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// How long shutdown may take to deliver what was received (e.g. `"30s"`).
    #[serde(default = "default_grace")]
    pub grace: DurationStr,
    /// Address of the health and metrics HTTP server; absent = off.
    #[serde(default)]
    pub http_listen: Option<String>,
    /// The router's own log level (`error`, `warn`, `info`, `debug`, `trace`, `off`);
    /// `RUST_LOG` overrides it.
    #[serde(default)]
    pub log_level: Option<String>,
    /// The router's own log format: `text` (default) or `json` (one object per line).
    #[serde(default)]
    pub log_format: crate::ops::logging::LogFormat,
    /// An output counts as stuck on `/api/v1/health/delivery` when events have waited this long
    /// without a successful delivery (default `"60s"`).
    #[serde(default = "default_delivery_stuck_after")]
    pub delivery_stuck_after: DurationStr,
    /// Reload plugins and this config when one of their files changes (default `true`;
    /// SIGHUP and `POST /api/v2/reload` always reload).
    #[serde(default = "default_true")]
    pub reload_on_change: bool,
    /// Where compiled plugins are cached; absent = the user cache directory.
    #[serde(default)]
    pub plugin_cache_dir: Option<PathBuf>,
    /// Most bytes all memory buffers hold together (e.g. `"64MiB"`); absent = half the cgroup
    /// memory limit when one is visible, else 256MiB (see `buffer::budget`).
    #[serde(default)]
    pub memory_budget: Option<ByteSize>,
    /// First retry delay ceiling of the outputs' exponential backoff with full jitter
    /// (Fluent Bit `scheduler.base`; default `"100ms"`).
    #[serde(default = "default_retry_backoff_base")]
    pub retry_backoff_base: DurationStr,
    /// Largest retry delay (Fluent Bit `scheduler.cap`; default `"30s"`).
    #[serde(default = "default_retry_backoff_cap")]
    pub retry_backoff_cap: DurationStr,
    /// Join lines that Docker / Fargate split at 16 KiB (records with `partial_message`) before
    /// any filter sees them (default `true`).
    #[serde(default = "default_true")]
    pub partial_reassembly: bool,
    /// How long the parts of a split line wait for the rest before they are passed on, marked
    /// `partial_incomplete` (default `"2s"`).
    #[serde(default = "default_partial_flush_timeout")]
    pub partial_flush_timeout: DurationStr,
    /// Longest joined line; longer lines are passed on in pieces of this size, marked
    /// `partial_incomplete` (default `"1MiB"`).
    #[serde(default = "default_partial_max_bytes")]
    pub partial_max_bytes: ByteSize,
}

fn default_retry_backoff_base() -> DurationStr {
    DurationStr(std::time::Duration::from_millis(100))
}

fn default_retry_backoff_cap() -> DurationStr {
    DurationStr::from_secs(30)
}

fn default_partial_flush_timeout() -> DurationStr {
    DurationStr::from_secs(2)
}

fn default_partial_max_bytes() -> ByteSize {
    ByteSize(1 << 20)
}

fn default_grace() -> DurationStr {
    DurationStr::from_secs(30)
}

fn default_delivery_stuck_after() -> DurationStr {
    DurationStr::from_secs(60)
}

fn default_true() -> bool {
    true
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            grace: default_grace(),
            http_listen: None,
            log_level: None,
            log_format: Default::default(),
            delivery_stuck_after: default_delivery_stuck_after(),
            reload_on_change: true,
            plugin_cache_dir: None,
            memory_budget: None,
            retry_backoff_base: default_retry_backoff_base(),
            retry_backoff_cap: default_retry_backoff_cap(),
            partial_reassembly: true,
            partial_flush_timeout: default_partial_flush_timeout(),
            partial_max_bytes: default_partial_max_bytes(),
        }
    }
}

/// One `[[inputs]]` entry.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputConfig {
    /// The Fluentd forward protocol over TCP and/or a unix socket.
    Forward(ForwardInputConfig),
}

/// `type = "forward"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardInputConfig {
    /// A name for metrics and logs; default `forward`.
    #[serde(default)]
    pub name: Option<String>,
    /// TCP address to listen on (`host:port`); absent with a `unix_path` = no TCP listener.
    #[serde(default)]
    pub listen: Option<String>,
    /// Unix socket to create (a stale file there is replaced).
    #[serde(default)]
    pub unix_path: Option<PathBuf>,
    /// Permissions of the unix socket, octal (default `"0666"`, so the Docker daemon can connect).
    #[serde(default)]
    pub unix_perm: Option<String>,
    /// Prepended to every tag received on this input.
    #[serde(default)]
    pub tag_prefix: Option<String>,
    /// Most bytes one request may take before it is complete (default 6,144,000 as Fluent Bit).
    #[serde(default)]
    pub buffer_max_size: Option<ByteSize>,
    /// Most bytes a compressed payload may decompress to (default: `buffer_max_size`).
    #[serde(default)]
    pub decompress_max_size: Option<ByteSize>,
    /// Most TCP connections open at once on this input (default 1024). At the cap, the
    /// longest-idle connection is closed to serve the newcomer.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Most unix-socket connections open at once on this input (default 256), counted apart
    /// from TCP so neither can starve the other. At the cap, the longest-idle one is closed.
    #[serde(default)]
    pub max_unix_connections: Option<usize>,
    /// Close a connection that has sent nothing for this long (default: never; long-lived quiet
    /// log-driver connections are normal). A connection mid-request or waiting on a push is not idle.
    #[serde(default)]
    pub idle_timeout: Option<DurationStr>,
    /// Require the shared-key handshake on the TCP listener (reference forward-protocol.md §6).
    #[serde(default)]
    pub security: Option<crate::input::forward::handshake::SecurityConfig>,
    /// Serve the TCP listener over TLS.
    #[serde(default)]
    pub tls: Option<crate::input::forward::tls::ListenerTlsConfig>,
}

/// One `[[filters]]` entry.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FilterConfig {
    /// A WebAssembly filter plugin.
    Wasm(WasmFilterConfig),
    /// Keep or drop events by regular expressions (Fluent Bit `grep`).
    Grep(crate::filter::grep::GrepConfig),
    /// Append, remove or allow-list keys (Fluent Bit `record_modifier`).
    RecordModifier(crate::filter::record_modifier::RecordModifierConfig),
    /// Set, add, remove, rename, copy keys under conditions (Fluent Bit `modify`).
    Modify(crate::filter::modify::ModifyConfig),
    /// Parse a field with a `json` parser (Fluent Bit `parser`).
    Parser(crate::filter::parser::ParserFilterConfig),
}

impl FilterConfig {
    /// The `type` of this filter, as written in the config.
    pub fn type_name(&self) -> &'static str {
        match self {
            FilterConfig::Wasm(_) => "wasm",
            FilterConfig::Grep(_) => "grep",
            FilterConfig::RecordModifier(_) => "record_modifier",
            FilterConfig::Modify(_) => "modify",
            FilterConfig::Parser(_) => "parser",
        }
    }

    /// `match`.
    pub fn match_pattern(&self) -> Option<&str> {
        match self {
            FilterConfig::Wasm(w) => w.match_.as_deref(),
            FilterConfig::Grep(c) => c.match_pattern(),
            FilterConfig::RecordModifier(c) => c.match_pattern(),
            FilterConfig::Modify(c) => c.match_pattern(),
            FilterConfig::Parser(c) => c.match_pattern(),
        }
    }

    /// `match_regex`.
    pub fn match_regex(&self) -> Option<&str> {
        match self {
            FilterConfig::Wasm(w) => w.match_regex.as_deref(),
            FilterConfig::Grep(c) => c.match_regex(),
            FilterConfig::RecordModifier(c) => c.match_regex(),
            FilterConfig::Modify(c) => c.match_regex(),
            FilterConfig::Parser(c) => c.match_regex(),
        }
    }

    /// `name`.
    pub fn name(&self) -> Option<&str> {
        match self {
            FilterConfig::Wasm(w) => w.name.as_deref(),
            FilterConfig::Grep(c) => c.name(),
            FilterConfig::RecordModifier(c) => c.name(),
            FilterConfig::Modify(c) => c.name(),
            FilterConfig::Parser(c) => c.name(),
        }
    }
}

/// `type = "wasm"` under `[[filters]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmFilterConfig {
    /// Tags this filter sees (Fluent Bit `Match`: `*` wildcards).
    #[serde(rename = "match", default)]
    pub match_: Option<String>,
    /// Tags this filter sees, as a regular expression (Fluent Bit `Match_Regex`).
    #[serde(default)]
    pub match_regex: Option<String>,
    /// A name for metrics and logs; default: the plugin's own name.
    #[serde(default)]
    pub name: Option<String>,
    /// The `.wasm` component.
    pub path: PathBuf,
    /// What happens to a batch when the plugin faults: `fail_open`, `fail_closed` or `dead_letter`.
    #[serde(default)]
    pub on_error: Option<String>,
    /// The plugin's config, handed to its `init` as JSON.
    #[serde(default)]
    pub config: Option<toml::Table>,
    /// Resource limits for each instance.
    #[serde(default)]
    pub limits: PluginLimitsConfig,
}

/// `limits = { … }` of a plugin.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginLimitsConfig {
    /// Linear memory cap per instance (default 64MiB).
    #[serde(default)]
    pub memory: Option<ByteSize>,
    /// Wall-clock budget of one call (default 50ms for filters).
    #[serde(default)]
    pub deadline: Option<DurationStr>,
    /// Recycle an instance after this many calls (default 100000).
    #[serde(default)]
    pub max_calls: Option<u64>,
}

/// One `[[outputs]]` entry.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputConfig {
    /// JSON lines on standard output.
    Stdout(SimpleOutputConfig),
    /// Discard everything (counted as sent).
    Null(SimpleOutputConfig),
    /// Another forward-protocol receiver (an aggregator tier).
    Forward(crate::output::forward::ForwardOutputConfig),
    /// CloudWatch Logs (Fluent Bit `cloudwatch_logs`, the Go `cloudwatch`).
    #[serde(alias = "cloudwatch")]
    CloudwatchLogs(crate::output::cloudwatch::CloudWatchLogsConfig),
    /// Amazon Data Firehose (the Go `firehose`, Fluent Bit `kinesis_firehose`).
    #[serde(alias = "kinesis_firehose")]
    Firehose(crate::output::firehose::FirehoseConfig),
    /// S3 objects (Fluent Bit `s3`).
    S3(crate::output::s3::S3Config),
    /// A WebAssembly output plugin (world `output`): the plugin encodes, the router sends.
    Wasm(crate::output::wasm::WasmOutputConfig),
}

impl OutputConfig {
    /// The `type` of this output, as written in the config.
    pub fn type_name(&self) -> &'static str {
        match self {
            OutputConfig::Stdout(_) => "stdout",
            OutputConfig::Null(_) => "null",
            OutputConfig::Forward(_) => "forward",
            OutputConfig::CloudwatchLogs(_) => "cloudwatch_logs",
            OutputConfig::Firehose(_) => "firehose",
            OutputConfig::S3(_) => "s3",
            OutputConfig::Wasm(_) => "wasm",
        }
    }

    /// The routing keys every output has.
    pub fn routing(&self) -> &dyn OutputRouting {
        match self {
            OutputConfig::Stdout(c) | OutputConfig::Null(c) => c,
            OutputConfig::Forward(c) => c,
            OutputConfig::CloudwatchLogs(c) => c,
            OutputConfig::Firehose(c) => c,
            OutputConfig::S3(c) => c,
            OutputConfig::Wasm(c) => c,
        }
    }
}

/// The keys every output config has: `match` / `match_regex`, `name` and `buffer`; and the
/// delivery keys `retry_until`, `retry_limit` and `dead_letter`.
/// Each output's config struct declares these fields and implements this trait with
/// [`impl_output_routing!`](crate::impl_output_routing).
pub trait OutputRouting {
    /// `match`.
    fn match_pattern(&self) -> Option<&str>;
    /// `match_regex`.
    fn match_regex(&self) -> Option<&str>;
    /// `name`.
    fn name(&self) -> Option<&str>;
    /// `buffer`.
    fn buffer(&self) -> &BufferConfig;
    /// `retry_until`: how long after a batch was buffered it is retried (default 24h).
    fn retry_until(&self) -> Option<DurationStr> {
        None
    }
    /// `retry_limit`: most retries of one batch (Fluent Bit `Retry_Limit`); absent = until
    /// `retry_until`.
    fn retry_limit(&self) -> Option<u32> {
        None
    }
    /// `dead_letter`: where events that cannot be delivered go, with the reason.
    fn dead_letter(&self) -> Option<&DeadLetterConfig> {
        None
    }
}

/// Implements [`OutputRouting`] for a config struct.
///
/// `impl_output_routing!(T, delivery)` — the form every output should use — needs the fields
/// `match_`, `match_regex`, `name`, `buffer`, `retry_until`, `retry_limit` and `dead_letter`:
///
/// ```ignore
/// #[serde(default)] pub retry_until: Option<DurationStr>,
/// #[serde(default)] pub retry_limit: Option<u32>,
/// #[serde(default)] pub dead_letter: Option<DeadLetterConfig>,
/// ```
///
/// `impl_output_routing!(T)` needs only the first four; the output then retries for the
/// default `retry_until` and has no dead-letter destination.
#[macro_export]
macro_rules! impl_output_routing {
    ($t:ty) => {
        impl $crate::config::OutputRouting for $t {
            $crate::impl_output_routing!(@routing);
        }
    };
    ($t:ty, delivery) => {
        impl $crate::config::OutputRouting for $t {
            $crate::impl_output_routing!(@routing);
            fn retry_until(&self) -> Option<$crate::config::DurationStr> {
                self.retry_until
            }
            fn retry_limit(&self) -> Option<u32> {
                self.retry_limit
            }
            fn dead_letter(&self) -> Option<&$crate::config::DeadLetterConfig> {
                self.dead_letter.as_ref()
            }
        }
    };
    (@routing) => {
        fn match_pattern(&self) -> Option<&str> {
            self.match_.as_deref()
        }
        fn match_regex(&self) -> Option<&str> {
            self.match_regex.as_deref()
        }
        fn name(&self) -> Option<&str> {
            self.name.as_deref()
        }
        fn buffer(&self) -> &$crate::config::BufferConfig {
            &self.buffer
        }
    };
}

impl_output_routing!(SimpleOutputConfig, delivery);

/// Outputs with no options of their own (`stdout`, `null`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimpleOutputConfig {
    /// Tags this output receives (Fluent Bit `Match`).
    #[serde(rename = "match", default)]
    pub match_: Option<String>,
    /// Tags this output receives, as a regular expression (Fluent Bit `Match_Regex`).
    #[serde(default)]
    pub match_regex: Option<String>,
    /// A name for metrics and logs; default: the output's type.
    #[serde(default)]
    pub name: Option<String>,
    /// The output's buffer.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// How long after a batch was buffered it is retried (default `"24h"`).
    #[serde(default)]
    pub retry_until: Option<DurationStr>,
    /// Most retries of one batch; absent = until `retry_until`.
    #[serde(default)]
    pub retry_limit: Option<u32>,
    /// Where events that cannot be delivered go, with the reason.
    #[serde(default)]
    pub dead_letter: Option<DeadLetterConfig>,
}

/// `buffer = { … }` of an output.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferConfig {
    /// `memory` (default) or `disk`.
    #[serde(rename = "type", default)]
    pub kind: BufferType,
    /// Most bytes waiting or in flight for this output (default: memory 64MiB, never more than
    /// `[service] memory_budget`; disk 256MiB of segment files).
    #[serde(default)]
    pub max_bytes: Option<ByteSize>,
    /// `block` (backpressure: inputs read more slowly) or `drop_newest` (counted).
    #[serde(default)]
    pub when_full: WhenFull,
    /// Disk only: the directory under which this output's buffer lives (in a subdirectory named
    /// after the output).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Disk only: `always`, `interval` (default) or `never`.
    #[serde(default)]
    pub fsync: Option<FsyncPolicy>,
    /// Disk only: the period of `fsync = "interval"` (default `"1s"`).
    #[serde(default)]
    pub fsync_interval: Option<DurationStr>,
}

/// `buffer.type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BufferType {
    /// In memory, under the router's memory budget.
    #[default]
    Memory,
    /// Append-only segment files, recovered on restart.
    Disk,
}

/// Default `max_bytes` of a memory buffer.
pub const DEFAULT_MEMORY_BUFFER_BYTES: u64 = 64 << 20;
/// Default `max_bytes` of a disk buffer.
pub const DEFAULT_DISK_BUFFER_BYTES: u64 = 256 << 20;

impl BufferConfig {
    /// The buffer of the output whose metric id is `output_id` (validated before).
    pub fn kind(&self, output_id: &str) -> crate::buffer::BufferKind {
        match self.kind {
            BufferType::Memory => crate::buffer::BufferKind::Memory {
                max_bytes: self.max_bytes.map_or(DEFAULT_MEMORY_BUFFER_BYTES, |b| b.0) as usize,
                when_full: self.when_full,
            },
            BufferType::Disk => crate::buffer::BufferKind::Disk(crate::buffer::DiskOptions {
                dir: self.path.clone().unwrap_or_default().join(output_id),
                max_bytes: self.max_bytes.map_or(DEFAULT_DISK_BUFFER_BYTES, |b| b.0),
                when_full: self.when_full,
                fsync: self.fsync.unwrap_or_default(),
                fsync_interval: self
                    .fsync_interval
                    .map_or(std::time::Duration::from_secs(1), |d| d.0),
            }),
        }
    }
}

/// `dead_letter = { … }` of an output: exactly one of `path` and `output`.
#[derive(Clone, Debug, Deserialize)]
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
    pub max_bytes: Option<ByteSize>,
}

/// Read, expand and parse the TOML file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        message: format!("cannot read the config file: {e}"),
    })?;
    parse(&text, &file)
}

/// Read a config in either format: TOML, or Fluent Bit classic (extension `.conf`, or a file
/// whose first line is `[SERVICE]`, `[INPUT]`, `[FILTER]`, `[OUTPUT]` or an `@` directive).
pub fn load_any(path: &Path) -> Result<fluentbit::Mapped, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        message: format!("cannot read the config file: {e}"),
    })?;
    let is_toml = path.extension().is_some_and(|e| e == "toml");
    if !is_toml
        && (path.extension().is_some_and(|e| e == "conf") || fluentbit::looks_classic(&text))
    {
        return fluentbit::load(path);
    }
    let config = parse(&text, &path.display().to_string())?;
    Ok(fluentbit::Mapped {
        config,
        tcp_discard: Vec::new(),
        warnings: Vec::new(),
        classic: false,
        origins: Default::default(),
    })
}

/// Parse TOML `text` that came from `file` (used in messages), after `${VAR}` expansion.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    // Expansion registers the secret values, so neither the log nor this error shows them.
    let err = |message: String| ConfigError {
        file: file.to_string(),
        message: crate::ops::logging::redact(&message).into_owned(),
    };
    let text = expand_env(text, crate::ecs::var).map_err(err)?;
    let config: Config = toml::from_str(&text).map_err(|e| err(describe_toml_error(&e, &text)))?;
    config.validate().map_err(err)?;
    Ok(config)
}

fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let mut msg = e.to_string().trim_end().to_string();
    if let Some(key) = msg
        .split("unknown field `")
        .nth(1)
        .and_then(|r| r.split('`').next())
    {
        // Tagged sections report the section's position; point at the key itself.
        let from = e.span().map(|s| s.start).unwrap_or(0);
        let line_of_section = text[..from].matches('\n').count();
        let key_line = text
            .lines()
            .enumerate()
            .skip(line_of_section)
            .find(|(_, l)| {
                l.trim_start()
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            });
        if let Some((n, line)) = key_line {
            msg = format!(
                "line {}: unknown key `{key}`: {}\n{msg}",
                n + 1,
                line.trim()
            );
        }
        msg.push_str("\nfix: remove the key or correct its spelling; the keys this section accepts are listed above");
    } else if msg.contains("unknown variant") {
        msg.push_str("\nfix: use one of the types listed above");
    } else if let Some((n, key)) = refused_value_line(e, text) {
        // A value refused inside a tagged section: the span is the section's header.
        msg = format!("line {n}: `{key}`: {msg}");
    }
    msg
}

/// The line (1-based) and key of the value a serde error inside a `[[…]]` section quotes:
/// `"99999999999G" is too large` or `-5: a size cannot be negative`.
fn refused_value_line(e: &toml::de::Error, text: &str) -> Option<(usize, String)> {
    let from = e.span()?.start;
    if !text[from..].starts_with("[[") {
        return None;
    }
    let message = e.message();
    let value = if let Some(quoted) = message.strip_prefix('"') {
        &message[..quoted.find('"')? + 2]
    } else {
        message.split([':', ' ']).next()?
    };
    let first = text[..from].matches('\n').count();
    text.lines()
        .enumerate()
        .skip(first + 1)
        .take_while(|(_, l)| !l.trim_start().starts_with('['))
        .find_map(|(n, l)| {
            let (key, v) = l.split_once('=')?;
            (v.trim() == value).then(|| (n + 1, key.trim().to_string()))
        })
}

impl Config {
    /// Check what the types cannot: every error names the key and the fix.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if let Some(listen) = &self.service.http_listen
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            problems.push(format!(
                "service.http_listen = {listen:?} is not `ip:port`; e.g. \"127.0.0.1:2020\""
            ));
        }
        if let Some(level) = &self.service.log_level
            && let Err(e) = crate::ops::logging::parse_level(level)
        {
            problems.push(format!("service.log_level: {e}"));
        }
        check_service(&self.service, &mut problems);
        if self.inputs.is_empty() {
            problems.push("no [[inputs]]: add one, e.g. `[[inputs]]\\ntype = \"forward\"\\nlisten = \"127.0.0.1:24224\"`".to_string());
        }
        if self.outputs.is_empty() {
            problems.push(
                "no [[outputs]]: add one, e.g. `[[outputs]]\\ntype = \"stdout\"\\nmatch = \"*\"`"
                    .to_string(),
            );
        }
        for (i, input) in self.inputs.iter().enumerate() {
            let InputConfig::Forward(f) = input;
            let key = format!("inputs[{i}]");
            if f.listen.is_none() && f.unix_path.is_none() {
                problems.push(format!("{key}: set `listen = \"127.0.0.1:24224\"` and/or `unix_path = \"/var/run/fluent.sock\"`"));
            }
            if let Some(listen) = &f.listen
                && listen.parse::<std::net::SocketAddr>().is_err()
            {
                problems.push(format!("{key}.listen = {listen:?} is not `ip:port`; e.g. \"127.0.0.1:24224\" or \"0.0.0.0:24224\""));
            }
            if let Some(perm) = &f.unix_perm
                && parse_octal_mode(perm).is_none()
            {
                problems.push(format!(
                    "{key}.unix_perm = {perm:?} is not an octal mode; e.g. \"0666\""
                ));
            }
            if f.max_connections == Some(0) {
                problems.push(format!("{key}.max_connections must be at least 1"));
            }
            if f.max_unix_connections == Some(0) {
                problems.push(format!("{key}.max_unix_connections must be at least 1"));
            }
            if f.idle_timeout.is_some_and(|d| d.0.is_zero()) {
                problems.push(format!("{key}.idle_timeout must be more than 0s; remove it to keep quiet connections open"));
            }
            positive_size(
                &key,
                "buffer_max_size",
                f.buffer_max_size,
                "\"6M\"",
                &mut problems,
            );
            positive_size(
                &key,
                "decompress_max_size",
                f.decompress_max_size,
                "\"64M\"",
                &mut problems,
            );
            crate::input::forward::server::validate(&key, f, &mut problems);
        }
        for (i, filter) in self.filters.iter().enumerate() {
            let key = format!("filters[{i}]");
            check_match(
                &key,
                filter.match_pattern(),
                filter.match_regex(),
                &mut problems,
            );
            crate::filter::validate(&key, filter, &mut problems);
            let FilterConfig::Wasm(w) = filter else {
                continue;
            };
            if let Some(policy) = &w.on_error
                && !["fail_open", "fail_closed", "dead_letter"].contains(&policy.as_str())
            {
                problems.push(format!("{key}.on_error = {policy:?}: use \"fail_open\", \"fail_closed\" or \"dead_letter\""));
            }
            check_plugin_limits(&key, &w.limits, &mut problems);
        }
        check_listeners(self, &mut problems);
        for (i, output) in self.outputs.iter().enumerate() {
            let key = format!("outputs[{i}]");
            let o = output.routing();
            check_match(&key, o.match_pattern(), o.match_regex(), &mut problems);
            check_delivery(&key, output, &self.outputs, &mut problems);
            if let OutputConfig::Forward(f) = output {
                f.validate(&key, &mut problems);
            }
            crate::output::aws::validate_output(&key, output, &mut problems);
            crate::output::wasm::validate_output(&key, output, &mut problems);
            if let OutputConfig::Wasm(c) = output {
                check_plugin_limits(&key, &c.limits, &mut problems);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

/// The id an output has in metrics, logs and `dead_letter.output`: its `name`, else its type.
pub fn output_id(output: &OutputConfig) -> &str {
    output.routing().name().unwrap_or(output.type_name())
}

fn check_delivery(
    key: &str,
    output: &OutputConfig,
    all: &[OutputConfig],
    problems: &mut Vec<String>,
) {
    let o = output.routing();
    let id = output_id(output);
    let b = o.buffer();
    if b.max_bytes.is_some_and(|m| m.0 == 0) {
        problems.push(format!(
            "{key}.buffer.max_bytes must be more than 0, e.g. \"64MiB\""
        ));
    }
    match b.kind {
        BufferType::Memory => {
            for (set, name) in [
                (b.path.is_some(), "path"),
                (b.fsync.is_some(), "fsync"),
                (b.fsync_interval.is_some(), "fsync_interval"),
            ] {
                if set {
                    problems.push(format!("{key}.buffer.{name} is only for disk buffers: add `type = \"disk\"` or remove it"));
                }
            }
        }
        BufferType::Disk => match &b.path {
            None => problems.push(format!(
                "{key}.buffer: a disk buffer needs `path`, e.g. `buffer = {{ type = \"disk\", path = \"/var/lib/wasm-router\" }}`"
            )),
            Some(path) => {
                let same = all.iter().filter(|other| {
                    output_id(other) == id
                        && other.routing().buffer().kind == BufferType::Disk
                        && other.routing().buffer().path.as_ref() == Some(path)
                });
                if same.count() > 1 {
                    problems.push(format!(
                        "{key}.buffer: another output named {id:?} uses the disk buffer path {}; give the outputs distinct `name`s",
                        path.display()
                    ));
                }
            }
        },
    }
    if b.fsync_interval.is_some_and(|d| d.0.is_zero()) {
        problems.push(format!(
            "{key}.buffer.fsync_interval must be more than 0, e.g. \"1s\""
        ));
    }
    if o.retry_until().is_some_and(|d| d.0.is_zero()) {
        problems.push(format!(
            "{key}.retry_until must be more than 0, e.g. \"24h\""
        ));
    }
    let Some(dl) = o.dead_letter() else { return };
    positive_size(
        key,
        "dead_letter.max_bytes",
        dl.max_bytes,
        "\"64MiB\"",
        problems,
    );
    match (&dl.path, &dl.output) {
        (None, None) | (Some(_), Some(_)) => problems.push(format!(
            "{key}.dead_letter: set exactly one of `path = \"/var/lib/wasm-router/dead-letter.jsonl\"` and `output = \"<name of another output>\"`"
        )),
        (None, Some(target)) => {
            let targets: Vec<&OutputConfig> = all.iter().filter(|t| output_id(t) == target).collect();
            match targets.as_slice() {
                [] => problems.push(format!("{key}.dead_letter.output = {target:?}: no output has that name; set `name = {target:?}` on the output to use")),
                [t] if output_id(t) == id => problems.push(format!("{key}.dead_letter.output: an output cannot be its own dead-letter destination")),
                [t] if t.routing().dead_letter().is_some_and(|d| d.output.is_some()) => problems.push(format!(
                    "{key}.dead_letter.output = {target:?}: that output sends its own dead letters to an output; chains are not allowed (use a `path`)"
                )),
                [_] => {}
                _ => problems.push(format!("{key}.dead_letter.output = {target:?}: several outputs have that name; give them distinct `name`s")),
            }
        }
        (Some(_), None) => {}
    }
}

/// Smallest `retry_backoff_base`: a zero base retried a failing destination ~800 times a second.
pub const MIN_RETRY_BACKOFF_BASE: std::time::Duration = std::time::Duration::from_millis(1);

fn check_service(s: &ServiceConfig, problems: &mut Vec<String>) {
    if s.retry_backoff_base.0 < MIN_RETRY_BACKOFF_BASE {
        problems.push(
            "service.retry_backoff_base must be at least \"1ms\" (a zero base retries a failing destination hundreds of times a second); e.g. \"100ms\"".to_string(),
        );
    }
    if s.retry_backoff_cap.0 < s.retry_backoff_base.0 {
        problems.push(format!(
            "service.retry_backoff_cap ({:?}) must be at least service.retry_backoff_base ({:?}); e.g. \"30s\"",
            s.retry_backoff_cap.0, s.retry_backoff_base.0
        ));
    }
    for (name, value, example) in [
        ("delivery_stuck_after", s.delivery_stuck_after, "\"60s\""),
        ("partial_flush_timeout", s.partial_flush_timeout, "\"2s\""),
    ] {
        if value.0.is_zero() {
            problems.push(format!(
                "service.{name} must be more than 0, e.g. {example}"
            ));
        }
    }
    positive_size(
        "service",
        "memory_budget",
        s.memory_budget,
        "\"64MiB\"",
        problems,
    );
    positive_size(
        "service",
        "partial_max_bytes",
        Some(s.partial_max_bytes),
        "\"1MiB\"",
        problems,
    );
}

/// `limits = { … }` of a WASM filter or output under `key`.
fn check_plugin_limits(key: &str, limits: &PluginLimitsConfig, problems: &mut Vec<String>) {
    positive_size(key, "limits.memory", limits.memory, "\"64MiB\"", problems);
    if limits.deadline.is_some_and(|d| d.0.is_zero()) {
        problems.push(format!(
            "{key}.limits.deadline must be more than 0, e.g. \"50ms\""
        ));
    }
    if limits.max_calls == Some(0) {
        problems.push(format!(
            "{key}.limits.max_calls must be at least 1, e.g. 100000"
        ));
    }
}

fn positive_size(
    key: &str,
    name: &str,
    value: Option<ByteSize>,
    example: &str,
    problems: &mut Vec<String>,
) {
    if value.is_some_and(|v| v.0 == 0) {
        problems.push(format!("{key}.{name} must be more than 0, e.g. {example}"));
    }
}

/// One socket the router would listen on, and the key that asks for it.
enum Listener<'a> {
    Tcp(std::net::SocketAddr, String),
    Unix(&'a Path, String),
}

/// Two listeners on one TCP address (an unspecified address such as `0.0.0.0` covers every
/// address of its port) or one unix path cannot both bind: refuse them here, not at `run`.
fn check_listeners(config: &Config, problems: &mut Vec<String>) {
    let mut listeners = Vec::new();
    for (i, input) in config.inputs.iter().enumerate() {
        let InputConfig::Forward(f) = input;
        if let Some(addr) = f.listen.as_deref().and_then(|l| l.parse().ok()) {
            listeners.push(Listener::Tcp(addr, format!("inputs[{i}].listen")));
        }
        if let Some(path) = &f.unix_path {
            listeners.push(Listener::Unix(path, format!("inputs[{i}].unix_path")));
        }
    }
    if let Some(addr) = config
        .service
        .http_listen
        .as_deref()
        .and_then(|l| l.parse().ok())
    {
        listeners.push(Listener::Tcp(addr, "service.http_listen".to_string()));
    }
    for (n, later) in listeners.iter().enumerate() {
        let clash = listeners[..n]
            .iter()
            .find_map(|earlier| match (earlier, later) {
                (Listener::Tcp(a, key), Listener::Tcp(b, later_key))
                    if tcp_addresses_clash(*a, *b) =>
                {
                    Some((later_key, b.to_string(), key, a.to_string()))
                }
                (Listener::Unix(a, key), Listener::Unix(b, later_key)) if same_path(a, b) => {
                    Some((
                        later_key,
                        b.display().to_string(),
                        key,
                        a.display().to_string(),
                    ))
                }
                _ => None,
            });
        if let Some((later_key, addr, earlier_key, earlier_addr)) = clash {
            problems.push(format!(
                "{later_key} = {addr:?} clashes with {earlier_key} = {earlier_addr:?}: only one listener can bind it; give each a distinct address or path, or remove one"
            ));
        }
    }
}

/// Whether two TCP listeners cannot both bind.
pub(crate) fn tcp_addresses_clash(a: std::net::SocketAddr, b: std::net::SocketAddr) -> bool {
    if a.port() != b.port() || a.port() == 0 {
        return false;
    }
    let unspecified_v6 = |x: &std::net::SocketAddr| x.is_ipv6() && x.ip().is_unspecified();
    a.ip() == b.ip()
        || (a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified()))
        // `[::]` also takes the IPv4 port unless the socket is IPv6-only (Linux default).
        || unspecified_v6(&a)
        || unspecified_v6(&b)
}

fn same_path(a: &Path, b: &Path) -> bool {
    a.components().eq(b.components())
}

fn check_match(key: &str, pattern: Option<&str>, regex: Option<&str>, problems: &mut Vec<String>) {
    match (pattern, regex) {
        (None, None) => problems.push(format!(
            "{key}: set `match = \"*\"` (or a tag pattern) or `match_regex`"
        )),
        (Some(_), Some(_)) => problems.push(format!(
            "{key}: set either `match` or `match_regex`, not both"
        )),
        (None, Some(re)) => {
            if let Err(e) = regex::Regex::new(re) {
                problems.push(format!(
                    "{key}.match_regex is not a valid regular expression: {e}"
                ));
            }
        }
        (Some(_), None) => {}
    }
}

/// An octal file mode such as `"0666"` or `"660"`.
pub fn parse_octal_mode(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
}

/// The matcher of a component's `match` / `match_regex` (validated before).
pub fn tag_matcher(pattern: Option<&str>, regex: Option<&str>) -> crate::pipeline::TagMatcher {
    match (pattern, regex) {
        (_, Some(re)) => crate::pipeline::TagMatcher::regex(re).expect("validated"),
        (Some(p), None) => crate::pipeline::TagMatcher::wildcard(p),
        (None, None) => crate::pipeline::TagMatcher::Any,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_is_valid() {
        let c = parse(EMBEDDED_DEFAULT, "<embedded default>").unwrap();
        assert_eq!(c.inputs.len(), 1);
        assert!(matches!(c.outputs[0], OutputConfig::Stdout(_)));
    }

    #[test]
    fn unknown_keys_name_the_key_the_line_and_the_fix() {
        let text = "[[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n[[outputs]]\ntype = \"null\"\nmatch = \"*\"\n";
        let e = parse(text, "router.toml").unwrap_err().to_string();
        assert!(e.starts_with("router.toml: "), "{e}");
        assert!(e.contains("lisen"), "{e}");
        assert!(e.contains("line 4"), "{e}");
        assert!(e.contains("fix:"), "{e}");
    }

    #[test]
    fn unknown_types_and_bad_values_are_explained() {
        let e = parse("[[outputs]]\ntype = \"kafka\"\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("kafka") && e.contains("stdout"), "{e}");

        let text = "[[inputs]]\ntype = \"forward\"\nlisten = \"localhost\"\nunix_perm = \"rw\"\n[[outputs]]\ntype = \"null\"\nmatch_regex = \"(\"\n";
        let e = parse(text, "f.toml").unwrap_err().to_string();
        assert!(
            e.contains("inputs[0].listen") && e.contains("ip:port"),
            "{e}"
        );
        assert!(e.contains("inputs[0].unix_perm"), "{e}");
        assert!(e.contains("outputs[0].match_regex"), "{e}");
    }

    #[test]
    fn delivery_keys_are_validated_with_the_key_and_the_fix() {
        let base = "[[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:1\"\n";
        let check = |outputs: &str| {
            parse(&format!("{base}{outputs}"), "f.toml")
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let ok = "[[outputs]]\ntype = \"forward\"\nname = \"agg\"\nmatch = \"*\"\nretry_until = \"1h\"\nretry_limit = 5\n\
                  buffer = { type = \"disk\", path = \"/var/lib/wr\", max_bytes = \"1GiB\", when_full = \"drop_newest\", fsync = \"always\" }\n\
                  dead_letter = { output = \"backup\" }\n\
                  [[outputs]]\ntype = \"stdout\"\nname = \"backup\"\nmatch = \"x\"\ndead_letter = { path = \"/tmp/dl.jsonl\" }\n";
        check(ok).unwrap();
        let e =
            check("[[outputs]]\ntype = \"null\"\nmatch = \"*\"\nbuffer = { type = \"disk\" }\n")
                .unwrap_err();
        assert!(e.contains("outputs[0].buffer") && e.contains("path"), "{e}");
        let e =
            check("[[outputs]]\ntype = \"null\"\nmatch = \"*\"\nbuffer = { fsync = \"always\" }\n")
                .unwrap_err();
        assert!(
            e.contains("outputs[0].buffer.fsync is only for disk buffers"),
            "{e}"
        );
        let e = check(
            "[[outputs]]\ntype = \"null\"\nmatch = \"*\"\ndead_letter = { output = \"nope\" }\n",
        )
        .unwrap_err();
        assert!(
            e.contains("outputs[0].dead_letter.output") && e.contains("no output has that name"),
            "{e}"
        );
        let e = check(
            "[[outputs]]\ntype = \"null\"\nmatch = \"*\"\ndead_letter = { output = \"null\" }\n",
        )
        .unwrap_err();
        assert!(e.contains("its own dead-letter destination"), "{e}");
        let e =
            check("[[outputs]]\ntype = \"null\"\nmatch = \"*\"\ndead_letter = {}\n").unwrap_err();
        assert!(e.contains("exactly one of"), "{e}");
        let two = "[[outputs]]\ntype = \"null\"\nmatch = \"*\"\nbuffer = { type = \"disk\", path = \"/x\" }\n";
        let e = check(&format!("{two}{two}")).unwrap_err();
        assert!(e.contains("distinct `name`s"), "{e}");
        let e = check("[[outputs]]\ntype = \"forward\"\nmatch = \"*\"\ncompress = \"lz4\"\n")
            .unwrap_err();
        assert!(e.contains("outputs[0].compress"), "{e}");
        let c = parse(
            &format!("{base}[[outputs]]\ntype = \"null\"\nmatch = \"*\"\n"),
            "f.toml",
        )
        .unwrap();
        assert!(c.service.partial_reassembly, "reassembly is on by default");
        assert_eq!(c.service.memory_budget, None);
    }

    #[test]
    fn listeners_that_cannot_both_bind_are_refused() {
        let check = |text: &str| {
            let c: Config = toml::from_str(text).unwrap();
            c.validate().err().unwrap_or_default()
        };
        let input =
            |listen: &str| format!("[[inputs]]\ntype = \"forward\"\nlisten = \"{listen}\"\n");
        let out = "[[outputs]]\ntype = \"null\"\nmatch = \"*\"\n";
        for (a, b) in [
            ("127.0.0.1:5000", "127.0.0.1:5000"),
            ("0.0.0.0:5000", "127.0.0.1:5000"),
            ("127.0.0.1:5000", "0.0.0.0:5000"),
            ("[::]:5000", "127.0.0.1:5000"),
            ("[::1]:5000", "[::]:5000"),
        ] {
            let e = check(&format!("{}{}{out}", input(a), input(b)));
            assert!(
                e.contains("inputs[1].listen") && e.contains("clashes with inputs[0].listen"),
                "{a} / {b}: {e}"
            );
        }
        for (a, b) in [
            ("127.0.0.1:5000", "127.0.0.1:5001"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("127.0.0.1:5000", "127.0.0.2:5000"),
            ("127.0.0.1:5000", "[::1]:5000"),
        ] {
            let e = check(&format!("{}{}{out}", input(a), input(b)));
            assert!(!e.contains("clashes"), "{a} / {b}: {e}");
        }
        let e = check(&format!(
            "[service]\nhttp_listen = \"0.0.0.0:2020\"\n{}{out}",
            input("127.0.0.1:2020")
        ));
        assert!(
            e.contains("service.http_listen") && e.contains("clashes with inputs[0].listen"),
            "{e}"
        );
        let unix = "[[inputs]]\ntype = \"forward\"\nunix_path = \"/run/./fluent.sock\"\n[[inputs]]\ntype = \"forward\"\nunix_path = \"/run/fluent.sock\"\n";
        let e = check(&format!("{unix}{out}"));
        assert!(
            e.contains("inputs[1].unix_path") && e.contains("clashes with inputs[0].unix_path"),
            "{e}"
        );
    }

    #[test]
    fn zero_sizes_and_durations_and_a_zero_backoff_are_refused_with_the_key_and_an_example() {
        let e = parse(
            "[service]\nretry_backoff_base = \"0s\"\nretry_backoff_cap = \"0s\"\ndelivery_stuck_after = 0\nmemory_budget = 0\npartial_max_bytes = 0\n\
             [[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:1\"\nbuffer_max_size = 0\ndecompress_max_size = \"0M\"\n\
             [[filters]]\ntype = \"wasm\"\nmatch = \"*\"\npath = \"p.wasm\"\nlimits = { memory = 0, deadline = \"0ms\", max_calls = 0 }\n\
             [[outputs]]\ntype = \"null\"\nmatch = \"*\"\ndead_letter = { path = \"/tmp/dl\", max_bytes = 0 }\n",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        for wanted in [
            "service.retry_backoff_base must be at least \"1ms\"",
            "service.delivery_stuck_after must be more than 0, e.g. \"60s\"",
            "service.memory_budget must be more than 0",
            "service.partial_max_bytes must be more than 0",
            "inputs[0].buffer_max_size must be more than 0, e.g. \"6M\"",
            "inputs[0].decompress_max_size must be more than 0",
            "filters[0].limits.memory must be more than 0",
            "filters[0].limits.deadline must be more than 0",
            "filters[0].limits.max_calls must be at least 1",
            "outputs[0].dead_letter.max_bytes must be more than 0",
        ] {
            assert!(e.contains(wanted), "wanted {wanted:?} in {e}");
        }
        let e = parse(
            "[service]\nretry_backoff_base = \"2s\"\nretry_backoff_cap = \"1s\"\n[[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:1\"\n[[outputs]]\ntype = \"null\"\nmatch = \"*\"\n",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "service.retry_backoff_cap (1s) must be at least service.retry_backoff_base (2s)"
            ),
            "{e}"
        );
    }

    #[test]
    fn sizes_durations_and_env_vars() {
        // SAFETY-free: a unique variable name set only by this test.
        let text = "[service]\ngrace = \"1m30s\"\n[[inputs]]\ntype = \"forward\"\nlisten = \"${WR_TEST_LISTEN_ADDR_42}\"\nbuffer_max_size = \"1MiB\"\n[[outputs]]\ntype = \"null\"\nmatch = \"*\"\nbuffer = { max_bytes = 1024, when_full = \"drop_newest\" }\n";
        let expanded = expand_env(text, |n| {
            (n == "WR_TEST_LISTEN_ADDR_42").then(|| "127.0.0.1:9".to_string())
        })
        .unwrap();
        let c: Config = toml::from_str(&expanded).unwrap();
        c.validate().unwrap();
        assert_eq!(c.service.grace.0.as_secs(), 90);
        let InputConfig::Forward(f) = &c.inputs[0];
        assert_eq!(f.listen.as_deref(), Some("127.0.0.1:9"));
        assert_eq!(f.buffer_max_size.unwrap().0, 1 << 20);
        let OutputConfig::Null(o) = &c.outputs[0] else {
            panic!()
        };
        assert_eq!(o.buffer.max_bytes.unwrap().0, 1024);
        assert_eq!(o.buffer.when_full, WhenFull::DropNewest);
    }
}
