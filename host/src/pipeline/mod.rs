//! The router between inputs and outputs: tag matching, the filter chain and fan-out.
//!
//! An input hands each batch to [`Pipeline::dispatch`]. The batch runs through every filter
//! whose `match` covers its tag, in configuration order; a filter may drop, rewrite, split or
//! re-tag events. A re-tagged batch starts the chain again under its new tag (at most
//! [`MAX_RETAG_HOPS`] times). What comes out is pushed into the buffer of every output whose
//! `match` covers the tag. Stream tasks ([`crate::stream`]) read each batch that leaves the chain;
//! their results start the chain again under their own tag. `dispatch` returns once every push is done: when it returns `Ok`, the
//! input may acknowledge the sender; when it returns [`DispatchError`], some matching buffer did
//! not take the events (its push counted them under their reason), and the input must not ack.
//!
//! A filter may hold events across batches (partial lines, multiline groups). The pipeline
//! asks such filters for what has waited long enough ([`Pipeline::start_expiry_timer`]) and for
//! everything at shutdown ([`Pipeline::flush_held`]); what they pass on continues down the chain
//! after them. Their senders were acked when the events arrived.

pub mod partial;
mod slot;

use crate::buffer::{BufferWriter, PushError};
use crate::event::Batch;
use crate::ops::metrics::{Component, Metrics};
use crate::stream::StreamProcessor;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::config::TagMatcher;
pub use slot::FilterSlot;

/// Most times one event may be re-tagged on its way through the chain.
pub const MAX_RETAG_HOPS: u8 = 3;

/// A stage of the filter chain.
pub trait Filter: Send + Sync {
    /// Process one batch. Returns the batches that continue, in order: usually one with the
    /// same tag; a filter that re-tags returns batches under their new tags.
    fn process(&self, batch: Batch) -> Vec<Batch>;

    /// How often [`expire`](Filter::expire) should be asked, for a filter that holds events
    /// across batches; `None` (the default): it holds none.
    fn expiry_tick(&self) -> Option<Duration> {
        None
    }

    /// The events it holds that waited long enough by `now`, passed on.
    fn expire(&self, _now: Instant) -> Vec<Batch> {
        Vec::new()
    }

    /// Every event it holds, passed on now (shutdown).
    fn flush_held(&self) -> Vec<Batch> {
        Vec::new()
    }
}

/// A filter with the tags it applies to.
pub struct FilterStage {
    /// Which tags the filter sees.
    pub matcher: TagMatcher,
    /// The filter.
    pub filter: Arc<dyn Filter>,
    /// Its telemetry identity.
    pub component: Component,
}

/// An output's buffer with the tags it receives.
pub struct OutputRoute {
    /// Which tags the output receives.
    pub matcher: TagMatcher,
    /// The output's buffer.
    pub buffer: BufferWriter,
    /// Its telemetry identity.
    pub component: Component,
}

/// The filter chain and the output routes.
pub struct Pipeline {
    filters: Vec<FilterStage>,
    outputs: Vec<OutputRoute>,
    streams: StreamProcessor,
    metrics: Arc<Metrics>,
    router: Component,
}

impl Pipeline {
    /// A pipeline over `filters` (in order) and `outputs`.
    pub fn new(
        filters: Vec<FilterStage>,
        outputs: Vec<OutputRoute>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Pipeline {
            filters,
            outputs,
            streams: StreamProcessor::default(),
            metrics,
            router: Component {
                kind: "router",
                id: "router".into(),
            },
        }
    }

    /// The same pipeline with stream tasks reading what leaves its filter chain.
    pub fn with_streams(mut self, streams: StreamProcessor) -> Self {
        self.streams = streams;
        self
    }

    /// The metrics registry this pipeline counts into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Filter `batch` and push what remains into every matching output's buffer. `Ok` means
    /// every event is in every matching buffer (or was dropped by a filter or by a buffer's
    /// `drop_newest` policy, counted): the sender may be acked. An error means it must not be.
    pub async fn dispatch(&self, batch: Batch) -> Result<(), DispatchError> {
        let mut result = Ok(());
        for batch in self.filter(batch) {
            if let Err(e) = self.fan_out(batch).await {
                result = Err(e);
            }
        }
        result
    }

    /// Run the filter chain, and the stream tasks on what leaves it. Returns the batches to
    /// route, in order.
    pub fn filter(&self, batch: Batch) -> Vec<Batch> {
        self.filter_from(batch, 0)
    }

