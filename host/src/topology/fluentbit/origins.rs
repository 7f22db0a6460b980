//! Where each component of a mapped classic config was written, so that a problem found on the
//! mapped [`Config`](crate::topology::Config) (`inputs[0].buffer_max_size must be …`) is reported
//! in the terms the user wrote: `fluent-bit.conf:12: buffer_max_size must be …`.

use crate::config::classic::{Entry, Section};

/// The classic section behind every mapped component, by the component's index.
#[derive(Clone, Debug, Default)]
pub struct Origins {
    pub(super) service: Vec<Section>,
    pub(super) inputs: Vec<Section>,
    pub(super) filters: Vec<Section>,
    pub(super) outputs: Vec<Section>,
    pub(super) stream_tasks: Vec<Section>,
}

/// Classic keys that map onto a differently named key.
const RENAMED: &[(&str, &[&str])] = &[
    ("listen", &["listen", "port"]),
    ("http_listen", &["http_listen", "http_port", "http_server"]),
    ("name", &["alias"]),
    ("path", &["path", "wasm_path"]),
    ("tls.cert_file", &["tls.crt_file"]),
    ("partial_flush_timeout", &["flush_ms"]),
    ("flush_timeout", &["flush_ms"]),
    ("multiline_parser", &["multiline.parser"]),
    ("key_content", &["multiline.key_content"]),
];

impl Origins {
    /// Every line of `problems` (one problem per line, each starting with its key path) with the
    /// key path replaced by `file:line` and the classic key, where the key is known. TOML
    /// configs have no origins: their problems come back unchanged.
    pub fn describe(&self, problems: &str) -> String {
        problems
            .lines()
            .map(|line| self.describe_one(line))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A value serde refused (`"-5": a size cannot be negative` … ``in `inputs` ``), at the
    /// `file:line` and key of the entry it came from: by the key path serde names when it names
    /// one, else by the quoted value.
    pub fn describe_value_error(&self, msg: &str) -> String {
        let (first, path) = match msg.rsplit_once("\nin `") {
            Some((first, path)) => (first.trim(), path.trim_end_matches('`')),
            None => (msg.trim(), ""),
        };
        if path.contains('.') {
            let described = self.describe_one(&format!("{path}: {first}"));
            if !described.starts_with(path) {
                return described;
            }
        }
        let all = [
            &self.service,
            &self.inputs,
            &self.filters,
            &self.outputs,
            &self.stream_tasks,
        ];
        let entry = all
            .iter()
            .flat_map(|sections| sections.iter())
            .flat_map(|s| s.entries.iter())
            .filter(|e| !e.value.is_empty() && first.contains(&format!("{:?}", e.value)))
            .max_by_key(|e| e.value.len());
        match entry {
            Some(e) => format!("{}: {}: {first}", e.origin, e.key),
            None => msg.to_string(),
        }
    }

    fn describe_one(&self, problem: &str) -> String {
        // The config-wide problems, in classic terms.
        if problem.starts_with("no [[inputs]]") {
            return "no [INPUT] section: add one, e.g. `[INPUT]` with `Name forward` and `unix_path /var/run/fluent.sock`".into();
        }
        if problem.starts_with("no [[outputs]]") {
            return "no [OUTPUT] section: add one, e.g. `[OUTPUT]` with `Name stdout` and `Match *`".into();
        }
        let path_len = problem.find([' ', ':', '=']).unwrap_or(problem.len());
        let (path, rest) = problem.split_at(path_len);
        let (head, key) = path.split_once('.').unwrap_or((path, ""));
        let Some(section) = self.section(head) else {
            return problem.to_string();
        };
        let rest = self.references(rest);
        match entry_for(section, key) {
            Some(e) => format!("{}: {}{rest}", e.origin, e.key),
            None => {
                let name = section
                    .get("name")
                    .map(|e| format!(" {}", e.value))
                    .unwrap_or_default();
                let what = if key.is_empty() {
                    rest.trim_start_matches([':', ' ']).to_string()
                } else {
                    format!("{key}{rest}")
                };
                format!("{}: [{}]{name}: {what}", section.origin, section.kind)
            }
        }
    }
}

impl Origins {
    /// The section behind `inputs[3]`, `service`, ….
    fn section(&self, head: &str) -> Option<&Section> {
        match component(head)? {
            ("service", None) => self.service.first(),
            ("inputs", Some(i)) => self.inputs.get(i),
            ("filters", Some(i)) => self.filters.get(i),
            ("outputs", Some(i)) => self.outputs.get(i),
            ("stream_tasks", Some(i)) => self.stream_tasks.get(i),
            _ => None,
        }
    }

