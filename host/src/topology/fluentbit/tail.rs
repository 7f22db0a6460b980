//! `[INPUT] tail` mapped onto a `type = "tail"` input (see [`crate::input::tail`]), with Fluent
//! Bit's option names and units: sizes are bytes when bare and `K`/`M`/`G` are powers of 1000;
//! times are seconds when bare.
//!
//! `multiline.parser` (a comma list, repeatable) joins each file's lines (see
//! [`crate::input::tail`]); the parsers named are checked once every `Parsers_File` is known, at
//! their line. With it, `Parser` is accepted with a warning and not applied, as Fluent Bit
//! ignores it then.

use super::{PAUSE_ALWAYS, at, on_off, seconds, unknown};
use crate::config::classic::{Entry, Section};
use crate::parsers::{ParserCatalog, command_line_files};
use std::path::PathBuf;
use toml::{Table, Value};

const KNOWN: &str = "Path, Exclude_Path, Tag, Key, Path_Key, Offset_Key, Parser, Refresh_Interval, Rotate_Wait, Read_from_Head, Skip_Long_Lines, Skip_Empty_Lines, Buffer_Chunk_Size, Buffer_Max_Size, DB, DB.sync, DB.locking, DB.journal_mode, Inotify_Watcher, Mem_Buf_Limit, storage.type, Alias, multiline.parser";

/// What the tail inputs need once every section has been read: the `Parser` of each and their
/// `multiline.parser` entries.
#[derive(Default)]
pub struct PendingTail {
    /// Each tail input's index in `[[inputs]]` and its `Parser` entry.
    parsers: Vec<(usize, Entry)>,
    /// Each tail input's index and its `multiline.parser` entries.
    multiline: Vec<(usize, Vec<Entry>)>,
}

/// What the mapping of one section says besides its table.
pub struct Mapped {
    /// The `[[inputs]]` table.
    pub table: Table,
    /// `storage.type filesystem` was set.
    pub filesystem_storage: bool,
}

impl PendingTail {
    /// Give each tail input with a `Parser` the `Parsers_File`s, and check the parser runs,
    /// naming its `Parser` line when not.
    pub fn finish(&self, inputs: &mut [Value], parsers_files: &[PathBuf]) -> Result<(), String> {
        if self.parsers.is_empty() && self.multiline.is_empty() {
            return Ok(());
        }
        let mut all = parsers_files.to_vec();
        all.extend(command_line_files());
        let catalog = ParserCatalog::load(&all)?;
        let files: Vec<Value> = parsers_files
            .iter()
            .map(|p| Value::String(p.display().to_string()))
            .collect();
        for (index, e) in &self.parsers {
            if let Some(Value::Table(t)) = inputs.get_mut(*index) {
                t.insert("parsers_files".into(), Value::Array(files.clone()));
            }
            catalog
                .resolve(&e.value)
                .map_err(|m| format!("{}: Parser {}: {m}", at(e), e.value))?;
        }
        for (index, entries) in &self.multiline {
            if let Some(Value::Table(t)) = inputs.get_mut(*index) {
                t.insert("parsers_files".into(), Value::Array(files.clone()));
            }
            super::multiline::check_parsers(entries, &all, &catalog)?;
        }
        Ok(())
    }
}

