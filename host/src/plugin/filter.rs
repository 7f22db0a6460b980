//! A WASM filter in the pipeline: [`WasmFilter`] implements [`Filter`] over a plugin of world
//! `filter`.
//!
//! A batch is cut into calls of at most [`MAX_CALL_EVENTS`] events and [`MAX_CALL_BYTES`]
//! bytes, laid out as columns, and each call's outcomes are applied positionally: `keep`
//! passes the host's own bytes on (nothing is copied back), `drop` is counted, `replace` and
//! `expand` bodies must each be one msgpack map, a new tag sends the event out in a separate
//! batch under that tag (the pipeline routes it again, a bounded number of times), and `error`
//! applies the plugin's `on_error` policy to that one event. Batches keep their order, and
//! events keep their order within each tag.
//!
//! A fault (trap, deadline, memory cap, wrong result length, invalid body or tag, expansion
//! past [`MAX_EXPANSION`]×) discards the instance — the next call gets a fresh one from the
//! `InstancePre` — and applies `on_error` to the call's events. A fault one event can cause
//! (trap, memory cap, fuel), and the same `error` for every event of a call, are first
//! narrowed down by calling halves of the events alone (at most [`MAX_SPLIT_CALLS`] calls),
//! so `on_error` applies to the events that fault alone and the others pass. More than five
//! faulting events in a minute open the circuit: calls are skipped (and `on_error` applied) until a backoff has
//! passed, then one probe call decides. An instance is also replaced after `max_calls` calls
//! or when its memory passes 75% of its cap.
//!
//! `Filter::process` runs inline on the connection's tokio worker. A call the plugin's recent
//! speed says will be short ([`INLINE_CALL_BUDGET`]) runs right there; a longer one is wrapped
//! in `block_in_place`, so the worker's other tasks move elsewhere meanwhile. An instance pool
//! lets several connections run the plugin at once.

use super::PluginError;
use super::bindings::{EventPatch, Outcome};
use super::fault::Fault;
use super::instance::PluginInstance;
use super::limits::PluginLimits;
use super::loader::LoadedPlugin;
use super::msgpack::check_map;
use super::policy::{CircuitBreaker, OnError};
use super::pool::InstancePool;
use super::startup::{self, StartedPlugin};
use super::state::PluginContext;
use super::telemetry::OutcomeCounts;
use crate::event::{Batch, Event, Tag};
use crate::ops::metrics::{Component, Metrics, ReasonLabels};
use crate::pipeline::Filter;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most events in one call.
pub const MAX_CALL_EVENTS: usize = 1024;
/// Most body bytes in one call (a single larger event still goes alone).
pub const MAX_CALL_BYTES: usize = 4 << 20;
/// A call may return at most this many times its input events, and this many times its input
/// bytes (at least [`MIN_EXPANSION_BYTES`]) in new bodies.
pub const MAX_EXPANSION: usize = 16;
/// The new-body allowance of a call with little input.
pub const MIN_EXPANSION_BYTES: usize = 1 << 20;
/// Longest tag a plugin may set.
pub const MAX_TAG_BYTES: usize = 1024;
/// A call expected to take at most this long runs inline on its Tokio worker; a longer one in
/// `block_in_place`, which first hands the worker's other tasks to another thread — a thread
/// hand-off that costs tens of microseconds per call (`perf` under `wasm-router bench-load`).
/// The expectation is the plugin's recent time per event times the call's events.
pub const INLINE_CALL_BUDGET: Duration = Duration::from_micros(200);
/// Most extra calls made to narrow one faulted call down to the events that fault: one
/// faulting event among 1,024 takes 2·log2(1024) = 20.
pub const MAX_SPLIT_CALLS: usize = 64;

/// How a [`WasmFilter`] runs its plugin.
#[derive(Clone, Copy, Debug)]
pub struct FilterSettings {
    /// Per-instance limits.
    pub limits: PluginLimits,
    /// What happens on a fault or an `error` outcome.
    pub on_error: OnError,
    /// Most instances alive at once (= calls in parallel).
    pub max_instances: usize,
}

