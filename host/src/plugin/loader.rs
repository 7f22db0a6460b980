//! Loading a plugin file: read it, check it is a component of our contract, compile it (or load
//! it from the [`ArtifactCache`]), link it (`InstancePre`), resolve its exports once, and ask
//! it who it is (`info`, on a probe instance, before any `init`).

use super::PluginError;
use super::bindings::{PluginInfo, PluginKind};
use super::cache::{ArtifactCache, CacheOutcome, WasmDigest};
use super::engine::PluginEngine;
use super::instance::PluginInstance;
use super::limits::PluginLimits;
use super::state::{PluginContext, PluginState};
use super::telemetry::PluginFamilies;
use crate::ops::metrics::Metrics;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre};

/// The contract's package, as it appears in import names.
pub const CONTRACT_PACKAGE: &str = "wasm-router:plugin";
/// The contract version this host implements.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// The deadline of the probe's `info` call. Not a data-path call and not under the operator's
/// `limits` (they are applied after `info`): the first call into an interpreted plugin (a
/// SpiderMonkey or CPython component) can take well over the 50 ms filter default on a busy
/// machine, while a plugin stuck in `info` is still stopped.
const PROBE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// The export indices of one world.
pub(crate) enum WorldExports {
    Filter {
        process: ComponentExportIndex,
    },
    Output {
        encode: ComponentExportIndex,
        on_response: ComponentExportIndex,
    },
}

/// Every export the host calls, resolved once per component.
pub(crate) struct ExportIndices {
    pub(crate) info: ComponentExportIndex,
    pub(crate) init: ComponentExportIndex,
    pub(crate) world: WorldExports,
}

/// A compiled, linked plugin, ready to be instantiated any number of times.
pub struct LoadedPlugin {
    path: PathBuf,
    digest: WasmDigest,
    engine: Arc<PluginEngine>,
    component: Component,
    pre: InstancePre<PluginState>,
    exports: ExportIndices,
    info: PluginInfo,
    cache: CacheOutcome,
}

impl LoadedPlugin {
    /// Load the plugin at `path` (a file, or a remote [`super::source`], verified against
    /// `sha256` when given) on `engine`, compiling through `cache`.
    pub fn load(
        engine: Arc<PluginEngine>,
        path: &Path,
        sha256: Option<&str>,
        cache: &ArtifactCache,
    ) -> Result<LoadedPlugin, PluginError> {
        let (wasm, digest) = super::source::read(path, sha256, cache)?;
        Self::from_bytes(engine, path, &wasm, digest, cache)
    }

    /// Load a plugin from its bytes; `path` is used in messages. `digest` is their sha256 when
    /// the caller has it already ([`super::source::read`] does for a pinned or fetched plugin);
    /// it is computed here otherwise.
    pub fn from_bytes(
        engine: Arc<PluginEngine>,
        path: &Path,
        wasm: &[u8],
        digest: Option<WasmDigest>,
        cache: &ArtifactCache,
    ) -> Result<LoadedPlugin, PluginError> {
        let display = path.display().to_string();
        check_is_component(&display, wasm)?;
        let digest = digest.unwrap_or_else(|| WasmDigest::of(wasm));
        let (component, cache_outcome) =
            cache
                .load(engine.engine(), wasm, &digest)
                .map_err(|e| PluginError::Compile {
                    path: display.clone(),
                    message: format!("{e:#}"),
                })?;
        check_imports(&display, engine.engine(), &component)?;
        let pre = engine
            .linker()
            .instantiate_pre(&component)
            .map_err(|e| PluginError::Link {
                path: display.clone(),
                message: format!("{e:#}"),
            })?;
        let exports = resolve_exports(&display, &component)?;
        let mut plugin = LoadedPlugin {
            path: path.to_path_buf(),
            digest,
            engine,
            component,
            pre,
            exports,
            info: empty_info(),
            cache: cache_outcome,
        };
        plugin.info = plugin.probe_info()?;
        Ok(plugin)
    }

