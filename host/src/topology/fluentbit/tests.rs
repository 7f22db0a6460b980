//! Unit tests of the classic parser and mapper: every unsupported key or section says where,
//! what and what to do instead.

use super::parse::Parser;
use super::*;
use std::path::PathBuf;
use std::time::Duration;

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
    let crate::topology::InputConfig::Forward(f) = &m.config.inputs[0] else {
        panic!("a forward input")
    };
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
fn stream_tasks_come_from_the_streams_file_and_the_main_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("streams.conf"),
        "[STREAM_TASK]\n    Name debug\n    Exec CREATE STREAM debug WITH (tag='logs.debug') AS SELECT * FROM TAG:'app*' WHERE level = 'debug';\n[PARSER]\n    Name ignored\n",
    )
    .unwrap();
    let main = dir.path().join("main.conf");
    let text = format!(
        "[SERVICE]\n    Streams_File streams.conf\n{MINIMAL}[STREAM_TASK]\n    Name all\n    Exec CREATE STREAM all WITH (tag='all') AS SELECT * FROM TAG:'*';\n"
    );
    let sections = Parser::new(&no_env).parse_text(&text, &main).unwrap();
    let m = map(&sections).unwrap();
    let tasks: Vec<_> = m
        .config
        .stream_tasks
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(tasks, ["debug", "all"]);
    assert!(m.config.stream_tasks[0].exec.contains("level = 'debug'"));
}

