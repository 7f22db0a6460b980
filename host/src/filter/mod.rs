//! Native filters with Fluent Bit's semantics, for the filters FireLens-generated and typical
//! user configs use: [`grep`], [`record_modifier`], [`modify`], [`parser`] (json, regex, logfmt
//! and ltsv [`parsers`]),
//! [`multiline`], [`aws`] (EC2 instance metadata) and [`ecs`] (ECS task metadata).
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

pub mod aws;
pub mod component;
pub mod ecs;
pub mod grep;
pub mod modify;
pub mod multiline;
pub mod parser;
pub mod record_modifier;

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
}
