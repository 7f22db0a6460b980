//! `type = "tail"` under `[[inputs]]`: Fluent Bit's `in_tail`, its config and its checks.

use crate::config::{ByteSize, DurationStr, positive_size};
use crate::multiline::{ParserChain, resolve_names};
use crate::parsers::{Parser, ParserCatalog, command_line_files};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Default `buffer_chunk_size` and `buffer_max_size` (Fluent Bit's 32768 bytes).
pub const DEFAULT_CHUNK: u64 = 32 * 1024;
/// Most bytes `buffer_max_size` may be: one line is held whole in memory.
pub const MAX_LINE: u64 = 64 << 20;
/// Default `refresh_interval` (Fluent Bit: 60 seconds).
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);
/// Default `rotate_wait` (Fluent Bit: 5 seconds).
pub const DEFAULT_ROTATE_WAIT: Duration = Duration::from_secs(5);
/// Default `max_open_files`: a glob matching thousands of files opens this many at a time.
pub const DEFAULT_MAX_OPEN_FILES: usize = 1024;

/// `type = "tail"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailInputConfig {
    /// A name for metrics and logs; default `tail`.
    #[serde(default)]
    pub name: Option<String>,
    /// Shell globs of the files to read: a list, or one string of comma-separated globs as
    /// Fluent Bit's `Path`.
    #[serde(deserialize_with = "globs")]
    pub path: Vec<String>,
    /// Shell globs of files not to read, matched against the whole path (`Exclude_Path`); a
    /// list or a comma-separated string.
    #[serde(default, deserialize_with = "globs")]
    pub exclude_path: Vec<String>,
    /// The tag of every record (default `tail`); a `*` in it is replaced by the file's path
    /// with `/` turned into `.` (`kube.*` → `kube.var.log.app.log`).
    #[serde(default)]
    pub tag: Option<String>,
    /// The key of each line's text (default `log`).
    #[serde(default)]
    pub key: Option<String>,
    /// Add the file's path to each record under this key.
    #[serde(default)]
    pub path_key: Option<String>,
    /// Add the file offset after the line to each record under this key.
    #[serde(default)]
    pub offset_key: Option<String>,
    /// A parser (built in, or from `parsers_files` / `-R`) applied to each line; a line it does
    /// not parse is kept as `{key: line}`. Not with `multiline_parser`.
    #[serde(default)]
    pub parser: Option<String>,
    /// Files with `[PARSER]` and `[MULTILINE_PARSER]` sections for `parser` and
    /// `multiline_parser`.
    #[serde(default)]
    pub parsers_files: Vec<PathBuf>,
    /// Multiline parsers (Fluent Bit `multiline.parser`), tried in order, joining the lines of
    /// each file: built-in `docker`, `cri`, `go`, `python`, `java`, `ruby`, or a
    /// `[MULTILINE_PARSER]` of `parsers_files` / `-R`. A joined record's text is under `log`
    /// (as in Fluent Bit; `key` and `parser` are not applied then).
    #[serde(default)]
    pub multiline_parser: Vec<String>,
    /// How often the globs are looked at again for new files (default 60s); open files are
    /// also watched with inotify and checked every second.
    #[serde(default)]
    pub refresh_interval: Option<DurationStr>,
    /// How long a file that was rotated away is still read (default 5s).
    #[serde(default)]
    pub rotate_wait: Option<DurationStr>,
    /// Files found at start with no offset in `db` are read from their start instead of their
    /// end (files found later are always read from their start, as Fluent Bit does).
    #[serde(default)]
    pub read_from_head: bool,
    /// Skip a line longer than `buffer_max_size` (counted `line_too_long`) instead of stopping
    /// the file.
    #[serde(default)]
    pub skip_long_lines: bool,
    /// Skip empty lines.
    #[serde(default)]
    pub skip_empty_lines: bool,
    /// How much is read at a time (default 32KiB).
    #[serde(default)]
    pub buffer_chunk_size: Option<ByteSize>,
    /// The longest line (default 32KiB).
    #[serde(default)]
    pub buffer_max_size: Option<ByteSize>,
    /// Where the offsets are kept across restarts (Fluent Bit `DB`): a file of this router's
    /// own format, written whole and renamed into place.
    #[serde(default)]
    pub db: Option<PathBuf>,
    /// `normal` (default; the offsets survive the router being killed) or `full` / `extra`
    /// (also fsynced: they survive the machine losing power); `off` is `normal`.
    #[serde(default)]
    pub db_sync: DbSync,
    /// Most files open at once (default 1024); when more match, files idle for
    /// `refresh_interval` are closed (their offsets kept) to give the others a turn.
    #[serde(default)]
    pub max_open_files: Option<usize>,
    /// Wake on inotify events (default true); without it, open files are checked every second.
    #[serde(default)]
    pub inotify_watcher: Option<bool>,
}