#[test]
fn a_stream_task_that_cannot_run_names_its_exec_line() {
    let e = error_of(&format!(
        "{MINIMAL}[STREAM_TASK]\n    Name t\n    Exec SELECT AVG(size) FROM TAG:'x' WINDOW TUMBLING (5 SECOND);\n"
    ));
    assert!(
        e.starts_with("main.conf:9: Exec:")
            && e.contains("aggregations")
            && e.contains("at character 8"),
        "{e}"
    );
    let e = error_of(&format!(
        "{MINIMAL}[STREAM_TASK]\n    Name t\n    Exec CREATE STREAM s AS SELECT * FROM STREAM:apache;\n"
    ));
    assert!(
        e.starts_with("main.conf:9:")
            && e.contains("no task creates stream `apache`")
            && e.contains("FROM TAG:"),
        "{e}"
    );
    let e = error_of(&format!("{MINIMAL}[STREAM_TASK]\n    Name t\n"));
    assert!(
        e.starts_with("main.conf:7:") && e.contains("no `Exec`"),
        "{e}"
    );
    let e = error_of("[SERVICE]\n    Streams_File /nonexistent/streams.conf\n");
    assert!(
        e.starts_with("main.conf:2:") && e.contains("/nonexistent/streams.conf"),
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

/// Maps `text` with the process environment for `${VAR}` (vendor keys are found there).
fn mapped_with_process_env(text: &str) -> Result<Mapped, String> {
    let env = |name: &str| std::env::var(name).ok();
    let sections = Parser::new(&env)
        .parse_text(text, Path::new("main.conf"))
        .map_err(|e| e.to_string())?;
    map(&sections)
}

fn wasm_output(
    m: &Mapped,
) -> &crate::config::Keyed<crate::output::OutputKeys, crate::output::wasm::WasmOutputConfig> {
    match &m.config.outputs[1] {
        crate::topology::OutputConfig::Wasm(w) => w,
        other => panic!("a wasm output, not {}", other.type_name()),
    }
}

#[test]
fn datadog_runs_the_plugin_with_the_key_as_a_secret_of_the_router() {
    // PATH stands for the key's variable: set in every test process, and never in a config.
    let key = std::env::var("PATH").unwrap();
    let m = mapped_with_process_env(&format!(
        "{MINIMAL}[OUTPUT]\n    Name datadog\n    Match app-*\n    Host http-intake.logs.datadoghq.eu\n    TLS on\n    compress gzip\n    apikey ${{PATH}}\n    dd_service web\n    dd_source nginx\n    dd_tags env:prod\n    provider ecs\n    include_tag_key true\n    net.keepalive on\n"
    ))
    .unwrap();
    let w = wasm_output(&m);
    let dir = std::env::var(PLUGIN_DIR_VAR).unwrap_or_else(|_| DEFAULT_PLUGIN_DIR.into());
    assert_eq!(w.path, PathBuf::from(dir).join("datadog.wasm"));
    assert_eq!(w.keys.route.name.as_deref(), Some("datadog"));
    assert_eq!(w.keys.route.match_.as_deref(), Some("app-*"));
    assert_eq!(w.allow_hosts, ["https://http-intake.logs.datadoghq.eu"]);
    assert_eq!(
        w.secrets.get("api_key").map(String::as_str),
        Some("env:PATH")
    );
    let config = w.config.as_ref().unwrap();
    assert_eq!(config["site"].as_str(), Some("datadoghq.eu"));
    assert_eq!(config["dd_service"].as_str(), Some("web"));
    assert_eq!(config["provider"].as_str(), Some("ecs"));
    assert_eq!(config["include_tag_key"].as_bool(), Some(true));
    assert!(
        !config.to_string().contains(&key),
        "the key is in the plugin's config"
    );
    assert!(
        m.warnings.iter().any(|w| w.contains("net.keepalive")),
        "{:?}",
        m.warnings
    );

    let proxied = mapped_with_process_env(&format!(
        "{MINIMAL}[OUTPUT]\n    Name datadog\n    Match *\n    Host 127.0.0.1\n    Port 8126\n    apikey ${{PATH}}\n"
    ))
    .unwrap();
    let w = wasm_output(&proxied);
    assert_eq!(w.allow_hosts, ["http://127.0.0.1:8126"]);
    assert_eq!(
        w.config.as_ref().unwrap()["url"].as_str(),
        Some("http://127.0.0.1:8126")
    );
}

#[test]
fn newrelic_maps_endpoint_key_and_limits() {
    let m = mapped_with_process_env(&format!(
        "{MINIMAL}[OUTPUT]\n    Name newrelic\n    Match *\n    endpoint https://log-api.eu.newrelic.com/log/v1\n    licenseKey ${{PATH}}\n    maxRecords 500\n    maxBufferSize 256000\n"
    ))
    .unwrap();
    let w = wasm_output(&m);
    assert!(w.path.ends_with("newrelic.wasm"));
    assert_eq!(w.allow_hosts, ["https://log-api.eu.newrelic.com"]);
    assert_eq!(
        w.secrets.get("license_key").map(String::as_str),
        Some("env:PATH")
    );
    let config = w.config.as_ref().unwrap();
    assert_eq!(config["region"].as_str(), Some("EU"));
    assert_eq!(config["auth"].as_str(), Some("license_key"));
    assert_eq!(config["max_records"].as_integer(), Some(500));
    assert_eq!(config["max_payload_bytes"].as_integer(), Some(256000));

    let nrlogs = mapped_with_process_env(&format!(
        "{MINIMAL}[OUTPUT]\n    Name nrlogs\n    Match *\n    base_uri http://127.0.0.1:9/log/v1\n    api_key ${{PATH}}\n    compress false\n"
    ))
    .unwrap();
    let w = wasm_output(&nrlogs);
    assert_eq!(w.allow_hosts, ["http://127.0.0.1:9"]);
    assert_eq!(
        w.secrets.get("api_key").map(String::as_str),
        Some("env:PATH")
    );
    assert_eq!(
        w.config.as_ref().unwrap()["base_uri"].as_str(),
        Some("http://127.0.0.1:9/log/v1")
    );
}

#[test]
fn http_runs_the_plugin_granted_exactly_its_endpoint() {
    let password = std::env::var("PATH").unwrap();
    let m = mapped_with_process_env(&format!(
        "{MINIMAL}[OUTPUT]\n    Name http\n    Match app-*\n    Host logs.example.com\n    Port 443\n    TLS on\n    tls.verify off\n    URI /bulk\n    Format json_lines\n    Header X-A 1\n    Header X-A 2\n    Json_Date_Key timestamp\n    Json_Date_Format iso8601\n    compress gzip\n    Allow_Duplicated_Headers false\n    HTTP_User ingest\n    HTTP_Passwd ${{PATH}}\n    aws_region us-east-1\n"
    ))
    .unwrap();
    let w = wasm_output(&m);
    assert!(w.path.ends_with("http.wasm"));
    assert_eq!(w.keys.route.match_.as_deref(), Some("app-*"));
    assert_eq!(w.allow_hosts, ["https://logs.example.com"]);
    assert_eq!(
        w.secrets.get("basic_auth").map(String::as_str),
        Some("basic:ingest:env:PATH")
    );
    let config = w.config.as_ref().unwrap();
    assert!(
        !config.to_string().contains(&password),
        "the password is in the plugin's config"
    );
    assert_eq!(config["host"].as_str(), Some("logs.example.com"));
    assert_eq!(config["port"].as_integer(), Some(443));
    assert_eq!(config["tls"].as_bool(), Some(true));
    assert_eq!(config["uri"].as_str(), Some("/bulk"));
    assert_eq!(config["format"].as_str(), Some("json_lines"));
    assert_eq!(config["json_date_format"].as_str(), Some("iso8601"));
    assert_eq!(config["allow_duplicated_headers"].as_bool(), Some(false));
    assert_eq!(config["basic_auth"].as_bool(), Some(true));
    assert_eq!(config["header"].as_array().map(Vec::len), Some(2));
    assert!(
        m.warnings.iter().any(|w| w.contains("tls.verify")),
        "{:?}",
        m.warnings
    );

    let plain = mapped_with_process_env(&format!(
        "{MINIMAL}[OUTPUT]\n    Name http\n    Match *\n    Host 127.0.0.1\n    Port 8090\n"
    ))
    .unwrap();
    let w = wasm_output(&plain);
    assert_eq!(w.allow_hosts, ["http://127.0.0.1:8090"]);
    assert!(w.secrets.is_empty());

    for (section, wanted) in [
        (
            "aws_auth On\n    aws_service execute-api\n",
            "main.conf:10: AWS_Auth On needs the region of the endpoint",
        ),
        (
            "aws_auth On\n    aws_region us-west-2\n",
            "main.conf:10: AWS_Auth On needs the service to sign for: add `aws_service",
        ),
        (
            "aws_auth On\n    aws_region us-west-2\n    aws_service x\n    aws_external_id abc\n",
            "main.conf:13: AWS_Auth: `external_id` only applies with `role_arn`",
        ),
        (
            "Format gelf\n",
            "main.conf:10: Format gelf is not supported yet",
        ),
        ("HTTP_User alice\n", "needs both HTTP_User and HTTP_Passwd"),
        (
            "HTTP_User alice\n    HTTP_Passwd secret\n",
            "environment variable",
        ),
        ("oauth2.enable on\n", "not supported yet"),
        ("Hots x\n", "unknown key `hots`"),
        (
            "Host {your-environment-id}.live.dynatrace.com\n",
            "main.conf:10: Host \"{your-environment-id}.live.dynatrace.com\" is not a host name",
        ),
        ("Host <endpoint>\n", "a placeholder left from an example?"),
    ] {
        let e = error_of(&format!(
            "{MINIMAL}[OUTPUT]\n    Name http\n    Match *\n    {section}"
        ));
        assert!(e.contains(wanted), "{section}: {e}");
    }
}

#[test]
fn http_aws_auth_is_the_routers_sigv4_grant() {
    let m = mapped_with_process_env(&format!(
        "{MINIMAL}[OUTPUT]\n    Name http\n    Match *\n    Host 127.0.0.1\n    Port 6435\n    aws_auth true\n    aws_region us-west-2\n    aws_service my-service\n    aws_role_arn arn:aws:iam::123456789012:role/logs\n    aws_external_id ext\n    aws_sts_endpoint http://127.0.0.1:4566\n"
    ))
    .unwrap();
    let grant = wasm_output(&m).aws_sigv4.clone().unwrap();
    assert_eq!(
        (grant.service.as_str(), grant.region.as_str()),
        ("my-service", "us-west-2")
    );
    assert_eq!(
        grant.role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/logs")
    );
    assert_eq!(grant.external_id.as_deref(), Some("ext"));
    assert_eq!(grant.sts_endpoint.as_deref(), Some("http://127.0.0.1:4566"));

    let off = mapped_with_process_env(&format!(
        "{MINIMAL}[OUTPUT]\n    Name http\n    Match *\n    aws_region us-west-2\n"
    ))
    .unwrap();
    assert!(wasm_output(&off).aws_sigv4.is_none());
    assert!(
        off.warnings
            .iter()
            .any(|w| w.contains("main.conf:10: `aws_region` is accepted and ignored")),
        "{:?}",
        off.warnings
    );
}

#[test]
fn es_and_opensearch_run_the_opensearch_plugin() {
    let m = mapped_with_process_env(&format!(
        "{MINIMAL}[OUTPUT]\n    Name opensearch\n    Match app-*\n    Aws_Auth On\n    Aws_Region us-west-2\n    Aws_Service_Name aoss\n    Host vpc-x.us-west-2.es.amazonaws.com\n    Index my_index\n    Port 443\n    Suppress_Type_Name On\n    retry_limit 2\n    tls On\n    Buffer_Size False\n    Logstash_Format On\n    Logstash_Prefix_Key $kubernetes['ns']\n    Generate_ID On\n    Replace_Dots On\n    Trace_Error On\n    compress gzip\n"
    ))
    .unwrap();
    let w = wasm_output(&m);
    assert!(w.path.ends_with("opensearch.wasm"));
    assert_eq!(w.allow_hosts, ["https://vpc-x.us-west-2.es.amazonaws.com"]);
    let grant = w.aws_sigv4.clone().unwrap();
    assert_eq!(
        (grant.service.as_str(), grant.region.as_str()),
        ("aoss", "us-west-2")
    );
    let config = w.config.as_ref().unwrap();
    assert_eq!(config["index"].as_str(), Some("my_index"));
    assert_eq!(config["suppress_type_name"].as_bool(), Some(true));
    assert_eq!(
        config["logstash_prefix_key"].as_str(),
        Some("$kubernetes['ns']")
    );
    assert_eq!(config["port"].as_integer(), Some(443));
    assert_eq!(config["compress"].as_str(), Some("gzip"));

    // es: AWS's default service is es; basic auth and Elastic Cloud as secrets.
    let es = mapped_with_process_env(&format!(
        "{MINIMAL}[OUTPUT]\n    Name es\n    Match *\n    Host search.example.com\n    AWS_Auth On\n    AWS_Region eu-west-1\n"
    ))
    .unwrap();
    let w = wasm_output(&es);
    assert_eq!(w.aws_sigv4.as_ref().map(|g| g.service.as_str()), Some("es"));
    assert_eq!(w.allow_hosts, ["http://search.example.com:9200"]);
    let basic = mapped_with_process_env(&format!(
        "{MINIMAL}[OUTPUT]\n    Name es\n    Match *\n    HTTP_User elastic\n    HTTP_Passwd ${{PATH}}\n"
    ))
    .unwrap();
    let w = wasm_output(&basic);
    assert_eq!(w.secrets["basic_auth"], "basic:elastic:env:PATH");
    assert_eq!(
        w.config.as_ref().unwrap()["basic_auth"].as_bool(),
        Some(true)
    );
    // Cloud_ID `name:base64("us-east-1.aws.found.io:9243$abc$def")`.
    let cloud = mapped_with_process_env(&format!(
        "{MINIMAL}[OUTPUT]\n    Name es\n    Match *\n    Cloud_ID logs:dXMtZWFzdC0xLmF3cy5mb3VuZC5pbzo5MjQzJGFiYyRkZWY=\n    Cloud_Auth ${{PATH}}\n"
    ))
    .unwrap();
    // (PATH's value has a `:`, so it passes for USER:PASSWORD.)
    let w = wasm_output(&cloud);
    assert_eq!(w.allow_hosts, ["https://abc.us-east-1.aws.found.io:9243"]);
    assert_eq!(w.secrets["basic_auth"], "basic:env:PATH");

    for (section, wanted) in [
        (
            "Cloud_ID <elastic_cloud_id>\n",
            "main.conf:10: Cloud_ID \"<elastic_cloud_id>\" is not an Elastic Cloud ID",
        ),
        (
            "AWS_Auth On\n",
            "main.conf:10: AWS_Auth On needs the region",
        ),
        (
            "Current_Time_Index On\n",
            "main.conf:10: Current_Time_Index On is not supported",
        ),
        ("HTTP_API_Key abc\n", "not supported yet"),
        ("Indexx x\n", "unknown key `indexx` in [OUTPUT] es"),
        ("Host <endpoint>\n", "a placeholder left from an example?"),
    ] {
        let e = error_of(&format!(
            "{MINIMAL}[OUTPUT]\n    Name es\n    Match *\n    {section}"
        ));
        assert!(e.contains(wanted), "{section}: {e}");
    }
}

#[test]
fn loki_runs_the_plugin_granted_exactly_its_endpoint() {
    let password = std::env::var("PATH").unwrap();
    let m = mapped_with_process_env(&format!(
        "{MINIMAL}[OUTPUT]\n    Name loki\n    Match app-*\n    Host logs-prod-us-west2.grafana.net\n    port 443\n    tls on\n    tls.verify on\n    http_user 123456\n    http_passwd ${{PATH}}\n    labels job=firelens, $container_name\n    remove_keys container_id\n    line_format key_value\n    tenant_id team-a\n"
    ))
    .unwrap();
    let w = wasm_output(&m);
    assert!(w.path.ends_with("loki.wasm"));
    assert_eq!(w.allow_hosts, ["https://logs-prod-us-west2.grafana.net"]);
    assert_eq!(
        w.secrets.get("basic_auth").map(String::as_str),
        Some("basic:123456:env:PATH")
    );
    let config = w.config.as_ref().unwrap();
    assert!(
        !config.to_string().contains(&password),
        "the password is in the plugin's config"
    );
    assert_eq!(
        config["labels"].as_str(),
        Some("job=firelens, $container_name")
    );
    assert_eq!(config["line_format"].as_str(), Some("key_value"));
    assert_eq!(config["tenant_id"].as_str(), Some("team-a"));
    assert_eq!(config["port"].as_integer(), Some(443));

    let local =
        mapped_with_process_env(&format!("{MINIMAL}[OUTPUT]\n    Name loki\n    Match *\n"))
            .unwrap();
    assert_eq!(wasm_output(&local).allow_hosts, ["http://127.0.0.1:3100"]);

    for (section, wanted) in [
        (
            "auto_kubernetes_labels on\n",
            "main.conf:10: auto_kubernetes_labels is not supported yet",
        ),
        (
            "bearer_token abc\n",
            "main.conf:10: `bearer_token` is not supported yet",
        ),
        ("http_passwd x\n", "needs both HTTP_User and HTTP_Passwd"),
        ("lables a=b\n", "unknown key `lables`"),
    ] {
        let e = error_of(&format!(
            "{MINIMAL}[OUTPUT]\n    Name loki\n    Match *\n    {section}"
        ));
        assert!(e.contains(wanted), "{section}: {e}");
    }
}

#[test]
fn vendor_keys_must_come_from_the_environment() {
    // `@SET` variables are not in the router's environment: the router could not read them.
    let e = error_of(&format!(
        "@SET key=abc123\n{MINIMAL}[OUTPUT]\n    Name datadog\n    Match *\n    apikey ${{key}}\n"
    ));
    assert!(
        e.starts_with("main.conf:11:")
            && e.contains("environment variable")
            && !e.contains("abc123"),
        "{e}"
    );
    let e = error_of(&format!(
        "{MINIMAL}[OUTPUT]\n    Name newrelic\n    Match *\n"
    ));
    assert!(e.contains("needs its key"), "{e}");
    let e = error_of(&format!(
        "{MINIMAL}[OUTPUT]\n    Name datadog\n    Match *\n    proxy http://proxy:3128\n"
    ));
    assert!(e.contains("`proxy` is not supported"), "{e}");
    let e = error_of(&format!(
        "{MINIMAL}[OUTPUT]\n    Name datadog\n    Match *\n    dd_sevice web\n"
    ));
    assert!(e.contains("`dd_sevice`") && e.contains("dd_service"), "{e}");
}

#[test]
fn tail_maps_fluent_bit_names_units_and_parsers_files() {
    let dir = tempfile::tempdir().unwrap();
    let parsers = dir.path().join("parsers.conf");
    std::fs::write(&parsers, "[PARSER]\n    Name app\n    Format json\n").unwrap();
    let text = format!(
        "[SERVICE]\n    Parsers_File {}\n[INPUT]\n    Name tail\n    Alias app_logs\n    Path /var/log/app/*.log, /var/log/other.log\n    Exclude_Path *.gz,*.zip\n    Tag app.*\n    Path_Key file\n    Offset_Key off\n    Key message\n    Parser app\n    Refresh_Interval 5\n    Rotate_Wait 10\n    Read_from_Head On\n    Skip_Long_Lines On\n    Skip_Empty_Lines On\n    Buffer_Chunk_Size 64k\n    Buffer_Max_Size 1M\n    DB /var/lib/tail.db\n    DB.sync full\n    Mem_Buf_Limit 5MB\n    storage.type filesystem\n[OUTPUT]\n    Name null\n    Match *\n",
        parsers.display()
    );
    let m = mapped(&text).unwrap();
    let input = format!("{:?}", m.config.inputs[0]);
    for needle in [
        "Tail(",
        "name: Some(\"app_logs\")",
        "path: [\"/var/log/app/*.log\", \"/var/log/other.log\"]",
        "exclude_path: [\"*.gz\", \"*.zip\"]",
        "tag: Some(\"app.*\")",
        "key: Some(\"message\")",
        "path_key: Some(\"file\")",
        "offset_key: Some(\"off\")",
        "parser: Some(\"app\")",
        "refresh_interval: Some(DurationStr(5s))",
        "rotate_wait: Some(DurationStr(10s))",
        "read_from_head: true",
        "skip_long_lines: true",
        "skip_empty_lines: true",
        "buffer_chunk_size: Some(ByteSize(64000))",
        "buffer_max_size: Some(ByteSize(1000000))",
        "db: Some(\"/var/lib/tail.db\")",
        "db_sync: Full",
    ] {
        assert!(input.contains(needle), "{needle} missing from {input}");
    }
    assert!(
        input.contains(&format!("parsers_files: [{:?}]", parsers)),
        "{input}"
    );
    assert!(
        m.warnings.iter().any(|w| w.contains("`mem_buf_limit`")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn tail_multiline_parser_is_a_list_and_parser_is_then_ignored() {
    let m = mapped("[INPUT]\n    Name tail\n    Path /var/log/*.log\n    Parser json\n    multiline.parser docker, cri\n    multiline.parser java\n[OUTPUT]\n    Name null\n    Match *\n").unwrap();
    let input = format!("{:?}", m.config.inputs[0]);
    assert!(
        input.contains("multiline_parser: [\"docker\", \"cri\", \"java\"]")
            && input.contains("parser: None"),
        "{input}"
    );
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("main.conf:4:") && w.contains("not applied")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn unsupported_inputs_outputs_and_filters_say_what_to_use() {
    let e = error_of("[INPUT]\n    Name systemd\n");
    assert!(
        e.starts_with("main.conf:1:") && e.contains("`systemd`") && e.contains("forward"),
        "{e}"
    );
    let e = error_of(&format!("{MINIMAL}[OUTPUT]\n    Name kafka\n    Match *\n"));
    assert!(
        e.contains("`kafka`") && e.contains("cloudwatch_logs"),
        "{e}"
    );
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name kubernetes\n    Match *\n"
    ));
    assert!(
        e.starts_with("main.conf:7:") && e.contains("`kubernetes`") && e.contains("WASM filter"),
        "{e}"
    );
}

#[test]
fn multiline_maps_onto_the_multiline_filter() {
    let m = mapped(&format!("{MINIMAL}[FILTER]\n    Name multiline\n    Match *\n    Mode partial_message\n    flush_ms 500\n")).unwrap();
    assert!(m.config.service.partial_reassembly);
    assert_eq!(m.config.service.partial_flush_timeout.0.as_millis(), 500);
    let crate::topology::FilterConfig::Multiline(f) = &m.config.filters[0] else {
        panic!("a multiline filter")
    };
    assert_eq!(
        f.options.mode,
        crate::filter::multiline::MultilineMode::PartialMessage
    );
    let m = mapped(&format!(
        "{MINIMAL}[FILTER]\n    Name multiline\n    Match app-*\n    multiline.key_content message\n    multiline.parser go, java\n    multiline.parser python\n    flush_ms 1500\n    buffer off\n    emitter_name ml_emitter\n"
    ))
    .unwrap();
    let crate::topology::FilterConfig::Multiline(f) = &m.config.filters[0] else {
        panic!("a multiline filter")
    };
    assert_eq!(f.options.multiline_parser, ["go", "java", "python"]);
    assert_eq!(f.options.key_content.as_deref(), Some("message"));
    assert_eq!(f.options.flush_timeout.0.as_millis(), 1500);
    assert!(!f.options.buffer);
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains(":15:") && w.contains("emitter_name")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn wasm_filters_take_their_other_keys_as_plugin_config() {
    let m = mapped(&format!("{MINIMAL}[FILTER]\n    Name wasm\n    Match app-*\n    Path /plugins/redact.wasm\n    Alias redact\n    Fields password,token\n")).unwrap();
    let crate::topology::FilterConfig::Wasm(w) = &m.config.filters[0] else {
        panic!("a wasm filter")
    };
    assert_eq!(w.path, PathBuf::from("/plugins/redact.wasm"));
    assert_eq!(w.keys.name.as_deref(), Some("redact"));
    assert_eq!(
        w.config.as_ref().unwrap()["fields"].as_str(),
        Some("password,token")
    );
    let e = error_of(&format!("{MINIMAL}[FILTER]\n    Name wasm\n    Match *\n"));
    assert!(e.starts_with("main.conf:7:") && e.contains("Path"), "{e}");
}

#[test]
fn wasm_path_reads_fluent_bit_s_key_remote_paths_and_plugin_directory_names() {
    let pin = "ab".repeat(32);
    let m = mapped(&format!("{MINIMAL}[FILTER]\n    Name wasm\n    Match *\n    WASM_Path s3://plugins/redact.wasm\n    sha256 {pin}\n")).unwrap();
    let crate::topology::FilterConfig::Wasm(w) = &m.config.filters[0] else {
        panic!("a wasm filter")
    };
    assert_eq!(w.path, PathBuf::from("s3://plugins/redact.wasm"));
    assert_eq!(w.sha256.as_deref(), Some(pin.as_str()));
    assert!(w.config.is_none(), "neither key is plugin config");
    // A bare file name is one the init files put into the plugin directory.
    let m = mapped(&format!(
        "{MINIMAL}[FILTER]\n    Name wasm\n    Match *\n    WASM_Path redact.wasm\n"
    ))
    .unwrap();
    let crate::topology::FilterConfig::Wasm(w) = &m.config.filters[0] else {
        panic!("a wasm filter")
    };
    assert_eq!(w.path, plugin_dir().join("redact.wasm"));
    // Unpinned remote plugins are refused at the line, in the user's key.
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name wasm\n    Match *\n    WASM_Path https://example.com/redact.wasm\n"
    ));
    assert!(e.starts_with("main.conf:10: wasm_path"), "{e}");
    assert!(e.contains("sha256"), "{e}");
}

#[test]
fn service_maps_flush_grace_log_level_http_and_filesystem_storage() {
    let text = "[SERVICE]\n    Flush 2.5\n    Grace 30\n    Log_Level debug\n    HTTP_Server On\n    HTTP_Listen 127.0.0.1\n    HTTP_Port 2021\n    storage.path /var/lib/flb\n[INPUT]\n    Name forward\n    unix_path /tmp/s\n    storage.type filesystem\n[OUTPUT]\n    Name null\n    Match *\n    storage.total_limit_size 1G\n    Retry_Limit 5\n";
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
    let o = m.config.outputs[0].keys();
    assert_eq!(o.buffer.kind, crate::buffer::config::BufferType::Disk);
    assert_eq!(o.buffer.path.as_deref(), Some(Path::new("/var/lib/flb")));
    assert_eq!(o.buffer.max_bytes.unwrap().0, 1 << 30);
    assert_eq!(o.retry_limit, Some(5));
    assert_eq!(
        s.batch_timeout.map(|d| d.0),
        Some(Duration::from_millis(2500))
    );
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
}

#[test]
fn flush_is_the_flush_window_one_second_by_default() {
    let m = mapped(MINIMAL).unwrap();
    assert_eq!(
        m.config.service.batch_timeout.map(|d| d.0),
        Some(Duration::from_secs(1)),
        "Fluent Bit's default Flush"
    );
    let m = mapped(&format!("[SERVICE]\n    Flush 0\n{MINIMAL}")).unwrap();
    assert_eq!(
        m.config.service.batch_timeout.map(|d| d.0),
        Some(Duration::ZERO)
    );
    for bad in ["soon", "-1", "1e9"] {
        let e = error_of(&format!("[SERVICE]\n    Flush {bad}\n{MINIMAL}"));
        assert!(
            e.starts_with("main.conf:2:") && e.contains("Flush 0.5"),
            "{e}"
        );
    }
}

#[test]
fn numeric_looking_strings_stay_strings() {
    let m = mapped("[INPUT]\n    Name forward\n    unix_path /tmp/s\n[OUTPUT]\n    Name cloudwatch\n    Match *\n    region us-east-1\n    log_group_name 12345\n    log_stream_prefix 007\n    auto_create_group On\n").unwrap();
    let crate::topology::OutputConfig::CloudwatchLogs(c) = &m.config.outputs[0] else {
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

fn filter_of(m: &Mapped, i: usize) -> &crate::topology::FilterConfig {
    &m.config.filters[i]
}

#[test]
fn grep_filters_keep_rule_order_and_logical_op() {
    use crate::filter::grep::LogicalOp;
    use crate::topology::FilterConfig;
    let m = mapped(&format!("{MINIMAL}[FILTER]\n    Name   grep\n    Match app-firelens*\n    Exclude log ^DEBUG\n    Regex $k['app'] web\n    Alias drop-debug\n[FILTER]\n    Name grep\n    Match *\n    Regex a 1\n    Regex b 2\n    Logical_Op AND\n")).unwrap();
    let FilterConfig::Grep(g) = filter_of(&m, 0) else {
        panic!()
    };
    assert_eq!(g.keys.match_.as_deref(), Some("app-firelens*"));
    assert_eq!(g.keys.name.as_deref(), Some("drop-debug"));
    assert_eq!(g.rules[0].key, "log");
    assert_eq!(g.rules[0].exclude.as_deref(), Some("^DEBUG"));
    assert_eq!(g.rules[1].key, "$k['app']");
    assert_eq!(g.rules[1].regex.as_deref(), Some("web"));
    assert_eq!(g.logical_op, LogicalOp::Legacy);
    let FilterConfig::Grep(g) = filter_of(&m, 1) else {
        panic!()
    };
    assert_eq!(g.logical_op, LogicalOp::And);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    // Two Regex rules in legacy mode: warned, since only the first one decides.
    let m = mapped(&format!(
        "{MINIMAL}[FILTER]\n    Name grep\n    Match *\n    Regex a 1\n    Regex b 2\n"
    ))
    .unwrap();
    assert!(
        m.warnings
            .iter()
            .any(|w| w.starts_with("main.conf:7:") && w.contains("Logical_Op AND")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn grep_mistakes_name_the_line() {
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name grep\n    Match *\n    Regex log (unclosed\n"
    ));
    assert!(
        e.starts_with("main.conf:10:") && e.contains("regex") && e.contains("(unclosed"),
        "{e}"
    );
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name grep\n    Match *\n    Regex log\n"
    ));
    assert!(
        e.starts_with("main.conf:10:") && e.contains("KEY REGEX"),
        "{e}"
    );
    let e = error_of(&format!("{MINIMAL}[FILTER]\n    Name grep\n    Match *\n"));
    assert!(
        e.starts_with("main.conf:7:") && e.contains("no rule"),
        "{e}"
    );
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name grep\n    Match *\n    Regex a 1\n    Logical_Op XOR\n"
    ));
    assert!(
        e.starts_with("main.conf:11:") && e.contains("AND, OR"),
        "{e}"
    );
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name grep\n    Match *\n    Regex a 1\n    Exclude b 2\n    Logical_Op OR\n"
    ));
    assert!(
        e.starts_with("main.conf:12:") && e.contains("both Regex and Exclude"),
        "{e}"
    );
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name grep\n    Match *\n    Regex a 1\n    Invert On\n"
    ));
    assert!(
        e.starts_with("main.conf:11:") && e.contains("`invert`") && e.contains("Logical_Op"),
        "{e}"
    );
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name grep\n    Match *\n    Regex log (?<=a)b\n"
    ));
    assert!(
        e.starts_with("main.conf:10:") && e.contains("look-around") && e.contains("WASM filter"),
        "{e}"
    );
}

