//! The keys every component of a kind shares, declared once.
//!
//! A `[[filters]]` or `[[outputs]]` table mixes two sets of keys: those every filter (or output)
//! has — `match`, `match_regex`, `name`, and for outputs the buffer and delivery keys — and the
//! keys of its `type`. [`Keyed<K, T>`] reads one table into both: the shared keys (the names
//! [`SharedKeys::KEYS`] lists) go to `K`, every other key to the type's own config `T`, which
//! refuses the keys it does not know. So each component's config declares only its own keys,
//! and an unknown key is still refused with the full list of keys the table accepts.
//! (`#[serde(flatten)]` cannot do this: a flattened struct never sees an unknown key.)

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// A struct of keys that several component types share.
pub trait SharedKeys: DeserializeOwned {
    /// Its keys, as written in the config.
    const KEYS: &'static [&'static str];
}

/// `match`, `match_regex` and `name`: which tags a filter or output sees, and its name in
/// metrics and logs.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct MatchKeys {
    /// Tags this component sees (Fluent Bit `Match`: `*` wildcards).
    #[serde(rename = "match", default)]
    pub match_: Option<String>,
    /// Tags this component sees, as a regular expression (Fluent Bit `Match_Regex`).
    #[serde(default)]
    pub match_regex: Option<String>,
    /// A name for metrics and logs.
    #[serde(default)]
    pub name: Option<String>,
}

impl SharedKeys for MatchKeys {
    const KEYS: &'static [&'static str] = &["match", "match_regex", "name"];
}

impl MatchKeys {
    /// The matcher of these keys (validated before).
    pub fn matcher(&self) -> super::TagMatcher {
        match (&self.match_, &self.match_regex) {
            (_, Some(re)) => super::TagMatcher::regex(re).expect("validated"),
            (Some(p), None) => super::TagMatcher::wildcard(p),
            (None, None) => super::TagMatcher::Any,
        }
    }

    /// Exactly one of `match` and `match_regex`, the regex valid; problems start with `key`.
    pub fn validate(&self, key: &str, problems: &mut Vec<String>) {
        match (&self.match_, &self.match_regex) {
            (None, None) => problems.push(format!(
                "{key}: set `match = \"*\"` (or a tag pattern) or `match_regex`"
            )),
            (Some(_), Some(_)) => problems.push(format!(
                "{key}: set either `match` or `match_regex`, not both"
            )),
            (None, Some(re)) => {
                if let Err(e) = regex::Regex::new(re) {
                    problems.push(format!(
                        "{key}.match_regex is not a valid regular expression: {e}"
                    ));
                }
            }
            (Some(_), None) => {}
        }
    }
}

/// One component table: the shared keys `K` and the type's own config `T`.
#[derive(Debug)]
pub struct Keyed<K, T> {
    /// The keys every component of this kind has.
    pub keys: K,
    /// The keys of this component's type.
    pub options: T,
}

/// A component table reads as its type's own config; the shared keys are `.keys`.
impl<K, T> std::ops::Deref for Keyed<K, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.options
    }
}

impl<'de, K: SharedKeys, T: Deserialize<'de>> Deserialize<'de> for Keyed<K, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut shared = toml::Table::new();
        let options = T::deserialize(SplitKeys {
            inner: deserializer,
            shared: &mut shared,
            names: K::KEYS,
        })?;
        let keys = K::deserialize(toml::Value::Table(shared)).map_err(de::Error::custom)?;
        Ok(Keyed { keys, options })
    }
}

/// A deserializer that hands the map's shared keys to `shared` and the rest to the visitor.
struct SplitKeys<'a, D> {
    inner: D,
    shared: &'a mut toml::Table,
    names: &'static [&'static str],
}

