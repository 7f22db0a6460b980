//! The `aws_fluent_bit_init_*` conventions of aws-for-fluent-bit's init process
//! (`init/fluent_bit_init_process.go`, firelens-aws.md §1.6):
//!
//! * a variable whose name contains `aws_fluent_bit_init_s3` (or `_S3`) holds an S3 object ARN,
//!   `arn:aws:s3:::BUCKET/KEY`: the bucket's region is asked for (HeadBucket, then
//!   GetBucketLocation, whose empty answer means us-east-1 and `EU` eu-west-1), the object is
//!   downloaded (one retry) into the runtime directory;
//! * a variable whose name contains `aws_fluent_bit_init_file` (or `_File`) holds a path in the
//!   container, used in place;
//! * a file whose name ends in `.wasm` is a plugin: it is put into the plugin directory
//!   (`$WASM_ROUTER_PLUGIN_DIR`, else `/usr/lib/wasm-router/plugins`), where a classic
//!   `[FILTER] Name wasm` finds it by file name (`WASM_Path redact.wasm`) — the way to bring a
//!   plugin to a Fargate task without a volume or an image of one's own (new);
//! * each other file with a `[PARSER]` or `[MULTILINE_PARSER]` section is a parsers file (as `-R`);
//!   any other is `@INCLUDE`d, after the original main config, into a generated main config
//!   `main.conf`, which the router then runs.
//!
//! Where this differs from the init process: variables are taken in name order with numbers
//! compared as numbers (`_2` before `_10`), not in `os.Environ()` order; a section header must
//! start a line to count (any case; a commented-out `# [PARSER]` does not); each S3 file keeps
//! its name in a directory of its own, so two keys with the same file name do not overwrite
//! each other; the runtime directory is `$WASM_ROUTER_INIT_DIR`, else
//! `$TMPDIR/wasm-router-init-<pid>`; the S3 endpoint can be moved with `AWS_ENDPOINT_URL_S3` /
//! `AWS_ENDPOINT_URL` (path-style addressing then).

use crate::net::s3_get::{S3GetError, S3Getter};
use crate::plugin::source::MAX_PLUGIN_BYTES;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// Names containing this (`s3` or `S3`) are S3 object ARNs.
pub const S3_VARIABLE_MARKS: [&str; 2] = ["aws_fluent_bit_init_s3", "aws_fluent_bit_init_S3"];
/// Names containing this (`file` or `File`) are local paths.
pub const FILE_VARIABLE_MARKS: [&str; 2] = ["aws_fluent_bit_init_file", "aws_fluent_bit_init_File"];
/// Overrides where the generated main config and S3 downloads go.
pub const INIT_DIR_VARIABLE: &str = "WASM_ROUTER_INIT_DIR";
/// The generated main config, in the runtime directory.
pub const MAIN_CONFIG_NAME: &str = "main.conf";
/// The largest init file read or downloaded (a `.wasm` plugin may be larger: up to
/// [`crate::plugin::source::MAX_PLUGIN_BYTES`]).
pub const MAX_FILE_BYTES: usize = 16 << 20;

/// Where an init file comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// `aws_fluent_bit_init_s3_N`: an S3 object ARN.
    S3,
    /// `aws_fluent_bit_init_file_N`: a path in the container.
    File,
}

/// One `aws_fluent_bit_init_*` variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitSource {
    /// The variable's name.
    pub variable: String,
    /// Its value (an ARN or a path).
    pub value: String,
    /// Which convention.
    pub kind: SourceKind,
}

/// What a file is used as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRole {
    /// `@INCLUDE`d into the main config.
    Config,
    /// Passed as a parsers file (`-R`).
    Parsers,
}

/// An S3 object named by an ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Object {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
}

/// What the init step produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitOutcome {
    /// The generated main config to run.
    pub main_config: PathBuf,
    /// Files `@INCLUDE`d by it after the original config, in order.
    pub included: Vec<PathBuf>,
    /// Parsers files to add to `-R`, in order.
    pub parsers_files: Vec<PathBuf>,
    /// `.wasm` plugins put into the plugin directory, in order.
    pub plugins: Vec<PathBuf>,
}

