//! `type = "cloudwatch_logs"` (also `cloudwatch`): the options of Fluent Bit's C
//! `cloudwatch_logs` and the Go `cloudwatch` plugin, validated into [`CloudWatchSettings`].

use super::batcher::{DEFAULT_MAX_EVENT_SIZE, MAX_EVENT_SIZE_LIMIT};
use super::template::NameTemplate;
use crate::config::ByteSize;
use crate::output::aws::flb_value::{opt_bool, opt_i64};
use crate::output::aws::{AwsConnectionConfig, RecordRenderer};
use serde::Deserialize;

/// Retention values PutRetentionPolicy accepts.
/// <https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html>
pub const VALID_RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// The Go plugin's fallback group when a template cannot be rendered.
pub const DEFAULT_LOG_GROUP_NAME: &str = "fluentbit-default";
/// The Go plugin's fallback stream when a template cannot be rendered.
pub const DEFAULT_LOG_STREAM_NAME: &str = "/fluentbit-default";

crate::net::aws_connection::aws_output_config! {
/// The options, as written in the config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchLogsConfig {
    /// The log group; may hold a template (`$(tag)`, `$TAG[1]`, `$(ecs_cluster)`, …).
    #[serde(default)]
    pub log_group_name: Option<String>,
    /// The log stream; may hold a template. Exactly one of this and `log_stream_prefix`.
    #[serde(default)]
    pub log_stream_name: Option<String>,
    /// Stream = this prefix + the tag.
    #[serde(default)]
    pub log_stream_prefix: Option<String>,
    /// Fluent Bit C: a record-accessor template for the group; `log_group_name` if it fails.
    #[serde(default)]
    pub log_group_template: Option<String>,
    /// Fluent Bit C: a record-accessor template for the stream; `log_stream_name` if it fails.
    #[serde(default)]
    pub log_stream_template: Option<String>,
    /// Group used when every group template fails (default `fluentbit-default`).
    #[serde(default)]
    pub default_log_group_name: Option<String>,
    /// Stream used when every stream template fails (default `/fluentbit-default`).
    #[serde(default)]
    pub default_log_stream_name: Option<String>,
    /// Send only this key's value (a string raw, anything else as JSON).
    #[serde(default)]
    pub log_key: Option<String>,
    /// Write record keys sorted (the Go plugin's JSON encoder) instead of in record order (the
    /// C plugin); a classic `Name cloudwatch` sets it.
    #[serde(default, deserialize_with = "opt_bool")]
    pub sort_keys: Option<bool>,
    /// Sent as the `x-amzn-logs-format` header, e.g. `json/emf`.
    #[serde(default)]
    pub log_format: Option<String>,
    /// Create missing log groups (default false).
    #[serde(default, deserialize_with = "opt_bool")]
    pub auto_create_group: Option<bool>,
    /// Create missing log streams (default true).
    #[serde(default, deserialize_with = "opt_bool")]
    pub auto_create_stream: Option<bool>,
    /// Retention of the groups this output creates (0 = never expire).
    #[serde(default, deserialize_with = "opt_i64")]
    pub log_retention_days: Option<i64>,
    /// Tags of the groups this output creates: `k=v,k2=v2`.
    #[serde(default)]
    pub new_log_group_tags: Option<String>,
    /// Class of the groups this output creates: `STANDARD` or `INFREQUENT_ACCESS`.
    #[serde(default)]
    pub log_group_class: Option<String>,
    /// Fluent Bit C: the port of `endpoint` when it has none.
    #[serde(default, deserialize_with = "opt_i64")]
    pub port: Option<i64>,
    /// Longest message sent (default 1,048,550 bytes = 1 MiB − 26, AWS's limit); longer ones are
    /// truncated.
    #[serde(default)]
    pub max_event_size: Option<ByteSize>,
    /// Fluent Bit C: one immediate retry on network errors. Every failure is retried with
    /// backoff here, so this has no effect (logged at startup).
    #[serde(default, deserialize_with = "opt_bool")]
    pub auto_retry_requests: Option<bool>,
    /// Fluent Bit: output threads. Requests are asynchronous here; no effect (logged).
    #[serde(default, deserialize_with = "opt_i64")]
    pub workers: Option<i64>,
    /// Text Fluent Bit appends to its User-Agent (reserved for AWS-vended configs); no effect
    /// (logged).
    #[serde(default)]
    pub extra_user_agent: Option<String>,
    /// Fluent Bit C: the EMF namespace of records from its metrics inputs (`cpu`, `mem`, …),
    /// which wasm-router does not have; no effect (logged).
    #[serde(default)]
    pub metric_namespace: Option<String>,
    /// Fluent Bit C: the EMF dimensions of records from its metrics inputs; no effect (logged).
    #[serde(default)]
    pub metric_dimensions: Option<String>,
    /// Fluent Bit C (4.x): attach the entity built from Kubernetes metadata to PutLogEvents;
    /// ECS records carry none, so no effect (logged).
    #[serde(default, deserialize_with = "opt_bool")]
    pub add_entity: Option<bool>,
    /// Go plugin: an HTTP URL returning credentials; refused with the environment variable that
    /// does the same.
    #[serde(default)]
    pub credentials_endpoint: Option<String>,
}
}

