//! Amazon ECS at startup, as the `init-*` images of aws-for-fluent-bit do it (firelens-aws.md
//! §1.6): [`metadata`] reads the task metadata endpoint into the variables the init process
//! exports (`ECS_CLUSTER`, `ECS_TASK_ID`, …), and [`init`] turns `aws_fluent_bit_init_s3_N` /
//! `aws_fluent_bit_init_file_N` into included configs and parser files.
//!
//! The init process exports its variables into the shell that starts Fluent Bit. Here they are
//! kept beside the environment ([`var`]) and read wherever the environment is: `${NAME}` in
//! configs and the `$(ecs_*)` templates of the `cloudwatch` output. The environment wins, so a
//! value set on the container overrides what the endpoint says.

pub mod init;
pub mod metadata;

use std::collections::BTreeMap;
use std::path::PathBuf;
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

/// A line for the router's log: startup runs before logging is set up (its level comes from
/// the config this step may generate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartupNote {
    /// Logged at INFO.
    Info(String),
    /// Logged at WARN.
    Warning(String),
}

impl StartupNote {
    /// Emit it to the router's log.
    pub fn log(&self) {
        match self {
            StartupNote::Info(text) => tracing::info!("{text}"),
            StartupNote::Warning(text) => tracing::warn!("{text}"),
        }
    }
}

/// What the router runs after the ECS step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Startup {
    /// The config to load: the generated main config when init files exist, else the one given.
    pub config: Option<PathBuf>,
    /// Parsers files (`-R`): the ones given, then those among the init files.
    pub parsers_files: Vec<PathBuf>,
    /// What to log once logging is up.
    pub notes: Vec<StartupNote>,
}

/// Why the ECS step stopped startup.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// An `aws_fluent_bit_init_*` variable could not be honoured.
    #[error(transparent)]
    Init(#[from] init::InitError),
    /// The runtime for the step could not be created.
    #[error("cannot start the runtime for the ECS startup step: {0}")]
    Runtime(std::io::Error),
}

/// On ECS (`ECS_CONTAINER_METADATA_URI_V4` set), read the task metadata and [`export`] its
/// variables; with `aws_fluent_bit_init_*` variables, fetch those files and generate the main
/// config that includes `config` and them. Blocking: call once, before the router's runtime
/// starts. With neither, returns `config` and `parsers_files` unchanged at no cost.
///
/// A metadata failure is a warning (the router starts; `${ECS_*}` then needs the environment);
/// an init failure stops startup, as it stops Fluent Bit.
pub fn prepare(
    config: Option<PathBuf>,
    parsers_files: Vec<PathBuf>,
) -> Result<Startup, StartupError> {
    let env = |name: &str| std::env::var(name).ok();
    let endpoint = metadata::endpoint_from_env(env);
    let sources = init::sources(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
    );
    let mut startup = Startup {
        config,
        parsers_files,
        notes: Vec::new(),
    };
    if endpoint.is_none() && sources.is_empty() {
        return Ok(startup);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(StartupError::Runtime)?;
    runtime.block_on(async move {
        let mut task_region = None;
        if let Some((variable, uri)) = endpoint {
            match metadata::fetch(variable, &uri).await {
                Ok(task) => {
                    task_region = Some(task.region.clone()).filter(|r| !r.is_empty());
                    let vars = task.variables();
                    let overridden: Vec<&str> = vars
                        .keys()
                        .filter(|k| std::env::var_os(k).is_some())
                        .map(String::as_str)
                        .collect();
                    startup.notes.push(StartupNote::Info(format!(
                        "ECS task metadata: cluster {:?}, task {:?}, task definition {}:{}; {} available to ${{}} and $(ecs_*){}",
                        task.cluster,
                        task.task_id,
                        task.family,
                        task.revision,
                        vars.keys().cloned().collect::<Vec<_>>().join(", "),
                        if overridden.is_empty() {
                            String::new()
                        } else {
                            format!(" (the environment's {} win)", overridden.join(", "))
                        }
                    )));
                    export(vars);
                }
                Err(e) => startup.notes.push(StartupNote::Warning(format!(
                    "ECS task metadata unavailable: {e}; ${{ECS_CLUSTER}}, ${{ECS_TASK_ID}}, … and $(ecs_*) templates need those variables in the environment (templates fall back to default_log_group_name / default_log_stream_name)"
                ))),
            }
        }
        if sources.is_empty() {
            return Ok(startup);
        }
        let dir = init::runtime_dir(env);
        let outcome =
            init::run(&sources, startup.config.as_deref(), &dir, task_region.as_deref()).await?;
        let names = sources
            .iter()
            .map(|s| s.variable.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let list = |paths: &mut dyn Iterator<Item = &PathBuf>| {
            let names: Vec<String> = paths.map(|p| p.display().to_string()).collect();
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        startup.notes.push(StartupNote::Info(format!(
            "init files from {names}: running {} (includes {}); parsers files: {}",
            outcome.main_config.display(),
            list(&mut startup.config.iter().chain(&outcome.included)),
            list(&mut outcome.parsers_files.iter()),
        )));
        startup.config = Some(outcome.main_config);
        startup.parsers_files.extend(outcome.parsers_files);
        Ok::<_, StartupError>(startup)
    })
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
