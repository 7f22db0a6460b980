//! The AWS metadata filters: `[FILTER] Name aws` (Fluent Bit `filter_aws`) mapped onto a
//! `type = "aws"` filter (see [`crate::filter::aws`]), and `[FILTER] Name ecs` onto a
//! `type = "ecs"` filter ([`crate::filter::ecs`]). Every key is checked at its line: the on/off
//! switches, `imds_version`, `retry_interval_s`, the comma-separated `tags_include` /
//! `tags_exclude`, each `ADD KEY TEMPLATE`.

use super::filters::placement;
use super::{at, on_off, unknown};
use crate::config::classic::{Entry, Section};
use toml::{Table, Value};

const KEYS: &str = "Match, Match_Regex, Alias, imds_version, az, ec2_instance_id, ec2_instance_type, private_ip, vpc_id, ami_id, account_id, hostname, tags_enabled, tags_include, tags_exclude, retry_interval_s, enable_entity";

/// The `[[filters]]` table of the `[FILTER] Name aws` section `s`.
pub fn map(s: &Section) -> Result<Table, String> {
    let mut t = Table::new();
    t.insert("type".into(), "aws".into());
    let mut tag_lists: Vec<&Entry> = Vec::new();
    for e in &s.entries {
        if placement(&mut t, e) {
            continue;
        }
        match e.key.as_str() {
            "imds_version" => {
                let version = e.value.to_ascii_lowercase();
                if version != "v1" && version != "v2" {
                    return Err(format!(
                        "{}: imds_version {:?} is not `v1` or `v2` (Fluent Bit's two values; v2 is the default)",
                        at(e),
                        e.value
                    ));
                }
                t.insert("imds_version".into(), version.into());
            }
            "az" | "ec2_instance_id" | "ec2_instance_type" | "private_ip" | "vpc_id" | "ami_id"
            | "account_id" | "hostname" | "tags_enabled" | "enable_entity" => {
                t.insert(e.key.clone(), on_off(e)?.into());
            }
            "retry_interval_s" => {
                let seconds: i64 = e.value.parse().ok().filter(|s| *s >= 0).ok_or_else(|| {
                    format!(
                        "{}: retry_interval_s {:?} is not a whole number of seconds (e.g. `retry_interval_s 300`)",
                        at(e),
                        e.value
                    )
                })?;
                t.insert("retry_interval_s".into(), seconds.into());
            }
            "tags_include" | "tags_exclude" => {
                let keys: Vec<Value> = e
                    .value
                    .split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(Value::from)
                    .collect();
                if keys.is_empty() {
                    return Err(format!(
                        "{}: {} is empty; list tag keys separated by commas, e.g. `{} Name,team`",
                        at(e),
                        e.key,
                        e.key
                    ));
                }
                t.insert(e.key.clone(), Value::Array(keys));
                tag_lists.push(e);
            }
            _ => return Err(unknown(e, "[FILTER] aws", KEYS)),
        }
    }
    if let [first, second, ..] = tag_lists[..]
        && first.key != second.key
    {
        return Err(format!(
            "{}: [FILTER] aws: tags_include and tags_exclude cannot be combined (Fluent Bit refuses it too); keep one (the other is at {})",
            at(second),
            at(first)
        ));
    }
    if let Some(e) = tag_lists.first()
        && t.get("tags_enabled") != Some(&Value::Boolean(true))
    {
        return Err(format!(
            "{}: {} chooses among the instance tags, which are only added with `tags_enabled true`; add it to this [FILTER]",
            at(e),
            e.key
        ));
    }
    Ok(t)
}

const ECS_KEYS: &str = "Match, Match_Regex, Alias, ADD, Cluster_Metadata_Only, ECS_Tag_Prefix, ECS_Meta_Cache_TTL, ECS_Meta_Host, ECS_Meta_Port, Agent_Endpoint_Retries";

