//! `ecs`: append keys built from the ECS task's metadata (Fluent Bit `filter_ecs`), e.g.
//! `add = [{ key = "ecs_task_id", template = "$TaskID" }]` (classic `ADD ecs_task_id $TaskID`).
//!
//! Fluent Bit's filter asks the ECS agent's introspection endpoint (`127.0.0.1:51678`, a daemon
//! on an EC2 host) about the container whose short id is in the tag. Under FireLens the router
//! runs inside the task, so the values come from the task metadata the router already read at
//! startup ([`crate::ecs`]: the v4 endpoint, or the environment, which wins):
//!
//! | template | from |
//! |---|---|
//! | `$ClusterName` | `ECS_CLUSTER` |
//! | `$TaskARN` | `ECS_TASK_ARN` |
//! | `$TaskID` | `ECS_TASK_ID` |
//! | `$TaskDefinitionFamily` | `ECS_FAMILY` |
//! | `$TaskDefinitionVersion` | `ECS_REVISION` |
//!
//! The agent's own values (`$ContainerInstanceArn`, `$ContainerInstanceID`, `$ECSAgentVersion`)
//! and the per-container ones (`$ECSContainerName`, `$DockerContainerName`, `$ContainerID`) are
//! not in the task metadata: a template naming them is refused with what to use instead (under
//! FireLens every record already has `container_id` and `container_name`).
//!
//! The keys are rendered once, at build, and appended after the record's own keys, in order, as
//! strings. When a value a template names is unknown (not on ECS, or the endpoint failed), the
//! records pass on unchanged — Fluent Bit does the same without the agent — and each is counted
//! as `component_errors_total{reason="ecs_metadata_missing"}`; the build logs it once.

use super::{RecordFilter, Verdict};
use crate::event::Event;
use crate::event::record::{append_entries, write_str};
use crate::ops::metrics::{Metrics, ReasonLabels};
use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use std::sync::Arc;

/// `type = "ecs"` under `[[filters]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsFilterConfig {
    /// The keys appended, in order (Fluent Bit `ADD KEY TEMPLATE`).
    pub add: Vec<EcsKey>,
    /// Only the cluster's metadata: templates may name only `$ClusterName` (Fluent Bit
    /// `cluster_metadata_only`).
    #[serde(default)]
    pub cluster_metadata_only: bool,
}

/// One appended key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsKey {
    /// The record key.
    pub key: String,
    /// Its value: text with `$Name`s (`"$ClusterName/$TaskID"`).
    pub template: String,
}

/// The reason records passed on without the keys are counted under.
pub const MISSING_REASON: &str = "ecs_metadata_missing";

/// The templates' names: `(name, variable)`.
const TASK_VALUES: [(&str, &str); 5] = [
    ("ClusterName", "ECS_CLUSTER"),
    ("TaskARN", "ECS_TASK_ARN"),
    ("TaskID", "ECS_TASK_ID"),
    ("TaskDefinitionFamily", "ECS_FAMILY"),
    ("TaskDefinitionVersion", "ECS_REVISION"),
];

const AGENT_VALUES: [&str; 3] = [
    "ContainerInstanceArn",
    "ContainerInstanceID",
    "ECSAgentVersion",
];
const CONTAINER_VALUES: [&str; 3] = ["ECSContainerName", "DockerContainerName", "ContainerID"];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// The variable a `$Name` reads.
    Value(&'static str),
}

