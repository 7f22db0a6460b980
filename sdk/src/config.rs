//! Plugin config: parsed from the operator's JSON in `init`, described by a JSON Schema in
//! `info`. Any `serde::Deserialize + schemars::JsonSchema` type is a [`PluginConfig`]; a type
//! that compiles its config into something else (regexes, lookup tables) implements the trait
//! itself with [`parse`] and [`schema`].
//!
//! ```
//! use wasm_router_sdk::config::{self, ConfigError, PluginConfig};
//!
//! /// The operator's config.
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Settings {
//!     /// Record keys to check.
//!     fields: Vec<String>,
//!     /// Upper bound on something.
//!     #[serde(default)]
//!     limit: u32,
//! }
//!
//! let Err(errors) = config::parse::<Settings>(r#"{"fields": ["log", 3]}"#) else { panic!() };
//! assert_eq!(errors[0].path, "/fields/1");
//! assert!(errors[0].message.contains("expected a string"));
//! let settings = Settings::from_json(r#"{"fields": ["log"]}"#).unwrap();
//! assert_eq!(settings.fields, ["log"]);
//! assert_eq!(Settings::json_schema()["properties"]["fields"]["type"], "array");
//! ```

use serde::de::DeserializeOwned;

/// A problem with the plugin's config: where (a JSON pointer) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// A JSON pointer to the offending value (`/fields/0`), or empty for the whole config.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ConfigError {
    /// An error at the JSON pointer `path` (`""` for the whole config).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// An error at the value reached through `keys` (object keys or array indexes, written
    /// as JSON pointer segments with `~` and `/` escaped).
    pub fn at<K: std::fmt::Display>(
        keys: impl IntoIterator<Item = K>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            path: pointer(keys),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "config: {}", self.message)
        } else {
            write!(f, "config {}: {}", self.path, self.message)
        }
    }
}

/// A JSON pointer made of `keys`.
pub fn pointer<K: std::fmt::Display>(keys: impl IntoIterator<Item = K>) -> String {
    let mut out = String::new();
    for key in keys {
        out.push('/');
        out.push_str(&key.to_string().replace('~', "~0").replace('/', "~1"));
    }
    out
}

/// A plugin's config type: built from the operator's JSON, described by a JSON Schema.
pub trait PluginConfig: Sized + Send + Sync + 'static {
    /// Builds the config from the JSON the router passes to `init` (`""` means `{}`).
    fn from_json(json: &str) -> Result<Self, Vec<ConfigError>>;

    /// The JSON Schema the router validates the config against before `init`.
    fn json_schema() -> serde_json::Value;
}

impl<T: DeserializeOwned + schemars::JsonSchema + Send + Sync + 'static> PluginConfig for T {
    fn from_json(json: &str) -> Result<Self, Vec<ConfigError>> {
        parse(json)
    }

    fn json_schema() -> serde_json::Value {
        schema::<T>()
    }
}

/// Deserializes the config JSON (`""` and `null` mean `{}`); an error carries the JSON
/// pointer of the value that failed.
pub fn parse<T: DeserializeOwned>(json: &str) -> Result<T, Vec<ConfigError>> {
    let json = match json.trim() {
        "" | "null" => "{}",
        trimmed => trimmed,
    };
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = pointer(error.path().iter().filter_map(|segment| match segment {
            serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
            serde_path_to_error::Segment::Unknown => None,
        }));
        vec![ConfigError::new(path, error.into_inner().to_string())]
    })?;
    deserializer
        .end()
        .map_err(|error| vec![ConfigError::new("", error.to_string())])?;
    Ok(value)
}

/// The JSON Schema (draft 2020-12) of `T`, with `///` doc comments as descriptions.
pub fn schema<T: schemars::JsonSchema>() -> serde_json::Value {
    schemars::schema_for!(T).to_value()
}

/// The config of a plugin that takes none: accepts any object and ignores it.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, schemars::JsonSchema)]
pub struct NoConfig {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        fields: Vec<String>,
        #[serde(default)]
        mask: Mask,
    }

    #[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Mask {
        #[serde(default)]
        style: String,
        #[serde(default)]
        keep: u8,
    }

    #[test]
    fn errors_point_at_the_value() {
        let cases = [
            (r#"{"fields": ["a", 1]}"#, "/fields/1", "expected a string"),
            (
                r#"{"fields": [], "mask": {"keep": 300}}"#,
                "/mask/keep",
                "300",
            ),
            (
                r#"{"fields": [], "mask": {"colour": 1}}"#,
                "/mask/colour",
                "unknown field `colour`",
            ),
            (r#"{}"#, "", "missing field `fields`"),
            (r#"{"fields": []} trailing"#, "", "trailing characters"),
            ("3", "", "expected struct Config"),
        ];
        for (json, path, message) in cases {
            let errors = parse::<Config>(json).unwrap_err();
            assert_eq!(errors.len(), 1, "{json}");
            assert_eq!(errors[0].path, path, "{json}: {:?}", errors[0]);
            assert!(
                errors[0].message.contains(message),
                "{json}: {:?}",
                errors[0]
            );
        }
    }

    #[test]
    fn empty_and_null_configs_are_empty_objects() {
        assert!(parse::<NoConfig>("").is_ok());
        assert!(parse::<NoConfig>(" null ").is_ok());
        assert!(parse::<NoConfig>(r#"{"anything": [1, 2]}"#).is_ok());
        assert!(parse::<Config>("").is_err());
    }

    #[test]
    fn pointers_escape_slashes_and_tildes() {
        assert_eq!(pointer(["a/b", "c~d", "0"]), "/a~1b/c~0d/0");
        assert_eq!(
            ConfigError::at(["fields", "2"], "bad").to_string(),
            "config /fields/2: bad"
        );
    }

    #[test]
    fn schemas_reject_unknown_fields_when_the_type_does() {
        let schema = Config::json_schema();
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], serde_json::json!(["fields"]));
        assert!(
            NoConfig::json_schema()
                .get("additionalProperties")
                .is_none()
        );
    }
}