/// The `[[filters]]` table of the `[FILTER] Name ecs` section `s`; keys about the ECS agent's
/// endpoint are accepted with a warning.
pub fn map_ecs(s: &Section, warnings: &mut Vec<String>) -> Result<Table, String> {
    let mut t = Table::new();
    t.insert("type".into(), "ecs".into());
    let mut add = Vec::new();
    for e in &s.entries {
        if placement(&mut t, e) {
            continue;
        }
        match e.key.as_str() {
            "add" => {
                let Some((key, template)) = e
                    .value
                    .split_once(char::is_whitespace)
                    .filter(|(_, rest)| !rest.trim().is_empty())
                else {
                    return Err(format!(
                        "{}: ADD needs KEY TEMPLATE, e.g. `ADD ecs_task_id $TaskID`",
                        at(e)
                    ));
                };
                let entry = Table::from_iter([
                    ("key".to_string(), Value::from(key)),
                    ("template".to_string(), Value::from(template.trim())),
                ]);
                add.push((e, entry));
            }
            "cluster_metadata_only" => {
                t.insert(e.key.clone(), on_off(e)?.into());
            }
            "ecs_tag_prefix" | "ecs_meta_cache_ttl" | "ecs_meta_host" | "ecs_meta_port"
            | "agent_endpoint_retries" => warnings.push(format!(
                "{}: `{}` is accepted and ignored: the ecs filter reads the task metadata the router read at startup, not the ECS agent's endpoint",
                at(e),
                e.key
            )),
            _ => return Err(unknown(e, "[FILTER] ecs", ECS_KEYS)),
        }
    }
    if add.is_empty() {
        return Err(format!(
            "{}: [FILTER] ecs has no ADD; add e.g. `ADD ecs_task_id $TaskID`",
            s.origin
        ));
    }
    // Check each template at its line.
    let only_cluster = t.get("cluster_metadata_only") == Some(&Value::Boolean(true));
    for (e, entry) in &add {
        let config = crate::filter::ecs::EcsFilterConfig {
            add: vec![crate::filter::ecs::EcsKey {
                key: entry["key"].as_str().unwrap_or_default().to_string(),
                template: entry["template"].as_str().unwrap_or_default().to_string(),
            }],
            cluster_metadata_only: only_cluster,
        };
        if let Err(m) = crate::filter::NativeConfig::check(&config) {
            let m = m.trim_start_matches(".add[0].template: ");
            return Err(format!("{}: ADD {}: {m}", at(e), e.value));
        }
    }
    t.insert(
        "add".into(),
        Value::Array(add.into_iter().map(|(_, t)| Value::Table(t)).collect()),
    );
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::super::{Mapped, map as map_config};
    use crate::config::classic::Parser;
    use crate::topology::FilterConfig;
    use std::path::Path;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// A minimal config with `[FILTER] Name <name>` and `filter`'s lines (from line 9).
    fn mapped_filter(name: &str, filter: &str) -> Result<Mapped, String> {
        let text = format!(
            "[INPUT]\n    Name forward\n    unix_path /tmp/x.sock\n[OUTPUT]\n    Name null\n    Match *\n[FILTER]\n    Name {name}\n{filter}"
        );
        let sections = Parser::new(&no_env)
            .parse_text(&text, Path::new("main.conf"))
            .map_err(|e| e.to_string())?;
        map_config(&sections)
    }

    fn mapped(filter: &str) -> Result<Mapped, String> {
        mapped_filter("aws", filter)
    }

    fn mapped_ecs(filter: &str) -> Result<Mapped, String> {
        mapped_filter("ecs", filter)
    }

    #[test]
    fn the_fluent_bit_keys_map_onto_the_aws_filter() {
        let m = mapped(
            "    Match *\n    imds_version V1\n    az false\n    ec2_instance_type On\n    private_ip true\n    vpc_id on\n    ami_id yes\n    account_id true\n    hostname true\n    tags_enabled true\n    tags_include Name, team\n    retry_interval_s 30\n    enable_entity true\n",
        )
        .unwrap();
        let FilterConfig::Aws(a) = &m.config.filters[0] else {
            panic!("an aws filter")
        };
        assert_eq!(a.imds_version, crate::filter::aws::imds::ImdsVersion::V1);
        assert!(!a.az && a.ec2_instance_id && a.ec2_instance_type && a.private_ip);
        assert!(a.vpc_id && a.ami_id && a.account_id && a.hostname && a.enable_entity);
        assert_eq!(a.tags_include, ["Name", "team"]);
        assert_eq!(a.retry_interval_s, 30);
        // The corpus form: only Name and Match; Fluent Bit's defaults.
        let m = mapped("    Match *\n").unwrap();
        let FilterConfig::Aws(a) = &m.config.filters[0] else {
            panic!("an aws filter")
        };
        assert!(a.az && a.ec2_instance_id && !a.hostname && !a.tags_enabled);
        assert_eq!(a.retry_interval_s, 300);
    }

    #[test]
    fn mistakes_name_the_line_in_classic_terms() {
        let cases = [
            ("    imds_version v3\n", "main.conf:9:", "`v1` or `v2`"),
            (
                "    az maybe\n",
                "main.conf:9:",
                "az = \"maybe\" is not On/Off",
            ),
            (
                "    retry_interval_s 5m\n",
                "main.conf:9:",
                "whole number of seconds",
            ),
            (
                "    tags_enabled on\n    tags_include Name\n    tags_exclude env\n",
                "main.conf:11:",
                "cannot be combined",
            ),
            (
                "    tags_include Name\n",
                "main.conf:9:",
                "tags_enabled true",
            ),
            (
                "    tags_enabled on\n    tags_exclude ,\n",
                "main.conf:10:",
                "is empty",
            ),
            (
                "    zone on\n",
                "main.conf:9:",
                "unknown key `zone` in [FILTER] aws",
            ),
        ];
        for (filter, line, what) in cases {
            let e = mapped(filter).expect_err(filter);
            assert!(e.starts_with(line) && e.contains(what), "{filter}: {e}");
        }
    }

    #[test]
    fn the_ecs_filter_maps_its_add_lines_and_warns_about_the_agent_keys() {
        let m = mapped_ecs(
            "    Match *\n    ADD cluster $ClusterName\n    ADD task $TaskDefinitionFamily:$TaskDefinitionVersion\n    ECS_Tag_Prefix ecs.var.lib.docker.containers.\n",
        )
        .unwrap();
        let FilterConfig::Ecs(e) = &m.config.filters[0] else {
            panic!("an ecs filter")
        };
        let add: Vec<_> = e
            .add
            .iter()
            .map(|k| (k.key.as_str(), k.template.as_str()))
            .collect();
        assert_eq!(
            add,
            [
                ("cluster", "$ClusterName"),
                ("task", "$TaskDefinitionFamily:$TaskDefinitionVersion")
            ]
        );
        assert!(
            m.warnings[0].starts_with("main.conf:12: `ecs_tag_prefix` is accepted and ignored"),
            "{:?}",
            m.warnings
        );
        let cases = [
            ("    ADD lonely\n", "main.conf:9:", "KEY TEMPLATE"),
            (
                "    ADD v $ECSAgentVersion\n",
                "main.conf:9:",
                "introspection",
            ),
            (
                "    Cluster_Metadata_Only On\n    ADD t $TaskID\n",
                "main.conf:10:",
                "cluster_metadata_only",
            ),
            ("    Match *\n", "main.conf:7:", "has no ADD"),
            (
                "    Region x\n",
                "main.conf:9:",
                "unknown key `region` in [FILTER] ecs",
            ),
        ];
        for (filter, line, what) in cases {
            let e = mapped_ecs(filter).expect_err(filter);
            assert!(e.starts_with(line) && e.contains(what), "{filter}: {e}");
        }
    }
}
