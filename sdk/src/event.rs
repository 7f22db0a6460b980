//! [`Batch`] and [`Event`]: views of the columnar batch the router hands a plugin (`wit`
//! record `batch`). An event's body is a slice of the batch's one `bodies` buffer.

use crate::record::{AsPath, Record, lookup};
use crate::value::{Map, Value};
use std::borrow::Cow;

/// A batch whose columns do not line up (a router bug, reported per event).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// `time-ns` and `body-ends` differ in length.
    #[error("the batch has {times} times but {ends} body ends")]
    ColumnLengths {
        /// Length of `time-ns`.
        times: usize,
        /// Length of `body-ends`.
        ends: usize,
    },
    /// A body end is before the previous one or past the end of `bodies`.
    #[error("body end {end} of event {index} is out of order or past the {len} body bytes")]
    BodyRange {
        /// The event.
        index: usize,
        /// Its end offset.
        end: u32,
        /// The length of `bodies`.
        len: usize,
    },
}

/// One batch of events, all under one tag.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    tag: &'a str,
    time_ns: &'a [u64],
    body_ends: &'a [u32],
    bodies: &'a [u8],
}

impl<'a> Batch<'a> {
    /// A view of the batch columns, checked to line up: event `i` has time `time_ns[i]` and
    /// body `bodies[body_ends[i-1]..body_ends[i]]`.
    pub fn new(
        tag: &'a str,
        time_ns: &'a [u64],
        body_ends: &'a [u32],
        bodies: &'a [u8],
    ) -> Result<Self, BatchError> {
        if time_ns.len() != body_ends.len() {
            return Err(BatchError::ColumnLengths {
                times: time_ns.len(),
                ends: body_ends.len(),
            });
        }
        let mut previous = 0u32;
        for (index, &end) in body_ends.iter().enumerate() {
            if end < previous || end as usize > bodies.len() {
                return Err(BatchError::BodyRange {
                    index,
                    end,
                    len: bodies.len(),
                });
            }
            previous = end;
        }
        Ok(Batch {
            tag,
            time_ns,
            body_ends,
            bodies,
        })
    }

    /// The tag of every event in the batch.
    pub fn tag(&self) -> &'a str {
        self.tag
    }

    /// The number of events.
    pub fn len(&self) -> usize {
        self.time_ns.len()
    }

    /// Whether the batch has no events.
    pub fn is_empty(&self) -> bool {
        self.time_ns.is_empty()
    }

    /// Event `index`.
    pub fn event(&self, index: usize) -> Option<Event<'a>> {
        let end = *self.body_ends.get(index)? as usize;
        let start = if index == 0 {
            0
        } else {
            self.body_ends[index - 1] as usize
        };
        Some(Event {
            tag: self.tag,
            time_ns: self.time_ns[index],
            body: &self.bodies[start..end],
            index: index as u32,
        })
    }

    /// The events, in order.
    pub fn events(&self) -> impl ExactSizeIterator<Item = Event<'a>> + 'a {
        let batch = *self;
        (0..batch.len()).map(move |index| batch.event(index).expect("index is in range"))
    }
}

/// One event: tag, time and msgpack body, borrowed from its batch.
///
/// The getters read the body lazily: `get("log")` skips entries until it finds `log`, without
/// decoding anything else. To change the event, take its [`Event::record`], edit it and return
/// it as the outcome.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    tag: &'a str,
    time_ns: u64,
    body: &'a [u8],
    index: u32,
}

impl<'a> Event<'a> {
    /// An event outside a batch (for tests).
    pub fn new(tag: &'a str, time_ns: u64, body: &'a [u8]) -> Event<'a> {
        Event {
            tag,
            time_ns,
            body,
            index: 0,
        }
    }

    /// The event's tag.
    pub fn tag(&self) -> &'a str {
        self.tag
    }

    /// The event's time, in nanoseconds since the Unix epoch.
    pub fn time_ns(&self) -> u64 {
        self.time_ns
    }

    /// The event's position in its batch.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The msgpack body, as received.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The value at `path` (`"log"`, `"kubernetes.labels.app"` or `["a", "b.c"]`, see
    /// [`AsPath`]); `None` if absent or if the body is malformed before it.
    pub fn get(&self, path: impl AsPath) -> Option<Value<'a>> {
        lookup(self.body, &path)
    }

    /// The string at `path` as text, invalid UTF-8 replaced by U+FFFD (borrowed when valid).
    pub fn get_str(&self, path: impl AsPath) -> Option<Cow<'a, str>> {
        self.get(path)?.to_str_lossy()
    }

    /// The raw bytes of the string or binary at `path`.
    pub fn get_bytes(&self, path: impl AsPath) -> Option<&'a [u8]> {
        self.get(path)?.as_bytes()
    }

    /// The whole body as a map, checked to be well-formed (one full pass over it).
    pub fn map(&self) -> Result<Map<'a>, crate::DecodeError> {
        Map::from_msgpack(self.body)
    }

    /// The body as an editable [`Record`].
    pub fn record(&self) -> Result<Record<'a>, crate::DecodeError> {
        Record::new(self.body)
    }

    /// Deserializes the body into a serde type (through `rmp-serde`); borrowed `&str` fields
    /// point into the batch.
    pub fn deserialize<T: serde::Deserialize<'a>>(&self) -> Result<T, crate::Error> {
        Ok(rmp_serde::from_slice(self.body)?)
    }

    /// The body as JSON text (strings lossily decoded).
    pub fn to_json(&self) -> Result<String, crate::DecodeError> {
        let mut out = Vec::with_capacity(self.body.len() + 16);
        crate::json::write_record_json(&mut out, self.body)?;
        Ok(String::from_utf8(out).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json_to_msgpack;
    use serde_json::json;

    #[test]
    fn events_slice_the_shared_body_buffer() {
        let first = json_to_msgpack(&json!({"log": "one"}));
        let second = json_to_msgpack(&json!({"log": "two", "k": {"app": "web"}}));
        let bodies = [first.clone(), second.clone()].concat();
        let ends = [first.len() as u32, bodies.len() as u32];
        let batch = Batch::new("app", &[10, 20], &ends, &bodies).unwrap();
        let events: Vec<_> = batch.events().collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].body(), &first[..]);
        assert_eq!(events[1].get_str("log").as_deref(), Some("two"));
        assert_eq!(events[1].get_str("k.app").as_deref(), Some("web"));
        assert_eq!(events[1].time_ns(), 20);
        assert_eq!(events[1].index(), 1);
        assert_eq!(events[1].tag(), "app");
        assert_eq!(events[0].to_json().unwrap(), r#"{"log":"one"}"#);
    }

    #[test]
    fn misaligned_columns_are_rejected() {
        assert_eq!(
            Batch::new("t", &[1, 2], &[1], &[0x80]).unwrap_err(),
            BatchError::ColumnLengths { times: 2, ends: 1 }
        );
        assert_eq!(
            Batch::new("t", &[1], &[2], &[0x80]).unwrap_err(),
            BatchError::BodyRange {
                index: 0,
                end: 2,
                len: 1
            }
        );
        assert!(Batch::new("t", &[1, 2], &[1, 0], &[0x80]).is_err());
    }

    #[test]
    fn deserializes_borrowing_from_the_batch() {
        #[derive(serde::Deserialize)]
        struct Line<'a> {
            log: &'a str,
        }
        let body = json_to_msgpack(&json!({"log": "borrowed", "other": 1}));
        let event = Event::new("t", 0, &body);
        let line: Line<'_> = event.deserialize().unwrap();
        assert_eq!(line.log, "borrowed");
    }
}
