//! The built-in parsers and the joiner, on Fluent Bit's own test vectors
//! (`tests/internal/multiline.c`) where it has them.

use super::*;
use crate::event::Event;
use bytes::Bytes;
use serde_json::{Value, json};
use std::time::Instant;

fn chain(names: &[&str], key_content: Option<&str>) -> Arc<ParserChain> {
    let parsers = names
        .iter()
        .map(|n| Arc::new(builtin::get(n).unwrap()))
        .collect();
    Arc::new(ParserChain::new(parsers, key_content.map(str::to_string)))
}

fn body(v: &Value) -> Bytes {
    Bytes::from(rmp_serde::to_vec_named(v).unwrap())
}

fn value(e: &Event) -> Value {
    serde_json::from_str(&crate::event::json::to_json(&e.body).unwrap()).unwrap()
}

/// Push each record (time = its index); the records passed on, as JSON.
fn push_all(j: &mut Joiner, records: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    let now = Instant::now();
    for (i, r) in records.iter().enumerate() {
        j.push_record(
            Event {
                time_ns: i as u64,
                body: body(r),
            },
            now,
            &mut out,
        );
    }
    out.iter().map(value).collect()
}

fn logs(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["log"].as_str().unwrap().to_string())
        .collect()
}

fn lines(text: &[&str]) -> Vec<Value> {
    text.iter()
        .map(|l| json!({"log": l, "source": "stdout"}))
        .collect()
}

fn joiner(names: &[&str]) -> Joiner {
    Joiner::new(chain(names, Some("log")), JoinLimits::default())
}

const JAVA: [&str; 8] = [
    "Exception in thread \"main\" java.lang.IllegalStateException: ..null property",
    "     at com.example.myproject.Author.getBookIds(xx.java:38)",
    "     at com.example.myproject.Bootstrap.main(Bootstrap.java:14)",
    "Caused by: java.lang.NullPointerException",
    "     at com.example.myproject.Book.getId(Book.java:22)",
    "     at com.example.myproject.Author.getBookIds(Author.java:35)",
    "     ... 1 more",
    "single line",
];

#[test]
fn java_stack_trace_is_one_record_with_the_first_lines_keys_and_time() {
    let mut j = joiner(&["java"]);
    let mut records = lines(&JAVA);
    records[1]["source"] = "other".into();
    let out = push_all(&mut j, &records);
    assert_eq!(logs(&out), [JAVA[..7].join("\n"), JAVA[7].to_string()]);
    assert_eq!(out[0]["source"], "stdout", "the first line's keys");
    assert!(j.is_empty());
    // The time of the first line.
    let mut out = Vec::new();
    let now = Instant::now();
    for (i, r) in lines(&JAVA[..3]).iter().enumerate() {
        let event = Event {
            time_ns: 100 + i as u64,
            body: body(r),
        };
        j.push_record(event, now, &mut out);
    }
    j.flush_all(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].time_ns, 100);
}

#[test]
fn python_traceback_is_passed_on_at_its_last_line() {
    let tb = [
        "Traceback (most recent call last):",
        "  File \"/app/webapp2.py\", line 1535, in __call__",
        "    rv = self.handle_exception(request, response, e)",
        "  File \"/app/nearfieldspy.py\", line 5, in get",
        "    raise Exception('spam', 'eggs')",
        "Exception: ('spam', 'eggs')",
    ];
    let mut j = joiner(&["python"]);
    let out = push_all(&mut j, &lines(&tb));
    assert_eq!(logs(&out), [tb.join("\n")], "complete without waiting");
    assert!(j.is_empty());
    let out = push_all(&mut j, &lines(&["hello world, not multiline"]));
    assert_eq!(logs(&out), ["hello world, not multiline"]);
}

#[test]
fn go_panic_keeps_its_blank_lines() {
    let panic = [
        "panic: my panic",
        "",
        "goroutine 4 [running]:",
        "panic(0x45cb40, 0x47ad70)",
        "\t/usr/local/go/src/runtime/panic.go:542 +0x46c fp=0xc42003f7b8 sp=0xc42003f710 pc=0x422f7c",
        "main.main.func1(0xc420024120)",
        "\tfoo.go:6 +0x39 fp=0xc42003f7d8 sp=0xc42003f7b8 pc=0x451339",
        "created by main.main",
        "\tfoo.go:5 +0x58",
        "",
        "goroutine 1 [chan receive]:",
        "main.main()",
        "\tfoo.go:9 +0x6f fp=0xc420053f80 sp=0xc420053f50 pc=0x4512ef",
    ];
    let mut j = joiner(&["go"]);
    let mut records = lines(&panic);
    records.extend(lines(&["one more line, no multiline"]));
    let out = push_all(&mut j, &records);
    assert_eq!(
        logs(&out),
        [panic.join("\n"), "one more line, no multiline".into()]
    );
}

