//! The Fluentd forward-protocol input: a sans-io decoder and thin TCP / unix socket servers.

pub mod decode;
pub mod server;

pub use decode::{DecodeError, DecodeLimits, Decoder, Frame, Request, ack_response};
pub use server::{ForwardServer, ListenAddr};
