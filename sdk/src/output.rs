//! Output plugins: turn batches into HTTP [`Request`]s that the router sends, and classify
//! each [`Response`] into a [`Delivery`]. The router owns connections, TLS, timeouts,
//! compression, retries and secrets: a plugin only describes requests.
//!
//! ```
//! use wasm_router_sdk::output::{Delivery, JsonArrayBuilder, Output, Request, Response};
//! use wasm_router_sdk::{Batch, Error};
//!
//! /// The operator's config.
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Intake {
//!     /// Where to POST.
//!     url: String,
//! }
//!
//! impl Output for Intake {
//!     fn encode(&self, batch: &Batch<'_>) -> Result<Vec<Request>, Error> {
//!         let mut body = JsonArrayBuilder::new(5 << 20, 1000);
//!         for event in batch.events() {
//!             body.push_record(event.index(), event.body())?;
//!         }
//!         Ok(body
//!             .finish()
//!             .into_iter()
//!             .map(|chunk| {
//!                 Request::post(&self.url)
//!                     .header("content-type", "application/json")
//!                     .secret_header("api-key", "api_key", "")
//!                     .gzip()
//!                     .json_chunk(chunk)
//!             })
//!             .collect())
//!     }
//!
//!     fn on_response(&self, response: &Response<'_>) -> Delivery {
//!         response.classify()
//!     }
//! }
//! ```

use crate::config::PluginConfig;
use crate::event::Batch;
use crate::msgpack::DecodeError;
use std::sync::atomic::{AtomicU32, Ordering};

/// An output plugin: its config type encodes batches and classifies responses.
pub trait Output: PluginConfig {
    /// Encodes one batch as one or more requests (vendor format and size limits). Every event
    /// should be carried by exactly one request ([`Request::events`]).
    fn encode(&self, batch: &Batch<'_>) -> Result<Vec<Request>, crate::Error>;

    /// Classifies the response to a request. The default is [`Response::classify`].
    fn on_response(&self, response: &Response<'_>) -> Delivery {
        response.classify()
    }
}

/// HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
}

/// A header whose value is a secret the router injects (the secret never enters the plugin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHeader {
    /// Header name, e.g. `DD-API-KEY`.
    pub header: String,
    /// The secret's name as the operator configures it (`secrets = { api_key = … }`).
    pub secret: String,
    /// Text put before the secret value, e.g. `Bearer `.
    pub prefix: String,
}

static NEXT_REQUEST_ID: AtomicU32 = AtomicU32::new(1);

/// One request for the router to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The plugin's id for this request (unique within the instance); the response carries it.
    pub id: u32,
    /// HTTP method.
    pub method: Method,
    /// Full URL; it must start with one of the operator's `allow_hosts`.
    pub url: String,
    /// Plain headers.
    pub headers: Vec<(String, String)>,
    /// Headers the router fills with secrets.
    pub secret_headers: Vec<SecretHeader>,
    /// The body, uncompressed.
    pub body: Vec<u8>,
    /// Whether the router gzips the body (and sets `Content-Encoding: gzip`).
    pub gzip: bool,
    /// Indexes (into the batch) of the events this request carries.
    pub events: Vec<u32>,
}

impl Request {
    /// A request with a fresh id.
    pub fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            id: NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed),
            method,
            url: url.into(),
            headers: Vec::new(),
            secret_headers: Vec::new(),
            body: Vec::new(),
            gzip: false,
            events: Vec::new(),
        }
    }

    /// A POST request.
    pub fn post(url: impl Into<String>) -> Request {
        Request::new(Method::Post, url)
    }

    /// A PUT request.
    pub fn put(url: impl Into<String>) -> Request {
        Request::new(Method::Put, url)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds a header that the router fills with the operator's secret `secret` (after
    /// `prefix`, e.g. `"Bearer "`).
    pub fn secret_header(
        mut self,
        header: impl Into<String>,
        secret: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Request {
        self.secret_headers.push(SecretHeader {
            header: header.into(),
            secret: secret.into(),
            prefix: prefix.into(),
        });
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Vec<u8>) -> Request {
        self.body = body;
        self
    }

    /// Asks the router to gzip the body.
    pub fn gzip(mut self) -> Request {
        self.gzip = true;
        self
    }

    /// Sets the events this request carries.
    pub fn events(mut self, events: impl IntoIterator<Item = u32>) -> Request {
        self.events = events.into_iter().collect();
        self
    }

    /// Sets body and events from a [`JsonChunk`].
    pub fn json_chunk(mut self, chunk: JsonChunk) -> Request {
        self.body = chunk.body;
        self.events = chunk.events;
        self
    }
}

/// The destination's answer to one request.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    /// The request's id.
    pub id: u32,
    /// HTTP status; 0 when the request failed before a response.
    pub status: u16,
    /// Response headers.
    pub headers: &'a [(String, String)],
    /// The response body (truncated by the router to a bounded size).
    pub body: &'a [u8],
    /// Why the request failed without a response (connection refused, timeout, …).
    pub transport_error: Option<&'a str>,
}

