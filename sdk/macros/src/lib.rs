//! The `#[filter]` and `#[output]` attribute macros of `wasm-router-sdk` (use them through
//! that crate). Each turns plugin code into the WIT exports of its world: `info` (name,
//! version, config schema), `init` (config parsing) and the batch entry points, by expanding
//! to the export macro that the SDK's bindings define.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Expr, ExprArray, FnArg, ItemFn, ItemImpl, Lit, LitStr, Type};

/// Arguments shared by both attributes.
#[derive(Default)]
struct PluginArgs {
    name: Option<LitStr>,
    version: Option<LitStr>,
    description: Option<LitStr>,
    fail_closed: bool,
    batch: bool,
    hosts: Vec<LitStr>,
    secrets: Vec<LitStr>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Filter,
    Output,
}

fn string_list(value: Expr) -> syn::Result<Vec<LitStr>> {
    let Expr::Array(ExprArray { elems, .. }) = value else {
        return Err(syn::Error::new(
            value.span(),
            "expected a list of strings, e.g. [\"https://example.com\"]",
        ));
    };
    elems
        .into_iter()
        .map(|elem| match elem {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Str(s), ..
            }) => Ok(s),
            other => Err(syn::Error::new(other.span(), "expected a string literal")),
        })
        .collect()
}

fn parse_args(args: TokenStream, kind: Kind) -> syn::Result<PluginArgs> {
    let mut parsed = PluginArgs::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            parsed.name = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("version") {
            parsed.version = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("description") {
            parsed.description = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("fail_closed") {
            parsed.fail_closed = true;
        } else if meta.path.is_ident("batch") && kind == Kind::Filter {
            parsed.batch = true;
        } else if meta.path.is_ident("hosts") && kind == Kind::Output {
            parsed.hosts = string_list(meta.value()?.parse()?)?;
        } else if meta.path.is_ident("secrets") && kind == Kind::Output {
            parsed.secrets = string_list(meta.value()?.parse()?)?;
        } else {
            let known = match kind {
                Kind::Filter => "name, version, description, fail_closed, batch",
                Kind::Output => "name, version, description, fail_closed, hosts, secrets",
            };
            return Err(meta.error(format!("unknown argument; the arguments are: {known}")));
        }
        Ok(())
    });
    parser.parse(args)?;
    Ok(parsed)
}

fn meta_tokens(args: &PluginArgs) -> TokenStream2 {
    let or_env = |value: &Option<LitStr>, var: &str| match value {
        Some(lit) => quote!(#lit),
        None => quote!(::core::env!(#var)),
    };
    let name = or_env(&args.name, "CARGO_PKG_NAME");
    let version = or_env(&args.version, "CARGO_PKG_VERSION");
    let description = or_env(&args.description, "CARGO_PKG_DESCRIPTION");
    let fail_closed = args.fail_closed;
    let hosts = &args.hosts;
    let secrets = &args.secrets;
    quote! {
        ::wasm_router_sdk::__private::PluginMeta {
            name: #name,
            version: #version,
            description: #description,
            fail_closed: #fail_closed,
            requested_hosts: &[#(#hosts),*],
            requested_secrets: &[#(#secrets),*],
        }
    }
}

/// The `T` of the config argument `&T`.
fn config_type(function: &ItemFn) -> syn::Result<Type> {
    let shape = "a filter function takes (config: &Config, event: &Event<'_>, ctx: &mut Ctx) \
                 (with `batch`: batch: &Batch<'_> instead of the event); use wasm_router_sdk::NoConfig for no config";
    if function.sig.inputs.len() != 3 {
        return Err(syn::Error::new(function.sig.inputs.span(), shape));
    }
    if let Some(asyncness) = &function.sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span(),
            "a filter function cannot be async",
        ));
    }
    if !function.sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            function.sig.generics.span(),
            "a filter function cannot be generic",
        ));
    }
    match &function.sig.inputs[0] {
        FnArg::Typed(arg) => match &*arg.ty {
            Type::Reference(reference) if reference.mutability.is_none() => {
                Ok((*reference.elem).clone())
            }
            other => Err(syn::Error::new(other.span(), shape)),
        },
        FnArg::Receiver(receiver) => Err(syn::Error::new(receiver.span(), shape)),
    }
}

fn expand_filter(args: PluginArgs, function: ItemFn) -> syn::Result<TokenStream2> {
    let config = config_type(&function)?;
    let function_name = &function.sig.ident;
    let meta = meta_tokens(&args);
    let process = if args.batch {
        quote!(process_batch)
    } else {
        quote!(process_each)
    };
    let bindings = quote!(::wasm_router_sdk::__private::bindings::filter);
    Ok(quote! {
        #function

        #[allow(unsafe_code, dead_code, non_camel_case_types, non_upper_case_globals, clippy::all)]
        const _: () = {
            struct __WasmRouterFilter;

            static __WASM_ROUTER_CONFIG: ::wasm_router_sdk::__private::ConfigSlot<#config> =
                ::wasm_router_sdk::__private::ConfigSlot::new();

            const __WASM_ROUTER_META: ::wasm_router_sdk::__private::PluginMeta = #meta;

            impl #bindings::Guest for __WasmRouterFilter {
                fn info() -> #bindings::PluginInfo {
                    ::wasm_router_sdk::__private::filter_info::<#config>(&__WASM_ROUTER_META)
                }

                fn init(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), ::std::vec::Vec<#bindings::ConfigError>> {
                    ::wasm_router_sdk::__private::init::<#config>(&__WASM_ROUTER_CONFIG, &config)
                }

                fn process(batch: #bindings::Batch) -> ::std::vec::Vec<#bindings::Outcome> {
                    ::wasm_router_sdk::__private::#process(&__WASM_ROUTER_CONFIG, &batch, #function_name)
                }
            }

            #[cfg(target_arch = "wasm32")]
            #bindings::export_filter!(__WasmRouterFilter with_types_in #bindings);
        };
    })
}