/// Why the init step failed (the router does not start, as with the init process).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A variable with no value.
    #[error(
        "{variable} is set but empty; set it to {example}, or remove it from the task definition"
    )]
    Empty {
        /// The variable.
        variable: String,
        /// What a value looks like.
        example: &'static str,
    },
    /// Not `arn:aws:s3:::BUCKET/KEY`.
    #[error(
        "{variable}={value:?} is not an S3 object ARN; write it as arn:aws:s3:::BUCKET/KEY, e.g. arn:aws:s3:::my-configs/fluent-bit/extra.conf"
    )]
    BadS3Arn {
        /// The variable.
        variable: String,
        /// Its value.
        value: String,
    },
    /// The bucket's region could not be found.
    #[error(
        "{variable}={value:?}: cannot find the region of bucket {bucket:?}: {detail}; check the bucket name, and that the task role allows s3:GetBucketLocation on it"
    )]
    BucketRegion {
        /// The variable.
        variable: String,
        /// Its value.
        value: String,
        /// The bucket.
        bucket: String,
        /// The SDK's error.
        detail: String,
    },
    /// The object does not exist.
    #[error(
        "{variable}={value:?}: s3://{bucket}/{key} does not exist (NoSuchKey); upload the file, or fix the key in {variable}"
    )]
    NoSuchKey {
        /// The variable.
        variable: String,
        /// Its value.
        value: String,
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// The download failed twice.
    #[error(
        "{variable}={value:?}: cannot download {object} (region {region}): {detail}; check that the task role allows s3:GetObject on it"
    )]
    Download {
        /// The variable.
        variable: String,
        /// Its value.
        value: String,
        /// `s3://BUCKET/KEY`.
        object: String,
        /// The bucket's region.
        region: String,
        /// The SDK's error.
        detail: String,
    },
    /// A local file (or a downloaded one) cannot be read.
    #[error(
        "{variable}={value:?}: cannot read {path}: {source}; mount the file into the router container (a volume, or bake it into the image) or fix the path"
    )]
    Unreadable {
        /// The variable.
        variable: String,
        /// Its value.
        value: String,
        /// The file.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
    /// A file over [`MAX_FILE_BYTES`] (a plugin: over [`MAX_PLUGIN_BYTES`]).
    #[error(
        "{variable}={value:?}: the file is larger than {limit} bytes; {}",
        if *limit == MAX_PLUGIN_BYTES { "check that it is the right plugin" } else { "a config or parsers file is a few KiB, check that it is the right object" }
    )]
    TooLarge {
        /// The variable.
        variable: String,
        /// Its value.
        value: String,
        /// The bound it passed.
        limit: usize,
    },
    /// The main config is TOML or YAML: classic files cannot be included into it.
    #[error(
        "{variables} add Fluent Bit classic config files, but the main config {config} is not classic (TOML or YAML) and cannot @INCLUDE them; run a Fluent Bit classic (.conf) main config, or put their contents into the main config and remove the variables"
    )]
    TomlMainConfig {
        /// The init variables, comma-separated.
        variables: String,
        /// The main config.
        config: String,
    },
    /// A plugin cannot be put into the plugin directory.
    #[error(
        "{variable}: cannot write the plugin {path}: {source}; set WASM_ROUTER_PLUGIN_DIR to a directory the router can write, or run the router as a user who can write it"
    )]
    PluginDir {
        /// The variable.
        variable: String,
        /// The file.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The runtime directory or a file in it cannot be written.
    #[error("cannot write {path}: {source}; set {INIT_DIR_VARIABLE} to a writable directory")]
    Write {
        /// The file or directory.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
}

/// The init variables among `vars`, in name order with numbers compared as numbers.
pub fn sources(vars: impl IntoIterator<Item = (String, String)>) -> Vec<InitSource> {
    let mut found: Vec<InitSource> = vars
        .into_iter()
        .filter_map(|(variable, value)| {
            let kind = if S3_VARIABLE_MARKS.iter().any(|m| variable.contains(m)) {
                SourceKind::S3
            } else if FILE_VARIABLE_MARKS.iter().any(|m| variable.contains(m)) {
                SourceKind::File
            } else {
                return None;
            };
            Some(InitSource {
                variable,
                value,
                kind,
            })
        })
        .collect();
    found.sort_by(|a, b| natural_key(&a.variable).cmp(&natural_key(&b.variable)));
    found
}

/// `name_12` → `("name_", 12, "name_12")`: numbers at the end compare as numbers.
fn natural_key(name: &str) -> (&str, u64, &str) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, number) = name.split_at(name.len() - digits);
    (stem, number.parse().unwrap_or(0), name)
}

/// `arn:PARTITION:s3:::BUCKET/KEY`.
pub fn parse_s3_arn(variable: &str, value: &str) -> Result<S3Object, InitError> {
    let bad = || InitError::BadS3Arn {
        variable: variable.to_string(),
        value: value.to_string(),
    };
    let fields: Vec<&str> = value.trim().splitn(6, ':').collect();
    let [arn, partition, service, _region, _account, resource] = fields[..] else {
        return Err(bad());
    };
    if arn != "arn" || partition.is_empty() || service != "s3" {
        return Err(bad());
    }
    let (bucket, key) = resource.split_once('/').ok_or_else(bad)?;
    if bucket.is_empty() || key.is_empty() || key.ends_with('/') {
        return Err(bad());
    }
    Ok(S3Object {
        bucket: bucket.to_string(),
        key: key.to_string(),
    })
}