#[test]
fn ruby_backtrace() {
    let trace = [
        "/app/config/routes.rb:6:in `/': divided by 0 (ZeroDivisionError)",
        "\tfrom /app/config/routes.rb:6:in `block in <main>'",
        "\tfrom /var/lib/gems/3.0.0/gems/actionpack-7.0.4/lib/action_dispatch/routing/route_set.rb:428:in `instance_exec'",
        "\tfrom /app/config/routes.rb:1:in `<main>'",
    ];
    let mut j = joiner(&["ruby"]);
    let mut records = lines(&trace);
    records.extend(lines(&["hello world, not multiline"]));
    let out = push_all(&mut j, &records);
    assert_eq!(
        logs(&out),
        [trace.join("\n"), "hello world, not multiline".into()]
    );
}

#[test]
fn docker_json_lines_join_per_stream_until_a_line_end() {
    let docker = |log: &str, stream: &str| {
        let line = json!({"log": log, "stream": stream, "time": "2021-02-01T16:45:03.01231Z"});
        json!({"log": line.to_string(), "container_id": "c1"})
    };
    let mut j = joiner(&["docker"]);
    let out = push_all(
        &mut j,
        &[
            docker("aa\n", "stdout"),
            docker("aa\n", "stderr"),
            docker("bb", "stdout"),
            docker("cc\n", "stdout"),
            docker("dd", "stderr"),
            json!({"log": "single line to force pending flush of the previous line"}),
            docker("ee\n", "stderr"),
        ],
    );
    assert_eq!(
        logs(&out),
        [
            "aa\n",
            "aa\n",
            "bbcc\n",
            "dd",
            "single line to force pending flush of the previous line",
            "ee\n"
        ]
    );
    // The parsed Docker record, with its time.
    assert_eq!(out[2]["stream"], "stdout");
    assert!(out[2].get("container_id").is_none());
}

#[test]
fn cri_partial_lines_join_per_stream_at_f() {
    let cri = [
        "2019-05-07T18:57:50.904275087+00:00 stdout P 1a. some ",
        "2019-05-07T18:57:51.904275088+00:00 stdout P multiline ",
        "2019-05-07T18:57:50.904275087+00:00 stderr P 1b. some ",
        "2019-05-07T18:57:52.904275089+00:00 stdout F log",
        "2019-05-07T18:57:51.904275088+00:00 stderr P multiline ",
        "2019-05-07T18:57:52.904275089+00:00 stderr F log",
        "2019-05-07T18:57:56.904275093+00:00 stdout F 3a. non multiline 1",
    ];
    let mut j = joiner(&["cri"]);
    let out = push_all(&mut j, &lines(&cri));
    assert_eq!(
        logs(&out),
        [
            "1a. some multiline log",
            "1b. some multiline log",
            "3a. non multiline 1"
        ]
    );
    assert_eq!(out[0]["stream"], "stdout");
    assert_eq!(out[1]["stream"], "stderr");
    // Text lines (an input reading a file) work the same, with the line's time.
    let mut j = Joiner::new(chain(&["cri"], None), JoinLimits::default());
    let mut out = Vec::new();
    assert_eq!(j.oldest_held_at(), None);
    for (at, l) in [100, 200].into_iter().zip(&cri[..2]) {
        j.push_text(l.as_bytes(), at, 7, Instant::now(), &mut out);
    }
    assert_eq!(
        j.oldest_held_at(),
        Some(100),
        "where the open message began"
    );
    j.push_text(cri[3].as_bytes(), 300, 7, Instant::now(), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        j.oldest_held_at(),
        None,
        "nothing held once the message ended"
    );
    assert_eq!(out[0].time_ns, 1_557_255_470_904_275_087, "the CRI time");
}

#[test]
fn docker_declines_lines_a_later_parser_takes() {
    let mut j = joiner(&["docker", "cri"]);
    let out = push_all(
        &mut j,
        &lines(&[
            "2025-09-22T19:07:06.115398289Z stdout F first message",
            "2025-09-22T19:07:06.116725604Z stdout F second message",
        ]),
    );
    assert_eq!(logs(&out), ["first message", "second message"]);
}

#[test]
fn bare_text_lines_end_with_a_line_break_as_in_fluent_bit() {
    let mut j = Joiner::new(chain(&["java"], None), JoinLimits::default());
    let mut out = Vec::new();
    for l in JAVA {
        j.push_text(l.as_bytes(), 0, 1, Instant::now(), &mut out);
    }
    let got: Vec<Value> = out.iter().map(value).collect();
    assert_eq!(
        logs(&got),
        [
            format!("{}\n", JAVA[..7].join("\n")),
            "single line\n".into()
        ]
    );
}

#[test]
fn a_message_waits_for_its_timeout_then_is_passed_on() {
    let mut j = joiner(&["java"]);
    let t0 = Instant::now();
    let mut out = Vec::new();
    for l in lines(&JAVA[..3]) {
        j.push_record(
            Event {
                time_ns: 1,
                body: body(&l),
            },
            t0,
            &mut out,
        );
    }
    assert!(out.is_empty() && !j.is_empty());
    assert!(j.held_bytes() > 0);
    assert_eq!(j.oldest_line_at(), Some(t0));
    j.flush_expired(
        t0 + Duration::from_millis(999),
        Duration::from_secs(1),
        &mut out,
    );
    assert!(out.is_empty());
    j.flush_expired(
        t0 + Duration::from_secs(1),
        Duration::from_secs(1),
        &mut out,
    );
    assert_eq!(
        logs(&out.iter().map(value).collect::<Vec<_>>()),
        [JAVA[..3].join("\n")]
    );
    assert!(j.is_empty());
    assert_eq!(j.held_bytes(), 0);
}

