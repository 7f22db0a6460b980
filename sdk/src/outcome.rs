//! [`Outcome`]: what becomes of one event, and [`Patch`]: a new or changed event.

use crate::record::Record;
use std::fmt::Display;

/// What becomes of one input event. A filter returns exactly one per event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Pass the event on unchanged (nothing is copied back to the router: the cheapest).
    Keep,
    /// Remove the event (the router counts it as dropped by the plugin).
    Drop,
    /// Pass the event on with these changes.
    Replace(Patch),
    /// Replace the event with zero or more events derived from it, in order.
    Expand(Vec<Patch>),
    /// The plugin could not process the event: the router applies the plugin's `on_error`
    /// policy to it and logs the message.
    Error(String),
}

impl Outcome {
    /// Replaces the event's body with `record`, edits applied; [`Outcome::Keep`] if the record
    /// was not edited (nothing to copy back), [`Outcome::Error`] if it cannot be encoded.
    pub fn replace(record: &Record<'_>) -> Outcome {
        if !record.is_modified() {
            return Outcome::Keep;
        }
        match record.to_msgpack() {
            Ok(body) => Outcome::Replace(Patch {
                body: Some(body),
                ..Patch::default()
            }),
            Err(error) => Outcome::Error(format!("cannot encode the edited record: {error}")),
        }
    }

    /// An [`Outcome::Error`] with `message`.
    pub fn error(message: impl Display) -> Outcome {
        Outcome::Error(message.to_string())
    }
}

impl From<Record<'_>> for Outcome {
    fn from(record: Record<'_>) -> Outcome {
        Outcome::replace(&record)
    }
}

impl From<Patch> for Outcome {
    fn from(patch: Patch) -> Outcome {
        Outcome::Replace(patch)
    }
}

/// A new or changed event; fields left `None` are inherited from the input event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patch {
    /// A new tag: the router routes the event again under it (a bounded number of times).
    pub tag: Option<String>,
    /// A new time, in nanoseconds since the Unix epoch.
    pub time_ns: Option<u64>,
    /// A new msgpack body (a map).
    pub body: Option<Vec<u8>>,
}

impl Patch {
    /// A patch that changes nothing (an unchanged copy, in an [`Outcome::Expand`]).
    pub fn unchanged() -> Patch {
        Patch::default()
    }

    /// A patch whose body is `record`, edits applied.
    pub fn from_record(record: &Record<'_>) -> Result<Patch, crate::DecodeError> {
        Ok(Patch {
            body: Some(record.to_msgpack()?),
            ..Patch::default()
        })
    }

    /// This patch with a new tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Patch {
        self.tag = Some(tag.into());
        self
    }

    /// This patch with a new time.
    pub fn with_time_ns(mut self, time_ns: u64) -> Patch {
        self.time_ns = Some(time_ns);
        self
    }

    /// This patch with a new body (msgpack map bytes).
    pub fn with_body(mut self, body: Vec<u8>) -> Patch {
        self.body = Some(body);
        self
    }
}

/// What a per-event filter function may return: an [`Outcome`], or a `Result` whose error
/// becomes [`Outcome::Error`] (so `?` works inside the function).
pub trait IntoOutcome {
    /// The outcome.
    fn into_outcome(self) -> Outcome;
}

impl IntoOutcome for Outcome {
    fn into_outcome(self) -> Outcome {
        self
    }
}

impl<E: Display> IntoOutcome for Result<Outcome, E> {
    fn into_outcome(self) -> Outcome {
        self.unwrap_or_else(|error| Outcome::Error(error.to_string()))
    }
}

/// What a per-batch filter function may return: one outcome per event, or a `Result` whose
/// error becomes [`Outcome::Error`] for every event of the batch.
pub trait IntoOutcomes {
    /// The outcomes, or the message for every event.
    fn into_outcomes(self) -> Result<Vec<Outcome>, String>;
}

impl IntoOutcomes for Vec<Outcome> {
    fn into_outcomes(self) -> Result<Vec<Outcome>, String> {
        Ok(self)
    }
}

impl<E: Display> IntoOutcomes for Result<Vec<Outcome>, E> {
    fn into_outcomes(self) -> Result<Vec<Outcome>, String> {
        self.map_err(|error| error.to_string())
    }
}
