//! `[OUTPUT] Name es` and `Name opensearch` of a classic config, mapped onto the first-party
//! WASM output plugin `opensearch.wasm` (plugins/opensearch): Fluent Bit's options key for key,
//! `allow_hosts` granting exactly the configured cluster, `HTTP_User` + `HTTP_Passwd
//! ${VARIABLE}` (or `Cloud_Auth ${VARIABLE}`) as the secret `basic_auth`, and `AWS_Auth On`
//! with its `AWS_*` keys as the router's `aws_sigv4` grant ([`AwsAuthKeys`], shared with the
//! `http` output), so neither a password nor AWS credentials enter the plugin.

use super::http_output::{basic_auth_secret, grant_endpoint, is_host_name};
use super::vendors::{key_from_environment, plugin_output, switch};
use super::{Mapper, at, unknown};
use crate::config::classic::{Entry, Section};
use toml::{Table, Value};

/// The keys the mapping knows, for the unknown-key error.
const KNOWN: &str = "Host, Port, TLS, Path, Pipeline, Index, Type, Suppress_Type_Name, Logstash_Format, Logstash_Prefix, Logstash_Prefix_Separator, Logstash_Prefix_Key, Logstash_DateFormat, Time_Key, Time_Key_Format, Time_Key_Nanos, Include_Tag_Key, Tag_Key, Generate_ID, Id_Key, Write_Operation, Replace_Dots, Trace_Output, Trace_Error, Buffer_Size, compress, HTTP_User, HTTP_Passwd, Cloud_ID, Cloud_Auth, AWS_Auth, AWS_Region, AWS_Service_Name, AWS_Role_ARN, AWS_External_ID, AWS_STS_Endpoint, AWS_Profile, Match, Match_Regex, Alias, Retry_Limit, storage.total_limit_size";

/// Fluent Bit's port for `es` and `opensearch` when none is given.
const DEFAULT_PORT: u16 = 9200;

/// What the router reads of a bulk answer: all of it, so that every item's result is known
/// (Fluent Bit's `Buffer_Size` only bounds what it reads; its default is 512 KiB).
const MAX_RESPONSE_BYTES: &str = "16MiB";

/// The `AWS_*` keys of an `http`, `es` or `opensearch` output, collected at their lines and
/// turned into the output's `aws_sigv4` grant.
#[derive(Default)]
pub(super) struct AwsAuthKeys {
    auth: Option<(bool, Entry)>,
    region: Option<Entry>,
    service: Option<Entry>,
    role_arn: Option<Entry>,
    external_id: Option<Entry>,
    sts_endpoint: Option<Entry>,
    profile: Option<Entry>,
}

impl AwsAuthKeys {
    /// Takes `e` when it is one of the keys; `service_key` is the output's name for the
    /// signing service (`aws_service` in `http`, `aws_service_name` in `es`/`opensearch`).
    pub(super) fn take(&mut self, e: &Entry, service_key: &str) -> Result<bool, String> {
        let slot = match e.key.as_str() {
            "aws_auth" => {
                self.auth = Some((switch(e)?, e.clone()));
                return Ok(true);
            }
            "aws_region" => &mut self.region,
            k if k == service_key => &mut self.service,
            "aws_role_arn" => &mut self.role_arn,
            "aws_external_id" => &mut self.external_id,
            "aws_sts_endpoint" => &mut self.sts_endpoint,
            "aws_profile" => &mut self.profile,
            _ => return Ok(false),
        };
        *slot = Some(e.clone());
        Ok(true)
    }

