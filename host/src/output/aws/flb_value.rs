//! Option values as Fluent Bit users write them. The classic config format has only strings
//! (`auto_create_group On`, `log_retention_days 7`, `data_keys a,b`), and the same values may
//! reach us as TOML booleans, integers and arrays; these deserializers take both.

use serde::{Deserialize, Deserializer, de};

#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOrString {
    Bool(bool),
    String(String),
}

/// `true`/`false`, or Fluent Bit's `on`/`off`, `yes`/`no`, `true`/`false` (any case).
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!(
            "{s:?} is not a boolean; use true/false (or On/Off)"
        )),
    }
}

/// Deserialize an optional boolean written either way.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<BoolOrString>::deserialize(d)? {
        None => Ok(None),
        Some(BoolOrString::Bool(b)) => Ok(Some(b)),
        Some(BoolOrString::String(s)) => parse_bool(&s).map(Some).map_err(de::Error::custom),
    }
}

/// Deserialize an optional string that may also be written as a TOML boolean or number
/// (`json_date_key = false`).
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Bool(bool),
        Int(i64),
        String(String),
    }
    Ok(Option::<Text>::deserialize(d)?.map(|t| match t {
        Text::Bool(b) => b.to_string(),
        Text::Int(n) => n.to_string(),
        Text::String(s) => s,
    }))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IntOrString {
    Int(i64),
    String(String),
}

/// Deserialize an optional integer written as a number or a string.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<IntOrString>::deserialize(d)? {
        None => Ok(None),
        Some(IntOrString::Int(n)) => Ok(Some(n)),
        Some(IntOrString::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("{s:?} is not an integer"))),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrString {
    List(Vec<String>),
    String(String),
}

/// Deserialize an optional list written as an array or as Fluent Bit's comma-separated string.
pub fn opt_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Ok(Option::<ListOrString>::deserialize(d)?.map(|v| match v {
        ListOrString::List(l) => l,
        ListOrString::String(s) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct T {
        #[serde(default, deserialize_with = "opt_bool")]
        b: Option<bool>,
        #[serde(default, deserialize_with = "opt_i64")]
        n: Option<i64>,
        #[serde(default, deserialize_with = "opt_list")]
        l: Option<Vec<String>>,
        #[serde(default, deserialize_with = "opt_text")]
        t: Option<String>,
    }

    #[test]
    fn fluent_bit_strings_and_toml_values() {
        let t: T = toml::from_str("b = \"On\"\nn = \"7\"\nl = \"a, b,,c\"").unwrap();
        assert_eq!(
            (t.b, t.n, t.l),
            (
                Some(true),
                Some(7),
                Some(vec!["a".into(), "b".into(), "c".into()])
            )
        );
        let t: T = toml::from_str("b = false\nn = 14\nl = [\"x\"]").unwrap();
        assert_eq!(
            (t.b, t.n, t.l),
            (Some(false), Some(14), Some(vec!["x".into()]))
        );
        let t: T = toml::from_str("").unwrap();
        assert_eq!((t.b, t.n, t.l), (None, None, None));
        let t: T = toml::from_str("t = false").unwrap();
        assert_eq!(t.t.as_deref(), Some("false"));
        let e = toml::from_str::<T>("b = \"maybe\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a boolean"), "{e}");
    }
}