#[test]
fn record_modifier_maps_the_firelens_metadata_filter() {
    use crate::topology::FilterConfig;
    let m = mapped(&format!("{MINIMAL}[FILTER]\n    Name record_modifier\n    Match *\n    Record ec2_instance_id i-0abc\n    Record ecs_task_definition web:7\n    Record note two words\n    Whitelist_key log\n    Allowlist_key ecs_*\n    Uuid_key id\n")).unwrap();
    let FilterConfig::RecordModifier(r) = filter_of(&m, 0) else {
        panic!()
    };
    let records: Vec<_> = r
        .records
        .iter()
        .map(|f| (f.key.as_str(), f.value.as_str()))
        .collect();
    assert_eq!(
        records,
        [
            ("ec2_instance_id", "i-0abc"),
            ("ecs_task_definition", "web:7"),
            ("note", "two words")
        ]
    );
    assert_eq!(r.allowlist_keys, ["log", "ecs_*"]);
    assert_eq!(r.uuid_key.as_deref(), Some("id"));
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name record_modifier\n    Match *\n    Record lonely\n"
    ));
    assert!(
        e.starts_with("main.conf:10:") && e.contains("KEY VALUE"),
        "{e}"
    );
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name record_modifier\n    Match *\n    Remove_key a\n    Allowlist_key b\n"
    ));
    assert!(
        e.starts_with("main.conf:7:") && e.contains("cannot be combined"),
        "{e}"
    );
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name record_modifier\n    Match *\n    Records a b\n"
    ));
    assert!(
        e.starts_with("main.conf:10:") && e.contains("`records`") && e.contains("Record,"),
        "{e}"
    );
}