/// `db_sync`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DbSync {
    /// Written and renamed: safe against the router being killed.
    #[default]
    Normal,
    /// Also fsynced: safe against power loss.
    Full,
    /// As `full`.
    Extra,
    /// As `normal`.
    Off,
}

/// A list of globs, or one string of comma-separated globs.
fn globs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Globs {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Globs::deserialize(d)? {
        Globs::One(text) => text
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(String::from)
            .collect(),
        Globs::Many(globs) => globs,
    })
}

impl TailInputConfig {
    /// Check the keys, adding one problem per mistake, each starting with `key` (`inputs[0]`).
    pub fn validate(&self, key: &str, problems: &mut Vec<String>) {
        if self.path.is_empty() {
            problems.push(format!(
                "{key}.path: name at least one file or glob, e.g. [\"/var/log/app/*.log\"]"
            ));
        }
        for (field, globs) in [("path", &self.path), ("exclude_path", &self.exclude_path)] {
            for (i, g) in globs.iter().enumerate() {
                if let Err(e) = glob::Pattern::new(g) {
                    problems.push(format!(
                        "{key}.{field}[{i}] = {g:?} is not a glob: {e}; e.g. \"/var/log/*.log\""
                    ));
                } else if field == "path" && !g.starts_with('/') {
                    problems.push(format!(
                        "{key}.path[{i}] = {g:?} is relative; write the absolute path, e.g. \"/var/log/*.log\""
                    ));
                }
            }
        }
        positive_size(
            key,
            "buffer_chunk_size",
            self.buffer_chunk_size,
            "\"32KiB\"",
            problems,
        );
        positive_size(
            key,
            "buffer_max_size",
            self.buffer_max_size,
            "\"32KiB\"",
            problems,
        );
        if self.buffer_max_size.is_some_and(|b| b.0 > MAX_LINE) {
            problems.push(format!(
                "{key}.buffer_max_size must be at most 64MiB (one line is held whole), e.g. \"1MiB\""
            ));
        }
        let (chunk, max) = self.sizes();
        if chunk > max {
            problems.push(format!(
                "{key}.buffer_max_size ({max} bytes) must be at least buffer_chunk_size ({chunk} bytes, default 32KiB), as in Fluent Bit; raise buffer_max_size or lower buffer_chunk_size"
            ));
        }
        if self.key.as_deref() == Some("") {
            problems.push(format!("{key}.key must not be empty; remove it for `log`"));
        }
        if self.refresh_interval.is_some_and(|d| d.0.is_zero()) {
            problems.push(format!(
                "{key}.refresh_interval must be more than 0, e.g. \"10s\""
            ));
        }
        if self.max_open_files == Some(0) {
            problems.push(format!("{key}.max_open_files must be at least 1"));
        }
        if let Err(e) = self.multiline_chain() {
            problems.push(format!("{key}{e}"));
        }
        if !self.multiline_parser.is_empty() && self.parser.is_some() {
            problems.push(format!(
                "{key}.parser is not applied when multiline_parser is set (Fluent Bit ignores it then); remove one of them, or name a [MULTILINE_PARSER] whose `parser` parses each line"
            ));
        }
        if let Some(db) = &self.db
            && let Err(e) = super::db::OffsetDb::check(db)
        {
            problems.push(format!("{key}.db: {e}"));
        }
        if let Err(e) = self.line_parser() {
            problems.push(format!("{key}.parser: {e}"));
        }
    }