impl Response<'_> {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// `Retry-After` (in seconds) as milliseconds; HTTP-date values are ignored.
    pub fn retry_after_ms(&self) -> Option<u32> {
        let seconds: u32 = self.header("retry-after")?.trim().parse().ok()?;
        Some(seconds.saturating_mul(1000))
    }

    /// The body as text (lossy), cut to `max` bytes.
    pub fn body_text(&self, max: usize) -> String {
        String::from_utf8_lossy(&self.body[..self.body.len().min(max)]).into_owned()
    }

    /// The usual classification: 2xx ok; 408, 429 and 5xx retry (after `Retry-After` if
    /// given); 413 split; any other status permanent failure (with the status and the start of
    /// the body); a transport error retry.
    pub fn classify(&self) -> Delivery {
        if self.transport_error.is_some() || self.status == 0 {
            return Delivery::Retry(None);
        }
        match self.status {
            200..=299 => Delivery::Ok,
            413 => Delivery::SplitAndRetry,
            408 | 429 | 500..=599 => Delivery::Retry(self.retry_after_ms()),
            status => Delivery::FailPermanent(format!("HTTP {status}: {}", self.body_text(256))),
        }
    }
}

/// What the router should do after a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered.
    Ok,
    /// Send the same request again later, optionally not before this many milliseconds.
    Retry(Option<u32>),
    /// The destination will never accept these events (counted as dropped with this reason).
    FailPermanent(String),
    /// Too large: the router splits the request's events in two and encodes each half.
    SplitAndRetry,
}

/// What became of one event of a request, for destinations that accept or refuse each event
/// on its own (a bulk API's per-item results). See [`report_items`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// The destination has the event (or already had it).
    Delivered,
    /// Send the event again later: the router encodes the events to retry into new requests.
    Retry,
    /// Never send it again: counted and dead-lettered under `reason`.
    Fail {
        /// A short reason for metrics and dead letters (e.g. `mapper_parsing_exception`); the
        /// router keeps ASCII letters, digits and `_`, lowercased, at most 64.
        reason: String,
        /// What the destination said about the event.
        detail: String,
    },
}

/// The result for one event of the request being classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemResult {
    /// Where the event is in the request's [`Request::events`] (0 for the first): the position
    /// of its item in a bulk answer.
    pub position: u32,
    /// What became of it.
    pub outcome: ItemOutcome,
}

/// Reports per-event results of the request being classified; call it from
/// [`Output::on_response`]. The router applies each result to its event, and the
/// [`Delivery`] that `on_response` returns to the request's events left unreported (with a
/// `Retry` or `SplitAndRetry`, those are encoded again into new requests: the request itself is
/// never sent twice once some of its events are reported). The first result for a position
/// counts; positions past the request's events are ignored.
///
/// A plugin that calls this imports `delivery-items` from the router: routers before that
/// import refuse to load it (a plugin that never calls it does not import it).
pub fn report_items(results: Vec<ItemResult>) {
    if !results.is_empty() {
        crate::host::report_items(results);
    }
}

/// A JSON array body and the events it carries, made by [`JsonArrayBuilder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonChunk {
    /// `[ … ]`.
    pub body: Vec<u8>,
    /// The batch indexes of its elements.
    pub events: Vec<u32>,
}

/// One element was larger than a whole chunk may be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {event} encodes to {bytes} bytes, over the {limit}-byte request limit")]
pub struct TooLarge {
    /// Its batch index.
    pub event: u32,
    /// Its encoded size.
    pub bytes: usize,
    /// The chunk limit.
    pub limit: usize,
}

/// Builds JSON array bodies (`[e1,e2,…]`), starting a new one when the next element would
/// take a body over `max_body_bytes` or `max_events` elements: the vendor limits.
#[derive(Debug)]
pub struct JsonArrayBuilder {
    max_body_bytes: usize,
    max_events: usize,
    current: Vec<u8>,
    events: Vec<u32>,
    done: Vec<JsonChunk>,
}

impl JsonArrayBuilder {
    /// A builder for bodies of at most `max_body_bytes` bytes and `max_events` elements.
    pub fn new(max_body_bytes: usize, max_events: usize) -> JsonArrayBuilder {
        JsonArrayBuilder {
            max_body_bytes: max_body_bytes.max(3),
            max_events: max_events.max(1),
            current: Vec::new(),
            events: Vec::new(),
            done: Vec::new(),
        }
    }

