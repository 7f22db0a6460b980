//! The keys every `[[outputs]]` table has, whatever its `type`: which tags it receives
//! (`match` / `match_regex`), its `name`, its `buffer`, and the delivery keys `retry_until`,
//! `retry_limit` and `dead_letter`. The runner ([`super::run_output`]) applies them; an output's
//! own config declares only its own keys ([`crate::config::Keyed`]).

use super::dead_letter::DeadLetterConfig;
use crate::buffer::BufferConfig;
use crate::config::{DurationStr, MatchKeys, SharedKeys, positive_size};
use serde::Deserialize;

/// The keys every output has.
#[derive(Debug, Default, Deserialize)]
pub struct OutputKeys {
    /// `match`, `match_regex` and `name` (default: the output's type).
    #[serde(flatten)]
    pub route: MatchKeys,
    /// The output's buffer.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// How long after a batch was buffered it is retried (default `"24h"`).
    #[serde(default)]
    pub retry_until: Option<DurationStr>,
    /// Most retries of one batch (Fluent Bit `Retry_Limit`); absent = until `retry_until`.
    #[serde(default)]
    pub retry_limit: Option<u32>,
    /// Where events that cannot be delivered go, with the reason.
    #[serde(default)]
    pub dead_letter: Option<DeadLetterConfig>,
    /// How long the first event taken waits for others to share its requests (the flush
    /// window, Fluent Bit's `Flush`); `"0s"` sends at once. Default: `[service] batch_timeout`,
    /// else the output type's own (1 s for the AWS and plugin outputs, 0 s for the others).
    #[serde(default)]
    pub batch_timeout: Option<DurationStr>,
}

impl SharedKeys for OutputKeys {
    const KEYS: &'static [&'static str] = &[
        "match",
        "match_regex",
        "name",
        "buffer",
        "retry_until",
        "retry_limit",
        "dead_letter",
        "batch_timeout",
    ];
}

/// One output as the checks of [`OutputKeys::validate`] see the others: its id and keys.
pub struct Peer<'a> {
    /// The output's id (`name`, else its type).
    pub id: &'a str,
    /// Its shared keys.
    pub keys: &'a OutputKeys,
}

impl OutputKeys {
    /// The id of an output of type `type_name` with these keys: its `name`, else its type.
    pub fn id<'a>(&'a self, type_name: &'a str) -> &'a str {
        self.route.name.as_deref().unwrap_or(type_name)
    }

    /// Check these keys of the output `key` (`outputs[2]`) whose id is `id`, against every
    /// output of the config (`all`, this one included), adding one problem per mistake.
    pub fn validate(&self, key: &str, id: &str, all: &[Peer<'_>], problems: &mut Vec<String>) {
        self.route.validate(key, problems);
        self.buffer.validate(key, problems);
        if let Some(path) = self.buffer.disk_path() {
            let same = all
                .iter()
                .filter(|other| other.id == id && other.keys.buffer.disk_path() == Some(path));
            if same.count() > 1 {
                problems.push(format!(
                    "{key}.buffer: another output named {id:?} uses the disk buffer path {}; give the outputs distinct `name`s",
                    path.display()
                ));
            }
        }
        if self.retry_until.is_some_and(|d| d.0.is_zero()) {
            problems.push(format!(
                "{key}.retry_until must be more than 0, e.g. \"24h\""
            ));
        }
        let Some(dl) = &self.dead_letter else { return };
        positive_size(
            key,
            "dead_letter.max_bytes",
            dl.max_bytes,
            "\"64MiB\"",
            problems,
        );
        match (&dl.path, &dl.output) {
            (None, None) | (Some(_), Some(_)) => problems.push(format!(
                "{key}.dead_letter: set exactly one of `path = \"/var/lib/wasm-router/dead-letter.jsonl\"` and `output = \"<name of another output>\"`"
            )),
            (None, Some(target)) => {
                let targets: Vec<&Peer<'_>> = all.iter().filter(|t| t.id == target).collect();
                match targets.as_slice() {
                    [] => problems.push(format!("{key}.dead_letter.output = {target:?}: no output has that name; set `name = {target:?}` on the output to use")),
                    [t] if t.id == id => problems.push(format!("{key}.dead_letter.output: an output cannot be its own dead-letter destination")),
                    [t] if t.keys.dead_letter.as_ref().is_some_and(|d| d.output.is_some()) => problems.push(format!(
                        "{key}.dead_letter.output = {target:?}: that output sends its own dead letters to an output; chains are not allowed (use a `path`)"
                    )),
                    [_] => {}
                    _ => problems.push(format!("{key}.dead_letter.output = {target:?}: several outputs have that name; give them distinct `name`s")),
                }
            }
            (Some(_), None) => {}
        }
    }
}