    /// The parser named by `parser`, if any.
    pub fn line_parser(&self) -> Result<Option<Parser>, String> {
        let Some(name) = &self.parser else {
            return Ok(None);
        };
        let mut files = self.parsers_files.clone();
        files.extend(command_line_files());
        ParserCatalog::load(&files)?.resolve(name).map(Some)
    }

    /// The multiline parsers of `multiline_parser`, if any; an error starts with the key
    /// (`.multiline_parser[0]: …`).
    pub fn multiline_chain(&self) -> Result<Option<ParserChain>, String> {
        if self.multiline_parser.is_empty() {
            return Ok(None);
        }
        let mut files = self.parsers_files.clone();
        files.extend(command_line_files());
        let parsers = resolve_names(&self.multiline_parser, &files)?;
        Ok(Some(ParserChain::new(parsers, None)))
    }

    /// `buffer_chunk_size` and `buffer_max_size` in bytes.
    pub fn sizes(&self) -> (usize, usize) {
        let chunk = self
            .buffer_chunk_size
            .map_or(DEFAULT_CHUNK, |c| c.0)
            .min(MAX_LINE);
        let max = self
            .buffer_max_size
            .map_or(DEFAULT_CHUNK, |b| b.0)
            .min(MAX_LINE);
        (chunk as usize, max as usize)
    }

    /// The input's name.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("tail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> TailInputConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn sizes_default_to_fluent_bits_and_a_line_is_never_below_a_chunk() {
        let c = parse("path = [\"/var/log/*.log\"]\n");
        assert_eq!(c.sizes(), (32 * 1024, 32 * 1024));
        let c = parse("path = \"/var/log/a/*.log, /var/log/b.log\"\nexclude_path = \"*.gz\"\n");
        assert_eq!(c.path, ["/var/log/a/*.log", "/var/log/b.log"]);
        assert_eq!(c.exclude_path, ["*.gz"]);
        let c = parse("path = [\"/l\"]\nbuffer_chunk_size = \"64KiB\"\nbuffer_max_size = 1000\n");
        let mut problems = Vec::new();
        c.validate("inputs[0]", &mut problems);
        assert!(
            problems[0].contains("inputs[0].buffer_max_size (1000 bytes) must be at least buffer_chunk_size (65536 bytes"),
            "{problems:?}"
        );
    }

    #[test]
    fn mistakes_name_the_key_and_the_fix() {
        let c = parse(
            "path = [\"logs/*.log\", \"/a/[\"]\nexclude_path = [\"[\"]\nbuffer_max_size = \"1GiB\"\nmax_open_files = 0\nmultiline_parser = [\"java\", \"nope\"]\nparser = \"nope\"\nrefresh_interval = \"0s\"\n",
        );
        let mut problems = Vec::new();
        c.validate("inputs[3]", &mut problems);
        let text = problems.join("\n");
        for needle in [
            "inputs[3].path[0] = \"logs/*.log\" is relative",
            "inputs[3].path[1] = \"/a/[\" is not a glob",
            "inputs[3].exclude_path[0] = \"[\" is not a glob",
            "inputs[3].buffer_max_size must be at most 64MiB",
            "inputs[3].max_open_files must be at least 1",
            "inputs[3].multiline_parser[1]: multiline parser `nope` is not defined",
            "inputs[3].parser is not applied when multiline_parser is set",
            "inputs[3].parser: parser `nope` is not defined",
            "inputs[3].refresh_interval must be more than 0",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        let mut problems = Vec::new();
        parse("path = [\"/var/log/*.log\"]\nparser = \"json\"\n").validate("i", &mut problems);
        parse("path = [\"/var/log/*.log\"]\nmultiline_parser = [\"docker\", \"cri\"]\n")
            .validate("i", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }
}
