//! The FireLens init conventions and the ECS task metadata, end to end on the real binary:
//! a local HTTP server stands in for `$ECS_CONTAINER_METADATA_URI_V4` (serving a `/task` answer
//! shaped like ECS's), `aws_fluent_bit_init_s3_N` files come from S3 in moto and
//! `aws_fluent_bit_init_file_N` from disk, events sent with PyPI `fluent-logger` reach
//! CloudWatch Logs in moto under names built from `${ECS_*}` and `$(ecs_*)`. Every init error
//! stops startup with a message naming the variable, its value and the fix. And every ECS task
//! definition in examples/ecs is checked against the ECS schema, rendered into the config
//! FireLens would generate for it, and validated.

use crate::common::intake::{Reply, ScriptedIntake};
use crate::common::{self, RouterProcess, aws};

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TASK_ID: &str = "5b1e5e4c0a8d4b6c9d3e2f1a0b9c8d7e";
const CONFIG_BUCKET: &str = "firelens-configs";

/// A `/task` answer shaped like the one ECS serves on EC2 (docs: "Amazon ECS task metadata v4
/// examples"): cluster as an ARN, two containers with their networks.
fn task_metadata() -> Value {
    json!({
        "Cluster": "arn:aws:ecs:us-east-1:111122223333:cluster/prod",
        "TaskARN": format!("arn:aws:ecs:us-east-1:111122223333:task/prod/{TASK_ID}"),
        "Family": "web",
        "ServiceName": "web-svc",
        "Revision": "7",
        "DesiredStatus": "RUNNING",
        "KnownStatus": "RUNNING",
        "Limits": {"CPU": 0.5, "Memory": 1024},
        "PullStartedAt": "2026-11-21T07:00:01.123456789Z",
        "PullStoppedAt": "2026-11-21T07:00:03.987654321Z",
        "AvailabilityZone": "us-east-1b",
        "VPCID": "vpc-0123456789abcdef0",
        "LaunchType": "EC2",
        "Containers": [
            {
                "DockerId": "3b4a5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071829",
                "Name": "log_router",
                "DockerName": "ecs-web-7-logrouter-a1b2c3d4e5f6a7b8c9d0",
                "Image": "111122223333.dkr.ecr.us-east-1.amazonaws.com/wasm-router:latest",
                "ImageID": "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
                "Labels": {
                    "com.amazonaws.ecs.cluster": "arn:aws:ecs:us-east-1:111122223333:cluster/prod",
                    "com.amazonaws.ecs.container-name": "log_router",
                    "com.amazonaws.ecs.task-arn": format!("arn:aws:ecs:us-east-1:111122223333:task/prod/{TASK_ID}"),
                    "com.amazonaws.ecs.task-definition-family": "web",
                    "com.amazonaws.ecs.task-definition-version": "7"
                },
                "DesiredStatus": "RUNNING",
                "KnownStatus": "RUNNING",
                "Limits": {"CPU": 0, "Memory": 0},
                "CreatedAt": "2026-11-21T07:00:04.000000001Z",
                "StartedAt": "2026-11-21T07:00:04.500000001Z",
                "Type": "NORMAL",
                "Networks": [{
                    "NetworkMode": "awsvpc",
                    "IPv4Addresses": ["10.0.2.106"],
                    "AttachmentIndex": 0,
                    "MACAddress": "0e:9e:32:c7:48:85",
                    "IPv4SubnetCIDRBlock": "10.0.2.0/24",
                    "PrivateDNSName": "ip-10-0-2-106.ec2.internal",
                    "SubnetGatewayIpv4Address": "10.0.2.1/24"
                }]
            },
            {
                "DockerId": "9c8b7a6d5e4f30a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071830",
                "Name": "app",
                "DockerName": "ecs-web-7-app-e0f1a2b3c4d5e6f7a8b9",
                "Image": "public.ecr.aws/docker/library/httpd:2.4",
                "Labels": {"com.amazonaws.ecs.container-name": "app"},
                "DesiredStatus": "RUNNING",
                "KnownStatus": "RUNNING",
                "Type": "NORMAL",
                "LogDriver": "awsfirelens",
                "Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": ["10.0.2.106"]}]
            }
        ]
    })
}

