//! One test per message the classic loader gives for what it does not support: every
//! "not supported" section, directive, input, filter, output or option, every unknown key of
//! every section, and every warning for an option it accepts and ignores. Each test checks that
//! the message names `file:line`, the key (or section) and what to do instead.

use super::parse::Parser;
use super::*;

/// A valid config of six lines: a section appended to it starts at line 7.
const MINIMAL: &str =
    "[INPUT]\n    Name forward\n    unix_path /tmp/x.sock\n[OUTPUT]\n    Name null\n    Match *\n";

/// Map `text` as `main.conf`, with `${VAR}` read from the process environment (vendor keys
/// must come from there; `PATH` stands for such a variable).
fn load(text: &str) -> Result<Mapped, String> {
    let env = |name: &str| std::env::var(name).ok();
    let sections = Parser::new(&env)
        .parse_text(text, Path::new("main.conf"))
        .map_err(|e| e.to_string())?;
    map(&sections)
}

/// `message` starts with `main.conf:<line>:` and contains every one of `parts`.
fn assert_says(message: &str, line: usize, parts: &[&str]) {
    let at = format!("main.conf:{line}:");
    assert!(message.starts_with(&at), "not at {at}: {message}");
    for part in parts {
        assert!(message.contains(part), "no {part:?} in: {message}");
    }
}

/// `MINIMAL` + `section` is refused at `line` with a message containing `parts`.
fn refused(section: &str, line: usize, parts: &[&str]) {
    let message = load(&format!("{MINIMAL}{section}")).expect_err("should be refused");
    assert_says(&message, line, parts);
}

/// `MINIMAL` + `section` loads, with a warning at `line` containing `parts`.
fn warned(section: &str, line: usize, parts: &[&str]) {
    let mapped = load(&format!("{MINIMAL}{section}")).unwrap_or_else(|e| panic!("refused: {e}"));
    let at = format!("main.conf:{line}:");
    let warning = mapped
        .warnings
        .iter()
        .find(|w| w.starts_with(&at))
        .unwrap_or_else(|| panic!("no warning at {at}: {:?}", mapped.warnings));
    assert_says(warning, line, parts);
}

// ----- sections and directives -----

#[test]
fn stream_task_unknown_key() {
    refused(
        "[STREAM_TASK]\n    Name t\n    Exec SELECT * FROM TAG:'x';\n    Tag x\n",
        10,
        &["unknown key `tag` in [STREAM_TASK]", "Name, Exec"],
    );
}

#[test]
fn parser_section_in_the_main_config() {
    refused(
        "[PARSER]\n    Name custom\n    Format json\n",
        7,
        &[
            "[PARSER]",
            "not allowed in the main config",
            "-R <file>",
            "Parsers_File",
        ],
    );
}

#[test]
fn multiline_parser_section_in_the_main_config() {
    refused(
        "[MULTILINE_PARSER]\n    Name java\n    Type regex\n",
        7,
        &[
            "[MULTILINE_PARSER]",
            "not allowed in the main config",
            "-R <file>",
        ],
    );
}

#[test]
fn unknown_section() {
    refused(
        "[UPSTREAM]\n    Name balancing\n",
        7,
        &[
            "[UPSTREAM]",
            "unknown section",
            "use [SERVICE], [INPUT], [FILTER], [OUTPUT] or [STREAM_TASK]",
        ],
    );
}

#[test]
fn section_without_name() {
    refused(
        "[FILTER]\n    Match *\n",
        7,
        &["[FILTER]", "no `Name`", "add e.g. `Name"],
    );
}

#[test]
fn unknown_directive() {
    refused(
        "@INCLUDE_ONCE other.conf\n",
        7,
        &["`@INCLUDE_ONCE`", "only @INCLUDE and @SET exist"],
    );
}

#[test]
fn key_outside_any_section() {
    let message = load("Flush 1\n[INPUT]\n    Name forward\n").expect_err("refused");
    assert_says(
        &message,
        1,
        &["`Flush`", "outside any section", "put it under [SERVICE]"],
    );
}

// ----- [SERVICE] -----