    /// The `aws_sigv4` table with `AWS_Auth On` (`default_service` when the output has one:
    /// `es`), else `None`, with a warning for each `AWS_*` key set without it.
    pub(super) fn grant(
        self,
        mapper: &mut Mapper,
        service_key: &str,
        default_service: Option<&str>,
    ) -> Result<Option<Table>, String> {
        let others = [
            &self.region,
            &self.service,
            &self.role_arn,
            &self.external_id,
            &self.sts_endpoint,
            &self.profile,
        ];
        let on = match &self.auth {
            Some((true, e)) => e.clone(),
            _ => {
                for e in others.into_iter().flatten() {
                    mapper.warn(
                        e,
                        "is accepted and ignored: it only applies with AWS_Auth On",
                    );
                }
                return Ok(None);
            }
        };
        let mut t = Table::new();
        let region = self.region.as_ref().map(|e| e.value.trim().to_string());
        match region.filter(|r| !r.is_empty()) {
            Some(region) => t.insert("region".into(), region.into()),
            None => {
                return Err(format!(
                    "{}: AWS_Auth On needs the region of the endpoint: add `AWS_Region us-east-1` (your endpoint's region)",
                    at(&on)
                ));
            }
        };
        let service = self
            .service
            .as_ref()
            .map(|e| e.value.trim().to_string())
            .or_else(|| default_service.map(str::to_string));
        match service.filter(|s| !s.is_empty()) {
            Some(service) => t.insert("service".into(), service.into()),
            None => {
                return Err(format!(
                    "{}: AWS_Auth On needs the service to sign for: add `{service_key} execute-api` (the endpoint's SigV4 service name)",
                    at(&on)
                ));
            }
        };
        for (key, e) in [
            ("role_arn", &self.role_arn),
            ("external_id", &self.external_id),
            ("sts_endpoint", &self.sts_endpoint),
            ("profile", &self.profile),
        ] {
            if let Some(e) = e {
                t.insert(key.into(), e.value.trim().into());
            }
        }
        // Checked here, at the lines, rather than later against the generated TOML.
        let check: crate::net::sigv4::AwsSigV4Config = Value::Table(t.clone())
            .try_into()
            .map_err(|e| format!("{}: AWS_Auth: {e}", at(&on)))?;
        if let Err(problems) = check.validate("") {
            let line = [&self.external_id, &self.role_arn, &self.sts_endpoint]
                .into_iter()
                .flatten()
                .next()
                .map_or_else(|| at(&on), at);
            return Err(format!(
                "{line}: {}",
                problems
                    .join("; ")
                    .replace(".aws_sigv4", "AWS_Auth")
                    .trim_start_matches(": ")
            ));
        }
        Ok(Some(t))
    }
}

/// Elastic Cloud's `Cloud_ID` (`name:base64(host[:port]$es-id$kibana-id)`) as the
/// Elasticsearch host and port, as Fluent Bit's `extract_cloud_host` reads it.
fn cloud_host(e: &Entry) -> Result<(String, Option<u16>), String> {
    use base64::Engine as _;
    let bad = || {
        format!(
            "{}: Cloud_ID {:?} is not an Elastic Cloud ID (a placeholder left from an example?); copy it from the deployment's page: it looks like `name:dXMtZWFzdC0xLmF3cy5mb3VuZC5pbyRhYmMkZGVm`",
            at(e),
            e.value
        )
    };
    let (_, encoded) = e.value.trim().split_once(':').ok_or_else(bad)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .ok_or_else(bad)?;
    let mut parts = decoded.split('$');
    let (Some(region_host), Some(es_id)) = (parts.next(), parts.next()) else {
        return Err(bad());
    };
    let (region_host, port) = match region_host.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| bad())?)),
        None => (region_host, None),
    };
    let host = format!("{es_id}.{region_host}");
    if es_id.is_empty() || !is_host_name(&host) {
        return Err(bad());
    }
    Ok((host, port))
}