/// Map `[INPUT] tail` (`s`), which will be `[[inputs]]` number `index`.
pub fn map(
    s: &Section,
    index: usize,
    pending: &mut PendingTail,
    warnings: &mut Vec<String>,
) -> Result<Mapped, String> {
    let mut t = Table::new();
    t.insert("type".into(), "tail".into());
    let mut filesystem_storage = false;
    let (mut multiline, mut names) = (Vec::new(), Vec::new());
    let mut parser = None;
    let mut warn = |e: &Entry, what: &str| warnings.push(format!("{}: `{}` {what}", at(e), e.key));
    for e in &s.entries {
        let value: Value = match e.key.as_str() {
            "name" => continue,
            "alias" => {
                t.insert("name".into(), e.value.clone().into());
                continue;
            }
            "path" | "exclude_path" => Value::Array(
                e.value
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| Value::String(p.to_string()))
                    .collect(),
            ),
            "tag" | "key" | "path_key" | "offset_key" | "db" => e.value.clone().into(),
            "parser" => {
                parser = Some(e);
                continue;
            }
            "refresh_interval" | "rotate_wait" => seconds(e).into(),
            "read_from_head" | "skip_long_lines" | "skip_empty_lines" | "inotify_watcher" => {
                on_off(e)?.into()
            }
            "buffer_chunk_size" | "buffer_max_size" => size(e)?.into(),
            "db.sync" => {
                let v = e.value.to_ascii_lowercase();
                if !matches!(v.as_str(), "normal" | "full" | "extra" | "off") {
                    return Err(format!(
                        "{}: DB.sync {:?}: use normal, full, extra or off",
                        at(e),
                        e.value
                    ));
                }
                t.insert("db_sync".into(), v.into());
                continue;
            }
            "db.locking" | "db.journal_mode" | "db.compare_filename" => {
                warn(
                    e,
                    "is accepted and ignored: it tunes Fluent Bit's SQLite database; the offsets file here is written whole and renamed into place",
                );
                continue;
            }
            "mem_buf_limit" | "threaded" | "static_batch_size" | "event_batch_size"
            | "file_cache_advise" => {
                warn(
                    e,
                    "is accepted; memory is bounded by [service] memory_budget, each output's buffer and Buffer_Max_Size",
                );
                continue;
            }
            "storage.type" => {
                filesystem_storage |= e.value.eq_ignore_ascii_case("filesystem");
                continue;
            }
            "storage.pause_on_chunks_overlimit" => {
                warn(e, PAUSE_ALWAYS);
                continue;
            }
            "multiline.parser" => {
                names.extend(super::multiline::parser_names(e, "docker, cri")?);
                multiline.push(e.clone());
                continue;
            }
            "docker_mode" | "docker_mode_flush" | "docker_mode_parser" => {
                if e.key == "docker_mode" && !on_off(e)? {
                    continue;
                }
                return Err(format!(
                    "{}: `{}` (the old Docker_Mode, which joins the JSON lines Docker splits at 16 KiB) is not supported; use its replacement `multiline.parser docker` instead",
                    at(e),
                    e.key
                ));
            }
            "multiline" | "multiline_flush" | "parser_firstline" => {
                if e.key == "multiline" && !on_off(e)? {
                    continue;
                }
                return Err(format!(
                    "{}: `{}` (the old multiline mode) is not supported; use `multiline.parser` instead (built in: docker, cri, go, python, java, ruby, or a [MULTILINE_PARSER] of a Parsers_File)",
                    at(e),
                    e.key
                ));
            }
            k if k.starts_with("parser_") => {
                return Err(format!(
                    "{}: `{}` (the old multiline mode) is not supported; remove it (each line is then one record)",
                    at(e),
                    e.key
                ));
            }
            _ => return Err(unknown(e, "[INPUT] tail", KNOWN)),
        };
        t.insert(e.key.clone(), value);
    }
    match parser {
        Some(e) if !multiline.is_empty() => warnings.push(format!(
            "{}: `Parser` is accepted and not applied: with `multiline.parser` set, Fluent Bit ignores it (a [MULTILINE_PARSER] can parse each line with its own `parser`)",
            at(e)
        )),
        Some(e) => {
            pending.parsers.push((index, e.clone()));
            t.insert("parser".into(), e.value.clone().into());
        }
        None => {}
    }
    if !multiline.is_empty() {
        t.insert("multiline_parser".into(), Value::Array(names));
        pending.multiline.push((index, multiline));
    }
    if !t.contains_key("path") {
        return Err(format!(
            "{}: [INPUT] tail needs `Path`, e.g. `Path /var/log/app/*.log`",
            s.origin
        ));
    }
    Ok(Mapped {
        table: t,
        filesystem_storage,
    })
}

/// A Fluent Bit size in bytes: bare bytes, or `K`/`KB`, `M`/`MB`, `G`/`GB` (powers of 1000).
fn size(e: &Entry) -> Result<i64, String> {
    let v = e.value.trim();
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(digits);
    let mult: i64 = match unit.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" | "kb" => 1000,
        "m" | "mb" => 1000 * 1000,
        "g" | "gb" => 1000 * 1000 * 1000,
        _ => 0,
    };
    number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            format!(
                "{}: {} {:?} is not a size; use bytes or K, M, G (e.g. 32k)",
                at(e),
                e.key,
                e.value
            )
        })
}
