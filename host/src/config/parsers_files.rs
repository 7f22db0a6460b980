//! Parsers files (`-R <file>`, `[SERVICE] Parsers_File`, a component's `parsers_files`): the
//! `[PARSER]` and `[MULTILINE_PARSER]` definitions of Fluent Bit's classic format, or of its YAML
//! format (`parsers:` / `multiline_parsers:`). [`Definitions`] is what both catalogs
//! (`crate::parsers`, `crate::multiline`) read: the sections of one kind, later ones winning.

use super::classic::{Parser as ClassicParser, Section};
use std::path::{Path, PathBuf};

/// The sections of one kind found in parsers files, and where they were looked for.
#[derive(Debug, Default)]
pub struct Definitions {
    sections: Vec<Section>,
    files: Vec<PathBuf>,
    unreadable: Vec<String>,
}

impl Definitions {
    /// The `kind` sections (`PARSER`, `MULTILINE_PARSER`) of `built_in` (classic text) and then
    /// of `files`. A file that cannot be read is noted, and named only if a definition is then
    /// missing ([`Definitions::looked_in`]); one that does not parse is an error naming its line.
    pub fn load(kind: &str, built_in: &str, files: &[PathBuf]) -> Result<Definitions, String> {
        let env = |name: &str| std::env::var(name).ok();
        let mut sections = ClassicParser::new(&env)
            .parse_text(built_in, Path::new("<built-in parsers>"))
            .map_err(|e| e.to_string())?;
        let mut unreadable = Vec::new();
        for file in files {
            if let Err(e) = std::fs::metadata(file) {
                unreadable.push(format!("{}: {e}", file.display()));
                continue;
            }
            let parsed = if super::yaml::is_yaml(file) {
                super::yaml::parse_file(file, &env)
            } else {
                ClassicParser::new(&env).parse_file(file)
            }
            .map_err(|e| format!("parsers file {}: {e}", file.display()))?;
            sections.extend(parsed);
        }
        Ok(Definitions::new(kind, sections, files, unreadable))
    }

    /// The `kind` sections among `sections`, read from `files` (`unreadable`: the files that
    /// could not be read, with why).
    pub fn new(
        kind: &str,
        mut sections: Vec<Section>,
        files: &[PathBuf],
        unreadable: Vec<String>,
    ) -> Definitions {
        sections.retain(|s| s.kind == kind);
        Definitions {
            sections,
            files: files.to_vec(),
            unreadable,
        }
    }

    /// The last definition called `name` (case-sensitive, as in Fluent Bit).
    pub fn get(&self, name: &str) -> Option<&Section> {
        self.sections
            .iter()
            .rev()
            .find(|s| s.get("name").is_some_and(|e| e.value == name))
    }

    /// The names defined, in definition order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sections
            .iter()
            .filter_map(|s| s.get("name").map(|e| e.value.as_str()))
    }

    /// Where definitions were looked for, for a "not defined" message: `not in the parsers
    /// files: a, b (could not read c: …)`, or that no parsers file was given.
    pub fn looked_in(&self) -> String {
        let files = if self.files.is_empty() {
            "no parsers file was given".to_string()
        } else {
            format!(
                "not in the parsers files: {}",
                self.files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        if self.unreadable.is_empty() {
            files
        } else {
            format!("{files} (could not read {})", self.unreadable.join("; "))
        }
    }
}
