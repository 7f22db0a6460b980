//! `wasm-router validate` refuses what `run` would refuse, short of binding sockets: plugins
//! that do not load or whose `init` refuses the config, listeners that collide, sizes and
//! durations that are zero, negative or do not fit; each message names the file, the key (in
//! the format the user wrote: TOML key path, or classic `file:line` and key) and the fix. And a
//! config that validates runs: a `grace` at the bound starts and stops without a panic.

use crate::common;

use common::{HANG_TIMEOUT, RouterProcess, router_command, run_to_end};
use std::path::Path;

/// `wasm-router validate -c <dir>/<name>` on `text`: the exit code and stderr.
fn validate(dir: &Path, name: &str, text: &str) -> (Option<i32>, String) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = run_to_end(
        router_command().args(["validate", "-c", path.to_str().unwrap()]),
        "wasm-router validate",
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A TOML config: one forward input on a free port, `filters`, and a null output.
fn toml_with_filters(dir: &Path, filters: &str) -> String {
    format!(
        "[service]\nplugin_cache_dir = \"{}/cache\"\n\n[[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:0\"\n\n{filters}\n[[outputs]]\ntype = \"null\"\nmatch = \"*\"\n",
        dir.display()
    )
}

fn wasm_filter(path: &str, extra: &str) -> String {
    format!("[[filters]]\ntype = \"wasm\"\nmatch = \"*\"\npath = \"{path}\"\n{extra}\n")
}

#[test]
fn a_working_filter_plugin_validates() {
    let dir = tempfile::tempdir().unwrap();
    let text = toml_with_filters(
        dir.path(),
        &wasm_filter(wasm_router_test_artifacts::KEEP_ALL, ""),
    );
    let (code, err) = validate(dir.path(), "router.toml", &text);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn a_filter_file_that_is_not_webassembly_fails_validate() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("redact.wasm");
    std::fs::write(&fake, "#!/bin/sh\necho not a plugin\n").unwrap();
    let text = toml_with_filters(dir.path(), &wasm_filter(fake.to_str().unwrap(), ""));
    let (code, err) = validate(dir.path(), "router.toml", &text);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("router.toml"), "names the config file: {err}");
    assert!(err.contains("filters[0]"), "names the filter: {err}");
    assert!(
        err.contains(fake.to_str().unwrap()) && err.contains("not a WebAssembly"),
        "names the plugin and what it is: {err}"
    );
}

#[test]
fn a_filter_plugin_whose_init_refuses_its_config_fails_validate() {
    let dir = tempfile::tempdir().unwrap();
    let text = toml_with_filters(
        dir.path(),
        &wasm_filter(
            wasm_router_test_artifacts::INIT_FAILS,
            "config = { fields = [\"log\"] }",
        ),
    );
    let (code, err) = validate(dir.path(), "router.toml", &text);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("filters[0]"), "{err}");
    assert!(
        err.contains("refused its config")
            && err.contains("config/fields/0")
            && err.contains("fix the `config` table"),
        "says what init refused, where, and the fix: {err}"
    );
}

#[test]
fn an_output_plugin_configured_as_a_filter_fails_validate() {
    let dir = tempfile::tempdir().unwrap();
    let text = toml_with_filters(
        dir.path(),
        &wasm_filter(wasm_router_test_artifacts::JSON_OUTPUT, ""),
    );
    let (code, err) = validate(dir.path(), "router.toml", &text);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("filters[0]") && err.contains("configure it under [[outputs]]"),
        "{err}"
    );
}

#[test]
fn an_elf_file_named_cwasm_is_called_native_code() {
    let dir = tempfile::tempdir().unwrap();
    let elf = dir.path().join("plugin.cwasm");
    std::fs::copy("/bin/true", &elf).unwrap();
    let text = toml_with_filters(dir.path(), &wasm_filter(elf.to_str().unwrap(), ""));
    let (code, err) = validate(dir.path(), "router.toml", &text);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("native ELF") && !err.contains("precompiled artifact (.cwasm)"),
        "an arbitrary ELF file is not called a .cwasm: {err}"
    );
}

