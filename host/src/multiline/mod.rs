//! Multiline parsers (Fluent Bit's multiline core, `src/multiline/`): the lines of one message —
//! a stack trace, a container line split by its runtime — joined back into one record.
//!
//! - [`MultilineParser`]: one parser. Its [`Kind`] decides what a line does: `regex` rules move a
//!   state machine from `start_state` through continuation states ([`rules`]); `endswith` and
//!   `equal` close a message when the line (or its `key_pattern` field) ends with / equals a
//!   string. A parser may first parse each line into a record ([`PreParser`]: Docker's JSON
//!   lines, CRI's `time stream P|F log`).
//! - [`builtin`]: `docker`, `cri`, `go`, `python`, `java` and `ruby`, as Fluent Bit defines them.
//! - [`catalog`]: those plus the `[MULTILINE_PARSER]` sections of parsers files.
//! - [`Joiner`]: the state of one stream (one file, one container's stdout): lines in, joined
//!   records out, with the flush timeout and the caps. The `multiline` filter keeps one per tag,
//!   container and source; an input that reads files can keep one per file.
//!
//! [`catalog::resolve_names`] turns a `multiline_parser` list into parsers, for the filter and
//! the `tail` input alike. This module imports only the leaves (`config`, `event`, `time`) and
//! [`crate::parsers`] (a `[MULTILINE_PARSER]`'s `parser`), so inputs and filters can both use it.

pub mod builtin;
pub mod catalog;
mod joiner;
pub mod rules;

pub use catalog::{MultilineCatalog, resolve_names};
pub use joiner::{Cuts, JoinLimits, Joiner};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Fluent Bit's default flush timeout of a multiline parser (`FLB_ML_FLUSH_TIMEOUT`).
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_millis(4000);

/// Parses one line's text into a record before the parser looks at it (a multiline parser's
/// `parser`).
pub trait PreParser: Send + Sync + fmt::Debug {
    /// The record (a msgpack map) and its time when the text carries one; `None` when the text
    /// is not of this format (the multiline parser then declines the line).
    fn parse(&self, text: &[u8]) -> Option<(Vec<u8>, Option<u64>)>;
}

/// What decides that lines belong together.
#[derive(Debug)]
pub enum Kind {
    /// `type regex`: the rules' state machine.
    Regex(rules::Rules),
    /// `type endswith`: a line ending with `match_string` closes the message (with `negate`:
    /// one that does not).
    EndsWith(Vec<u8>),
    /// `type equal`: a line equal to `match_string` closes the message.
    Equal(Vec<u8>),
}

/// One multiline parser.
#[derive(Debug)]
pub struct MultilineParser {
    /// Its name (`java`, or a `[MULTILINE_PARSER]`'s `name`).
    pub name: String,
    /// What decides that lines belong together.
    pub kind: Kind,
    /// Invert the `endswith` / `equal` match.
    pub negate: bool,
    /// How long a message waits for its next line (`flush_timeout`).
    pub flush_timeout: Duration,
    /// The record key holding the text (`key_content`); `None`: the whole line.
    pub key_content: Option<String>,
    /// The record key whose value `endswith` / `equal` test instead of the content
    /// (`key_pattern`; CRI's `_p`).
    pub key_pattern: Option<String>,
    /// The record key that splits one stream into groups (`key_group`; Docker's `stream`).
    pub key_group: Option<String>,
    /// Parses each line into a record first (`parser`).
    pub pre_parser: Option<Arc<dyn PreParser>>,
}

/// The parsers one stream tries, in order (a `multiline.parser` list), with the key that holds
/// the text when the user set one (`multiline.key_content`: it overrides each parser's).
#[derive(Clone, Debug)]
pub struct ParserChain {
    parsers: Vec<Arc<MultilineParser>>,
    key_content: Option<String>,
    fallback_key: Option<String>,
}

impl ParserChain {
    /// `parsers` (at least one), with `key_content` overriding theirs when set.
    pub fn new(parsers: Vec<Arc<MultilineParser>>, key_content: Option<String>) -> ParserChain {
        assert!(!parsers.is_empty(), "a parser chain needs a parser");
        ParserChain {
            parsers,
            key_content,
            fallback_key: None,
        }
    }

    /// The key for parsers that name none (`go`, `java`, …) when the user set none either: the
    /// `multiline` filter reads `log`; without one, such parsers read bare text lines.
    pub fn with_fallback_key(mut self, key: &str) -> ParserChain {
        self.fallback_key = Some(key.to_string());
        self
    }

    /// The parsers, in order.
    pub fn parsers(&self) -> &[Arc<MultilineParser>] {
        &self.parsers
    }

    /// The longest flush timeout of the parsers (what Fluent Bit's multiline context uses).
    pub fn flush_timeout(&self) -> Duration {
        self.parsers
            .iter()
            .map(|p| p.flush_timeout)
            .max()
            .unwrap_or(DEFAULT_FLUSH_TIMEOUT)
    }

    /// The key holding the text for parser `i`.
    fn key_content(&self, i: usize) -> Option<&str> {
        self.key_content
            .as_deref()
            .or(self.parsers[i].key_content.as_deref())
            .or(self.fallback_key.as_deref())
    }
}

#[cfg(test)]
mod tests;
