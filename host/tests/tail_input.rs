//! The `tail` input end to end: real files on disk are written, appended, renamed, truncated
//! and deleted while a real router runs; every line is found at the `stdout` output exactly
//! once, across rotation and across restarts (graceful and `kill -9`) from the offsets file.

use crate::common::{self, PrintedEvent, RouterProcess};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

/// A router with one tail input of `options` (TOML lines), `stdout` for every tag, and its
/// HTTP server (`options` may add more tail inputs); started once every tail input's first look
/// at the globs is done.
fn start(http: u16, options: &str) -> RouterProcess {
    let config = format!(
        "[service]\nhttp_listen = \"127.0.0.1:{http}\"\ngrace = \"5s\"\n\
         [[inputs]]\ntype = \"tail\"\n{options}\n\
         [[outputs]]\ntype = \"stdout\"\nmatch = \"*\"\n"
    );
    let inputs = config.matches("type = \"tail\"").count();
    let router = RouterProcess::start(&config);
    common::wait_until(
        "every tail input started",
        || {
            router
                .log()
                .iter()
                .filter(|l| l.contains("tailing"))
                .count()
                == inputs
        },
        || router.log_text(),
    );
    router
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// `n` numbered lines `prefix-<i>` from `from`.
fn numbered(prefix: &str, from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("{prefix}-{i}\n"))
        .collect()
}

/// How many times each `log` value was printed.
fn counts(events: &[PrintedEvent]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in events {
        *counts
            .entry(e.record["log"].as_str().unwrap_or("").to_string())
            .or_insert(0) += 1;
    }
    counts
}

/// Every line of `expected` printed exactly once, and nothing else.
fn assert_exactly_once(events: &[PrintedEvent], expected: &[String]) {
    let counts = counts(events);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "printed more than once: {twice:?}");
    let missing: Vec<_> = expected
        .iter()
        .filter(|l| !counts.contains_key(*l))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "missing {} lines, e.g. {missing:?}",
        expected.len() - counts.len()
    );
    assert_eq!(counts.len(), expected.len(), "unexpected lines printed");
}

fn lines(prefix: &str, from: usize, n: usize) -> Vec<String> {
    (from..from + n).map(|i| format!("{prefix}-{i}")).collect()
}

#[test]
fn lines_arrive_tagged_by_path_with_path_key_excluding_and_skipping_existing_content() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    append(&d.join("app.log"), "written before the start\n");
    append(&d.join("skip.log"), "");
    let http = common::free_port();
    let router = start(
        http,
        &format!(
            "path = [\"{0}/*.log\"]\nexclude_path = [\"*/skip.*\"]\ntag = \"files.*\"\npath_key = \"file\"\noffset_key = \"offset\"\n",
            d.display()
        ),
    );
    append(&d.join("app.log"), "first\nsecond\r\n");
    append(&d.join("skip.log"), "excluded\n");
    // A file created after the start is read from its start.
    append(&d.join("new.log"), "in a new file\n");
    router.wait_for_events(3);
    std::thread::sleep(Duration::from_millis(300));
    let mut events = router.events();
    events.sort_by_key(|e| e.record["offset"].as_u64());
    let app = d.join("app.log").display().to_string();
    let new = d.join("new.log").display().to_string();
    let tag_of = |path: &str| {
        format!("files.{}", path.trim_start_matches('/').replace('/', ".")).replace("..", ".")
    };
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.tag.clone(), e.record.clone()))
        .collect();
    let before = "written before the start\n".len() as u64;
    let mut expected = vec![
        (
            tag_of(&app),
            json!({"log": "first", "file": app, "offset": before + 6}),
        ),
        (
            tag_of(&app),
            json!({"log": "second", "file": app, "offset": before + 14}),
        ),
        (
            tag_of(&new),
            json!({"log": "in a new file", "file": new, "offset": 14}),
        ),
    ];
    expected.sort_by_key(|(_, r)| r["offset"].as_u64());
    assert_eq!(got, expected, "{events:?}");
}

