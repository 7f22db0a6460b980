//! The FireLens drop-in: the configs ECS generates (examples/firelens, §1.5 of the FireLens
//! reference) validate in all three network modes with `${}` secrets from the environment, and
//! the awsvpc one runs with the image's command line (`-e … -c …`, no subcommand): the 8877
//! health probe is answered and events reach CloudWatch Logs in moto.

#[path = "common/aws.rs"]
mod aws;
mod common;

use serde_json::json;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

const ROLE: &str = "arn:aws:iam::111122223333:role/logs";

fn example(mode: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/firelens")
        .join(format!("{mode}.conf"))
}

fn validate(path: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = common::router_command()
        .args(["validate", "-c", path.to_str().unwrap()])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_generated_configs_of_all_three_network_modes_validate() {
    for mode in ["bridge", "awsvpc", "host"] {
        let (ok, out) = validate(&example(mode), &[("role_arn_0", ROLE)]);
        assert!(ok, "{mode}: {out}");
        assert!(out.contains("valid"), "{mode}: {out}");
        assert_eq!(
            out.contains("8877"),
            mode != "host",
            "{mode}: the health probe is in bridge/awsvpc only: {out}"
        );
    }
}

#[test]
fn a_missing_secret_names_the_file_line_and_variable() {
    let (ok, out) = validate(&example("awsvpc"), &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("awsvpc.conf:") && out.contains("role_arn_0"),
        "{out}"
    );
}

struct Router {
    child: Child,
    stderr: std::sync::Arc<common::Lines>,
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_awsvpc_config_runs_with_the_image_command_line_answers_the_probe_and_delivers_to_cloudwatch()
 {
    let moto = aws::Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let probe_port = free_port();
    let generated = std::fs::read_to_string(example("awsvpc")).unwrap();
    // The same file with what a test machine needs: its own socket and ports, moto as endpoint
    // (through `${}` like a secret), no cross-account role.
    let text = generated
        .replace(
            "/var/run/fluent.sock",
            dir.path().join("fluent.sock").to_str().unwrap(),
        )
        .replace("Port 24224", "Port 0")
        .replace("Port 8877", &format!("Port {probe_port}"))
        .replace("role_arn ${role_arn_0}", "endpoint ${moto_endpoint_0}");
    let path = dir.path().join("fluent-bit.conf");
    std::fs::write(&path, text).unwrap();

    let mut child = common::router_command()
        .args([
            "-e",
            "/fluent-bit/firehose.so",
            "-e",
            "/fluent-bit/cloudwatch.so",
            "-c",
            path.to_str().unwrap(),
        ])
        .envs(aws::aws_env())
        .env("moto_endpoint_0", &moto.endpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = common::Lines::collect(child.stderr.take().unwrap());
    let router = Router { child, stderr };
    let tcp = |lines: &[String]| {
        common::listen_addrs(lines)
            .into_iter()
            .find_map(|a| a.strip_prefix("tcp://").map(String::from))
    };
    assert!(
        router
            .stderr
            .wait_until(common::HANG_TIMEOUT, |l| tcp(l).is_some()),
        "no listener:\n{}",
        router.stderr.snapshot().join("\n")
    );
    let addr = tcp(&router.stderr.snapshot()).unwrap();
    let log = router.stderr.snapshot().join("\n");
    assert!(log.contains("-e ignored"), "{log}");

    // `echo '{"health": "check"}' | nc 127.0.0.1 8877`: accepted, read, closed.
    let mut probe = std::net::TcpStream::connect(("127.0.0.1", probe_port))
        .expect("the 8877 probe is accepted");
    probe.write_all(b"{\"health\": \"check\"}\n").unwrap();
    probe.shutdown(std::net::Shutdown::Write).unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    probe
        .read_to_end(&mut rest)
        .expect("the probe connection is closed by the router");
    assert!(rest.is_empty());

    let tag = "app-firelens-0123456789abcdef";
    let events: Vec<(u64, serde_json::Value)> = (0..5)
        .map(|i| {
            (
                aws::now_ns(),
                json!({"log": format!("line {i}"), "source": "stdout"}),
            )
        })
        .collect();
    aws::send_forward(&addr, tag, &events, 5);
    let endpoint = moto.endpoint.clone();
    let got = aws::eventually(Duration::from_secs(60), "events in /ecs/web", || {
        let endpoint = endpoint.clone();
        async move {
            // Until the output has created the group (auto_create_group), it does not exist.
            let client = aws::logs_client(&endpoint);
            let streams = client
                .describe_log_streams()
                .log_group_name("/ecs/web")
                .send()
                .await
                .ok()?;
            let stream = streams
                .log_streams()
                .iter()
                .filter_map(|s| s.log_stream_name())
                .find(|s| s.starts_with("web-"))?
                .to_string();
            let events = aws::log_events(&endpoint, "/ecs/web", &stream).await;
            (events.len() == 5).then_some((stream, events))
        }
    })
    .await;
    assert_eq!(got.0, format!("web-{tag}"));
    for (i, (_, message)) in got.1.iter().enumerate() {
        let record: serde_json::Value = serde_json::from_str(message).unwrap();
        assert_eq!(record["log"], format!("line {i}"));
    }
    drop(router);
}
