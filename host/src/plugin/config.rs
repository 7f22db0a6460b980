//! The config of a plugin component: `type = "wasm"` under `[[filters]]`
//! ([`WasmFilterConfig`]) and the `limits = { … }` every plugin has ([`PluginLimitsConfig`]).
//! (`type = "wasm"` outputs add their grants: `output::wasm::config`.)

use crate::config::{ByteSize, DurationStr, positive_size};
use serde::Deserialize;
use std::path::PathBuf;

/// `type = "wasm"` under `[[filters]]` (with `match`, `match_regex` and `name`, whose default
/// is the plugin's own name).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmFilterConfig {
    /// The `.wasm` component: a file, `s3://`, `https://` or `oci://` (`plugin::source`).
    pub path: PathBuf,
    /// The plugin's sha256, required for a path whose bytes can change (`s3://`, `https://`,
    /// `oci://…:tag`).
    #[serde(default)]
    pub sha256: Option<String>,
    /// What happens to a batch when the plugin faults: `fail_open`, `fail_closed` or `dead_letter`.
    #[serde(default)]
    pub on_error: Option<String>,
    /// The plugin's config, handed to its `init` as JSON.
    #[serde(default)]
    pub config: Option<toml::Table>,
    /// Resource limits for each instance.
    #[serde(default)]
    pub limits: PluginLimitsConfig,
}

impl WasmFilterConfig {
    /// Check the keys that need no plugin: `path` and `sha256`, `on_error` and `limits`.
    pub fn validate(&self, key: &str, problems: &mut Vec<String>) {
        super::source::validate(key, &self.path, self.sha256.as_deref(), problems);
        if let Some(policy) = &self.on_error
            && !["fail_open", "fail_closed", "dead_letter"].contains(&policy.as_str())
        {
            problems.push(format!(
                "{key}.on_error = {policy:?}: use \"fail_open\", \"fail_closed\" or \"dead_letter\""
            ));
        }
        self.limits.validate(key, problems);
    }
}

/// `limits = { … }` of a plugin.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginLimitsConfig {
    /// Linear memory cap per instance (default 64MiB).
    #[serde(default)]
    pub memory: Option<ByteSize>,
    /// Wall-clock budget of one call (default 50ms for filters).
    #[serde(default)]
    pub deadline: Option<DurationStr>,
    /// Recycle an instance after this many calls (default 100000).
    #[serde(default)]
    pub max_calls: Option<u64>,
}

impl PluginLimitsConfig {
    /// Check `{key}.limits`, adding one problem per mistake.
    pub fn validate(&self, key: &str, problems: &mut Vec<String>) {
        positive_size(key, "limits.memory", self.memory, "\"64MiB\"", problems);
        if self.deadline.is_some_and(|d| d.0.is_zero()) {
            problems.push(format!(
                "{key}.limits.deadline must be more than 0, e.g. \"50ms\""
            ));
        }
        if self.max_calls == Some(0) {
            problems.push(format!(
                "{key}.limits.max_calls must be at least 1, e.g. 100000"
            ));
        }
    }
}