    /// [`filter`](Self::filter) from filter `first` on (re-tagged batches and stream results
    /// start again at 0).
    fn filter_from(&self, batch: Batch, first: usize) -> Vec<Batch> {
        if self.filters.len() <= first && self.streams.is_empty() {
            return vec![batch];
        }
        let mut done = Vec::new();
        // A stack keeps batch order.
        let mut work = vec![Work {
            batch,
            next: first,
            hops: 0,
            rounds: 0,
            from_task: None,
        }];
        while let Some(Work {
            mut batch,
            mut next,
            hops,
            rounds,
            from_task,
        }) = work.pop()
        {
            while let Some(stage) = self.filters.get(next) {
                next += 1;
                if batch.is_empty() || !stage.matcher.matches(&batch.tag) {
                    continue;
                }
                let tag = batch.tag.clone();
                let mut outs = stage.filter.process(batch);
                let retagged: Vec<Batch> = {
                    let (same, other): (Vec<_>, Vec<_>) =
                        outs.drain(..).partition(|b| b.tag == tag);
                    outs = same;
                    other
                };
                for b in retagged.into_iter().rev() {
                    if hops >= MAX_RETAG_HOPS {
                        self.metrics
                            .events_dropped(&stage.component, "retag_loop", b.len() as u64);
                    } else {
                        work.push(Work {
                            batch: b,
                            next: 0,
                            hops: hops + 1,
                            rounds,
                            from_task: None,
                        });
                    }
                }
                batch = match outs.len() {
                    0 => Batch::new(tag, Vec::new()),
                    1 => outs.pop().unwrap(),
                    _ => {
                        let mut merged = outs.remove(0);
                        for b in outs {
                            merged.events.extend(b.events);
                        }
                        merged
                    }
                };
            }
            if batch.is_empty() {
                continue;
            }
            let derived = if self.streams.is_empty() {
                Vec::new()
            } else {
                self.streams.process(&batch, from_task)
            };
            done.push(batch);
            for (b, task) in derived.into_iter().rev() {
                if rounds >= crate::stream::MAX_ROUNDS {
                    self.metrics
                        .events_dropped(&self.router, "stream_loop", b.len() as u64);
                } else {
                    work.push(Work {
                        batch: b,
                        next: 0,
                        hops: 0,
                        rounds: rounds + 1,
                        from_task: Some(task),
                    });
                }
            }
        }
        done
    }

    /// Pass on `batch`, released by filter `stage`: through the filters after it, then into the
    /// matching outputs' buffers. A refused push counted its events.
    async fn dispatch_after(&self, stage: usize, batch: Batch) {
        for batch in self.filter_from(batch, stage + 1) {
            let _ = self.fan_out(batch).await;
        }
    }

    /// How often the filters that hold events want to be asked for expired ones (the shortest),
    /// or `None` when none holds events.
    pub fn expiry_tick(&self) -> Option<Duration> {
        self.filters
            .iter()
            .filter_map(|s| s.filter.expiry_tick())
            .min()
    }

    /// Pass on what every filter holds that waited long enough by `now`.
    pub async fn expire_held(&self, now: Instant) {
        for (i, stage) in self.filters.iter().enumerate() {
            for batch in stage.filter.expire(now) {
                self.dispatch_after(i, batch).await;
            }
        }
    }

    /// Pass on everything the filters hold, in chain order (what an earlier filter releases
    /// may be held by a later one, which releases it in turn). At shutdown, after the inputs.
    pub async fn flush_held(&self) {
        for (i, stage) in self.filters.iter().enumerate() {
            for batch in stage.filter.flush_held() {
                self.dispatch_after(i, batch).await;
            }
        }
    }

