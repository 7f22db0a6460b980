//! The one `bindgen!` of the host: Rust types for `wit/plugin.wit` and the traits for the
//! imports every plugin gets (`log`, `metrics`, and for outputs `delivery-items`).
//!
//! Both worlds (`filter` and `output`) share their imports and types, so the bindings are
//! generated once, for a host-side world that imports everything the contract defines. The
//! world-level exports (`info`, `init`, `process`, `encode`, `on-response`) are looked up by
//! name once per component ([`super::loader`]) and called as typed functions over these types;
//! their signatures are checked against the component when an instance is created.

wasmtime::component::bindgen!({
    path: "../wit",
    inline: "
        package wasm-router:host;

        world plugin-imports {
            import wasm-router:plugin/types@0.1.0;
            import wasm-router:plugin/http-types@0.1.0;
            import wasm-router:plugin/log@0.1.0;
            import wasm-router:plugin/metrics@0.1.0;
            import wasm-router:plugin/delivery-items@0.1.0;
        }
    ",
    world: "wasm-router:host/plugin-imports",
});

pub use self::wasm_router::plugin::delivery_items::{ItemFailure, ItemOutcome, ItemResult};
pub use self::wasm_router::plugin::http_types::{
    Compression, Delivery, HttpRequest, HttpResponse, Method, SecretHeader,
};
pub use self::wasm_router::plugin::log::Level;
pub use self::wasm_router::plugin::types::{
    Batch, ConfigError, EventPatch, Outcome, PluginInfo, PluginKind,
};
