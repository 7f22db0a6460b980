//! `[OUTPUT] Name http` of a classic config, mapped onto the first-party WASM output plugin
//! `http.wasm` (plugins/http): Fluent Bit's options key for key, `allow_hosts` granting exactly
//! the configured endpoint, and `HTTP_Passwd ${VARIABLE}` as the secret
//! `basic_auth = "basic:USER:env:VARIABLE"`, so the password never enters the plugin; `aws_auth
//! On` with its `aws_*` keys becomes the router's `aws_sigv4` grant (the router signs).

use super::opensearch_output::AwsAuthKeys;
use super::vendors::{key_from_environment, plugin_output, switch, url_origin};
use super::{Mapper, at, unknown};
use crate::config::classic::{Entry, Section};
use toml::{Table, Value};

/// The keys the mapping knows, for the unknown-key error.
const KNOWN: &str = "Host, Port, URI, TLS, Format, Header, Header_Tag, HTTP_Method, HTTP_User, HTTP_Passwd, compress, json_date_key, json_date_format, allow_duplicated_headers, log_response_payload, aws_auth, aws_region, aws_service, aws_role_arn, aws_external_id, aws_sts_endpoint, aws_profile, Match, Match_Regex, Alias, Retry_Limit, storage.total_limit_size";

/// `HTTP_User` and `HTTP_Passwd ${VARIABLE}` as the secret reference
/// `basic:USER:env:VARIABLE`; `None` without either; an error at the line of a lone one.
pub(super) fn basic_auth_secret(
    user: Option<&Entry>,
    password: Option<&Entry>,
) -> Result<Option<String>, String> {
    match (user, password) {
        (None, None) => Ok(None),
        (Some(user), Some(password)) => {
            if user.value.contains(':') || user.value.is_empty() {
                return Err(format!(
                    "{}: HTTP_User {:?}: basic auth cannot carry an empty user or a `:` in it",
                    at(user),
                    user.value
                ));
            }
            let reference = key_from_environment(password, &["HTTP_PASSWD"], "HTTP_PASSWD")?;
            Ok(Some(format!("basic:{}:{reference}", user.value)))
        }
        (Some(e), None) | (None, Some(e)) => Err(format!(
            "{}: basic auth needs both HTTP_User and HTTP_Passwd (the password from an environment variable, e.g. `HTTP_Passwd ${{HTTP_PASSWD}}`)",
            at(e)
        )),
    }
}

/// `host`, `port` and `tls` into a plugin's `config`, and into the output `t` an `allow_hosts`
/// granting exactly `scheme://host[:port]` (the port only when it is not the scheme's).
pub(super) fn grant_endpoint(
    t: &mut Table,
    config: &mut Table,
    s: &Section,
    host: &str,
    port: u16,
    tls: bool,
) -> Result<(), String> {
    config.insert("host".into(), host.into());
    config.insert("port".into(), i64::from(port).into());
    config.insert("tls".into(), tls.into());
    let scheme = if tls { "https" } else { "http" };
    let url = if port == if tls { 443 } else { 80 } {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}:{port}")
    };
    let allow = url_origin(&url)
        .ok_or_else(|| format!("{}: Host {host:?} is not a host name", s.origin))?;
    t.insert("allow_hosts".into(), Value::Array(vec![allow.into()]));
    Ok(())
}