impl FilterSettings {
    /// Default limits and pool size, with `on_error`.
    pub fn new(on_error: OnError) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        FilterSettings {
            limits: PluginLimits::filter_defaults(),
            on_error,
            max_instances: cores.clamp(1, 8),
        }
    }
}

/// What became of one input event (for `wasm-router test`).
#[derive(Clone, Debug)]
pub struct EventReport {
    /// Index of the event in its batch.
    pub index: usize,
    /// `keep`, `drop`, `replace`, `expand`, `error`, `fault` or `circuit_open`.
    pub outcome: &'static str,
    /// The events it became, with their tags (empty when dropped).
    pub outputs: Vec<(Tag, Event)>,
    /// The plugin's error message, or the fault.
    pub message: Option<String>,
    /// Instructions the call used, divided by its events (metering engine only).
    pub instructions: Option<u64>,
    /// Events in the call this event was part of.
    pub call_events: usize,
}

/// A plugin of world `filter` as a pipeline stage.
pub struct WasmFilter {
    started: StartedPlugin,
    settings: FilterSettings,
    pool: InstancePool,
    breaker: Mutex<CircuitBreaker>,
    component: Component,
    metrics: Arc<Metrics>,
    /// Recent call time per event, in nanoseconds (a moving average).
    nanos_per_event: AtomicU64,
}

impl WasmFilter {
    /// A filter running `plugin` as `id` with `config`: the config is checked against the
    /// plugin's schema and a first instance is created and initialised, so a bad config fails
    /// here, at startup. With `capture_logs` the plugin's log is kept for
    /// [`context`](Self::context) (`wasm-router test`) instead of going to the router's log.
    pub fn new(
        plugin: Arc<LoadedPlugin>,
        id: &str,
        config: &serde_json::Value,
        settings: FilterSettings,
        metrics: Arc<Metrics>,
        capture_logs: bool,
    ) -> Result<WasmFilter, PluginError> {
        let (started, first) =
            startup::start(plugin, id, config, settings.limits, &metrics, capture_logs)?;
        let filter = WasmFilter {
            pool: InstancePool::new(settings.max_instances),
            breaker: Mutex::new(CircuitBreaker::default()),
            component: Component::filter(id),
            started,
            settings,
            metrics,
            nanos_per_event: AtomicU64::new(INLINE_CALL_BUDGET.as_nanos() as u64),
        };
        filter.pool.put_new(first);
        Ok(filter)
    }

    /// The plugin's id (in metrics and logs).
    pub fn id(&self) -> &str {
        &self.started.context.id
    }

