//! wasm-router: a log router for containers.
//!
//! The data path, one module per stage:
//! [`input`] (the forward protocol's decoder + TCP/unix servers) → [`pipeline`] (tag matching,
//! filter chain, fan-out) → [`buffer`] (bounded, per output) → [`output`] (one task per
//! destination). [`filter`] holds the native filters and [`plugin`] hosts WebAssembly filters
//! and outputs; [`parsers`] (Fluent Bit `[PARSER]`s) and [`multiline`] hold the parsers filters
//! and inputs share; [`stream`] runs stream tasks on what leaves the filter chain. Each
//! component owns its config, its checks and its build.
//!
//! Around it: [`config`] (a leaf: units, `${VAR}`, reading TOML and the Fluent Bit classic
//! format, the keys components share); [`topology`] (the root config, the registry of component
//! types, and the assembly of a running router, with reload); [`ecs`] (the ECS variables) and
//! [`startup`] (the ECS start-up step that fetches them and the init files); [`ops`] (metrics,
//! logging, the HTTP server, signals and shutdown); [`event`] (the event, its JSON form and its
//! record as raw msgpack entries, with Fluent Bit's record accessors).
//! `docs/architecture.md` draws the layout.

pub mod buffer;
pub mod config;
pub mod ecs;
pub mod event;
pub mod filter;
pub mod input;
pub mod multiline;
pub mod net;
pub mod ops;
pub mod output;
pub mod parsers;
pub mod pipeline;
pub mod plugin;
pub mod startup;
pub mod stream;
pub mod time;
pub mod topology;

pub use event::{Batch, Event};
