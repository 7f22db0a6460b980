//! The FireLens drop-in: the configs ECS generates (examples/firelens, §1.5 of the FireLens
//! reference) validate in all three network modes with `${}` secrets from the environment, and
//! each of them — bridge, awsvpc, host, and bridge with `enable-ecs-log-metadata` (grep +
//! record_modifier + the image's parse-json include) — runs with the image's command line
//! (`-e … -c …`, no subcommand): events sent by PyPI `fluent-logger` over the unix socket and,
//! where the mode has it, TCP reach CloudWatch Logs in moto, with the cross-account role of
//! `${role_arn_0}` assumed; the 8877 health probe is answered in bridge/awsvpc and absent in host
//! mode.
//!
//! The configs run as generated except for what a test machine cannot give them: the socket
//! path (`/var/run/fluent.sock` → a temporary directory), the fixed ports (24224 → 0, 8877 → a
//! free port) and, for the metadata config, the path of the image's parse-json.conf. Moto is
//! reached through `AWS_ENDPOINT_URL` in the environment, so no [OUTPUT] line changes.

use crate::common::{self, RouterProcess, aws};

use crate::common::fault_proxy;

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const ROLE: &str = "arn:aws:iam::111122223333:role/logs";

fn example(mode: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/firelens")
        .join(format!("{mode}.conf"))
}

#[test]
fn the_generated_configs_of_all_three_network_modes_validate() {
    for mode in ["bridge", "awsvpc", "host"] {
        let (ok, out) = common::validate(&example(mode), &[("role_arn_0", ROLE)]);
        assert!(ok, "{mode}: {out}");
        assert!(out.contains("valid"), "{mode}: {out}");
        let text = std::fs::read_to_string(example(mode)).unwrap();
        assert_eq!(
            text.contains("Name tcp") && text.contains("8877"),
            mode != "host",
            "{mode}: the health probe is in bridge/awsvpc only"
        );
        assert!(
            !out.contains("discard"),
            "{mode}: the tcp input keeps what it receives: {out}"
        );
    }
}

#[test]
fn a_missing_secret_names_the_file_line_and_variable() {
    let (ok, out) = common::validate(&example("awsvpc"), &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("awsvpc.conf:") && out.contains("role_arn_0"),
        "{out}"
    );
}

/// What only the binary says: `validate` prints the loader's warnings with `file:line`, and a
/// missing `-R` parsers file stops `run` naming the flag and the file.
#[test]
fn the_command_line_prints_loader_warnings_and_refuses_a_missing_parsers_file() {
    let (ok, out) = common::validate(&example("bridge"), &[("role_arn_0", ROLE)]);
    assert!(ok, "{out}");
    for expected in [
        "warning: ",
        "bridge.conf:4: `mem_buf_limit` is accepted; memory is bounded by [service] memory_budget",
    ] {
        assert!(out.contains(expected), "no {expected:?} in:\n{out}");
    }
    let out = common::run_to_end(
        common::router_command()
            .args(["-c", example("host").to_str().unwrap()])
            .args(["-R", "/nonexistent/parsers.conf"])
            .env("role_arn_0", ROLE),
        "wasm-router -R",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("-R /nonexistent/parsers.conf: cannot read the parsers file"),
        "{stderr}"
    );
}

/// One of the generated configs of examples/firelens.
#[derive(Clone, Copy)]
struct Generated {
    /// `examples/firelens/<file>.conf`.
    file: &'static str,
    /// Bridge and awsvpc: forward on `Listen`:24224 and the `tcp` health probe on 8877.
    network: bool,
    /// `enable-ecs-log-metadata`: the grep (`Exclude log ^DEBUG`) and record_modifier
    /// filters and the `@INCLUDE` of the image's parse-json.conf.
    metadata: bool,
}

/// The cross-account role of the examples, in moto's default account so that the events
/// written with the assumed role's credentials are read back with the test's.
const ROLE_IN_MOTO: &str = "arn:aws:iam::123456789012:role/logs";
const TAG: &str = "app-firelens-0123456789abcdef0123456789abcdef";
const TASK_ARN: &str =
    "arn:aws:ecs:us-east-1:111122223333:task/prod/0123456789abcdef0123456789abcdef";

/// The image's `/fluent-bit/configs/parse-json.conf` (aws-for-fluent-bit configs/).
const IMAGE_PARSE_JSON: &str = "[SERVICE]\n    Parsers_File /fluent-bit/parsers/parsers.conf\n    Flush 1\n    Grace 30\n\n[FILTER]\n    Name parser\n    Match *\n    Key_Name log\n    Parser json\n    Reserve_Data True\n";

