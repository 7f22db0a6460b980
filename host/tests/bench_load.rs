//! `wasm-router bench-load` and `bench-startup` against the real router binary: every carrier
//! mode arrives intact and acked over TCP and the unix socket, latency is read back from the
//! stdout output, the router's process is watched, and startup runs are timed. Only behaviour
//! is asserted, never speed (figures belong to `scripts/bench`).

use crate::common;

use common::{RouterProcess, TCP_AND_UNIX_TO_STDOUT, router_command, run_to_end};
use serde_json::Value;
use std::process::Stdio;

fn bench_load(args: &[&str]) -> Value {
    let out = run_to_end(
        router_command().arg("bench-load").args(args).arg("--json"),
        "bench-load",
    );
    assert!(
        out.status.success(),
        "bench-load {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("bench-load --json prints one JSON object")
}

#[test]
fn every_mode_arrives_intact_and_acked_over_tcp_and_unix() {
    let router = RouterProcess::start(TCP_AND_UNIX_TO_STDOUT);
    let tcp = router.tcp_addr();
    let unix = format!("unix://{}", router.unix_path().display());
    let pid = router.pid().to_string();
    let runs: [(&str, &str, &[&str]); 6] = [
        ("message", tcp.as_str(), &[]),
        ("forward", tcp.as_str(), &[]),
        ("packed-forward", tcp.as_str(), &[]),
        ("compressed-packed-forward", tcp.as_str(), &[]),
        (
            "compressed-packed-forward",
            unix.as_str(),
            &["--compression", "zstd"],
        ),
        ("packed-forward", unix.as_str(), &["--connections", "3"]),
    ];
    let mut total = 0u64;
    for (mode, address, extra) in runs {
        let mut args = vec![
            "-a",
            address,
            "-m",
            mode,
            "-n",
            "3000",
            "-b",
            "100",
            "--ack-every",
            "500",
            "--ack-window",
            "2",
            "--watch-pid",
            &pid,
            "--tag",
            "bench.test",
        ];
        args.extend_from_slice(extra);
        let report = bench_load(&args);
        let sent = report["events_sent"].as_u64().unwrap();
        assert!(sent >= 3000, "{mode}: {report}");
        assert_eq!(
            report["events_acked"].as_u64(),
            Some(sent),
            "{mode}: every event acked: {report}"
        );
        assert_eq!(
            report["acks"].as_u64(),
            Some(sent / 500),
            "{mode}: one ack per 500 events: {report}"
        );
        assert!(
            report["router"]["peak_rss_mib"].as_f64().unwrap() > 0.0,
            "{report}"
        );
        assert!(
            report["router"]["cpu_seconds"].as_f64().unwrap() >= 0.0,
            "{report}"
        );
        total += sent;
    }

    let events = router.wait_for_events(total as usize);
    assert_eq!(events.len() as u64, total);
    for event in &events {
        assert_eq!(event.tag, "bench.test");
        let record = &event.record;
        let id = record["container_id"].as_str().unwrap();
        assert!(
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{record}"
        );
        assert_eq!(record["container_name"], "/ecs-app-1");
        assert_eq!(record["source"], "stdout");
        assert!(!record["log"].as_str().unwrap().is_empty());
        assert_eq!(
            rmp_serde::to_vec_named(record).unwrap().len(),
            200,
            "200-byte records: {record}"
        );
    }
    router.stop();
}

#[test]
fn latency_is_read_back_from_the_stdout_output() {
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("router.toml");
    let text = format!(
        "[service]\ngrace = \"5s\"\n[[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:{port}\"\n[[outputs]]\ntype = \"stdout\"\nmatch = \"*\"\n"
    );
    std::fs::write(&config, text).unwrap();
    let mut router = router_command()
        .args(["run", "-c", config.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let address = format!("127.0.0.1:{port}");
    let out = router_command()
        .args([
            "bench-load",
            "-a",
            &address,
            "-m",
            "message",
            "-n",
            "2000",
            "-r",
            "20000",
            "--ack-every",
            "0",
        ])
        .args(["--receive-stdin", "--json"])
        .stdin(router.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
        .wait_with_output()
        .unwrap();
    let _ = router.kill();
    let _ = router.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let latency = &report["output_latency"];
    assert_eq!(latency["measured_at"], "stdout");
    assert_eq!(
        latency["received"].as_u64(),
        report["events_sent"].as_u64(),
        "{report}"
    );
    assert_eq!(latency["unreadable"].as_u64(), Some(0));
    let p = &latency["latency_us"];
    assert_eq!(p["count"].as_u64(), Some(2000));
    let (p50, p99, max) = (
        p["p50"].as_f64().unwrap(),
        p["p99"].as_f64().unwrap(),
        p["max"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{p}");
}

#[test]
fn startup_runs_are_timed_and_a_cleared_directory_is_removed_each_time() {
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("router.toml");
    std::fs::write(
        &config,
        format!("[[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:{port}\"\n[[outputs]]\ntype = \"null\"\nmatch = \"*\"\n"),
    )
    .unwrap();
    let scratch = dir.path().join("cache");
    std::fs::create_dir(&scratch).unwrap();
    std::fs::write(scratch.join("marker"), "x").unwrap();
    let router = env!("CARGO_BIN_EXE_wasm-router");
    let out = run_to_end(
        router_command()
            .args([
                "bench-startup",
                "-a",
                &format!("127.0.0.1:{port}"),
                "--runs",
                "2",
                "--warmup",
                "0",
            ])
            .args([
                "--clear-dir",
                scratch.to_str().unwrap(),
                "--json",
                "--",
                router,
                "run",
                "-c",
                config.to_str().unwrap(),
            ]),
        "bench-startup",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["runs_ms"].as_array().unwrap().len(), 2, "{report}");
    assert!(report["median_ms"].as_f64().unwrap() > 0.0);
    assert!(
        !scratch.exists(),
        "the directory is cleared before each run"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "every started router was stopped"
    );
}

#[test]
fn a_router_that_never_listens_fails_the_startup_run_with_its_log() {
    let out = run_to_end(
        router_command()
            .args([
                "bench-startup",
                "-a",
                &format!("127.0.0.1:{}", common::free_port()),
                "--runs",
                "1",
                "--warmup",
                "0",
            ])
            .args([
                "--",
                env!("CARGO_BIN_EXE_wasm-router"),
                "run",
                "-c",
                "/nonexistent/router.toml",
            ]),
        "bench-startup",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exited") && stderr.contains("/nonexistent/router.toml"),
        "{stderr}"
    );
}