/// Where one event goes: templates tried in order, then the default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameChoice {
    /// Templates, first success wins.
    pub templates: Vec<NameTemplate>,
    /// Used when every template fails.
    pub default: String,
}

/// How stream names are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamNaming {
    /// `log_stream_prefix` + tag.
    Prefix(String),
    /// `log_stream_name` / `log_stream_template`.
    Templates(NameChoice),
}

/// A log group class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupClass {
    /// `STANDARD`.
    Standard,
    /// `INFREQUENT_ACCESS`.
    InfrequentAccess,
}

/// The validated options.
#[derive(Clone, Debug)]
pub struct CloudWatchSettings {
    /// Region, endpoint, role.
    pub connection: AwsConnectionConfig,
    /// Group names.
    pub group: NameChoice,
    /// Stream names.
    pub stream: StreamNaming,
    /// Record → message.
    pub renderer: RecordRenderer,
    /// `x-amzn-logs-format`.
    pub log_format: Option<String>,
    /// Create missing groups.
    pub auto_create_group: bool,
    /// Create missing streams.
    pub auto_create_stream: bool,
    /// Retention of created groups.
    pub retention_days: Option<i32>,
    /// Tags of created groups.
    pub group_tags: Vec<(String, String)>,
    /// Class of created groups.
    pub group_class: Option<GroupClass>,
    /// Message size cap.
    pub max_event_size: usize,
    /// Options accepted for compatibility that change nothing, for a startup note.
    pub ignored_options: Vec<&'static str>,
}