/// The stand-in for the ECS agent's metadata endpoint: `GET /v4/<id>/task` → [`task_metadata`].
struct MetadataServer {
    /// `http://127.0.0.1:<port>/v4/<id>`, what ECS puts in `ECS_CONTAINER_METADATA_URI_V4`.
    uri: String,
    intake: ScriptedIntake<()>,
}

impl MetadataServer {
    fn start() -> MetadataServer {
        let intake = ScriptedIntake::start([], None, |request, _| {
            let path: Vec<&str> = request.path.split('/').collect();
            if request.method == "GET" && matches!(path[..], ["", "v4", _, "task"]) {
                Reply::status(200)
                    .header("content-type", "application/json")
                    .body(task_metadata().to_string())
            } else {
                Reply::status(404)
            }
        });
        MetadataServer {
            uri: intake.url("/v4/a1b2c3d4-log_router"),
            intake,
        }
    }

    /// How many times the task metadata was served.
    fn task_requests(&self) -> usize {
        self.intake
            .exchanges()
            .iter()
            .filter(|exchange| exchange.status == 200)
            .count()
    }
}

/// Send `count` events under `tag` with PyPI `fluent-logger` (Message mode, EventTime now),
/// each `{"log": "{\"msg\": \"line <i>\", \"level\": \"info\"}", "source": "stdout"}`.
fn send_with_fluent_logger(addr: &str, tag: &str, count: usize) {
    const SCRIPT: &str = r#"
import json, sys, time
from fluent import sender
host, port = sys.argv[1].rsplit(":", 1)
logger = sender.FluentSender(sys.argv[2], host=host, port=int(port), nanosecond_precision=True, timeout=10.0)
for i in range(int(sys.argv[3])):
    t = sender.EventTime.from_unix_nano(time.time_ns())
    line = json.dumps({"msg": f"line {i}", "level": "info"})
    if not logger.emit_with_time(None, t, {"log": line, "source": "stdout"}):
        sys.exit(f"event {i}: {logger.last_error!r}")
logger.close()
"#;
    let out = common::run_to_end(
        Command::new(common::python())
            .args(["-c", SCRIPT, addr, tag])
            .arg(count.to_string()),
        "fluent-logger sender",
    );
    common::assert_success(&out, "fluent-logger sender");
}

/// The records of a stream once it holds `count` events.
async fn stream_records(endpoint: &str, group: &str, stream: &str, count: usize) -> Vec<Value> {
    aws::wait_for_log_events(endpoint, group, stream, count, Duration::from_secs(60))
        .await
        .iter()
        .map(|(_, m)| serde_json::from_str(m).unwrap())
        .collect()
}

async fn put_object(endpoint: &str, key: &str, body: &str) {
    aws::s3_client(endpoint)
        .put_object()
        .bucket(CONFIG_BUCKET)
        .key(key)
        .body(body.as_bytes().to_vec().into())
        .send()
        .await
        .expect("PutObject");
}

