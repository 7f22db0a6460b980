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

/// The types of the `http-types` interface (requests, responses, deliveries).
///
/// Only the types are generated here, from a world that imports the interface and nothing
/// else: `#[output]` runs the `output` world's bindings in the output plugin's own crate, so
/// a filter component never carries the `output` world's imports.
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod output_types {
    wit_bindgen::generate!({
        inline: "
            package wasm-router:sdk;

            world output-types {
                import wasm-router:plugin/http-types@0.1.0;
            }
        ",
        path: "wit",
        world: "wasm-router:sdk/output-types",
        runtime_path: "wasm_router_sdk::__private::wit_bindgen::rt",
        generate_unused_types: true,
        with: {
            "wasm-router:plugin/http-types@0.1.0": generate,
        },
    });
}

/// The `delivery-items` import (per-event results of a request), generated on its own so that
/// only a plugin that calls [`crate::output::report_items`] imports it: a component carries
/// only the imports its code uses, and older routers refuse components importing what they
/// do not provide.
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod delivery_items {
    wit_bindgen::generate!({
        inline: "
            package wasm-router:sdk-items;

            world items {
                import wasm-router:plugin/delivery-items@0.1.0;
            }
        ",
        path: "wit",
        world: "wasm-router:sdk-items/items",
        runtime_path: "wasm_router_sdk::__private::wit_bindgen::rt",
        generate_unused_types: true,
        with: {
            "wasm-router:plugin/delivery-items@0.1.0": generate,
        },
    });
}
