//! Run plugin logic natively, under `cargo test`: build events from JSON, run a filter
//! function through the same `init` + batch loop the component uses, and read back outcomes,
//! log lines and counters. On native targets the `log` and `metrics` imports write into
//! per-thread memory that this module reads (each test runs on its own thread).
//!
//! ```
//! use wasm_router_sdk::testing::{self, TestEvent};
//! use wasm_router_sdk::{Ctx, Event, NoConfig, Outcome};
//! use serde_json::json;
//!
//! fn drop_debug(_: &NoConfig, event: &Event<'_>, ctx: &mut Ctx) -> Outcome {
//!     if event.get_str("level").as_deref() == Some("debug") {
//!         ctx.count("dropped_debug", 1);
//!         return Outcome::Drop;
//!     }
//!     Outcome::Keep
//! }
//!
//! let run = testing::run_filter(drop_debug, "{}", &[
//!     TestEvent::json(json!({"level": "debug", "log": "noise"})),
//!     TestEvent::json(json!({"level": "info", "log": "signal"})),
//! ]).unwrap();
//! assert_eq!(run.outcomes(), [Outcome::Drop, Outcome::Keep]);
//! assert_eq!(run.records(), [json!({"level": "info", "log": "signal"})]);
//! assert_eq!(testing::counter("dropped_debug"), 1);
//! ```

use crate::bindings::filter::wasm_router::plugin::types as wit;
use crate::config::{ConfigError, PluginConfig};
use crate::context::Ctx;
use crate::event::{Batch, Event};
use crate::host::imports::RECORDED;
use crate::log::Level;
use crate::outcome::{IntoOutcome, IntoOutcomes, Outcome, Patch};
use crate::runtime::{self, ConfigSlot};

/// One input event for a test.
#[derive(Debug, Clone, PartialEq)]
pub struct TestEvent {
    /// Its tag (`test` unless set).
    pub tag: String,
    /// Its time in nanoseconds (0 unless set).
    pub time_ns: u64,
    /// Its msgpack body.
    pub body: Vec<u8>,
}

impl TestEvent {
    /// An event whose body is `record` (a JSON object), tag `test`, time 0.
    pub fn json(record: serde_json::Value) -> TestEvent {
        TestEvent {
            tag: "test".into(),
            time_ns: 0,
            body: crate::json::json_to_msgpack(&record),
        }
    }

    /// An event whose body is the JSON object `text`, keys kept in the order written.
    pub fn json_text(text: &str) -> Result<TestEvent, serde_json::Error> {
        let body = crate::json::json_text_to_msgpack(text.as_bytes())?;
        if body
            .first()
            .is_none_or(|&marker| !matches!(marker, 0x80..=0x8f | 0xde | 0xdf))
        {
            return Err(serde::de::Error::custom(format!(
                "a record must be a JSON object, not {text}"
            )));
        }
        Ok(TestEvent {
            tag: "test".into(),
            time_ns: 0,
            body,
        })
    }

    /// An event with a ready-made msgpack body (to test malformed or non-UTF-8 input).
    pub fn msgpack(body: Vec<u8>) -> TestEvent {
        TestEvent {
            tag: "test".into(),
            time_ns: 0,
            body,
        }
    }

    /// This event with another tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> TestEvent {
        self.tag = tag.into();
        self
    }

    /// This event with another time.
    pub fn with_time_ns(mut self, time_ns: u64) -> TestEvent {
        self.time_ns = time_ns;
        self
    }

    /// A borrowed [`Event`] of this one.
    pub fn event(&self) -> Event<'_> {
        Event::new(&self.tag, self.time_ns, &self.body)
    }
}

/// Events from JSON Lines (one object per line, key order kept; blank lines skipped).
pub fn events_from_jsonl(text: &str) -> Result<Vec<TestEvent>, serde_json::Error> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(TestEvent::json_text)
        .collect()
}

/// Columns of one batch, owned (all events take the first event's tag).
#[derive(Debug, Clone)]
pub struct TestBatch {
    batch: wit::Batch,
}

impl TestBatch {
    /// A batch of `events`, under the tag of the first (`test` if there is none).
    pub fn new(events: &[TestEvent]) -> TestBatch {
        let mut batch = wit::Batch {
            tag: events
                .first()
                .map_or_else(|| "test".into(), |event| event.tag.clone()),
            time_ns: Vec::with_capacity(events.len()),
            body_ends: Vec::with_capacity(events.len()),
            bodies: Vec::new(),
        };
        for event in events {
            batch.time_ns.push(event.time_ns);
            batch.bodies.extend_from_slice(&event.body);
            batch.body_ends.push(batch.bodies.len() as u32);
        }
        TestBatch { batch }
    }

    /// The batch view a plugin sees.
    pub fn view(&self) -> Batch<'_> {
        Batch::new(
            &self.batch.tag,
            &self.batch.time_ns,
            &self.batch.body_ends,
            &self.batch.bodies,
        )
        .expect("a TestBatch is well-formed")
    }
}

