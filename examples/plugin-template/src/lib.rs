//! `my-filter`: a starting point for a wasm-router filter plugin.
//!
//! - Drops events whose `log` contains one of `drop_if_contains` (default: `GET /health`).
//! - Adds `level` (`info`, `warn`, …) when the `log` line starts with a level word and the
//!   record has no `level` yet.
//! - Keeps everything else untouched (nothing is copied back to the router).

use wasm_router_sdk::{Ctx, Event, Outcome, filter};

/// The operator's config (`config = { … }` of the `[[filters]]` entry). Its JSON Schema,
/// doc comments included, is what `wasm-router plugin inspect` shows.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Drop events whose `log` contains any of these texts.
    #[serde(default = "default_drop_if_contains")]
    pub drop_if_contains: Vec<String>,
}

fn default_drop_if_contains() -> Vec<String> {
    vec!["GET /health".into()]
}

const LEVELS: [&str; 5] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];

/// The filter: one call per event.
#[filter(
    name = "my-filter",
    description = "Drops health checks and adds a level field."
)]
pub fn my_filter(
    config: &Config,
    event: &Event<'_>,
    ctx: &mut Ctx,
) -> wasm_router_sdk::Result<Outcome> {
    let Some(log) = event.get_str("log") else {
        return Ok(Outcome::Keep);
    };
    if config
        .drop_if_contains
        .iter()
        .any(|text| log.contains(text.as_str()))
    {
        ctx.count("dropped", 1);
        return Ok(Outcome::Drop);
    }
    let first_word = log.split_whitespace().next().unwrap_or_default();
    let Some(level) = LEVELS
        .iter()
        .find(|level| level.eq_ignore_ascii_case(first_word))
    else {
        return Ok(Outcome::Keep);
    };
    if event.get("level").is_some() {
        return Ok(Outcome::Keep);
    }
    let mut record = event.record()?;
    record.set("level", &level.to_ascii_lowercase())?;
    Ok(record.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasm_router_sdk::testing::{self, TestEvent};

    #[test]
    fn drops_health_checks_and_adds_levels() {
        let run = testing::run_filter(
            my_filter,
            "{}",
            &[
                TestEvent::json(json!({"log": "INFO GET /health 200"})),
                TestEvent::json(json!({"log": "WARN slow query 1200ms"})),
                TestEvent::json(json!({"log": "ERROR boom", "level": "fatal"})),
            ],
        )
        .unwrap();
        assert_eq!(run.outcomes()[0], Outcome::Drop);
        assert_eq!(
            run.records(),
            [
                json!({"log": "WARN slow query 1200ms", "level": "warn"}),
                json!({"log": "ERROR boom", "level": "fatal"})
            ]
        );
        assert_eq!(testing::counter("dropped"), 1);
    }

    #[test]
    fn config_errors_name_the_field() {
        let errors =
            testing::run_filter(my_filter, r#"{"drop_if_contains": "GET"}"#, &[]).unwrap_err();
        assert_eq!(errors[0].path, "/drop_if_contains");
    }
}