impl<'de, D: Deserializer<'de>> SplitKeys<'_, D> {
    /// Read the map, the type's keys (`fields`, when known) through `visitor`.
    fn split<V: Visitor<'de>>(
        self,
        visitor: V,
        fields: Option<&'static [&'static str]>,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_map(SplitVisitor {
            visitor,
            shared: self.shared,
            names: self.names,
            fields,
        })
    }
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for SplitKeys<'_, D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.split(visitor, None)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.split(visitor, Some(fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct enum identifier
        ignored_any
    }
}

struct SplitVisitor<'a, V> {
    visitor: V,
    shared: &'a mut toml::Table,
    names: &'static [&'static str],
    /// The type's own keys, when it is a struct: an unknown key is refused naming all keys.
    fields: Option<&'static [&'static str]>,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for SplitVisitor<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_map(SplitMap {
            map,
            shared: self.shared,
            names: self.names,
            fields: self.fields,
        })
    }
}

struct SplitMap<'a, A> {
    map: A,
    shared: &'a mut toml::Table,
    names: &'static [&'static str],
    fields: Option<&'static [&'static str]>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for SplitMap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        while let Some(key) = self.map.next_key::<String>()? {
            if self.names.contains(&key.as_str()) {
                let value: toml::Value = self.map.next_value()?;
                self.shared.insert(key, value);
                continue;
            }
            if let Some(fields) = self.fields
                && !fields.contains(&key.as_str())
            {
                return Err(de::Error::custom(unknown_key(&key, fields, self.names)));
            }
            return seed.deserialize(key.into_deserializer()).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// serde's own wording for an unknown field, listing the type's keys and the shared ones.
fn unknown_key(key: &str, fields: &[&str], shared: &[&str]) -> String {
    let all: Vec<String> = fields
        .iter()
        .chain(shared)
        .map(|k| format!("`{k}`"))
        .collect();
    format!("unknown field `{key}`, expected one of {}", all.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Own {
        bucket: String,
        #[serde(default)]
        limit: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Entry {
        S3(Keyed<MatchKeys, Own>),
    }

    fn parse(text: &str) -> Result<Keyed<MatchKeys, Own>, String> {
        #[derive(Deserialize)]
        struct Doc {
            entry: Entry,
        }
        let doc: Doc = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let Entry::S3(k) = doc.entry;
        Ok(k)
    }

    #[test]
    fn shared_keys_and_own_keys_are_split() {
        let k = parse("[entry]\ntype = \"s3\"\nmatch = \"app*\"\nbucket = \"b\"\nname = \"n\"\n")
            .unwrap();
        assert_eq!(k.keys.match_.as_deref(), Some("app*"));
        assert_eq!(k.keys.name.as_deref(), Some("n"));
        assert_eq!(k.keys.match_regex, None);
        assert_eq!(k.options.bucket, "b");
        assert_eq!(k.options.limit, None);
    }

    #[test]
    fn an_unknown_key_is_refused_with_every_key_the_table_accepts() {
        let e = parse("[entry]\ntype = \"s3\"\nmatch = \"*\"\nbucket = \"b\"\nbukket = 1\n")
            .unwrap_err();
        assert_eq!(
            e,
            "unknown field `bukket`, expected one of `bucket`, `limit`, `match`, `match_regex`, `name`"
        );
    }

    #[test]
    fn a_wrong_value_of_either_set_is_refused() {
        let e = parse("[entry]\ntype = \"s3\"\nmatch = 5\nbucket = \"b\"\n").unwrap_err();
        assert!(
            e.contains("invalid type: integer `5`, expected a string"),
            "{e}"
        );
        let e = parse("[entry]\ntype = \"s3\"\nmatch = \"*\"\nbucket = 5\n").unwrap_err();
        assert!(
            e.contains("invalid type: integer `5`, expected a string"),
            "{e}"
        );
        let e = parse("[entry]\ntype = \"s3\"\nmatch = \"*\"\n").unwrap_err();
        assert!(e.contains("missing field `bucket`"), "{e}");
    }
}