impl CloudWatchLogsConfig {
    /// Check everything that can be checked without AWS. Errors name the key and the fix.
    pub fn validate(&self) -> Result<CloudWatchSettings, String> {
        let mut problems = Vec::new();
        let endpoint = match (&self.endpoint, self.port) {
            (Some(e), Some(port))
                if !e
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .contains(':') =>
            {
                Some(format!("{}:{port}", e.trim_end_matches('/')))
            }
            (e, _) => e.clone(),
        };
        let connection = AwsConnectionConfig {
            endpoint,
            ..self.connection(None)
        };
        if let Err(e) = connection.validate() {
            problems.push(e.to_string());
        }
        let parse = |key: &str,
                     value: &Option<String>,
                     problems: &mut Vec<String>|
         -> Option<NameTemplate> {
            let value = value.as_deref()?;
            match NameTemplate::parse(value) {
                Ok(t) => Some(t),
                Err(e) => {
                    problems.push(format!("`{key}`: {e}"));
                    None
                }
            }
        };
        let group_templates: Vec<_> = [
            parse(
                "log_group_template",
                &self.log_group_template,
                &mut problems,
            ),
            parse("log_group_name", &self.log_group_name, &mut problems),
        ]
        .into_iter()
        .flatten()
        .collect();
        if self.log_group_name.is_none() && self.log_group_template.is_none() {
            problems
                .push("`log_group_name` is required, e.g. log_group_name = \"/ecs/web\"".into());
        }
        let stream = match (&self.log_stream_prefix, &self.log_stream_name) {
            (Some(_), Some(_)) => {
                problems
                    .push("set either `log_stream_name` or `log_stream_prefix`, not both".into());
                None
            }
            (Some(prefix), None) => Some(StreamNaming::Prefix(prefix.clone())),
            (None, _) => {
                let templates: Vec<_> = [
                    parse(
                        "log_stream_template",
                        &self.log_stream_template,
                        &mut problems,
                    ),
                    parse("log_stream_name", &self.log_stream_name, &mut problems),
                ]
                .into_iter()
                .flatten()
                .collect();
                if self.log_stream_name.is_none() && self.log_stream_template.is_none() {
                    problems.push(
                        "set `log_stream_name` (e.g. \"$(ecs_task_id)\") or `log_stream_prefix` (e.g. \"web-\")".into(),
                    );
                }
                Some(StreamNaming::Templates(NameChoice {
                    templates,
                    default: self
                        .default_log_stream_name
                        .clone()
                        .unwrap_or_else(|| DEFAULT_LOG_STREAM_NAME.into()),
                }))
            }
        };
        let retention_days = match self.log_retention_days {
            None | Some(0) => None,
            Some(d) if VALID_RETENTION_DAYS.contains(&d) => Some(d as i32),
            Some(d) => {
                problems.push(format!(
                    "`log_retention_days` = {d} is not a value CloudWatch accepts; use one of {VALID_RETENTION_DAYS:?}"
                ));
                None
            }
        };
        let group_class = match self
            .log_group_class
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None => None,
            Some("STANDARD") => Some(GroupClass::Standard),
            Some("INFREQUENT_ACCESS") => Some(GroupClass::InfrequentAccess),
            Some(other) => {
                problems.push(format!(
                    "`log_group_class` = {other:?}: use \"STANDARD\" or \"INFREQUENT_ACCESS\""
                ));
                None
            }
        };
        let group_tags = self
            .new_log_group_tags
            .as_deref()
            .map(parse_tags)
            .unwrap_or_default();
        let max_event_size = self
            .max_event_size
            .map(|s| s.0 as usize)
            .unwrap_or(DEFAULT_MAX_EVENT_SIZE);
        if max_event_size == 0 || max_event_size > MAX_EVENT_SIZE_LIMIT {
            problems.push(format!(
                "`max_event_size` must be between 1 and {MAX_EVENT_SIZE_LIMIT} bytes (1 MiB − 26)"
            ));
        }
        let mut ignored_options = Vec::new();
        if self.auto_retry_requests.is_some() {
            ignored_options.push("auto_retry_requests");
        }
        for (set, name) in [
            (self.workers.is_some(), "workers"),
            (self.extra_user_agent.is_some(), "extra_user_agent"),
            (self.metric_namespace.is_some(), "metric_namespace"),
            (self.metric_dimensions.is_some(), "metric_dimensions"),
            (self.add_entity.is_some(), "add_entity"),
        ] {
            if set {
                ignored_options.push(name);
            }
        }
        if let Some(url) = &self.credentials_endpoint {
            problems.push(format!(
                "`credentials_endpoint` is not supported; remove it and set AWS_CONTAINER_CREDENTIALS_FULL_URI={url} in the router's environment (the SDK reads the same JSON credentials from it)"
            ));
        }
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        Ok(CloudWatchSettings {
            connection,
            group: NameChoice {
                templates: group_templates,
                default: self
                    .default_log_group_name
                    .clone()
                    .unwrap_or_else(|| DEFAULT_LOG_GROUP_NAME.into()),
            },
            stream: stream.expect("set when there are no problems"),
            renderer: RecordRenderer {
                log_key: self.log_key.clone(),
                sort_keys: self.sort_keys.unwrap_or(false),
                ..Default::default()
            },
            log_format: self.log_format.clone(),
            auto_create_group: self.auto_create_group.unwrap_or(false),
            auto_create_stream: self.auto_create_stream.unwrap_or(true),
            retention_days,
            group_tags,
            group_class,
            max_event_size,
            ignored_options,
        })
    }
}

