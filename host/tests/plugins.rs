//! The WASM plugin runtime against real guest components (built for `wasm32-wasip2` by the
//! `wasm-router-test-artifacts` crate): well-behaved and misbehaving filters in the pipeline,
//! their metrics and policies, `wasm-router test` / `plugin inspect` / `plugin compile` runs
//! against golden files, and forward → WASM filter → output through the real binary.

mod common;

#[path = "plugins/support.rs"]
mod support;

#[path = "plugins/filter.rs"]
mod filter;

#[path = "plugins/faults.rs"]
mod faults;

#[path = "plugins/end_to_end.rs"]
mod end_to_end;

#[path = "plugins/cli.rs"]
mod cli;

#[path = "plugins/golden.rs"]
mod golden;
