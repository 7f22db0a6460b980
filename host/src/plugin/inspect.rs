//! What a plugin component imports and exports, from wasmtime's component type introspection
//! (for `wasm-router plugin inspect`).

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
