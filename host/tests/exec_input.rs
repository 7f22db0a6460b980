//! The `exec` input end to end: real shell commands on an interval and once. Each stdout line
//! is found at the `stdout` output as `{"exec": line}` (or parsed); a failing command and a
//! line over `buf_size` are counted; a slow command never runs twice at once; with
//! `exit_after_oneshot` the router delivers the command's lines and exits (with the command's
//! code under `propagate_exit_code`); at shutdown a running command's process group is stopped.

use crate::common::{self, RouterProcess};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

fn config(http: u16, inputs: &str) -> String {
    format!(
        "[service]\nhttp_listen = \"127.0.0.1:{http}\"\ngrace = \"5s\"\n{inputs}\n\
         [[outputs]]\ntype = \"stdout\"\nmatch = \"*\"\n"
    )
}

#[test]
fn lines_of_a_command_on_an_interval_arrive_as_records() {
    let http = common::free_port();
    let router = RouterProcess::start(&config(
        http,
        "[[inputs]]\ntype = \"exec\"\ntag = \"cmd\"\ninterval = \"100ms\"\ncommand = \"printf 'alpha\\\\nbeta\\\\n'\"\n\
         [[inputs]]\ntype = \"exec\"\nname = \"parsed\"\ntag = \"json\"\ninterval = \"100ms\"\nparser = \"json\"\ncommand = \"echo '{\\\"level\\\":\\\"info\\\",\\\"n\\\":1}'\"\n",
    ));
    common::wait_until(
        "two runs of each command",
        || {
            let events = router.events();
            common::with_tag(&events, "cmd").len() >= 4
                && common::with_tag(&events, "json").len() >= 2
        },
        || router.log_text(),
    );
    let events = router.stop();
    let cmd = common::with_tag(&events, "cmd");
    assert_eq!(cmd.len() % 2, 0, "each run prints both lines");
    for pair in cmd.chunks(2) {
        assert_eq!(pair[0].record, json!({"exec": "alpha"}));
        assert_eq!(pair[1].record, json!({"exec": "beta"}));
    }
    for e in common::with_tag(&events, "json") {
        assert_eq!(e.record, json!({"level": "info", "n": 1}));
    }
}

#[test]
fn failed_runs_and_long_lines_are_counted() {
    let http = common::free_port();
    let router = RouterProcess::start(&config(
        http,
        "[[inputs]]\ntype = \"exec\"\nname = \"failing\"\ninterval = \"100ms\"\ncommand = \"echo partial; exit 7\"\n\
         [[inputs]]\ntype = \"exec\"\nname = \"long\"\ntag = \"long\"\nbuf_size = 16\ninterval = \"100ms\"\ncommand = \"echo short; echo this-line-is-longer-than-sixteen-bytes; echo after\"\n",
    ));
    let http = router.http_addr();
    common::wait_until(
        "a failed run and a long line counted",
        || {
            let samples = common::scrape(&http);
            let failed = wasm_router::ops::prometheus_text::sum(
                &samples,
                "component_errors_total",
                &[("component_id", "failing"), ("reason", "command_failed")],
            );
            failed >= 1.0 && common::discarded(&samples, "long", "record_too_large") >= 1
        },
        || router.log_text(),
    );
    let events = router.stop();
    // The lines a failing command printed are still records.
    assert!(
        events
            .iter()
            .any(|e| e.tag == "exec" && e.record == json!({"exec": "partial"}))
    );
    let long: Vec<_> = common::with_tag(&events, "long")
        .iter()
        .map(|e| e.record["exec"].as_str().unwrap().to_string())
        .collect();
    assert!(long.len() >= 2, "{long:?}");
    assert!(
        long.iter().all(|l| l == "short" || l == "after"),
        "{long:?}"
    );
}