/// Send `records` under [`TAG`] with PyPI `fluent-logger` (EventTime now) to `address`:
/// `host:port` or `unix:///path`.
fn send_with_fluent_logger(address: &str, records: &[Value]) {
    const SCRIPT: &str = r#"
import json, sys, time
from fluent import sender
address, tag = sys.argv[1], sys.argv[2]
if address.startswith("unix://"):
    host, port = address, 0
else:
    host, port = address.rsplit(":", 1)
logger = sender.FluentSender(tag, host=host, port=int(port), nanosecond_precision=True, timeout=10.0)
for i, record in enumerate(json.load(sys.stdin)):
    if not logger.emit_with_time(None, sender.EventTime.from_unix_nano(time.time_ns()), record):
        sys.exit(f"event {i}: {logger.last_error!r}")
logger.close()
"#;
    let mut child = Command::new(common::python())
        .args(["-c", SCRIPT, address, TAG])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(records).unwrap())
        .unwrap();
    let out = common::wait_output(child, "fluent-logger sender");
    common::assert_success(&out, "fluent-logger sender");
}

/// What the app container writes through `via`: JSON lines, and a DEBUG line every third.
fn app_records(via: &str) -> Vec<Value> {
    (0..9)
        .map(|i| {
            let log = if i % 3 == 0 {
                format!("DEBUG {via} {i}")
            } else {
                json!({"level": "info", "msg": format!("{via} line {i}")}).to_string()
            };
            json!({"log": log, "source": "stdout", "container_name": "/ecs-web-7-app"})
        })
        .collect()
}

/// What CloudWatch Logs should hold for `record`: as sent, or with the metadata config's
/// filters applied (DEBUG dropped, the four ECS fields added, `log` parsed as JSON).
fn delivered(record: &Value, metadata: bool) -> Option<Value> {
    if !metadata {
        return Some(record.clone());
    }
    let log = record["log"].as_str().unwrap();
    if log.starts_with("DEBUG") {
        return None;
    }
    let mut out = serde_json::from_str::<Value>(log).unwrap();
    let fields = out.as_object_mut().unwrap();
    for (key, value) in record.as_object().unwrap() {
        if key != "log" {
            fields.insert(key.clone(), value.clone());
        }
    }
    fields.insert("ec2_instance_id".into(), "i-0abc1234def567890".into());
    fields.insert("ecs_cluster".into(), "prod".into());
    fields.insert("ecs_task_arn".into(), TASK_ARN.into());
    fields.insert("ecs_task_definition".into(), "web:7".into());
    Some(out)
}