#[test]
fn service_health_check_maps_with_its_limits_and_period() {
    let mapped = load(&format!(
        "{MINIMAL}[SERVICE]\n    Health_Check On\n    HC_Errors_Count 3\n    HC_Period 10\n"
    ))
    .unwrap();
    assert_eq!(
        mapped.config.service.health_check,
        Some(crate::ops::fluent_bit_api::HealthCheckConfig {
            errors_count: 3,
            retry_failure_count: 5,
            period: 10,
        })
    );
    let off = load(&format!("{MINIMAL}[SERVICE]\n    HC_Errors_Count 3\n")).unwrap();
    assert_eq!(off.config.service.health_check, None);
    assert!(!off.config.service.storage_metrics);
}

#[test]
fn service_storage_metrics_serves_the_storage_endpoint() {
    let on = load(&format!("{MINIMAL}[SERVICE]\n    storage.metrics On\n")).unwrap();
    assert!(on.config.service.storage_metrics);
    assert!(on.warnings.is_empty(), "{:?}", on.warnings);
}

#[test]
fn service_health_check_keys_without_health_check_are_ignored() {
    for key in ["HC_Errors_Count", "HC_Retry_Failure_Count", "HC_Period"] {
        warned(
            &format!("[SERVICE]\n    {key} 2\n"),
            8,
            &[
                &format!("`{}`", key.to_ascii_lowercase()),
                "is ignored: Health_Check is off",
                "Health_Check On",
            ],
        );
    }
    warned(
        "[SERVICE]\n    Daemon off\n",
        8,
        &["`daemon`", "ignored", "foreground"],
    );
}

#[test]
fn a_health_check_count_that_is_not_a_number_is_refused() {
    refused(
        "[SERVICE]\n    Health_Check On\n    HC_Errors_Count five\n",
        9,
        &["hc_errors_count", "\"five\"", "whole number"],
    );
}

#[test]
fn service_storage_keys_are_ignored() {
    warned(
        "[SERVICE]\n    storage.sync full\n",
        8,
        &[
            "`storage.sync`",
            "accepted and ignored",
            "disk buffers are tuned per output",
        ],
    );
}

#[test]
fn service_unknown_key() {
    refused(
        "[SERVICE]\n    Scheduler.Cap 30\n",
        8,
        &[
            "`scheduler.cap`",
            "in [SERVICE]",
            "remove it",
            "accepted keys: Flush, Grace",
        ],
    );
}

// ----- [INPUT] -----

#[test]
fn forward_memory_keys_are_ignored() {
    for key in ["Mem_Buf_Limit 50MB", "Buffer_Chunk_Size 1M", "Threaded on"] {
        let name = key.split(' ').next().unwrap().to_ascii_lowercase();
        warned(
            &format!("[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n    {key}\n"),
            11,
            &[&format!("`{name}`"), "accepted", "[service] memory_budget"],
        );
    }
}

#[test]
fn forward_unknown_key() {
    refused(
        "[INPUT]\n    Name forward\n    Port 0\n    Lisen 127.0.0.1\n",
        10,
        &["`lisen`", "in [INPUT] forward", "remove it", "Listen, Port"],
    );
}

#[test]
fn tcp_input_unknown_key() {
    refused(
        "[INPUT]\n    Name tcp\n    Port 8877\n    Keepalive on\n",
        10,
        &[
            "`keepalive`",
            "in [INPUT] tcp",
            "remove it",
            "Listen, Port, Tag, Format",
        ],
    );
}

#[test]
fn unsupported_input() {
    refused(
        "[INPUT]\n    Name systemd\n",
        7,
        &[
            "input `systemd`",
            "not supported yet",
            "forward, tcp, tail, http, exec and dummy",
        ],
    );
}

#[test]
fn tail_unknown_multiline_parser() {
    refused(
        "[INPUT]\n    Name tail\n    Path /var/log/*.log\n    multiline.parser docker, nodejs\n",
        10,
        &[
            "multiline.parser nodejs",
            "`nodejs` is not defined",
            "docker, cri, go, python, java, ruby",
        ],
    );
}

