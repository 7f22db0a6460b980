//! What a plugin gets for the network: the imports, so that components built by
//! general-purpose toolchains load, and a refusal for every operation when it is called.
//!
//! componentize-py links CPython's `socket` module against `wasi:sockets/*`, and
//! componentize-js links `fetch` against `wasi:http/*`, whatever the plugin does; Rust's std
//! imports neither unless the plugin uses `std::net`. So:
//!
//! - `wasi:sockets/*` come with wasmtime-wasi's `WasiCtx` ([`super::state`]), built with TCP,
//!   UDP and name lookups off and no address allowed: creating a socket fails with
//!   `access-denied`, a name lookup with `permanent-resolver-failure`.
//! - `wasi:http/*` are wasmtime-wasi-http's, except `outgoing-handler.handle`, which frees the
//!   request and returns `HTTP-request-denied` at once (no pending future the guest would have
//!   to poll, which it may not, see [`super::engine`]).
//!
//! In every case the plugin's call returns an error it can handle (Python raises
//! `PermissionError`/`OSError`, JavaScript's `fetch` rejects); nothing traps. Output plugins
//! describe requests and the router sends them.

use super::state::PluginState;
use std::future::Future;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::types::{HostFutureIncomingResponse, HostOutgoingRequest};
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks, WasiHttpView};

/// The import-name prefixes linked here and denied at call time (for `plugin inspect` and the
/// docs): every `wasi:sockets` and `wasi:http` interface of WASI 0.2.
pub const DENIED_AT_CALL: &[&str] = &["wasi:sockets/", "wasi:http/"];

/// The WASI version of the `wasi:http` wasmtime-wasi-http 48 links (components importing
/// any 0.2.x version link against it).
const WASI_HTTP_OUTGOING_HANDLER: &str = "wasi:http/outgoing-handler@0.2.12";

/// Link wasmtime-wasi-http's `wasi:http/types` and `outgoing-handler`, then replace
/// `outgoing-handler.handle` by one that refuses every request at once.
pub(super) fn add_http_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    linker.instance(WASI_HTTP_OUTGOING_HANDLER)?.func_wrap(
        "handle",
        |mut store,
         (request, options): (
            Resource<HostOutgoingRequest>,
            Option<Resource<RequestOptions>>,
        )|
         -> wasmtime::Result<(Result<Resource<HostFutureIncomingResponse>, ErrorCode>,)> {
            // Both are handed over to the host: free them, as the real handler does.
            let table = store.data_mut().http().table;
            table.delete(request)?;
            if let Some(options) = options {
                table.delete(options)?;
            }
            Ok((Err(ErrorCode::HttpRequestDenied),))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The hooks of the `wasi:http` context: `handle` above never calls them; if anything did,
/// the request would be refused all the same.
#[derive(Default)]
pub(super) struct DenyAllHooks;

impl WasiHttpHooks for DenyAllHooks {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
