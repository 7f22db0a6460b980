//! Where a plugin's bytes come from: the `path` of a `type = "wasm"` filter or output.
//!
//! - a file: `/plugins/redact.wasm`;
//! - S3: `s3://bucket/key.wasm`, with the task role's credentials (the outputs' chain;
//!   `AWS_ENDPOINT_URL` honoured) — [`crate::net::s3_get`];
//! - HTTPS: `https://…` (`http://` too: the pin is what makes it safe) — [`http`];
//! - an OCI registry: `oci://registry/repository:tag` or `…@sha256:…`, a component pushed as an
//!   OCI artifact (`wkg oci push`, `oras push`; e.g. to Amazon ECR) — [`oci`].
//!
//! Anything that can change under the same name (every remote path but an OCI reference by
//! digest) must be pinned with `sha256 = "…"` (checked at config validation, [`Pin`]); a pin
//! may be given for a file too. Fetched bytes are verified against the pin (and an OCI layer
//! against its digest), then kept by digest in `<plugin cache>/blobs/sha256/`, beside the
//! compiled artifacts: a pinned plugin found there is not fetched again, so a restart or a
//! reload works with the network gone. Fetching happens at start-up and on reload, off the
//! data path; every failure names the URL and the fix.

pub mod http;
pub mod oci;

use super::PluginError;
use super::cache::{ArtifactCache, WasmDigest, sha256_hex};
use crate::net::s3_get::{S3GetError, S3Getter};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest plugin fetched (a CPython component is about 40 MB).
pub const MAX_PLUGIN_BYTES: usize = 256 << 20;
/// How long one fetch (every request of it) may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(120);
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a plugin is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginSource {
    /// A file.
    File(PathBuf),
    /// `s3://bucket/key`.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// `https://…` or `http://…`.
    Http(::http::Uri),
    /// `oci://registry/repository[:tag][@sha256:…]`.
    Oci(oci::Reference),
}

impl PluginSource {
    /// The source named by a `path` value; `Err` says what is wrong and how to write it.
    pub fn parse(path: &Path) -> Result<PluginSource, String> {
        let Some(text) = path.to_str() else {
            return Ok(PluginSource::File(path.to_path_buf()));
        };
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(PluginSource::File(path.to_path_buf()));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "s3" => {
                let (bucket, key) = rest
                    .split_once('/')
                    .filter(|(b, k)| !b.is_empty() && !k.is_empty() && !k.ends_with('/'))
                    .ok_or_else(|| {
                        format!("{text:?} names no object: write s3://BUCKET/KEY, e.g. s3://my-plugins/redact.wasm")
                    })?;
                Ok(PluginSource::S3 {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                })
            }
            "https" | "http" => {
                let uri: ::http::Uri = text.parse().map_err(|e| {
                    format!("{text:?} is not a URL ({e}); write https://HOST/PATH/plugin.wasm")
                })?;
                if uri.host().is_none_or(str::is_empty) {
                    return Err(format!(
                        "{text:?} has no host; write https://HOST/PATH/plugin.wasm"
                    ));
                }
                Ok(PluginSource::Http(uri))
            }
            "oci" => oci::Reference::parse(rest).map(PluginSource::Oci),
            "file" => Ok(PluginSource::File(PathBuf::from(rest))),
            other => Err(format!(
                "{text:?}: unknown scheme {other}://; a plugin path is a file, s3://BUCKET/KEY, https://HOST/PATH or oci://REGISTRY/REPOSITORY:TAG"
            )),
        }
    }

    /// Whether the same name can give other bytes tomorrow: every remote path but an OCI
    /// reference by digest. Such a path needs a pin.
    pub fn is_mutable(&self) -> bool {
        match self {
            PluginSource::File(_) => false,
            PluginSource::Oci(reference) => reference.digest.is_none(),
            PluginSource::S3 { .. } | PluginSource::Http(_) => true,
        }
    }
}

/// A `sha256 = "…"` pin: 64 hexadecimal digits (a `sha256:` prefix is accepted), lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin(String);

impl Pin {
    /// The pin written as `text`; `Err` says how to write one.
    pub fn parse(text: &str) -> Result<Pin, String> {
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Pin(hex.to_ascii_lowercase()))
        } else {
            Err(format!(
                "sha256 = {text:?} is not a SHA-256 digest: write the 64 hexadecimal digits that `sha256sum plugin.wasm` or `wasm-router plugin inspect PATH` prints"
            ))
        }
    }

    /// The 64 lower-case hexadecimal digits.
    pub fn hex(&self) -> &str {
        &self.0
    }
}

