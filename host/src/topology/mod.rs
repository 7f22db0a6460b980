//! The topology: the root [`Config`] and what assembles it into a running router.
//!
//! - [`registry`]: every component type, one line each, read from `[[inputs]]`, `[[filters]]`
//!   and `[[outputs]]` by `type`;
//! - [`validate`]: [`Config::validate`] (pure checks, looping over the registry) and
//!   [`check_components`] (what building would refuse: plugins loaded);
//! - [`build`]: the [`Router`]: buffers, outputs, pipeline, inputs, and its shutdown;
//! - [`reload`]: hot reload of filters, built by the same [`build::build_filter`];
//! - [`fluentbit`]: the Fluent Bit classic format (as FireLens generates it) mapped onto
//!   [`Config`].
//!
//! Loading is two steps: [`load`] parses a file into [`Config`] (serde; unknown keys refused
//! with the key and its position), then [`Config::validate`] checks what serde cannot (patterns,
//! addresses, ranges) without building anything, so `wasm-router validate` stops there.

pub mod build;
#[cfg(test)]
mod extreme_values_tests;
pub mod fluentbit;
pub mod registry;
pub mod reload;
pub mod service;
pub mod validate;

pub use crate::config::ConfigError;
pub use build::{BuildError, Router, ShutdownSchedule};
pub use registry::{FilterConfig, InputConfig, OutputConfig};
pub use service::ServiceConfig;
pub use validate::check_components;

use crate::config::{Variables, expand_env, from_toml};
use serde::Deserialize;
use std::path::Path;

/// The configuration the router runs when it is given none: forward on 127.0.0.1:24224 → stdout.
pub const EMBEDDED_DEFAULT: &str = r#"
[service]
grace = "5s"

[[inputs]]
type = "forward"
listen = "127.0.0.1:24224"

[[outputs]]
type = "stdout"
match = "*"
"#;

/// The whole configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Process-wide settings.
    #[serde(default)]
    pub service: ServiceConfig,
    /// Where events come from.
    #[serde(default)]
    pub inputs: Vec<InputConfig>,
    /// Filters, applied in this order to the tags they match.
    #[serde(default)]
    pub filters: Vec<FilterConfig>,
    /// Where events go; every output whose `match` covers a tag gets a copy.
    #[serde(default)]
    pub outputs: Vec<OutputConfig>,
    /// Stream tasks: SQL that selects records into new streams, routed under their own tag
    /// (Fluent Bit `[STREAM_TASK]`).
    #[serde(default)]
    pub stream_tasks: Vec<crate::stream::StreamTaskConfig>,
}

/// The router's variables: the environment, else what the ECS task metadata exported at
/// startup ([`crate::ecs::var`]). Secret values are registered with the log redactor, except
/// those the task metadata endpoint gave (public facts about the task).
pub struct RouterVariables;

impl Variables for RouterVariables {
    fn lookup(&self, name: &str) -> Option<String> {
        crate::ecs::var(name)
    }

    fn secret(&self, name: &str, value: &str) {
        if !crate::ecs::from_task_metadata(name) {
            crate::ops::logging::register_secret(name, value);
        }
    }
}

/// Read, expand and parse the TOML file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    parse(&crate::config::read(path)?, &path.display().to_string())
}

/// Read a config in any format: TOML, Fluent Bit YAML (extension `.yaml` or `.yml`), or Fluent
/// Bit classic (extension `.conf`, or a file whose first line is `[SERVICE]`, `[INPUT]`,
/// `[FILTER]`, `[OUTPUT]` or an `@` directive).
pub fn load_any(path: &Path) -> Result<fluentbit::Mapped, ConfigError> {
    if crate::config::yaml::is_yaml(path) {
        return fluentbit::load_yaml(path);
    }
    let text = crate::config::read(path)?;
    let is_toml = path.extension().is_some_and(|e| e == "toml");
    if !is_toml
        && (path.extension().is_some_and(|e| e == "conf") || fluentbit::looks_classic(&text))
    {
        return fluentbit::load(path);
    }
    let config = parse(&text, &path.display().to_string())?;
    Ok(fluentbit::Mapped {
        config,
        warnings: Vec::new(),
        classic: false,
        origins: Default::default(),
    })
}