#[test]
fn modify_maps_rules_and_conditions_with_quoted_values() {
    use crate::filter::modify::{ModifyCondition, ModifyRule};
    use crate::topology::FilterConfig;
    let m = mapped(&format!("{MINIMAL}[FILTER]\n    Name modify\n    Match *\n    Condition Key_value_matches level \"^(ERROR|WARN)$\"\n    Condition Key_exists $k['app']\n    Set message \"hello world\"\n    Rename a b\n    Remove_wildcard tmp_*\n    Add_if_not_present env prod\n")).unwrap();
    let FilterConfig::Modify(c) = filter_of(&m, 0) else {
        panic!()
    };
    assert!(
        matches!(&c.conditions[0], ModifyCondition::KeyValueMatches(k, r) if k == "level" && r == "^(ERROR|WARN)$")
    );
    assert!(matches!(&c.conditions[1], ModifyCondition::KeyExists(k) if k == "$k['app']"));
    assert!(matches!(&c.rules[0], ModifyRule::Set(k, v) if k == "message" && v == "hello world"));
    assert!(matches!(&c.rules[1], ModifyRule::Rename(a, b) if a == "a" && b == "b"));
    assert!(matches!(&c.rules[2], ModifyRule::RemoveWildcard(p) if p == "tmp_*"));
    assert!(matches!(&c.rules[3], ModifyRule::Add(k, v) if k == "env" && v == "prod"));
    assert!(
        m.warnings
            .iter()
            .any(|w| w.starts_with("main.conf:15:") && w.contains("deprecated"))
    );
}