/// What FireLens mounts at /fluent-bit/etc/fluent-bit.conf in awsvpc mode, with a loopback
/// port of the test's choosing and no output of its own (the app container sets no `Name`).
fn generated_config(dir: &Path) -> PathBuf {
    let path = dir.join("fluent-bit.conf");
    let text = format!(
        "[INPUT]\n    Name forward\n    Mem_Buf_Limit 25MB\n    unix_path {}\n\n[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n",
        dir.join("fluent.sock").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_files_from_s3_and_disk_and_the_task_metadata_shape_delivery_to_cloudwatch() {
    let moto = aws::Moto::start();
    let metadata = MetadataServer::start();
    let dir = tempfile::tempdir().unwrap();
    aws::create_bucket(&moto.endpoint, CONFIG_BUCKET).await;
    // init 1 (S3): an [OUTPUT] whose group comes from `${}` and stream from `$(ecs_*)`.
    put_object(
        &moto.endpoint,
        "team/outputs/cloudwatch.conf",
        "[OUTPUT]\n    Name cloudwatch\n    Match app-firelens*\n    region us-east-1\n    endpoint ${MOTO_ENDPOINT}\n    auto_create_group true\n    log_group_name /ecs/${ECS_FAMILY}-${ECS_REVISION}\n    log_stream_name $(ecs_cluster)/$(ecs_task_id)/$(tag)\n",
    )
    .await;
    // init 2 (S3): a parsers file.
    let parsers = "[PARSER]\n    Name   app_json\n    Format json\n";
    put_object(&moto.endpoint, "team/parsers.conf", parsers).await;
    // init file 1 (disk): a parser filter using the S3 parsers file, and a second output named
    // after `${ECS_TASK_ID}`.
    let local = dir.path().join("parse-and-copy.conf");
    std::fs::write(
        &local,
        "[FILTER]\n    Name parser\n    Match app-firelens*\n    Key_Name log\n    Parser app_json\n    Reserve_Data True\n\n[OUTPUT]\n    Name cloudwatch_logs\n    Match app-firelens*\n    region us-east-1\n    endpoint ${MOTO_ENDPOINT}\n    auto_create_group true\n    log_group_name /ecs/init-file\n    log_stream_name task-${ECS_TASK_ID}\n",
    )
    .unwrap();
    let original = generated_config(dir.path());
    let init_dir = dir.path().join("init");

    let router = RouterProcess::spawn(
        common::router_command()
            .args(["-e", "/fluent-bit/cloudwatch.so", "-c"])
            .arg(&original)
            .envs(aws::aws_env())
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("MOTO_ENDPOINT", &moto.endpoint)
            .env("ECS_CONTAINER_METADATA_URI_V4", &metadata.uri)
            .env("WASM_ROUTER_INIT_DIR", &init_dir)
            .env(
                "aws_fluent_bit_init_s3_1",
                format!("arn:aws:s3:::{CONFIG_BUCKET}/team/outputs/cloudwatch.conf"),
            )
            .env(
                "aws_fluent_bit_init_s3_2",
                format!("arn:aws:s3:::{CONFIG_BUCKET}/team/parsers.conf"),
            )
            .env("aws_fluent_bit_init_file_1", &local),
        tempfile::tempdir().unwrap(),
    );
    let addr = router.tcp_addr();
    assert!(metadata.task_requests() >= 1);

    // The generated main config includes the original, then the config files in name order;
    // the parsers file went to -R instead.
    let main = std::fs::read_to_string(init_dir.join("main.conf")).unwrap();
    let includes: Vec<&str> = main
        .lines()
        .filter_map(|l| l.strip_prefix("@INCLUDE "))
        .collect();
    let downloaded = init_dir.join("s3/aws_fluent_bit_init_s3_1/cloudwatch.conf");
    assert_eq!(
        includes,
        [
            original.to_str().unwrap(),
            local.to_str().unwrap(),
            downloaded.to_str().unwrap()
        ],
        "{main}"
    );
    let parsers_path = init_dir.join("s3/aws_fluent_bit_init_s3_2/parsers.conf");
    assert_eq!(std::fs::read_to_string(&parsers_path).unwrap(), parsers);
    let log = router.log_text();
    assert!(
        log.lines().any(
            |l| l.contains(" -R") && l.contains(&format!("parsers={}", parsers_path.display()))
        ),
        "{log}"
    );

    let tag = format!("app-firelens-{TASK_ID}");
    send_with_fluent_logger(&addr, &tag, 20);
    // Parsed by `app_json` from the S3 parsers file: `log` became the record's keys.
    let expected: Vec<Value> = (0..20)
        .map(|i| json!({"msg": format!("line {i}"), "level": "info", "source": "stdout"}))
        .collect();
    let from_s3 = stream_records(
        &moto.endpoint,
        "/ecs/web-7",
        &format!("prod/{TASK_ID}/{tag}"),
        20,
    )
    .await;
    assert_eq!(from_s3, expected);
    let from_file = stream_records(
        &moto.endpoint,
        "/ecs/init-file",
        &format!("task-{TASK_ID}"),
        20,
    )
    .await;
    assert_eq!(from_file, expected);
    drop(router);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_metadata_endpoint_is_a_warning_and_the_router_still_starts() {
    let dir = tempfile::tempdir().unwrap();
    let closed_port = common::free_port();
    let config = dir.path().join("fluent-bit.conf");
    std::fs::write(
        &config,
        "[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n\n[OUTPUT]\n    Name stdout\n    Match *\n",
    )
    .unwrap();
    let router = RouterProcess::spawn(
        common::router_command()
            .args(["-c", config.to_str().unwrap()])
            .env(
                "ECS_CONTAINER_METADATA_URI_V4",
                format!("http://127.0.0.1:{closed_port}/v4/x"),
            ),
        tempfile::tempdir().unwrap(),
    );
    router.tcp_addr();
    let log = router.log_text();
    assert!(
        log.contains("ECS task metadata unavailable")
            && log.contains(&format!("127.0.0.1:{closed_port}/v4/x/task")),
        "{log}"
    );
}

/// `wasm-router validate` runs the same ECS step as `run`: `${ECS_*}` come from the task
/// metadata endpoint and `aws_fluent_bit_init_file_N` are included (a parser defined only in
/// an init parsers file resolves); without the endpoint the first `${ECS_*}` is missing.
#[test]
fn validate_reads_the_task_metadata_and_the_init_files_like_run() {
    let metadata = MetadataServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fluent-bit.conf");
    std::fs::write(
        &config,
        "[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n\n[OUTPUT]\n    Name cloudwatch_logs\n    Match app-firelens*\n    region us-east-1\n    log_group_name /ecs/${ECS_FAMILY}\n    log_stream_name ${ECS_TASK_ID}\n",
    )
    .unwrap();
    let filter = dir.path().join("extra.conf");
    std::fs::write(
        &filter,
        "[FILTER]\n    Name parser\n    Match app-firelens*\n    Key_Name log\n    Parser app_json\n",
    )
    .unwrap();
    let parsers = dir.path().join("parsers.conf");
    std::fs::write(&parsers, "[PARSER]\n    Name app_json\n    Format json\n").unwrap();
    let init_dir = dir.path().join("init");
    let run = |with_metadata: bool| {
        let mut cmd = common::router_command();
        cmd.args(["validate", "-c", config.to_str().unwrap()])
            .env("aws_fluent_bit_init_file_1", &filter)
            .env("aws_fluent_bit_init_file_2", &parsers)
            .env("WASM_ROUTER_INIT_DIR", &init_dir);
        if with_metadata {
            cmd.env("ECS_CONTAINER_METADATA_URI_V4", &metadata.uri);
        }
        let out = common::run_to_end(&mut cmd, "wasm-router validate");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stdout, stderr) = run(true);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("{}: valid", init_dir.join("main.conf").display())),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("task \"{TASK_ID}\""))
            && stderr.contains("aws_fluent_bit_init_file_1, aws_fluent_bit_init_file_2"),
        "{stderr}"
    );
    assert_eq!(metadata.task_requests(), 1);

    let (ok, stdout, stderr) = run(false);
    assert!(!ok, "{stdout}{stderr}");
    assert!(
        stderr.contains("fluent-bit.conf:10:") && stderr.contains("ECS_FAMILY"),
        "{stderr}"
    );

    // Relative paths, as a user types them in the config's folder: the generated main config
    // in the init folder must still find `-c fluent-bit.conf` and `extra.conf`.
    let mut cmd = common::router_command();
    cmd.current_dir(dir.path())
        .args(["validate", "-c", "fluent-bit.conf"])
        .env("aws_fluent_bit_init_file_1", "extra.conf")
        .env("aws_fluent_bit_init_file_2", "parsers.conf")
        .env("WASM_ROUTER_INIT_DIR", &init_dir)
        .env("ECS_CONTAINER_METADATA_URI_V4", &metadata.uri);
    let out = common::run_to_end(&mut cmd, "wasm-router validate");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(metadata);
}

