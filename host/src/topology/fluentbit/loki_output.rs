//! `[OUTPUT] Name loki` of a classic config, mapped onto the first-party WASM output plugin
//! `loki.wasm` (plugins/loki): Fluent Bit's options key for key, `allow_hosts` granting exactly
//! the configured Loki, and `HTTP_User` + `HTTP_Passwd ${VARIABLE}` as the secret
//! `basic_auth = "basic:USER:env:VARIABLE"`, so the password never enters the plugin.

use super::http_output::{basic_auth_secret, grant_endpoint, is_host_name};
use super::vendors::{plugin_output, switch};
use super::{Mapper, at, unknown};
use crate::config::classic::{Entry, Section};
use toml::{Table, Value};

/// The keys the mapping knows, for the unknown-key error.
const KNOWN: &str = "Host, Port, URI, TLS, labels, label_keys, remove_keys, line_format, drop_single_key, tenant_id, HTTP_User, HTTP_Passwd, compress, auto_kubernetes_labels (off), Match, Match_Regex, Alias, Retry_Limit, storage.total_limit_size";

/// Fluent Bit's `loki` port when none is given.
const DEFAULT_PORT: u16 = 3100;

impl Mapper {
    /// `[OUTPUT] Name loki`: a `type = "wasm"` output running `loki.wasm` from the plugin
    /// directory.
    pub(super) fn loki_output(&mut self, s: &Section) -> Result<(), String> {
        let mut t = plugin_output("loki");
        let mut config = Table::new();
        let (mut user, mut password) = (None::<Entry>, None::<Entry>);
        let (mut host, mut port, mut tls) = ("127.0.0.1".to_string(), DEFAULT_PORT, false);
        for e in &s.entries {
            let key = e.key.as_str();
            match key {
                _ if self.plugin_output_key(&mut t, e) => {}
                "host" => {
                    host = e.value.trim().to_string();
                    if !is_host_name(&host) {
                        return Err(format!(
                            "{}: Host {:?} is not a host name or address (a placeholder left from an example?); write Loki's host alone, e.g. `Host logs-prod-us-west2.grafana.net`",
                            at(e),
                            e.value
                        ));
                    }
                }
                "port" => {
                    port = e.value.trim().parse().map_err(|_| {
                        format!("{}: Port {:?}: use a port number", at(e), e.value)
                    })?
                }
                "tls" => tls = switch(e)?,
                "uri" | "labels" | "label_keys" | "remove_keys" | "line_format"
                | "drop_single_key" | "tenant_id" | "compress" => {
                    config.insert(key.into(), e.value.clone().into());
                }
                "http_user" => user = Some(e.clone()),
                "http_passwd" => password = Some(e.clone()),
                "auto_kubernetes_labels" => {
                    if switch(e)? {
                        return Err(format!(
                            "{}: auto_kubernetes_labels is not supported yet (ECS records carry no kubernetes map); name the labels in `labels` or `label_keys`",
                            at(e)
                        ));
                    }
                }
                "bearer_token" | "tenant_id_key" | "label_map_path" | "structured_metadata"
                | "structured_metadata_map_keys" | "structured_metadata_map_keys_values" => {
                    return Err(format!(
                        "{}: `{}` is not supported yet by the loki output; remove it (for credentials, use HTTP_User/HTTP_Passwd)",
                        at(e),
                        e.key
                    ));
                }
                "workers" => self.warn(e, "is accepted and ignored: the router sends each output's requests concurrently"),
                k if k.starts_with("net.") || k.starts_with("tls.") || k.starts_with("http.") => self.warn(
                    e,
                    "is accepted and ignored: connections, timeouts and TLS (with the system's root certificates) are the router's",
                ),
                _ => return Err(unknown(e, "[OUTPUT] loki", KNOWN)),
            }
        }
        let mut secrets = Table::new();
        if let Some(secret) = basic_auth_secret(user.as_ref(), password.as_ref())? {
            secrets.insert("basic_auth".into(), secret.into());
            config.insert("basic_auth".into(), true.into());
        }
        grant_endpoint(&mut t, &mut config, s, &host, port, tls)?;
        if !secrets.is_empty() {
            t.insert("secrets".into(), Value::Table(secrets));
        }
        t.insert("config".into(), Value::Table(config));
        self.outputs.push((t, Vec::new()));
        Ok(())
    }
}
