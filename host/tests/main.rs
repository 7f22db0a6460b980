//! The integration tests of `wasm-router`, in one test binary: one module per area (its path is
//! the test-name prefix, e.g. `cli::` or `plugins::filter::`), all sharing `common/`. One binary
//! links wasmtime and the AWS SDK once instead of once per area. Run one area with a name
//! filter: `cargo nextest run -p wasm-router --test main -E 'test(/^cli::/)'`.

mod common;

mod aws_cloudwatch;
mod aws_filter;
mod aws_firehose;
mod aws_kinesis;
mod aws_s3;
mod bench_load;
mod buffer_faults;
mod cli;
mod corpus;
mod delivery;
mod dummy_input;
mod exec_input;
mod firelens;
mod firelens_init;
mod fluent_bit_api;
mod flush_window;
mod forward_bad_input;
mod forward_clients;
mod forward_golden;
mod forward_limits;
mod forward_output;
mod http_input;
mod http_output;
mod loki_output;
mod multiline;
mod native_filters;
mod opensearch_output;
mod ops;
mod plugins;
mod security;
mod stream_tasks;
mod tail_input;
mod tcp_input;
mod validate;
mod vendor_outputs;
mod wasm_output;
mod yaml_config;