    /// Call `info()` on a throwaway instance with default limits.
    fn probe_info(&self) -> Result<PluginInfo, PluginError> {
        let id = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin".into());
        let metrics = Metrics::new();
        let context = Arc::new(PluginContext::new(
            &id,
            &metrics,
            PluginFamilies::of(&metrics),
            false,
        ));
        let fault = |fault| PluginError::Call {
            path: self.path.display().to_string(),
            call: "info",
            fault,
        };
        let limits = PluginLimits {
            deadline: PROBE_DEADLINE,
            ..PluginLimits::filter_defaults()
        };
        let mut probe = PluginInstance::new(self, context, limits).map_err(fault)?;
        let info = probe.info().map_err(fault)?;
        let expected = match self.exports.world {
            WorldExports::Filter { .. } => PluginKind::Filter,
            WorldExports::Output { .. } => PluginKind::Output,
        };
        if info.kind != expected {
            return Err(PluginError::NotAPlugin {
                path: self.path.display().to_string(),
                detail: format!(
                    "info() says it is {:?} but it exports the {:?} world",
                    info.kind, expected
                ),
            });
        }
        Ok(info)
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hex sha256 of the `.wasm` file.
    pub fn sha256(&self) -> String {
        self.digest.hex()
    }

    /// The sha256 of the `.wasm` file.
    pub fn digest(&self) -> &WasmDigest {
        &self.digest
    }

    /// What `info()` returned.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Filter or output.
    pub fn kind(&self) -> PluginKind {
        self.info.kind
    }

    /// Whether the compiled code came from the cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }

    /// The engine it was compiled for.
    pub fn engine(&self) -> &Arc<PluginEngine> {
        &self.engine
    }

    /// The compiled component (for type introspection).
    pub fn component(&self) -> &Component {
        &self.component
    }

    pub(crate) fn pre(&self) -> &InstancePre<PluginState> {
        &self.pre
    }

    pub(crate) fn export_indices(&self) -> &ExportIndices {
        &self.exports
    }
}

fn empty_info() -> PluginInfo {
    PluginInfo {
        name: String::new(),
        version: String::new(),
        kind: PluginKind::Filter,
        description: String::new(),
        config_schema: String::new(),
        requested_hosts: Vec::new(),
        requested_secrets: Vec::new(),
    }
}

/// A component starts with `\0asm`, then version 0x0d and layer 1. Anything else is refused
/// with what it is: a wasmtime precompiled artifact only when wasmtime recognises it as one
/// (whatever the file is named), any other ELF file as native code.
fn check_is_component(path: &str, wasm: &[u8]) -> Result<(), PluginError> {
    let not = |detail: &str| PluginError::NotAComponent {
        path: path.to_string(),
        detail: detail.to_string(),
    };
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(not(match wasmtime::Engine::detect_precompiled(wasm) {
            Some(wasmtime::Precompiled::Component) => {
                "it is a wasmtime precompiled component (.cwasm), which is native code the router only loads from its own compile cache; configure the .wasm file it was compiled from"
            }
            Some(wasmtime::Precompiled::Module) => {
                "it is a wasmtime precompiled core module (.cwasm); configure the .wasm component it was compiled from"
            }
            None if wasm.starts_with(b"\x7fELF") => {
                "it is a native ELF executable or library, not WebAssembly (nor a wasmtime precompiled artifact); configure the plugin's .wasm component (`cargo build --target wasm32-wasip2`)"
            }
            None if path.ends_with(".cwasm") => {
                "it is named .cwasm but is neither WebAssembly nor a wasmtime precompiled artifact; configure the plugin's .wasm component"
            }
            None => "it is not a WebAssembly file",
        }));
    }
    match &wasm[4..8] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => Err(not(
            "it is a core module, not a component; build it with `cargo build --target wasm32-wasip2`, or wrap it with `wasm-tools component new`",
        )),
        _ => Err(not("unknown WebAssembly version or layer")),
    }
}

fn check_imports(
    path: &str,
    engine: &wasmtime::Engine,
    component: &Component,
) -> Result<(), PluginError> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        if let Some(rest) = name.strip_prefix(CONTRACT_PACKAGE)
            && let Some((_, version)) = rest.split_once('@')
            && !same_minor(version, CONTRACT_VERSION)
        {
            return Err(PluginError::Link {
                path: path.to_string(),
                message: format!(
                    "it was built against {CONTRACT_PACKAGE}@{version}, this router implements @{CONTRACT_VERSION}; rebuild the plugin against the router's wit/plugin.wit"
                ),
            });
        }
    }
    Ok(())
}

/// `0.1.x` matches `0.1.y` (for 0.x versions the minor is the compatibility boundary).
fn same_minor(a: &str, b: &str) -> bool {
    a.split('.').take(2).eq(b.split('.').take(2))
}

fn resolve_exports(path: &str, component: &Component) -> Result<ExportIndices, PluginError> {
    let get = |name: &str| component.get_export_index(None, name);
    let missing = |detail: String| PluginError::NotAPlugin {
        path: path.to_string(),
        detail,
    };
    let info = get("info").ok_or_else(|| missing("it does not export `info`".into()))?;
    let init = get("init").ok_or_else(|| missing("it does not export `init`".into()))?;
    let world = match (get("process"), get("encode"), get("on-response")) {
        (Some(process), None, None) => WorldExports::Filter { process },
        (None, Some(encode), Some(on_response)) => WorldExports::Output { encode, on_response },
        _ => return Err(missing("it exports neither exactly `process` (world filter) nor `encode` and `on-response` (world output)".into())),
    };
    Ok(ExportIndices { info, init, world })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_components_are_accepted_with_a_fix_in_the_message() {
        assert!(check_is_component("p", b"\0asm\x0d\0\x01\0rest").is_ok());
        let e = check_is_component("p.wasm", b"\0asm\x01\0\0\0")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("core module") && e.contains("wasm32-wasip2"),
            "{e}"
        );
        assert!(check_is_component("p", b"{}").is_err());
    }

    #[test]
    fn an_elf_file_named_cwasm_is_called_native_code_not_a_cwasm() {
        let own_binary = std::fs::read("/proc/self/exe").unwrap();
        let e = check_is_component("plugin.cwasm", &own_binary)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("native ELF") && e.contains("not WebAssembly") && !e.contains("(.cwasm)"),
            "{e}"
        );
        let e = check_is_component("p.cwasm", b"text, not a plugin")
            .unwrap_err()
            .to_string();
        assert!(e.contains("named .cwasm but is neither"), "{e}");
    }

    #[test]
    fn a_real_precompiled_component_is_named_as_one() {
        let engine = wasmtime::Engine::default();
        let component = wasmtime::component::Component::new(&engine, b"\0asm\x0d\0\x01\0").unwrap();
        let artifact = component.serialize().unwrap();
        let e = check_is_component("p.cwasm", &artifact)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("precompiled component (.cwasm)") && e.contains("the .wasm file"),
            "{e}"
        );
    }

    #[test]
    fn contract_versions_match_on_minor() {
        assert!(same_minor("0.1.3", "0.1.0"));
        assert!(!same_minor("0.2.0", "0.1.0"));
    }
}