#[test]
fn tail_docker_mode_is_refused() {
    refused(
        "[INPUT]\n    Name tail\n    Path /var/log/*.log\n    Docker_Mode On\n",
        10,
        &["`docker_mode`", "not supported", "multiline.parser docker"],
    );
}

#[test]
fn tail_unknown_key() {
    refused(
        "[INPUT]\n    Name tail\n    Path /var/log/*.log\n    Tag_Regex (?<x>.*)\n",
        10,
        &[
            "`tag_regex`",
            "in [INPUT] tail",
            "remove it",
            "Path, Exclude_Path",
        ],
    );
}

#[test]
fn tail_sqlite_options_are_accepted_and_ignored() {
    warned(
        "[INPUT]\n    Name tail\n    Path /var/log/*.log\n    DB.locking true\n",
        10,
        &["`db.locking`", "accepted and ignored", "SQLite"],
    );
}

#[test]
fn tail_parser_must_exist() {
    refused(
        "[INPUT]\n    Name tail\n    Path /var/log/*.log\n    Parser nope\n",
        10,
        &["Parser nope", "not defined"],
    );
}

// ----- [FILTER] -----

#[test]
fn wasm_filter_without_path() {
    refused(
        "[FILTER]\n    Name wasm\n    Match *\n",
        7,
        &["[FILTER] wasm", "needs `WASM_Path /plugins/<plugin>.wasm`"],
    );
}

#[test]
fn multiline_unknown_mode() {
    refused(
        "[FILTER]\n    Name multiline\n    Match *\n    Mode lines\n",
        10,
        &["Mode \"lines\"", "use `parser` or `partial_message`"],
    );
}

#[test]
fn multiline_unknown_parser() {
    refused(
        "[FILTER]\n    Name multiline\n    Match *\n    multiline.parser java, nodejs\n",
        10,
        &[
            "multiline.parser nodejs",
            "`nodejs` is not defined",
            "docker, cri, go, python, java, ruby",
            "Parsers_File",
        ],
    );
}

#[test]
fn multiline_parser_with_partial_message() {
    refused(
        "[FILTER]\n    Name multiline\n    Match *\n    Mode partial_message\n    multiline.parser java\n",
        11,
        &["multiline.parser cannot be used with `Mode partial_message`"],
    );
}

#[test]
fn multiline_unknown_key() {
    refused(
        "[FILTER]\n    Name multiline\n    Match *\n    Mode partial_message\n    Key_Content log\n",
        11,
        &[
            "`key_content`",
            "in [FILTER] multiline",
            "remove it",
            "multiline.key_content",
        ],
    );
}

#[test]
fn multiline_without_parser() {
    refused(
        "[FILTER]\n    Name multiline\n    Match *\n",
        7,
        &[
            "[FILTER] multiline",
            "needs `multiline.parser`",
            "Mode partial_message",
        ],
    );
}

#[test]
fn multiline_emitter_keys_are_accepted() {
    warned(
        "[FILTER]\n    Name multiline\n    Match *\n    Mode partial_message\n    emitter_mem_buf_limit 10M\n",
        11,
        &["emitter_mem_buf_limit", "accepted and ignored"],
    );
}

#[test]
fn lua_filter() {
    refused(
        "[FILTER]\n    Name lua\n    Match *\n    script a.lua\n",
        7,
        &[
            "Lua filter",
            "not supported; use a WASM filter",
            DOCS_WASM_FILTERS,
        ],
    );
}

#[test]
fn unsupported_filter() {
    refused(
        "[FILTER]\n    Name kubernetes\n    Match *\n",
        7,
        &[
            "filter `kubernetes`",
            "not supported; use a WASM filter",
            DOCS_WASM_FILTERS,
        ],
    );
}

#[test]
fn grep_unknown_key() {
    refused(
        "[FILTER]\n    Name grep\n    Match *\n    Regex log x\n    Invert on\n",
        11,
        &[
            "`invert`",
            "in [FILTER] grep",
            "remove it",
            "Regex, Exclude, Logical_Op",
        ],
    );
}

