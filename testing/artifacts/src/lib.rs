//! Absolute paths of the wasm guest components (`wasm32-wasip2`) that the build script builds:
//! test guests (well-behaved and misbehaving) and the first-party plugins.
//!
//! Use it as a dev-dependency; each constant is a path to a `.wasm` component file:
//!
//! ```no_run
//! let component_bytes = std::fs::read(wasm_router_test_artifacts::KEEP_ALL).unwrap();
//! assert!(!component_bytes.is_empty());
//! ```

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