/// A DNS name, an IPv4 address, or an IPv6 address in brackets.
pub(super) fn is_host_name(host: &str) -> bool {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl Mapper {
    /// `[OUTPUT] Name http`: a `type = "wasm"` output running `http.wasm` from the plugin
    /// directory.
    pub(super) fn http_output(&mut self, s: &Section) -> Result<(), String> {
        let mut t = plugin_output("http");
        let mut config = Table::new();
        let mut headers = Vec::new();
        let (mut user, mut password) = (None::<Entry>, None::<Entry>);
        let (mut host, mut port, mut tls) = ("127.0.0.1".to_string(), None::<u16>, false);
        let mut aws = AwsAuthKeys::default();
        for e in &s.entries {
            let key = e.key.as_str();
            match key {
                _ if self.plugin_output_key(&mut t, e) => {}
                _ if aws.take(e, "aws_service")? => {}
                "host" => {
                    host = e.value.trim().to_string();
                    if !is_host_name(&host) {
                        return Err(format!(
                            "{}: Host {:?} is not a host name or address (a placeholder left from an example?); write the endpoint's host alone, e.g. `Host logs.example.com` (the path goes in URI)",
                            at(e),
                            e.value
                        ));
                    }
                }
                "port" => {
                    port = Some(e.value.trim().parse().map_err(|_| {
                        format!("{}: Port {:?}: use a port number", at(e), e.value)
                    })?)
                }
                "tls" => tls = switch(e)?,
                "uri" | "format" | "compress" | "json_date_key" | "json_date_format"
                | "header_tag" | "http_method" => {
                    if key == "format" && e.value.eq_ignore_ascii_case("gelf") {
                        return Err(format!(
                            "{}: Format gelf is not supported yet; use json_lines (or json), or Fluent Bit's gelf output",
                            at(e)
                        ));
                    }
                    config.insert(key.into(), e.value.clone().into());
                }
                "allow_duplicated_headers" | "log_response_payload" => {
                    config.insert(key.into(), switch(e)?.into());
                }
                "header" => headers.push(Value::String(e.value.clone())),
                "http_user" => user = Some(e.clone()),
                "http_passwd" => password = Some(e.clone()),
                k if k.starts_with("gelf_") => {
                    return Err(format!(
                        "{}: `{}` is not supported yet, as the gelf format; remove it",
                        at(e),
                        e.key
                    ));
                }
                k if k.starts_with("oauth2.") || k == "body_key" || k == "headers_key" => {
                    return Err(format!(
                        "{}: `{}` is not supported yet by the http output; remove it (for a token, use HTTP_User/HTTP_Passwd or a Header)",
                        at(e),
                        e.key
                    ));
                }
                "proxy" => {
                    return Err(format!(
                        "{}: `proxy` is not supported: the router connects to the endpoint itself; point Host and Port at the proxy instead",
                        at(e)
                    ));
                }
                "workers" => self.warn(e, "is accepted and ignored: the router sends each output's requests concurrently"),
                k if k.starts_with("net.") || k.starts_with("tls.") || k.starts_with("http.") => self.warn(
                    e,
                    "is accepted and ignored: connections, timeouts and TLS (with the system's root certificates) are the router's",
                ),
                _ => return Err(unknown(e, "[OUTPUT] http", KNOWN)),
            }
        }
        let mut secrets = Table::new();
        if let Some(secret) = basic_auth_secret(user.as_ref(), password.as_ref())? {
            secrets.insert("basic_auth".into(), secret.into());
            config.insert("basic_auth".into(), true.into());
        }
        config.insert("host".into(), host.clone().into());
        config.insert("tls".into(), tls.into());
        if let Some(port) = port {
            config.insert("port".into(), i64::from(port).into());
        }
        if !headers.is_empty() {
            config.insert("header".into(), Value::Array(headers));
        }
        let scheme = if tls { "https" } else { "http" };
        let url = match port {
            Some(p) if p != if tls { 443 } else { 80 } => format!("{scheme}://{host}:{p}"),
            _ => format!("{scheme}://{host}"),
        };
        let allow = url_origin(&url)
            .ok_or_else(|| format!("{}: Host {host:?} is not a host name", s.origin))?;
        t.insert("allow_hosts".into(), Value::Array(vec![allow.into()]));
        if let Some(grant) = aws.grant(self, "aws_service", None)? {
            t.insert("aws_sigv4".into(), Value::Table(grant));
        }
        if !secrets.is_empty() {
            t.insert("secrets".into(), Value::Table(secrets));
        }
        t.insert("config".into(), Value::Table(config));
        self.outputs.push((t, Vec::new()));
        Ok(())
    }
}
