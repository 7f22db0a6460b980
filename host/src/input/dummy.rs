//! `type = "dummy"`: Fluent Bit's `in_dummy`. Generates a fixed record (`dummy`, a JSON
//! object; default `{"message":"dummy"}`) `rate` times a second, `copies` at a time, until
//! `samples` records were made (default: until shutdown). For trying a pipeline or an output
//! without a sender. A record waits (the input does not drop) while the pipeline's buffers are
//! full; one a buffer refuses is counted by the buffer.

use crate::event::{Batch, Event, now_ns};
use crate::ops::metrics::{Component, Metrics};
use crate::ops::shutdown::Shutdown;
use crate::pipeline::Pipeline;
use bytes::Bytes;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Fluent Bit's default record.
pub const DEFAULT_RECORD: &str = r#"{"message":"dummy"}"#;
/// Most records a second (`rate` × `copies`): a generator must not be able to flood the router.
pub const MAX_PER_SECOND: u64 = 1_000_000;

/// `type = "dummy"` under `[[inputs]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DummyInputConfig {
    /// A name for metrics and logs; default `dummy`.
    #[serde(default)]
    pub name: Option<String>,
    /// The tag of every record (default `dummy`; Fluent Bit: the instance name, `dummy.0`).
    #[serde(default)]
    pub tag: Option<String>,
    /// The record, a JSON object (default `{"message":"dummy"}`).
    #[serde(default)]
    pub dummy: Option<String>,
    /// Ticks a second (default 1).
    #[serde(default)]
    pub rate: Option<u64>,
    /// Records made at each tick (default 1).
    #[serde(default)]
    pub copies: Option<u64>,
    /// Stop after this many records (default: never).
    #[serde(default)]
    pub samples: Option<u64>,
}

impl DummyInputConfig {
    /// Check the keys, adding one problem per mistake, each starting with `key` (`inputs[0]`).
    pub fn validate(&self, key: &str, problems: &mut Vec<String>) {
        if let Err(e) = self.record() {
            problems.push(format!("{key}.dummy: {e}"));
        }
        if self.rate == Some(0) {
            problems.push(format!("{key}.rate must be at least 1, e.g. 1"));
        }
        if self.copies == Some(0) {
            problems.push(format!("{key}.copies must be at least 1, e.g. 1"));
        }
        let (rate, copies) = (self.rate.unwrap_or(1), self.copies.unwrap_or(1));
        if rate.saturating_mul(copies) > MAX_PER_SECOND {
            problems.push(format!(
                "{key}: rate × copies = {} records a second is more than {MAX_PER_SECOND}; lower rate or copies",
                rate.saturating_mul(copies)
            ));
        }
    }

    /// The record's msgpack body.
    pub fn record(&self) -> Result<Vec<u8>, String> {
        let text = self.dummy.as_deref().unwrap_or(DEFAULT_RECORD);
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(map)) => {
                Ok(rmp_serde::to_vec_named(&map).expect("a JSON map always encodes"))
            }
            Ok(_) => Err(format!(
                "{text:?} is not a JSON object; e.g. {DEFAULT_RECORD:?}"
            )),
            Err(e) => Err(format!(
                "{text:?} is not JSON ({e}); e.g. {DEFAULT_RECORD:?}"
            )),
        }
    }
}

/// A started dummy input.
pub struct DummyInput {
    component: Component,
    metrics: Arc<Metrics>,
    tag: Bytes,
    body: Bytes,
    every: Duration,
    copies: u64,
    samples: Option<u64>,
}

impl DummyInput {
    /// The generator of `config` (validated before).
    pub fn new(config: &DummyInputConfig, metrics: Arc<Metrics>) -> Self {
        let rate = config.rate.unwrap_or(1).max(1);
        DummyInput {
            component: Component::input(config.name.as_deref().unwrap_or("dummy")),
            metrics,
            tag: Bytes::from(config.tag.clone().unwrap_or_else(|| "dummy".to_string())),
            body: Bytes::from(config.record().expect("validated")),
            every: Duration::from_secs(1) / rate as u32,
            copies: config.copies.unwrap_or(1).max(1),
            samples: config.samples,
        }
    }

    /// Make records until `samples` or `shutdown`.
    pub async fn run(self, pipeline: Arc<Pipeline>, mut shutdown: Shutdown) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut made = 0u64;
        loop {
            let left = self.samples.map_or(self.copies, |s| s.saturating_sub(made));
            if left == 0 {
                return;
            }
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait() => return,
            }
            let n = left.min(self.copies);
            let time_ns = now_ns();
            let events: Vec<Event> = (0..n)
                .map(|_| Event {
                    time_ns,
                    body: self.body.clone(),
                })
                .collect();
            self.metrics
                .received(&self.component, n, n * self.body.len() as u64);
            if let Err(e) = pipeline
                .dispatch(Batch::new(self.tag.clone(), events))
                .await
            {
                tracing::warn!(input = %self.component.id, error = %e, "a buffer refused records of this input");
                self.metrics.error(&self.component, "buffer_refused");
            }
            made += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> DummyInputConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn the_record_is_a_json_object_and_mistakes_name_the_key() {
        let c = parse("dummy = '{\"data\":\"100 0.5 true This is Demo\"}'\n");
        let record: serde_json::Value = rmp_serde::from_slice(&c.record().unwrap()).unwrap();
        assert_eq!(
            record,
            serde_json::json!({"data": "100 0.5 true This is Demo"})
        );
        let mut problems = Vec::new();
        parse("dummy = '[1]'\nrate = 0\n").validate("inputs[2]", &mut problems);
        parse("copies = 2000000\n").validate("inputs[2]", &mut problems);
        let text = problems.join("\n");
        for needle in [
            "inputs[2].dummy: \"[1]\" is not a JSON object",
            "inputs[2].rate must be at least 1",
            "inputs[2]: rate × copies = 2000000 records a second",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }
}
