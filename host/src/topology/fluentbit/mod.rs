//! Fluent Bit classic-format configs (what FireLens generates) mapped onto [`Config`].
//!
//! [`parse::Parser`] reads the file and its `@INCLUDE`s into sections; [`map`] turns them into
//! the same TOML-shaped table the native format is, so the same serde model and
//! [`Config::validate`] apply. Anything we cannot honour is an error naming `file:line`, the key
//! and what to do instead; harmless keys are accepted with a warning.

mod aws;
mod aws_outputs;
mod filters;
mod http_output;
mod inputs;
mod loki_output;
mod multiline;
mod opensearch_output;
mod origins;
mod streams;
mod tail;
mod vendors;

pub use origins::Origins;

use super::{Config, ConfigError};
use crate::config::classic::{self as parse, Entry, Section};
use std::path::Path;
use toml::{Table, Value};

pub use crate::config::DOCS_WASM_FILTERS;
pub use vendors::{DEFAULT_PLUGIN_DIR, PLUGIN_DIR_VAR, plugin_dir};

/// Why `storage.pause_on_chunks_overlimit` needs no setting here.
const PAUSE_ALWAYS: &str = "is accepted; an input always pauses (TCP backpressure) while an output's buffer is full and `when_full` is `block`";

/// The config the FireLens image runs when started with no `-c`.
pub const FIRELENS_DEFAULT_CONFIG: &str = "/fluent-bit/etc/fluent-bit.conf";

/// A classic config, mapped.
#[derive(Debug)]
pub struct Mapped {
    /// The router config.
    pub config: Config,
    /// Harmless things that were ignored, each naming `file:line`.
    pub warnings: Vec<String>,
    /// Whether the file was a classic config (reload re-reads TOML only, so it is off then).
    pub classic: bool,
    /// Where each component was written (empty for TOML): to report later problems as
    /// `file:line` and the classic key.
    pub origins: Origins,
}

/// Read the classic file at `path` (and its includes), expanding `${VAR}` from the environment.
pub fn load(path: &Path) -> Result<Mapped, ConfigError> {
    let sections = parse::Parser::new(&super::RouterVariables)
        .parse_file(path)
        .map_err(|e| error(path, e.to_string()))?;
    map(&sections).map_err(|m| error(path, m))
}

/// Read Fluent Bit's YAML config at `path` (and its includes) and map it as a classic one.
pub fn load_yaml(path: &Path) -> Result<Mapped, ConfigError> {
    let sections = crate::config::yaml::parse_file(path, &super::RouterVariables)
        .map_err(|e| error(path, e.to_string()))?;
    map(&sections).map_err(|m| error(path, m))
}

/// The value of `Retry_Limit` as Fluent Bit reads it (`flb_output.c`): `no_limits`, `False`
/// or `Off` (none: until `retry_until`), `no_retries` (0), else the number at the start of the
/// value (C's `atoi`); one that is not above 0 is Fluent Bit's default, 1, with a warning.
fn retry_limit(e: &Entry) -> (Option<i64>, Option<String>) {
    let value = e.value.to_ascii_lowercase();
    match value.as_str() {
        "no_retries" => return (Some(0), None),
        "false" | "no_limits" | "off" => return (None, None),
        _ => {}
    }
    let digits: String = value
        .trim_start()
        .char_indices()
        .take_while(|&(i, c)| c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+')))
        .map(|(_, c)| c)
        .collect();
    match digits.parse::<i64>() {
        Ok(n) if n > 0 => (Some(n), None),
        _ => (
            Some(1),
            Some(format!(
                "{}: Retry_Limit {:?} is not a positive number, no_limits, False, Off or no_retries; like Fluent Bit, the router uses its default, 1",
                at(e),
                e.value
            )),
        ),
    }
}

fn error(path: &Path, message: String) -> ConfigError {
    ConfigError {
        file: path.display().to_string(),
        message: crate::ops::logging::redact(&message).into_owned(),
    }
}

/// Whether `text` looks like a classic config rather than TOML.
pub fn looks_classic(text: &str) -> bool {
    // `[service]` is also native TOML; the classic headers are upper case by convention, and
    // lower-case `[input]`/`[filter]`/`[output]` (singular) are not TOML's `[[inputs]]`.
    const HEADERS: [&str; 7] = [
        "[SERVICE]",
        "[INPUT]",
        "[FILTER]",
        "[OUTPUT]",
        "[input]",
        "[filter]",
        "[output]",
    ];
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l.starts_with('@') || HEADERS.iter().any(|h| l.starts_with(h)))
}

