use super::*;
use crate::event::json::to_json;
use serde_json::json;

fn tasks(execs: &[&str]) -> StreamProcessor {
    let configs: Vec<StreamTaskConfig> = execs
        .iter()
        .enumerate()
        .map(|(i, exec)| StreamTaskConfig {
            name: format!("t{i}"),
            exec: exec.to_string(),
        })
        .collect();
    StreamProcessor::new("stream_tasks", &configs).unwrap()
}

fn event(pairs: &[(&str, serde_json::Value)]) -> Event {
    Event {
        time_ns: 1_700_000_000_500_000_000,
        body: map_of(pairs).into(),
    }
}

fn batch(tag: &str, events: Vec<Event>) -> Batch {
    Batch::new(tag.as_bytes().to_vec(), events)
}

/// Each result as `tag: json`.
fn results(derived: &[Derived]) -> Vec<String> {
    derived
        .iter()
        .flat_map(|(b, _)| {
            let tag = String::from_utf8_lossy(&b.tag).to_string();
            b.events
                .iter()
                .map(move |e| format!("{tag}: {}", to_json(&e.body).unwrap()))
        })
        .collect()
}

#[test]
fn containers_split_by_name_plus_a_copy_of_everything() {
    // The issue's example: laravel and nginx container logs tagged apart by container_name,
    // and every record copied as `containers`.
    let sp = tasks(&[
        "CREATE STREAM laravel WITH (tag='laravel') AS SELECT * FROM TAG:'*-firelens-*' WHERE container_name = 'laravel';",
        "CREATE STREAM nginx WITH (tag='nginx') AS SELECT * FROM TAG:'*-firelens-*' WHERE container_name = 'nginx';",
        "CREATE STREAM containers WITH (tag='containers') AS SELECT * FROM TAG:'*-firelens-*';",
    ]);
    let input = batch(
        "app-firelens-abc",
        vec![
            event(&[("container_name", json!("laravel")), ("log", json!("a"))]),
            event(&[("container_name", json!("nginx")), ("log", json!("b"))]),
            event(&[("container_name", json!("redis")), ("log", json!("c"))]),
        ],
    );
    let out = sp.process(&input, None);
    assert_eq!(
        results(&out),
        [
            r#"laravel: {"container_name":"laravel","log":"a"}"#,
            r#"nginx: {"container_name":"nginx","log":"b"}"#,
            r#"containers: {"container_name":"laravel","log":"a"}"#,
            r#"containers: {"container_name":"nginx","log":"b"}"#,
            r#"containers: {"container_name":"redis","log":"c"}"#,
        ]
    );
    assert_eq!(out.iter().map(|(_, t)| *t).collect::<Vec<_>>(), [0, 1, 2]);
    // The results keep their records' times.
    assert!(out.iter().all(|(b, _)| {
        b.events
            .iter()
            .all(|e| e.time_ns == 1_700_000_000_500_000_000)
    }));
    // A tag the tasks do not read makes nothing.
    assert!(
        sp.process(&batch("other", input.events.clone()), None)
            .is_empty()
    );
}