    /// The plugin.
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.started.plugin
    }

    /// The plugin's shared log, metrics and telemetry.
    pub fn context(&self) -> &Arc<PluginContext> {
        &self.started.context
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &FilterSettings {
        &self.settings
    }

    /// Like [`Filter::process`], and also says what became of each input event.
    pub fn process_traced(&self, batch: Batch) -> (Vec<Batch>, Vec<EventReport>) {
        let mut reports = Vec::new();
        let out = self.run(batch, Some(&mut reports));
        (out, reports)
    }

    fn run(&self, batch: Batch, mut trace: Option<&mut Vec<EventReport>>) -> Vec<Batch> {
        if batch.is_empty() {
            return vec![batch];
        }
        let tag_text = batch.tag_lossy().into_owned();
        let mut routed = Routed::new(batch.tag.clone());
        let mut events = batch.events;
        let mut first_index = 0;
        while !events.is_empty() {
            let split = call_split(&events);
            let rest = events.split_off(split);
            let n = events.len();
            let expected = self
                .nanos_per_event
                .load(Ordering::Relaxed)
                .saturating_mul(n as u64);
            let inline = expected <= INLINE_CALL_BUDGET.as_nanos() as u64;
            run_off_the_worker(inline, || {
                self.run_call(
                    &tag_text,
                    events,
                    first_index,
                    &mut routed,
                    trace.as_deref_mut(),
                )
            });
            first_index += n;
            events = rest;
        }
        routed.into_batches()
    }

    /// One call: the plugin's outcomes applied, or the policy on a fault / open circuit. A
    /// fault that one event can cause is narrowed down first ([`Self::settle`]).
    fn run_call(
        &self,
        tag: &str,
        events: Vec<Event>,
        first_index: usize,
        routed: &mut Routed,
        trace: Option<&mut Vec<EventReport>>,
    ) {
        let input_bytes: usize = events.iter().map(|e| e.body.len()).sum();
        self.metrics
            .received(&self.component, events.len() as u64, input_bytes as u64);
        if !self
            .breaker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(Instant::now())
        {
            self.apply_policy(events, "circuit_open", None, first_index, routed, trace);
            return;
        }
        let result = self.call(tag, &events, false);
        let mut split = Split {
            calls_left: MAX_SPLIT_CALLS,
            faults: 0,
        };
        let failed = result.is_err();
        self.settle(tag, events, first_index, result, &mut split, routed, trace);
        if failed && split.faults == 0 {
            // Every part passed when called alone (a fault no single event causes): the
            // breaker still counts the one fault.
            self.breaker_fault();
        }
    }

    /// One call into the plugin on `events`: its checked outcomes and the fuel it used. A
    /// `split` call (one of those that narrow a fault down) counts as a call but does not
    /// count its events in again.
    fn call(&self, tag: &str, events: &[Event], split: bool) -> Result<Called, Fault> {
        let telemetry = &self.started.context.telemetry;
        let started = Instant::now();
        let mut fuel = None;
        let result = self.with_instance(|instance| {
            let outcomes = instance.process(tag, events)?;
            fuel = instance.fuel_used();
            check_outcomes(tag, events, &outcomes, self.settings.on_error)?;
            Ok(outcomes)
        });
        let elapsed = started.elapsed();
        let n = if split { 0 } else { events.len() as u64 };
        telemetry.call(n, elapsed);
        if split {
            telemetry.split_call();
        }
        let per_event = (elapsed.as_nanos() / events.len().max(1) as u128) as u64;
        let average = self.nanos_per_event.load(Ordering::Relaxed);
        self.nanos_per_event
            .store(average - average / 8 + per_event / 8, Ordering::Relaxed);
        result.map(|outcomes| Called { outcomes, fuel })
    }

    /// Apply what a call on `events` gave. A call that faulted in a way one event can cause
    /// (a trap, a memory cap, fuel), or that returned the same `error` for every event, is
    /// narrowed down: the events are split in halves and each half is called alone, until the
    /// events that fault alone are found, so `on_error` applies to those events only and the
    /// others' outcomes pass (a refusal that both halves repeat is left as it is: see
    /// [`Self::split`]). One faulting event in `n` costs about 2·log2(n) extra calls;
    /// at most [`MAX_SPLIT_CALLS`] per call, after which the parts not yet narrowed down get
    /// `on_error` as a whole. The circuit breaker counts each faulting event (or part), not
    /// the split calls.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &self,
        tag: &str,
        events: Vec<Event>,
        first_index: usize,
        result: Result<Called, Fault>,
        split: &mut Split,
        routed: &mut Routed,
        trace: Option<&mut Vec<EventReport>>,
    ) {
        let narrowing = split.calls_left < MAX_SPLIT_CALLS;
        let can_split = events.len() > 1
            && split.calls_left >= 2
            && !self
                .breaker
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_open();
        match result {
            Ok(called) if can_split && errs_for_every_event(&called.outcomes) => {
                self.split(tag, events, first_index, true, split, routed, trace);
            }
            Ok(called) => {
                if narrowing
                    && events.len() == 1
                    && matches!(called.outcomes.first(), Some(Outcome::Error(_)))
                {
                    self.started.context.telemetry.isolated(1);
                }
                self.apply_called(tag, events, first_index, called, routed, trace);
            }
            Err(fault) if can_split && fault.may_be_one_event() => {
                tracing::debug!(plugin = %self.started.context.id, kind = fault.kind(), events = events.len(), "plugin fault: calling each half of the events alone to find the events that fault");
                self.split(tag, events, first_index, false, split, routed, trace);
            }
            Err(fault) => {
                let kind = fault.kind();
                self.started.context.telemetry.fault(kind);
                self.metrics
                    .error(&self.component, &format!("plugin_fault_{kind}"));
                let last = first_index + events.len();
                tracing::warn!(
                    plugin = %self.started.context.id, kind, events = events.len(), on_error = self.settings.on_error.as_str(),
                    "plugin fault on events {}..{last} of the batch, instance discarded: {fault}", first_index + 1
                );
                if narrowing && events.len() == 1 {
                    self.started.context.telemetry.isolated(1);
                }
                split.faults += 1;
                self.breaker_fault();
                self.apply_policy(
                    events,
                    kind,
                    Some(fault.to_string()),
                    first_index,
                    routed,
                    trace,
                );
            }
        }
    }

    /// Call each half of `events` alone and settle it. When the call `refused` the whole
    /// batch (the same `error` for every event) and both halves are refused whole as well, the
    /// refusal is no one event's doing (a plugin that errs on every event alike): the errors
    /// stand as they are, without more calls.
    #[allow(clippy::too_many_arguments)]
    fn split(
        &self,
        tag: &str,
        mut events: Vec<Event>,
        first_index: usize,
        refused: bool,
        split: &mut Split,
        routed: &mut Routed,
        mut trace: Option<&mut Vec<EventReport>>,
    ) {
        let right = events.split_off(events.len() / 2);
        let middle = first_index + events.len();
        let parts = [(events, first_index), (right, middle)];
        let results = parts.each_ref().map(|(part, _)| {
            split.calls_left -= 1;
            self.call(tag, part, true)
        });
        let alike = refused
            && results
                .iter()
                .all(|r| r.as_ref().is_ok_and(|c| errs_for_every_event(&c.outcomes)));
        for ((part, first), result) in parts.into_iter().zip(results) {
            match result {
                Ok(called) if alike => {
                    self.apply_called(tag, part, first, called, routed, trace.as_deref_mut());
                }
                result => {
                    self.settle(
                        tag,
                        part,
                        first,
                        result,
                        split,
                        routed,
                        trace.as_deref_mut(),
                    );
                }
            }
        }
    }

    /// Apply a call's checked outcomes.
    fn apply_called(
        &self,
        tag: &str,
        events: Vec<Event>,
        first_index: usize,
        called: Called,
        routed: &mut Routed,
        trace: Option<&mut Vec<EventReport>>,
    ) {
        let call_events = events.len();
        let applied = apply_outcomes(
            &routed.input_tag,
            tag,
            events,
            called.outcomes,
            self.settings.on_error,
            first_index,
            trace.is_some(),
        );
        if self
            .breaker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .success()
        {
            self.started.context.telemetry.circuit(false);
            tracing::info!(plugin = %self.started.context.id, "plugin call succeeded: circuit closed");
        }
        self.count(&applied.counts, applied.errors_passed, applied.sent);
        if let Some(trace) = trace {
            let per_event = called.fuel.map(|f| f / call_events.max(1) as u64);
            trace.extend(applied.reports.into_iter().map(|r| EventReport {
                instructions: per_event,
                ..r
            }));
        }
        routed.merge(applied.routed);
    }

    /// Count one fault in the circuit breaker (which may open the circuit).
    fn breaker_fault(&self) {
        if self
            .breaker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fault(Instant::now())
        {
            self.started.context.telemetry.circuit(true);
            tracing::warn!(plugin = %self.started.context.id, "repeated plugin faults: circuit open, the plugin is not called until a backoff has passed");
        }
    }

    /// Run `f` on an instance from the pool; a fault discards the instance, and so does
    /// reaching `max_calls` or the memory high-water mark.
    fn with_instance<R>(
        &self,
        f: impl FnOnce(&mut PluginInstance) -> Result<R, Fault>,
    ) -> Result<R, Fault> {
        let mut instance = self.pool.take(|| self.started.new_instance())?;
        let result = f(&mut instance);
        self.started
            .context
            .telemetry
            .peak_memory(instance.peak_memory());
        match (&result, instance.recycle_reason()) {
            (Err(_), _) => self.pool.discard(instance),
            (Ok(_), Some(reason)) => {
                self.started.context.telemetry.recycled(reason);
                self.pool.discard(instance);
            }
            (Ok(_), None) => self.pool.give_back(instance),
        }
        result
    }

    /// `on_error` for a whole call's events; `cause` is a fault kind or `circuit_open`.
    fn apply_policy(
        &self,
        events: Vec<Event>,
        cause: &'static str,
        message: Option<String>,
        first_index: usize,
        routed: &mut Routed,
        trace: Option<&mut Vec<EventReport>>,
    ) {
        let n = events.len() as u64;
        let outcome = if cause == "circuit_open" {
            "circuit_open"
        } else {
            "fault"
        };
        let passed = self.settings.on_error == OnError::FailOpen;
        if let Some(trace) = trace {
            let first = message.unwrap_or_else(|| "circuit open: the plugin was not called".into());
            trace.extend(events.iter().enumerate().map(|(i, e)| EventReport {
                index: first_index + i,
                outcome,
                outputs: if passed {
                    vec![(routed.input_tag.clone(), e.clone())]
                } else {
                    Vec::new()
                },
                message: Some(if i == 0 {
                    first.clone()
                } else {
                    format!("the same as event {}", first_index + 1)
                }),
                instructions: None,
                call_events: events.len(),
            }));
        }
        match self.settings.on_error {
            OnError::FailOpen => {
                self.started.context.telemetry.passed_unfiltered(n);
                self.metrics.sent(&self.component, n);
                routed.extend_input(events);
            }
            OnError::FailClosed => {
                let reason = if cause == "circuit_open" {
                    "plugin_circuit_open".to_string()
                } else {
                    format!("plugin_fault_{cause}")
                };
                self.metrics.events_dropped(&self.component, &reason, n);
            }
            OnError::DeadLetter => {
                tracing::warn!(plugin = %self.started.context.id, events = n, "on_error = dead_letter, but the router has no dead-letter queue yet: the events are dropped");
                self.metrics
                    .events_dropped(&self.component, "dead_letter", n);
            }
        }
    }

    fn count(&self, counts: &OutcomeCounts, errors_passed: u64, sent: u64) {
        self.started.context.telemetry.outcomes(counts);
        self.metrics.sent(&self.component, sent);
        if counts.dropped > 0 {
            // Dropping is what a filter is for: counted, but not logged as a loss.
            let labels = ReasonLabels {
                component_kind: self.component.kind,
                component_id: self.component.id.clone(),
                reason: "plugin_dropped".into(),
            };
            self.metrics
                .discarded_events
                .get_or_create(&labels)
                .inc_by(counts.dropped);
        }
        let errors_dropped = counts.errors - errors_passed;
        match self.settings.on_error {
            OnError::FailOpen => {}
            OnError::FailClosed => {
                self.metrics
                    .events_dropped(&self.component, "plugin_event_error", errors_dropped)
            }
            OnError::DeadLetter => {
                self.metrics
                    .events_dropped(&self.component, "dead_letter", errors_dropped)
            }
        }
    }
}

