//! The on-disk cache of compiled plugins: compiling a component takes tens of milliseconds to
//! seconds, loading its precompiled artifact (`.cwasm`) well under one.
//!
//! An entry is named by `sha256(sha256(wasm) ‖ engine.precompile_compatibility_hash())`, so a
//! changed plugin, another wasmtime version or another engine configuration never finds a
//! stale entry. Artifacts are native code: the host loads only entries it wrote itself, into
//! a directory it created private (mode 0700), written to a temporary file and renamed into
//! place; an entry that is not a regular file, is writable by others, belongs to another user
//! than the directory, or fails wasmtime's own checks is recompiled and replaced.
//!
//! Plugins fetched from S3, HTTPS or an OCI registry are kept beside the artifacts, by the
//! sha256 of their bytes (`blobs/sha256/<hex>`, [`ArtifactCache::blob`]), so that a pinned
//! plugin loads with the network gone ([`super::source`]).

use sha2::{Digest, Sha256};
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a compiled component came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from the cache.
    Hit,
    /// Compiled and written to the cache.
    Stored,
    /// Compiled; the cache is off or could not be written (logged).
    Compiled,
}

/// A directory of compiled plugins.
#[derive(Clone, Debug)]
pub struct ArtifactCache {
    dir: Option<PathBuf>,
}

impl ArtifactCache {
    /// A cache in `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        ArtifactCache {
            dir: Some(dir.into()),
        }
    }

    /// No cache: every load compiles.
    pub fn disabled() -> Self {
        ArtifactCache { dir: None }
    }

    /// The configured directory (`[service] plugin_cache_dir`), else `$XDG_CACHE_HOME/wasm-router`,
    /// else `~/.cache/wasm-router`; disabled when none of these is known.
    pub fn from_config(configured: Option<&Path>) -> Self {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let dir = configured
            .map(Path::to_path_buf)
            .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("wasm-router")))
            .or_else(|| env("HOME").map(|d| d.join(".cache").join("wasm-router")));
        ArtifactCache { dir }
    }

    /// The directory, when the cache is on.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The path of the entry for the plugin of `digest` compiled by `engine`, when the cache is
    /// on.
    pub fn entry_path(&self, engine: &Engine, digest: &WasmDigest) -> Option<PathBuf> {
        Some(
            self.dir
                .as_ref()?
                .join(format!("{}.cwasm", cache_key(engine, digest))),
        )
    }

    /// The compiled component for `wasm`, whose sha256 is `digest`: from the cache, or compiled
    /// (and stored).
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &WasmDigest,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(entry) = self.entry_path(engine, digest) else {
            return Ok((Component::new(engine, wasm)?, CacheOutcome::Compiled));
        };
        if trusted_entry(&entry) {
            match deserialize_own_artifact(engine, &entry) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(entry = %entry.display(), error = %e, "ignoring an unusable compiled plugin; recompiling")
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        match component
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|bytes| self.store(&entry, &bytes))
        {
            Ok(()) => Ok((component, CacheOutcome::Stored)),
            Err(e) => {
                tracing::warn!(entry = %entry.display(), error = %e, "cannot write the plugin cache; plugins will be compiled at every start. Fix: make the directory writable, or set [service] plugin_cache_dir");
                Ok((component, CacheOutcome::Compiled))
            }
        }
    }

    /// The path of the fetched plugin (or OCI manifest) with sha256 `hex`, when the cache is on.
    fn blob_path(&self, hex: &str) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join("blobs").join("sha256").join(hex))
    }

    /// The bytes kept under sha256 `hex`, when they are there, were written by the router and
    /// still have that digest.
    pub fn blob(&self, hex: &str) -> Option<Vec<u8>> {
        let path = self.blob_path(hex)?;
        if !trusted_entry(&path) {
            return None;
        }
        let bytes = fs::read(&path).ok()?;
        if sha256_hex(&bytes) == hex {
            Some(bytes)
        } else {
            tracing::warn!(entry = %path.display(), "ignoring a cached plugin whose bytes no longer match its digest; fetching it again");
            None
        }
    }

    /// Keep `bytes` under `hex`, their sha256 (a fetched plugin, or a manifest naming one);
    /// [`ArtifactCache::blob`] checks it again when reading.
    pub fn store_blob(&self, hex: &str, bytes: &[u8]) -> Result<(), String> {
        match self.blob_path(hex) {
            Some(path) => self.store(&path, bytes),
            None => Ok(()),
        }
    }

    /// Write `artifact` as `entry`: private directory, temporary file, rename.
    fn store(&self, entry: &Path, artifact: &[u8]) -> Result<(), String> {
        let dir = entry.parent().ok_or("the cache entry has no directory")?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            entry.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let write = || -> std::io::Result<()> {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(artifact)?;
            f.sync_all()?;
            fs::rename(&tmp, entry)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            format!("writing {}: {e}", entry.display())
        })
    }
}

