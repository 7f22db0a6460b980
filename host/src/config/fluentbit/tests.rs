//! Unit tests of the classic parser and mapper: every unsupported key or section says where,
//! what and what to do instead.

use super::parse::Parser;
use super::*;
use std::path::PathBuf;

fn no_env(_: &str) -> Option<String> {
    None
}

fn mapped(text: &str) -> Result<Mapped, String> {
    let sections = Parser::new(&no_env)
        .parse_text(text, Path::new("main.conf"))
        .map_err(|e| e.to_string())?;
    map(&sections)
}

fn error_of(text: &str) -> String {
    mapped(text).expect_err("should be refused")
}

const MINIMAL: &str =
    "[INPUT]\n    Name forward\n    unix_path /tmp/x.sock\n[OUTPUT]\n    Name null\n    Match *\n";

#[test]
fn keys_are_case_insensitive_multi_valued_and_keep_their_line() {
    let sections = Parser::new(&no_env)
        .parse_text(
            "# comment\n[filter]\n  NAME wasm\n  record a 1\n  Record b 2\n",
            Path::new("f.conf"),
        )
        .unwrap();
    assert_eq!(sections[0].kind, "FILTER");
    let records: Vec<_> = sections[0]
        .all("record")
        .map(|e| (e.value.as_str(), e.origin.line))
        .collect();
    assert_eq!(records, [("a 1", 4), ("b 2", 5)]);
    assert_eq!(sections[0].get("name").unwrap().value, "wasm");
}

#[test]
fn set_variables_and_environment_expand() {
    let env = |n: &str| (n == "FB_TEST_PORT").then(|| "24225".to_string());
    let text = "@SET host=127.0.0.1\n[INPUT]\n    Name forward\n    Listen ${host}\n    Port ${FB_TEST_PORT}\n[OUTPUT]\n    Name stdout\n    Match *\n";
    let sections = Parser::new(&env)
        .parse_text(text, Path::new("m.conf"))
        .unwrap();
    let m = map(&sections).unwrap();
    let crate::config::InputConfig::Forward(f) = &m.config.inputs[0];
    assert_eq!(f.listen.as_deref(), Some("127.0.0.1:24225"));
}

#[test]
fn an_unset_variable_names_file_line_and_variable() {
    let e = error_of("[OUTPUT]\n    Name null\n    Match ${NOPE_NOT_SET_ANYWHERE}\n");
    assert!(
        e.starts_with("main.conf:3:") && e.contains("NOPE_NOT_SET_ANYWHERE"),
        "{e}"
    );
}

#[test]
fn includes_are_relative_absolute_nested_and_globbed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("conf.d")).unwrap();
    std::fs::write(
        root.join("main.conf"),
        "[INPUT]\n    Name forward\n    unix_path /tmp/a.sock\n@INCLUDE conf.d/*.conf\n",
    )
    .unwrap();
    std::fs::write(
        root.join("conf.d/a.conf"),
        "[SERVICE]\n    Grace 7\n@INCLUDE ../nested.conf\n",
    )
    .unwrap();
    std::fs::write(
        root.join("conf.d/b.conf"),
        format!("@INCLUDE {}\n", root.join("abs.conf").display()),
    )
    .unwrap();
    std::fs::write(
        root.join("nested.conf"),
        "[OUTPUT]\n    Name null\n    Match *\n",
    )
    .unwrap();
    std::fs::write(
        root.join("abs.conf"),
        "[OUTPUT]\n    Name stdout\n    Match app*\n",
    )
    .unwrap();
    let m = load(&root.join("main.conf")).unwrap();
    assert_eq!(m.config.service.grace.0.as_secs(), 7);
    let kinds: Vec<_> = m.config.outputs.iter().map(|o| o.type_name()).collect();
    assert_eq!(kinds, ["null", "stdout"]);
}

#[test]
fn an_include_cycle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loop.conf");
    std::fs::write(&path, "@INCLUDE loop.conf\n").unwrap();
    let e = load(&path).unwrap_err().to_string();
    assert!(
        e.contains("nested deeper") && e.contains("loop.conf:1"),
        "{e}"
    );
}

#[test]
fn a_missing_include_names_the_including_line() {
    let e = error_of("[SERVICE]\n    Flush 1\n@INCLUDE /nonexistent/parse-json.conf\n");
    assert!(
        e.starts_with("main.conf:3:") && e.contains("/nonexistent/parse-json.conf"),
        "{e}"
    );
}

#[test]
fn stream_task_is_not_supported_and_points_to_wasm() {
    let e = error_of(&format!(
        "{MINIMAL}[STREAM_TASK]\n    Name t\n    Exec SELECT 1;\n"
    ));
    assert!(
        e.starts_with("main.conf:7:")
            && e.contains("not supported; use a WASM filter")
            && e.contains("docs/"),
        "{e}"
    );
}

#[test]
fn lua_is_not_supported_and_points_to_wasm() {
    let e = error_of(&format!("{MINIMAL}[FILTER]\n    Name lua\n    Match *\n"));
    assert!(
        e.starts_with("main.conf:7:")
            && e.contains("not supported; use a WASM filter")
            && e.contains("docs/"),
        "{e}"
    );
}

#[test]
fn a_parser_section_in_the_main_config_says_use_r() {
    let e = error_of(&format!("{MINIMAL}[PARSER]\n    Name json\n"));
    assert!(e.starts_with("main.conf:7:") && e.contains("-R"), "{e}");
}