/// Map parsed sections onto a validated [`Config`].
pub fn map(sections: &[Section]) -> Result<Mapped, String> {
    let mut m = Mapper::default();
    // Every section is mapped, so that one run reports every problem of the config.
    let mut problems = Vec::new();
    for s in sections {
        let before = (m.inputs.len(), m.filters.len(), m.outputs.len());
        let mapped = match s.kind.as_str() {
            "SERVICE" => m.service(s),
            "INPUT" => m.input(s),
            "FILTER" => m.filter(s),
            "OUTPUT" => m.output(s),
            "STREAM_TASK" => m.stream_task(s),
            // Fluent Bit's YAML format holds parsers inline: the file is a parsers file too.
            "PARSER" | "MULTILINE_PARSER" if crate::config::yaml::is_yaml(&s.origin.file) => {
                m.native.inline_parsers(&s.origin.file);
                Ok(())
            }
            "PARSER" | "MULTILINE_PARSER" => Err(format!(
                "{}: [{}] is not allowed in the main config; put it in a parsers file and pass it with `-R <file>` or [SERVICE] Parsers_File",
                s.origin, s.kind
            )),
            other => Err(format!(
                "{}: unknown section [{other}]; use [SERVICE], [INPUT], [FILTER], [OUTPUT] or [STREAM_TASK]",
                s.origin
            )),
        };
        if let Err(problem) = mapped {
            problems.push(problem);
            // The partly mapped section is left out; the others are still checked.
            m.inputs.truncate(before.0);
            m.filters.truncate(before.1);
            m.outputs.truncate(before.2);
            continue;
        }
        let o = &mut m.origins;
        if s.kind == "SERVICE" {
            o.service.push(s.clone());
        }
        o.inputs
            .extend((before.0..m.inputs.len()).map(|_| s.clone()));
        o.filters
            .extend((before.1..m.filters.len()).map(|_| s.clone()));
        o.outputs
            .extend((before.2..m.outputs.len()).map(|_| s.clone()));
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    m.finish()
}

#[derive(Default)]
struct Mapper {
    service: Table,
    inputs: Vec<Value>,
    filters: Vec<Value>,
    outputs: Vec<(Table, Vec<Entry>)>,
    stream_tasks: Vec<Value>,
    warnings: Vec<String>,
    storage_path: Option<String>,
    filesystem_storage: bool,
    native: filters::PendingFilters,
    tail: tail::PendingTail,
    origins: Origins,
}

fn at(e: &Entry) -> String {
    e.origin.to_string()
}

fn name_of(s: &Section) -> Result<String, String> {
    if let Some(e) = s.get("name") {
        return Ok(e.value.to_ascii_lowercase());
    }
    if let Some(e) = s.get("name:") {
        return Err(colon_key(e));
    }
    Err(format!(
        "{}: [{}] has no `Name`; add e.g. `Name forward`",
        s.origin, s.kind
    ))
}

/// `Name: tail`: Fluent Bit's classic format reads the key `Name:` (a key ends at the first
/// space), so Fluent Bit refuses this too.
fn colon_key(e: &Entry) -> String {
    let key = e.key.trim_end_matches(':');
    format!(
        "{}: `{}` is not a key: the classic format separates a key from its value with spaces, not a colon (Fluent Bit reads the key `{}` and refuses it too); write `{key} {}`, or write the file in Fluent Bit's YAML format",
        at(e),
        e.key,
        e.key,
        e.value
    )
}

fn on_off(e: &Entry) -> Result<bool, String> {
    match e.value.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        v => Err(format!("{}: {} = {v:?} is not On/Off", at(e), e.key)),
    }
}