/// Values from the task metadata endpoint are facts about the task, not secrets: a config
/// that uses `${ECS_TASK_ID}` leaves the task id readable in the startup log (only values from
/// the environment are redacted to `${NAME}`).
#[test]
fn the_startup_log_shows_the_task_id_a_config_expanded_from_the_metadata() {
    let metadata = MetadataServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fluent-bit.conf");
    std::fs::write(
        &config,
        "[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n    Tag_Prefix ${ECS_TASK_ID}.\n\n[OUTPUT]\n    Name  stdout\n    Match *\n",
    )
    .unwrap();
    let router = RouterProcess::spawn(
        common::router_command()
            .args(["-c", config.to_str().unwrap()])
            .env("ECS_CONTAINER_METADATA_URI_V4", &metadata.uri),
        tempfile::tempdir().unwrap(),
    );
    let addr = router.tcp_addr();
    aws::send_forward(&addr, "app", &[(aws::now_ns(), json!({"log": "x"}))], 1);
    let event = router.wait_for_events(1).remove(0);
    assert_eq!(event.tag, format!("{TASK_ID}.app"));
    let log = router.log_text();
    assert!(
        log.contains(&format!("task \"{TASK_ID}\"")) && !log.contains("${ECS_TASK_ID}"),
        "{log}"
    );
    drop(metadata);
}

