//! The unit of data that moves through the router: batches of events that share a tag.
//!
//! An event's body is the record's msgpack map exactly as the sender put it on the wire. It is
//! decoded only where something needs a field or JSON; pass-through never re-encodes it.
//! Forward-protocol requests carry one tag each, so the tag lives on the [`Batch`], and routing
//! (tag matching, filter chains, fan-out) is decided once per batch, not once per event.

pub mod accessor;
pub mod json;
pub mod json_msgpack;
pub mod record;

use bytes::Bytes;

/// A tag as received: raw bytes (senders may put invalid UTF-8 on the wire).
pub type Tag = Bytes;

/// One log event: its time and its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The record: one msgpack map, as received.
    pub body: Bytes,
}

/// Events that share one tag, in the order they were received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The tag every event of the batch carries.
    pub tag: Tag,
    /// The events, in arrival order.
    pub events: Vec<Event>,
}

impl Batch {
    /// A batch of `events` under `tag`.
    pub fn new(tag: impl Into<Tag>, events: Vec<Event>) -> Self {
        Batch {
            tag: tag.into(),
            events,
        }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Bytes of record bodies plus the tag: what the batch costs a buffer.
    pub fn byte_size(&self) -> usize {
        self.tag.len() + self.events.iter().map(|e| e.body.len() + 8).sum::<usize>()
    }

    /// The tag as text, with invalid UTF-8 replaced.
    pub fn tag_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.tag)
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