/// The path of entry `e`'s value, relative to the directory of the file `e` is written in.
fn relative_to(e: &Entry) -> std::path::PathBuf {
    let path = Path::new(&e.value);
    match (path.is_absolute(), e.origin.file.parent()) {
        (false, Some(dir)) => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// A Fluent Bit time: plain seconds (`30`) or with a unit (`1.5s`, `500ms`).
fn seconds(e: &Entry) -> String {
    if e.value.chars().all(|c| c.is_ascii_digit()) {
        format!("{}s", e.value)
    } else {
        e.value.clone()
    }
}

/// `[SERVICE] Flush`: seconds, fractions allowed (Fluent Bit reads a double), as a
/// `batch_timeout` in milliseconds.
fn flush_interval(e: &Entry) -> Result<String, String> {
    match e.value.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => {
            Ok(format!("{}ms", (s * 1000.0).round() as u64))
        }
        _ => Err(format!(
            "{}: Flush {:?}: use seconds between 0 and 86400, e.g. `Flush 1` or `Flush 0.5` (how long events wait to share a request)",
            at(e),
            e.value
        )),
    }
}

impl Mapper {
    fn warn(&mut self, e: &Entry, what: &str) {
        self.warnings.push(format!("{}: `{}` {what}", at(e), e.key));
    }

    /// `Retry_Limit` of an output, as [`retry_limit`] reads it, into `key` of `t` (nothing for
    /// no limit); a value Fluent Bit would replace by its default is warned about.
    fn retry_limit_into(&mut self, t: &mut Table, key: &str, e: &Entry) {
        let (limit, warning) = retry_limit(e);
        self.warnings.extend(warning);
        if let Some(n) = limit {
            t.insert(key.into(), n.into());
        }
    }

    /// `[SERVICE] Plugins_File`: the `[PLUGINS]` `Path`s of Fluent Bit `.so` plugins. None is
    /// loaded: the Go outputs they usually are (`cloudwatch`, `firehose`, `kinesis`) are built
    /// in, and an input or output of another one is refused where a section names it.
    fn plugins_file(&mut self, e: &Entry) -> Result<(), String> {
        let path = relative_to(e);
        let sections = parse::Parser::new(&super::RouterVariables)
            .parse_file(&path)
            .map_err(|error| format!("{}: Plugins_File {}: {error}", at(e), path.display()))?;
        for plugin in sections
            .iter()
            .filter(|s| s.kind == "PLUGINS")
            .flat_map(|s| s.all("path"))
        {
            let name = Path::new(&plugin.value)
                .file_stem()
                .map(|s| s.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            let what = match name.as_str() {
                "cloudwatch" | "firehose" | "kinesis" => format!(
                    "is not loaded: the `{name}` output is built into wasm-router (Fluent Bit's Go plugins are not needed)"
                ),
                _ => "is not loaded: wasm-router does not load Fluent Bit .so plugins (plugins are WASM components, see docs/plugins.md); a section naming one of its inputs or outputs is refused".to_string(),
            };
            self.warn(plugin, &what);
        }
        Ok(())
    }

    fn service(&mut self, s: &Section) -> Result<(), String> {
        let (mut http_on, mut http_listen, mut http_port) =
            (false, "0.0.0.0".to_string(), "2020".to_string());
        let (mut health_on, mut health, mut health_keys) = (false, Table::new(), Vec::new());
        for e in &s.entries {
            match e.key.as_str() {
                "flush" => {
                    self.service
                        .insert("batch_timeout".into(), flush_interval(e)?.into());
                }
                "grace" => {
                    self.service.insert("grace".into(), seconds(e).into());
                }
                "log_level" => {
                    self.service
                        .insert("log_level".into(), e.value.to_ascii_lowercase().into());
                }
                "http_server" => http_on = on_off(e)?,
                "http_listen" => http_listen = e.value.clone(),
                "http_port" => http_port = e.value.clone(),
                "health_check" => health_on = on_off(e)?,
                "hc_errors_count" | "hc_retry_failure_count" | "hc_period" => {
                    let n: u64 = e.value.trim().parse().map_err(|_| {
                        format!(
                            "{}: {} {:?}: use a whole number (0 or more)",
                            at(e),
                            e.key,
                            e.value
                        )
                    })?;
                    let key = match e.key.as_str() {
                        "hc_errors_count" => "errors_count",
                        "hc_retry_failure_count" => "retry_failure_count",
                        _ => "period",
                    };
                    health.insert(key.into(), (n as i64).into());
                    health_keys.push(e);
                }
                "daemon" => self.warn(
                    e,
                    "is accepted and ignored: the router runs in the foreground",
                ),
                "parsers_file" => self.native.parsers_file(e),
                "streams_file" => self.streams_file(e)?,
                "plugins_file" => self.plugins_file(e)?,
                "storage.path" => self.storage_path = Some(e.value.clone()),
                "storage.metrics" => {
                    self.service
                        .insert("storage_metrics".into(), on_off(e)?.into());
                }
                k if k.starts_with("storage.") => self.warn(
                    e,
                    "is accepted and ignored: disk buffers are tuned per output",
                ),
                _ => {
                    return Err(unknown(
                        e,
                        "[SERVICE]",
                        "Flush, Grace, Log_Level, HTTP_Server, HTTP_Listen, HTTP_Port, Health_Check, Parsers_File, Streams_File, Plugins_File, storage.*",
                    ));
                }
            }
        }
        if health_on {
            self.service
                .insert("health_check".into(), Value::Table(health));
        } else {
            for e in health_keys {
                self.warn(e, "is ignored: Health_Check is off; add `Health_Check On` to the [SERVICE] section to use it");
            }
        }
        if http_on {
            self.service.insert(
                "http_listen".into(),
                format!("{http_listen}:{http_port}").into(),
            );
        }
        Ok(())
    }

    fn input(&mut self, s: &Section) -> Result<(), String> {
        let name = name_of(s)?;
        match name.as_str() {
            "forward" => {
                let mut t = Table::new();
                t.insert("type".into(), "forward".into());
                let (mut listen, mut port) = (None, None);
                let (mut security, mut tls, mut tls_on) = (Table::new(), Table::new(), false);
                for e in &s.entries {
                    match e.key.as_str() {
                        "name" | "tag" => {}
                        "shared_key" | "self_hostname" => {
                            security.insert(e.key.clone(), e.value.clone().into());
                        }
                        "tls" => tls_on = on_off(e)?,
                        "tls.crt_file" => {
                            tls.insert("cert_file".into(), e.value.clone().into());
                        }
                        "tls.key_file" => {
                            tls.insert("key_file".into(), e.value.clone().into());
                        }
                        "alias" => {
                            t.insert("name".into(), e.value.clone().into());
                        }
                        "unix_path" | "unix_perm" | "tag_prefix" => {
                            t.insert(e.key.clone(), e.value.clone().into());
                        }
                        "buffer_max_size" => {
                            t.insert(e.key.clone(), e.value.clone().into());
                        }
                        "listen" => listen = Some(e.value.clone()),
                        "port" => port = Some(e.value.clone()),
                        "mem_buf_limit" | "buffer_chunk_size" | "threaded" => {
                            self.warn(e, "is accepted; memory is bounded by [service] memory_budget and each output's buffer")
                        }
                        "storage.pause_on_chunks_overlimit" => self.warn(e, PAUSE_ALWAYS),
                        "storage.type" => self.filesystem_storage |= e.value.eq_ignore_ascii_case("filesystem"),
                        _ => return Err(unknown(e, "[INPUT] forward", "unix_path, unix_perm, Listen, Port, Mem_Buf_Limit, Tag_Prefix, Buffer_Chunk_Size, Buffer_Max_Size, Shared_Key, Self_Hostname, tls, tls.crt_file, tls.key_file")),
                    }
                }
                if !security.is_empty() {
                    if !security.contains_key("shared_key") {
                        return Err(format!(
                            "{}: [INPUT] forward Self_Hostname needs Shared_Key (the handshake's key)",
                            s.origin
                        ));
                    }
                    t.insert("security".into(), Value::Table(security));
                }
                if tls_on {
                    if !(tls.contains_key("cert_file") && tls.contains_key("key_file")) {
                        return Err(format!(
                            "{}: [INPUT] forward `tls on` needs tls.crt_file and tls.key_file (PEM)",
                            s.origin
                        ));
                    }
                    t.insert("tls".into(), Value::Table(tls));
                }
                if listen.is_some() || port.is_some() {
                    let host = listen.unwrap_or_else(|| "0.0.0.0".into());
                    t.insert(
                        "listen".into(),
                        format!("{host}:{}", port.unwrap_or_else(|| "24224".into())).into(),
                    );
                }
                self.inputs.push(Value::Table(t));
            }
            "dummy" => {
                let mut t = Table::new();
                t.insert("type".into(), "dummy".into());
                for e in &s.entries {
                    let key = match e.key.as_str() {
                        "name" => continue,
                        "alias" => "name",
                        "tag" | "dummy" => e.key.as_str(),
                        "rate" | "copies" | "samples" => {
                            let n: i64 = e.value.parse().map_err(|_| {
                                format!("{}: {} {:?}: use a whole number", at(e), e.key, e.value)
                            })?;
                            t.insert(e.key.clone(), n.into());
                            continue;
                        }
                        "mem_buf_limit" | "threaded" => {
                            self.warn(e, "is accepted; memory is bounded by [service] memory_budget and each output's buffer");
                            continue;
                        }
                        _ => {
                            return Err(unknown(
                                e,
                                "[INPUT] dummy",
                                "Tag, Dummy, Rate, Copies, Samples, Alias",
                            ));
                        }
                    };
                    t.insert(key.into(), e.value.clone().into());
                }
                self.inputs.push(Value::Table(t));
            }
            "tcp" => {
                // Fluent Bit's in_tcp: Listen 0.0.0.0 and Port 5170 by default.
                let (mut listen, mut port) = ("0.0.0.0".to_string(), "5170".to_string());
                let mut t = Table::new();
                t.insert("type".into(), "tcp".into());
                for e in &s.entries {
                    let key = match e.key.as_str() {
                        "name" => continue,
                        "listen" => {
                            listen = e.value.clone();
                            continue;
                        }
                        "port" => {
                            port = e.value.clone();
                            continue;
                        }
                        "alias" => "name",
                        "tag" | "format" | "separator" | "chunk_size" | "buffer_size"
                        | "source_address_key" => e.key.as_str(),
                        "mem_buf_limit" | "threaded" => {
                            self.warn(e, "is accepted; memory is bounded by [service] memory_budget and each output's buffer");
                            continue;
                        }
                        "storage.type" => {
                            self.filesystem_storage |= e.value.eq_ignore_ascii_case("filesystem");
                            continue;
                        }
                        "storage.pause_on_chunks_overlimit" => {
                            self.warn(e, PAUSE_ALWAYS);
                            continue;
                        }
                        _ => {
                            return Err(unknown(
                                e,
                                "[INPUT] tcp",
                                "Listen, Port, Tag, Format, Separator, Chunk_Size, Buffer_Size, Source_Address_Key, Alias, Mem_Buf_Limit, storage.type",
                            ));
                        }
                    };
                    let value = match key {
                        // Fluent Bit's sizes are in KB when written as a bare number.
                        "chunk_size" | "buffer_size"
                            if e.value.bytes().all(|b| b.is_ascii_digit()) =>
                        {
                            format!("{}KiB", e.value)
                        }
                        "format" => e.value.to_ascii_lowercase(),
                        _ => e.value.clone(),
                    };
                    t.insert(key.into(), value.into());
                }
                t.insert("listen".into(), format!("{listen}:{port}").into());
                self.inputs.push(Value::Table(t));
            }
            "tail" => {
                let m = tail::map(s, self.inputs.len(), &mut self.tail, &mut self.warnings)?;
                self.filesystem_storage |= m.filesystem_storage;
                self.inputs.push(Value::Table(m.table));
            }
            "http" => inputs::http(self, s)?,
            "exec" => inputs::exec(self, s)?,
            other => {
                return Err(format!(
                    "{}: input `{other}` is not supported yet; the inputs are forward, tcp, tail, http, exec and dummy (an application can send to `tcp`, `http` or `forward` instead)",
                    s.origin
                ));
            }
        }
        Ok(())
    }

    fn filter(&mut self, s: &Section) -> Result<(), String> {
        let name = name_of(s)?;
        match name.as_str() {
            "wasm" => {
                let mut t = Table::new();
                let mut config = Table::new();
                t.insert("type".into(), "wasm".into());
                for e in &s.entries {
                    match e.key.as_str() {
                        "name" => {}
                        "match" | "match_regex" | "on_error" | "sha256" => {
                            t.insert(e.key.clone(), e.value.clone().into());
                        }
                        // `WASM_Path` is Fluent Bit's name for it.
                        "path" | "wasm_path" => {
                            t.insert("path".into(), wasm_path(&e.value).into());
                        }
                        "alias" => {
                            t.insert("name".into(), e.value.clone().into());
                        }
                        _ => {
                            config.insert(e.key.clone(), e.value.clone().into());
                        }
                    }
                }
                if !t.contains_key("path") {
                    return Err(format!(
                        "{}: [FILTER] wasm needs `WASM_Path /plugins/<plugin>.wasm` (or s3://, https://, oci://, or a file name in the plugin directory)",
                        s.origin
                    ));
                }
                if !config.is_empty() {
                    t.insert("config".into(), Value::Table(config));
                }
                self.filters.push(Value::Table(t));
            }
            "multiline" => {
                let (t, parsers) = multiline::map(s, &mut self.service, &mut self.warnings)?;
                self.native.multiline_filter(self.filters.len(), parsers);
                self.filters.push(Value::Table(t));
            }
            "lua" => {
                return Err(format!(
                    "{}: the Lua filter is not supported; use a WASM filter (see {DOCS_WASM_FILTERS})",
                    s.origin
                ));
            }
            "aws" => self.filters.push(Value::Table(aws::map(s)?)),
            "ecs" => self
                .filters
                .push(Value::Table(aws::map_ecs(s, &mut self.warnings)?)),
            "grep" | "record_modifier" | "modify" | "parser" => {
                let t = filters::map(
                    &name,
                    s,
                    self.filters.len(),
                    &mut self.native,
                    &mut self.warnings,
                )?;
                self.filters.push(Value::Table(t));
            }
            other => {
                return Err(format!(
                    "{}: filter `{other}` is not supported; use a WASM filter (see {DOCS_WASM_FILTERS})",
                    s.origin
                ));
            }
        }
        Ok(())
    }

    fn output(&mut self, s: &Section) -> Result<(), String> {
        let name = name_of(s)?;
        let kind = match name.as_str() {
            "cloudwatch" | "cloudwatch_logs" => "cloudwatch_logs",
            "firehose" | "kinesis_firehose" => "firehose",
            "kinesis" | "kinesis_streams" => "kinesis_streams",
            "s3" | "forward" | "stdout" | "null" => name.as_str(),
            "datadog" | "newrelic" | "nrlogs" => return self.vendor_output(s, &name),
            "http" => return self.http_output(s),
            "loki" => return self.loki_output(s),
            "es" | "opensearch" => return self.opensearch_output(s, &name),
            other => {
                return Err(format!(
                    "{}: output `{other}` is not supported; use cloudwatch_logs, firehose, kinesis_streams, s3, forward, http, loki, es, opensearch, datadog, newrelic, stdout or null",
                    s.origin
                ));
            }
        };
        let mut t = Table::new();
        t.insert("type".into(), kind.into());
        let mut entries = Vec::new();
        // The forward output's TLS options, warned about (at their line) when `tls` is off.
        let mut tls_options: Vec<(&str, Entry)> = Vec::new();
        for e in &s.entries {
            match e.key.as_str() {
                "name" => {}
                "alias" => {
                    t.insert("name".into(), e.value.clone().into());
                }
                // Fluent Bit's s3 output counts its own upload attempts with Retry_Limit; here
                // that is `upload_attempts` (aws_outputs::s3_upload_attempts), and
                // `retry_limit` keeps one meaning everywhere.
                "retry_limit" if kind == "s3" => {
                    let (limit, warning) = retry_limit(e);
                    self.warnings.extend(warning);
                    let (attempts, warning) = aws_outputs::s3_upload_attempts(limit);
                    if let Some(w) = warning {
                        self.warn(e, w);
                    }
                    t.insert("upload_attempts".into(), attempts.into());
                }
                "retry_limit" => self.retry_limit_into(&mut t, "retry_limit", e),
                "storage.total_limit_size" => {
                    buffer(&mut t).insert("max_bytes".into(), e.value.clone().into());
                }
                "tls" | "tls.verify" | "tls.ca_file" | "tls.vhost" if kind == "forward" => {
                    let key = match e.key.as_str() {
                        "tls" => "tls",
                        "tls.verify" => "tls_verify",
                        "tls.ca_file" => "tls_ca_file",
                        _ => "tls_server_name",
                    };
                    let value = if key == "tls" || key == "tls_verify" {
                        Value::Boolean(on_off(e)?)
                    } else {
                        e.value.clone().into()
                    };
                    if key != "tls" {
                        tls_options.push((key, e.clone()));
                    }
                    t.insert(key.into(), value);
                }
                // Every output plugin of Fluent Bit has these two (`flb_output.c`).
                "log_level" | "log_suppress_interval" => self.warn(
                    e,
                    "is accepted and ignored: the router logs at one level for every component, [SERVICE] Log_Level",
                ),
                k if k.starts_with("net.")
                    || k.starts_with("tls")
                    || k == "workers" && kind != "cloudwatch_logs" =>
                {
                    self.warn(
                        e,
                        "is accepted and ignored: connections and TLS are managed by the output",
                    )
                }
                _ => {
                    t.insert(e.key.clone(), coerce(&e.value));
                    entries.push(e.clone());
                }
            }
        }
        aws_outputs::per_plugin_defaults(&name, &mut t);
        if t.get("tls") != Some(&Value::Boolean(true)) {
            for (key, e) in tls_options {
                t.remove(key);
                self.warn(
                    &e,
                    "is ignored: `tls` is off in this [OUTPUT] forward; add `tls on` to use it",
                );
            }
        }
        self.outputs.push((t, entries));
        Ok(())
    }

    fn finish(mut self) -> Result<Mapped, String> {
        let parsers = self.native.finish(&mut self.filters);
        inputs::finish(&mut self.inputs, self.native.files());
        let tail_parsers = self.tail.finish(&mut self.inputs, self.native.files());
        if self.filesystem_storage
            && let Some(path) = &self.storage_path
        {
            for (t, _) in &mut self.outputs {
                let b = buffer(t);
                b.insert("type".into(), "disk".into());
                b.insert("path".into(), path.clone().into());
            }
        }
        // Fluent Bit flushes every output once per `Flush` (default 1 s): so does each
        // output's flush window.
        self.service
            .entry("batch_timeout")
            .or_insert_with(|| "1s".into());
        let mut root = Table::new();
        root.insert("service".into(), Value::Table(self.service));
        root.insert("inputs".into(), Value::Array(self.inputs));
        root.insert("filters".into(), Value::Array(self.filters));
        let mut outputs = Vec::new();
        let mut entries = Vec::new();
        for (t, e) in self.outputs {
            outputs.push(Value::Table(t));
            entries.extend(e);
        }
        root.insert("outputs".into(), Value::Array(outputs));
        root.insert("stream_tasks".into(), Value::Array(self.stream_tasks));
        let config = deserialize_with_fallback(root).map_err(|msg| match unknown_key(&msg) {
            Some(key) => match entries.iter().find(|e| e.key == key) {
                Some(e) => format!("{}: unknown key `{key}` for this output; remove it or correct its spelling\n{msg}", at(e)),
                None => msg,
            },
            None => self.origins.describe_value_error(&msg),
        })?;
        let problems: Vec<String> = [
            parsers.err(),
            tail_parsers.err(),
            config.validate().err().map(|p| self.origins.describe(&p)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        Ok(Mapped {
            config,
            warnings: self.warnings,
            classic: true,
            origins: self.origins,
        })
    }
}

fn buffer(t: &mut Table) -> &mut Table {
    t.entry("buffer")
        .or_insert_with(|| Value::Table(Table::new()))
        .as_table_mut()
        .expect("buffer is a table")
}

fn unknown(e: &Entry, section: &str, known: &str) -> String {
    if e.key.ends_with(':') {
        return colon_key(e);
    }
    format!(
        "{}: unknown key `{}` in {section}; remove it (accepted keys: {known})",
        at(e),
        e.key
    )
}

/// Classic values are untyped: `On`/`true` become booleans and digits integers; a field that
/// wants a string gets the original text back (see [`deserialize_with_fallback`]).
fn coerce(v: &str) -> Value {
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => return Value::Boolean(true),
        "off" | "false" | "no" => return Value::Boolean(false),
        _ => {}
    }
    match v.parse::<i64>() {
        Ok(n) if !v.starts_with('0') || v == "0" => Value::Integer(n),
        _ => Value::String(v.to_string()),
    }
}

/// Deserialize, turning coerced values back into their text when serde says it wanted a string.
fn deserialize_with_fallback(mut root: Table) -> Result<Config, String> {
    for _ in 0..64 {
        match Value::Table(root.clone()).try_into::<Config>() {
            Ok(c) => return Ok(c),
            Err(e) => {
                let msg = e.to_string();
                if !(msg.contains("expected a string") || msg.contains("expected string"))
                    || !stringify_one(&mut root, &msg)
                {
                    return Err(msg.trim().to_string());
                }
            }
        }
    }
    Err("could not map the config's values onto their types".into())
}

fn stringify_one(root: &mut Table, msg: &str) -> bool {
    let Some(Value::Array(outputs)) = root.get_mut("outputs") else {
        return false;
    };
    for o in outputs {
        let Value::Table(t) = o else { continue };
        for (_, v) in t.iter_mut() {
            let text = match v {
                Value::Integer(n) => n.to_string(),
                Value::Boolean(b) => b.to_string(),
                _ => continue,
            };
            if msg.contains(&format!("`{text}`")) || msg.contains(&format!(" {text},")) {
                *v = Value::String(text);
                return true;
            }
        }
    }
    false
}

fn unknown_key(msg: &str) -> Option<&str> {
    msg.split("unknown field `").nth(1)?.split('`').next()
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod unsupported_tests;

/// A classic `WASM_Path`: a bare file name (`redact.wasm`) is one in the plugin directory,
/// where `aws_fluent_bit_init_s3_N` puts the plugins it names; anything else as written.
fn wasm_path(value: &str) -> String {
    if value.contains('/') {
        value.to_string()
    } else {
        plugin_dir().join(value).display().to_string()
    }
}
