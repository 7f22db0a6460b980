//! `wasm-router plugin inspect FILE` (what a plugin says about itself, what it imports and
//! exports), `wasm-router plugin compile FILE [-o OUT]` (fill the compile cache ahead of
//! time, e.g. while building an image, or write the precompiled artifact) and
//! `wasm-router plugin new NAME --kind filter|output` ([`new`]: write a plugin project).

pub mod new;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use wasm_router::plugin::cache::CacheOutcome;
use wasm_router::plugin::inspect::{self, Item};
use wasm_router::plugin::{ArtifactCache, LoadedPlugin, PluginEngine};

/// Arguments of `wasm-router plugin`.
#[derive(Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Write a new plugin project (from the repository's templates) that builds and passes
    /// `wasm-router test` as written.
    New {
        /// The plugin's name: its package, its `.wasm` file and its id in the router.
        name: String,
        /// A filter or an output plugin.
        #[arg(long, value_enum)]
        kind: new::Kind,
        /// The project's language.
        #[arg(long, value_enum, default_value_t)]
        lang: new::Lang,
        /// Where to write it (default: `./NAME`); must not exist yet.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Show a plugin's name, version, kind, description, config schema, requested hosts and
    /// secrets, and the component's imports and exports.
    Inspect {
        /// The plugin component (`.wasm`).
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Compile a plugin into the router's compile cache (the directory `run` uses), or with
    /// `-o` write the precompiled artifact (`.cwasm`) to a file.
    Compile {
        /// The plugin component (`.wasm`).
        file: PathBuf,
        /// Write the precompiled artifact here instead of into the cache. The router itself
        /// only loads artifacts from its own cache; this file is for inspection or for a
        /// tool that embeds wasmtime 48 with the same engine settings.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// The cache directory (default: the one `run` uses without `[service] plugin_cache_dir`).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
}

/// Run `wasm-router plugin …`.
pub fn run(args: PluginArgs) -> anyhow::Result<std::process::ExitCode> {
    match args.command {
        PluginCommand::New {
            name,
            kind,
            lang,
            dir,
        } => new::run(&name, kind, lang, dir),
        PluginCommand::Inspect { file, json } => inspect(file, json),
        PluginCommand::Compile {
            file,
            output,
            cache_dir,
        } => compile(file, output, cache_dir),
    }
}

/// The plugin at `file` (a path or a URL: `s3://`, `https://`, `oci://`) and its bytes.
fn load(file: &Path, cache: &ArtifactCache) -> anyhow::Result<(LoadedPlugin, Vec<u8>)> {
    let (wasm, digest) = wasm_router::plugin::source::read(file, None, cache)?;
    let plugin = LoadedPlugin::from_bytes(PluginEngine::shared()?, file, &wasm, digest, cache)?;
    Ok((plugin, wasm))
}

fn inspect(file: PathBuf, as_json: bool) -> anyhow::Result<std::process::ExitCode> {
    let (plugin, wasm) = load(&file, &ArtifactCache::from_config(None))?;
    let size = wasm.len();
    let engine = plugin.engine().engine();
    let info = plugin.info();
    let imports = inspect::imports(engine, plugin.component());
    let exports = inspect::exports(engine, plugin.component());
    let schema: Value =
        serde_json::from_str(&info.config_schema).unwrap_or_else(|_| json!(info.config_schema));
    if as_json {
        let items = |items: &[Item]| {
            items
                .iter()
                .map(|i| json!({"name": i.name, "kind": i.kind, "members": i.members}))
                .collect::<Vec<_>>()
        };
        let imports: Vec<Value> = imports
            .iter()
            .zip(items(&imports))
            .map(|(i, mut item)| {
                let (access, note) = inspect::access(&i.name);
                item["access"] = json!(access.as_str());
                item["access_note"] = json!(note);
                item
            })
            .collect();
        let report = json!({
            "file": file.display().to_string(),
            "size_bytes": size,
            "sha256": plugin.sha256(),
            "name": info.name,
            "version": info.version,
            "kind": super::test::kind_name(info.kind),
            "description": info.description,
            "config_schema": schema,
            "requested_hosts": info.requested_hosts,
            "requested_secrets": info.requested_secrets,
            "imports": imports,
            "exports": items(&exports),
        });
        super::print_stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            v.join(", ")
        }
    };
    let mut out = String::new();
    writeln!(
        out,
        "file:              {} ({size} bytes, sha256 {})",
        file.display(),
        plugin.sha256()
    )?;
    writeln!(out, "name:              {}", info.name)?;
    writeln!(out, "version:           {}", info.version)?;
    writeln!(
        out,
        "kind:              {}",
        super::test::kind_name(info.kind)
    )?;
    writeln!(out, "description:       {}", info.description)?;
    writeln!(out, "requested hosts:   {}", list(&info.requested_hosts))?;
    writeln!(out, "requested secrets: {}", list(&info.requested_secrets))?;
    writeln!(out, "config schema:")?;
    for line in serde_json::to_string_pretty(&schema)?.lines() {
        writeln!(out, "  {line}")?;
    }
    for (title, items) in [("imports", &imports), ("exports", &exports)] {
        writeln!(out, "{title} ({}):", items.len())?;
        for item in items.iter() {
            if title == "imports" {
                let (access, note) = inspect::access(&item.name);
                writeln!(
                    out,
                    "  {} ({}) [{}: {note}]",
                    item.name,
                    item.kind,
                    access.as_str()
                )?;
            } else {
                writeln!(out, "  {} ({})", item.name, item.kind)?;
            }
            for member in &item.members {
                writeln!(out, "    {member}")?;
            }
        }
    }
    super::print_stdout(&out)?;
    Ok(std::process::ExitCode::SUCCESS)
}

fn compile(
    file: PathBuf,
    output: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
) -> anyhow::Result<std::process::ExitCode> {
    match output {
        Some(out) => {
            let (plugin, _) = load(&file, &ArtifactCache::disabled())?;
            let artifact = plugin
                .component()
                .serialize()
                .map_err(|e| anyhow::anyhow!("serializing: {e:#}"))?;
            std::fs::write(&out, &artifact)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "{}: wrote {} ({} bytes, for wasmtime 48 with the router's engine settings)",
                file.display(),
                out.display(),
                artifact.len()
            );
        }
        None => {
            let cache = ArtifactCache::from_config(cache_dir.as_deref());
            let Some(dir) = cache.dir().map(|d| d.display().to_string()) else {
                anyhow::bail!("no cache directory: set --cache-dir, XDG_CACHE_HOME or HOME");
            };
            let (plugin, _) = load(&file, &cache)?;
            let entry = cache
                .entry_path(plugin.engine().engine(), plugin.digest())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let what = match plugin.cache_outcome() {
                CacheOutcome::Hit => "already in the cache",
                CacheOutcome::Stored => "compiled into the cache",
                CacheOutcome::Compiled => anyhow::bail!(
                    "compiled, but the cache in {dir} could not be written (see the warning above)"
                ),
            };
            println!("{}: {what}: {entry}", file.display());
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