/// A file with a `[PARSER]` or `[MULTILINE_PARSER]` section is a parsers file.
pub fn file_role(text: &str) -> FileRole {
    let is_parser_header = |line: &str| {
        let line = line.trim_start().to_ascii_uppercase();
        line.starts_with("[PARSER]") || line.starts_with("[MULTILINE_PARSER]")
    };
    if text.lines().any(is_parser_header) {
        FileRole::Parsers
    } else {
        FileRole::Config
    }
}

/// The runtime directory: `$WASM_ROUTER_INIT_DIR`, else `$TMPDIR/wasm-router-init-<pid>`.
pub fn runtime_dir(get: impl Fn(&str) -> Option<String>) -> PathBuf {
    get(INIT_DIR_VARIABLE)
        .filter(|d| !d.trim().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("wasm-router-init-{}", std::process::id()))
        })
}

/// Process `sources` in order: download the S3 ones into `dir`, put `.wasm` plugins into
/// `plugin_dir`, sort every other file into config or parsers, and write `dir/main.conf`
/// including `original` (when given) then the config files. `task_region` (from the task
/// metadata) is where bucket regions are asked.
pub async fn run(
    sources: &[InitSource],
    original: Option<&Path>,
    dir: &Path,
    plugin_dir: &Path,
    task_region: Option<&str>,
) -> Result<InitOutcome, InitError> {
    if let Some(config) = original
        && is_toml(config)
    {
        return Err(InitError::TomlMainConfig {
            variables: sources
                .iter()
                .map(|s| s.variable.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            config: config.display().to_string(),
        });
    }
    create_private_dir(dir)?;
    let mut s3: Option<S3Getter> = None;
    let mut outcome = InitOutcome {
        main_config: dir.join(MAIN_CONFIG_NAME),
        ..Default::default()
    };
    for source in sources {
        if source.value.trim().is_empty() {
            return Err(InitError::Empty {
                variable: source.variable.clone(),
                example: match source.kind {
                    SourceKind::S3 => "an S3 object ARN (arn:aws:s3:::BUCKET/KEY)",
                    SourceKind::File => "a file path in the container",
                },
            });
        }
        let path = match source.kind {
            SourceKind::File => PathBuf::from(source.value.trim()),
            SourceKind::S3 => {
                let object = parse_s3_arn(&source.variable, &source.value)?;
                if s3.is_none() {
                    s3 = Some(S3Getter::new(task_region).await);
                }
                let s3 = s3.as_ref().expect("created above");
                let file_name = match object.key.rsplit('/').next() {
                    Some("" | "." | "..") | None => "object.conf",
                    Some(name) => name,
                };
                if is_plugin(Path::new(file_name)) {
                    let data = download(s3, source, &object, MAX_PLUGIN_BYTES).await?;
                    let path = plugin_dir.join(file_name);
                    write_plugin(source, &path, &data)?;
                    outcome.plugins.push(path);
                    continue;
                }
                let data = download(s3, source, &object, MAX_FILE_BYTES).await?;
                let target_dir = dir.join("s3").join(&source.variable);
                create_private_dir(&target_dir)?;
                let path = target_dir.join(file_name);
                write_private(&path, &data)?;
                path
            }
        };
        if is_plugin(&path) {
            check_size(source, &path, MAX_PLUGIN_BYTES)?;
            let data = std::fs::read(&path).map_err(|e| unreadable(source, &path, e))?;
            let target = plugin_dir.join(path.file_name().expect("a .wasm file name"));
            if target != path {
                write_plugin(source, &target, &data)?;
            }
            outcome.plugins.push(target);
            continue;
        }
        let text = read_bounded(source, &path)?;
        match file_role(&text) {
            FileRole::Parsers => outcome.parsers_files.push(path),
            FileRole::Config => outcome.included.push(path),
        }
    }
    let mut main = String::from(
        "# Generated at startup by wasm-router from the aws_fluent_bit_init_* variables\n# (as aws-for-fluent-bit's init process does); rewritten on every start.\n",
    );
    for path in original
        .into_iter()
        .chain(outcome.included.iter().map(PathBuf::as_path))
    {
        // The generated config lives in `dir`: a relative path (`-c fluent-bit.conf`) must
        // not be read from there.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        main.push_str(&format!("@INCLUDE {}\n", path.display()));
    }
    write_private(&outcome.main_config, main.as_bytes())?;
    Ok(outcome)
}

fn is_toml(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e == "toml") || crate::config::yaml::is_yaml(path) {
        return true;
    }
    if path.extension().is_some_and(|e| e == "conf") {
        return false;
    }
    std::fs::read_to_string(path)
        .is_ok_and(|text| !crate::topology::fluentbit::looks_classic(&text))
}