#[test]
fn the_task_metadata_fills_config_variables_unless_the_environment_sets_them() {
    let metadata = MetadataServer::start();
    let dir = tempfile::tempdir().unwrap();
    // The tag the `stdout` output prints shows what `${}` became.
    let config = dir.path().join("fluent-bit.conf");
    std::fs::write(
        &config,
        "[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n    Tag_Prefix ${ECS_CLUSTER}.${ECS_TASK_DEFINITION}.${AWS_REGION}.\n\n[OUTPUT]\n    Name  stdout\n    Match *\n",
    )
    .unwrap();
    let printed_tag = |extra: &[(&str, &str)]| {
        let router = RouterProcess::spawn(
            common::router_command()
                .args(["-c", config.to_str().unwrap()])
                .env("ECS_CONTAINER_METADATA_URI_V4", &metadata.uri)
                .envs(extra.iter().copied()),
            tempfile::tempdir().unwrap(),
        );
        let addr = router.tcp_addr();
        aws::send_forward(&addr, "app", &[(aws::now_ns(), json!({"log": "x"}))], 1);
        let event = router.wait_for_events(1).remove(0);
        (event.tag, router.log_text())
    };
    let (tag, _) = printed_tag(&[]);
    assert_eq!(tag, "prod.web:7.us-east-1.app");
    let (tag, log) = printed_tag(&[("ECS_CLUSTER", "staging")]);
    assert_eq!(tag, "staging.web:7.us-east-1.app");
    assert!(log.contains("the environment's ECS_CLUSTER win"), "{log}");
    assert_eq!(metadata.task_requests(), 2);
    drop(metadata);
}

