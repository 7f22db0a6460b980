//! The WASM plugin runtime against real guest components (built for `wasm32-wasip2` by the
//! `wasm-router-test-artifacts` crate): well-behaved and misbehaving filters in the pipeline,
//! their metrics and policies, `wasm-router test` / `plugin inspect` / `plugin compile` runs
//! against golden files, and forward → WASM filter → output through the real binary.

mod support;

mod filter;

mod faults;

mod poison_events;

mod projects;

mod end_to_end;

mod cli;

mod golden;

mod polyglot;

mod remote;
