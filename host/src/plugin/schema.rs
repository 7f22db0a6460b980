//! A plugin's configuration: the operator's TOML table becomes the JSON object handed to
//! `init`, after it has been checked against the JSON Schema the plugin declares in
//! `info().config-schema` (drafts 4–2020-12; only local `$ref`s, nothing is fetched).

/// One problem with a plugin's config: where (a JSON pointer into the config) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// JSON pointer to the offending value (`/fields/0`), empty for the whole config.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.pointer.is_empty() {
            "(the config)"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}", self.message)
    }
}

/// Why a config could not be checked or was refused.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The plugin's own schema is not valid JSON or not a valid JSON Schema.
    #[error(
        "the plugin's config-schema is not a valid JSON Schema ({0}); this is a bug in the plugin, tell its author"
    )]
    BadSchema(String),
    /// The config does not match the schema.
    #[error("{}", problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// Every problem found.
        problems: Vec<ConfigProblem>,
    },
}

/// The JSON value of a `config = { … }` table (absent = `{}`). TOML datetimes become strings.
pub fn config_json(table: Option<&toml::Table>) -> serde_json::Value {
    match table {
        None => serde_json::Value::Object(Default::default()),
        Some(t) => toml_to_json(&toml::Value::Table(t.clone())),
    }
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// Check `config` against the JSON Schema text `schema` (empty text or `{}` accepts anything).
pub fn validate(schema: &str, config: &serde_json::Value) -> Result<(), SchemaError> {
    if schema.trim().is_empty() {
        return Ok(());
    }
    let schema: serde_json::Value = serde_json::from_str(schema)
        .map_err(|e| SchemaError::BadSchema(format!("not JSON: {e}")))?;
    let validator =
        jsonschema::validator_for(&schema).map_err(|e| SchemaError::BadSchema(e.to_string()))?;
    let problems: Vec<ConfigProblem> = validator
        .iter_errors(config)
        .map(|e| ConfigProblem {
            pointer: e.instance_path().as_str().to_string(),
            message: e.to_string(),
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SchemaError::Invalid { problems })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: &str = r##"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "fields": { "type": "array", "items": { "type": "string" } },
            "mode": { "$ref": "#/$defs/mode" }
        },
        "required": ["fields"],
        "additionalProperties": false,
        "$defs": { "mode": { "enum": ["mask", "hash"] } }
    }"##;

    #[test]
    fn toml_tables_become_json_objects() {
        let t: toml::Table = toml::from_str(
            "fields = [\"log\"]\nn = 3\nf = 0.5\nnested = { on = true }\nat = 1979-05-27",
        )
        .unwrap();
        assert_eq!(
            config_json(Some(&t)),
            json!({"fields": ["log"], "n": 3, "f": 0.5, "nested": {"on": true}, "at": "1979-05-27"})
        );
        assert_eq!(config_json(None), json!({}));
    }

    #[test]
    fn problems_carry_json_pointers() {
        validate(SCHEMA, &json!({"fields": ["log"], "mode": "hash"})).unwrap();
        let Err(SchemaError::Invalid { problems }) = validate(
            SCHEMA,
            &json!({"fields": ["log", 7], "mode": "rot13", "x": 1}),
        ) else {
            panic!("expected problems")
        };
        let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
        assert!(pointers.contains(&"/fields/1"), "{problems:?}");
        assert!(pointers.contains(&"/mode"), "{problems:?}");
        assert!(pointers.contains(&""), "{problems:?}");
        let Err(SchemaError::Invalid { problems }) = validate(SCHEMA, &json!({})) else {
            panic!()
        };
        assert!(problems[0].message.contains("fields"), "{problems:?}");
    }

    #[test]
    fn empty_schemas_accept_anything_and_bad_schemas_are_the_plugins_fault() {
        validate("", &json!({"a": 1})).unwrap();
        validate("{}", &json!({"a": 1})).unwrap();
        assert!(matches!(
            validate("{", &json!({})),
            Err(SchemaError::BadSchema(_))
        ));
        assert!(matches!(
            validate(r#"{"type": 5}"#, &json!({})),
            Err(SchemaError::BadSchema(_))
        ));
    }
}
