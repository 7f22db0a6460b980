//! The Fluentd forward-protocol input: a sans-io decoder and thin TCP / unix socket servers,
//! with the shared-key handshake and TLS on TCP.

pub mod config;
pub mod decode;
pub mod handshake;
pub mod server;
pub mod tls;

pub use config::ForwardInputConfig;
pub use decode::{DecodeError, DecodeLimits, Decoder, Frame, Request, ack_response};
pub use server::{ForwardServer, ListenAddr};