    /// `text` with every other key path it mentions (`… clashes with inputs[0].listen`) given
    /// as the classic key and its `file:line`.
    fn references(&self, text: &str) -> String {
        let paths = regex::Regex::new(
            r"\b(service|(?:inputs|filters|outputs|stream_tasks)\[\d+\])(?:\.([A-Za-z0-9_.]*[A-Za-z0-9_]))?",
        )
        .expect("a valid regex");
        paths
            .replace_all(text, |c: &regex::Captures<'_>| {
                let whole = c[0].to_string();
                let key = c.get(2).map_or("", |m| m.as_str());
                match (self.section(&c[1]), key) {
                    (Some(section), "") => format!("[{}] at {}", section.kind, section.origin),
                    (Some(section), key) => entry_for(section, key)
                        .map_or(whole, |e| format!("`{}` at {}", e.key, e.origin)),
                    (None, _) => whole,
                }
            })
            .into_owned()
    }
}

/// `inputs[3]` → `("inputs", Some(3))`, `service` → `("service", None)`.
fn component(head: &str) -> Option<(&str, Option<usize>)> {
    match head.split_once('[') {
        Some((kind, index)) => Some((kind, index.strip_suffix(']')?.parse().ok())),
        None => Some((head, None)),
    }
}

/// The entry of `section` the mapped key `key` (`buffer_max_size`, `buffer.max_bytes`) came from.
fn entry_for<'a>(section: &'a Section, key: &str) -> Option<&'a Entry> {
    if key.is_empty() {
        return None;
    }
    let last = key.rsplit('.').next().unwrap_or(key);
    let renamed = RENAMED
        .iter()
        .filter(|(mapped, _)| *mapped == key || *mapped == last)
        .flat_map(|(_, classic)| classic.iter().copied());
    [key, last]
        .into_iter()
        .chain(renamed)
        .find_map(|k| section.get(k))
}

#[cfg(test)]
mod tests {
    use super::super::parse::Parser;
    use super::*;
    use std::path::Path;

    fn origins(text: &str) -> Origins {
        let sections = Parser::new(&|_: &str| None)
            .parse_text(text, Path::new("fb.conf"))
            .unwrap();
        let of = |kind: &str| {
            sections
                .iter()
                .filter(|s| s.kind == kind)
                .cloned()
                .collect::<Vec<_>>()
        };
        Origins {
            service: of("SERVICE"),
            inputs: of("INPUT"),
            filters: of("FILTER"),
            outputs: of("OUTPUT"),
            stream_tasks: of("STREAM_TASK"),
        }
    }

    #[test]
    fn key_paths_become_file_line_and_the_classic_key() {
        let o = origins(
            "[SERVICE]\n    Grace 5\n    HTTP_Server On\n    HTTP_Port 2020\n[INPUT]\n    Name forward\n    Port 24224\n    Buffer_Max_Size 0\n[OUTPUT]\n    Name null\n    Match *\n",
        );
        assert_eq!(
            o.describe("inputs[0].buffer_max_size must be more than 0, e.g. \"6M\""),
            "fb.conf:8: buffer_max_size must be more than 0, e.g. \"6M\""
        );
        assert_eq!(
            o.describe("inputs[0].listen: 0.0.0.0:24224 is already taken"),
            "fb.conf:7: port: 0.0.0.0:24224 is already taken"
        );
        assert_eq!(
            o.describe("service.http_listen: taken"),
            "fb.conf:4: http_port: taken"
        );
        assert_eq!(
            o.describe("outputs[0]: set `match`\noutputs[0].buffer.max_bytes must be more than 0"),
            "fb.conf:9: [OUTPUT] null: set `match`\nfb.conf:9: [OUTPUT] null: buffer.max_bytes must be more than 0"
        );
        assert_eq!(
            o.describe("inputs[0].listen = \"x\" clashes with service.http_listen = \"y\""),
            "fb.conf:7: port = \"x\" clashes with `http_port` at fb.conf:4 = \"y\""
        );
        assert_eq!(o.describe("outputs[7]: x"), "outputs[7]: x");
        assert_eq!(
            o.describe_value_error("\"0\": a size cannot be negative\nin `inputs`"),
            "fb.conf:8: buffer_max_size: \"0\": a size cannot be negative"
        );
        assert_eq!(
            o.describe_value_error("\"5\" is too long\nin `service.grace`"),
            "fb.conf:2: grace: \"5\" is too long"
        );
        assert_eq!(
            Origins::default().describe("inputs[0].a b"),
            "inputs[0].a b"
        );
    }
}
