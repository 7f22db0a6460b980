//! wasm-router: a log router for containers.
//!
//! The data path, one module per stage:
//! [`input::forward`] (decoder + TCP/unix servers) → [`pipeline`] (tag matching, filter chain,
//! fan-out) → [`buffer`] (bounded, per output) → [`output`] (one task per destination).
//! [`plugin`] hosts WebAssembly filters and outputs; [`config`] reads and validates the
//! configuration; [`ecs`] reads the ECS task metadata and the FireLens init files at startup;
//! [`ops`] holds metrics, signals and shutdown; [`router`] assembles them.

pub mod buffer;
pub mod config;
pub mod ecs;
pub mod event;
pub mod filter;
pub mod input;
pub mod ops;
pub mod output;
pub mod pipeline;
pub mod plugin;
pub mod router;
pub mod time;

pub use event::{Batch, Event};