#[test]
fn rotation_by_rename_and_by_copytruncate_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (app, ct) = (d.join("app.log"), d.join("ct.log"));
    append(&app, "");
    append(&ct, "");
    let http = common::free_port();
    let router = start(
        http,
        &format!(
            "path = [\"{0}/app.log\", \"{0}/ct.log\"]\nrotate_wait = \"2s\"\nrefresh_interval = \"1s\"\n",
            d.display()
        ),
    );
    let mut expected = Vec::new();
    // Rename: the writer keeps writing to the renamed file a moment, then opens a new one.
    let mut writer = std::fs::OpenOptions::new().append(true).open(&app).unwrap();
    writer.write_all(numbered("a", 0, 500).as_bytes()).unwrap();
    expected.extend(lines("a", 0, 500));
    std::fs::rename(&app, d.join("app.log.1")).unwrap();
    writer
        .write_all(numbered("a", 500, 100).as_bytes())
        .unwrap();
    expected.extend(lines("a", 500, 100));
    drop(writer);
    append(&app, &numbered("a", 600, 200));
    expected.extend(lines("a", 600, 200));
    // copytruncate: copy, truncate in place, the writer goes on from 0.
    append(&ct, &numbered("c", 0, 300));
    expected.extend(lines("c", 0, 300));
    router.wait_for_events(800 + 300 - 200);
    common::wait_until(
        "the lines before the truncation",
        || counts(&router.events()).contains_key("c-299"),
        || router.log_text(),
    );
    std::fs::copy(&ct, d.join("ct.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ct)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    append(&ct, &numbered("c", 300, 50));
    expected.extend(lines("c", 300, 50));
    router.wait_for_events(expected.len());
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&router.events(), &expected);
    router.wait_for_log("the rotated file closed", |l| {
        l.contains("closing: rotated") && l.contains("app.log")
    });
    // A deleted file is closed once read to its end.
    std::fs::remove_file(&ct).unwrap();
    router.wait_for_log("the deleted file closed", |l| {
        l.contains("closing: deleted") && l.contains("ct.log")
    });
    let samples = common::scrape(&router.http_addr());
    let truncated = wasm_router::ops::prometheus_text::sum(
        &samples,
        "component_errors_total",
        &[("component_id", "tail"), ("reason", "file_truncated")],
    );
    assert_eq!(truncated, 1.0);
}

#[test]
fn a_restart_resumes_from_the_offsets_file_with_no_loss_and_no_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("app.log");
    append(&log, &numbered("l", 0, 1000));
    let options = format!(
        "path = [\"{0}/app.log\"]\nread_from_head = true\ndb = \"{0}/tail.db\"\n",
        d.display()
    );
    let mut printed = Vec::new();

    // Run 1: everything there is, then kill -9 once it was printed and saved.
    let router = start(common::free_port(), &options);
    router.wait_for_events(1000);
    std::thread::sleep(Duration::from_millis(500));
    router.signal("KILL");
    printed.extend(router.events_after_exit());
    drop(router);

    // While no router runs, more lines.
    append(&log, &numbered("l", 1000, 500));

    // Run 2: only the new lines; then a graceful stop while a writer appends.
    let mut router = start(common::free_port(), &options);
    router.wait_for_events(500);
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for i in 0..20 {
                append(&log, &numbered("l", 1500 + i * 100, 100));
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    router.terminate();
    printed.extend(router.events_after_exit());
    writer.join().unwrap();
    drop(router);

    // Run 3: the rest, once.
    let router = start(common::free_port(), &options);
    let expected = lines("l", 0, 3500);
    common::wait_until(
        "every line",
        || printed.len() + router.events().len() >= expected.len(),
        || router.log_text(),
    );
    std::thread::sleep(Duration::from_millis(500));
    printed.extend(router.events());
    assert_exactly_once(&printed, &expected);
}

/// Without inotify (`Inotify_Watcher Off`, or a file system that has none) the files are polled:
/// new lines every second, new files every `refresh_interval`.
#[test]
fn without_inotify_the_files_are_polled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    append(&d.join("a.log"), "");
    let router = start(
        common::free_port(),
        &format!(
            "path = [\"{0}/*.log\"]\ninotify_watcher = false\nrefresh_interval = \"1s\"\n",
            d.display()
        ),
    );
    append(&d.join("a.log"), &numbered("a", 0, 3));
    append(&d.join("b.log"), &numbered("b", 0, 2));
    router.wait_for_events(5);
    let mut expected = lines("a", 0, 3);
    expected.extend(lines("b", 0, 2));
    assert_exactly_once(&router.events(), &expected);
}

