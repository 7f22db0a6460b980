//! Stream labels as Fluent Bit's `loki` output reads them (`labels`, `label_keys`): a static
//! `key=value`, `key=$accessor` (the label `key` with the record's value), or `$accessor` alone
//! (the label named after the accessor's last key). Label names keep `[A-Za-z0-9_]`, any other
//! character becomes `_`, as Fluent Bit sanitizes them. A record without the accessed value
//! gets no such label.

use wasm_router_sdk::{Event, Value};

/// One label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    /// `name=value`.
    Static {
        /// The label name.
        name: String,
        /// Its value.
        value: String,
    },
    /// `name=$path`.
    Record {
        /// The label name.
        name: String,
        /// The record path.
        path: Vec<String>,
    },
}

impl Label {
    /// `$a['b']` alone: the label `b`.
    pub fn from_path(path: Vec<String>) -> Label {
        Label::Record {
            name: sanitize(path.last().map_or("", String::as_str)),
            path,
        }
    }

    /// `(name, value)` of this label for `event`, if it has one.
    pub fn resolve(&self, event: &Event<'_>) -> Option<(String, String)> {
        match self {
            Label::Static { name, value } => Some((name.clone(), value.clone())),
            Label::Record { name, path } => {
                let value = event.get(path.as_slice())?;
                let text = match value {
                    Value::Str(_) | Value::Bin(_) => value.to_str_lossy()?.into_owned(),
                    Value::Nil => return None,
                    other => other.to_json(),
                };
                Some((name.clone(), text))
            }
        }
    }
}

/// A label name with every character outside `[A-Za-z0-9_]` made `_`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub use wasm_router_sdk::parse_accessor;

/// `labels`: comma-separated `key=value`, `key=$accessor` or `$accessor`.
pub fn parse_labels(text: &str) -> Result<Vec<Label>, String> {
    let mut labels = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let label = match item.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => {
                let name = sanitize(name.trim());
                let value = value.trim();
                if value.starts_with('$') {
                    let path = parse_accessor(value)
                        .ok_or_else(|| format!("{item:?}: {value:?} is not a record accessor"))?;
                    Label::Record { name, path }
                } else {
                    Label::Static {
                        name,
                        value: value.to_string(),
                    }
                }
            }
            Some(_) => return Err(format!("{item:?} has no label name: write key=value")),
            None => Label::from_path(parse_accessor(item).ok_or_else(|| {
                format!("{item:?}: write key=value, key=$record_key or $record_key")
            })?),
        };
        labels.push(label);
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_router_sdk::testing::TestEvent;

    #[test]
    fn accessors() {
        assert_eq!(parse_accessor("$log"), Some(vec!["log".to_string()]));
        assert_eq!(
            parse_accessor("$kubernetes['namespace_name'][\"x\"]"),
            Some(vec![
                "kubernetes".into(),
                "namespace_name".into(),
                "x".into()
            ])
        );
        assert_eq!(parse_accessor("log"), None);
        assert_eq!(parse_accessor("$a[b]"), None);
    }

    #[test]
    fn labels_static_from_records_and_named_after_the_last_key() {
        let labels = parse_labels("job=firelens, env=$ecs['cluster'], $container-name").unwrap();
        let event = TestEvent::json_text(
            r#"{"ecs": {"cluster": "prod"}, "container-name": "web", "n": 1}"#,
        )
        .unwrap();
        let resolved: Vec<_> = labels
            .iter()
            .filter_map(|l| l.resolve(&event.event()))
            .collect();
        assert_eq!(
            resolved,
            [
                ("job".into(), "firelens".into()),
                ("env".into(), "prod".into()),
                ("container_name".into(), "web".into())
            ]
        );
        let missing = TestEvent::json_text(r#"{"n": 1}"#).unwrap();
        assert_eq!(labels[1].resolve(&missing.event()), None);
        assert!(parse_labels("=x").is_err());
    }
}