/// The sha256 of a plugin's `.wasm` bytes, computed once per load: it names the plugin
/// ([`super::LoadedPlugin::sha256`]) and keys its compiled entry ([`cache_key`]). Hashing a
/// plugin twice was 5 % of a start with three plugins (`perf` under `wasm-router bench-startup`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WasmDigest([u8; 32]);

impl WasmDigest {
    /// The digest of `wasm`.
    pub fn of(wasm: &[u8]) -> Self {
        WasmDigest(Sha256::digest(wasm).into())
    }

    /// The digest written as 64 hexadecimal digits; `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut digest = [0u8; 32];
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        for (byte, pair) in digest.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(WasmDigest(digest))
    }

    /// In lowercase hex.
    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

/// Hex `sha256(sha256(wasm) ‖ compatibility hash of engine)`, from `digest` = sha256(wasm).
pub fn cache_key(engine: &Engine, digest: &WasmDigest) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    hasher.0.update(digest.0);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex(&hasher.0.finalize())
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds `Hash` output into sha256, so the key is stable across processes.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// An entry the host may have written: a regular file in a directory nobody else can write,
/// owned by the directory's owner, writable by nobody else.
fn trusted_entry(entry: &Path) -> bool {
    let (Ok(file), Some(Ok(dir))) = (
        fs::symlink_metadata(entry),
        entry.parent().map(fs::metadata),
    ) else {
        return false;
    };
    let writable_by_others = |mode: u32| mode & 0o022 != 0;
    file.is_file()
        && file.uid() == dir.uid()
        && !writable_by_others(file.permissions().mode())
        && !writable_by_others(dir.permissions().mode())
}

/// Load a compiled component the host wrote into its own cache.
#[allow(unsafe_code)]
fn deserialize_own_artifact(engine: &Engine, entry: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize_file` trusts the file to be an artifact wasmtime produced
    // and maps it into memory. `entry` is one the router wrote itself (`ArtifactCache::store`:
    // compiled from the plugin's bytes by this engine configuration, written to a private
    // 0700 directory via a temporary file and an atomic rename, never modified in place), and
    // `trusted_entry` has checked that nobody else can have written or replaced it. wasmtime
    // still verifies the header, its version and the engine's compatibility before use.
    unsafe { Component::deserialize_file(engine, entry) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_the_bytes_and_the_engine_config() {
        let plain = Engine::default();
        let mut fuel_config = wasmtime::Config::new();
        fuel_config.consume_fuel(true);
        let fuel = Engine::new(&fuel_config).unwrap();
        let (a_digest, b_digest) = (
            WasmDigest::of(b"component a"),
            WasmDigest::of(b"component b"),
        );
        let a = cache_key(&plain, &a_digest);
        assert_eq!(a, cache_key(&plain, &WasmDigest::of(b"component a")));
        assert_ne!(a, cache_key(&plain, &b_digest));
        assert_ne!(a, cache_key(&fuel, &a_digest));
        assert_eq!(a_digest.hex(), sha256_hex(b"component a"));
        assert_eq!(WasmDigest::from_hex(&a_digest.hex()), Some(a_digest));
        assert_eq!(
            WasmDigest::from_hex(&a_digest.hex().to_ascii_uppercase()),
            Some(a_digest)
        );
        for bad in ["", "ab", &"g".repeat(64), &"+1".repeat(32), &"a".repeat(66)] {
            assert_eq!(WasmDigest::from_hex(bad), None, "{bad:?}");
        }
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn default_dir_prefers_the_config_then_xdg_then_home() {
        let c = ArtifactCache::from_config(Some(Path::new("/var/cache/wr")));
        assert_eq!(c.dir(), Some(Path::new("/var/cache/wr")));
    }

    #[test]
    fn entries_writable_by_others_are_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let entry = dir.path().join("x.cwasm");
        fs::write(&entry, b"not an artifact").unwrap();
        fs::set_permissions(&entry, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(trusted_entry(&entry));
        fs::set_permissions(&entry, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(!trusted_entry(&entry));
        fs::set_permissions(&entry, fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!trusted_entry(&entry));
        assert!(!trusted_entry(&dir.path().join("missing.cwasm")));
    }
}