/// Check the `path` and `sha256` keys of `{key}`: the path parses, and a path that can change
/// is pinned.
pub fn validate(key: &str, path: &Path, sha256: Option<&str>, problems: &mut Vec<String>) {
    let pin = match sha256.map(Pin::parse).transpose() {
        Ok(pin) => pin,
        Err(e) => {
            problems.push(format!("{key}.{e}"));
            return;
        }
    };
    match PluginSource::parse(path) {
        Err(e) => problems.push(format!("{key}.path = {e}")),
        Ok(source) if source.is_mutable() && pin.is_none() => problems.push(format!(
            "{key}.path = {:?} can change after you tested it: pin the plugin with sha256 = \"<the 64 hex digits of sha256sum plugin.wasm>\" (wasm-router plugin inspect {} prints it){}",
            path.display(),
            path.display(),
            if matches!(source, PluginSource::Oci(_)) {
                ", or name it by digest: oci://REGISTRY/REPOSITORY@sha256:…"
            } else {
                ""
            }
        )),
        Ok(_) => {}
    }
}

/// The bytes of the plugin at `path`, verified against `sha256` when given: read from the file,
/// or from the blob cache of `cache`, or fetched (and then cached). Blocks while fetching.
/// Also returns their sha256 when it was known on the way (a pinned, cached or fetched plugin),
/// so that the loader does not hash them again.
pub fn read(
    path: &Path,
    sha256: Option<&str>,
    cache: &ArtifactCache,
) -> Result<(Vec<u8>, Option<WasmDigest>), PluginError> {
    let shown = path.display().to_string();
    let fetch_error = |message: String| PluginError::Fetch {
        path: shown.clone(),
        message,
    };
    let pin = sha256.map(Pin::parse).transpose().map_err(fetch_error)?;
    let source = PluginSource::parse(path).map_err(fetch_error)?;
    // Each byte is hashed once: `blob` checks what the cache gives against its digest, a fetch
    // is hashed here, a file only when it is pinned.
    let (bytes, digest) = match &source {
        PluginSource::File(file) => {
            let bytes = std::fs::read(file).map_err(|e| PluginError::Read {
                path: shown.clone(),
                message: e.to_string(),
            })?;
            let digest = pin.as_ref().map(|_| WasmDigest::of(&bytes));
            (bytes, digest)
        }
        remote => match cached(remote, pin.as_ref(), cache) {
            Some((bytes, digest)) => {
                tracing::info!(plugin = %shown, sha256 = %digest.hex(), "plugin found in the cache by digest; not fetched");
                (bytes, Some(digest))
            }
            None => {
                let fetched = block_on(fetch(remote.clone())).map_err(fetch_error)?;
                let digest = WasmDigest::of(&fetched.wasm);
                let wasm_hex = digest.hex();
                tracing::info!(plugin = %shown, bytes = fetched.wasm.len(), sha256 = %wasm_hex, "plugin fetched");
                if pin.as_ref().is_none_or(|p| p.hex() == wasm_hex) {
                    let manifests = fetched.manifests.iter().map(|m| (sha256_hex(m), m));
                    for (hex, blob) in manifests.chain([(wasm_hex, &fetched.wasm)]) {
                        if let Err(e) = cache.store_blob(&hex, blob) {
                            tracing::warn!(plugin = %shown, error = %e, "cannot keep the fetched plugin in the cache; a restart will fetch it again. Fix: make the cache directory writable, or set [service] plugin_cache_dir");
                        }
                    }
                }
                (fetched.wasm, Some(digest))
            }
        },
    };
    if let (Some(pin), Some(actual)) = (pin, digest.map(|d| d.hex()))
        && actual != pin.hex()
    {
        return Err(PluginError::Digest {
            path: shown,
            pinned: pin.hex().to_string(),
            actual,
        });
    }
    Ok((bytes, digest))
}

/// A remote plugin already in the cache, and its digest: by its pin, or through the cached
/// manifest of an OCI reference by digest.
fn cached(
    source: &PluginSource,
    pin: Option<&Pin>,
    cache: &ArtifactCache,
) -> Option<(Vec<u8>, WasmDigest)> {
    let digest = match (pin, source) {
        (Some(pin), _) => pin.clone(),
        (None, PluginSource::Oci(reference)) => {
            oci::cached_layer(reference.digest.as_ref()?, |digest| cache.blob(digest))?
        }
        (None, _) => return None,
    };
    let bytes = cache.blob(digest.hex())?;
    Some((bytes, WasmDigest::from_hex(digest.hex())?))
}

/// What a fetch brought: the component, and for an OCI reference by digest the manifests on
/// the way to it (kept so that the reference resolves offline).
pub struct Fetched {
    /// The component's bytes.
    pub wasm: Vec<u8>,
    /// The manifests, when the reference names one by digest.
    pub manifests: Vec<Vec<u8>>,
}

/// Fetch `source` (a remote one).
async fn fetch(source: PluginSource) -> Result<Fetched, String> {
    let wasm = match source {
        PluginSource::File(_) => unreachable!("files are read, not fetched"),
        PluginSource::S3 { bucket, key } => {
            let s3 = S3Getter::new(None).await;
            s3.get(&bucket, &key, MAX_PLUGIN_BYTES).await.map_err(|e| match e {
                S3GetError::BucketRegion { detail } => format!(
                    "cannot find the region of bucket {bucket:?}: {detail}; check the bucket name, and that the task role allows s3:GetBucketLocation on it"
                ),
                S3GetError::NoSuchKey => format!(
                    "s3://{bucket}/{key} does not exist (NoSuchKey); upload the plugin, or fix the key in `path`"
                ),
                S3GetError::TooLarge => format!(
                    "the object is larger than {MAX_PLUGIN_BYTES} bytes; check that `path` names the plugin"
                ),
                S3GetError::Download { region, detail } => format!(
                    "cannot download it (region {region}): {detail}; check that the task role allows s3:GetObject on it"
                ),
            })?
        }
        PluginSource::Http(uri) => {
            http::Getter::new(uri.scheme_str() == Some("https"))?
                .get(uri, Vec::new())
                .await?
                .body
        }
        PluginSource::Oci(reference) => return oci::pull(&reference).await,
    };
    Ok(Fetched {
        wasm,
        manifests: Vec::new(),
    })
}