/// Groups consecutive events with the same tag, as the router batches them.
fn batches(events: &[TestEvent]) -> Vec<TestBatch> {
    events
        .chunk_by(|a, b| a.tag == b.tag)
        .map(TestBatch::new)
        .collect()
}

fn outcome_from_wit(outcome: wit::Outcome) -> Outcome {
    let patch = |p: wit::EventPatch| Patch {
        tag: p.tag,
        time_ns: p.time_ns,
        body: p.body,
    };
    match outcome {
        wit::Outcome::Keep => Outcome::Keep,
        wit::Outcome::Drop => Outcome::Drop,
        wit::Outcome::Replace(p) => Outcome::Replace(patch(p)),
        wit::Outcome::Expand(patches) => Outcome::Expand(patches.into_iter().map(patch).collect()),
        wit::Outcome::Error(message) => Outcome::Error(message),
    }
}

/// The outcomes of a test run, next to the events that went in.
#[derive(Debug, Clone)]
pub struct FilterRun {
    inputs: Vec<TestEvent>,
    outcomes: Vec<Outcome>,
}

impl FilterRun {
    /// One outcome per input event.
    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    /// The events that come out, in order (kept, replaced, expanded; not dropped or errored),
    /// with their patches applied.
    pub fn events(&self) -> Vec<TestEvent> {
        let mut out = Vec::new();
        let apply = |input: &TestEvent, patch: &Patch| TestEvent {
            tag: patch.tag.clone().unwrap_or_else(|| input.tag.clone()),
            time_ns: patch.time_ns.unwrap_or(input.time_ns),
            body: patch.body.clone().unwrap_or_else(|| input.body.clone()),
        };
        for (input, outcome) in self.inputs.iter().zip(&self.outcomes) {
            match outcome {
                Outcome::Keep => out.push(input.clone()),
                Outcome::Replace(patch) => out.push(apply(input, patch)),
                Outcome::Expand(patches) => {
                    out.extend(patches.iter().map(|patch| apply(input, patch)))
                }
                Outcome::Drop | Outcome::Error(_) => {}
            }
        }
        out
    }

    /// The records that come out, as JSON (see [`FilterRun::events`]). A body that is not a
    /// msgpack map shows as a JSON string describing the problem.
    pub fn records(&self) -> Vec<serde_json::Value> {
        self.events()
            .iter()
            .map(|event| {
                let mut text = Vec::new();
                match crate::json::write_record_json(&mut text, &event.body) {
                    Ok(()) => serde_json::from_slice(&text).unwrap_or(serde_json::Value::Null),
                    Err(error) => serde_json::Value::String(format!("invalid body: {error}")),
                }
            })
            .collect()
    }
}

fn run(
    config_json: &str,
    events: &[TestEvent],
    process: impl Fn(&wit::Batch) -> Vec<wit::Outcome>,
) -> FilterRun {
    let mut outcomes = Vec::with_capacity(events.len());
    for batch in batches(events) {
        let batch_outcomes = process(&batch.batch);
        assert_eq!(
            batch_outcomes.len(),
            batch.batch.time_ns.len(),
            "the filter returned a wrong number of outcomes (config {config_json})"
        );
        outcomes.extend(batch_outcomes.into_iter().map(outcome_from_wit));
    }
    FilterRun {
        inputs: events.to_vec(),
        outcomes,
    }
}

/// Runs a per-event filter function (the one under `#[filter]`) the way the component does:
/// `init` with `config_json`, then `process` on each run of same-tag events.
pub fn run_filter<C, R, F>(
    filter: F,
    config_json: &str,
    events: &[TestEvent],
) -> Result<FilterRun, Vec<ConfigError>>
where
    C: PluginConfig,
    R: IntoOutcome,
    F: Fn(&C, &Event<'_>, &mut Ctx) -> R,
{
    let slot = ConfigSlot::<C>::new();
    init(&slot, config_json)?;
    Ok(run(config_json, events, |batch| {
        runtime::process_each(&slot, batch, &filter)
    }))
}

/// Runs a per-batch filter function (under `#[filter(batch)]`), like [`run_filter`].
pub fn run_batch_filter<C, R, F>(
    filter: F,
    config_json: &str,
    events: &[TestEvent],
) -> Result<FilterRun, Vec<ConfigError>>
where
    C: PluginConfig,
    R: IntoOutcomes,
    F: Fn(&C, &Batch<'_>, &mut Ctx) -> R,
{
    let slot = ConfigSlot::<C>::new();
    init(&slot, config_json)?;
    Ok(run(config_json, events, |batch| {
        runtime::process_batch(&slot, batch, &filter)
    }))
}

fn init<C: PluginConfig>(slot: &ConfigSlot<C>, config_json: &str) -> Result<(), Vec<ConfigError>> {
    runtime::init(slot, config_json).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| ConfigError {
                path: e.path,
                message: e.message,
            })
            .collect()
    })
}