#[test]
fn caps_pass_a_message_on_in_pieces_and_count_them() {
    let limits = JoinLimits {
        max_bytes: 1 << 20,
        max_lines: 3,
    };
    let mut j = Joiner::new(chain(&["java"], Some("log")), limits);
    let mut records = lines(&JAVA[..7]);
    records.extend(lines(&["next"]));
    let out = push_all(&mut j, &records);
    assert_eq!(
        logs(&out),
        [
            JAVA[..3].join("\n"),
            JAVA[3..6].join("\n"),
            JAVA[6].to_string(),
            "next".into()
        ],
        "nothing lost; the pieces continue the same trace"
    );
    assert_eq!(
        j.take_cuts(),
        Cuts {
            size_cap: 0,
            line_cap: 2
        }
    );
    assert_eq!(j.take_cuts(), Cuts::default());

    let limits = JoinLimits {
        max_bytes: 100,
        max_lines: 1000,
    };
    let mut j = Joiner::new(chain(&["java"], Some("log")), limits);
    let out = push_all(&mut j, &lines(&JAVA));
    let joined: Vec<String> = logs(&out);
    assert!(joined.iter().all(|l| l.len() <= 100), "{joined:?}");
    assert_eq!(joined.join("\n"), JAVA.join("\n"), "nothing lost");
    assert!(j.take_cuts().size_cap >= 2);
}

#[test]
fn custom_rules_from_a_parsers_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("parsers_multiline.conf");
    std::fs::write(
        &file,
        "[MULTILINE_PARSER]\n    name          multiline-regex-test\n    type          regex\n    flush_timeout 1000\n    rule      \"start_state\"   \"/(Dec \\d+ \\d+\\:\\d+\\:\\d+)(.*)/\"  \"cont\"\n    rule      \"cont\"          \"/^\\s+at.*/\"                     \"cont\"\n",
    )
    .unwrap();
    let catalog = MultilineCatalog::load(&[file]).unwrap();
    let none = |n: &str| -> Result<Arc<dyn PreParser>, String> { Err(n.to_string()) };
    let parsers = ["go", "multiline-regex-test"]
        .iter()
        .map(|n| Arc::new(catalog.resolve(n, &none).unwrap()))
        .collect();
    let chain = Arc::new(ParserChain::new(parsers, Some("log".into())));
    assert_eq!(chain.flush_timeout(), DEFAULT_FLUSH_TIMEOUT, "the longest");
    let mut j = Joiner::new(chain, JoinLimits::default());
    let trace = [
        "Dec 14 06:41:08 Exception in thread \"main\" java.lang.RuntimeException: Something has gone wrong, aborting!",
        "    at com.myproject.module.MyProject.badMethod(MyProject.java:22)",
        "    at com.myproject.module.MyProject.main(MyProject.java:6)",
    ];
    let mut records = lines(&trace);
    records.extend(lines(&["another line"]));
    let out = push_all(&mut j, &records);
    assert_eq!(logs(&out), [trace.join("\n"), "another line".into()]);
}

#[test]
fn equal_and_endswith_with_negate_and_key_pattern() {
    let parser = |kind, negate| MultilineParser {
        name: "t".into(),
        kind,
        negate,
        flush_timeout: DEFAULT_FLUSH_TIMEOUT,
        key_content: Some("msg".into()),
        key_pattern: Some("last".into()),
        key_group: None,
        pre_parser: None,
    };
    // `equal` on key_pattern: the piece whose `last` is "yes" ends the message.
    let chain = ParserChain::new(
        vec![Arc::new(parser(Kind::Equal(b"yes".to_vec()), false))],
        None,
    );
    let mut j = Joiner::new(Arc::new(chain), JoinLimits::default());
    let out = push_all(
        &mut j,
        &[
            json!({"msg": "a", "last": "no"}),
            json!({"msg": "b", "last": "yes"}),
        ],
    );
    assert_eq!(out, [json!({"msg": "ab", "last": "no"})]);
    // `endswith` negated: a piece that does not end with `\` ends the message.
    let mut p = parser(Kind::EndsWith(b"\\".to_vec()), true);
    p.key_pattern = None;
    let mut j = Joiner::new(
        Arc::new(ParserChain::new(vec![Arc::new(p)], None)),
        JoinLimits::default(),
    );
    let out = push_all(
        &mut j,
        &[
            json!({"msg": "a \\"}),
            json!({"msg": "b"}),
            json!({"msg": "c"}),
        ],
    );
    assert_eq!(out, [json!({"msg": "a \\b"}), json!({"msg": "c"})]);
    // A record without the key passes as it is.
    let out = push_all(&mut j, &[json!({"other": 1})]);
    assert_eq!(out, [json!({"other": 1})]);
}
