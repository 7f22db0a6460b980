//! `[OUTPUT] datadog` and `[OUTPUT] newrelic` / `nrlogs` of a classic config, mapped onto the
//! first-party WASM output plugins (`datadog.wasm`, `newrelic.wasm`) with the grants they need.

use super::{Mapper, at, buffer, coerce, unknown};
use crate::config::classic::{Entry, Section};
use toml::{Table, Value};

/// Where the image installs the first-party output plugins (`datadog.wasm`, `newrelic.wasm`);
/// the environment variable [`PLUGIN_DIR_VAR`] overrides it.
pub const DEFAULT_PLUGIN_DIR: &str = "/usr/lib/wasm-router/plugins";

/// The environment variable naming another plugin directory.
pub const PLUGIN_DIR_VAR: &str = "WASM_ROUTER_PLUGIN_DIR";

/// Datadog's Logs intake host for the default site.
const DATADOG_DEFAULT_HOST: &str = "http-intake.logs.datadoghq.com";

/// The New Relic Log API endpoints by region, as the plugin's `region` names them.
const NEW_RELIC_REGIONS: [(&str, &str); 3] = [
    ("US", "https://log-api.newrelic.com/log/v1"),
    ("EU", "https://log-api.eu.newrelic.com/log/v1"),
    ("FedRAMP", "https://gov-log-api.newrelic.com/log/v1"),
];

/// `scheme://host[:port]` of an `http(s)` URL (what `allow_hosts` grants).
pub(super) fn url_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (matches!(scheme, "http" | "https") && !authority.is_empty())
        .then(|| format!("{scheme}://{authority}"))
}

/// The `env:NAME` secret reference for a key given as `${NAME}`: the environment variable
/// holding exactly the (expanded) value, `preferred` names first. The key itself never goes
/// into the config, so it reaches only the router's secrets table, not the plugin.
pub(super) fn key_from_environment(
    e: &Entry,
    preferred: &[&str],
    example: &str,
) -> Result<String, String> {
    let wanted = std::ffi::OsStr::new(&e.value);
    let found = preferred
        .iter()
        .map(|name| std::ffi::OsString::from(*name))
        .chain({
            let mut names: Vec<std::ffi::OsString> =
                std::env::vars_os().map(|(name, _)| name).collect();
            names.sort();
            names
        })
        .find(|name| !e.value.is_empty() && std::env::var_os(name).as_deref() == Some(wanted));
    match found.and_then(|name| name.into_string().ok()) {
        Some(name) => Ok(format!("env:{name}")),
        None => Err(format!(
            "{}: `{}` must come from an environment variable, e.g. `{} ${{{example}}}` with {example} set in the router's environment (on ECS, a `secrets` entry of the container definition): the router injects the key into the request itself, so it never enters the plugin",
            at(e),
            e.key,
            e.key
        )),
    }
}

/// An on/off option of a plugin output (`On`, `true`, `yes` or their opposites).
pub(super) fn switch(e: &Entry) -> Result<bool, String> {
    match coerce(&e.value) {
        Value::Boolean(b) => Ok(b),
        _ => Err(format!(
            "{}: `{}` {:?}: use on or off",
            at(e),
            e.key,
            e.value
        )),
    }
}

impl Mapper {
    /// The keys every plugin output shares with Fluent Bit's outputs — `Name`, `Alias`,
    /// `Match`, `Match_Regex`, `Retry_Limit`, `storage.total_limit_size` — into `t`. False when
    /// `e` is none of them.
    pub(super) fn plugin_output_key(&mut self, t: &mut Table, e: &Entry) -> bool {
        match e.key.as_str() {
            "name" => {}
            "alias" => {
                t.insert("name".into(), e.value.clone().into());
            }
            "match" | "match_regex" => {
                t.insert(e.key.clone(), e.value.clone().into());
            }
            "retry_limit" => self.retry_limit_into(t, "retry_limit", e),
            "storage.total_limit_size" => {
                buffer(t).insert("max_bytes".into(), e.value.clone().into());
            }
            _ => return false,
        }
        true
    }
}

