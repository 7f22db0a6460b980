//! Fluent Bit record accessors: `$log`, `$kubernetes['labels']['app']`, `$items[0]['id']`.
//!
//! The first key follows `$` (the `$` is optional, as Fluent Bit's grep adds it to a plain
//! key) up to the first `[`; each `['key']` / `["key"]` descends into a map and each `[n]` into
//! an array. A lookup returns the raw msgpack value, or `None` when any step is missing or has
//! the wrong type.

use super::record::{RawRecord, array_get, map_get};

/// One step below the first key.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(Vec<u8>),
    Index(usize),
}

/// A parsed accessor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordAccessor {
    root: Vec<u8>,
    path: Vec<Step>,
}

impl RecordAccessor {
    /// Parse `text`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<RecordAccessor, String> {
        let body = text.strip_prefix('$').unwrap_or(text);
        let (root, mut rest) = match body.find('[') {
            Some(at) => (&body[..at], &body[at..]),
            None => (body, ""),
        };
        if root.is_empty() {
            return Err(format!(
                "record accessor {text:?} has no key; write e.g. `$log` or `$kubernetes['labels']['app']`"
            ));
        }
        let mut path = Vec::new();
        while !rest.is_empty() {
            let inner = rest
                .strip_prefix('[')
                .ok_or_else(|| format!("record accessor {text:?}: expected `[` at {rest:?}"))?;
            let close = inner
                .find(']')
                .ok_or_else(|| format!("record accessor {text:?}: a `[` has no closing `]`"))?;
            let step = &inner[..close];
            let quoted = |q: char| step.len() >= 2 && step.starts_with(q) && step.ends_with(q);
            if quoted('\'') || quoted('"') {
                path.push(Step::Key(step.as_bytes()[1..step.len() - 1].to_vec()));
            } else if let Ok(index) = step.parse::<usize>() {
                path.push(Step::Index(index));
            } else {
                return Err(format!(
                    "record accessor {text:?}: `[{step}]` is neither a quoted key (`['{step}']`) nor an array index"
                ));
            }
            rest = &inner[close + 1..];
        }
        Ok(RecordAccessor {
            root: root.as_bytes().to_vec(),
            path,
        })
    }

    /// The top-level key it starts from.
    pub fn root(&self) -> &[u8] {
        &self.root
    }

    /// The raw msgpack value it points at in `record`.
    pub fn lookup<'r>(&self, record: &'r RawRecord<'_>) -> Option<&'r [u8]> {
        let i = record.position(&self.root)?;
        self.descend(&record.entries[i].1)
    }

    /// The raw msgpack value it points at in the msgpack map `body`, scanning only up to the
    /// first key (nothing is decoded or allocated).
    pub fn lookup_in<'b>(&self, body: &'b [u8]) -> Option<&'b [u8]> {
        self.descend(map_get(body, &self.root)?)
    }

    fn descend<'v>(&self, mut value: &'v [u8]) -> Option<&'v [u8]> {
        for step in &self.path {
            value = match step {
                Step::Key(k) => map_get(value, k)?,
                Step::Index(n) => array_get(value, *n)?,
            };
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::record::tests::body;
    use crate::event::record::{str_only, str_or_bin};
    use serde_json::json;

    #[test]
    fn plain_nested_and_indexed_keys() {
        let b = body(
            json!({"log": "hi", "kubernetes": {"labels": {"app": "web"}}, "items": [{"id": "a"}, {"id": "b"}], "n": 3}),
        );
        let r = RawRecord::parse(&b).unwrap();
        let get = |t: &str| {
            RecordAccessor::parse(t)
                .unwrap()
                .lookup(&r)
                .and_then(str_only)
                .map(|s| String::from_utf8(s.to_vec()).unwrap())
        };
        assert_eq!(get("$log").as_deref(), Some("hi"));
        assert_eq!(get("log").as_deref(), Some("hi"));
        assert_eq!(get("$kubernetes['labels']['app']").as_deref(), Some("web"));
        assert_eq!(
            get("$kubernetes[\"labels\"][\"app\"]").as_deref(),
            Some("web")
        );
        assert_eq!(get("$items[1]['id']").as_deref(), Some("b"));
        assert_eq!(get("$items[2]['id']"), None);
        assert_eq!(get("$kubernetes['nope']"), None);
        assert_eq!(get("$n"), None, "a number is not a string");
        for text in [
            "$log",
            "$kubernetes['labels']['app']",
            "$items[1]['id']",
            "$nope",
        ] {
            let a = RecordAccessor::parse(text).unwrap();
            assert_eq!(a.lookup_in(&b), a.lookup(&r), "{text}");
        }
        let n = RecordAccessor::parse("$n").unwrap();
        assert!(n.lookup(&r).is_some() && str_or_bin(n.lookup(&r).unwrap()).is_none());
    }

    #[test]
    fn malformed_accessors_say_what_is_wrong() {
        assert!(RecordAccessor::parse("$").unwrap_err().contains("no key"));
        assert!(
            RecordAccessor::parse("$a['b'")
                .unwrap_err()
                .contains("closing")
        );
        assert!(
            RecordAccessor::parse("$a[b]")
                .unwrap_err()
                .contains("neither a quoted key")
        );
        assert!(
            RecordAccessor::parse("$a['b']x")
                .unwrap_err()
                .contains("expected `[`")
        );
    }
}
