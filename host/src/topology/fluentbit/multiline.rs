//! `[FILTER] multiline` mapped onto a `type = "multiline"` filter ([`crate::filter::multiline`]).
//!
//! `multiline.parser` (a comma list, repeatable), `multiline.key_content`, `mode`, `flush_ms`
//! and `buffer` keep their Fluent Bit meaning. The emitter keys (`emitter_name`,
//! `emitter_storage.type`, `emitter_mem_buf_limit`) are accepted with a warning: a message the
//! timer releases continues down the chain straight into the outputs' buffers, which bound it.
//! The parsers named are checked once every `Parsers_File` is known, at their line.
//!
//! `mode partial_message` also sets the router's built-in partial reassembly's timeout
//! (`[service] partial_flush_timeout`) from `flush_ms`: that stage joins the pieces of `log`
//! before any filter sees them.

use super::{at, on_off, unknown};
use crate::config::classic::{Entry, Section};
use crate::multiline::MultilineCatalog;
use crate::parsers::ParserCatalog;
use std::path::PathBuf;
use toml::{Table, Value};

/// The keys of `[FILTER] multiline`.
const KEYS: &str = "Match, Match_Regex, Alias, multiline.parser, multiline.key_content, Mode, flush_ms, buffer, emitter_name, emitter_storage.type, emitter_mem_buf_limit, debug_flush";

/// Map the section `s`; returns the filter's table and its `multiline.parser` entries.
pub fn map(
    s: &Section,
    service: &mut Table,
    warnings: &mut Vec<String>,
) -> Result<(Table, Vec<Entry>), String> {
    let mut t = Table::new();
    t.insert("type".into(), "multiline".into());
    let mut parsers = Vec::new();
    let mut names = Vec::new();
    let mut mode: Option<&Entry> = None;
    let mut flush_ms = None;
    for e in &s.entries {
        match e.key.as_str() {
            "name" => {}
            "match" | "match_regex" => {
                t.insert(e.key.clone(), e.value.clone().into());
            }
            "alias" => {
                t.insert("name".into(), e.value.clone().into());
            }
            "multiline.parser" => {
                names.extend(parser_names(e, "java")?);
                parsers.push(e.clone());
            }
            "multiline.key_content" => {
                t.insert("key_content".into(), e.value.clone().into());
            }
            "mode" => {
                let m = e.value.to_ascii_lowercase();
                if m != "parser" && m != "partial_message" {
                    return Err(format!(
                        "{}: Mode {:?}: use `parser` or `partial_message`",
                        at(e),
                        e.value
                    ));
                }
                t.insert("mode".into(), m.into());
                mode = Some(e);
            }
            "flush_ms" => {
                let ms: u64 = e.value.parse().ok().filter(|&ms| ms > 0).ok_or_else(|| {
                    format!(
                        "{}: flush_ms {:?}: use milliseconds, e.g. `flush_ms 2000`",
                        at(e),
                        e.value
                    )
                })?;
                t.insert("flush_timeout".into(), format!("{ms}ms").into());
                flush_ms = Some(ms);
            }
            "buffer" => {
                t.insert("buffer".into(), on_off(e)?.into());
            }
            "emitter_storage.type"
                if !["memory", "filesystem"].contains(&e.value.to_ascii_lowercase().as_str()) =>
            {
                return Err(format!(
                    "{}: emitter_storage.type {:?}: use memory or filesystem",
                    at(e),
                    e.value
                ));
            }
            "emitter_name" | "emitter_storage.type" | "emitter_mem_buf_limit" => {
                warnings.push(format!(
                    "{}: `{}` is accepted and ignored: a message released by the flush timer goes down the chain into the outputs' buffers, which bound it",
                    at(e),
                    e.key
                ));
            }
            "debug_flush" => warnings.push(format!(
                "{}: `debug_flush` is accepted and ignored; use an `stdout` output to see the joined records",
                at(e)
            )),
            _ => return Err(unknown(e, "[FILTER] multiline", KEYS)),
        }
    }
    let partial = mode.is_some_and(|e| e.value.eq_ignore_ascii_case("partial_message"));
    if partial {
        if let Some(e) = parsers.first() {
            return Err(format!(
                "{}: multiline.parser cannot be used with `Mode partial_message` (Fluent Bit refuses it too); use two [FILTER] multiline sections",
                at(e)
            ));
        }
        if t.get("buffer") == Some(&Value::Boolean(false)) {
            return Err(format!(
                "{}: `Mode partial_message` needs `buffer On` (the pieces of a line arrive apart)",
                s.origin
            ));
        }
        if let Some(ms) = flush_ms {
            service.insert("partial_flush_timeout".into(), format!("{ms}ms").into());
        }
    } else if parsers.is_empty() {
        return Err(format!(
            "{}: [FILTER] multiline needs `multiline.parser` (e.g. `multiline.parser java, python`; built in: docker, cri, go, python, java, ruby), or `Mode partial_message` for Docker's split lines",
            s.origin
        ));
    } else {
        t.insert("multiline_parser".into(), Value::Array(names));
    }
    Ok((t, parsers))
}

/// The names of a `multiline.parser` entry (a comma list, repeatable), e.g. for the message
/// `multiline.parser java`: at least one.
pub fn parser_names(e: &Entry, example: &str) -> Result<Vec<Value>, String> {
    let names: Vec<Value> = e
        .value
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| Value::String(n.to_string()))
        .collect();
    if names.is_empty() {
        return Err(format!(
            "{}: multiline.parser is empty; name a parser, e.g. `multiline.parser {example}`",
            at(e)
        ));
    }
    Ok(names)
}

/// Check that every parser the `multiline.parser` entries name exists and builds, with the
/// parsers `files` (`catalog` holds their `[PARSER]`s), naming the entry's line when not.
pub fn check_parsers(
    entries: &[Entry],
    files: &[PathBuf],
    catalog: &ParserCatalog,
) -> Result<(), String> {
    let multiline = MultilineCatalog::load(files)?;
    for e in entries {
        for name in e.value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            multiline
                .resolve_with(name, catalog)
                .map_err(|m| format!("{}: multiline.parser {name}: {m}", at(e)))?;
        }
    }
    Ok(())
}
