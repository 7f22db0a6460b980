//! Write [wasm-router](https://github.com/wasm-router/wasm-router) plugins in Rust.
//!
//! A plugin is a WebAssembly component built with `cargo build --target wasm32-wasip2`. A
//! **filter** sees batches of log events and says what becomes of each one; an **output**
//! turns batches into HTTP requests that the router sends. This crate holds the bindings to
//! the plugin contract (`wit/plugin.wit`), typed lazy views of the msgpack records, config
//! parsing with JSON-pointer errors, logging and metrics, and a [`testing`] harness that runs
//! plugin logic natively under `cargo test`.
//!
//! # A filter
//!
//! Write one function per event (or per batch, with `#[filter(batch)]`) and put
//! [`#[filter]`](macro@filter) on it:
//!
//! ```
//! use wasm_router_sdk::{filter, log, Ctx, Event, Outcome};
//!
//! /// The operator's config (its JSON Schema is what `info()` reports).
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     /// The key holding the message.
//!     #[serde(default = "default_field")]
//!     field: String,
//! }
//!
//! fn default_field() -> String {
//!     "log".into()
//! }
//!
//! /// Drops health checks and marks slow requests.
//! #[filter(name = "tidy", description = "Drops health checks, marks slow requests.")]
//! fn tidy(config: &Config, event: &Event<'_>, ctx: &mut Ctx) -> wasm_router_sdk::Result<Outcome> {
//!     let Some(message) = event.get_str(config.field.as_str()) else { return Ok(Outcome::Keep) };
//!     if message.contains("GET /health") {
//!         ctx.count("health_checks_dropped", 1);
//!         return Ok(Outcome::Drop);
//!     }
//!     if event.get("duration_ms").and_then(|v| v.as_f64()).unwrap_or(0.0) > 1000.0 {
//!         let mut record = event.record()?;
//!         record.set("slow", &true)?;
//!         return Ok(record.into());
//!     }
//!     Ok(Outcome::Keep)
//! }
//!
//! // Natively (`cargo test`), run it through the same loop the component uses:
//! use wasm_router_sdk::testing::{self, TestEvent};
//! use serde_json::json;
//!
//! let run = testing::run_filter(tidy, "{}", &[
//!     TestEvent::json(json!({"log": "GET /health 200"})),
//!     TestEvent::json(json!({"log": "GET /orders 200", "duration_ms": 1500})),
//! ]).unwrap();
//! assert_eq!(run.records(), [json!({"log": "GET /orders 200", "duration_ms": 1500, "slow": true})]);
//! assert_eq!(testing::counter("health_checks_dropped"), 1);
//! ```
//!
//! - The function's arguments: the config (any [`PluginConfig`]; [`NoConfig`] for none), the
//!   [`Event`], and a [`Ctx`] for per-batch counters. It returns an [`Outcome`], or a `Result`
//!   whose error becomes [`Outcome::Error`] (so `?` works; [`Error`] takes any error).
//! - [`Outcome::Keep`] copies nothing back. Reading an event never copies either: values
//!   borrow from the batch. An edited [`Record`] is re-encoded once, alone.
//! - `#[filter]` arguments: `name`, `version` and `description` (default: the crate's),
//!   `fail_closed` (ask the router to drop, not pass, events the plugin could not process;
//!   stated in the config schema as `"x-wasm-router": {"on_error": "fail_closed"}`), and
//!   `batch` for a function over a whole [`Batch`] returning one outcome per event.
//!
//! # An output
//!
//! Implement [`output::Output`] on the config type and put [`#[output]`](macro@output) on the
//! impl; see the [`output`] module. Outputs that POST JSON arrays of log entries to a vendor's
//! intake share the status classification, cutting and shortfall tally of [`vendor`].
//!
//! # Building
//!
//! ```text
//! cargo build --release --target wasm32-wasip2
//! ```
//!
//! The crate must be a `cdylib`; the `.wasm` in `target/wasm32-wasip2/release/` is the
//! component. Besides the router's `log` and `metrics`, it imports the `wasi:cli` / `wasi:io`
//! interfaces that Rust's standard library links in (stdio, environment, exit); the router
//! provides inert versions of them.

#![deny(missing_docs)]

extern crate self as wasm_router_sdk;

pub mod bindings;
pub mod config;
mod context;
mod error;
mod event;
mod host;
pub mod json;
pub mod log;
pub mod metrics;
pub mod msgpack;
mod outcome;
pub mod output;
mod record;
mod runtime;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod value;
pub mod vendor;

pub use config::{ConfigError, NoConfig, PluginConfig};
pub use context::Ctx;
pub use error::{Error, Result};
pub use event::{Batch, BatchError, Event};
pub use msgpack::DecodeError;
pub use outcome::{IntoOutcome, IntoOutcomes, Outcome, Patch};
pub use record::{AsPath, Record, RecordError, parse_accessor};
/// `serde_json`, as the SDK uses it (config schemas are `serde_json::Value`s).
pub use serde_json;
pub use value::{Array, ArrayIter, Map, MapIter, Value};
pub use wasm_router_sdk_macros::{filter, output};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// What the attribute macros expand to refers to these; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use crate::runtime::*;
    pub use wit_bindgen;
}