#[test]
fn modify_mistakes_name_the_line_and_the_fix() {
    let cases = [
        ("Set message hello world", "put quotes around a value"),
        ("Rename only_one", "KEY VALUE"),
        ("Condition Key_value_equals level", "takes 2 argument(s)"),
        (
            "Condition Key_is_cool level",
            "unknown condition `Key_is_cool`",
        ),
        ("Remove_regex (", "regular expression"),
        ("Condition A_key_matches [", "regular expression"),
        ("Uppercase log", "`uppercase`"),
        ("Set k \"unclosed", "unclosed"),
    ];
    for (line, expected) in cases {
        let e = error_of(&format!(
            "{MINIMAL}[FILTER]\n    Name modify\n    Match *\n    {line}\n"
        ));
        assert!(
            e.starts_with("main.conf:10:") && e.contains(expected),
            "{line}: {e}"
        );
    }
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name modify\n    Match *\n    Condition Key_exists a\n"
    ));
    assert!(
        e.starts_with("main.conf:7:") && e.contains("no rule"),
        "{e}"
    );
}

#[test]
fn parser_filters_get_the_parsers_files_and_refuse_bad_parsers_at_their_line() {
    use crate::topology::FilterConfig;
    let dir = tempfile::tempdir().unwrap();
    let parsers = dir.path().join("parsers.conf");
    std::fs::write(
        &parsers,
        "[PARSER]\n    Name app\n    Format json\n    Time_Key ts\n    Time_Format %s\n\n[PARSER]\n    Name nginx\n    Format regex\n    Regex ^(?<remote>[^ ]*)\n\n[PARSER]\n    Name broken\n    Format regex\n    Regex ^(?<c>\\X)$\n",
    )
    .unwrap();
    let service = format!("[SERVICE]\n    Parsers_File {}\n", parsers.display());
    let m = mapped(&format!("{MINIMAL}[FILTER]\n    Name parser\n    Match *\n    Key_Name log\n    Parser app\n    Parser json\n    Reserve_Data True\n    Preserve_Key Off\n{service}")).unwrap();
    let FilterConfig::Parser(p) = filter_of(&m, 0) else {
        panic!()
    };
    assert_eq!(p.key_name, "log");
    assert_eq!(p.parser, ["app", "json"]);
    assert!(p.reserve_data && !p.preserve_key);
    assert_eq!(p.parsers_files, std::slice::from_ref(&parsers));
    // The FireLens image's parse-json.conf works without the parsers file (json is built in).
    let m = mapped(&format!("[SERVICE]\n    Parsers_File /fluent-bit/parsers/parsers.conf\n{MINIMAL}[FILTER]\n    Name parser\n    Match *\n    Key_Name log\n    Parser json\n    Reserve_Data True\n")).unwrap();
    assert!(matches!(filter_of(&m, 0), FilterConfig::Parser(_)));

    // Every format runs (a regex parser here); a pattern that cannot is refused at its line.
    let m = mapped(&format!(
        "{MINIMAL}[FILTER]\n    Name parser\n    Match *\n    Key_Name log\n    Parser nginx\n{service}"
    ))
    .unwrap();
    assert!(matches!(filter_of(&m, 0), FilterConfig::Parser(_)));
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name parser\n    Match *\n    Key_Name log\n    Parser broken\n{service}"
    ));
    assert!(
        e.starts_with("main.conf:11: Parser broken:")
            && e.contains(&format!("{}:15: parser `broken`: Regex", parsers.display()))
            && e.contains("Rewrite"),
        "{e}"
    );
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name parser\n    Match *\n    Key_Name log\n    Parser missing\n"
    ));
    assert!(
        e.starts_with("main.conf:11:") && e.contains("not defined") && e.contains("-R"),
        "{e}"
    );
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name parser\n    Match *\n    Parser json\n"
    ));
    assert!(
        e.starts_with("main.conf:7:") && e.contains("Key_Name"),
        "{e}"
    );
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name parser\n    Match *\n    Key_Name log\n    Parser json\n    Reserve_Data maybe\n"
    ));
    assert!(
        e.starts_with("main.conf:12:") && e.contains("On/Off"),
        "{e}"
    );
    let e = error_of(&format!(
        "{MINIMAL}[FILTER]\n    Name parser\n    Match *\n    Key_Name log\n    Parser json\n    Decode_Field_As json log\n"
    ));
    assert!(
        e.starts_with("main.conf:12:") && e.contains("`decode_field_as`"),
        "{e}"
    );
}

