//! Checking a [`Config`]: [`Config::validate`] loops over the registry's components (pure: no
//! file, socket or plugin is touched), [`check_components`] goes as far as building would
//! short of binding sockets, opening buffers or reaching AWS (`wasm-router validate`).

use super::{Config, FilterConfig};
use crate::input::ListenAddr;
use crate::ops::metrics::{Component, Metrics};
use crate::output::OutputContext;
use crate::output::keys::Peer;

impl Config {
    /// Check what the types cannot: every error names the key and the fix.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        self.service.validate(&mut problems);
        if self.inputs.is_empty() {
            problems.push("no [[inputs]]: add one, e.g. `[[inputs]]\\ntype = \"forward\"\\nlisten = \"127.0.0.1:24224\"`".to_string());
        }
        if self.outputs.is_empty() {
            problems.push(
                "no [[outputs]]: add one, e.g. `[[outputs]]\\ntype = \"stdout\"\\nmatch = \"*\"`"
                    .to_string(),
            );
        }
        for (i, input) in self.inputs.iter().enumerate() {
            input
                .component()
                .validate(&format!("inputs[{i}]"), &mut problems);
        }
        for (i, filter) in self.filters.iter().enumerate() {
            let key = format!("filters[{i}]");
            filter.route().validate(&key, &mut problems);
            filter.component().validate(&key, &mut problems);
        }
        if let Err(p) = crate::stream::StreamProcessor::new("stream_tasks", &self.stream_tasks) {
            problems.extend(p);
        }
        check_listeners(self, &mut problems);
        let peers: Vec<Peer<'_>> = self
            .outputs
            .iter()
            .map(|o| Peer {
                id: o.id(),
                keys: o.keys(),
            })
            .collect();
        for (i, output) in self.outputs.iter().enumerate() {
            let key = format!("outputs[{i}]");
            output
                .keys()
                .validate(&key, output.id(), &peers, &mut problems);
            output
                .component()
                .validate(&key, output.id(), &mut problems);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// The ids of the filters in metrics and logs: a filter's `name`, else `<type>.<n>` with
    /// `n` counting filters of that type from 0 (Fluent Bit's instance names, e.g. `grep.0`).
    /// A filter that names itself (a WASM filter: after its plugin) has `None` here.
    pub fn filter_ids(&self) -> Vec<Option<String>> {
        let mut seen: Vec<&'static str> = Vec::new();
        self.filters
            .iter()
            .map(|f: &FilterConfig| {
                let kind = f.type_name();
                let n = seen.iter().filter(|k| **k == kind).count();
                seen.push(kind);
                match &f.route().name {
                    Some(name) => Some(name.clone()),
                    None if f.component().names_itself() => None,
                    None => Some(format!("{kind}.{n}")),
                }
            })
            .collect()
    }
}

/// What `wasm-router validate` checks beyond [`Config::validate`]: everything
/// [`Router::build`](super::Router::build) would refuse short of binding sockets, opening
/// buffers or reaching AWS. Every filter is built as `run` builds it (WASM plugins loaded,
/// schema-checked and initialised); every output runs its own check (plugins loaded, settings
/// resolved). Returns the problems and the warnings, each starting with its component's key
/// (`filters[0]`).
pub fn check_components(config: &Config) -> (Vec<String>, Vec<String>) {
    let metrics = Metrics::new();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let ids = config.filter_ids();
    for (i, id) in ids.iter().enumerate() {
        if let Err(e) = super::build::build_filter(config, i, id.as_deref(), metrics.clone()) {
            problems.push(e.to_string());
        }
    }
    for (i, output) in config.outputs.iter().enumerate() {
        let key = format!("outputs[{i}]");
        let cx = OutputContext {
            key: &key,
            name: output.keys().route.name.as_deref(),
            component: Component::output(output.id()),
            metrics: Metrics::new(),
            plugin_cache_dir: config.service.plugin_cache_dir.as_deref(),
        };
        let (p, w) = output.component().check(&cx);
        problems.extend(p);
        warnings.extend(w);
    }
    (problems, warnings)
}

/// Two listeners on one TCP address (an unspecified address such as `0.0.0.0` covers every
/// address of its port) or one unix path cannot both bind: refuse them here, not at `run`.
fn check_listeners(config: &Config, problems: &mut Vec<String>) {
    let mut listeners: Vec<(ListenAddr, String)> = Vec::new();
    for (i, input) in config.inputs.iter().enumerate() {
        for (name, addr) in input.component().listeners() {
            listeners.push((addr, format!("inputs[{i}].{name}")));
        }
    }
    if let Some(addr) = config
        .service
        .http_listen
        .as_deref()
        .and_then(|l| l.parse().ok())
    {
        listeners.push((ListenAddr::Tcp(addr), "service.http_listen".to_string()));
    }
    for (n, (later, later_key)) in listeners.iter().enumerate() {
        let clash = listeners[..n]
            .iter()
            .find(|(earlier, _)| clash(earlier, later));
        if let Some((earlier, earlier_key)) = clash {
            problems.push(format!(
                "{later_key} = {:?} clashes with {earlier_key} = {:?}: only one listener can bind it; give each a distinct address or path, or remove one",
                plain(later),
                plain(earlier)
            ));
        }
    }
}

/// An address as the config writes it: `127.0.0.1:24224` or `/var/run/fluent.sock`.
fn plain(addr: &ListenAddr) -> String {
    match addr {
        ListenAddr::Tcp(a) => a.to_string(),
        ListenAddr::Unix(p) => p.display().to_string(),
    }
}

fn clash(a: &ListenAddr, b: &ListenAddr) -> bool {
    match (a, b) {
        (ListenAddr::Tcp(a), ListenAddr::Tcp(b)) => tcp_addresses_clash(*a, *b),
        (ListenAddr::Unix(a), ListenAddr::Unix(b)) => a.components().eq(b.components()),
        _ => false,
    }
}

/// Whether two TCP listeners cannot both bind.
pub(crate) fn tcp_addresses_clash(a: std::net::SocketAddr, b: std::net::SocketAddr) -> bool {
    if a.port() != b.port() || a.port() == 0 {
        return false;
    }
    let unspecified_v6 = |x: &std::net::SocketAddr| x.is_ipv6() && x.ip().is_unspecified();
    a.ip() == b.ip()
        || (a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified()))
        // `[::]` also takes the IPv4 port unless the socket is IPv6-only (Linux default).
        || unspecified_v6(&a)
        || unspecified_v6(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_named_like_fluent_bit_instances_unless_named() {
        let text = "[[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:1\"\n\
            [[filters]]\ntype = \"grep\"\nmatch = \"*\"\nrules = [{ key = \"log\", exclude = \"x\" }]\n\
            [[filters]]\ntype = \"record_modifier\"\nmatch = \"*\"\nrecords = [{ key = \"k\", value = \"v\" }]\n\
            [[filters]]\ntype = \"grep\"\nmatch = \"*\"\nrules = [{ key = \"log\", regex = \"x\" }]\n\
            [[filters]]\ntype = \"modify\"\nname = \"tidy\"\nmatch = \"*\"\nrules = [{ remove = \"x\" }]\n\
            [[outputs]]\ntype = \"null\"\nmatch = \"*\"\n";
        let config = crate::topology::parse(text, "t.toml").unwrap();
        let ids = config.filter_ids();
        let ids: Vec<&str> = ids.iter().map(|i| i.as_deref().unwrap()).collect();
        assert_eq!(ids, ["grep.0", "record_modifier.0", "grep.1", "tidy"]);
        for (i, id) in ids.into_iter().enumerate() {
            let (built, _) =
                super::super::build::build_filter(&config, i, Some(id), Metrics::new()).unwrap();
            assert_eq!(built, id);
        }
    }
}
