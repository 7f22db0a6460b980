//! Buffers between the pipeline and each output: bounded, with an explicit policy when full.
//!
//! The pipeline pushes a batch into the buffer of every output whose `match` covers its tag;
//! the input acknowledges the sender once every push returned. The bytes a batch holds stay
//! reserved until the output finished with it (delivered, or counted as dropped), so the bound
//! covers what is waiting *and* what is in flight.

pub mod memory;

pub use memory::{BufferReader, BufferWriter, Queued, memory_buffer};

use serde::Deserialize;

/// What a push does when the buffer is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Wait for room: the input reads more slowly (backpressure). Nothing is dropped.
    #[default]
    Block,
    /// Drop the batch being pushed and count it under `buffer_full`.
    DropNewest,
}