impl Filter for WasmFilter {
    fn process(&self, batch: Batch) -> Vec<Batch> {
        self.run(batch, None)
    }
}

/// How many of `events` go into the next call.
fn call_split(events: &[Event]) -> usize {
    let mut bytes = 0;
    for (i, e) in events.iter().enumerate().take(MAX_CALL_EVENTS) {
        bytes += e.body.len();
        if bytes > MAX_CALL_BYTES && i > 0 {
            return i;
        }
    }
    events.len().min(MAX_CALL_EVENTS)
}

/// Run `f` where it may block: on a multi-threaded tokio worker directly when `short` (WASI's
/// blocking host functions step off the worker themselves, see `engine::WorkerSafeIo`),
/// otherwise through `block_in_place`; on a current-thread runtime on a helper thread (its
/// worker must not block, and WASI's synchronous host functions cannot run inside it);
/// elsewhere directly.
fn run_off_the_worker<R: Send>(short: bool, f: impl FnOnce() -> R + Send) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) if short => f(),
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|s| match s.spawn(f).join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
        Err(_) => f(),
    }
}

/// Output events grouped by tag, in order of first appearance; the input tag is first.
struct Routed {
    input_tag: Tag,
    groups: Vec<(Tag, Vec<Event>)>,
}

impl Routed {
    fn new(input_tag: Tag) -> Self {
        Routed {
            groups: vec![(input_tag.clone(), Vec::new())],
            input_tag,
        }
    }

