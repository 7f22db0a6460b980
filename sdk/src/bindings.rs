//! The WIT bindings, generated once here from `wit/plugin.wit` so plugin crates never run
//! bindgen themselves. `#[filter]` and `#[output]` expand to the export macros defined here.

/// Bindings for the `filter` world (and the shared `types`, `log` and `metrics` interfaces).
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod filter {
    wit_bindgen::generate!({
        world: "filter",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export_filter",
        default_bindings_module: "wasm_router_sdk::__private::bindings::filter",
        runtime_path: "wasm_router_sdk::__private::wit_bindgen::rt",
    });
}

/// Bindings for the `output` world; shared interfaces come from [`filter`].
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod output {
    wit_bindgen::generate!({
        world: "output",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export_output",
        default_bindings_module: "wasm_router_sdk::__private::bindings::output",
        // Keep this world's import-only type section out of filter components (it would add a
        // `http-types` import to them); `export_output!` emits the full section for outputs.
        disable_custom_section_link_helpers: true,
        runtime_path: "wasm_router_sdk::__private::wit_bindgen::rt",
        with: {
            "wasm-router:plugin/types@0.1.0": crate::bindings::filter::wasm_router::plugin::types,
            "wasm-router:plugin/log@0.1.0": crate::bindings::filter::wasm_router::plugin::log,
            "wasm-router:plugin/metrics@0.1.0": crate::bindings::filter::wasm_router::plugin::metrics,
            "wasm-router:plugin/http-types@0.1.0": generate,
        },
    });
}
