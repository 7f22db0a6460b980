//! Plugin projects as a vendor gets them: the template copied out of the repository, and the
//! projects `wasm-router plugin new` writes, each built for `wasm32-wasip2` by a real `cargo`
//! and run by `wasm-router test` with the files it comes with. The SDK dependency is pointed
//! at this checkout by rewriting its one line (the projects depend on the git repository;
//! tests make no network access); everything else builds offline from Cargo's cache.

use super::cli::run;
use crate::common::{assert_success, run_to_end};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The SDK dependency line every Rust template carries.
const GIT_DEPENDENCY: &str =
    r#"wasm-router-sdk = { git = "https://github.com/wasm-router/wasm-router" }"#;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Point the project's SDK dependency at this checkout.
fn use_this_checkout(project: &Path) {
    let manifest = project.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        text.contains(GIT_DEPENDENCY),
        "{}: no `{GIT_DEPENDENCY}` line:\n{text}",
        manifest.display()
    );
    let local = format!(
        "wasm-router-sdk = {{ path = {:?} }}",
        repository().join("sdk").display().to_string()
    );
    std::fs::write(&manifest, text.replace(GIT_DEPENDENCY, &local)).unwrap();
}

/// `cargo ARGS` in `project`, offline, with a target directory the projects share (so the
/// SDK and its dependencies are built once).
fn cargo(project: &Path, args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // No hang timeout of its own: a cold build takes minutes on a busy machine, and
    // nextest's slow-timeout ends a hung one.
    let out = Command::new(cargo)
        .current_dir(project)
        .args(args)
        .arg("--offline")
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("vendor-projects"),
        )
        .output()
        .unwrap();
    assert_success(
        &out,
        &format!("cargo {} in {}", args.join(" "), project.display()),
    );
}

/// Build `project` as its README says and return its component.
fn build(project: &Path, library: &str) -> String {
    cargo(
        project,
        &["build", "--release", "--target", "wasm32-wasip2"],
    );
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("vendor-projects/wasm32-wasip2/release")
        .join(format!("{library}.wasm"))
        .display()
        .to_string()
}

/// `wasm-router test` on `wasm` with the project's sample files and `check` (`--expect …` or
/// `--responses …`); returns its report.
fn test_passes(project: &Path, wasm: &str, check: &[&str]) -> String {
    let file = |name: &str| project.join(name).display().to_string();
    let (input, config) = (file("sample.jsonl"), file("sample-config.json"));
    let mut args = vec!["test", wasm, "--input", &input, "--config", &config];
    let check: Vec<String> = check
        .iter()
        .map(|a| {
            if a.ends_with(".jsonl") {
                file(a)
            } else {
                a.to_string()
            }
        })
        .collect();
    args.extend(check.iter().map(String::as_str));
    let out = run(&args);
    assert_success(&out, &format!("wasm-router {}", args.join(" ")));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "target" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn the_template_copied_out_and_plugin_new_projects_build_and_pass_wasm_router_test() {
    let dir = tempfile::tempdir().unwrap();

    // The template, copied out of the repository with nothing else.
    let template = dir.path().join("my-filter");
    copy_dir(&repository().join("examples/plugin-template"), &template);
    use_this_checkout(&template);
    let wasm = build(&template, "my_filter");
    let report = test_passes(&template, &wasm, &["--expect", "expected.jsonl"]);
    assert!(report.contains("expect: output matches"), "{report}");
    // Its own tests (`tests/sample.rs` reads the same sample-config.json).
    cargo(&template, &["test"]);

    // `plugin new`, both kinds.
    for (name, kind, check) in [
        ("acme-filter", "filter", ["--expect", "expected.jsonl"]),
        ("acme-output", "output", ["--responses", "responses.jsonl"]),
    ] {
        let project = dir.path().join(name);
        let out = run(&[
            "plugin",
            "new",
            name,
            "--kind",
            kind,
            "--dir",
            &project.display().to_string(),
        ]);
        assert_success(&out, "wasm-router plugin new");
        use_this_checkout(&project);
        let wasm = build(&project, &name.replace('-', "_"));
        let report = test_passes(&project, &wasm, &check);
        assert!(report.contains(name), "{report}");
        if kind == "output" {
            assert!(
                report.contains("authorization") && report.contains("Bearer ****"),
                "{report}"
            );
        }
    }
    // An existing directory is refused.
    let out = run(&[
        "plugin",
        "new",
        "acme-filter",
        "--kind",
        "filter",
        "--dir",
        &dir.path().join("acme-filter").display().to_string(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

#[test]
fn the_sdk_crates_package_the_one_wit_of_the_workspace() {
    let root = repository();
    let contract = std::fs::canonicalize(root.join("wit/plugin.wit")).unwrap();
    for crate_dir in ["sdk", "sdk/macros"] {
        assert_eq!(
            std::fs::canonicalize(root.join(crate_dir).join("wit/plugin.wit")).unwrap(),
            contract,
            "{crate_dir}/wit must be the symlink to the workspace's wit/ (the one contract), not a copy"
        );
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for package in ["wasm-router-sdk", "wasm-router-sdk-macros"] {
        let out = run_to_end(
            Command::new(&cargo).current_dir(&root).args([
                "package",
                "--list",
                "--allow-dirty",
                "--offline",
                "-p",
                package,
            ]),
            "cargo package --list",
        );
        assert_success(&out, "cargo package --list");
        let files = String::from_utf8_lossy(&out.stdout);
        assert!(
            files.lines().any(|l| l == "wit/plugin.wit"),
            "{package} does not package wit/plugin.wit:\n{files}"
        );
    }
}