/// Run `future` to completion on a runtime of its own, on a thread of its own: plugin loading
/// is synchronous and may be called from inside the router's runtime (at start-up) or from a
/// blocking thread (reload).
fn block_on<T: Send>(future: impl Future<Output = T> + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime can be built")
                    .block_on(future)
            })
            .join()
            .expect("the fetch thread does not panic")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_into_sources_and_mistakes_say_how_to_write_them() {
        let parse = |s: &str| PluginSource::parse(Path::new(s));
        assert_eq!(
            parse("/plugins/redact.wasm"),
            Ok(PluginSource::File("/plugins/redact.wasm".into()))
        );
        assert_eq!(
            parse("s3://my-plugins/filters/redact.wasm"),
            Ok(PluginSource::S3 {
                bucket: "my-plugins".into(),
                key: "filters/redact.wasm".into()
            })
        );
        assert!(matches!(
            parse("https://example.com/p.wasm"),
            Ok(PluginSource::Http(_))
        ));
        assert!(
            parse("s3://bucket-only")
                .unwrap_err()
                .contains("s3://BUCKET/KEY")
        );
        assert!(
            parse("ftp://host/p.wasm")
                .unwrap_err()
                .contains("unknown scheme ftp://")
        );
        assert!(parse("https:///p.wasm").is_err());
        assert!(!parse("/p.wasm").unwrap().is_mutable());
        assert!(parse("s3://b/k.wasm").unwrap().is_mutable());
        assert!(parse("oci://r.example/p:1.0").unwrap().is_mutable());
        let digest = format!("oci://r.example/p@sha256:{}", "a".repeat(64));
        assert!(!parse(&digest).unwrap().is_mutable());
    }

    #[test]
    fn mutable_paths_need_a_pin_and_pins_are_64_hex_digits() {
        let check = |path: &str, pin: Option<&str>| {
            let mut problems = Vec::new();
            validate("filters[0]", Path::new(path), pin, &mut problems);
            problems
        };
        let hex = "AB".repeat(32);
        assert!(check("/p.wasm", None).is_empty());
        assert!(check("s3://b/k.wasm", Some(&hex)).is_empty());
        assert!(check("s3://b/k.wasm", Some(&format!("sha256:{hex}"))).is_empty());
        let unpinned = check("https://h/p.wasm", None);
        assert_eq!(unpinned.len(), 1);
        assert!(unpinned[0].starts_with("filters[0].path = \"https://h/p.wasm\" can change"));
        assert!(unpinned[0].contains("sha256 = "));
        assert!(check("oci://r/p:v1", None)[0].contains("@sha256:"));
        let short = check("/p.wasm", Some("abc"));
        assert!(short[0].starts_with("filters[0].sha256 = \"abc\" is not a SHA-256 digest"));
        assert_eq!(Pin::parse(&hex).unwrap().hex(), "ab".repeat(32));
    }

    #[test]
    fn a_file_that_does_not_match_its_pin_is_refused_with_both_digests() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.wasm");
        std::fs::write(&file, b"plugin v2").unwrap();
        let cache = ArtifactCache::disabled();
        let actual = sha256_hex(b"plugin v2");
        assert_eq!(read(&file, Some(&actual), &cache).unwrap().0, b"plugin v2");
        let pinned = sha256_hex(b"plugin v1");
        let e = read(&file, Some(&pinned), &cache).unwrap_err().to_string();
        assert!(e.contains(&pinned) && e.contains(&actual), "{e}");
    }

    #[test]
    fn a_pinned_remote_plugin_in_the_cache_is_not_fetched() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::in_dir(dir.path());
        cache
            .store_blob(&sha256_hex(b"cached plugin"), b"cached plugin")
            .unwrap();
        let pin = sha256_hex(b"cached plugin");
        // Port 9 on loopback: nothing listens, so a fetch would fail.
        let url = Path::new("http://127.0.0.1:9/p.wasm");
        let (bytes, digest) = read(url, Some(&pin), &cache).unwrap();
        assert_eq!(bytes, b"cached plugin");
        assert_eq!(digest.map(|d| d.hex()), Some(pin));
        let other = sha256_hex(b"another plugin");
        let e = read(url, Some(&other), &cache).unwrap_err().to_string();
        assert!(
            e.starts_with("http://127.0.0.1:9/p.wasm: cannot fetch the plugin:"),
            "{e}"
        );
    }
}
