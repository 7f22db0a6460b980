//! Amazon ECS facts: [`metadata`] reads the task metadata endpoint into the variables the
//! `init-*` images of aws-for-fluent-bit export (`ECS_CLUSTER`, `ECS_TASK_ID`, …,
//! firelens-aws.md §1.6), and [`var`] answers them. The start-up step that fetches them (and
//! the init files) is [`crate::startup`]; this module depends on nothing else in the router.
//!
//! The init process exports its variables into the shell that starts Fluent Bit. Here they are
//! kept beside the environment ([`var`]) and read wherever the environment is: `${NAME}` in
//! configs and the `$(ecs_*)` templates of the `cloudwatch` output. The environment wins, so a
//! value set on the container overrides what the endpoint says.

pub mod metadata;

use std::collections::BTreeMap;
use std::sync::OnceLock;

static EXPORTED: OnceLock<BTreeMap<String, String>> = OnceLock::new();

/// What `${NAME}` expands to: the environment variable, else the value exported at startup
/// from the ECS task metadata.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .or_else(|| EXPORTED.get().and_then(|vars| vars.get(name).cloned()))
}

/// Make `vars` visible through [`var`] for the rest of the process. Only the first call takes
/// effect (startup runs once); returns whether this call did.
pub fn export(vars: BTreeMap<String, String>) -> bool {
    EXPORTED.set(vars).is_ok()
}

/// The variables exported at startup (empty before [`export`]).
pub fn exported() -> BTreeMap<String, String> {
    EXPORTED.get().cloned().unwrap_or_default()
}

/// Whether `${name}` takes its value from the task metadata endpoint (exported at startup and
/// not overridden by the environment). Such values (`ECS_TASK_ID`, …) are public facts about
/// the task, not secrets, so the config expansion does not redact them from the log.
pub fn from_task_metadata(name: &str) -> bool {
    comes_from_metadata(name, std::env::var_os(name).is_some(), EXPORTED.get())
}

fn comes_from_metadata(
    name: &str,
    in_environment: bool,
    exported: Option<&BTreeMap<String, String>>,
) -> bool {
    !in_environment && exported.is_some_and(|vars| vars.contains_key(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exported_values_not_set_in_the_environment_come_from_the_metadata() {
        let exported = BTreeMap::from([("ECS_TASK_ID".to_string(), "5b1e5e4c".to_string())]);
        assert!(comes_from_metadata("ECS_TASK_ID", false, Some(&exported)));
        assert!(!comes_from_metadata("ECS_TASK_ID", true, Some(&exported)));
        assert!(!comes_from_metadata("role_arn_0", false, Some(&exported)));
        assert!(!comes_from_metadata("ECS_TASK_ID", false, None));
    }
}
