//! `parse-json`: parses a field holding JSON text (default `log`) and merges the object into
//! the record, what FireLens users get from `parse-json.conf` (Fluent Bit's `parser` filter
//! with `Reserve_Data On`): the other fields stay, the parsed keys are added at the top level
//! (replacing fields of the same name), and the original field is removed unless
//! `keep_original` is set. With `target`, the object goes under that key instead.
//!
//! A value that is not a JSON object (plain text, an array, broken JSON, not a string) leaves
//! the event unchanged and counts `not_json`; parsed events count `parsed`. Key order and
//! duplicate keys of the parsed object are kept as written.
//!
//! ```json
//! {"field": "log", "target": "app", "keep_original": false}
//! ```

use wasm_router_sdk::{Ctx, Event, Map, Outcome, Value, filter};

/// The operator's config.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParseJsonConfig {
    /// The field holding JSON text: a dotted path or a list of keys (default `log`).
    #[serde(default = "default_field")]
    pub field: FieldPath,
    /// Put the parsed object under this field (dotted path or list of keys) instead of
    /// merging its keys into the record.
    #[serde(default)]
    pub target: Option<FieldPath>,
    /// Keep the original field next to the parsed data (default: remove it).
    #[serde(default)]
    pub keep_original: bool,
}

/// A record field: a dotted path or a list of keys.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum FieldPath {
    /// `a.b.c`.
    Dotted(String),
    /// `["a", "b.c"]`, for keys that contain dots.
    Keys(Vec<String>),
}

impl FieldPath {
    fn keys(&self) -> Vec<String> {
        match self {
            FieldPath::Dotted(path) => path.split('.').map(str::to_owned).collect(),
            FieldPath::Keys(keys) => keys.clone(),
        }
    }
}

fn default_field() -> FieldPath {
    FieldPath::Dotted("log".into())
}

/// The validated config.
#[derive(Debug)]
pub struct ParseJson {
    field: Vec<String>,
    target: Option<Vec<String>>,
    keep_original: bool,
}

impl wasm_router_sdk::PluginConfig for ParseJson {
    fn from_json(json: &str) -> Result<Self, Vec<wasm_router_sdk::ConfigError>> {
        let raw: ParseJsonConfig = wasm_router_sdk::config::parse(json)?;
        let mut errors = Vec::new();
        let field = raw.field.keys();
        if field.is_empty() || field.iter().any(String::is_empty) {
            errors.push(wasm_router_sdk::ConfigError::new(
                "/field",
                "an empty key: name the field, e.g. \"log\"",
            ));
        }
        let target = raw.target.map(|target| target.keys());
        if target
            .as_ref()
            .is_some_and(|keys| keys.is_empty() || keys.iter().any(String::is_empty))
        {
            errors.push(wasm_router_sdk::ConfigError::new(
                "/target",
                "an empty key: name the field, e.g. \"parsed\"",
            ));
        }
        if errors.is_empty() {
            Ok(ParseJson {
                field,
                target,
                keep_original: raw.keep_original,
            })
        } else {
            Err(errors)
        }
    }

    fn json_schema() -> wasm_router_sdk::serde_json::Value {
        wasm_router_sdk::config::schema::<ParseJsonConfig>()
    }
}

/// Parses the configured field and merges it (see the crate docs).
#[filter(
    name = "parse-json",
    description = "Parses a field holding JSON and merges it into the record."
)]
pub fn parse_json(
    config: &ParseJson,
    event: &Event<'_>,
    ctx: &mut Ctx,
) -> wasm_router_sdk::Result<Outcome> {
    let text = match event.get(config.field.as_slice()) {
        Some(Value::Str(text) | Value::Bin(text)) => text,
        _ => {
            ctx.count("not_json", 1);
            return Ok(Outcome::Keep);
        }
    };
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    let parsed = match first {
        Some(b'{') => wasm_router_sdk::json::json_text_to_msgpack(text).ok(),
        _ => None,
    };
    let Some(parsed) = parsed else {
        ctx.count("not_json", 1);
        return Ok(Outcome::Keep);
    };
    let object = Map::from_msgpack(&parsed)?;
    let mut record = event.record()?;
    if !config.keep_original {
        record.remove(config.field.as_slice());
    }
    match &config.target {
        Some(target) => record.set_value(target.as_slice(), Value::Map(object))?,
        None => {
            for (key, value) in object.iter() {
                let key = key.as_str().unwrap_or_default();
                record.set_value([key], value)?;
            }
        }
    }
    ctx.count("parsed", 1);
    Ok(Outcome::replace(&record))
}