/// Parse TOML `text` that came from `file` (used in messages), after `${VAR}` expansion.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    // Expansion registers the secret values, so neither the log nor this error shows them.
    let err = |message: String| ConfigError {
        file: file.to_string(),
        message: crate::ops::logging::redact(&message).into_owned(),
    };
    let text = expand_env(text, &RouterVariables).map_err(err)?;
    let config: Config = from_toml(&text).map_err(err)?;
    config.validate().map_err(err)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_is_valid() {
        let c = parse(EMBEDDED_DEFAULT, "<embedded default>").unwrap();
        assert_eq!(c.inputs.len(), 1);
        assert!(matches!(c.outputs[0], OutputConfig::Stdout(_)));
    }

    #[test]
    fn unknown_keys_name_the_key_the_line_and_the_fix() {
        let text = "[[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n[[outputs]]\ntype = \"null\"\nmatch = \"*\"\n";
        let e = parse(text, "router.toml").unwrap_err().to_string();
        assert!(e.starts_with("router.toml: "), "{e}");
        assert!(e.contains("lisen"), "{e}");
        assert!(e.contains("line 4"), "{e}");
        assert!(e.contains("fix:"), "{e}");
    }

    #[test]
    fn unknown_types_and_bad_values_are_explained() {
        let e = parse("[[outputs]]\ntype = \"kafka\"\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("kafka") && e.contains("stdout"), "{e}");

        let text = "[[inputs]]\ntype = \"forward\"\nlisten = \"localhost\"\nunix_perm = \"rw\"\n[[outputs]]\ntype = \"null\"\nmatch_regex = \"(\"\n";
        let e = parse(text, "f.toml").unwrap_err().to_string();
        assert!(
            e.contains("inputs[0].listen") && e.contains("ip:port"),
            "{e}"
        );
        assert!(e.contains("inputs[0].unix_perm"), "{e}");
        assert!(e.contains("outputs[0].match_regex"), "{e}");
    }

    #[test]
    fn delivery_keys_are_validated_with_the_key_and_the_fix() {
        let base = "[[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:1\"\n";
        let check = |outputs: &str| {
            parse(&format!("{base}{outputs}"), "f.toml")
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let ok = "[[outputs]]\ntype = \"forward\"\nname = \"agg\"\nmatch = \"*\"\nretry_until = \"1h\"\nretry_limit = 5\n\
                  buffer = { type = \"disk\", path = \"/var/lib/wr\", max_bytes = \"1GiB\", when_full = \"drop_newest\", fsync = \"always\" }\n\
                  dead_letter = { output = \"backup\" }\n\
                  [[outputs]]\ntype = \"stdout\"\nname = \"backup\"\nmatch = \"x\"\ndead_letter = { path = \"/tmp/dl.jsonl\" }\n";
        check(ok).unwrap();
        let e =
            check("[[outputs]]\ntype = \"null\"\nmatch = \"*\"\nbuffer = { type = \"disk\" }\n")
                .unwrap_err();
        assert!(e.contains("outputs[0].buffer") && e.contains("path"), "{e}");
        let e =
            check("[[outputs]]\ntype = \"null\"\nmatch = \"*\"\nbuffer = { fsync = \"always\" }\n")
                .unwrap_err();
        assert!(
            e.contains("outputs[0].buffer.fsync is only for disk buffers"),
            "{e}"
        );
        let e = check(
            "[[outputs]]\ntype = \"null\"\nmatch = \"*\"\ndead_letter = { output = \"nope\" }\n",
        )
        .unwrap_err();
        assert!(
            e.contains("outputs[0].dead_letter.output") && e.contains("no output has that name"),
            "{e}"
        );
        let e = check(
            "[[outputs]]\ntype = \"null\"\nmatch = \"*\"\ndead_letter = { output = \"null\" }\n",
        )
        .unwrap_err();
        assert!(e.contains("its own dead-letter destination"), "{e}");
        let e =
            check("[[outputs]]\ntype = \"null\"\nmatch = \"*\"\ndead_letter = {}\n").unwrap_err();
        assert!(e.contains("exactly one of"), "{e}");
        let two = "[[outputs]]\ntype = \"null\"\nmatch = \"*\"\nbuffer = { type = \"disk\", path = \"/x\" }\n";
        let e = check(&format!("{two}{two}")).unwrap_err();
        assert!(e.contains("distinct `name`s"), "{e}");
        let e = check("[[outputs]]\ntype = \"forward\"\nmatch = \"*\"\ncompress = \"lz4\"\n")
            .unwrap_err();
        assert!(e.contains("outputs[0].compress"), "{e}");
        let c = parse(
            &format!("{base}[[outputs]]\ntype = \"null\"\nmatch = \"*\"\n"),
            "f.toml",
        )
        .unwrap();
        assert!(c.service.partial_reassembly, "reassembly is on by default");
        assert_eq!(c.service.memory_budget, None);
    }

    #[test]
    fn listeners_that_cannot_both_bind_are_refused() {
        let check = |text: &str| {
            let c: Config = toml::from_str(text).unwrap();
            c.validate().err().unwrap_or_default()
        };
        let input =
            |listen: &str| format!("[[inputs]]\ntype = \"forward\"\nlisten = \"{listen}\"\n");
        let out = "[[outputs]]\ntype = \"null\"\nmatch = \"*\"\n";
        for (a, b) in [
            ("127.0.0.1:5000", "127.0.0.1:5000"),
            ("0.0.0.0:5000", "127.0.0.1:5000"),
            ("127.0.0.1:5000", "0.0.0.0:5000"),
            ("[::]:5000", "127.0.0.1:5000"),
            ("[::1]:5000", "[::]:5000"),
        ] {
            let e = check(&format!("{}{}{out}", input(a), input(b)));
            assert!(
                e.contains("inputs[1].listen") && e.contains("clashes with inputs[0].listen"),
                "{a} / {b}: {e}"
            );
        }
        for (a, b) in [
            ("127.0.0.1:5000", "127.0.0.1:5001"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("127.0.0.1:5000", "127.0.0.2:5000"),
            ("127.0.0.1:5000", "[::1]:5000"),
        ] {
            let e = check(&format!("{}{}{out}", input(a), input(b)));
            assert!(!e.contains("clashes"), "{a} / {b}: {e}");
        }
        let e = check(&format!(
            "[service]\nhttp_listen = \"0.0.0.0:2020\"\n{}{out}",
            input("127.0.0.1:2020")
        ));
        assert!(
            e.contains("service.http_listen") && e.contains("clashes with inputs[0].listen"),
            "{e}"
        );
        let unix = "[[inputs]]\ntype = \"forward\"\nunix_path = \"/run/./fluent.sock\"\n[[inputs]]\ntype = \"forward\"\nunix_path = \"/run/fluent.sock\"\n";
        let e = check(&format!("{unix}{out}"));
        assert!(
            e.contains("inputs[1].unix_path") && e.contains("clashes with inputs[0].unix_path"),
            "{e}"
        );
    }

    #[test]
    fn zero_sizes_and_durations_and_a_zero_backoff_are_refused_with_the_key_and_an_example() {
        let e = parse(
            "[service]\nretry_backoff_base = \"0s\"\nretry_backoff_cap = \"0s\"\ndelivery_stuck_after = 0\nmemory_budget = 0\npartial_max_bytes = 0\n\
             [[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:1\"\nbuffer_max_size = 0\ndecompress_max_size = \"0M\"\n\
             [[filters]]\ntype = \"wasm\"\nmatch = \"*\"\npath = \"p.wasm\"\nlimits = { memory = 0, deadline = \"0ms\", max_calls = 0 }\n\
             [[outputs]]\ntype = \"null\"\nmatch = \"*\"\ndead_letter = { path = \"/tmp/dl\", max_bytes = 0 }\n",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        for wanted in [
            "service.retry_backoff_base must be at least \"1ms\"",
            "service.delivery_stuck_after must be more than 0, e.g. \"60s\"",
            "service.memory_budget must be more than 0",
            "service.partial_max_bytes must be more than 0",
            "inputs[0].buffer_max_size must be more than 0, e.g. \"6M\"",
            "inputs[0].decompress_max_size must be more than 0",
            "filters[0].limits.memory must be more than 0",
            "filters[0].limits.deadline must be more than 0",
            "filters[0].limits.max_calls must be at least 1",
            "outputs[0].dead_letter.max_bytes must be more than 0",
        ] {
            assert!(e.contains(wanted), "wanted {wanted:?} in {e}");
        }
        let e = parse(
            "[service]\nretry_backoff_base = \"2s\"\nretry_backoff_cap = \"1s\"\n[[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:1\"\n[[outputs]]\ntype = \"null\"\nmatch = \"*\"\n",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "service.retry_backoff_cap (1s) must be at least service.retry_backoff_base (2s)"
            ),
            "{e}"
        );
    }

    #[test]
    fn sizes_durations_and_env_vars() {
        // SAFETY-free: a unique variable name set only by this test.
        let text = "[service]\ngrace = \"1m30s\"\n[[inputs]]\ntype = \"forward\"\nlisten = \"${WR_TEST_LISTEN_ADDR_42}\"\nbuffer_max_size = \"1MiB\"\n[[outputs]]\ntype = \"null\"\nmatch = \"*\"\nbuffer = { max_bytes = 1024, when_full = \"drop_newest\" }\n";
        let expanded = expand_env(text, &|n: &str| {
            (n == "WR_TEST_LISTEN_ADDR_42").then(|| "127.0.0.1:9".to_string())
        })
        .unwrap();
        let c: Config = toml::from_str(&expanded).unwrap();
        c.validate().unwrap();
        assert_eq!(c.service.grace.0.as_secs(), 90);
        let InputConfig::Forward(f) = &c.inputs[0] else {
            panic!("a forward input")
        };
        assert_eq!(f.listen.as_deref(), Some("127.0.0.1:9"));
        assert_eq!(f.buffer_max_size.unwrap().0, 1 << 20);
        let OutputConfig::Null(o) = &c.outputs[0] else {
            panic!()
        };
        assert_eq!(o.keys.buffer.max_bytes.unwrap().0, 1024);
        assert_eq!(o.keys.buffer.when_full, crate::buffer::WhenFull::DropNewest);
    }
}