    fn push(&mut self, tag: &Tag, event: Event) {
        match self.groups.iter_mut().find(|(t, _)| t == tag) {
            Some((_, events)) => events.push(event),
            None => self.groups.push((tag.clone(), vec![event])),
        }
    }

    /// The group for `tag` text, creating it (and its `Bytes`) on first use.
    fn tag_for(&mut self, tag: &str) -> Tag {
        match self
            .groups
            .iter()
            .find(|(t, _)| t.as_ref() == tag.as_bytes())
        {
            Some((t, _)) => t.clone(),
            None => {
                let t = Bytes::copy_from_slice(tag.as_bytes());
                self.groups.push((t.clone(), Vec::new()));
                t
            }
        }
    }

    fn push_input(&mut self, event: Event) {
        self.groups[0].1.push(event);
    }

    fn extend_input(&mut self, events: Vec<Event>) {
        append(&mut self.groups[0].1, events);
    }

    fn merge(&mut self, other: Routed) {
        for (tag, events) in other.groups {
            match self.groups.iter_mut().find(|(t, _)| *t == tag) {
                Some((_, mine)) => append(mine, events),
                None => self.groups.push((tag, events)),
            }
        }
    }

    fn into_batches(self) -> Vec<Batch> {
        self.groups
            .into_iter()
            .filter(|(_, e)| !e.is_empty())
            .map(|(tag, events)| Batch { tag, events })
            .collect()
    }
}

