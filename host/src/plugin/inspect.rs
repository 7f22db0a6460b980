//! What a plugin component imports and exports, from wasmtime's component type introspection
//! (for `wasm-router plugin inspect`), and how the router treats each import ([`access`]).

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::{ComponentItem, Type};

/// One import or export of a component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Its name (`wasm-router:plugin/log@0.1.0`, `process`).
    pub name: String,
    /// `instance`, `func`, `type`, `resource`, `module` or `component`.
    pub kind: &'static str,
    /// For a function its signature; for an instance the signatures of its functions.
    pub members: Vec<String>,
}

/// How the router treats one import of a plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Linked and usable (perhaps inert, see the note).
    Granted,
    /// Linked so the plugin loads, but every call is denied (a permission error).
    DeniedAtCall,
    /// The plugin does not load with it.
    Refused,
}

impl Access {
    /// `granted`, `denied-at-call` or `refused`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Granted => "granted",
            Access::DeniedAtCall => "denied-at-call",
            Access::Refused => "refused",
        }
    }
}

/// How the router treats the import `name` (`wasi:cli/stdout@0.2.6`,
/// `wasm-router:plugin/log@0.1.0`), and what the plugin gets from it: the one place that
/// classifies imports for `plugin inspect` (keep it in step with the loader's checks and the
/// linker, `loader.rs` and `engine.rs`).
pub fn access(name: &str) -> (Access, &'static str) {
    use super::loader::{CONTRACT_PACKAGE, CONTRACT_VERSION};
    let (interface, version) = name.split_once('@').unwrap_or((name, ""));
    if let Some(rest) = interface.strip_prefix(CONTRACT_PACKAGE) {
        let (major_minor, _) = CONTRACT_VERSION.rsplit_once('.').unwrap_or_default();
        return if version.starts_with(&format!("{major_minor}.")) && rest.starts_with('/') {
            (Access::Granted, "the plugin contract")
        } else {
            (
                Access::Refused,
                "another version of the plugin contract: rebuild the plugin against the router's wit/plugin.wit",
            )
        };
    }
    const NETWORK: &str = "no network: every call fails with a permission error (an output plugin returns request descriptors that the router sends)";
    let table: &[(&str, Access, &str)] = &[
        ("wasi:sockets/", Access::DeniedAtCall, NETWORK),
        ("wasi:http/", Access::DeniedAtCall, NETWORK),
        (
            "wasi:cli/environment",
            Access::Granted,
            "no variables, no arguments, no working directory",
        ),
        (
            "wasi:cli/exit",
            Access::Granted,
            "exit ends the call as a trap (a fault)",
        ),
        (
            "wasi:cli/stdin",
            Access::Granted,
            "closed: reads return end-of-stream",
        ),
        (
            "wasi:cli/stdout",
            Access::Granted,
            "lines go to the plugin's log (info)",
        ),
        (
            "wasi:cli/stderr",
            Access::Granted,
            "lines go to the plugin's log (warn)",
        ),
        ("wasi:cli/terminal-", Access::Granted, "not a terminal"),
        (
            "wasi:clocks/",
            Access::Granted,
            "frozen: the wall clock reads 1970-01-01T00:00:00Z, the monotonic clock 0; use the events' times",
        ),
        (
            "wasi:io/poll",
            Access::Granted,
            "pollables only: poll and pollable.block trap (a plugin may not block)",
        ),
        ("wasi:io/", Access::Granted, "only the stdio streams"),
        ("wasi:random/", Access::Granted, "random bytes"),
        (
            "wasi:filesystem/",
            Access::Granted,
            "no preopened directories: nothing can be opened",
        ),
    ];
    match table
        .iter()
        .find(|(prefix, _, _)| interface.starts_with(prefix))
    {
        Some(_) if !version.is_empty() && !version.starts_with("0.2.") => (
            Access::Refused,
            "only WASI 0.2 is linked: build for wasm32-wasip2",
        ),
        Some((_, access, note)) => (*access, note),
        None => (
            Access::Refused,
            "the router provides no such import: the component does not link",
        ),
    }
}