#[test]
fn problems_found_after_mapping_name_file_line_and_the_classic_key() {
    let e = error_of(
        "[SERVICE]\n    HTTP_Server On\n    HTTP_Port 2020\n[INPUT]\n    Name forward\n    Listen 0.0.0.0\n    Port 2020\n    Buffer_Max_Size 0\n[OUTPUT]\n    Name null\n    Match *\n",
    );
    assert!(
        e.contains("main.conf:8: buffer_max_size must be more than 0"),
        "{e}"
    );
    assert!(
        e.contains(
            "main.conf:3: http_port = \"0.0.0.0:2020\" clashes with `listen` at main.conf:6"
        ),
        "{e}"
    );
    let e = error_of(
        "[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 8877\n[INPUT]\n    Name tcp\n    Listen 0.0.0.0\n    Port 8877\n[OUTPUT]\n    Name null\n    Match *\n",
    );
    assert!(
        e.contains("main.conf:7: listen = \"0.0.0.0:8877\" clashes with `listen` at main.conf:3"),
        "{e}"
    );
}

/// `[INPUT] tcp` is Fluent Bit's in_tcp, not a discarding probe: its records are routed.
#[test]
fn the_tcp_input_maps_with_its_fluent_bit_options() {
    let m = mapped(&format!(
        "{MINIMAL}[INPUT]\n    Name tcp\n    Alias emf\n    Listen 127.0.0.1\n    Port 25888\n    Tag emf-logs\n    Format none\n    Separator \\r\\n\n    Chunk_Size 64\n    Buffer_Size 1M\n    Source_Address_Key peer\n    Mem_Buf_Limit 10MB\n[INPUT]\n    Name tcp\n"
    ))
    .unwrap();
    let crate::topology::InputConfig::Tcp(t) = &m.config.inputs[1] else {
        panic!("{:?}", m.config.inputs[1])
    };
    assert_eq!(t.listen, "127.0.0.1:25888");
    assert_eq!(t.name.as_deref(), Some("emf"));
    assert_eq!(t.tag.as_deref(), Some("emf-logs"));
    assert_eq!(t.format, crate::input::tcp::config::TcpFormat::None);
    assert_eq!(t.separator_bytes(), b"\r\n");
    assert_eq!(t.sizes(), (64 * 1024, 1 << 20));
    assert_eq!(t.source_address_key.as_deref(), Some("peer"));
    let crate::topology::InputConfig::Tcp(d) = &m.config.inputs[2] else {
        panic!("{:?}", m.config.inputs[2])
    };
    assert_eq!(d.listen, "0.0.0.0:5170");
    assert_eq!(d.format, crate::input::tcp::config::TcpFormat::Json);
    assert!(
        m.warnings
            .iter()
            .any(|w| w.starts_with("main.conf:18:") && w.contains("mem_buf_limit")),
        "{:?}",
        m.warnings
    );
    assert!(
        !m.warnings.iter().any(|w| w.contains("discard")),
        "{:?}",
        m.warnings
    );
}

