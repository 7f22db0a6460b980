//! Configuration primitives every component uses: units ([`ByteSize`], [`DurationStr`]),
//! `${VAR}` expansion ([`expand_env`]), reading a TOML text into a type with errors that name the
//! file, line, key and fix ([`from_toml`]), Fluent Bit's value syntax ([`fluent_bit`]), and the
//! keys components share ([`keys`]).
//!
//! This module is a leaf: it knows no component. Each component owns its config type, its
//! validation and its build; [`crate::topology`] holds the root `Config` and the registry of
//! component types.

pub mod classic;
mod expand;
pub mod fluent_bit;
pub mod keys;
mod matcher;
pub mod parsers_files;
mod units;
pub mod yaml;

pub use expand::{
    Variables, expand_classic_line, expand_env, is_credential_option, is_secret_variable,
};
pub use keys::{Keyed, MatchKeys, SharedKeys};
pub use matcher::TagMatcher;
pub use units::{ByteSize, DurationStr};

use serde::de::DeserializeOwned;
use std::path::Path;

/// Where the docs on replacing unsupported Fluent Bit features live.
pub const DOCS_WASM_FILTERS: &str = "docs/plugins.md (write a WASM filter)";

/// A configuration error: which file, where, what is wrong and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    /// The file (or `<embedded default>`).
    pub file: String,
    /// What is wrong, where, and the fix.
    pub message: String,
}

/// The text of the config file at `path`.
pub fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        message: format!("cannot read the config file: {e}"),
    })
}

/// Deserialize TOML `text` into `T`; an error names the line, the key and the fix.
pub fn from_toml<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|e| describe_toml_error(&e, text))
}

/// `{key}.{name} must be more than 0` when a size is set to zero.
pub fn positive_size(
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