#[test]
fn duplicate_listen_addresses_are_refused_naming_both_keys() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("fluent.sock");
    let text = format!(
        "[service]\nhttp_listen = \"127.0.0.1:24299\"\n\n\
         [[inputs]]\ntype = \"forward\"\nlisten = \"0.0.0.0:24298\"\nunix_path = \"{0}\"\n\n\
         [[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:24298\"\n\n\
         [[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:24299\"\nunix_path = \"{0}\"\n\n\
         [[outputs]]\ntype = \"null\"\nmatch = \"*\"\n",
        sock.display()
    );
    let (code, err) = validate(dir.path(), "router.toml", &text);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "inputs[1].listen = \"127.0.0.1:24298\" clashes with inputs[0].listen = \"0.0.0.0:24298\""
        ),
        "an unspecified address covers its port: {err}"
    );
    assert!(
        err.contains("inputs[2].unix_path") && err.contains("clashes with inputs[0].unix_path"),
        "{err}"
    );
    assert!(
        err.contains(
            "service.http_listen = \"127.0.0.1:24299\" clashes with inputs[2].listen = \"127.0.0.1:24299\""
        ),
        "the health server collides with an input: {err}"
    );
    assert!(err.contains("give each a distinct address"), "{err}");
}

#[test]
fn zero_negative_and_overflowing_sizes_and_durations_are_refused_with_key_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[service]\ngrace = \"307445734561825861m\"\n",
            "",
            &["line 2", "grace = ", "too long", "87600h"][..],
        ),
        (
            "[service]\nretry_backoff_base = \"0s\"\n",
            "",
            &["service.retry_backoff_base must be at least \"1ms\""][..],
        ),
        (
            "",
            "buffer_max_size = 0\n",
            &["inputs[0].buffer_max_size must be more than 0", "e.g."][..],
        ),
        (
            "",
            "buffer_max_size = \"99999999999G\"\n",
            &["line 5: `buffer_max_size`", "too large", "at most 1PiB"][..],
        ),
        (
            "",
            "buffer_max_size = -5\n",
            &["line 5: `buffer_max_size`", "negative"][..],
        ),
        (
            "[service]\npartial_flush_timeout = \"0ms\"\n",
            "",
            &["service.partial_flush_timeout must be more than 0"][..],
        ),
    ];
    for (service, input, wanted) in cases {
        let text = format!(
            "{service}\n[[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:0\"\n{input}\n[[outputs]]\ntype = \"null\"\nmatch = \"*\"\n"
        );
        let (code, err) = validate(dir.path(), "router.toml", &text);
        assert_eq!(code, Some(1), "{text}\n{err}");
        assert!(err.contains("router.toml"), "names the file: {err}");
        for w in wanted {
            assert!(err.contains(w), "{text}\nwanted {w:?} in: {err}");
        }
    }
}

#[test]
fn classic_configs_are_refused_at_file_line_and_classic_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[SERVICE]\n    Grace 5\n\n[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 24297\n    Buffer_Max_Size 0\n\n[INPUT]\n    Name forward\n    Listen 0.0.0.0\n    Port 24297\n\n[OUTPUT]\n    Name null\n    Match *\n";
    let (code, err) = validate(dir.path(), "fluent-bit.conf", text);
    assert_eq!(code, Some(1), "{err}");
    let conf = dir.path().join("fluent-bit.conf");
    let at = |line: usize| format!("{}:{line}: ", conf.display());
    assert!(
        err.contains(&format!("{}buffer_max_size must be more than 0", at(8))),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{}listen = \"0.0.0.0:24297\" clashes with `listen` at {}:6",
            at(12),
            conf.display()
        )),
        "{err}"
    );
    let (code, err) = validate(
        dir.path(),
        "huge.conf",
        "[SERVICE]\n    Grace 307445734561825861m\n[INPUT]\n    Name forward\n    unix_path /tmp/wr-validate-test.sock\n[OUTPUT]\n    Name null\n    Match *\n",
    );
    assert_eq!(code, Some(1), "{err}");
    let huge = dir.path().join("huge.conf");
    assert!(
        err.contains(&format!("{}:2: grace: ", huge.display())) && err.contains("too long"),
        "{err}"
    );
}

#[test]
fn a_grace_at_the_bound_runs_and_stops_without_a_panic() {
    let mut router = RouterProcess::start(
        "[service]\ngrace = \"87600h\"\n\n[[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:0\"\n\n[[outputs]]\ntype = \"stdout\"\nmatch = \"*\"\n",
    );
    router.listening(1);
    router.signal("TERM");
    let status = router.wait_exit(HANG_TIMEOUT);
    let log = router.log().join("\n");
    assert!(status.success(), "exit {status}; log:\n{log}");
    assert!(!log.contains("panicked"), "{log}");
}