/// `[INPUT] dummy` makes its record; its numbers stay numbers.
#[test]
fn the_dummy_input_maps_with_its_fluent_bit_options() {
    let m = mapped(&format!(
        "{MINIMAL}[INPUT]\n    Name dummy\n    Tag dummy.data\n    Dummy {{\"data\":\"100 0.5 true This is Demo\"}}\n    Rate 5\n    Samples 10\n"
    ))
    .unwrap();
    let crate::topology::InputConfig::Dummy(d) = &m.config.inputs[1] else {
        panic!("{:?}", m.config.inputs[1])
    };
    assert_eq!(d.tag.as_deref(), Some("dummy.data"));
    assert_eq!((d.rate, d.samples, d.copies), (Some(5), Some(10), None));
    let record: serde_json::Value = rmp_serde::from_slice(&d.record().unwrap()).unwrap();
    assert_eq!(record["data"], "100 0.5 true This is Demo");
    let e = error_of(&format!(
        "{MINIMAL}[INPUT]\n    Name dummy\n    Rate fast\n"
    ));
    assert!(
        e.contains("main.conf:9: rate \"fast\": use a whole number"),
        "{e}"
    );
}

#[test]
fn every_problem_of_a_classic_config_is_reported_each_at_its_line() {
    let e = error_of(
        "[INPUT]\n    Name forward\n    Bogus 1\n[INPUT]\n    Name: tail\n[FILTER]\n    Name nope\n    Match *\n[OUTPUT]\n    Name null\n    Match *\n",
    );
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(
        lines[0].starts_with("main.conf:3:") && lines[0].contains("`bogus`"),
        "{e}"
    );
    assert!(
        lines[1].starts_with("main.conf:5:")
            && lines[1].contains("not a colon")
            && lines[1].contains("`name tail`"),
        "{e}"
    );
    assert!(
        lines[2].starts_with("main.conf:6:") && lines[2].contains("nope"),
        "{e}"
    );
}

#[test]
fn a_classic_config_without_inputs_or_outputs_gets_classic_advice() {
    let e = error_of("[SERVICE]\n    Flush 1\n");
    assert!(
        e.contains("no [INPUT] section: add one")
            && e.contains("no [OUTPUT] section: add one")
            && !e.contains("[[inputs]]"),
        "{e}"
    );
}