/// `k=v,k2=v2` → pairs; spaces trimmed, empty keys ignored, the last duplicate wins (as the Go
/// plugin's `tagKeysToMap`).
pub fn parse_tags(text: &str) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for item in text.split(',') {
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            continue;
        }
        tags.retain(|(existing, _)| existing != k);
        tags.push((k.to_string(), v.to_string()));
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CloudWatchSettings, String> {
        toml::from_str::<CloudWatchLogsConfig>(text)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn a_firelens_config_with_fluent_bit_spellings() {
        let s = parse(
            "region = \"us-east-1\"\nlog_group_name = \"/ecs/web\"\nlog_stream_prefix = \"web-\"\nauto_create_group = \"true\"\nlog_retention_days = \"7\"\nnew_log_group_tags = \"team=core, env = prod,=x\"\n",
        )
        .unwrap();
        assert!(s.auto_create_group && s.auto_create_stream);
        assert_eq!(s.retention_days, Some(7));
        assert_eq!(s.stream, StreamNaming::Prefix("web-".into()));
        assert_eq!(
            s.group_tags,
            vec![
                ("team".into(), "core".into()),
                ("env".into(), "prod".into())
            ]
        );
        assert_eq!(s.max_event_size, 1_048_550);
        assert_eq!(s.group.default, "fluentbit-default");
    }

    #[test]
    fn templates_fall_back_in_order() {
        let s = parse(
            "region = \"eu-west-1\"\nlog_group_name = \"/ecs/fallback\"\nlog_group_template = \"/ecs/$kubernetes['ns']\"\nlog_stream_name = \"$(ecs_task_id)\"\ndefault_log_stream_name = \"lost\"\n",
        )
        .unwrap();
        assert_eq!(s.group.templates.len(), 2);
        let StreamNaming::Templates(stream) = &s.stream else {
            panic!()
        };
        assert_eq!(stream.default, "lost");
    }

    #[test]
    fn every_mistake_is_named_with_its_fix() {
        let e = parse("log_stream_name = \"s\"\nlog_stream_prefix = \"p\"\nlog_retention_days = 8\nlog_group_class = \"COLD\"\nlog_stream_template = \"$(x\"\nmax_event_size = \"2MiB\"\n")
            .unwrap_err();
        for needle in [
            "`region` is required",
            "`log_group_name` is required",
            "not both",
            "log_retention_days",
            "INFREQUENT_ACCESS",
            "max_event_size",
        ] {
            assert!(e.contains(needle), "{needle} missing from:\n{e}");
        }
        let e = parse("region = \"r\"\nlog_group_name = \"g\"\nlog_stream_name = \"$(oops\"\n")
            .unwrap_err();
        assert!(
            e.contains("log_stream_name") && e.contains("closing"),
            "{e}"
        );
        let e = toml::from_str::<CloudWatchLogsConfig>("metric_namespaces = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("metric_namespaces"), "{e}");
        let e = parse("region = \"r\"\nlog_group_name = \"g\"\nlog_stream_name = \"s\"\ncredentials_endpoint = \"http://127.0.0.1:9/creds\"\n").unwrap_err();
        assert!(
            e.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:9/creds"),
            "{e}"
        );
    }

    #[test]
    fn every_documented_option_of_both_plugins_is_accepted() {
        let s = parse("region = \"r\"\nlog_group_name = \"g\"\nlog_stream_name = \"s\"\nextra_user_agent = \"ecs\"\nmetric_namespace = \"ns\"\nmetric_dimensions = \"a,b;c\"\nadd_entity = \"false\"\nsort_keys = \"On\"\nauto_retry_requests = true\nprofile = \"p\"\nlog_group_class = \"STANDARD\"\n").unwrap();
        assert_eq!(
            s.ignored_options,
            vec![
                "auto_retry_requests",
                "extra_user_agent",
                "metric_namespace",
                "metric_dimensions",
                "add_entity"
            ]
        );
        assert!(s.renderer.sort_keys);
    }

    #[test]
    fn port_is_added_to_an_endpoint_without_one() {
        let s = parse("region = \"r\"\nlog_group_name = \"g\"\nlog_stream_name = \"s\"\nendpoint = \"http://127.0.0.1\"\nport = 4566\nworkers = 2\n").unwrap();
        assert_eq!(
            s.connection.endpoint.as_deref(),
            Some("http://127.0.0.1:4566")
        );
        assert_eq!(s.ignored_options, vec!["workers"]);
    }
}