/// A `.wasm` file is a plugin.
fn is_plugin(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("wasm"))
}

/// Put a plugin into the plugin directory: readable by all (a plugin is no secret), written to
/// a temporary file and renamed, so a router reloading meanwhile never reads half a file.
fn write_plugin(source: &InitSource, path: &Path, data: &[u8]) -> Result<(), InitError> {
    let failed = |e: std::io::Error| InitError::PluginDir {
        variable: source.variable.clone(),
        path: path.display().to_string(),
        source: e,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(failed)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, data)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            failed(e)
        })
}

fn unreadable(source: &InitSource, path: &Path, e: std::io::Error) -> InitError {
    InitError::Unreadable {
        variable: source.variable.clone(),
        value: source.value.clone(),
        path: path.display().to_string(),
        source: e,
    }
}

fn read_bounded(source: &InitSource, path: &Path) -> Result<String, InitError> {
    check_size(source, path, MAX_FILE_BYTES)?;
    std::fs::read_to_string(path).map_err(|e| unreadable(source, path, e))
}

/// `TooLarge` when the file at `path` has more than `limit` bytes, before it is read.
fn check_size(source: &InitSource, path: &Path, limit: usize) -> Result<(), InitError> {
    let len = std::fs::metadata(path)
        .map_err(|e| unreadable(source, path, e))?
        .len();
    if len > limit as u64 {
        return Err(InitError::TooLarge {
            variable: source.variable.clone(),
            value: source.value.clone(),
            limit,
        });
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), InitError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| InitError::Write {
            path: dir.display().to_string(),
            source,
        })
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), InitError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(data))
        .map_err(|source| InitError::Write {
            path: path.display().to_string(),
            source,
        })
}