/// Takes the log lines written on this thread so far.
pub fn take_logs() -> Vec<(Level, String)> {
    RECORDED.with(|recorded| recorded.borrow_mut().logs.drain(..).collect())
}

/// The total of counter `name` on this thread, over all label sets.
pub fn counter(name: &str) -> u64 {
    RECORDED.with(|recorded| {
        recorded
            .borrow()
            .counters
            .iter()
            .filter(|((series, _), _)| series == name)
            .map(|(_, value)| *value)
            .sum()
    })
}

/// The last value of gauge `name` (without labels) on this thread.
pub fn gauge(name: &str) -> Option<f64> {
    RECORDED.with(|recorded| {
        recorded
            .borrow()
            .gauges
            .get(&(name.to_owned(), Vec::new()))
            .copied()
    })
}

/// Takes the per-event results reported on this thread so far
/// ([`crate::output::report_items`]).
pub fn take_item_results() -> Vec<crate::output::ItemResult> {
    RECORDED.with(|recorded| std::mem::take(&mut recorded.borrow_mut().items))
}

/// Forgets the log lines, metrics and per-event results recorded on this thread.
pub fn reset() {
    RECORDED.with(|recorded| *recorded.borrow_mut() = Default::default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NoConfig;
    use serde_json::json;

    fn tag_and_mark(_: &NoConfig, event: &Event<'_>, ctx: &mut Ctx) -> crate::Result<Outcome> {
        ctx.count("seen", 1);
        match event.get_str("action").as_deref() {
            Some("drop") => Ok(Outcome::Drop),
            Some("split") => Ok(Outcome::Expand(vec![
                Patch::unchanged(),
                Patch::unchanged().with_tag("copy"),
            ])),
            Some("fail") => Err(crate::Error::msg("asked to fail")),
            Some("mark") => {
                let mut record = event.record()?;
                record.set("marked", &true)?;
                Ok(record.into())
            }
            _ => Ok(Outcome::Keep),
        }
    }

    #[test]
    fn runs_every_outcome_kind_through_the_component_loop() {
        reset();
        let events = [
            TestEvent::json(json!({"action": "keep"})),
            TestEvent::json(json!({"action": "drop"})),
            TestEvent::json(json!({"action": "split"})).with_tag("other"),
            TestEvent::json(json!({"action": "fail"})),
            TestEvent::json(json!({"action": "mark"})),
        ];
        let run = run_filter(tag_and_mark, "", &events).unwrap();
        assert_eq!(run.outcomes()[0], Outcome::Keep);
        assert_eq!(run.outcomes()[1], Outcome::Drop);
        assert!(matches!(&run.outcomes()[2], Outcome::Expand(p) if p.len() == 2));
        assert_eq!(run.outcomes()[3], Outcome::Error("asked to fail".into()));
        assert_eq!(
            run.records(),
            [
                json!({"action": "keep"}),
                json!({"action": "split"}),
                json!({"action": "split"}),
                json!({"action": "mark", "marked": true}),
            ]
        );
        assert_eq!(run.events()[2].tag, "copy");
        assert_eq!(counter("seen"), 5);
    }

    #[test]
    fn config_errors_come_back_from_init() {
        #[derive(serde::Deserialize, schemars::JsonSchema)]
        #[allow(dead_code)]
        struct Needs {
            field: String,
        }
        fn keep(_: &Needs, _: &Event<'_>, _: &mut Ctx) -> Outcome {
            Outcome::Keep
        }
        let errors = run_filter(keep, r#"{"field": 1}"#, &[]).unwrap_err();
        assert_eq!(errors[0].path, "/field");
    }

    #[test]
    fn batch_filters_with_the_wrong_length_are_padded_with_errors() {
        reset();
        fn first_only(_: &NoConfig, _: &Batch<'_>, _: &mut Ctx) -> Vec<Outcome> {
            vec![Outcome::Keep]
        }
        let events = [TestEvent::json(json!({})), TestEvent::json(json!({}))];
        let run = run_batch_filter(first_only, "{}", &events).unwrap();
        assert_eq!(run.outcomes()[0], Outcome::Keep);
        assert!(
            matches!(&run.outcomes()[1], Outcome::Error(m) if m.contains("1 outcomes for 2 events"))
        );
        assert_eq!(take_logs().len(), 1);
    }

    #[test]
    fn jsonl_becomes_events() {
        let events = events_from_jsonl("{\"a\": 1}\n\n{\"b\": \"x\"}\n").unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].event().get_str("b").as_deref(), Some("x"));
        assert!(events_from_jsonl("not json").is_err());
        assert!(events_from_jsonl("[1, 2]").is_err());
        let ordered = TestEvent::json_text(r#"{"z": 1, "a": 2}"#).unwrap();
        assert_eq!(ordered.event().to_json().unwrap(), r#"{"z":1,"a":2}"#);
    }
}