#[test]
fn a_slow_command_never_runs_twice_at_once() {
    let http = common::free_port();
    let router = RouterProcess::start(&config(
        http,
        "[[inputs]]\ntype = \"exec\"\ninterval = \"50ms\"\ncommand = \"mkdir {dir}/running || echo OVERLAP; sleep 0.4; rmdir {dir}/running; echo done\"\n",
    ));
    let http = router.http_addr();
    common::wait_until(
        "three slow runs and their overruns counted",
        || {
            let overruns = wasm_router::ops::prometheus_text::sum(
                &common::scrape(&http),
                "component_errors_total",
                &[("component_id", "exec"), ("reason", "interval_overrun")],
            );
            router.events().len() >= 3 && overruns >= 3.0
        },
        || router.log_text(),
    );
    let events = router.stop();
    assert!(
        events.iter().all(|e| e.record == json!({"exec": "done"})),
        "{:?}",
        events
            .iter()
            .map(|e| e.record.to_string())
            .collect::<Vec<_>>()
    );
}

#[test]
fn exit_after_oneshot_delivers_the_lines_and_exits_with_the_commands_code() {
    for (propagate, expected) in [(true, 3), (false, 0)] {
        let http = common::free_port();
        let mut router = RouterProcess::start(&config(
            http,
            &format!(
                "[[inputs]]\ntype = \"exec\"\ntag = \"job\"\nexit_after_oneshot = true\npropagate_exit_code = {propagate}\ncommand = \"for i in 1 2 3; do echo line$i; done; exit 3\"\n"
            ),
        ));
        let status = router.wait_exit(Duration::from_secs(20));
        assert_eq!(
            status.code(),
            Some(expected),
            "propagate_exit_code = {propagate}; log:\n{}",
            router.log_text()
        );
        let events = router.events_after_exit();
        let lines: Vec<_> = events
            .iter()
            .map(|e| (e.tag.as_str(), e.record.clone()))
            .collect();
        assert_eq!(
            lines,
            [
                ("job", json!({"exec": "line1"})),
                ("job", json!({"exec": "line2"})),
                ("job", json!({"exec": "line3"})),
            ]
        );
    }
}

#[test]
fn a_classic_oneshot_exec_exits_zero_after_delivering() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("fluent-bit.conf");
    std::fs::write(
        &conf,
        "[INPUT]\n    Name exec\n    Tag once\n    Command echo hello from exec\n    Oneshot On\n    Exit_After_Oneshot On\n\n[OUTPUT]\n    Name stdout\n    Match *\n",
    )
    .unwrap();
    let conf = conf.to_str().unwrap().to_string();
    let mut router = RouterProcess::start_with_args(&["run", "-c", &conf], dir);
    let status = router.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status}; log:\n{}", router.log_text());
    let events = router.events_after_exit();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].tag, "once");
    assert_eq!(events[0].record, json!({"exec": "hello from exec"}));
}

#[test]
fn shutdown_stops_a_running_command_and_what_it_started() {
    // The second command closes its stdout and goes on: shutdown stops it all the same.
    let http = common::free_port();
    let mut router = RouterProcess::start(&config(
        http,
        "[[inputs]]\ntype = \"exec\"\noneshot = true\ncommand = \"echo $$; sleep 1000; echo never\"\n\
         [[inputs]]\ntype = \"exec\"\nname = \"quiet\"\noneshot = true\ncommand = \"exec >/dev/null; sleep 1000\"\n",
    ));
    let events = router.wait_for_events(1);
    let group = events[0].record["exec"].as_str().unwrap().to_string();
    let alive = || {
        Command::new("kill")
            .args(["-0", "--", &format!("-{group}")])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    assert!(alive(), "the command runs in its own process group");
    router.terminate();
    common::wait_until(
        "the command's process group gone",
        || !alive(),
        || router.log_text(),
    );
    let events = router.events_after_exit();
    assert_eq!(events.len(), 1);
}

/// A command that ignores SIGTERM is killed once the input's drain time is over.
#[test]
fn a_command_ignoring_sigterm_is_killed_after_the_drain_time() {
    let http = common::free_port();
    let mut router = RouterProcess::start(
        &config(
            http,
            "[[inputs]]\ntype = \"exec\"\noneshot = true\ncommand = \"trap '' TERM; echo started; sleep 1000\"\n",
        )
        .replace("grace = \"5s\"", "grace = \"1500ms\""),
    );
    router.wait_for_events(1);
    router.terminate();
    assert!(
        router.log_text().contains("killing it"),
        "{}",
        router.log_text()
    );
}
