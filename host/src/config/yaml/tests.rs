use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> (tempfile::TempDir, Result<Vec<Section>, ParseError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fluent-bit.yaml");
    std::fs::write(&path, text).unwrap();
    let sections = parse_file(&path, &no_env);
    (dir, sections)
}

fn summary(sections: &[Section]) -> Vec<String> {
    sections
        .iter()
        .map(|s| {
            let entries: Vec<String> = s
                .entries
                .iter()
                .map(|e| format!("{}={}@{}", e.key, e.value, e.origin.line))
                .collect();
            format!("{}@{} {}", s.kind, s.origin.line, entries.join(" "))
        })
        .collect()
}

#[test]
fn sections_keys_lists_and_lines_as_the_classic_format_gives_them() {
    let (_dir, sections) = parse(
        "env:\n  LEVEL: debug\nservice:\n  Log_Level: ${LEVEL}\n  flush: 1\npipeline:\n  inputs:\n    - name: forward\n      port: 24224\n  filters:\n    - name: record_modifier\n      match: '*'\n      record:\n        - a 1\n        - b 2\n  outputs:\n    - name: stdout\n      match: '*'\nparsers:\n  - name: app\n    format: regex\n    regex: '^(?<msg>.*)$'\nmultiline_parsers:\n  - name: ml\n    type: regex\n    rules:\n      - state: start_state\n        regex: '/^\\d/'\n        next_state: cont\nstream_processor:\n  - name: t\n    exec: \"SELECT * FROM TAG:'x';\"\n",
    );
    assert_eq!(
        summary(&sections.unwrap()),
        [
            "SERVICE@4 log_level=debug@4 flush=1@5",
            "INPUT@8 name=forward@8 port=24224@9",
            "FILTER@11 name=record_modifier@11 match=*@12 record=a 1@14 record=b 2@15",
            "OUTPUT@17 name=stdout@17 match=*@18",
            "PARSER@20 name=app@20 format=regex@21 regex=^(?<msg>.*)$@22",
            "MULTILINE_PARSER@24 name=ml@24 type=regex@25 rule=\"start_state\" \"/^\\d/\" \"cont\"@27",
            "STREAM_TASK@31 name=t@31 exec=SELECT * FROM TAG:'x';@32",
        ]
    );
}

#[test]
fn includes_are_relative_and_env_comes_before_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("outputs.yaml"),
        "pipeline:\n  outputs:\n    - name: null\n      match: ${TAG}\n",
    )
    .unwrap();
    let main = dir.path().join("fluent-bit.yaml");
    std::fs::write(&main, "env:\n  TAG: app\nincludes:\n  - outputs.yaml\n").unwrap();
    let env = |name: &str| (name == "TAG").then(|| "from-environment".to_string());
    let sections = parse_file(&main, &env).unwrap();
    assert_eq!(summary(&sections), ["OUTPUT@3 name=null@3 match=app@4"]);
    assert!(sections[0].origin.file.ends_with("outputs.yaml"));
}

#[test]
fn what_the_router_does_not_have_is_refused_at_its_line() {
    for (text, line, part) in [
        (
            "pipeline:\n  inputs:\n    - name: forward\n      processors:\n        logs: []\n",
            4,
            "`processors` is not supported",
        ),
        ("plugins:\n  - /x.so\n", 1, "WASM components"),
        (
            "customs:\n  - name: calyptia\n",
            1,
            "`customs` is not supported",
        ),
        (
            "pipelines:\n  inputs: []\n",
            1,
            "unknown section `pipelines`",
        ),
        (
            "pipeline:\n  inputs:\n    name: forward\n",
            3,
            "must be a list",
        ),
        ("service:\n  flush: [\n", 3, "not valid YAML"),
        (
            "pipeline:\n  inputs:\n    - name: forward\n      tls: {a: 1}\n",
            4,
            "has a map",
        ),
        ("service:\n  log_level: ${NOPE}\n", 2, "NOPE"),
    ] {
        let (_dir, result) = parse(text);
        let e = result.expect_err(text);
        assert_eq!(e.origin.line, line, "{text}: {e}");
        assert!(e.message.contains(part), "{text}: {e}");
    }
}
