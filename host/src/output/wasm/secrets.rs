//! `secrets = { api_key = "env:DD_API_KEY", license = "file:/run/secrets/nr" }`: values the
//! router puts into the headers an output plugin names (`secret-headers`), so that API keys
//! never enter guest memory (reference wasm-plugin-hosts.md §3.5). `basic:USER:REFERENCE`
//! is HTTP basic credentials (RFC 7617): the value is `base64(USER:password)` with the
//! password read from `REFERENCE`, for a plugin to send after `Basic ` in `Authorization`;
//! `basic:REFERENCE` is the same with `USER:PASSWORD` read whole from `REFERENCE` (Elastic
//! Cloud's `Cloud_Auth`).
//!
//! Resolved once, when the config is loaded: a variable that is not set, a file that cannot be
//! read, or an empty value is a config error naming the key and the fix. Every value is
//! registered with [`register_secret`](crate::ops::logging::register_secret), so the router's
//! log never shows it, and is kept out of `Debug` output.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Largest secret file read, in bytes.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Where a secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// `env:NAME`: an environment variable.
    Env(String),
    /// `file:/path`: a file's content, without its trailing newline.
    File(PathBuf),
    /// `basic:USER:REFERENCE`: `base64(USER:password)`, the password from `REFERENCE`.
    Basic {
        /// The user name (without `:`, which basic credentials cannot carry).
        user: String,
        /// Where the password comes from (`env:` or `file:`).
        password: Box<SecretSource>,
    },
    /// `basic:REFERENCE`: `base64(USER:PASSWORD)`, both read from `REFERENCE`.
    BasicPair(Box<SecretSource>),
}

impl SecretSource {
    /// Parse `env:NAME`, `file:/path` or `basic:USER:env:NAME` / `basic:USER:file:/path`.
    pub fn parse(text: &str) -> Result<SecretSource, String> {
        match text.split_once(':') {
            Some(("env", name)) if !name.is_empty() => Ok(SecretSource::Env(name.to_string())),
            Some(("file", path)) if !path.is_empty() => Ok(SecretSource::File(path.into())),
            Some(("basic", rest)) => match rest.split_once(':') {
                Some((user, reference))
                    if !reference.starts_with("basic:")
                        && SecretSource::parse(reference).is_ok() =>
                {
                    Ok(SecretSource::Basic {
                        user: user.to_string(),
                        password: Box::new(SecretSource::parse(reference)?),
                    })
                }
                _ if !rest.starts_with("basic:") && SecretSource::parse(rest).is_ok() => Ok(
                    SecretSource::BasicPair(Box::new(SecretSource::parse(rest)?)),
                ),
                _ => Err(format!(
                    "{text:?} is not basic credentials; write \"basic:USER:env:VARIABLE\" or \"basic:USER:file:/run/secrets/name\" (the password from the variable or file), or \"basic:env:VARIABLE\" with USER:PASSWORD in the variable"
                )),
            },
            _ => Err(format!(
                "{text:?} is not a secret reference; write \"env:VARIABLE\" or \"file:/run/secrets/name\""
            )),
        }
    }

    fn read(&self) -> Result<String, String> {
        let value = match self {
            SecretSource::Basic { user, password } => {
                use base64::Engine as _;
                let password = password.read()?;
                crate::ops::logging::register_secret(&format!("password of {user}"), &password);
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            }
            SecretSource::BasicPair(pair) => {
                use base64::Engine as _;
                let pair = pair.read()?;
                if !pair.contains(':') {
                    return Err("the value is not USER:PASSWORD".to_string());
                }
                base64::engine::general_purpose::STANDARD.encode(pair)
            }
            SecretSource::Env(name) => std::env::var(name).map_err(|e| match e {
                std::env::VarError::NotPresent => format!(
                    "the environment variable {name} is not set; set it in the router's environment (on ECS, a `secrets` entry of the container definition) or use \"file:/path\""
                ),
                std::env::VarError::NotUnicode(_) => {
                    format!("the environment variable {name} is not valid UTF-8")
                }
            })?,
            SecretSource::File(path) => {
                let shown = path.display();
                let len = std::fs::metadata(path)
                    .map_err(|e| format!("cannot read {shown}: {e}; mount the secret there or use \"env:VARIABLE\""))?
                    .len();
                if len > MAX_SECRET_FILE_BYTES {
                    return Err(format!(
                        "{shown} is {len} bytes, more than a secret can be ({MAX_SECRET_FILE_BYTES}); point the key at the file holding only the secret"
                    ));
                }
                std::fs::read_to_string(path).map_err(|e| {
                    format!("cannot read {shown}: {e}; mount the secret there or use \"env:VARIABLE\"")
                })?
            }
        };
        let value = value.trim_end_matches(['\r', '\n']).to_string();
        if value.is_empty() {
            return Err(match self {
                SecretSource::Env(name) => format!("the environment variable {name} is empty"),
                SecretSource::File(path) => format!("{} is empty", path.display()),
                SecretSource::Basic { user, .. } => format!("the credentials of {user} are empty"),
                SecretSource::BasicPair(_) => "the credentials are empty".to_string(),
            });
        }
        if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err("the value has control characters (a line break?), which a header cannot carry; store the secret alone on one line".to_string());
        }
        Ok(value)
    }
}