    /// Start the task that passes on expired held events, if any filter holds events. It
    /// stops when the pipeline is dropped or the handle is aborted.
    pub fn start_expiry_timer(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let mut tick = self.expiry_tick()?;
        let pipeline = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick).await;
                let Some(pipeline) = pipeline.upgrade() else {
                    return;
                };
                pipeline.expire_held(Instant::now()).await;
                // A reload may have changed a filter's timeout.
                tick = pipeline.expiry_tick().unwrap_or(tick);
            }
        }))
    }

    /// Push `batch` into every output whose `match` covers its tag.
    async fn fan_out(&self, batch: Batch) -> Result<(), DispatchError> {
        let matching: Vec<&OutputRoute> = self
            .outputs
            .iter()
            .filter(|o| o.matcher.matches(&batch.tag))
            .collect();
        let Some((last, others)) = matching.split_last() else {
            self.metrics
                .events_dropped(&self.router, "no_matching_output", batch.len() as u64);
            return Ok(());
        };
        // A failed push has counted its events as dropped. `drop_newest` dropping a batch is the
        // configured policy (the sender is acked); any other failure withholds the ack.
        let mut result = Ok(());
        let mut check = |route: &OutputRoute, pushed: Result<(), PushError>| match pushed {
            Ok(()) => {}
            Err(error) if error.dropped_by_policy() => {}
            Err(error) => {
                result = Err(DispatchError {
                    output: route.component.id.clone(),
                    error,
                })
            }
        };
        for route in others {
            check(route, route.buffer.push(batch.clone()).await);
        }
        check(last, last.buffer.push(batch).await);
        result
    }
}

/// A batch on its way through the filter chain.
struct Work {
    batch: Batch,
    /// The index of the next filter.
    next: usize,
    /// Re-tags by filters so far.
    hops: u8,
    /// Rounds of stream tasks so far.
    rounds: u8,
    /// The stream task that made it, if one did.
    from_task: Option<usize>,
}

/// Some matching output's buffer did not take a batch: the input must not acknowledge it.
#[derive(Debug, thiserror::Error)]
#[error("output {output} did not queue the events: {error}")]
pub struct DispatchError {
    /// The output whose buffer refused.
    pub output: String,
    /// Why (the events were counted under the matching reason).
    pub error: PushError,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::{WhenFull, memory_buffer};
    use crate::event::Event;
    use bytes::Bytes;

    struct Retag(&'static [u8]);
    impl Filter for Retag {
        fn process(&self, mut batch: Batch) -> Vec<Batch> {
            batch.tag = Bytes::from_static(self.0);
            vec![batch]
        }
    }
    struct DropAll;
    impl Filter for DropAll {
        fn process(&self, batch: Batch) -> Vec<Batch> {
            vec![Batch::new(batch.tag, vec![])]
        }
    }

    fn stage(pattern: &str, f: impl Filter + 'static) -> FilterStage {
        FilterStage {
            matcher: TagMatcher::wildcard(pattern),
            filter: Arc::new(f),
            component: Component::filter(pattern),
        }
    }

    fn batch(tag: &'static [u8], n: usize) -> Batch {
        Batch::new(
            Bytes::from_static(tag),
            vec![
                Event {
                    time_ns: 1,
                    body: Bytes::from_static(&[0x80])
                };
                n
            ],
        )
    }

    #[tokio::test]
    async fn fans_out_to_every_matching_output_and_counts_unmatched() {
        let metrics = Metrics::new();
        let (w1, mut r1) = memory_buffer(
            1 << 20,
            WhenFull::Block,
            Component::output("a"),
            metrics.clone(),
        );
        let (w2, mut r2) = memory_buffer(
            1 << 20,
            WhenFull::Block,
            Component::output("b"),
            metrics.clone(),
        );
        let outputs = vec![
            OutputRoute {
                matcher: TagMatcher::wildcard("app.*"),
                buffer: w1,
                component: Component::output("a"),
            },
            OutputRoute {
                matcher: TagMatcher::wildcard("*"),
                buffer: w2,
                component: Component::output("b"),
            },
        ];
        let p = Pipeline::new(vec![], outputs, metrics.clone());
        p.dispatch(batch(b"app.web", 3)).await.unwrap();
        p.dispatch(batch(b"other", 2)).await.unwrap();
        assert_eq!(r1.pop().await.unwrap().batch.len(), 3);
        assert_eq!(r2.pop().await.unwrap().batch.len(), 3);
        assert_eq!(
            r2.pop().await.unwrap().batch.tag,
            Bytes::from_static(b"other")
        );

        let p = Pipeline::new(vec![], vec![], metrics.clone());
        p.dispatch(batch(b"x", 4)).await.unwrap();
        assert_eq!(
            metrics.discarded(
                &Component {
                    kind: "router",
                    id: "router".into()
                },
                "no_matching_output"
            ),
            4
        );
    }

    /// Holds the batches of tag `hold` until asked; passes the others.
    struct HoldTag(std::sync::Mutex<Vec<Batch>>);
    impl Filter for HoldTag {
        fn process(&self, batch: Batch) -> Vec<Batch> {
            if batch.tag == Bytes::from_static(b"hold") {
                self.0.lock().unwrap().push(batch);
                return Vec::new();
            }
            vec![batch]
        }
        fn expiry_tick(&self) -> Option<Duration> {
            Some(Duration::from_millis(7))
        }
        fn expire(&self, _now: Instant) -> Vec<Batch> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    #[tokio::test]
    async fn held_events_continue_after_the_filter_that_held_them() {
        let metrics = Metrics::new();
        let (w, mut r) = memory_buffer(
            1 << 20,
            WhenFull::Block,
            Component::output("a"),
            metrics.clone(),
        );
        let outputs = vec![OutputRoute {
            matcher: TagMatcher::wildcard("*"),
            buffer: w,
            component: Component::output("a"),
        }];
        let p = Arc::new(Pipeline::new(
            vec![
                stage("*", HoldTag(Default::default())),
                stage("hold", Retag(b"done")),
            ],
            outputs,
            metrics,
        ));
        assert_eq!(p.expiry_tick(), Some(Duration::from_millis(7)));
        p.dispatch(batch(b"hold", 2)).await.unwrap();
        p.expire_held(Instant::now()).await;
        // Not held again by the first filter; re-tagged by the second.
        assert_eq!(
            r.pop().await.unwrap().batch.tag,
            Bytes::from_static(b"done")
        );
        let p = Pipeline::new(vec![stage("*", Retag(b"x"))], vec![], Metrics::new());
        assert_eq!(p.expiry_tick(), None);
    }

    #[test]
    fn retag_restarts_the_chain_and_loops_are_bounded() {
        let metrics = Metrics::new();
        let p = Pipeline::new(
            vec![
                stage("a", Retag(b"b")),
                stage("b", Retag(b"c")),
                stage("c", DropAll),
            ],
            vec![],
            metrics.clone(),
        );
        // a → b → c → dropped by the third filter.
        assert!(p.filter(batch(b"a", 2)).is_empty());
        let p = Pipeline::new(vec![stage("a", Retag(b"b"))], vec![], metrics.clone());
        let out = p.filter(batch(b"a", 2));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].tag, Bytes::from_static(b"b"));

        let p = Pipeline::new(
            vec![stage("a", Retag(b"b")), stage("b", Retag(b"a"))],
            vec![],
            metrics.clone(),
        );
        assert!(p.filter(batch(b"a", 5)).is_empty());
        assert_eq!(
            metrics.discarded(&Component::filter("a"), "retag_loop")
                + metrics.discarded(&Component::filter("b"), "retag_loop"),
            5
        );
    }

