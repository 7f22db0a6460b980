//! Native filters with Fluent Bit's semantics, for the filters FireLens-generated and typical
//! user configs use: [`grep`], [`record_modifier`], [`modify`], [`parser`] (json format) and
//! [`aws`] (EC2 instance metadata) and [`ecs`] (ECS task metadata).
//!
//! Each works on the record's msgpack bytes directly ([`record::RawRecord`]): the keys it looks
//! at are found by scanning the top-level map, and values it does not change are copied as they
//! are. A filter decides per event ([`RecordFilter`]); [`NativeFilter`] runs it over a batch as a
//! pipeline stage and counts events in, out and filtered out. Events a filter drops on purpose
//! (a `grep` that excludes them) are counted under `component_discarded_events_total` with the
//! filter's reason but not logged: filtering is not loss.
//!
//! Anything else a Fluent Bit config may ask of these filters is refused at startup with the key
//! and what to do instead (usually: a WASM filter).

pub mod accessor;
pub mod aws;
pub mod component;
pub mod ecs;
pub mod grep;
pub mod json_msgpack;
pub mod modify;
pub mod parser;
pub mod parsers;
pub mod record;
pub mod record_modifier;
pub mod time_parse;

use crate::event::{Batch, Event};
use crate::ops::metrics::{Component, Metrics, ReasonLabels};
use crate::pipeline::Filter;
use std::sync::Arc;

pub use component::{FilterComponent, FilterContext, NativeConfig};

/// What a filter does with one event.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it on unchanged.
    Keep,
    /// Filter it out.
    Drop,
    /// Pass this event on instead.
    Replace(Event),
}

/// A filter that decides one event at a time.
pub trait RecordFilter: Send + Sync {
    /// The reason its drops are counted under.
    fn drop_reason(&self) -> &'static str {
        "filtered"
    }

    /// Decide `event`.
    fn apply(&self, event: &Event) -> Verdict;
}

/// A [`RecordFilter`] as a pipeline stage, with its metrics.
pub struct NativeFilter<F> {
    inner: F,
    component: Component,
    metrics: Arc<Metrics>,
}

impl<F: RecordFilter> NativeFilter<F> {
    /// `inner` as the filter component `id`.
    pub fn new(inner: F, id: &str, metrics: Arc<Metrics>) -> Self {
        NativeFilter {
            inner,
            component: Component::filter(id),
            metrics,
        }
    }

    /// The per-event filter.
    pub fn inner(&self) -> &F {
        &self.inner
    }
}

impl<F: RecordFilter> Filter for NativeFilter<F> {
    fn process(&self, mut batch: Batch) -> Vec<Batch> {
        let received = batch.len() as u64;
        let bytes: usize = batch.events.iter().map(|e| e.body.len()).sum();
        self.metrics
            .received(&self.component, received, bytes as u64);
        let mut dropped = 0u64;
        batch
            .events
            .retain_mut(|event| match self.inner.apply(event) {
                Verdict::Keep => true,
                Verdict::Drop => {
                    dropped += 1;
                    false
                }
                Verdict::Replace(new) => {
                    *event = new;
                    true
                }
            });
        self.metrics.sent(&self.component, received - dropped);
        if dropped > 0 {
            // Filtering out is what the filter is for: counted, not logged as a loss.
            let labels = ReasonLabels {
                component_kind: self.component.kind,
                component_id: self.component.id.clone(),
                reason: self.inner.drop_reason().into(),
            };
            self.metrics
                .discarded_events
                .get_or_create(&labels)
                .inc_by(dropped);
        }
        vec![batch]
    }
}

/// Compile a Fluent Bit regular expression: `/pattern/` and `/pattern/i` (case-insensitive) are
/// accepted as Fluent Bit does; the syntax is Rust's `regex` (Onigmo's look-around and
/// back-references are not available). The error names the pattern and the fix.
pub fn compile_regex(pattern: &str) -> Result<regex::bytes::Regex, String> {
    let (body, case_insensitive) = match pattern.strip_prefix('/') {
        Some(rest) if rest.ends_with("/i") && rest.len() >= 2 => (&rest[..rest.len() - 2], true),
        Some(rest) if rest.ends_with('/') => (&rest[..rest.len() - 1], false),
        _ => (pattern, false),
    };
    regex::bytes::RegexBuilder::new(body)
        .case_insensitive(case_insensitive)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            format!(
                "{pattern:?} is not a valid regular expression: {e}\n(Rust `regex` syntax: no look-around or back-references; rewrite the pattern, or use a WASM filter)"
            )
        })
}

/// Split a Fluent Bit value at runs of blanks, keeping `"double quoted"` parts (with `\"`
/// escapes) together and unquoted, as Fluent Bit's `flb_utils_split_quoted` does.
pub fn split_quoted(value: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let mut part = String::new();
        if first == '"' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek() == Some(&'"') => part.push(chars.next().unwrap()),
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => part.push(c),
                }
            }
            if !closed {
                return Err(format!("{value:?} has an unclosed `\"`"));
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                part.push(c);
            }
        }
        parts.push(part);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    struct EveryOther;
    impl RecordFilter for EveryOther {
        fn drop_reason(&self) -> &'static str {
            "test_excluded"
        }
        fn apply(&self, event: &Event) -> Verdict {
            match event.time_ns % 3 {
                0 => Verdict::Drop,
                1 => Verdict::Keep,
                _ => Verdict::Replace(Event {
                    time_ns: event.time_ns * 10,
                    body: event.body.clone(),
                }),
            }
        }
    }

    #[test]
    fn drops_are_counted_as_filtered_and_order_is_kept() {
        let metrics = Metrics::new();
        let f = NativeFilter::new(EveryOther, "t.0", metrics.clone());
        let events = (0..6)
            .map(|t| Event {
                time_ns: t,
                body: Bytes::from_static(&[0x80]),
            })
            .collect();
        let out = f.process(Batch::new(Bytes::from_static(b"tag"), events));
        let times: Vec<u64> = out[0].events.iter().map(|e| e.time_ns).collect();
        assert_eq!(times, vec![1, 20, 4, 50]);
        assert_eq!(
            metrics.discarded(&Component::filter("t.0"), "test_excluded"),
            2
        );
    }

    #[test]
    fn fluent_bit_regex_forms() {
        assert!(compile_regex("/^ab/i").unwrap().is_match(b"ABc"));
        assert!(compile_regex("/^ab/").unwrap().is_match(b"abc"));
        assert!(!compile_regex("/^ab/").unwrap().is_match(b"ABc"));
        assert!(compile_regex("^/x/$").unwrap().is_match(b"/x/"));
        let e = compile_regex("(?<=a)b").unwrap_err();
        assert!(
            e.contains("look-around") && e.contains("WASM filter"),
            "{e}"
        );
    }

    #[test]
    fn quoted_splitting() {
        assert_eq!(split_quoted("a  b").unwrap(), vec!["a", "b"]);
        assert_eq!(
            split_quoted("key \"a value\" x").unwrap(),
            vec!["key", "a value", "x"]
        );
        assert_eq!(
            split_quoted(r#"k "say \"hi\"""#).unwrap(),
            vec!["k", "say \"hi\""]
        );
        assert!(split_quoted("k \"open").is_err());
    }
}