/// The resolved secrets of one output, by name.
#[derive(Clone, Default)]
pub struct Secrets {
    values: BTreeMap<String, String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl Secrets {
    /// Resolve every entry of `secrets = { … }`; `key` (e.g. `outputs[0]`) prefixes the
    /// messages. Every problem is reported, not only the first.
    pub fn resolve(key: &str, config: &BTreeMap<String, String>) -> Result<Secrets, Vec<String>> {
        let mut values = BTreeMap::new();
        let mut problems = Vec::new();
        for (name, reference) in config {
            let resolved = SecretSource::parse(reference).and_then(|source| source.read());
            match resolved {
                Ok(value) => {
                    crate::ops::logging::register_secret(&format!("secret:{name}"), &value);
                    values.insert(name.clone(), value);
                }
                Err(why) => problems.push(format!("{key}.secrets.{name} = {reference:?}: {why}")),
            }
        }
        if problems.is_empty() {
            Ok(Secrets { values })
        } else {
            Err(problems)
        }
    }

    /// The value of secret `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The configured names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Replace every secret value in `bytes` by `****` (a destination that echoes a request
    /// header back must not hand the secret to the plugin).
    pub fn scrub(&self, bytes: &mut Vec<u8>) {
        for value in self.values.values() {
            let needle = value.as_bytes();
            if needle.is_empty() || bytes.len() < needle.len() {
                continue;
            }
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            let mut changed = false;
            while i < bytes.len() {
                if bytes[i..].starts_with(needle) {
                    out.extend_from_slice(b"****");
                    i += needle.len();
                    changed = true;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            if changed {
                *bytes = out;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_from_env_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dd");
        std::fs::write(&file, "file-secret-value-123\n").unwrap();
        // SAFETY-free: a variable name only this test uses.
        let name = "WR_TEST_OUTPUT_SECRET_7F3A";
        let config = BTreeMap::from([
            ("a".to_string(), format!("file:{}", file.display())),
            ("b".to_string(), format!("env:{name}_UNSET")),
            ("c".to_string(), "plain".to_string()),
        ]);
        let problems = Secrets::resolve("outputs[2]", &config).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("outputs[2].secrets.b = ")
                && problems[0].contains("is not set"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("outputs[2].secrets.c") && problems[1].contains("env:VARIABLE"),
            "{problems:?}"
        );
        let ok = Secrets::resolve(
            "o",
            &BTreeMap::from([("a".to_string(), format!("file:{}", file.display()))]),
        )
        .unwrap();
        assert_eq!(ok.get("a"), Some("file-secret-value-123"));
        assert_eq!(format!("{ok:?}"), "{\"a\"}");
        let missing = Secrets::resolve(
            "o",
            &BTreeMap::from([("a".to_string(), "file:/nonexistent/x".to_string())]),
        )
        .unwrap_err();
        assert!(
            missing[0].contains("/nonexistent/x") && missing[0].contains("mount"),
            "{missing:?}"
        );
    }

    #[test]
    fn echoed_secrets_are_scrubbed() {
        let s = Secrets {
            values: BTreeMap::from([("k".to_string(), "s3cr3t-value".to_string())]),
        };
        let mut body = b"{\"echo\":\"s3cr3t-value\",\"again\":\"s3cr3t-value!\"}".to_vec();
        s.scrub(&mut body);
        assert_eq!(body, b"{\"echo\":\"****\",\"again\":\"****!\"}");
    }

    #[test]
    fn basic_credentials_encode_user_and_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "open sesame\n").unwrap();
        let config = BTreeMap::from([(
            "basic_auth".to_string(),
            format!("basic:Aladdin:file:{}", file.display()),
        )]);
        let resolved = Secrets::resolve("o", &config).unwrap();
        // RFC 7617 §2's example.
        assert_eq!(
            resolved.get("basic_auth"),
            Some("QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        // The pair read whole (Elastic Cloud's Cloud_Auth): the same header.
        std::fs::write(&file, "Aladdin:open sesame\n").unwrap();
        let config = BTreeMap::from([(
            "basic_auth".to_string(),
            format!("basic:file:{}", file.display()),
        )]);
        let resolved = Secrets::resolve("o", &config).unwrap();
        assert_eq!(
            resolved.get("basic_auth"),
            Some("QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        for wrong in ["basic:alice", "basic:alice:plain", "basic:a:basic:b:env:X"] {
            let problem = SecretSource::parse(wrong).unwrap_err();
            assert!(
                problem.contains("basic:USER:env:VARIABLE"),
                "{wrong}: {problem}"
            );
        }
    }
}