#[test]
fn unknown_keys_name_file_line_key_and_the_accepted_keys() {
    let e = error_of(
        "[INPUT]\n    Name forward\n    Lisen 0.0.0.0\n[OUTPUT]\n    Name null\n    Match *\n",
    );
    assert!(
        e.starts_with("main.conf:3:") && e.contains("`lisen`") && e.contains("Listen"),
        "{e}"
    );
    let e = error_of("[SERVICE]\n    Flsh 1\n");
    assert!(
        e.starts_with("main.conf:2:") && e.contains("`flsh`") && e.contains("Flush"),
        "{e}"
    );
    let e = error_of(
        "[INPUT]\n    Name forward\n    unix_path /x\n[OUTPUT]\n    Name cloudwatch_logs\n    Match *\n    region us-east-1\n    log_grop_name g\n",
    );
    assert!(
        e.starts_with("main.conf:8:") && e.contains("`log_grop_name`"),
        "{e}"
    );
}

#[test]
fn vendor_outputs_are_not_available_yet() {
    for name in ["datadog", "newrelic"] {
        let e = error_of(&format!(
            "{MINIMAL}[OUTPUT]\n    Name {name}\n    Match *\n"
        ));
        assert!(
            e.starts_with("main.conf:7:") && e.contains(name) && e.contains("not available yet"),
            "{e}"
        );
    }
}

#[test]
fn unsupported_inputs_outputs_and_filters_say_what_to_use() {
    let e = error_of("[INPUT]\n    Name tail\n    Path /var/log/*.log\n");
    assert!(
        e.starts_with("main.conf:1:") && e.contains("`tail`") && e.contains("forward"),
        "{e}"
    );
    let e = error_of(&format!("{MINIMAL}[OUTPUT]\n    Name kafka\n    Match *\n"));
    assert!(
        e.contains("`kafka`") && e.contains("cloudwatch_logs"),
        "{e}"
    );
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name grep\n    Match *\n    Exclude log ^DEBUG\n"
    ));
    assert!(
        e.starts_with("main.conf:7:") && e.contains("`grep`") && e.contains("WASM filter"),
        "{e}"
    );
}

#[test]
fn multiline_partial_message_maps_to_reassembly_and_other_modes_are_refused() {
    let m = mapped(&format!("{MINIMAL}[FILTER]\n    Name multiline\n    Match *\n    Mode partial_message\n    flush_ms 500\n")).unwrap();
    assert!(m.config.service.partial_reassembly);
    assert_eq!(m.config.service.partial_flush_timeout.0.as_millis(), 500);
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name multiline\n    Match *\n    multiline.parser java\n"
    ));
    assert!(
        e.starts_with("main.conf:10:")
            && e.contains("multiline.parser")
            && e.contains("WASM filter"),
        "{e}"
    );
}

#[test]
fn wasm_filters_take_their_other_keys_as_plugin_config() {
    let m = mapped(&format!("{MINIMAL}[FILTER]\n    Name wasm\n    Match app-*\n    Path /plugins/redact.wasm\n    Alias redact\n    Fields password,token\n")).unwrap();
    let crate::config::FilterConfig::Wasm(w) = &m.config.filters[0];
    assert_eq!(w.path, PathBuf::from("/plugins/redact.wasm"));
    assert_eq!(w.name.as_deref(), Some("redact"));
    assert_eq!(
        w.config.as_ref().unwrap()["fields"].as_str(),
        Some("password,token")
    );
    let e = error_of(&format!("{MINIMAL}[FILTER]\n    Name wasm\n    Match *\n"));
    assert!(e.starts_with("main.conf:7:") && e.contains("Path"), "{e}");
}

#[test]
fn service_maps_grace_log_level_http_and_filesystem_storage() {
    let text = "[SERVICE]\n    Flush 1\n    Grace 30\n    Log_Level debug\n    HTTP_Server On\n    HTTP_Listen 127.0.0.1\n    HTTP_Port 2021\n    storage.path /var/lib/flb\n[INPUT]\n    Name forward\n    unix_path /tmp/s\n    storage.type filesystem\n[OUTPUT]\n    Name null\n    Match *\n    storage.total_limit_size 1G\n    Retry_Limit 5\n";
    let m = mapped(text).unwrap();
    let s = &m.config.service;
    assert_eq!(
        (
            s.grace.0.as_secs(),
            s.log_level.as_deref(),
            s.http_listen.as_deref()
        ),
        (30, Some("debug"), Some("127.0.0.1:2021"))
    );
    let o = m.config.outputs[0].routing();
    assert_eq!(o.buffer().kind, crate::config::BufferType::Disk);
    assert_eq!(o.buffer().path.as_deref(), Some(Path::new("/var/lib/flb")));
    assert_eq!(o.buffer().max_bytes.unwrap().0, 1 << 30);
    assert_eq!(o.retry_limit(), Some(5));
    assert!(
        m.warnings
            .iter()
            .any(|w| w.starts_with("main.conf:2:") && w.contains("flush")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn numeric_looking_strings_stay_strings() {
    let m = mapped("[INPUT]\n    Name forward\n    unix_path /tmp/s\n[OUTPUT]\n    Name cloudwatch\n    Match *\n    region us-east-1\n    log_group_name 12345\n    log_stream_prefix 007\n    auto_create_group On\n").unwrap();
    let crate::config::OutputConfig::CloudwatchLogs(c) = &m.config.outputs[0] else {
        panic!()
    };
    assert_eq!(c.log_group_name.as_deref(), Some("12345"));
    assert_eq!(c.log_stream_prefix.as_deref(), Some("007"));
    assert_eq!(c.auto_create_group, Some(true));
}

#[test]
fn classic_text_is_recognised() {
    assert!(looks_classic("\n# generated\n[INPUT]\n    Name forward\n"));
    assert!(looks_classic("@INCLUDE /fluent-bit/etc/fluent-bit.conf\n"));
    assert!(!looks_classic("[service]\ngrace = \"5s\"\n[[inputs]]\n"));
}