#[test]
fn grep_legacy_logical_op() {
    warned(
        "[FILTER]\n    Name grep\n    Match *\n    Regex log a\n    Regex level b\n",
        7,
        &["[FILTER] grep", "Logical_Op legacy", "set `Logical_Op AND`"],
    );
}

#[test]
fn grep_look_around() {
    refused(
        "[FILTER]\n    Name grep\n    Match *\n    Regex log (?<=a)b\n",
        10,
        &["regex", "(?<=a)b", "look-around", "WASM filter"],
    );
}

#[test]
fn grep_mixed_rules_with_and_or() {
    refused(
        "[FILTER]\n    Name grep\n    Match *\n    Regex a 1\n    Exclude b 2\n    Logical_Op OR\n",
        12,
        &["Logical_Op", "both Regex and Exclude", "two grep filters"],
    );
}

#[test]
fn record_modifier_unknown_key() {
    refused(
        "[FILTER]\n    Name record_modifier\n    Match *\n    Records a b\n",
        10,
        &[
            "`records`",
            "in [FILTER] record_modifier",
            "remove it",
            "Record, Remove_key",
        ],
    );
}

#[test]
fn record_modifier_remove_and_allowlist() {
    refused(
        "[FILTER]\n    Name record_modifier\n    Match *\n    Remove_key a\n    Allowlist_key b\n",
        7,
        &[
            "Remove_key and Allowlist_key cannot be combined",
            "two record_modifier filters",
        ],
    );
}

#[test]
fn modify_unknown_key() {
    refused(
        "[FILTER]\n    Name modify\n    Match *\n    Uppercase log\n",
        10,
        &[
            "`uppercase`",
            "in [FILTER] modify",
            "remove it",
            "Set, Add, Remove",
        ],
    );
}

#[test]
fn modify_unknown_condition() {
    refused(
        "[FILTER]\n    Name modify\n    Match *\n    Condition Key_is_cool level\n    Remove a\n",
        10,
        &[
            "`Key_is_cool`",
            "unknown condition",
            "use one of",
            "key_exists",
        ],
    );
}

#[test]
fn modify_add_if_not_present() {
    warned(
        "[FILTER]\n    Name modify\n    Match *\n    Add_if_not_present level info\n",
        10,
        &["Add_if_not_present", "deprecated", "it is `Add`"],
    );
}

#[test]
fn parser_unescape_key() {
    warned(
        "[FILTER]\n    Name parser\n    Match *\n    Key_Name log\n    Parser json\n    Unescape_Key On\n",
        12,
        &["Unescape_Key", "deprecated", "ignored"],
    );
}

#[test]
fn parser_unknown_key() {
    refused(
        "[FILTER]\n    Name parser\n    Match *\n    Key_Name log\n    Parser json\n    Decode_Field_As json log\n",
        12,
        &[
            "`decode_field_as`",
            "in [FILTER] parser",
            "remove it",
            "Key_Name, Parser",
        ],
    );
}

// ----- [OUTPUT] -----

#[test]
fn unsupported_output() {
    refused(
        "[OUTPUT]\n    Name kafka\n    Match *\n",
        7,
        &[
            "output `kafka`",
            "not supported",
            "use cloudwatch_logs, firehose, kinesis_streams, s3, forward, http, loki, es, opensearch, datadog, newrelic, stdout or null",
        ],
    );
}

#[test]
fn output_connection_keys_are_ignored() {
    for key in ["net.keepalive off", "tls on", "workers 2"] {
        let name = key.split(' ').next().unwrap();
        warned(
            &format!(
                "[OUTPUT]\n    Name firehose\n    Match *\n    region us-east-1\n    delivery_stream s\n    {key}\n"
            ),
            12,
            &[
                &format!("`{name}`"),
                "accepted and ignored",
                "managed by the output",
            ],
        );
    }
}

#[test]
fn forward_output_tls_options_without_tls() {
    warned(
        "[OUTPUT]\n    Name forward\n    Match *\n    Host 127.0.0.1\n    Port 24224\n    tls.verify off\n",
        12,
        &[
            "`tls.verify`",
            "is ignored: `tls` is off in this [OUTPUT] forward",
            "add `tls on`",
        ],
    );
}

