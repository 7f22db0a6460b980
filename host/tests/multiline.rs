//! The `multiline` filter through the real binary and a real forward client (PyPI
//! `fluent-logger`), configured as FireLens users write it (`[FILTER] multiline` with
//! `multiline.parser` and a `[MULTILINE_PARSER]` from `Parsers_File`): a Java stack trace, a
//! Python traceback and a custom-rule trace from three containers, interleaved on one tag, each
//! arrive at the output as one record with the first line's keys and time; lines no parser takes
//! pass as they came; a trace nothing ends is passed on by the flush timer after `flush_ms`, or
//! at shutdown when the timer is far off.

use crate::common;
use crate::common::start_classic;

use common::{PrintedEvent, assert_events_eq, fluent_logger_send as send};
use serde_json::{Value, json};

const PARSERS: &str = r#"
[MULTILINE_PARSER]
    name          multiline-regex-test
    type          regex
    flush_timeout 1000
    rule      "start_state"   "/(Dec \d+ \d+\:\d+\:\d+)(.*)/"  "cont"
    rule      "cont"          "/^\s+at.*/"                     "cont"
"#;

const CONFIG: &str = "
[SERVICE]
    Parsers_File parsers_multiline.conf

[INPUT]
    Name forward
    Listen 127.0.0.1
    Port 0

[FILTER]
    name                  multiline
    match                 *
    multiline.key_content log
    multiline.parser      java, python, multiline-regex-test
    flush_ms              300

[OUTPUT]
    Name stdout
    Match *
";

const BASE_NS: u64 = 1_700_000_000_000_000_000;

#[test]
fn java_python_and_custom_traces_arrive_joined() {
    let router = start_classic(CONFIG, &[("parsers_multiline.conf", PARSERS)], &[]);
    let addr = router.tcp_addr();
    let tag = "app-firelens-0123";
    let record = |container: &str, log: &str| {
        let source = if container == "py" {
            "stderr"
        } else {
            "stdout"
        };
        json!({"container_id": container, "container_name": format!("/{container}"), "source": source, "log": log})
    };
    let lines: Vec<(&str, &str)> = vec![
        ("java", "INFO starting"),
        (
            "java",
            "Exception in thread \"main\" java.lang.IllegalStateException: no config",
        ),
        ("py", "Traceback (most recent call last):"),
        ("java", "\tat com.example.App.load(App.java:38)"),
        ("py", "  File \"/app/main.py\", line 3, in <module>"),
        ("py", "    main()"),
        ("java", "\tat com.example.App.main(App.java:14)"),
        ("py", "ValueError: bad value"),
        ("java", "INFO retrying"),
        (
            "custom",
            "Dec 14 06:41:08 Exception in thread main: aborting",
        ),
        ("custom", "    at com.myproject.Main.run(Main.java:6)"),
        ("custom", "shutting down"),
        ("py", "java.lang.RuntimeException: nothing ends this one"),
    ];
    let sent: Vec<(&str, u64, Value)> = lines
        .iter()
        .enumerate()
        .map(|(i, (c, log))| (tag, BASE_NS + i as u64, record(c, log)))
        .collect();
    send(&addr, &sent);

    let joined = |first: usize, lines_at: &[usize]| {
        let log: Vec<&str> = lines_at.iter().map(|&i| lines[i].1).collect();
        PrintedEvent::new(
            tag,
            BASE_NS + first as u64,
            record(lines[first].0, &log.join("\n")),
        )
    };
    let single = |i: usize| joined(i, &[i]);
    let expected = vec![
        single(0),
        joined(2, &[2, 4, 5, 7]),
        joined(1, &[1, 3, 6]),
        single(8),
        joined(9, &[9, 10]),
        single(11),
        // Released by the flush timer: no line ends it.
        single(12),
    ];
    router.wait_for_events(expected.len());
    assert_events_eq(&router.stop(), &expected);
}

#[test]
fn an_open_trace_is_passed_on_at_shutdown() {
    let config = CONFIG.replace("flush_ms              300", "flush_ms              600000");
    let router = start_classic(&config, &[("parsers_multiline.conf", PARSERS)], &[]);
    let tag = "app-firelens-0123";
    let trace = [
        "java.lang.IllegalStateException: stopping",
        "\tat com.example.App.stop(App.java:9)",
    ];
    let mut sent: Vec<(&str, u64, Value)> = trace
        .iter()
        .enumerate()
        .map(|(i, log)| {
            (
                tag,
                BASE_NS + i as u64,
                json!({"source": "stdout", "log": log}),
            )
        })
        .collect();
    // A line of another stream after the trace, on the same connection: once it is out, the
    // trace is in the filter.
    let other = json!({"source": "stderr", "log": "INFO other stream"});
    sent.push((tag, BASE_NS + 9, other.clone()));
    send(&router.tcp_addr(), &sent);
    router.wait_for_events(1);
    let expected = [
        PrintedEvent::new(tag, BASE_NS + 9, other),
        PrintedEvent::new(
            tag,
            BASE_NS,
            json!({"source": "stdout", "log": trace.join("\n")}),
        ),
    ];
    assert_events_eq(&router.stop(), &expected);
}