/// Six files and room for two open: idle files are closed to give the others a turn, and a
/// closed file is read on from its offset when it opens again.
#[test]
fn more_files_than_may_be_open_each_get_a_turn() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut expected = Vec::new();
    for f in 0..6 {
        append(
            &d.join(format!("f{f}.log")),
            &numbered(&format!("f{f}"), 0, 10),
        );
        expected.extend(lines(&format!("f{f}"), 0, 10));
    }
    let router = start(
        common::free_port(),
        &format!(
            "path = [\"{0}/*.log\"]\nread_from_head = true\nmax_open_files = 2\nrefresh_interval = \"1s\"\n",
            d.display()
        ),
    );
    router.wait_for_events(60);
    for f in 0..6 {
        append(
            &d.join(format!("f{f}.log")),
            &numbered(&format!("f{f}"), 10, 5),
        );
        expected.extend(lines(&format!("f{f}"), 10, 5));
    }
    router.wait_for_events(expected.len());
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&router.events(), &expected);
}

#[test]
fn long_lines_are_skipped_and_counted_or_stop_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let http = common::free_port();
    let router = start(
        http,
        &format!(
            "path = [\"{0}/skip.log\"]\nskip_long_lines = true\nbuffer_max_size = \"1KiB\"\nbuffer_chunk_size = \"256\"\n\
             [[inputs]]\ntype = \"tail\"\nname = \"strict\"\npath = [\"{0}/strict.log\"]\nbuffer_max_size = \"1KiB\"\nbuffer_chunk_size = \"1KiB\"\n",
            d.display()
        ),
    );
    let long = "x".repeat(5000);
    append(&d.join("skip.log"), &format!("before\n{long}\nafter\n"));
    append(
        &d.join("strict.log"),
        &format!("kept\n{long}\nnever read\n"),
    );
    router.wait_for_events(3);
    std::thread::sleep(Duration::from_millis(300));
    let mut got: Vec<String> = counts(&router.events()).into_keys().collect();
    got.sort();
    assert_eq!(got, ["after", "before", "kept"]);
    let http = router.http_addr();
    common::wait_until(
        "the long lines counted",
        || {
            let samples = common::scrape(&http);
            common::discarded(&samples, "tail", "line_too_long") == 1
                && common::discarded(&samples, "strict", "line_too_long") == 1
        },
        || router.log_text(),
    );
    router.wait_for_log("the strict file stopped", |l| {
        l.contains("no longer reading the file") && l.contains("strict.log")
    });
}

