//! Sans-io decoder for the Fluentd forward protocol (reference: forward-protocol.md).
//!
//! [`Decoder::decode`] takes one complete top-level msgpack object off the front of a buffer and
//! turns it into a [`Frame`]. It never reads a socket, so the servers are thin loops around it
//! and the fuzzer can drive it with arbitrary byte splits.
//!
//! Layers, each in its own module:
//! - `framing`: where the next object ends (resumable across reads; request size limit).
//! - `request`: carrier mode by the second element's type, the option map, the ack's chunk.
//! - `entries`: `[time, record]` entries and every time encoding real senders use.
//! - `decompress`: capped multi-member gzip and zstd.
//! - `msgpack`: marker-level skipping; records are located, never decoded or re-encoded.
//!
//! Ack policy for invalid entries (reference §9.2, §10.6): an entry with a bad time or a record
//! that is not a map is skipped and counted in [`Request::invalid_events`]; the request still
//! succeeds and is acked, as Fluentd does, since the sender would only resend the same poison.
//! A request that breaks the protocol itself is a [`DecodeError`] and closes the connection.

mod decompress;
mod entries;
mod framing;
mod msgpack;
mod request;

pub use msgpack::MAX_DEPTH;

use crate::event::Batch;
use bytes::{Bytes, BytesMut};
use framing::{FrameLayout, FrameScanner};

/// Limits that protect the router from one connection.
#[derive(Clone, Debug)]
pub struct DecodeLimits {
    /// Most bytes one request may occupy before it is complete (Fluent Bit `buffer_max_size`).
    pub max_request_bytes: usize,
    /// Most bytes a compressed payload may decompress to.
    pub max_decompressed_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_request_bytes: 6_144_000,
            max_decompressed_bytes: 6_144_000,
        }
    }
}

/// One decoded top-level object of the stream.
#[derive(Debug)]
pub enum Frame {
    /// A request carrying events (possibly none, e.g. a skipped non-log signal).
    Request(Request),
    /// A top-level `nil` (heartbeat / no-op): ignored quietly.
    Nil,
}

/// How a request carried its events (reference §1, §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `[tag, time, record, option?]`: one event.
    Message,
    /// `[tag, [[time, record], ...], option?]`.
    Forward,
    /// `[tag, bin|str(entries), option?]`.
    PackedForward,
    /// `[tag, bin|str(gzip|zstd(entries)), option]`.
    CompressedPackedForward,
}

/// One forward-protocol request.
#[derive(Debug)]
pub struct Request {
    /// The events, under the request's tag.
    pub batch: Batch,
    /// The raw msgpack encoding of the `chunk` option, to echo in the ack.
    pub chunk: Option<Bytes>,
    /// Entries that were skipped as invalid (wrong time or record type).
    pub invalid_events: usize,
    /// Set when the request carried a `fluent_signal` other than 0 (metrics, traces): skipped.
    pub skipped_signal: Option<i64>,
    /// The carrier mode the request used.
    pub mode: Mode,
    /// Memory the decoded request holds: the buffers its bodies point into (the request, and
    /// its decompressed payload) and the event list at its capacity.
    pub held_bytes: usize,
}

/// Why the stream cannot be decoded; the connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not msgpack, or not a forward-protocol request.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// A request, or its decompressed payload, exceeds the limit.
    #[error("{what} exceeds the {limit}-byte limit ({})", what.setting())]
    TooLarge {
        /// The limit that was hit.
        limit: usize,
        /// Which limit.
        what: SizeLimit,
    },
}

/// The size limits of [`DecodeLimits`], for [`DecodeError::TooLarge`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeLimit {
    /// [`DecodeLimits::max_request_bytes`].
    Request,
    /// [`DecodeLimits::max_decompressed_bytes`].
    Decompressed,
    /// The memory a connection may hold (the decoded events of a request are charged at
    /// their real size, per-event overhead included).
    Decoded,
}

impl SizeLimit {
    fn setting(self) -> &'static str {
        match self {
            SizeLimit::Request => {
                "raise the input's buffer_max_size, or have the sender send smaller chunks"
            }
            SizeLimit::Decompressed => {
                "raise the input's decompress_max_size, or have the sender send smaller chunks"
            }
            SizeLimit::Decoded => {
                "raise [service] memory_budget (the inputs get a quarter of it), or have the sender send smaller chunks"
            }
        }
    }
}

impl std::fmt::Display for SizeLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SizeLimit::Request => "request",
            SizeLimit::Decompressed => "decompressed payload",
            SizeLimit::Decoded => "decoded request",
        })
    }
}

/// The per-connection decoder state.
#[derive(Debug)]
pub struct Decoder {
    limits: DecodeLimits,
    scanner: FrameScanner,
    /// The complete frame at the front of the buffer, found by [`Decoder::next_held_bound`].
    ready: Option<FrameLayout>,
    /// Its payload decompressed by [`Decoder::decompress_ready`], if it is compressed.
    ready_plain: Option<Bytes>,
    /// What decoding keeps between requests ([`request::Scratch`]).
    scratch: request::Scratch,
    clock: fn() -> u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DecodeLimits::default())
    }
}

