//! `[STREAM_TASK]` sections — from `[SERVICE] Streams_File` or the main config — mapped onto
//! `[[stream_tasks]]` (see [`crate::stream`]). Each task's SQL is parsed where it is written, so
//! a statement the stream processor cannot run names its `Exec` line.

use super::{Mapper, at, relative_to, unknown};
use crate::config::classic::{self as parse, Entry, Section};
use toml::{Table, Value};

impl Mapper {
    /// `[SERVICE] Streams_File`: read the file's `[STREAM_TASK]` sections (other sections are
    /// ignored, as Fluent Bit does). A relative path is taken from the directory of the file it
    /// is written in.
    pub(super) fn streams_file(&mut self, e: &Entry) -> Result<(), String> {
        let path = relative_to(e);
        if let Err(error) = std::fs::metadata(&path) {
            return Err(format!(
                "{}: Streams_File {}: {error}; give the path of the file with the [STREAM_TASK] sections",
                at(e),
                path.display()
            ));
        }
        let sections = parse::Parser::new(&crate::topology::RouterVariables)
            .parse_file(&path)
            .map_err(|error| format!("{}: Streams_File: {error}", at(e)))?;
        for s in sections.iter().filter(|s| s.kind == "STREAM_TASK") {
            self.stream_task(s)?;
        }
        Ok(())
    }

    /// One `[STREAM_TASK]`: `Name` and `Exec`.
    pub(super) fn stream_task(&mut self, s: &Section) -> Result<(), String> {
        let mut t = Table::new();
        for e in &s.entries {
            match e.key.as_str() {
                "name" | "exec" => {
                    t.insert(e.key.clone(), e.value.clone().into());
                }
                _ => return Err(unknown(e, "[STREAM_TASK]", "Name, Exec")),
            }
        }
        for key in ["name", "exec"] {
            if !t.contains_key(key) {
                return Err(format!(
                    "{}: [STREAM_TASK] has no `{}`; a task is `Name <name>` and `Exec <SQL statement>`",
                    s.origin,
                    if key == "name" { "Name" } else { "Exec" }
                ));
            }
        }
        if let Some(exec) = s.get("exec")
            && let Err(error) = crate::stream::sql::parse(&exec.value)
        {
            return Err(format!("{}: Exec: {error}", at(exec)));
        }
        self.stream_tasks.push(Value::Table(t));
        self.origins.stream_tasks.push(s.clone());
        Ok(())
    }
}
