//! The ECS task metadata that `$(ecs_task_id)`, `$(ecs_cluster)` and `$(ecs_task_arn)` expand
//! to. Read from the variables the aws-for-fluent-bit init process exports (`ECS_CLUSTER`,
//! `ECS_TASK_ARN`, `ECS_TASK_ID`); the task metadata endpoint can fill the same struct.

/// What the templates can use; a missing value makes the template fail (→ the default name).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EcsMetadata {
    /// The cluster name (not its ARN).
    pub cluster: Option<String>,
    /// The task ARN.
    pub task_arn: Option<String>,
    /// The task id: the last segment of the task ARN.
    pub task_id: Option<String>,
}

impl EcsMetadata {
    /// From `ECS_CLUSTER`, `ECS_TASK_ARN` and `ECS_TASK_ID` (the id derived from the ARN when
    /// only the ARN is set; a cluster ARN reduced to its name).
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From a variable lookup (testable without touching the process environment).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let task_arn = non_empty("ECS_TASK_ARN");
        let task_id = non_empty("ECS_TASK_ID").or_else(|| {
            task_arn
                .as_deref()
                .and_then(|arn| arn.rsplit('/').next())
                .map(str::to_string)
        });
        let cluster =
            non_empty("ECS_CLUSTER").map(|c| c.rsplit('/').next().unwrap_or(&c).to_string());
        EcsMetadata {
            cluster,
            task_arn,
            task_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_id_comes_from_the_arn_when_not_given() {
        let vars = |name: &str| match name {
            "ECS_TASK_ARN" => {
                Some("arn:aws:ecs:us-east-1:111122223333:task/prod/0123abcd".to_string())
            }
            "ECS_CLUSTER" => Some("arn:aws:ecs:us-east-1:111122223333:cluster/prod".to_string()),
            _ => None,
        };
        let m = EcsMetadata::from_vars(vars);
        assert_eq!(m.task_id.as_deref(), Some("0123abcd"));
        assert_eq!(m.cluster.as_deref(), Some("prod"));
        assert_eq!(EcsMetadata::from_vars(|_| None), EcsMetadata::default());
    }
}
