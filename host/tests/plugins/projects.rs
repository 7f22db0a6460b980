//! Plugin projects as a vendor gets them: the template copied out of the repository, and the
//! projects `wasm-router plugin new` writes, each built by its real toolchain and run by
//! `wasm-router test` with the files it comes with.
//!
//! Rust projects are built for `wasm32-wasip2` by `cargo`; their SDK dependency is pointed at
//! this checkout by rewriting its one line (the projects depend on the git repository; tests
//! make no network access), and everything else builds offline from Cargo's cache. Python and
//! JavaScript projects run the steps `plugin new` prints, as printed, except the one-time
//! toolchain install (`pip install` into `.venv`, `npm ci` into `node_modules`): the project
//! gets a link to the toolchain `scripts/install-test-deps` installed from the same pins
//! (`.test-deps/venv`, `examples/plugin-js/node_modules`), so the test stays offline.

use super::cli::run;
use super::support::cache_dir;
use crate::common::{self, assert_success, router_command, run_to_end};
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

/// `plugin new` in `lang`, both kinds, then the steps it prints, in the project: the install
/// step (`install`, also in the README) is replaced by a link from `link` in the project to
/// the installed `toolchain`, the build steps run in `sh` as printed, and the printed
/// `wasm-router test` must pass. The README gives the same steps.
fn interpreted_projects_pass_their_printed_steps(
    lang: &str,
    install: &str,
    link: &str,
    toolchain: &Path,
) {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["filter", "output"] {
        let name = format!("acme-{lang}-{kind}");
        let project = dir.path().join(&name);
        let out = run(&[
            "plugin",
            "new",
            &name,
            "--lang",
            lang,
            "--kind",
            kind,
            "--dir",
            &project.display().to_string(),
        ]);
        assert_success(&out, &format!("wasm-router plugin new --lang {lang}"));
        let printed = String::from_utf8_lossy(&out.stdout).into_owned();
        let steps: Vec<&str> = printed
            .lines()
            .skip(1)
            .map(|line| line.split(" #").next().unwrap().trim())
            .collect();
        let [cd, install_step, builds @ .., test] = steps.as_slice() else {
            panic!("too few steps:\n{printed}");
        };
        assert_eq!(*cd, format!("cd {}", project.display()), "{printed}");
        assert_eq!(*install_step, install, "{printed}");
        let readme = std::fs::read_to_string(project.join("README.md"))
            .unwrap()
            .replace("\\\n    ", "");
        for step in std::iter::once(install_step).chain(builds).chain([test]) {
            assert!(readme.contains(step), "the README does not give `{step}`");
        }

        std::os::unix::fs::symlink(toolchain, project.join(link)).unwrap();
        for step in builds {
            let out = run_to_end(
                Command::new("sh").current_dir(&project).args(["-c", step]),
                step,
            );
            assert_success(&out, &format!("`{step}` in {}", project.display()));
        }
        let args: Vec<&str> = test
            .strip_prefix("wasm-router ")
            .unwrap_or_else(|| panic!("the last step is not `wasm-router …`: {test}"))
            .split_whitespace()
            .collect();
        let out = run_to_end(
            router_command()
                .current_dir(&project)
                .env("XDG_CACHE_HOME", cache_dir())
                .args(&args),
            test,
        );
        assert_success(&out, &format!("`{test}` in {}", project.display()));
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            report.contains(&format!("plugin {name} 0.1.0 ({kind})")),
            "{report}"
        );
        if kind == "filter" {
            assert!(report.contains("expect: output matches"), "{report}");
            let metric = format!("plugin_{}_dropped 2", name.replace('-', "_"));
            assert!(report.contains(&metric), "{report}");
            assert!(
                report.contains(&format!("{name}: dropping events whose log contains")),
                "{report}"
            );
        } else {
            // The output template's sample: three requests, one per canned response.
            for line in [
                "authorization: Bearer ****",
                "delivery: ok",
                "delivery: retry after 2000 ms",
                "delivery: split-and-retry",
            ] {
                assert!(report.contains(line), "no `{line}` in:\n{report}");
            }
        }
    }
}

/// The toolchain's install directory: `<venv>` of `<venv>/bin/componentize-py`,
/// `<node_modules>` of `<node_modules>/.bin/jco`.
fn install_dir(tool: &Path) -> &Path {
    tool.parent().unwrap().parent().unwrap()
}

#[test]
fn plugin_new_python_projects_pass_wasm_router_test_by_the_steps_they_print() {
    interpreted_projects_pass_their_printed_steps(
        "python",
        "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt",
        ".venv",
        install_dir(&common::componentize_py()),
    );
}

#[test]
fn plugin_new_js_projects_pass_wasm_router_test_by_the_steps_they_print() {
    interpreted_projects_pass_their_printed_steps(
        "js",
        "npm ci",
        "node_modules",
        install_dir(&common::jco()),
    );
}