/// The imports of `component`, sorted by name.
pub fn imports(engine: &Engine, component: &Component) -> Vec<Item> {
    let ty = component.component_type();
    let mut items: Vec<Item> = ty
        .imports(engine)
        .map(|(name, e)| describe(engine, name, &e.ty))
        .collect();
    items.sort_by(|a, b| a.name.cmp(&b.name));
    items
}

/// The exports of `component`, in declaration order.
pub fn exports(engine: &Engine, component: &Component) -> Vec<Item> {
    let ty = component.component_type();
    ty.exports(engine)
        .map(|(name, e)| describe(engine, name, &e.ty))
        .collect()
}

fn describe(engine: &Engine, name: &str, item: &ComponentItem) -> Item {
    let (kind, members) = match item {
        ComponentItem::ComponentFunc(f) => ("func", vec![signature(name, f)]),
        ComponentItem::ComponentInstance(i) => {
            let mut members: Vec<String> = i
                .exports(engine)
                .filter_map(|(n, e)| match &e.ty {
                    ComponentItem::ComponentFunc(f) => Some(signature(n, f)),
                    ComponentItem::Resource(_) => Some(format!("resource {n}")),
                    _ => None,
                })
                .collect();
            members.sort();
            ("instance", members)
        }
        ComponentItem::CoreFunc(_) => ("core func", Vec::new()),
        ComponentItem::Module(_) => ("module", Vec::new()),
        ComponentItem::Component(_) => ("component", Vec::new()),
        ComponentItem::Type(t) => ("type", vec![type_name(t)]),
        ComponentItem::Resource(_) => ("resource", Vec::new()),
    };
    Item {
        name: name.to_string(),
        kind,
        members,
    }
}

fn signature(name: &str, f: &wasmtime::component::types::ComponentFunc) -> String {
    let params: Vec<String> = f
        .params()
        .map(|(n, t)| format!("{n}: {}", type_name(&t)))
        .collect();
    let results: Vec<String> = f.results().map(|t| type_name(&t)).collect();
    let arrow = match results.len() {
        0 => String::new(),
        _ => format!(" -> {}", results.join(", ")),
    };
    format!("{name}: func({}){arrow}", params.join(", "))
}

/// A WIT-like spelling of a type; records, variants and enums show their field or case names.
pub fn type_name(t: &Type) -> String {
    match t {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", type_name(&l.ty())),
        Type::FixedLengthList(l) => format!("list<{}, {}>", type_name(&l.ty()), l.len()),
        Type::Map(m) => format!("map<{}, {}>", type_name(&m.key()), type_name(&m.value())),
        Type::Record(r) => format!(
            "record {{ {} }}",
            r.fields()
                .map(|f| f.name.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Tuple(t) => format!(
            "tuple<{}>",
            t.types()
                .map(|t| type_name(&t))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Variant(v) => format!(
            "variant {{ {} }}",
            v.cases()
                .map(|c| c.name.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", type_name(&o.ty())),
        Type::Result(r) => {
            let part = |t: Option<Type>| t.map_or("_".to_string(), |t| type_name(&t));
            format!("result<{}, {}>", part(r.ok()), part(r.err()))
        }
        Type::Flags(f) => format!("flags {{ {} }}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_granted_denied_at_call_or_refused() {
        let of = |name| access(name).0;
        assert_eq!(of("wasm-router:plugin/log@0.1.0"), Access::Granted);
        assert_eq!(of("wasm-router:plugin/log@0.2.0"), Access::Refused);
        assert_eq!(of("wasi:cli/stdout@0.2.6"), Access::Granted);
        assert_eq!(of("wasi:clocks/wall-clock@0.2.0"), Access::Granted);
        assert_eq!(of("wasi:sockets/tcp@0.2.0"), Access::DeniedAtCall);
        assert_eq!(of("wasi:http/outgoing-handler@0.2.3"), Access::DeniedAtCall);
        assert_eq!(of("wasi:cli/stdout@0.3.0"), Access::Refused);
        assert_eq!(of("wasi:keyvalue/store@0.2.0"), Access::Refused);
        assert_eq!(of("acme:db/query"), Access::Refused);
    }
}