/// The plugin directory: `$WASM_ROUTER_PLUGIN_DIR`, else [`DEFAULT_PLUGIN_DIR`].
pub fn plugin_dir() -> std::path::PathBuf {
    std::env::var_os(PLUGIN_DIR_VAR)
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| DEFAULT_PLUGIN_DIR.into())
}

/// A `type = "wasm"` output named `plugin` running `plugin.wasm` from the plugin directory.
pub(super) fn plugin_output(plugin: &str) -> Table {
    let dir = plugin_dir();
    let mut t = Table::new();
    t.insert("type".into(), "wasm".into());
    t.insert("name".into(), plugin.into());
    t.insert(
        "path".into(),
        dir.join(format!("{plugin}.wasm"))
            .display()
            .to_string()
            .into(),
    );
    t
}

impl Mapper {
    /// `[OUTPUT] Name datadog`, `newrelic` (newrelic-fluent-bit-output) or `nrlogs`: a
    /// `type = "wasm"` output running the first-party plugin from the plugin directory, its
    /// Fluent Bit options mapped onto the plugin's config, the intake granted in
    /// `allow_hosts`, and the key as a secret read from the variable it came from.
    pub(super) fn vendor_output(&mut self, s: &Section, name: &str) -> Result<(), String> {
        let vendor = if name == "datadog" {
            "datadog"
        } else {
            "newrelic"
        };
        let mut t = plugin_output(vendor);
        let mut config = Table::new();
        let mut secrets = Table::new();
        let mut headers = Table::new();
        let (mut host, mut port, mut tls) = (None::<String>, None::<u16>, None::<(bool, Entry)>);
        let mut endpoint = None::<String>;
        let text = |e: &Entry| Value::String(e.value.clone());
        let number = |e: &Entry| {
            e.value
                .parse::<i64>()
                .map(Value::Integer)
                .map_err(|_| format!("{}: `{}` {:?}: use a number", at(e), e.key, e.value))
        };
        for e in &s.entries {
            let key = e.key.as_str();
            match (vendor, key) {
                _ if self.plugin_output_key(&mut t, e) => {}
                (_, "proxy") => {
                    return Err(format!(
                        "{}: `proxy` is not supported: the router connects to the intake itself; point the output at the proxy instead ({})",
                        at(e),
                        if vendor == "datadog" { "Host, Port and TLS" } else { "endpoint" }
                    ));
                }
                (_, "workers") => self.warn(e, "is accepted and ignored: the router sends each output's requests concurrently"),
                (_, k) if k.starts_with("net.") || k.starts_with("tls.") || (k == "tls" && vendor == "newrelic") => self.warn(
                    e,
                    "is accepted and ignored: connections and TLS (with the system's root certificates) are the router's",
                ),
                ("datadog", "host") => host = Some(e.value.clone()),
                ("datadog", "port") => {
                    port = Some(e.value.parse().map_err(|_| {
                        format!("{}: Port {:?}: use a port number", at(e), e.value)
                    })?)
                }
                ("datadog", "tls") => tls = Some((switch(e)?, e.clone())),
                ("datadog", "apikey") => {
                    secrets.insert(
                        "api_key".into(),
                        key_from_environment(e, &["DD_API_KEY", "DATADOG_API_KEY"], "DD_API_KEY")?
                            .into(),
                    );
                }
                ("datadog", "include_tag_key") => {
                    config.insert(key.into(), switch(e)?.into());
                }
                (
                    "datadog",
                    "compress" | "provider" | "json_date_key" | "tag_key" | "dd_service"
                    | "dd_source" | "dd_tags" | "dd_message_key" | "dd_hostname",
                ) => {
                    config.insert(key.into(), text(e));
                }
                ("datadog", "header") => {
                    let Some((header, value)) = e.value.trim().split_once(char::is_whitespace)
                    else {
                        return Err(format!(
                            "{}: header {:?}: write the name, a space, then the value",
                            at(e),
                            e.value
                        ));
                    };
                    headers.insert(header.into(), value.trim().into());
                }
                ("newrelic", "endpoint" | "base_uri") => endpoint = Some(e.value.clone()),
                ("newrelic", "apikey" | "api_key" | "licensekey" | "license_key") => {
                    let secret = if key.starts_with("license") { "license_key" } else { "api_key" };
                    if !secrets.is_empty() {
                        return Err(format!(
                            "{}: give one key, the API key or the license key, not both",
                            at(e)
                        ));
                    }
                    let example = if secret == "license_key" {
                        "NEW_RELIC_LICENSE_KEY"
                    } else {
                        "NEW_RELIC_API_KEY"
                    };
                    secrets.insert(
                        secret.into(),
                        key_from_environment(
                            e,
                            &[example, "NEW_RELIC_LICENSE_KEY", "NEW_RELIC_API_KEY", "NRIA_LICENSE_KEY"],
                            example,
                        )?
                        .into(),
                    );
                    config.insert("auth".into(), secret.into());
                }
                ("newrelic", "compress") => {
                    config.insert(key.into(), text(e));
                }
                ("newrelic", "maxrecords") => {
                    config.insert("max_records".into(), number(e)?);
                }
                ("newrelic", "maxbuffersize") => {
                    config.insert("max_payload_bytes".into(), number(e)?);
                }
                (
                    "newrelic",
                    "ignoresystemproxy" | "cabundlefile" | "cabundledir" | "validateproxycerts"
                    | "maxtimebetweenflushes" | "sendmetrics",
                ) => self.warn(
                    e,
                    "is accepted and ignored: connections, TLS and batching are the router's",
                ),
                ("datadog", _) => return Err(unknown(e, "[OUTPUT] datadog", "Host, Port, TLS, apikey, compress, provider, json_date_key, include_tag_key, tag_key, dd_service, dd_source, dd_tags, dd_message_key, dd_hostname, header, Match, Match_Regex, Alias, Retry_Limit, storage.total_limit_size")),
                (_, _) => return Err(unknown(e, &format!("[OUTPUT] {name}"), "endpoint (base_uri), apiKey (api_key), licenseKey (license_key), compress, maxRecords, maxBufferSize, Match, Match_Regex, Alias, Retry_Limit, storage.total_limit_size")),
            }
        }
        if secrets.is_empty() {
            return Err(format!(
                "{}: output `{name}` needs its key: {}",
                s.origin,
                if vendor == "datadog" {
                    "apikey ${DD_API_KEY}"
                } else {
                    "licenseKey ${NEW_RELIC_LICENSE_KEY} (or apiKey ${NEW_RELIC_API_KEY})"
                }
            ));
        }
        let allow = if vendor == "datadog" {
            let host = host.unwrap_or_else(|| DATADOG_DEFAULT_HOST.into());
            match host.strip_prefix("http-intake.logs.") {
                Some(site) if port.is_none_or(|p| p == 443) => {
                    if let Some((false, e)) = &tls {
                        self.warn(
                            e,
                            "off is ignored: Datadog's intake is always reached over TLS; remove the key",
                        );
                    }
                    config.insert("site".into(), site.into());
                    format!("https://{host}")
                }
                _ => {
                    let tls = tls.is_some_and(|(on, _)| on);
                    let scheme = if tls { "https" } else { "http" };
                    let url = match port {
                        Some(p) if p != if tls { 443 } else { 80 } => {
                            format!("{scheme}://{host}:{p}")
                        }
                        _ => format!("{scheme}://{host}"),
                    };
                    config.insert("url".into(), url.clone().into());
                    url
                }
            }
        } else {
            match endpoint {
                None => NEW_RELIC_REGIONS[0].1.into(),
                Some(url) => {
                    match NEW_RELIC_REGIONS
                        .iter()
                        .find(|(_, known)| *known == url.trim_end_matches('/'))
                    {
                        Some((region, _)) => {
                            config.insert("region".into(), (*region).into());
                        }
                        None => {
                            config.insert("base_uri".into(), url.clone().into());
                        }
                    }
                    url
                }
            }
        };
        let allow = url_origin(&allow)
            .ok_or_else(|| format!("{}: {allow:?} is not an http:// or https:// URL", s.origin))?;
        if !headers.is_empty() {
            config.insert("header".into(), Value::Table(headers));
        }
        t.insert("allow_hosts".into(), Value::Array(vec![allow.into()]));
        t.insert("secrets".into(), Value::Table(secrets));
        t.insert("config".into(), Value::Table(config));
        self.outputs.push((t, Vec::new()));
        Ok(())
    }
}
