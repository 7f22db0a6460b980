//! The Fluent Bit classic format: `[SECTION]` headers, indented `Key Value` lines, `#` comments,
//! `@INCLUDE` (relative to the including file, absolute, nested, `*` globs in the file name),
//! `@SET name=value` and `${VAR}` (from `@SET`, else the environment). Keys are case-insensitive
//! and may repeat (`Record`); every entry keeps its file and line for messages.

use super::Variables;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Deepest `@INCLUDE` nesting accepted (a cycle would otherwise never end).
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// Where something was written: `file:line`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One `Key Value` line; `key` is lower-cased.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The key, lower-cased.
    pub key: String,
    /// The value, variables expanded, surrounding blanks trimmed.
    pub value: String,
    /// Where the line is.
    pub origin: Origin,
}

/// One `[SECTION]` with its entries in order.
#[derive(Clone, Debug)]
pub struct Section {
    /// The section name, upper-cased (`SERVICE`, `INPUT`, `FILTER`, `OUTPUT`, …).
    pub kind: String,
    /// Where the header is.
    pub origin: Origin,
    /// The entries, in file order.
    pub entries: Vec<Entry>,
}

impl Section {
    /// The first value of `key` (lower-case).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// Every value of `key` (lower-case), in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.key == key)
    }
}

/// A problem in a classic file: where, what, and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ParseError {
    /// Where.
    pub origin: Origin,
    /// What is wrong and what to do instead.
    pub message: String,
}

/// Parses classic files, following `@INCLUDE`s, with one `@SET` scope for all of them.
pub struct Parser<'a> {
    variables: HashMap<String, String>,
    env: &'a dyn Variables,
    sections: Vec<Section>,
}

impl<'a> Parser<'a> {
    /// A parser that reads `${VAR}`s not `@SET` from `env`.
    pub fn new(env: &'a dyn Variables) -> Self {
        Parser {
            variables: HashMap::new(),
            env,
            sections: Vec::new(),
        }
    }

    /// Parse `path` and everything it includes into sections, in the order Fluent Bit reads them.
    pub fn parse_file(mut self, path: &Path) -> Result<Vec<Section>, ParseError> {
        let origin = Origin {
            file: path.to_path_buf(),
            line: 0,
        };
        self.file(path, 0, &origin)?;
        Ok(self.sections)
    }

    /// Parse `text` as if it were the file `path`.
    pub fn parse_text(mut self, text: &str, path: &Path) -> Result<Vec<Section>, ParseError> {
        self.text(text, path, 0)?;
        Ok(self.sections)
    }

    fn file(&mut self, path: &Path, depth: usize, included_at: &Origin) -> Result<(), ParseError> {
        if depth > MAX_INCLUDE_DEPTH {
            return Err(ParseError {
                origin: included_at.clone(),
                message: format!(
                    "@INCLUDE nested deeper than {MAX_INCLUDE_DEPTH} levels (a file including itself?); remove the cycle"
                ),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| ParseError {
            origin: included_at.clone(),
            message: format!("cannot read {}: {e}; check the path (relative paths are from the including file's directory)", path.display()),
        })?;
        self.text(&text, path, depth)
    }

    fn text(&mut self, text: &str, path: &Path, depth: usize) -> Result<(), ParseError> {
        let mut in_section = false;
        for (n, raw) in text.lines().enumerate() {
            let origin = Origin {
                file: path.to_path_buf(),
                line: n + 1,
            };
            let err = |message: String| ParseError {
                origin: origin.clone(),
                message,
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = self.expand(line).map_err(&err)?;
            let line = line.trim();
            if let Some(header) = line.strip_prefix('[') {
                let name = header
                    .strip_suffix(']')
                    .ok_or_else(|| err(format!("section header `{line}` has no closing `]`")))?;
                self.sections.push(Section {
                    kind: name.trim().to_ascii_uppercase(),
                    origin: origin.clone(),
                    entries: Vec::new(),
                });
                in_section = true;
                continue;
            }
            if let Some(directive) = line.strip_prefix('@') {
                let (word, arg) = split_key(directive);
                match word.to_ascii_uppercase().as_str() {
                    "INCLUDE" => {
                        for file in resolve_include(path, arg).map_err(&err)? {
                            self.file(&file, depth + 1, &origin)?;
                        }
                        in_section = false;
                    }
                    "SET" => {
                        let (name, value) = arg
                            .split_once('=')
                            .ok_or_else(|| err(format!("`@SET {arg}` needs `name=value`")))?;
                        self.variables
                            .insert(name.trim().to_string(), value.trim().to_string());
                    }
                    _ => {
                        return Err(err(format!(
                            "unknown directive `@{word}`; only @INCLUDE and @SET exist"
                        )));
                    }
                }
                continue;
            }
            let (key, value) = split_key(line);
            if !in_section {
                return Err(err(format!(
                    "`{key}` is outside any section; put it under [SERVICE], [INPUT], [FILTER] or [OUTPUT]"
                )));
            }
            if value.is_empty() {
                return Err(err(format!("`{key}` has no value; write `{key} <value>`")));
            }
            let section = self.sections.last_mut().expect("in a section");
            section.entries.push(Entry {
                key: key.to_ascii_lowercase(),
                value: value.to_string(),
                origin,
            });
        }
        Ok(())
    }

    fn expand(&self, line: &str) -> Result<String, String> {
        if !line.contains("${") {
            return Ok(line.to_string());
        }
        let vars = SetThenEnv {
            set: &self.variables,
            env: self.env,
        };
        super::expand_classic_line(line, &vars)
            .map(|s| s.to_string())
            .map_err(|m| {
                m.split_once(": ")
                    .map_or(m.clone(), |(_, rest)| rest.to_string())
            })
    }
}

/// `${VAR}` from `@SET`, else from the environment the parser was given.
pub(super) struct SetThenEnv<'a> {
    pub(super) set: &'a HashMap<String, String>,
    pub(super) env: &'a dyn Variables,
}

impl Variables for SetThenEnv<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.set
            .get(name)
            .cloned()
            .or_else(|| self.env.lookup(name))
    }

    fn secret(&self, name: &str, value: &str) {
        self.env.secret(name, value);
    }
}

fn split_key(line: &str) -> (&str, &str) {
    match line.find(char::is_whitespace) {
        Some(at) => (&line[..at], line[at..].trim()),
        None => (line, ""),
    }
}

/// The files an `@INCLUDE` names: relative to the including file's directory; a `*` in the
/// file name matches any run of characters (sorted, as Fluent Bit's glob does).
pub(super) fn resolve_include(including: &Path, arg: &str) -> Result<Vec<PathBuf>, String> {
    if arg.is_empty() {
        return Err("@INCLUDE needs a file".to_string());
    }
    let base = including.parent().unwrap_or(Path::new("."));
    let target = if Path::new(arg).is_absolute() {
        PathBuf::from(arg)
    } else {
        base.join(arg)
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains('*') {
        return Ok(vec![target]);
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    if dir.to_string_lossy().contains('*') {
        return Err(format!(
            "@INCLUDE {arg}: `*` is supported in the file name only, not in directories"
        ));
    }
    let pattern = super::TagMatcher::wildcard(&name);
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("@INCLUDE {arg}: cannot list {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| pattern.matches(e.file_name().to_string_lossy().as_bytes()))
        .map(|e| e.path())
        .collect();
    files.sort();
    Ok(files)
}
