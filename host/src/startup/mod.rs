//! The start-up step on Amazon ECS, as the `init-*` images of aws-for-fluent-bit do it
//! (firelens-aws.md §1.6), before the router's runtime starts: read the task metadata endpoint
//! ([`crate::ecs::metadata`]) and export its variables ([`crate::ecs::export`]), and turn
//! `aws_fluent_bit_init_s3_N` / `aws_fluent_bit_init_file_N` into included configs and parser
//! files ([`init_files`]).

pub mod init_files;

use crate::ecs::{export, metadata};
use init_files as init;
use std::path::PathBuf;

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
        let plugin_dir = crate::topology::fluentbit::plugin_dir();
        let outcome = init::run(
            &sources,
            startup.config.as_deref(),
            &dir,
            &plugin_dir,
            task_region.as_deref(),
        )
        .await?;
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
            "init files from {names}: running {} (includes {}); parsers files: {}; plugins: {}",
            outcome.main_config.display(),
            list(&mut startup.config.iter().chain(&outcome.included)),
            list(&mut outcome.parsers_files.iter()),
            list(&mut outcome.plugins.iter()),
        )));
        startup.config = Some(outcome.main_config);
        startup.parsers_files.extend(outcome.parsers_files);
        Ok::<_, StartupError>(startup)
    })
}