/// An output that cannot keep up (its stdout not read) fills its buffer: the input waits, and
/// every line arrives once the output drains, none dropped.
#[test]
fn a_full_buffer_holds_the_input_back_without_dropping_a_line() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("app.log");
    append(&log, &numbered("l", 0, 20_000));
    let http = common::free_port();
    let config = common::write_config(
        d,
        &format!(
            "[service]\nhttp_listen = \"127.0.0.1:{http}\"\n\
             [[inputs]]\ntype = \"tail\"\npath = [\"{0}/app.log\"]\nread_from_head = true\ndb = \"{0}/tail.db\"\n\
             [[outputs]]\ntype = \"stdout\"\nmatch = \"*\"\nbuffer = {{ max_bytes = \"64KiB\", when_full = \"block\" }}\n",
            d.display()
        ),
    );
    let mut child = common::router_command()
        .arg("run")
        .arg("-c")
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{http}");
    let received = || {
        std::net::TcpStream::connect(&addr).ok()?;
        let samples = common::scrape(&addr);
        Some(wasm_router::ops::prometheus_text::sum(
            &samples,
            "component_received_events_total",
            &[("component_id", "tail")],
        ))
    };
    // Nobody reads the router's stdout: the input takes lines until the buffer is full, then
    // waits.
    let mut held_at = None;
    for _ in 0..200 {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(n) = received()
            && n > 0.0
        {
            std::thread::sleep(Duration::from_millis(500));
            held_at = received();
            break;
        }
    }
    let held_at = held_at.expect("the router took some lines");
    assert!(held_at < 20_000.0, "the input was not held back: {held_at}");
    let samples = common::scrape(&addr);
    let dropped =
        wasm_router::ops::prometheus_text::sum(&samples, "component_discarded_events_total", &[]);
    assert_eq!(dropped, 0.0);
    // Now read: every line arrives, once.
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut printed = Vec::new();
    for line in stdout.lines() {
        printed.push(PrintedEvent::parse(&line.unwrap()));
        if printed.len() == 20_000 {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_exactly_once(&printed, &lines("l", 0, 20_000));
}

#[test]
fn a_fluent_bit_db_is_refused_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flb.db");
    std::fs::write(&db, b"SQLite format 3\0....").unwrap();
    let conf = common::write_config(
        dir.path(),
        &format!(
            "[[inputs]]\ntype = \"tail\"\npath = [\"/tmp/*.nothing\"]\ndb = \"{}\"\n[[outputs]]\ntype = \"null\"\nmatch = \"*\"\n",
            db.display()
        ),
    );
    let (ok, text) = common::validate(&conf, &[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("inputs[0].db") && text.contains("Fluent Bit SQLite database"),
        "{text}"
    );
}

/// The `log` values printed, in order.
fn logs(events: &[PrintedEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.record["log"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Docker's json-file splits a long line into JSON lines whose `log` ends without `\n` but the
/// last: `multiline.parser docker` joins them back, per stream, with `path_key` added.
#[test]
fn docker_json_pieces_arrive_joined_with_multiline_parser_docker() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("c.log");
    let line = |log: &str, stream: &str| {
        format!(
            "{}\n",
            json!({"log": log, "stream": stream, "time": "2024-01-01T00:00:00.000000001Z"})
        )
    };
    let router = start(
        common::free_port(),
        &format!(
            "path = [\"{0}/*.log\"]\nmultiline_parser = [\"docker\"]\npath_key = \"file\"\n",
            d.display()
        ),
    );
    append(
        &log,
        &[
            line("part1 ", "stdout"),
            line("err alone\n", "stderr"),
            line("part2 ", "stdout"),
        ]
        .concat(),
    );
    append(&log, &line("end\n", "stdout"));
    router.wait_for_events(2);
    std::thread::sleep(Duration::from_millis(300));
    let events = router.events();
    assert_eq!(logs(&events), ["err alone\n", "part1 part2 end\n"]);
    assert_eq!(events[1].record["stream"], "stdout");
    assert_eq!(events[1].record["file"], log.display().to_string());
    assert_eq!(
        events[1].time_ns, 1_704_067_200_000_000_001,
        "Docker's time"
    );
}

/// CRI's `P` pieces join up to the `F` line with `multiline.parser cri`.
#[test]
fn cri_pieces_arrive_joined_with_multiline_parser_cri() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("c.log");
    append(
        &log,
        "2024-01-01T00:00:00.000000001Z stdout F written before\n",
    );
    let router = start(
        common::free_port(),
        &format!(
            "path = [\"{0}/*.log\"]\nread_from_head = true\nmultiline_parser = [\"docker\", \"cri\"]\n",
            d.display()
        ),
    );
    append(
        &log,
        "2024-01-01T00:00:00.000000001Z stdout P part1 \n2024-01-01T00:00:00.000000002Z stdout P part2 \n2024-01-01T00:00:00.000000003Z stdout F end\n",
    );
    router.wait_for_events(2);
    std::thread::sleep(Duration::from_millis(300));
    let events = router.events();
    assert_eq!(logs(&events), ["written before", "part1 part2 end"]);
    assert_eq!(events[1].record["stream"], "stdout");
    assert_eq!(
        events[1].time_ns, 1_704_067_200_000_000_001,
        "the first piece's time"
    );
}

const TRACE: [&str; 4] = [
    "Exception in thread \"main\" java.lang.IllegalStateException: boom",
    "    at com.example.App.load(App.java:38)",
    "    at com.example.App.main(App.java:14)",
    "    ... 1 more",
];

/// A Java stack trace is one record; the last one, which no line follows, goes after the flush
/// timeout (4s for `java`).
#[test]
fn java_stack_traces_arrive_as_one_record_the_last_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("app.log");
    let router = start(
        common::free_port(),
        &format!(
            "path = [\"{0}/app.log\"]\nmultiline_parser = [\"java\"]\noffset_key = \"offset\"\n",
            d.display()
        ),
    );
    let trace = format!("{}\n", TRACE.join("\n"));
    append(&log, &format!("starting\n{trace}between\n{trace}"));
    router.wait_for_events(3);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        router.events().len(),
        3,
        "the last trace waits for its next line"
    );
    let events = router.wait_for_events(4);
    assert_eq!(logs(&events), ["starting\n", &trace, "between\n", &trace]);
    let size = std::fs::metadata(&log).unwrap().len();
    assert_eq!(
        events[3].record["offset"], size,
        "the offset after its last line"
    );
}

