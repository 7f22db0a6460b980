//! Fluent Bit's YAML config format (`fluent-bit.yaml`), read into the same [`Section`]s the
//! classic format gives, so one mapping serves both:
//!
//! ```yaml
//! env:                      # variables for ${NAME}, before the environment
//!   LEVEL: info
//! includes: [more.yaml]     # relative to this file
//! service: {log_level: ${LEVEL}, parsers_file: parsers.conf}
//! parsers: [{name: app, format: regex, regex: '^(?<msg>.*)$'}]
//! multiline_parsers:
//!   - {name: ml, type: regex, rules: [{state: start_state, regex: '/^\d/', next_state: cont}]}
//! pipeline:
//!   inputs:  [{name: forward, listen: 0.0.0.0, port: 24224}]
//!   filters: [{name: record_modifier, match: '*', record: [a 1, b 2]}]
//!   outputs: [{name: stdout, match: '*'}]
//! stream_processor: [{name: t, exec: "SELECT * FROM TAG:'x';"}]
//! ```
//!
//! Keys are case-insensitive; a list value is the key repeated (`record` above); a rule of a
//! multiline parser becomes the classic `rule "state" "regex" "next_state"`. Every entry keeps
//! the line of its value. What the format has and the router does not (`processors`,
//! `plugins`, `customs`, `upstream_servers`) is refused at its line.

use super::Variables;
use super::classic::{Entry, Origin, ParseError, Section, SetThenEnv, resolve_include};
use std::collections::HashMap;
use std::path::Path;
use yaml_rust2::parser::{Event, Parser};

/// A YAML value with the line it starts on.
#[derive(Debug)]
enum Node {
    Scalar(String, usize),
    Seq(Vec<Node>, usize),
    Map(Vec<(String, usize, Node)>, usize),
}

impl Node {
    fn line(&self) -> usize {
        match self {
            Node::Scalar(_, l) | Node::Seq(_, l) | Node::Map(_, l) => *l,
        }
    }
}

/// Whether `path` names a YAML file (`.yaml`, `.yml`).
pub fn is_yaml(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// Read the YAML config at `path` and its includes into sections, `${VAR}` expanded from its
/// `env` (then `env`).
pub fn parse_file(path: &Path, env: &dyn Variables) -> Result<Vec<Section>, ParseError> {
    let mut reader = Reader {
        env,
        variables: HashMap::new(),
        sections: Vec::new(),
    };
    let origin = Origin {
        file: path.to_path_buf(),
        line: 0,
    };
    reader.file(path, 0, &origin)?;
    Ok(reader.sections)
}

struct Reader<'a> {
    env: &'a dyn Variables,
    variables: HashMap<String, String>,
    sections: Vec<Section>,
}

fn read_tree(text: &str, file: &Path) -> Result<Option<Node>, ParseError> {
    let mut parser = Parser::new_from_str(text);
    let err = |line: usize, message: String| ParseError {
        origin: Origin {
            file: file.to_path_buf(),
            line,
        },
        message,
    };
    let mut next = || {
        parser
            .next_token()
            .map_err(|e| err(e.marker().line(), format!("not valid YAML: {}", e.info())))
    };
    // (node under construction, pending key of a map)
    let mut stack: Vec<(Node, Option<(String, usize)>)> = Vec::new();
    let mut root = None;
    loop {
        let (event, mark) = next()?;
        let line = mark.line();
        let node = match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::DocumentStart | Event::DocumentEnd | Event::Nothing => {
                continue;
            }
            Event::Alias(_) => {
                return Err(err(
                    line,
                    "YAML aliases (`*name`) are not supported; write the value out".into(),
                ));
            }
            Event::SequenceStart(..) => {
                stack.push((Node::Seq(Vec::new(), line), None));
                continue;
            }
            Event::MappingStart(..) => {
                stack.push((Node::Map(Vec::new(), line), None));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => stack.pop().expect("a started node").0,
            Event::Scalar(value, ..) => {
                // A scalar is a map's key when the map waits for one.
                if let Some((Node::Map(..), pending @ None)) = stack.last_mut() {
                    *pending = Some((value, line));
                    continue;
                }
                Node::Scalar(value, line)
            }
        };
        match stack.last_mut() {
            None => root = Some(node),
            Some((Node::Seq(items, _), _)) => items.push(node),
            Some((Node::Map(entries, _), pending)) => {
                let (key, key_line) = pending
                    .take()
                    .ok_or_else(|| err(node.line(), "a map key must be a plain value".into()))?;
                entries.push((key, key_line, node));
            }
            Some((Node::Scalar(..), _)) => unreachable!("scalars are never on the stack"),
        }
    }
    Ok(root)
}