/// `events` added after `mine`'s, moving the vector itself when `mine` is empty.
fn append(mine: &mut Vec<Event>, events: Vec<Event>) {
    if mine.is_empty() {
        *mine = events;
    } else {
        mine.extend(events);
    }
}

/// The checked outcomes of one call, and the fuel it used (metering engine only).
struct Called {
    outcomes: Vec<Outcome>,
    fuel: Option<u64>,
}

/// The narrowing down of one faulted call.
struct Split {
    /// Split calls it may still make.
    calls_left: usize,
    /// Faults counted in the circuit breaker (faulting events, or parts given up on).
    faults: usize,
}

/// True when a call of more than one event returned the same `error` for every event: the
/// batch as a whole was refused (an SDK `batch` filter returning `Err`), which one event can
/// cause.
fn errs_for_every_event(outcomes: &[Outcome]) -> bool {
    let Some(Outcome::Error(first)) = outcomes.first() else {
        return false;
    };
    outcomes.len() > 1
        && outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Error(m) if m == first))
}

/// A call's outcomes, applied.
struct Applied {
    routed: Routed,
    counts: OutcomeCounts,
    /// `error` outcomes passed on unchanged (`fail_open`).
    errors_passed: u64,
    /// Events passed on.
    sent: u64,
    reports: Vec<EventReport>,
}

/// Check a call's `outcomes` against its `events` (same length, checked by the instance)
/// before anything is applied: expansion past [`MAX_EXPANSION`]×, a new tag that is empty or
/// longer than [`MAX_TAG_BYTES`], or a new body that is not one msgpack map is a fault, and
/// the caller then applies the policy to the original events.
fn check_outcomes(
    input_tag_text: &str,
    events: &[Event],
    outcomes: &[Outcome],
    on_error: OnError,
) -> Result<(), Fault> {
    let input_bytes: usize = events.iter().map(|e| e.body.len()).sum();
    let max_events = events.len() * MAX_EXPANSION;
    let max_bytes = (input_bytes * MAX_EXPANSION).max(MIN_EXPANSION_BYTES);
    let mut produced_events = 0usize;
    let mut new_bytes = 0usize;
    for (index, outcome) in outcomes.iter().enumerate() {
        let patches = match outcome {
            Outcome::Keep => {
                produced_events += 1;
                continue;
            }
            Outcome::Drop => continue,
            Outcome::Error(_) => {
                produced_events += usize::from(on_error == OnError::FailOpen);
                continue;
            }
            Outcome::Replace(patch) => std::slice::from_ref(patch),
            Outcome::Expand(patches) => patches.as_slice(),
        };
        for patch in patches {
            produced_events += 1;
            if produced_events > max_events {
                return Err(Fault::Expansion {
                    what: "events",
                    input: events.len(),
                    produced: produced_events,
                    limit: max_events,
                });
            }
            if let Some(body) = &patch.body {
                new_bytes += body.len();
                if new_bytes > max_bytes {
                    return Err(Fault::Expansion {
                        what: "body bytes",
                        input: input_bytes,
                        produced: new_bytes,
                        limit: max_bytes,
                    });
                }
            }
            if let Some(t) = &patch.tag
                && t != input_tag_text
                && (t.is_empty() || t.len() > MAX_TAG_BYTES)
            {
                return Err(Fault::InvalidTag {
                    event: index,
                    max: MAX_TAG_BYTES,
                });
            }
            if let Some(body) = &patch.body {
                check_map(body).map_err(|error| Fault::InvalidBody {
                    event: index,
                    error,
                })?;
            }
        }
    }
    Ok(())
}