/// Run the router with `env` on a config that would otherwise start; it must exit 1 with a
/// message containing every one of `expected`.
fn assert_startup_fails(env: &[(&str, String)], expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let config = generated_config(dir.path());
    let out = common::run_to_end(
        common::router_command()
            .args(["-c", config.to_str().unwrap()])
            .envs(aws::aws_env())
            .env("WASM_ROUTER_INIT_DIR", dir.path().join("init"))
            .envs(env.iter().map(|(k, v)| (k, v))),
        "wasm-router with a bad init variable",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for text in expected {
        assert!(stderr.contains(text), "missing {text:?} in:\n{stderr}");
    }
}

#[test]
fn a_bad_s3_arn_or_a_missing_file_stops_startup_naming_the_variable_value_and_fix() {
    assert_startup_fails(
        &[("aws_fluent_bit_init_s3_1", "s3://configs/extra.conf".into())],
        &[
            "aws_fluent_bit_init_s3_1=\"s3://configs/extra.conf\" is not an S3 object ARN",
            "arn:aws:s3:::BUCKET/KEY",
        ],
    );
    assert_startup_fails(
        &[(
            "aws_fluent_bit_init_file_1",
            "/fluent-bit/configs/missing.conf".into(),
        )],
        &[
            "aws_fluent_bit_init_file_1=\"/fluent-bit/configs/missing.conf\"",
            "mount the file into the router container",
        ],
    );
    assert_startup_fails(
        &[("aws_fluent_bit_init_file_2", String::new())],
        &["aws_fluent_bit_init_file_2 is set but empty", "a file path"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_s3_object_or_bucket_stops_startup_naming_the_variable_value_and_fix() {
    let moto = aws::Moto::start();
    aws::create_bucket(&moto.endpoint, CONFIG_BUCKET).await;
    let endpoint = moto.endpoint.clone();
    tokio::task::spawn_blocking(move || {
        let missing_key = format!("arn:aws:s3:::{CONFIG_BUCKET}/nope/extra.conf");
        assert_startup_fails(
            &[
                ("AWS_ENDPOINT_URL", endpoint.clone()),
                ("aws_fluent_bit_init_s3_1", missing_key.clone()),
            ],
            &[
                &format!("aws_fluent_bit_init_s3_1={missing_key:?}"),
                &format!("s3://{CONFIG_BUCKET}/nope/extra.conf does not exist"),
                "upload the file",
            ],
        );
        let missing_bucket = "arn:aws:s3:::no-such-bucket-here/extra.conf".to_string();
        assert_startup_fails(
            &[
                ("AWS_ENDPOINT_URL", endpoint),
                ("aws_fluent_bit_init_s3_7", missing_bucket.clone()),
            ],
            &[
                &format!("aws_fluent_bit_init_s3_7={missing_bucket:?}"),
                "cannot find the region of bucket \"no-such-bucket-here\"",
                "s3:GetBucketLocation",
            ],
        );
    })
    .await
    .unwrap();
}

// ---- examples/ecs ----------------------------------------------------------------------------

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ecs")
}

/// Keys of the ECS `RegisterTaskDefinition` request and its `ContainerDefinition` that the
/// examples may use (a typo is an unknown key, which ECS would reject).
const TASK_KEYS: &[&str] = &[
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "tags",
    "runtimePlatform",
];
const CONTAINER_KEYS: &[&str] = &[
    "name",
    "image",
    "essential",
    "cpu",
    "memory",
    "memoryReservation",
    "portMappings",
    "environment",
    "secrets",
    "mountPoints",
    "dependsOn",
    "user",
    "logConfiguration",
    "firelensConfiguration",
    "healthCheck",
    "stopTimeout",
    "command",
    "entryPoint",
    "readonlyRootFilesystem",
];

/// Check `task` against the task-definition schema as the ECS API reference documents it, for
/// the parts the examples use, and FireLens's own rules (firelens-aws.md §1.1).
fn check_task_definition(file: &str, task: &Value) {
    let obj = task
        .as_object()
        .unwrap_or_else(|| panic!("{file}: not an object"));
    for key in obj.keys() {
        assert!(
            TASK_KEYS.contains(&key.as_str()),
            "{file}: unknown key {key}"
        );
    }
    assert!(task["family"].is_string(), "{file}: family");
    let network_mode = task["networkMode"].as_str().unwrap_or("bridge");
    assert!(
        ["bridge", "host", "awsvpc", "none"].contains(&network_mode),
        "{file}: networkMode"
    );
    let fargate = task["requiresCompatibilities"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c == "FARGATE"));
    if fargate {
        assert_eq!(network_mode, "awsvpc", "{file}: Fargate needs awsvpc");
        assert!(
            task["cpu"].is_string() && task["memory"].is_string(),
            "{file}: Fargate needs task cpu and memory (strings)"
        );
    }
    for arn in ["taskRoleArn", "executionRoleArn"] {
        if let Some(v) = task.get(arn) {
            assert!(
                v.as_str()
                    .is_some_and(|a| a.starts_with("arn:aws:iam::") && a.contains(":role/")),
                "{file}: {arn}"
            );
        }
    }
    let volumes: Vec<&str> = task["volumes"]
        .as_array()
        .map(|v| v.iter().map(|v| v["name"].as_str().unwrap()).collect())
        .unwrap_or_default();
    let containers = task["containerDefinitions"].as_array().unwrap();
    let names: Vec<&str> = containers
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let routers: Vec<&Value> = containers
        .iter()
        .filter(|c| c.get("firelensConfiguration").is_some())
        .collect();
    assert_eq!(routers.len(), 1, "{file}: exactly one log router");
    let router = routers[0];
    assert_eq!(
        router["firelensConfiguration"]["type"], "fluentbit",
        "{file}"
    );
    assert!(
        router["image"].as_str().unwrap().contains("wasm-router"),
        "{file}: the log router runs our image"
    );
    let options = &router["firelensConfiguration"]["options"];
    if let Some(kind) = options.get("config-file-type") {
        assert!(
            kind == "file" || (kind == "s3" && !fargate),
            "{file}: config-file-type (Fargate: file only)"
        );
        assert!(
            options["config-file-value"].is_string(),
            "{file}: config-file-value"
        );
    }
    for c in containers {
        let name = c["name"].as_str().unwrap();
        for key in c.as_object().unwrap().keys() {
            assert!(
                CONTAINER_KEYS.contains(&key.as_str()),
                "{file}: container {name}: unknown key {key}"
            );
        }
        assert!(c["image"].is_string(), "{file}: {name}: image");
        for m in c["mountPoints"].as_array().into_iter().flatten() {
            assert!(
                volumes.contains(&m["sourceVolume"].as_str().unwrap()),
                "{file}: {name}: mountPoints names a volume the task does not define"
            );
            assert!(m["containerPath"].as_str().unwrap().starts_with('/'));
        }
        for d in c["dependsOn"].as_array().into_iter().flatten() {
            assert!(
                names.contains(&d["containerName"].as_str().unwrap()),
                "{file}: {name}: dependsOn"
            );
            assert!(
                ["START", "COMPLETE", "SUCCESS", "HEALTHY"]
                    .contains(&d["condition"].as_str().unwrap()),
                "{file}: {name}: dependsOn condition"
            );
        }
        for e in c["environment"].as_array().into_iter().flatten() {
            assert!(
                e["name"].is_string() && e["value"].is_string(),
                "{file}: {name}: environment"
            );
        }
        let log = &c["logConfiguration"];
        if log["logDriver"] == "awsfirelens" {
            for (k, v) in log["options"].as_object().into_iter().flatten() {
                assert!(v.is_string(), "{file}: {name}: option {k} must be a string");
            }
            for s in log["secretOptions"].as_array().into_iter().flatten() {
                assert!(s["name"].is_string(), "{file}: {name}: secretOptions name");
                assert!(
                    s["valueFrom"]
                        .as_str()
                        .is_some_and(|v| v.starts_with("arn:aws:secretsmanager:")
                            || v.starts_with("arn:aws:ssm:")),
                    "{file}: {name}: secretOptions valueFrom"
                );
                assert!(
                    task.get("executionRoleArn").is_some(),
                    "{file}: secrets need an execution role"
                );
            }
        }
    }
}

/// The config the ECS agent generates for `task` (firelens-aws.md §1.5), with the included
/// external config at `external`; and the secret placeholders it uses.
fn firelens_config(task: &Value, external: Option<&Path>) -> (String, Vec<String>) {
    let network_mode = task["networkMode"].as_str().unwrap_or("bridge");
    let containers = task["containerDefinitions"].as_array().unwrap();
    let router = containers
        .iter()
        .find(|c| c.get("firelensConfiguration").is_some())
        .unwrap();
    let mem = router["memoryReservation"]
        .as_u64()
        .or(router["memory"].as_u64())
        .map_or(25, |m| m / 2);
    let mut text = format!(
        "\n[INPUT]\n    Name forward\n    Mem_Buf_Limit {mem}MB\n    unix_path /var/run/fluent.sock\n"
    );
    let health = network_mode != "host";
    if health {
        let listen = if network_mode == "awsvpc" {
            "127.0.0.1"
        } else {
            "0.0.0.0"
        };
        text.push_str(&format!(
            "\n[INPUT]\n    Name forward\n    Listen {listen}\n    Port 24224\n\n[INPUT]\n    Name tcp\n    Tag firelens-healthcheck\n    Listen 127.0.0.1\n    Port 8877\n"
        ));
    }
    let metadata = router["firelensConfiguration"]["options"]["enable-ecs-log-metadata"]
        .as_str()
        .is_none_or(|v| v != "false");
    if metadata {
        text.push_str(&format!(
            "\n[FILTER]\n    Name record_modifier\n    Match *\n    Record ecs_cluster prod\n    Record ecs_task_arn arn:aws:ecs:us-east-1:111122223333:task/prod/{TASK_ID}\n    Record ecs_task_definition {}:1\n",
            task["family"].as_str().unwrap()
        ));
    }
    if let Some(path) = external {
        text.push_str(&format!("\n@INCLUDE {}\n", path.display()));
    }
    if health {
        text.push_str("\n[OUTPUT]\n    Name null\n    Match firelens-healthcheck\n");
    }
    let mut secrets = Vec::new();
    for (index, c) in containers.iter().enumerate() {
        let log = &c["logConfiguration"];
        if log["logDriver"] != "awsfirelens" {
            continue;
        }
        let mut options: BTreeMap<String, String> = log["options"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        for s in log["secretOptions"].as_array().into_iter().flatten() {
            let placeholder = format!("{}_{index}", s["name"].as_str().unwrap());
            options.insert(
                s["name"].as_str().unwrap().into(),
                format!("${{{placeholder}}}"),
            );
            secrets.push(placeholder);
        }
        let Some(name) = options.remove("Name") else {
            assert!(options.is_empty(), "options without Name fail the task");
            continue;
        };
        options.remove("log-driver-buffer-limit");
        assert!(
            !options.contains_key("include-pattern") && !options.contains_key("exclude-pattern"),
            "add grep rendering here when an example uses include/exclude patterns"
        );
        text.push_str(&format!(
            "\n[OUTPUT]\n    Name {name}\n    Match {}-firelens*\n",
            c["name"].as_str().unwrap()
        ));
        for (k, v) in options {
            text.push_str(&format!("    {k} {v}\n"));
        }
    }
    (text, secrets)
}

/// The in-repo copy of a file a task definition names (by file name, under configs/). Plugin
/// paths under `/plugins/custom/` point at the first-party plugins built for the tests, as
/// `validate` loads and initialises every plugin.
fn in_repo_config(reference: &str, into: &Path) -> PathBuf {
    let name = reference.rsplit('/').next().unwrap();
    let source = examples_dir().join("configs").join(name);
    let text = std::fs::read_to_string(&source).unwrap_or_else(|e| {
        panic!(
            "{reference} has no in-repo copy at {}: {e}",
            source.display()
        )
    });
    let built = Path::new(wasm_router_test_artifacts::REDACT)
        .parent()
        .unwrap();
    let text = text.replace("/plugins/custom/", &format!("{}/", built.display()));
    let path = into.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_ecs_example_is_a_valid_task_definition_whose_firelens_config_validates() {
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "{files:?}");
    let readme = std::fs::read_to_string(examples_dir().join("README.md")).unwrap();
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(readme.contains(name), "README.md does not describe {name}");
        let task: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        check_task_definition(name, &task);
        let router = task["containerDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c.get("firelensConfiguration").is_some())
            .unwrap();
        let external = router["firelensConfiguration"]["options"]["config-file-value"]
            .as_str()
            .map(|value| in_repo_config(value, dir.path()));
        let (text, env) = render_with_init(&task, router, external.as_deref(), dir.path());
        let generated = dir.path().join(name.replace(".json", ".conf"));
        std::fs::write(&generated, &text).unwrap();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (ok, out) = common::validate(&generated, &env);
        assert!(
            ok,
            "{name}: the FireLens config does not validate:\n{out}\n{text}"
        );
    }
}

/// The FireLens config of `task` plus what the init step adds (config files included, parsers
/// files checked as such), and the environment it needs: its secrets, the `ECS_*` variables
/// and where the vendor plugins are.
fn render_with_init(
    task: &Value,
    router: &Value,
    external: Option<&Path>,
    dir: &Path,
) -> (String, Vec<(String, String)>) {
    let (mut text, secrets) = firelens_config(task, external);
    for e in router["environment"].as_array().into_iter().flatten() {
        let (var, value) = (e["name"].as_str().unwrap(), e["value"].as_str().unwrap());
        if !var.contains("aws_fluent_bit_init_") {
            continue;
        }
        if value.ends_with(".wasm") {
            // The init step puts it into the plugin directory: here, the plugins built for the
            // tests (WASM_ROUTER_PLUGIN_DIR below).
            let name = value.rsplit('/').next().unwrap();
            let built = Path::new(wasm_router_test_artifacts::REDACT)
                .parent()
                .unwrap();
            assert!(
                built.join(name).exists(),
                "{value}: no plugin {name} is built"
            );
            continue;
        }
        let path = in_repo_config(value, dir);
        let body = std::fs::read_to_string(&path).unwrap();
        match wasm_router::startup::init_files::file_role(&body) {
            wasm_router::startup::init_files::FileRole::Config => {
                text.push_str(&format!("\n@INCLUDE {}\n", path.display()));
            }
            wasm_router::startup::init_files::FileRole::Parsers => {
                assert!(value.ends_with("parsers.conf"), "{value} is a parsers file");
            }
        }
    }
    let mut env: Vec<(String, String)> = secrets
        .iter()
        .map(|s| (s.clone(), "0123456789abcdef0123456789abcdef".to_string()))
        .collect();
    // The vendor outputs load the first-party plugins, built for the tests.
    let plugins = Path::new(wasm_router_test_artifacts::DATADOG)
        .parent()
        .unwrap();
    env.push((
        "WASM_ROUTER_PLUGIN_DIR".to_string(),
        plugins.display().to_string(),
    ));
    for (k, v) in [
        ("ECS_CLUSTER", "prod"),
        ("ECS_FAMILY", "web"),
        ("ECS_TASK_ID", TASK_ID),
        ("AWS_REGION", "us-east-1"),
    ] {
        env.push((k.to_string(), v.to_string()));
    }
    (text, env)
}
