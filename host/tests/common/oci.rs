//! An OCI registry on loopback: Debian's `docker-registry` (the CNCF distribution registry,
//! installed by `scripts/install-test-deps`) on a random port with its storage in a temporary
//! directory, killed on drop; components are pushed to it with PyPI's `oras` (the ORAS Python
//! SDK, in the test venv) as `oras push REF plugin.wasm:application/wasm` does.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running registry.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub address: String,
    _storage: tempfile::TempDir,
}

impl Registry {
    /// Start the registry and wait until it listens.
    pub fn start() -> Registry {
        let path = std::env::var_os("WASM_ROUTER_TEST_OCI_REGISTRY")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/usr/bin/docker-registry".into());
        assert!(
            path.exists(),
            "the OCI registry is not installed at {} ($WASM_ROUTER_TEST_OCI_REGISTRY). Run `scripts/test` (or \
             `scripts/install-test-deps`) from the repository root first: it installs Debian's docker-registry.",
            path.display()
        );
        let storage = tempfile::tempdir().unwrap();
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:0\n",
                storage.path().join("data").display()
            ),
        )
        .unwrap();
        let mut child = Command::new(&path)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", path.display()));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(rest) = line.split("listening on ").nth(1) {
                    let address: String = rest
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect();
                    let _ = tx.send(address);
                    sent = true;
                }
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("docker-registry did not report its address within 30 s");
        Registry {
            child,
            address,
            _storage: storage,
        }
    }

    /// Push `wasm` as `<registry>/<repository>:<tag>` with PyPI oras; returns the manifest's
    /// digest (`sha256:…`).
    pub fn push(&self, repository_tag: &str, wasm: &Path) -> String {
        let target = format!("{}/{repository_tag}", self.address);
        let mut cmd = Command::new(super::python());
        cmd.arg(super::client_source("python/oci_push.py"))
            .arg(&target)
            .arg(wasm);
        let out = super::run_to_end(&mut cmd, "oras push");
        assert!(
            out.status.success(),
            "oras push {target}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