    fn tasks(execs: &[&str]) -> StreamProcessor {
        let configs: Vec<_> = execs
            .iter()
            .enumerate()
            .map(|(i, exec)| crate::stream::StreamTaskConfig {
                name: format!("t{i}"),
                exec: exec.to_string(),
            })
            .collect();
        StreamProcessor::new("stream_tasks", &configs).unwrap()
    }

    #[test]
    fn stream_results_run_the_filter_chain_again_under_their_tag() {
        let metrics = Metrics::new();
        // Results tagged `copy` go through the chain: the filter matching `copy` drops them,
        // while the task's other results (`kept`) and the original batch go on.
        let p = Pipeline::new(vec![stage("copy", DropAll)], vec![], metrics.clone()).with_streams(
            tasks(&[
                "CREATE STREAM c WITH (tag='copy') AS SELECT * FROM TAG:'app';",
                "CREATE STREAM k WITH (tag='kept') AS SELECT * FROM TAG:'app';",
            ]),
        );
        let out = p.filter(batch(b"app", 2));
        let tags: Vec<_> = out.iter().map(|b| (b.tag.clone(), b.len())).collect();
        assert_eq!(
            tags,
            [
                (Bytes::from_static(b"app"), 2),
                (Bytes::from_static(b"kept"), 2)
            ]
        );

        // A task reading its own results loops: bounded, counted.
        let p = Pipeline::new(vec![], vec![], metrics.clone()).with_streams(tasks(&[
            "CREATE STREAM again WITH (tag='app') AS SELECT * FROM TAG:'app';",
        ]));
        let out = p.filter(batch(b"app", 3));
        assert_eq!(out.len(), 1 + crate::stream::MAX_ROUNDS as usize);
        let router = Component {
            kind: "router",
            id: "router".into(),
        };
        assert_eq!(metrics.discarded(&router, "stream_loop"), 3);
    }
}