/// `template` as literal parts and values; the error names the template and the fix.
fn parse(template: &str, cluster_only: bool) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        if at > 0 {
            parts.push(Part::Literal(rest[..at].to_string()));
        }
        let after = &rest[at + 1..];
        let len = after
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(after.len());
        let name = &after[..len];
        let known = TASK_VALUES.iter().find(|(n, _)| *n == name);
        let names = || {
            TASK_VALUES
                .iter()
                .map(|(n, _)| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match known {
            Some((n, variable)) if !cluster_only || *n == "ClusterName" => {
                parts.push(Part::Value(variable))
            }
            Some(_) => {
                return Err(format!(
                    "{template:?} names ${name}, but `cluster_metadata_only` adds only $ClusterName; turn cluster_metadata_only off or remove ${name}"
                ));
            }
            None if AGENT_VALUES.contains(&name) => {
                return Err(format!(
                    "{template:?} names ${name}, which comes from the ECS agent's introspection endpoint, not the task metadata the router reads; remove it (the templates are {})",
                    names()
                ));
            }
            None if CONTAINER_VALUES.contains(&name) => {
                return Err(format!(
                    "{template:?} names ${name}, a per-container value the task metadata does not give per record; under FireLens each record already has `container_id` and `container_name` (the templates are {})",
                    names()
                ));
            }
            None => {
                return Err(format!(
                    "{template:?}: unknown `${name}`; the templates are {}",
                    names()
                ));
            }
        }
        rest = &after[len..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_string()));
    }
    Ok(parts)
}

/// The compiled filter: the entries, rendered once, or `None` when a value is unknown.
#[derive(Debug)]
pub struct EcsFilter {
    entries: Option<(Vec<u8>, usize)>,
    missing: Counter,
}

impl EcsFilterConfig {
    /// Each key's parts; errors start with the offending key (`.add[1].template: …`).
    fn parsed(&self) -> Result<Vec<(&str, Vec<Part>)>, String> {
        if self.add.is_empty() {
            return Err(
                ".add is empty; e.g. `add = [{ key = \"ecs_task_id\", template = \"$TaskID\" }]`"
                    .into(),
            );
        }
        self.add
            .iter()
            .enumerate()
            .map(|(i, k)| {
                if k.key.is_empty() {
                    return Err(format!(".add[{i}].key is empty"));
                }
                parse(&k.template, self.cluster_metadata_only)
                    .map(|parts| (k.key.as_str(), parts))
                    .map_err(|e| format!(".add[{i}].template: {e}"))
            })
            .collect()
    }
}

impl EcsFilter {
    /// Render `config` with the values `get` gives (`crate::ecs::var` when running).
    fn new(
        config: &EcsFilterConfig,
        get: impl Fn(&str) -> Option<String>,
        id: &str,
        metrics: &Arc<Metrics>,
    ) -> Result<EcsFilter, String> {
        let parsed = config.parsed()?;
        let mut entries = Vec::new();
        let mut unknown = Vec::new();
        for (key, parts) in &parsed {
            let mut value = String::new();
            for part in parts {
                match part {
                    Part::Literal(text) => value.push_str(text),
                    Part::Value(variable) => match get(variable).filter(|v| !v.is_empty()) {
                        Some(v) => value.push_str(&v),
                        None => unknown.push(*variable),
                    },
                }
            }
            write_str(&mut entries, key.as_bytes());
            write_str(&mut entries, value.as_bytes());
        }
        if !unknown.is_empty() {
            unknown.dedup();
            tracing::warn!(
                filter = id,
                unknown = %unknown.join(", "),
                "the ECS task metadata is unknown (not on ECS, or the task metadata endpoint failed at startup): records pass on without the filter's keys (counted as {MISSING_REASON})"
            );
        }
        let labels = ReasonLabels {
            component_kind: "filter",
            component_id: id.to_string(),
            reason: MISSING_REASON.into(),
        };
        Ok(EcsFilter {
            entries: unknown.is_empty().then_some((entries, parsed.len())),
            missing: metrics.errors.get_or_create(&labels).clone(),
        })
    }
}

impl RecordFilter for EcsFilter {
    fn apply(&self, event: &Event) -> Verdict {
        let Some((entries, count)) = &self.entries else {
            self.missing.inc();
            return Verdict::Keep;
        };
        match append_entries(&event.body, entries, *count) {
            Some(body) => Verdict::Replace(Event {
                time_ns: event.time_ns,
                body: Bytes::from(body),
            }),
            None => Verdict::Keep,
        }
    }
}