#[test]
fn plugins_file_go_plugins_are_built_in_and_others_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plugins.conf"),
        "[PLUGINS]\n    Path /etc/td-agent-bit/cloudwatch.so\n    Path /opt/custom/out_gstdout.so\n",
    )
    .unwrap();
    let main = dir.path().join("main.conf");
    let text = format!("[SERVICE]\n    Plugins_File plugins.conf\n{MINIMAL}");
    let sections = Parser::new(&no_env).parse_text(&text, &main).unwrap();
    let m = map(&sections).unwrap();
    let w = m.warnings.join("\n");
    assert!(w.contains("plugins.conf:2: `path` is not loaded: the `cloudwatch` output is built into wasm-router"), "{w}");
    assert!(
        w.contains(
            "plugins.conf:3: `path` is not loaded: wasm-router does not load Fluent Bit .so plugins"
        ),
        "{w}"
    );
    let e = error_of("[SERVICE]\n    Plugins_File /nonexistent/plugins.conf\n");
    assert!(
        e.starts_with("main.conf:2:") && e.contains("/nonexistent/plugins.conf"),
        "{e}"
    );
}

#[test]
fn a_yaml_config_maps_as_the_classic_one_with_its_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fluent-bit.yaml");
    std::fs::write(
        &path,
        "service:\n  flush: 1\npipeline:\n  inputs:\n    - name: forward\n      listen: 127.0.0.1\n      port: 24224\n  filters:\n    - name: grep\n      match: 'app*'\n      exclude: log ^DEBUG\n  outputs:\n    - name: stdout\n      match: '*'\nstream_processor:\n  - name: errors\n    exec: \"CREATE STREAM e WITH (tag='errors') AS SELECT * FROM TAG:'app*' WHERE level = 'error';\"\n",
    )
    .unwrap();
    let m = crate::topology::load_any(&path).unwrap();
    assert!(m.classic);
    assert_eq!(m.config.inputs.len(), 1);
    assert_eq!(m.config.filters.len(), 1);
    assert_eq!(m.config.stream_tasks[0].name, "errors");
    assert_eq!(
        m.config.service.batch_timeout.map(|d| d.0),
        Some(Duration::from_secs(1))
    );

    std::fs::write(
        &path,
        "pipeline:\n  inputs:\n    - name: forward\n      bogus: 1\n  outputs:\n    - name: cloudwatch_logs\n      match: '*'\n",
    )
    .unwrap();
    let e = crate::topology::load_any(&path).unwrap_err().to_string();
    assert!(e.contains("fluent-bit.yaml:4: unknown key `bogus`"), "{e}");
}

#[test]
fn retry_limit_values_are_read_as_fluent_bit_reads_them() {
    let limit = |value: &str| {
        let m = mapped(&format!(
            "{MINIMAL}[OUTPUT]\n    Name null\n    Match *\n    Retry_Limit {value}\n"
        ))
        .unwrap();
        let o = m.config.outputs[1].keys();
        (
            o.retry_limit,
            m.warnings
                .iter()
                .any(|w| w.contains("main.conf:10: Retry_Limit")),
        )
    };
    assert_eq!(limit("7"), (Some(7), false));
    assert_eq!(limit("no_retries"), (Some(0), false));
    for unlimited in ["no_limits", "False", "off", "OFF"] {
        assert_eq!(limit(unlimited), (None, false), "{unlimited}");
    }
    // C's atoi: leading digits count; what is not above 0 is the default, 1, with a warning.
    assert_eq!(limit("3x"), (Some(3), false));
    assert_eq!(limit("0"), (Some(1), true));
    assert_eq!(limit("-2"), (Some(1), true));
    assert_eq!(limit("many"), (Some(1), true));
}

#[test]
fn refused_aws_options_are_reported_at_their_line_with_what_to_do() {
    let e = error_of(&format!(
        "{MINIMAL}[OUTPUT]\n    Name s3\n    Match *\n    bucket b\n    format json_lines\n    part_size 25M\n    compression parquet\n[OUTPUT]\n    Name cloudwatch\n    Match *\n    region us-east-1\n    log_group_name g\n    log_stream_name s\n    credentials_endpoint http://127.0.0.1:9/creds\n"
    ));
    for needle in [
        "main.conf:12: part_size: `part_size` configures Fluent Bit's blob uploads",
        "main.conf:13: compression: `compression` = \"parquet\": columnar objects are not supported",
        "main.conf:20: credentials_endpoint: `credentials_endpoint` is not supported; remove it and set AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        assert!(e.contains(needle), "{needle} missing from:\n{e}");
    }
    assert!(!e.contains("format"), "format json_lines is accepted:\n{e}");
}

#[test]
fn s3_retry_limit_values_become_upload_attempts_as_fluent_bit_counts_them() {
    let attempts = |value: &str| {
        let m = mapped(&format!(
            "{MINIMAL}[OUTPUT]\n    Name s3\n    Match *\n    bucket b\n    Retry_Limit {value}\n"
        ))
        .unwrap();
        let crate::topology::OutputConfig::S3(s3) = &m.config.outputs[1] else {
            panic!("an s3 output")
        };
        let warned = m
            .warnings
            .iter()
            .any(|w| w.contains("main.conf:11: `retry_limit` is unlimited"));
        (
            s3.upload_attempts,
            m.config.outputs[1].keys().retry_limit,
            warned,
        )
    };
    assert_eq!(attempts("no_retries"), (Some(1), None, false));
    assert_eq!(attempts("2"), (Some(3), None, false));
    for unlimited in ["no_limits", "False", "Off"] {
        assert_eq!(attempts(unlimited), (Some(6), None, true), "{unlimited}");
    }
}

#[test]
fn kinesis_streams_and_the_go_kinesis_map_onto_one_output() {
    let m = mapped("[INPUT]\n    Name forward\n    unix_path /tmp/s\n[OUTPUT]\n    Name kinesis_streams\n    Match *\n    region us-west-2\n    stream s\n    auto_retry_requests true\n[OUTPUT]\n    Name kinesis\n    Match *\n    region us-west-2\n    stream s\n    partition_key container_id\n    data_keys log,source\n    experimental_concurrency 4\n[OUTPUT]\n    Name kinesis\n    Match *\n    region us-west-2\n    stream s\n    append_newline true\n").unwrap();
    let newline: Vec<bool> = m
        .config
        .outputs
        .iter()
        .map(|o| {
            let crate::topology::OutputConfig::KinesisStreams(k) = o else {
                panic!("a kinesis_streams output")
            };
            k.validate().unwrap().append_newline
        })
        .collect();
    assert_eq!(newline, [true, false, true], "C always, Go only when asked");
    let crate::topology::OutputConfig::KinesisStreams(k) = &m.config.outputs[1] else {
        panic!()
    };
    assert_eq!(k.partition_key.as_deref(), Some("container_id"));
    assert_eq!(k.experimental_concurrency, Some(4));
}