impl Decoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: DecodeLimits) -> Self {
        Decoder::with_clock(limits, crate::event::now_ns)
    }

    /// A decoder that reads "now" (for events sent with time 0) from `clock`, in nanoseconds
    /// since the epoch. For deterministic tests.
    pub fn with_clock(limits: DecodeLimits, clock: fn() -> u64) -> Self {
        Decoder {
            limits,
            scanner: FrameScanner::default(),
            ready: None,
            ready_plain: None,
            scratch: request::Scratch::default(),
            clock,
        }
    }

    /// Take one complete frame from the front of `buf`. `Ok(None)`: more bytes are needed.
    ///
    /// Between calls the caller may only append to `buf` (the scan resumes where it stopped).
    /// After an error the stream cannot be resynchronised: close the connection.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        self.decode_within(buf, usize::MAX)
    }

    /// [`decode`](Self::decode), refusing a request whose decoded form would hold more than
    /// `max_held` bytes ([`Request::held_bytes`]) before allocating it.
    pub fn decode_within(
        &mut self,
        buf: &mut BytesMut,
        max_held: usize,
    ) -> Result<Option<Frame>, DecodeError> {
        let plain = self.ready_plain.take();
        let layout = match self.ready.take() {
            Some(layout) => layout,
            None => match self.scanner.scan(buf, self.limits.max_request_bytes)? {
                None => return Ok(None),
                Some(layout) => layout,
            },
        };
        match layout {
            FrameLayout::Nil => {
                let _ = buf.split_to(1);
                Ok(Some(Frame::Nil))
            }
            FrameLayout::Array(layout) => {
                let frame = buf.split_to(layout.len).freeze();
                let request = request::parse_request(
                    frame,
                    &layout,
                    &self.limits,
                    plain,
                    max_held,
                    self.clock,
                    &mut self.scratch,
                );
                // Entry ends belong to the frame `next_held_bound` found, and to no other.
                self.scratch.entry_ends.clear();
                request.map(|r| Some(Frame::Request(r)))
            }
        }
    }

    /// Once the frame at the front of `buf` is all there (`Ok(None)`: more bytes are needed), its
    /// length and the most memory its request can hold once decoded ([`Request::held_bytes`]),
    /// without taking it: the next [`decode_within`](Self::decode_within) takes it. For a
    /// compressed payload not yet decompressed, the bound is the room decompressing needs: hold
    /// it, call [`decompress_ready`](Self::decompress_ready), then ask again for the exact size.
    pub fn next_held_bound(
        &mut self,
        buf: &BytesMut,
    ) -> Result<Option<(usize, usize)>, DecodeError> {
        if self.ready.is_none() {
            self.ready = self.scanner.scan(buf, self.limits.max_request_bytes)?;
        }
        let ends = &mut self.scratch.entry_ends;
        Ok(self.ready.as_ref().map(|layout| match layout {
            FrameLayout::Nil => (1, 0),
            FrameLayout::Array(a) => (
                a.len,
                request::held_bound(
                    &buf[..a.len],
                    a,
                    &self.limits,
                    self.ready_plain.as_ref(),
                    ends,
                ),
            ),
        }))
    }

    /// Give back the emptied event list of a one-event request (Message mode) whose events
    /// were moved elsewhere: the next one reuses it instead of allocating.
    pub fn recycle(&mut self, events: Vec<crate::event::Event>) {
        if events.is_empty() && events.capacity() == 1 {
            self.scratch.single = Some(events);
        }
    }

    /// Decompress the payload of the frame found by [`next_held_bound`](Self::next_held_bound)
    /// (within `max_decompressed_bytes`), once the room that bound asked for is held. Returns
    /// whether it did: then `next_held_bound` gives the exact size of the decoded request.
    pub fn decompress_ready(&mut self, buf: &BytesMut) -> Result<bool, DecodeError> {
        let Some(FrameLayout::Array(layout)) = &self.ready else {
            return Ok(false);
        };
        if self.ready_plain.is_some() {
            return Ok(false);
        }
        self.ready_plain = request::decompress_payload(&buf[..layout.len], layout, &self.limits)?;
        Ok(self.ready_plain.is_some())
    }
}

/// The ack for a request whose option carried `chunk`: `{"ack": <chunk>}`, chunk echoed byte for
/// byte (reference §5).
pub fn ack_response(chunk_msgpack: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + chunk_msgpack.len());
    out.extend_from_slice(&[0x81, 0xa3, b'a', b'c', b'k']);
    out.extend_from_slice(chunk_msgpack);
    out
}

#[cfg(test)]
mod tests;