/// Download `object` for `source` with `s3`, mapping the getter's failures to the variable.
async fn download(
    s3: &S3Getter,
    source: &InitSource,
    object: &S3Object,
    max_bytes: usize,
) -> Result<Vec<u8>, InitError> {
    s3.get(&object.bucket, &object.key, max_bytes)
        .await
        .map_err(|e| {
            let (variable, value) = (source.variable.clone(), source.value.clone());
            match e {
                S3GetError::BucketRegion { detail } => InitError::BucketRegion {
                    variable,
                    value,
                    bucket: object.bucket.clone(),
                    detail,
                },
                S3GetError::NoSuchKey => InitError::NoSuchKey {
                    variable,
                    value,
                    bucket: object.bucket.clone(),
                    key: object.key.clone(),
                },
                S3GetError::TooLarge => InitError::TooLarge {
                    variable,
                    value,
                    limit: max_bytes,
                },
                S3GetError::Download { region, detail } => InitError::Download {
                    variable,
                    value,
                    object: format!("s3://{}/{}", object.bucket, object.key),
                    region,
                    detail,
                },
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(names: &[(&str, &str)]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn init_variables_are_found_by_name_and_ordered_by_number() {
        let found = sources(vars(&[
            ("aws_fluent_bit_init_s3_10", "arn:aws:s3:::b/k10"),
            ("PATH", "/bin"),
            ("aws_fluent_bit_init_file_1", "/f1"),
            ("aws_fluent_bit_init_S3_2", "arn:aws:s3:::b/k2"),
            ("aws_fluent_bit_init_s3_2", "arn:aws:s3:::b/k2b"),
            ("my_aws_fluent_bit_init_File", "/f"),
            ("aws_fluent_bit_init_ignore", "x"),
        ]));
        let names: Vec<_> = found
            .iter()
            .map(|s| (s.variable.as_str(), s.kind))
            .collect();
        assert_eq!(
            names,
            [
                ("aws_fluent_bit_init_S3_2", SourceKind::S3),
                ("aws_fluent_bit_init_file_1", SourceKind::File),
                ("aws_fluent_bit_init_s3_2", SourceKind::S3),
                ("aws_fluent_bit_init_s3_10", SourceKind::S3),
                ("my_aws_fluent_bit_init_File", SourceKind::File),
            ]
        );
    }

    #[test]
    fn s3_arns_parse_or_name_the_variable_and_the_fix() {
        assert_eq!(
            parse_s3_arn("v", "arn:aws:s3:::my-bucket/dir/extra.conf").unwrap(),
            S3Object {
                bucket: "my-bucket".into(),
                key: "dir/extra.conf".into()
            }
        );
        assert!(parse_s3_arn("v", "arn:aws-cn:s3:::b/k").is_ok());
        for bad in [
            "s3://b/k",
            "arn:aws:s3:::bucket-only",
            "arn:aws:s3:::b/",
            "arn:aws:ecs:::b/k",
        ] {
            let e = parse_s3_arn("aws_fluent_bit_init_s3_1", bad)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("aws_fluent_bit_init_s3_1")
                    && e.contains(bad)
                    && e.contains("arn:aws:s3:::BUCKET/KEY"),
                "{e}"
            );
        }
    }

    #[test]
    fn parser_sections_make_a_parsers_file() {
        assert_eq!(
            file_role("[PARSER]\n    Name json\n    Format json\n"),
            FileRole::Parsers
        );
        assert_eq!(
            file_role("[OUTPUT]\n  Name null\n\n  [multiline_parser]\n  name x\n"),
            FileRole::Parsers
        );
        assert_eq!(
            file_role("# [PARSER] lives in parsers.conf\n[FILTER]\n    Name grep\n"),
            FileRole::Config
        );
    }

    #[tokio::test]
    async fn local_files_are_sorted_into_includes_and_parsers() {
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join("fluent-bit.conf");
        std::fs::write(&original, "[INPUT]\n    Name forward\n").unwrap();
        let extra = dir.path().join("extra.conf");
        std::fs::write(&extra, "[OUTPUT]\n    Name null\n    Match *\n").unwrap();
        let parsers = dir.path().join("parsers.conf");
        std::fs::write(&parsers, "[PARSER]\n    Name p\n    Format json\n").unwrap();
        // Not text: a plugin, copied into the plugin directory and neither included nor parsed.
        let plugin = dir.path().join("redact.wasm");
        std::fs::write(&plugin, b"\0asm\x0d\0\x01\0\xff").unwrap();
        let sources = sources(vars(&[
            ("aws_fluent_bit_init_file_1", extra.to_str().unwrap()),
            ("aws_fluent_bit_init_file_2", parsers.to_str().unwrap()),
            ("aws_fluent_bit_init_file_3", plugin.to_str().unwrap()),
        ]));
        let run_dir = dir.path().join("run");
        let plugin_dir = dir.path().join("plugins");
        let out = run(&sources, Some(&original), &run_dir, &plugin_dir, None)
            .await
            .unwrap();
        assert_eq!(out.included, std::slice::from_ref(&extra));
        assert_eq!(out.parsers_files, [parsers]);
        assert_eq!(out.plugins, [plugin_dir.join("redact.wasm")]);
        assert_eq!(
            std::fs::read(&out.plugins[0]).unwrap(),
            std::fs::read(&plugin).unwrap()
        );
        let main = std::fs::read_to_string(&out.main_config).unwrap();
        let includes: Vec<_> = main.lines().filter(|l| l.starts_with("@INCLUDE")).collect();
        assert_eq!(
            includes,
            [
                format!("@INCLUDE {}", original.display()),
                format!("@INCLUDE {}", extra.display())
            ]
        );
    }

    #[tokio::test]
    async fn missing_files_empty_values_and_toml_main_configs_stop_startup() {
        let dir = tempfile::tempdir().unwrap();
        let missing = sources(vars(&[(
            "aws_fluent_bit_init_file_1",
            "/nonexistent/x.conf",
        )]));
        let e = run(&missing, None, dir.path(), dir.path(), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("aws_fluent_bit_init_file_1")
                && e.contains("/nonexistent/x.conf")
                && e.contains("mount the file"),
            "{e}"
        );
        let empty = sources(vars(&[("aws_fluent_bit_init_s3_1", " ")]));
        let e = run(&empty, None, dir.path(), dir.path(), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("aws_fluent_bit_init_s3_1 is set but empty"),
            "{e}"
        );
        let toml = dir.path().join("router.toml");
        std::fs::write(&toml, "[[inputs]]\n").unwrap();
        let e = run(&missing, Some(&toml), dir.path(), dir.path(), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("router.toml is not classic"), "{e}");
        let yaml = dir.path().join("fluent-bit.yaml");
        std::fs::write(&yaml, "pipeline:\n").unwrap();
        let e = run(&missing, Some(&yaml), dir.path(), dir.path(), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("fluent-bit.yaml is not classic"), "{e}");
    }
}