/// The plugin contract (this crate's `wit` folder, by absolute path: the macro crate's source
/// stays where cargo unpacked it), for the `output` world's bindings that `#[output]`
/// generates in the plugin's own crate, so that filter components never carry the output
/// world's imports.
const WIT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/wit");

fn expand_output(args: PluginArgs, implementation: ItemImpl) -> syn::Result<TokenStream2> {
    let implements_output = implementation
        .trait_
        .as_ref()
        .and_then(|(_, path, _)| path.segments.last())
        .is_some_and(|segment| segment.ident == "Output");
    if !implements_output {
        return Err(syn::Error::new(
            implementation.self_ty.span(),
            "put #[output] on `impl wasm_router_sdk::output::Output for YourConfig { … }`",
        ));
    }
    let output = &implementation.self_ty;
    let meta = meta_tokens(&args);
    let bindings = quote!(__wasm_router_output_bindings);
    Ok(quote! {
        #implementation

        #[doc(hidden)]
        #[allow(unsafe_code, dead_code, missing_docs, unused_imports, non_camel_case_types, clippy::all)]
        mod __wasm_router_output_bindings {
            ::wasm_router_sdk::__private::wit_bindgen::generate!({
                path: #WIT_DIR,
                world: "output",
                runtime_path: "wasm_router_sdk::__private::wit_bindgen::rt",
                with: {
                    "wasm-router:plugin/types@0.1.0": wasm_router_sdk::__private::bindings::filter::wasm_router::plugin::types,
                    "wasm-router:plugin/log@0.1.0": wasm_router_sdk::__private::bindings::filter::wasm_router::plugin::log,
                    "wasm-router:plugin/metrics@0.1.0": wasm_router_sdk::__private::bindings::filter::wasm_router::plugin::metrics,
                    "wasm-router:plugin/http-types@0.1.0": wasm_router_sdk::__private::bindings::output_types::wasm_router::plugin::http_types,
                    "wasm-router:plugin/delivery-items@0.1.0": wasm_router_sdk::__private::bindings::delivery_items::wasm_router::plugin::delivery_items,
                },
            });
        }

        #[allow(unsafe_code, dead_code, non_camel_case_types, non_upper_case_globals, clippy::all)]
        const _: () = {
            struct __WasmRouterOutput;

            static __WASM_ROUTER_OUTPUT: ::wasm_router_sdk::__private::ConfigSlot<#output> =
                ::wasm_router_sdk::__private::ConfigSlot::new();

            const __WASM_ROUTER_META: ::wasm_router_sdk::__private::PluginMeta = #meta;

            impl #bindings::Guest for __WasmRouterOutput {
                fn info() -> #bindings::PluginInfo {
                    ::wasm_router_sdk::__private::output_info::<#output>(&__WASM_ROUTER_META)
                }

                fn init(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), ::std::vec::Vec<#bindings::ConfigError>> {
                    ::wasm_router_sdk::__private::init::<#output>(&__WASM_ROUTER_OUTPUT, &config)
                }

                fn encode(
                    batch: #bindings::Batch,
                ) -> ::std::result::Result<::std::vec::Vec<#bindings::HttpRequest>, ::std::string::String> {
                    ::wasm_router_sdk::__private::encode::<#output>(&__WASM_ROUTER_OUTPUT, &batch)
                }

                fn on_response(response: #bindings::HttpResponse) -> #bindings::Delivery {
                    ::wasm_router_sdk::__private::on_response::<#output>(&__WASM_ROUTER_OUTPUT, &response)
                }
            }

            #[cfg(target_arch = "wasm32")]
            #bindings::export!(__WasmRouterOutput with_types_in #bindings);
        };
    })
}

/// Makes a filter plugin of one function.
///
/// Per event: `fn(config: &Config, event: &Event<'_>, ctx: &mut Ctx) -> Outcome` (or
/// `-> Result<Outcome, E>`, the error becoming `Outcome::Error`). With `batch`:
/// `fn(config: &Config, batch: &Batch<'_>, ctx: &mut Ctx) -> Vec<Outcome>` (or a `Result`).
///
/// Arguments, all optional: `name = "…"`, `version = "…"`, `description = "…"` (default: the
/// crate's name, version and description), `fail_closed`, `batch`.
#[proc_macro_attribute]
pub fn filter(args: TokenStream, item: TokenStream) -> TokenStream {
    let expanded = parse_args(args, Kind::Filter)
        .and_then(|args| Ok((args, syn::parse::<ItemFn>(item)?)))
        .and_then(|(args, function)| expand_filter(args, function));
    expanded
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes an output plugin of an `impl wasm_router_sdk::output::Output for YourConfig`.
///
/// Arguments, all optional: `name`, `version`, `description` (as for `#[filter]`),
/// `hosts = ["https://…"]` (URL prefixes the operator must allow), `secrets = ["api_key"]`
/// (secrets the operator must provide for secret headers), `fail_closed`.
#[proc_macro_attribute]
pub fn output(args: TokenStream, item: TokenStream) -> TokenStream {
    let expanded = parse_args(args, Kind::Output)
        .and_then(|args| Ok((args, syn::parse::<ItemImpl>(item)?)))
        .and_then(|(args, implementation)| expand_output(args, implementation));
    expanded
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
