//! The FireLens compatibility corpus (`testing/firelens-corpus`): 76 real configs, each validated
//! by the binary under test, must get the class `expected.txt` commits for it — a config that
//! ran can never silently stop running, and one that starts running updates the file.

use crate::common;
use std::path::Path;

#[test]
fn every_firelens_corpus_case_gets_its_expected_class() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testing/firelens-corpus");
    let plugins = Path::new(wasm_router_test_artifacts::DATADOG)
        .parent()
        .expect("the guests' folder");
    let router = std::env::var_os("WASM_ROUTER_TEST_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_wasm-router").into());
    let mut cmd = std::process::Command::new(common::python());
    cmd.arg(root.join("run"))
        .arg("--router")
        .arg(router)
        .arg("--plugins")
        .arg(plugins)
        .arg("--expect")
        .arg(root.join("expected.txt"));
    let out = common::run_to_end(&mut cmd, "testing/firelens-corpus/run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("every case as expected") && stdout.contains("of 76"),
        "{stdout}"
    );
}