    /// Adds one element, written by `write` (valid JSON, no trailing comma), for event
    /// `event`. An element that cannot fit even alone is left out and reported.
    pub fn push_with(
        &mut self,
        event: u32,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), TooLarge> {
        let mark = self.current.len();
        self.current
            .push(if self.events.is_empty() { b'[' } else { b',' });
        write(&mut self.current);
        let element_len = self.current.len() - mark - 1;
        let fits = self.current.len() < self.max_body_bytes && self.events.len() < self.max_events;
        if fits {
            self.events.push(event);
            return Ok(());
        }
        if element_len + 2 > self.max_body_bytes {
            self.current.truncate(mark);
            return Err(TooLarge {
                event,
                bytes: element_len,
                limit: self.max_body_bytes,
            });
        }
        // Move the element into a new chunk.
        let element = self.current.split_off(mark + 1);
        self.current.truncate(mark);
        self.close_chunk();
        self.current.push(b'[');
        self.current.extend_from_slice(&element);
        self.events.push(event);
        Ok(())
    }

    /// Adds an already-encoded JSON element.
    pub fn push_json(&mut self, event: u32, json: &[u8]) -> Result<(), TooLarge> {
        self.push_with(event, |out| out.extend_from_slice(json))
    }

    /// Adds an event body (a msgpack map) as a JSON object.
    pub fn push_record(&mut self, event: u32, body: &[u8]) -> Result<(), crate::Error> {
        crate::Map::from_msgpack(body)
            .map_err(|error: DecodeError| crate::Error::msg(format!("event {event}: {error}")))?;
        self.push_with(event, |out| {
            let _ = crate::json::write_record_json(out, body);
        })?;
        Ok(())
    }

    fn close_chunk(&mut self) {
        if self.events.is_empty() {
            return;
        }
        self.current.push(b']');
        self.done.push(JsonChunk {
            body: std::mem::take(&mut self.current),
            events: std::mem::take(&mut self.events),
        });
    }

    /// The bodies, in order.
    pub fn finish(mut self) -> Vec<JsonChunk> {
        self.close_chunk();
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(String, String)]) -> Delivery {
        Response {
            id: 1,
            status,
            headers,
            body: b"bad things",
            transport_error: None,
        }
        .classify()
    }

    #[test]
    fn classifies_statuses() {
        assert_eq!(response(200, &[]), Delivery::Ok);
        assert_eq!(response(204, &[]), Delivery::Ok);
        assert_eq!(response(413, &[]), Delivery::SplitAndRetry);
        assert_eq!(
            response(429, &[("Retry-After".into(), " 7 ".into())]),
            Delivery::Retry(Some(7000))
        );
        assert_eq!(response(503, &[]), Delivery::Retry(None));
        assert_eq!(
            response(403, &[]),
            Delivery::FailPermanent("HTTP 403: bad things".into())
        );
        let transport = Response {
            id: 1,
            status: 0,
            headers: &[],
            body: b"",
            transport_error: Some("refused"),
        };
        assert_eq!(transport.classify(), Delivery::Retry(None));
    }

    #[test]
    fn json_arrays_split_by_bytes_and_count() {
        let mut builder = JsonArrayBuilder::new(20, 3);
        for event in 0..5 {
            builder.push_json(event, b"\"abcd\"").unwrap();
        }
        let chunks = builder.finish();
        let bodies: Vec<_> = chunks
            .iter()
            .map(|c| String::from_utf8(c.body.clone()).unwrap())
            .collect();
        assert_eq!(
            bodies,
            [r#"["abcd","abcd"]"#, r#"["abcd","abcd"]"#, r#"["abcd"]"#]
        );
        assert_eq!(chunks[1].events, [2, 3]);
        for chunk in &chunks {
            assert!(chunk.body.len() <= 20);
            serde_json::from_slice::<serde_json::Value>(&chunk.body).unwrap();
        }

        let mut by_count = JsonArrayBuilder::new(1 << 20, 2);
        for event in 0..5 {
            by_count.push_json(event, b"1").unwrap();
        }
        let events: Vec<_> = by_count.finish().into_iter().map(|c| c.events).collect();
        assert_eq!(events, [vec![0, 1], vec![2, 3], vec![4]]);
    }

    #[test]
    fn an_element_too_large_for_any_chunk_is_reported_and_left_out() {
        let mut builder = JsonArrayBuilder::new(10, 10);
        builder.push_json(0, b"1").unwrap();
        assert_eq!(
            builder.push_json(1, b"\"0123456789\""),
            Err(TooLarge {
                event: 1,
                bytes: 12,
                limit: 10
            })
        );
        builder.push_json(2, b"2").unwrap();
        let chunks = builder.finish();
        assert_eq!(
            chunks,
            [JsonChunk {
                body: b"[1,2]".to_vec(),
                events: vec![0, 2]
            }]
        );
    }

    #[test]
    fn records_become_json_objects() {
        let body = crate::json::json_to_msgpack(&serde_json::json!({"log": "x", "n": 1}));
        let mut builder = JsonArrayBuilder::new(1000, 10);
        builder.push_record(4, &body).unwrap();
        assert!(builder.push_record(5, &[0xc1]).is_err());
        let chunks = builder.finish();
        assert_eq!(chunks[0].body, br#"[{"log":"x","n":1}]"#);
        assert_eq!(chunks[0].events, [4]);
    }
}