/// Restarts in the middle of an open stack trace lose no line: after `kill -9` the trace is read
/// again from its start (the saved offset never passes a line the joiner holds); a graceful
/// stop passes on what is open.
#[test]
fn a_restart_in_the_middle_of_a_trace_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("app.log");
    let options = format!(
        "path = [\"{0}/app.log\"]\nread_from_head = true\nmultiline_parser = [\"java\"]\ndb = \"{0}/tail.db\"\n",
        d.display()
    );
    let mut printed = Vec::new();

    // Run 1: a line and half a trace, then kill -9 once the line was printed and saved.
    append(&log, &format!("before\n{}\n{}\n", TRACE[0], TRACE[1]));
    let router = start(common::free_port(), &options);
    router.wait_for_events(1);
    std::thread::sleep(Duration::from_millis(1500));
    router.signal("KILL");
    printed.extend(router.events_after_exit());
    drop(router);

    // Run 2: the rest of the trace arrives; it is read whole again; then half a second trace
    // and a graceful stop, which passes it on.
    append(&log, &format!("{}\n{}\nafter\n", TRACE[2], TRACE[3]));
    let mut router = start(common::free_port(), &options);
    router.wait_for_events(2);
    append(&log, &format!("{}\n{}\n", TRACE[0], TRACE[1]));
    std::thread::sleep(Duration::from_millis(1500));
    router.terminate();
    printed.extend(router.events_after_exit());
    drop(router);

    // Run 3: the end of the second trace, then a line.
    append(&log, &format!("{}\nlast\n", TRACE[2]));
    let router = start(common::free_port(), &options);
    router.wait_for_events(2);
    std::thread::sleep(Duration::from_millis(500));
    printed.extend(router.events());
    let trace = format!("{}\n", TRACE.join("\n"));
    assert_eq!(
        logs(&printed),
        [
            "before\n".to_string(),
            trace,
            "after\n".into(),
            format!("{}\n{}\n", TRACE[0], TRACE[1]),
            format!("{}\n", TRACE[2]),
            "last\n".into(),
        ]
    );
}

/// A file deleted in the middle of a message passes it on when it is closed, long before the
/// flush timeout of its `[MULTILINE_PARSER]` (from `parsers_files`).
#[test]
fn a_deleted_file_passes_on_its_open_message_when_closed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let parsers = d.join("parsers.conf");
    std::fs::write(
        &parsers,
        "[MULTILINE_PARSER]\n    name          slow\n    type          regex\n    flush_timeout 600000\n    rule      \"start_state\"   \"/^Exception/\"   \"cont\"\n    rule      \"cont\"          \"/^\\s+at .*/\"   \"cont\"\n",
    )
    .unwrap();
    let log = d.join("app.log");
    let router = start(
        common::free_port(),
        &format!(
            "path = [\"{0}/app.log\"]\nmultiline_parser = [\"slow\"]\nparsers_files = [\"{1}\"]\n",
            d.display(),
            parsers.display()
        ),
    );
    append(&log, "Exception boom\n    at a\n    at b\n");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(router.events().is_empty(), "the message is still open");
    std::fs::remove_file(&log).unwrap();
    let events = router.wait_for_events(1);
    assert_eq!(logs(&events), ["Exception boom\n    at a\n    at b\n"]);
}