impl super::NativeConfig for EcsFilterConfig {
    type Filter = EcsFilter;

    fn compile(&self, id: &str, metrics: &Arc<Metrics>) -> Result<EcsFilter, String> {
        EcsFilter::new(self, crate::ecs::var, id, metrics)
    }

    /// The templates, without reading the metadata.
    fn check(&self) -> Result<(), String> {
        self.parsed().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::record::tests::{body, json};
    use crate::filter::NativeConfig as _;
    use serde_json::json;

    const ARN: &str = "arn:aws:ecs:us-west-2:111122223333:task/prod/5b1e5e4c";

    fn task(name: &str) -> Option<String> {
        Some(
            match name {
                "ECS_CLUSTER" => "prod",
                "ECS_TASK_ARN" => ARN,
                "ECS_TASK_ID" => "5b1e5e4c",
                "ECS_FAMILY" => "web",
                "ECS_REVISION" => "7",
                _ => return None,
            }
            .to_string(),
        )
    }

    fn config(text: &str) -> EcsFilterConfig {
        toml::from_str(text).unwrap()
    }

    fn apply(f: &EcsFilter, record: serde_json::Value) -> String {
        let event = Event {
            time_ns: 1,
            body: Bytes::from(body(record)),
        };
        match f.apply(&event) {
            Verdict::Replace(e) => json(&e.body),
            _ => json(&event.body),
        }
    }

    #[test]
    fn templates_render_the_task_metadata_after_the_record_keys() {
        let c = config(
            r#"add = [
                { key = "cluster", template = "$ClusterName" },
                { key = "task", template = "$TaskDefinitionFamily:$TaskDefinitionVersion" },
                { key = "where", template = "$ClusterName/$TaskID ($TaskARN)" },
            ]"#,
        );
        let metrics = Metrics::new();
        let f = EcsFilter::new(&c, task, "ecs.0", &metrics).unwrap();
        assert_eq!(
            apply(&f, json!({"log": "x"})),
            format!(
                r#"{{"log":"x","cluster":"prod","task":"web:7","where":"prod/5b1e5e4c ({ARN})"}}"#
            )
        );
        assert_eq!(apply(&f, json!("not a map")), r#""not a map""#);
    }

    #[test]
    fn unknown_metadata_leaves_records_unchanged_and_counted() {
        let c = config(r#"add = [{ key = "task", template = "$TaskID" }]"#);
        let metrics = Metrics::new();
        let f = EcsFilter::new(&c, |_| None, "ecs.0", &metrics).unwrap();
        assert_eq!(apply(&f, json!({"log": "x"})), r#"{"log":"x"}"#);
        assert_eq!(f.missing.get(), 1);
    }

    #[test]
    fn templates_the_task_metadata_cannot_give_are_refused_with_the_fix() {
        let check = |text: &str| config(text).check().unwrap_err();
        let e = check(r#"add = [{ key = "v", template = "$ECSAgentVersion" }]"#);
        assert!(
            e.starts_with(".add[0].template:") && e.contains("introspection"),
            "{e}"
        );
        let e = check(r#"add = [{ key = "c", template = "$ECSContainerName" }]"#);
        assert!(e.contains("container_name"), "{e}");
        let e = check(r#"add = [{ key = "c", template = "$Cluster" }]"#);
        assert!(
            e.contains("unknown `$Cluster`") && e.contains("$ClusterName"),
            "{e}"
        );
        let e =
            check("cluster_metadata_only = true\nadd = [{ key = \"t\", template = \"$TaskID\" }]");
        assert!(e.contains("cluster_metadata_only"), "{e}");
        assert!(
            config(
                "cluster_metadata_only = true\nadd = [{ key = \"c\", template = \"$ClusterName\" }]"
            )
            .check()
            .is_ok()
        );
        assert!(check("add = []").contains("is empty"));
    }
}