#[test]
fn output_unknown_key() {
    refused(
        "[OUTPUT]\n    Name cloudwatch_logs\n    Match *\n    region us-east-1\n    log_grop_name g\n",
        11,
        &[
            "`log_grop_name`",
            "unknown key",
            "remove it or correct its spelling",
        ],
    );
}

#[test]
fn vendor_proxy() {
    refused(
        "[OUTPUT]\n    Name datadog\n    Match *\n    apikey ${PATH}\n    proxy http://proxy:3128\n",
        11,
        &[
            "`proxy` is not supported",
            "point the output at the proxy instead",
            "Host, Port and TLS",
        ],
    );
}

#[test]
fn vendor_workers_are_ignored() {
    warned(
        "[OUTPUT]\n    Name newrelic\n    Match *\n    licenseKey ${PATH}\n    workers 4\n",
        11,
        &[
            "`workers`",
            "accepted and ignored",
            "sends each output's requests concurrently",
        ],
    );
}

#[test]
fn vendor_connection_keys_are_ignored() {
    warned(
        "[OUTPUT]\n    Name datadog\n    Match *\n    apikey ${PATH}\n    tls.verify off\n",
        11,
        &["`tls.verify`", "accepted and ignored", "the router's"],
    );
}

#[test]
fn newrelic_client_keys_are_ignored() {
    warned(
        "[OUTPUT]\n    Name newrelic\n    Match *\n    licenseKey ${PATH}\n    sendMetrics true\n",
        11,
        &[
            "`sendmetrics`",
            "accepted and ignored",
            "batching are the router's",
        ],
    );
}

#[test]
fn datadog_unknown_key() {
    refused(
        "[OUTPUT]\n    Name datadog\n    Match *\n    apikey ${PATH}\n    dd_sevice web\n",
        11,
        &[
            "`dd_sevice`",
            "in [OUTPUT] datadog",
            "remove it",
            "dd_service",
        ],
    );
}

#[test]
fn newrelic_unknown_key() {
    refused(
        "[OUTPUT]\n    Name newrelic\n    Match *\n    licenseKey ${PATH}\n    region EU\n",
        11,
        &[
            "`region`",
            "in [OUTPUT] newrelic",
            "remove it",
            "endpoint (base_uri)",
        ],
    );
}

#[test]
fn vendor_key_not_from_the_environment() {
    refused(
        "[OUTPUT]\n    Name datadog\n    Match *\n    apikey abc123abc123\n",
        10,
        &[
            "`apikey`",
            "must come from an environment variable",
            "apikey ${DD_API_KEY}",
        ],
    );
}

#[test]
fn datadog_intake_without_tls() {
    warned(
        "[OUTPUT]\n    Name datadog\n    Match *\n    Host http-intake.logs.datadoghq.com\n    TLS off\n    apikey ${PATH}\n",
        11,
        &[
            "`tls` off is ignored",
            "Datadog's intake is always reached over TLS",
            "remove the key",
        ],
    );
}

#[test]
fn output_log_level_and_log_suppress_interval_are_ignored() {
    warned(
        "[OUTPUT]\n    Name null\n    Match *\n    Log_Level debug\n",
        10,
        &["`log_level` is accepted and ignored", "[SERVICE] Log_Level"],
    );
    warned(
        "[OUTPUT]\n    Name null\n    Match *\n    log_suppress_interval 10s\n",
        10,
        &["`log_suppress_interval` is accepted and ignored"],
    );
}

#[test]
fn kinesis_aggregation_is_refused_at_its_line() {
    refused(
        "[OUTPUT]\n    Name kinesis\n    Match *\n    region us-east-1\n    stream s\n    aggregation true\n",
        12,
        &[
            "`aggregation`",
            "not supported yet",
            "remove it or set it off",
        ],
    );
    refused(
        "[OUTPUT]\n    Name kinesis_streams\n    Match *\n    region us-east-1\n    stream s\n    compression zstd\n",
        12,
        &["`compression`", "\"zstd\"", "use \"gzip\" or \"zlib\""],
    );
}
