//! Plugins in other languages, built with the registries' own toolchains and their default
//! flags: `examples/plugin-python` (PyPI componentize-py) and `examples/plugin-js` (npm jco +
//! componentize-js), the template's filter in each language. Each is checked with
//! `wasm-router test --expect` against the template's own sample and expected files, and run
//! in the router. The output of `examples/output-template` in both languages
//! (`examples/plugin-python/output`, `examples/plugin-js/output`) is checked with
//! `wasm-router test --responses` against that template's files. Also: the `wasi:sockets` a
//! plugin imports are denied at call time.
//!
//! Componentizing takes 10–20 s, so each build is kept under the target directory, keyed by
//! the hash of its sources, the toolchain's lock file and `wit/plugin.wit`.

use super::support::cache_dir;
use crate::common::{self, RouterProcess, router_command, run_to_end};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The component built from `example` (a folder under `examples/`) by `build`, which writes
/// to the path it is given; rebuilt only when one of `inputs` (paths from the repository root)
/// changed.
fn cached_build(example: &str, inputs: &[&str], build: impl FnOnce(&Path) -> Command) -> PathBuf {
    let root = repo_root();
    let mut hash = Sha256::new();
    for input in inputs {
        hash.update(input.as_bytes());
        hash.update(std::fs::read(root.join(input)).unwrap());
    }
    let key: String = hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("polyglot")
        .join(format!("{example}-{key}"));
    let wasm = dir.join("plugin.wasm");
    if wasm.exists() {
        return wasm;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let partial = dir.join(format!("plugin.wasm.{}", std::process::id()));
    let out = run_to_end(
        &mut build(&partial),
        &format!("building examples/{example}"),
    );
    assert!(
        out.status.success() && partial.exists(),
        "building examples/{example} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&partial, &wasm).unwrap();
    wasm
}

/// examples/`example` built with componentize-py as its README says, as world `world`, from
/// `inputs` (what a change to must rebuild it).
fn python_build(example: &str, world: &str, inputs: &[&str]) -> PathBuf {
    let componentize_py = common::componentize_py();
    cached_build(example, inputs, |out| {
        let mut cmd = Command::new(componentize_py);
        cmd.current_dir(repo_root().join("examples").join(example))
            .args(["-d", "wit", "-w", world, "componentize", "app", "-o"])
            .arg(out);
        cmd
    })
}

/// examples/`example` built with jco as its `npm run build` does: `entry` as world `world`.
fn js_build(example: &str, entry: &str, world: &str, inputs: &[&str]) -> PathBuf {
    let jco = common::jco();
    cached_build(example, inputs, |out| {
        let mut cmd = Command::new(jco);
        cmd.current_dir(repo_root().join("examples").join(example))
            .args(["componentize", entry, "--bundle", "--wit", "wit"])
            .args(["--world-name", world, "--out"])
            .arg(out);
        cmd
    })
}

/// examples/plugin-python.
fn python_filter() -> PathBuf {
    python_build(
        "plugin-python",
        "filter",
        &[
            "examples/plugin-python/app.py",
            "examples/plugin-python/msgpack_lite.py",
            "examples/plugin-python/requirements.txt",
            "wit/plugin.wit",
        ],
    )
}

/// examples/plugin-js.
fn js_filter() -> PathBuf {
    js_build(
        "plugin-js",
        "filter.js",
        "filter",
        &[
            "examples/plugin-js/filter.js",
            "examples/plugin-js/msgpack-lite.js",
            "examples/plugin-js/package-lock.json",
            "wit/plugin.wit",
        ],
    )
}

/// examples/plugin-python/output (in its folder, through its links).
fn python_output() -> PathBuf {
    python_build(
        "plugin-python/output",
        "output",
        &[
            "examples/plugin-python/output/app.py",
            "examples/plugin-python/output/msgpack_lite.py",
            "examples/plugin-python/requirements.txt",
            "wit/plugin.wit",
        ],
    )
}

/// examples/plugin-js/output.
fn js_output() -> PathBuf {
    js_build(
        "plugin-js/output",
        "output.js",
        "output",
        &[
            "examples/plugin-js/output/output.js",
            "examples/plugin-js/msgpack-lite.js",
            "examples/plugin-js/package-lock.json",
            "wit/plugin.wit",
        ],
    )
}

/// `wasm-router ARGS…` with the shared compile cache.
fn router(args: &[&str]) -> Output {
    let mut cmd = router_command();
    cmd.env("XDG_CACHE_HOME", cache_dir()).args(args);
    run_to_end(&mut cmd, &format!("wasm-router {}", args.join(" ")))
}

fn template_file(name: &str) -> String {
    repo_root()
        .join("examples/plugin-template")
        .join(name)
        .display()
        .to_string()
}

fn read_jsonl(path: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `test --expect` passes on the template's files, `print` in `init` reaches the plugin's
/// log, and a config the schema refuses is named by its path.
fn passes_test_expect(wasm: &Path) {
    let wasm = wasm.to_str().unwrap();
    // Interpreted plugins need more than the 50 ms default per call on a busy machine.
    let out = router(&[
        "test",
        wasm,
        "--limit",
        "deadline=5s,memory=256MiB",
        "--input",
        &template_file("sample.jsonl"),
        "--expect",
        &template_file("expected.jsonl"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("expect: output matches"), "{text}");
    assert!(text.contains("plugin_my_filter_dropped 2"), "{text}");
    assert!(
        text.contains("my-filter: dropping events whose log contains [\"GET /health\"]"),
        "the print() in init should be in the plugin's log:\n{text}"
    );

    let out = router(&[
        "test",
        wasm,
        "--limit",
        "deadline=5s,memory=256MiB",
        "--input",
        &template_file("sample.jsonl"),
        "--set",
        "drop_if_contains=5",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("drop_if_contains"), "{text}");
}

/// Forward in → the filter (with the limits its README gives) → stdout: the router's output
/// is the template's expected file.
fn runs_in_the_router(wasm: &Path, limits: &str) {
    let config = format!(
        r#"
[service]
grace = "5s"
plugin_cache_dir = "{cache}"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[filters]]
type = "wasm"
match = "app.*"
path = "{wasm}"
limits = {limits}

[[outputs]]
type = "stdout"
match = "*"
"#,
        cache = cache_dir().join("wasm-router").display(),
        wasm = wasm.display(),
    );
    let router = RouterProcess::start(&config);
    let mut conn = std::net::TcpStream::connect(router.tcp_addr()).unwrap();
    let sample = read_jsonl(&template_file("sample.jsonl"));
    for (i, record) in sample.iter().enumerate() {
        let chunk = format!("c{i}");
        let frame = common::message_frame(
            b"app.web",
            1_000 + i as u64,
            &common::msgpack(record),
            Some(&chunk),
        );
        conn.write_all(&frame).unwrap();
        common::expect_ack(&mut conn, &chunk);
    }
    let expected = read_jsonl(&template_file("expected.jsonl"));
    router.wait_for_events(expected.len());
    let got: Vec<Value> = router.stop().into_iter().map(|e| e.record).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_python_filter_built_by_componentize_py_passes_test_expect_and_runs_in_the_router() {
    let wasm = python_filter();
    passes_test_expect(&wasm);
    runs_in_the_router(&wasm, r#"{ deadline = "500ms", memory = "128MiB" }"#);
}

#[test]
fn a_javascript_filter_built_by_jco_passes_test_expect_and_runs_in_the_router() {
    let wasm = js_filter();
    passes_test_expect(&wasm);
    runs_in_the_router(&wasm, r#"{ deadline = "2s", memory = "256MiB" }"#);
}

/// `test --responses` with the output template's files: three requests of at most 200 bytes,
/// the secret header masked, one delivery decision per canned response.
fn passes_test_responses(wasm: &Path) {
    let file = |name: &str| {
        repo_root()
            .join("examples/output-template")
            .join(name)
            .display()
            .to_string()
    };
    let out = router(&[
        "test",
        wasm.to_str().unwrap(),
        "--limit",
        "deadline=5s,memory=256MiB",
        "--input",
        &file("sample.jsonl"),
        "--config",
        &file("sample-config.json"),
        "--responses",
        &file("responses.jsonl"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "plugin my-output 0.1.0 (output)",
        "request 1: POST https://logs.example.com/v1/ingest (2 events, compression gzip)",
        "request 3: POST https://logs.example.com/v1/ingest (1 events, compression gzip)",
        "authorization: Bearer ****",
        "delivery: ok",
        "delivery: retry after 2000 ms",
        "delivery: split-and-retry",
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
}

#[test]
fn python_and_javascript_outputs_pass_test_responses() {
    passes_test_responses(&python_output());
    passes_test_responses(&js_output());
}

#[test]
fn sockets_a_plugin_imports_are_denied_when_called_and_nothing_traps() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"log\": \"one\"}\n").unwrap();
    let out = router(&[
        "test",
        wasm_router_test_artifacts::NETWORK,
        "--input",
        input.to_str().unwrap(),
        "--json",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let text = report.to_string();
    assert_eq!(report["summary"]["faults"], json!(0), "{text}");
    assert!(text.contains("tcp: PermissionDenied"), "{text}");
    assert!(text.contains("udp: PermissionDenied"), "{text}");
    assert!(
        text.contains("dns: Uncategorized: failed to lookup address"),
        "{text}"
    );
    assert!(!text.contains(": ok"), "{text}");
}