/// Run `generated` as the FireLens image would, send events through every forward input it
/// has, and check what reaches CloudWatch Logs (moto, behind a recording proxy), the 8877
/// probe and the `${role_arn_0}` secret.
async fn runs_end_to_end(generated: Generated) {
    let Generated {
        file,
        network,
        metadata,
    } = generated;
    let moto = aws::Moto::start();
    let proxy = fault_proxy::FaultProxy::start(&moto.endpoint);
    let dir = tempfile::tempdir().unwrap();
    let probe_port = common::free_port();
    let original = std::fs::read_to_string(example(file)).unwrap();
    let socket = dir.path().join("fluent.sock");
    let parse_json = dir.path().join("parse-json.conf");
    std::fs::write(&parse_json, IMAGE_PARSE_JSON).unwrap();
    // Only the socket path, the fixed ports and the include path change.
    let text = original
        .replace("/var/run/fluent.sock", socket.to_str().unwrap())
        .replace("Port 24224", "Port 0")
        .replace("Port 8877", &format!("Port {probe_port}"))
        .replace(
            "/fluent-bit/configs/parse-json.conf",
            parse_json.to_str().unwrap(),
        );
    let changed: Vec<(&str, &str)> = original
        .lines()
        .zip(text.lines())
        .filter(|(a, b)| a != b)
        .collect();
    let mut rewritten: Vec<&str> = changed
        .iter()
        .map(|(a, _)| a.split_whitespace().next().unwrap())
        .collect();
    rewritten.sort();
    let mut expected = vec!["unix_path"];
    if network {
        expected.extend(["Port", "Port"]);
    }
    if metadata {
        expected.push("@INCLUDE");
    }
    expected.sort();
    assert_eq!(rewritten, expected, "{file}: rewritten lines {changed:?}");
    assert_eq!(text.lines().count(), original.lines().count());
    let path = dir.path().join("fluent-bit.conf");
    std::fs::write(&path, &text).unwrap();

    let router = RouterProcess::spawn(
        common::router_command()
            .args([
                "-e",
                "/fluent-bit/firehose.so",
                "-e",
                "/fluent-bit/cloudwatch.so",
                "-e",
                "/fluent-bit/kinesis.so",
                "-c",
                path.to_str().unwrap(),
            ])
            .envs(aws::aws_env())
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .env("role_arn_0", ROLE_IN_MOTO),
        dir,
    );
    let unix = router.unix_path();
    assert_eq!(unix, socket, "{}", router.log_text());
    let mut senders = vec![format!("unix://{}", unix.display())];
    if network {
        // The forward listener, beside the tcp input of the health probe.
        let listening = router.listening(3);
        let tcp = listening
            .iter()
            .filter_map(|a| a.strip_prefix("tcp://"))
            .find(|a| !a.ends_with(&format!(":{probe_port}")))
            .unwrap_or_else(|| panic!("{file}: no forward listener in {listening:?}"));
        let port = tcp.rsplit_once(':').unwrap().1;
        // bridge listens on 0.0.0.0, awsvpc on 127.0.0.1; the app reaches either on loopback.
        senders.push(format!("127.0.0.1:{port}"));
    }
    let log = router.log_text();
    assert!(
        log.contains("fluent-bit.conf:4: `mem_buf_limit` is accepted"),
        "{file}: the loader's warnings are logged with file:line:\n{log}"
    );
    assert_eq!(
        log.matches("-e ignored").count(),
        3,
        "{file}: each -e gets its info line:\n{log}"
    );

    if network {
        // `echo '{"health": "check"}' | nc 127.0.0.1 8877`: accepted, read, closed.
        let mut probe = std::net::TcpStream::connect(("127.0.0.1", probe_port))
            .unwrap_or_else(|e| panic!("{file}: the 8877 probe is refused: {e}\n{log}"));
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
        assert!(
            log.contains(&format!("tcp://127.0.0.1:{probe_port}")),
            "{file}: the tcp input listens on the probe's port:\n{log}"
        );
    } else {
        assert!(!original.contains("8877") && !original.contains("Port"));
        assert!(
            !log.contains("tcp://"),
            "{file}: host mode has neither the probe nor a TCP forward listener:\n{log}"
        );
    }

    let mut want = Vec::new();
    for address in &senders {
        let via = if address.starts_with("unix://") {
            "unix"
        } else {
            "tcp"
        };
        let records = app_records(via);
        want.extend(records.iter().filter_map(|r| delivered(r, metadata)));
        send_with_fluent_logger(address, &records);
    }
    let stream = format!("web-{TAG}");
    let mut got: Vec<Value> = aws::wait_for_log_events(
        &moto.endpoint,
        "/ecs/web",
        &stream,
        want.len(),
        Duration::from_secs(90),
    )
    .await
    .iter()
    .map(|(_, m)| serde_json::from_str(m).unwrap())
    .collect();
    let key = |v: &Value| v.to_string();
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(got, want, "{file}: what CloudWatch Logs holds");

    // `role_arn ${role_arn_0}`: the secret from the environment is the role assumed.
    let assumed = proxy.seen_op("AssumeRole");
    assert!(!assumed.is_empty(), "{file}: no AssumeRole");
    let body = String::from_utf8_lossy(&assumed[0].body);
    assert!(body.contains("role%2Flogs"), "{body}");
    assert!(
        !router.log_text().contains(ROLE_IN_MOTO),
        "{file}: the secret is not logged"
    );
    drop(router);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_config_runs_end_to_end() {
    runs_end_to_end(Generated {
        file: "bridge",
        network: true,
        metadata: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_awsvpc_config_runs_end_to_end() {
    runs_end_to_end(Generated {
        file: "awsvpc",
        network: true,
        metadata: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_config_runs_end_to_end_on_the_socket_alone_without_a_probe() {
    runs_end_to_end(Generated {
        file: "host",
        network: false,
        metadata: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metadata_config_filters_annotates_parses_and_runs_end_to_end() {
    runs_end_to_end(Generated {
        file: "metadata",
        network: true,
        metadata: true,
    })
    .await;
}
