//! Sans-io decoder for the Fluentd forward protocol (reference: forward-protocol.md).
//! STUB — being written; the API below is the contract the server uses.

use crate::event::Batch;
use bytes::{Bytes, BytesMut};

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
        DecodeLimits { max_request_bytes: 6_144_000, max_decompressed_bytes: 6_144_000 }
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
}

/// Why the stream cannot be decoded; the connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not msgpack, or not a forward-protocol request.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// A request, or its decompressed payload, exceeds the limit.
    #[error("request exceeds the {limit}-byte limit")]
    TooLarge {
        /// The limit that was hit.
        limit: usize,
    },
}

/// The per-connection decoder state.
#[derive(Debug, Default)]
pub struct Decoder {
    limits: DecodeLimits,
}

impl Decoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: DecodeLimits) -> Self {
        Decoder { limits }
    }

    /// Take one complete frame from the front of `buf`. `Ok(None)`: more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        let _ = (&self.limits, buf);
        Err(DecodeError::Malformed("decoder not written yet".into()))
    }
}

/// The ack for a request whose option carried `chunk`: `{"ack": <chunk>}`, chunk echoed byte for byte.
pub fn ack_response(chunk_msgpack: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + chunk_msgpack.len());
    out.extend_from_slice(&[0x81, 0xa3, b'a', b'c', b'k']);
    out.extend_from_slice(chunk_msgpack);
    out
}