#[test]
fn stream_sources_read_only_their_streams_results() {
    let sp = tasks(&[
        "CREATE STREAM errors AS SELECT * FROM TAG:'app' WHERE level = 'error';",
        "CREATE STREAM slow WITH (tag='slow') AS SELECT msg FROM STREAM:errors WHERE ms > 100;",
    ]);
    let e = event(&[
        ("level", json!("error")),
        ("ms", json!(250)),
        ("msg", json!("x")),
    ]);
    let first = sp.process(&batch("app", vec![e]), None);
    assert_eq!(
        results(&first),
        [r#"stream_processor.0: {"level":"error","ms":250,"msg":"x"}"#]
    );
    let (b, from) = &first[0];
    let second = sp.process(b, Some(*from));
    assert_eq!(results(&second), [r#"slow: {"msg":"x"}"#]);
    // The same records under the stream's tag but not from its task are not read by STREAM:.
    assert!(sp.process(b, None).is_empty());
}

#[test]
fn conditions_compare_as_fluent_bit_does() {
    let check = |condition: &str, record: &[(&str, serde_json::Value)]| -> bool {
        let sp = tasks(&[&format!(
            "CREATE STREAM s WITH (tag='s') AS SELECT * FROM TAG:'t' WHERE {condition};"
        )]);
        !sp.process(&batch("t", vec![event(record)]), None)
            .is_empty()
    };
    let r = [
        ("status", json!("503")),
        ("code", json!(7)),
        ("ratio", json!(0.5)),
        ("ok", json!(true)),
        ("gone", json!(null)),
        ("k8s", json!({"pod": {"name": "web-1"}})),
        ("name", json!("beta")),
    ];
    // A string compared with a number is read as one.
    assert!(check("status >= 500", &r));
    assert!(!check("status = '500'", &r));
    assert!(check("code > 6.5 AND ratio < 1", &r));
    assert!(check("ok = true", &r));
    assert!(check("name > 'alpha' AND name <= 'beta'", &r));
    assert!(check("name != 'gamma'", &r));
    assert!(check("k8s['pod']['name'] = 'web-1'", &r));
    assert!(check("@record.contains(k8s['pod'])", &r));
    assert!(!check("@record.contains(missing)", &r));
    assert!(check("@record.time() > 1700000000", &r));
    // NULL: an explicit null is NULL; a missing key makes every comparison false.
    assert!(check("gone IS NULL", &r));
    assert!(!check("missing IS NULL", &r));
    assert!(check("missing IS NOT NULL", &r));
    assert!(!check("missing = 1", &r));
    assert!(check("NOT missing = 1", &r));
    // A bare key is true for true, a positive number or a string.
    assert!(check("code", &r));
    assert!(check("name", &r));
    assert!(!check("gone", &r));
    // AND/OR group to the right: false AND (false OR true) is false.
    assert!(!check("code = 0 AND code = 1 OR code = 7", &r));
    assert!(check("(code = 0 AND code = 1) OR code = 7", &r));
}

#[test]
fn selected_keys_aliases_and_functions() {
    let sp = tasks(&[
        "CREATE STREAM s WITH (tag='s') AS SELECT log AS message, k8s['pod'] AS pod, RECORD_TAG(), RECORD_TIME() AS t FROM TAG:'app';",
    ]);
    let out = sp.process(
        &batch(
            "app",
            vec![
                event(&[
                    ("log", json!("hi")),
                    ("k8s", json!({"pod": "web"})),
                    ("x", json!(1)),
                ]),
                // No selected key (the functions still give two): kept with what it has.
                event(&[("x", json!(2))]),
            ],
        ),
        None,
    );
    assert_eq!(
        results(&out),
        [
            r#"s: {"message":"hi","pod":"web","RECORD_TAG()":"app","t":1700000000.5}"#,
            r#"s: {"RECORD_TAG()":"app","t":1700000000.5}"#,
        ]
    );
    let only_keys = tasks(&["CREATE STREAM s WITH (tag='s') AS SELECT log FROM TAG:'app';"]);
    let out = only_keys.process(&batch("app", vec![event(&[("x", json!(2))])]), None);
    assert!(
        out.is_empty(),
        "a record with none of the selected keys makes no result"
    );
}

#[test]
fn config_problems_name_the_task() {
    let configs = [
        StreamTaskConfig {
            name: "a".into(),
            exec: "CREATE STREAM s AS SELECT * FROM STREAM:nowhere;".into(),
        },
        StreamTaskConfig {
            name: "a".into(),
            exec: "SELECT COUNT(*) FROM TAG:'x';".into(),
        },
        StreamTaskConfig {
            name: "c".into(),
            exec: "CREATE STREAM s AS SELECT * FROM TAG:'y';".into(),
        },
    ];
    let problems = StreamProcessor::new("stream_tasks", &configs).unwrap_err();
    let text = problems.join("\n");
    assert!(
        text.contains("stream_tasks[1].name `a` is also the name of stream_tasks[0]"),
        "{text}"
    );
    assert!(
        text.contains("stream_tasks[1].exec: aggregations"),
        "{text}"
    );
    assert!(
        text.contains("stream_tasks[2].exec: stream `s` is also created by task `a`"),
        "{text}"
    );
    assert!(
        text.contains("stream_tasks[0].exec: FROM STREAM:nowhere: no task creates stream"),
        "{text}"
    );
}

#[test]
fn mixed_logic_is_warned() {
    let sp = tasks(&[
        "CREATE STREAM s AS SELECT * FROM TAG:'x' WHERE a = 1 AND b = 2 OR c = 3;",
        "CREATE STREAM t AS SELECT * FROM TAG:'x' WHERE (a = 1 AND b = 2) OR c = 3;",
    ]);
    let w = sp.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("`t0`") && w[0].contains("a AND (b OR c)"),
        "{w:?}"
    );
}