impl Reader<'_> {
    fn file(&mut self, path: &Path, depth: usize, included_at: &Origin) -> Result<(), ParseError> {
        if depth > super::classic::MAX_INCLUDE_DEPTH {
            return Err(ParseError {
                origin: included_at.clone(),
                message: "includes nested too deep (a file including itself?); remove the cycle"
                    .into(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| ParseError {
            origin: included_at.clone(),
            message: format!(
                "cannot read {}: {e}; check the path (relative paths are from the including file's directory)",
                path.display()
            ),
        })?;
        let Some(root) = read_tree(&text, path)? else {
            return Ok(());
        };
        let at = |line: usize| Origin {
            file: path.to_path_buf(),
            line,
        };
        let err = |line: usize, message: String| ParseError {
            origin: at(line),
            message,
        };
        let Node::Map(top, _) = root else {
            return Err(err(
                root.line(),
                "the config must be a map of sections (service, pipeline, parsers, …)".into(),
            ));
        };
        // `env` first: every other section may use its variables.
        for (key, _, value) in &top {
            if key.eq_ignore_ascii_case("env") {
                let Node::Map(vars, _) = value else {
                    return Err(err(
                        value.line(),
                        "`env` must be a map of NAME: value".into(),
                    ));
                };
                for (name, line_of, v) in vars {
                    let Node::Scalar(v, _) = v else {
                        return Err(err(*line_of, format!("env `{name}` must be a plain value")));
                    };
                    self.variables.insert(name.clone(), v.clone());
                }
            }
        }
        for (key, line, value) in top {
            match key.to_ascii_lowercase().as_str() {
                "env" => {}
                "includes" => {
                    for item in seq_of(&value, "includes", path)? {
                        let Node::Scalar(file, l) = item else {
                            return Err(err(item.line(), "an include is a file name".into()));
                        };
                        let file = self.expand("includes", file).map_err(|m| err(*l, m))?;
                        for included in resolve_include(path, &file).map_err(|m| err(*l, m))? {
                            self.file(&included, depth + 1, &at(*l))?;
                        }
                    }
                }
                "service" => {
                    let section = self.section("SERVICE", &value, path)?;
                    self.sections.push(section);
                }
                "pipeline" => {
                    let Node::Map(kinds, _) = &value else {
                        return Err(err(
                            line,
                            "`pipeline` must be a map of inputs, filters and outputs".into(),
                        ));
                    };
                    for (kind, kind_line, list) in kinds {
                        let section_kind = match kind.to_ascii_lowercase().as_str() {
                            "inputs" => "INPUT",
                            "filters" => "FILTER",
                            "outputs" => "OUTPUT",
                            other => {
                                return Err(err(
                                    *kind_line,
                                    format!(
                                        "unknown `pipeline` key `{other}`; use inputs, filters and outputs"
                                    ),
                                ));
                            }
                        };
                        for item in seq_of(list, kind, path)? {
                            let section = self.section(section_kind, item, path)?;
                            self.sections.push(section);
                        }
                    }
                }
                "parsers" => {
                    for item in seq_of(&value, "parsers", path)? {
                        let section = self.section("PARSER", item, path)?;
                        self.sections.push(section);
                    }
                }
                "multiline_parsers" => {
                    for item in seq_of(&value, "multiline_parsers", path)? {
                        let section = self.section("MULTILINE_PARSER", item, path)?;
                        self.sections.push(section);
                    }
                }
                "stream_processor" => {
                    for item in seq_of(&value, "stream_processor", path)? {
                        let section = self.section("STREAM_TASK", item, path)?;
                        self.sections.push(section);
                    }
                }
                "plugins" => {
                    return Err(err(line, "`plugins` (Fluent Bit .so plugins) is not supported: the router's plugins are WASM components (see docs/plugins.md)".into()));
                }
                "customs" | "upstream_servers" => {
                    return Err(err(line, format!("`{key}` is not supported; remove it")));
                }
                other => {
                    return Err(err(
                        line,
                        format!(
                            "unknown section `{other}`; use env, includes, service, pipeline, parsers, multiline_parsers or stream_processor"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// One component (or `service`): a map of keys to values, lists repeating the key.
    fn section(&self, kind: &str, node: &Node, path: &Path) -> Result<Section, ParseError> {
        let at = |line: usize| Origin {
            file: path.to_path_buf(),
            line,
        };
        let err = |line: usize, message: String| ParseError {
            origin: at(line),
            message,
        };
        let Node::Map(keys, line) = node else {
            return Err(err(
                node.line(),
                format!(
                    "each {} is a map of keys, e.g. `- name: …`",
                    kind.to_ascii_lowercase()
                ),
            ));
        };
        let mut entries = Vec::new();
        for (key, key_line, value) in keys {
            let key = key.to_ascii_lowercase();
            match (key.as_str(), value) {
                ("processors", _) => {
                    return Err(err(
                        *key_line,
                        "`processors` is not supported; put the same steps in `pipeline.filters` with a `match`".into(),
                    ));
                }
                ("rules", Node::Seq(rules, _)) if kind == "MULTILINE_PARSER" => {
                    for rule in rules {
                        entries.push(Entry {
                            key: "rule".into(),
                            value: self.rule(rule, path)?,
                            origin: at(rule.line()),
                        });
                    }
                }
                (_, Node::Scalar(v, l)) => entries.push(Entry {
                    value: self.expand(&key, v).map_err(|m| err(*l, m))?,
                    key,
                    origin: at(*l),
                }),
                (_, Node::Seq(items, _)) => {
                    for item in items {
                        let Node::Scalar(v, l) = item else {
                            return Err(err(
                                item.line(),
                                format!("each value of `{key}` is a plain value"),
                            ));
                        };
                        entries.push(Entry {
                            key: key.clone(),
                            value: self.expand(&key, v).map_err(|m| err(*l, m))?,
                            origin: at(*l),
                        });
                    }
                }
                (_, Node::Map(..)) => {
                    return Err(err(
                        *key_line,
                        format!("`{key}` has a map as its value; write a plain value or a list"),
                    ));
                }
            }
        }
        Ok(Section {
            kind: kind.to_string(),
            origin: at(*line),
            entries,
        })
    }

    /// `{state: …, regex: …, next_state: …}` as the classic `"state" "regex" "next_state"`.
    fn rule(&self, node: &Node, path: &Path) -> Result<String, ParseError> {
        let err = |line: usize, message: String| ParseError {
            origin: Origin {
                file: path.to_path_buf(),
                line,
            },
            message,
        };
        let Node::Map(keys, line) = node else {
            return Err(err(
                node.line(),
                "a rule is a map of state, regex and next_state".into(),
            ));
        };
        let get = |name: &str| {
            keys.iter().find_map(|(k, _, v)| match v {
                Node::Scalar(s, _) if k.eq_ignore_ascii_case(name) => Some(s.clone()),
                _ => None,
            })
        };
        match (get("state"), get("regex"), get("next_state")) {
            (Some(state), Some(regex), Some(next)) => Ok(format!(
                "\"{state}\" \"{}\" \"{next}\"",
                self.expand("rule", &regex).map_err(|m| err(*line, m))?
            )),
            _ => Err(err(
                *line,
                "a rule needs state, regex and next_state".into(),
            )),
        }
    }

    /// `${VAR}` in `value` of option `key`, from `env` then the environment.
    fn expand(&self, key: &str, value: &str) -> Result<String, String> {
        if !value.contains("${") {
            return Ok(value.to_string());
        }
        let vars = SetThenEnv {
            set: &self.variables,
            env: self.env,
        };
        // Expanded as the classic line `key value`, so a secret is known by its option.
        let line = super::expand_classic_line(&format!("{key} {value}"), &vars)?;
        Ok(line[key.len() + 1..].to_string())
    }
}

fn seq_of<'n>(node: &'n Node, what: &str, path: &Path) -> Result<&'n [Node], ParseError> {
    match node {
        Node::Seq(items, _) => Ok(items),
        other => Err(ParseError {
            origin: Origin {
                file: path.to_path_buf(),
                line: other.line(),
            },
            message: format!("`{what}` must be a list (`- …` items)"),
        }),
    }
}

#[cfg(test)]
mod tests;