impl Mapper {
    /// `[OUTPUT] Name es` or `opensearch`: a `type = "wasm"` output running `opensearch.wasm`
    /// from the plugin directory.
    pub(super) fn opensearch_output(&mut self, s: &Section, name: &str) -> Result<(), String> {
        let mut t = plugin_output("opensearch");
        t.insert("name".into(), name.into());
        let mut config = Table::new();
        let (mut user, mut password, mut cloud_auth) =
            (None::<Entry>, None::<Entry>, None::<Entry>);
        let (mut host, mut port, mut tls, mut cloud) = (None::<String>, None::<u16>, false, None);
        let mut aws = AwsAuthKeys::default();
        for e in &s.entries {
            let key = e.key.as_str();
            match key {
                _ if self.plugin_output_key(&mut t, e) => {}
                _ if aws.take(e, "aws_service_name")? => {}
                "host" => {
                    let value = e.value.trim().to_string();
                    if !is_host_name(&value) {
                        return Err(format!(
                            "{}: Host {:?} is not a host name or address (a placeholder left from an example?); write the cluster's host alone, e.g. `Host search-logs-abc.us-east-1.es.amazonaws.com`",
                            at(e),
                            e.value
                        ));
                    }
                    host = Some(value);
                }
                "port" => {
                    port = Some(e.value.trim().parse().map_err(|_| {
                        format!("{}: Port {:?}: use a port number", at(e), e.value)
                    })?)
                }
                "tls" => tls = switch(e)?,
                "cloud_id" => cloud = Some(cloud_host(e)?),
                "cloud_auth" => cloud_auth = Some(e.clone()),
                "http_user" => user = Some(e.clone()),
                "http_passwd" => password = Some(e.clone()),
                "suppress_type_name" | "logstash_format" | "time_key_nanos" | "include_tag_key"
                | "generate_id" | "replace_dots" | "trace_output" | "trace_error" => {
                    config.insert(key.into(), switch(e)?.into());
                }
                "index" | "type" | "path" | "pipeline" | "logstash_prefix"
                | "logstash_prefix_separator" | "logstash_prefix_key" | "logstash_dateformat"
                | "time_key" | "time_key_format" | "tag_key" | "id_key" | "write_operation"
                | "compress" => {
                    config.insert(key.into(), e.value.clone().into());
                }
                "buffer_size" => {}
                "current_time_index" => {
                    if switch(e)? {
                        return Err(format!(
                            "{}: Current_Time_Index On is not supported: indexes are named from each event's time; remove it (a filter can set the time to the arrival time if that is what you need)",
                            at(e)
                        ));
                    }
                }
                "http_api_key" => {
                    return Err(format!(
                        "{}: HTTP_API_Key is not supported yet; use HTTP_User and HTTP_Passwd (the password from an environment variable)",
                        at(e)
                    ));
                }
                "upstream" => {
                    return Err(format!(
                        "{}: `upstream` (load balancing over several nodes) is not supported; point Host and Port at one node or at the cluster's load balancer",
                        at(e)
                    ));
                }
                "workers" => self.warn(e, "is accepted and ignored: the router sends each output's requests concurrently"),
                k if k.starts_with("net.") || k.starts_with("tls.") => self.warn(
                    e,
                    "is accepted and ignored: connections and TLS (certificates always checked against the system's root certificates) are the router's",
                ),
                _ => return Err(unknown(e, &format!("[OUTPUT] {name}"), KNOWN)),
            }
        }
        let mut secrets = Table::new();
        if let Some(secret) = basic_auth_secret(user.as_ref(), password.as_ref())? {
            secrets.insert("basic_auth".into(), secret.into());
        }
        if let Some(e) = &cloud_auth {
            if !secrets.is_empty() {
                return Err(format!(
                    "{}: give one credential, Cloud_Auth or HTTP_User/HTTP_Passwd, not both",
                    at(e)
                ));
            }
            if !e.value.contains(':') {
                return Err(format!(
                    "{}: Cloud_Auth is USER:PASSWORD, e.g. `Cloud_Auth ${{CLOUD_AUTH}}` with CLOUD_AUTH=elastic:…",
                    at(e)
                ));
            }
            let reference = key_from_environment(e, &["CLOUD_AUTH"], "CLOUD_AUTH")?;
            secrets.insert("basic_auth".into(), format!("basic:{reference}").into());
        }
        if !secrets.is_empty() {
            config.insert("basic_auth".into(), true.into());
        }
        let host = match (cloud, host) {
            (Some((cloud_host, cloud_port)), _) => {
                tls = true;
                port = port.or(cloud_port).or(Some(443));
                cloud_host
            }
            (None, Some(host)) => host,
            (None, None) => "127.0.0.1".into(),
        };
        let port = port.unwrap_or(DEFAULT_PORT);
        grant_endpoint(&mut t, &mut config, s, &host, port, tls)?;
        t.insert("max_response_bytes".into(), MAX_RESPONSE_BYTES.into());
        if let Some(grant) = aws.grant(self, "AWS_Service_Name", Some("es"))? {
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