/// Apply `outcomes`, already checked by [`check_outcomes`], to `events`: kept events move on
/// as they are (a call whose outcomes are all `keep` passes its events on without touching
/// them one by one).
fn apply_outcomes(
    input_tag: &Tag,
    input_tag_text: &str,
    events: Vec<Event>,
    outcomes: Vec<Outcome>,
    on_error: OnError,
    first_index: usize,
    traced: bool,
) -> Applied {
    let call_events = events.len();
    let mut applied = Applied {
        routed: Routed::new(input_tag.clone()),
        counts: OutcomeCounts::default(),
        errors_passed: 0,
        sent: 0,
        reports: Vec::new(),
    };
    if !traced && outcomes.iter().all(|o| matches!(o, Outcome::Keep)) {
        applied.counts.kept = call_events as u64;
        applied.sent = call_events as u64;
        applied.routed.extend_input(events);
        return applied;
    }
    applied.routed.groups[0].1.reserve(call_events);
    for (i, (event, outcome)) in events.into_iter().zip(outcomes).enumerate() {
        let (name, patches, message) = match outcome {
            Outcome::Keep => {
                applied.counts.kept += 1;
                ("keep", None, None)
            }
            Outcome::Drop => {
                applied.counts.dropped += 1;
                ("drop", Some(Vec::new()), None)
            }
            Outcome::Replace(patch) => {
                applied.counts.replaced += 1;
                ("replace", Some(vec![patch]), None)
            }
            Outcome::Expand(patches) => {
                applied.counts.expanded += patches.len() as u64;
                ("expand", Some(patches), None)
            }
            Outcome::Error(message) => {
                applied.counts.errors += 1;
                let passed = on_error == OnError::FailOpen;
                applied.errors_passed += u64::from(passed);
                (
                    "error",
                    if passed { None } else { Some(Vec::new()) },
                    Some(message),
                )
            }
        };
        let mut outputs = Vec::new();
        match patches {
            None => {
                applied.sent += 1;
                if traced {
                    outputs.push((input_tag.clone(), event.clone()));
                }
                applied.routed.push_input(event);
            }
            Some(patches) => {
                for patch in patches {
                    let (tag, new_event) =
                        patched(&mut applied.routed, input_tag_text, &event, patch);
                    applied.sent += 1;
                    if traced {
                        outputs.push((tag.clone(), new_event.clone()));
                    }
                    applied.routed.push(&tag, new_event);
                }
            }
        }
        if traced {
            applied.reports.push(EventReport {
                index: first_index + i,
                outcome: name,
                outputs,
                message,
                instructions: None,
                call_events,
            });
        }
    }
    applied
}

/// The event a checked patch makes of `event`, and its tag.
fn patched(
    routed: &mut Routed,
    input_tag_text: &str,
    event: &Event,
    patch: EventPatch,
) -> (Tag, Event) {
    let tag = match patch.tag {
        Some(t) if t != input_tag_text => routed.tag_for(&t),
        _ => routed.input_tag.clone(),
    };
    let body = match patch.body {
        None => event.body.clone(),
        Some(body) => Bytes::from(body),
    };
    (
        tag,
        Event {
            time_ns: patch.time_ns.unwrap_or(event.time_ns),
            body,
        },
    )
}
