//! The `aws` filter (Fluent Bit `filter_aws`) through the real binary and a classic config,
//! reading a stand-in EC2 metadata service: a Python `http.server` on loopback that answers as
//! IMDS does with `HttpTokens=required` (a token from `PUT /latest/api/token` with a TTL header,
//! 401 without it). The router finds it through `AWS_EC2_METADATA_SERVICE_ENDPOINT`, as the AWS
//! SDKs do; nothing but loopback is contacted.
//! - forwarded records gain the instance's keys and tags, read once, not per record;
//! - with the service down, records pass on unchanged and the failure is logged;
//! - the `ecs` filter's `ADD` templates render the task metadata read at startup from a
//!   stand-in `ECS_CONTAINER_METADATA_URI_V4` (the same server);
//! - the corpus case 21's `cloudwatch` output names its stream
//!   `/logs/app/$(ec2_instance_id)-$(ecs_task_id)` from the key the filter adds (moto).

use crate::common;
use crate::common::aws;

use common::{PrintedEvent, RouterProcess, assert_events_eq};
use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const INSTANCE_ID: &str = "i-0abc1234def567890";
const TASK_ID: &str = "0123456789abcdef0123456789abcdef";

/// The stand-in service: every request is appended to the file given as the first argument.
const STAND_IN: &str = r#"
import http.server, sys
ITEMS = {
    "/latest/meta-data/placement/availability-zone": "us-west-2a",
    "/latest/meta-data/instance-id": "i-0abc1234def567890",
    "/latest/meta-data/instance-type": "c7g.xlarge",
    "/latest/meta-data/local-ipv4": "10.0.1.23",
    "/latest/meta-data/mac": "0e:11:22:33:44:55",
    "/latest/meta-data/network/interfaces/macs/0e:11:22:33:44:55/vpc-id": "vpc-0123456789abcdef0",
    "/latest/dynamic/instance-identity/document": '{"accountId": "111122223333", "region": "us-west-2"}',
    "/latest/meta-data/tags/instance": "Name\nteam",
    "/latest/meta-data/tags/instance/Name": "web-1",
    "/latest/meta-data/tags/instance/team": "payments",
}
# The ECS task metadata endpoint (ECS_CONTAINER_METADATA_URI_V4 = <server>/v4/abc).
TASK = '{"Cluster": "arn:aws:ecs:us-west-2:111122223333:cluster/prod", "TaskARN": "arn:aws:ecs:us-west-2:111122223333:task/prod/0123456789abcdef0123456789abcdef", "Family": "web", "Revision": "7", "Containers": []}'
log = open(sys.argv[1], "a", buffering=1)
tokens = set()

class Imds(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, text=""):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        log.write(f"PUT {self.path}\n")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if self.path != "/latest/api/token" or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self.reply(400)
        token = f"token-{len(tokens) + 1}"
        tokens.add(token)
        self.reply(200, token)

    def do_GET(self):
        log.write(f"GET {self.path}\n")
        if self.path == "/v4/abc/task":
            return self.reply(200, TASK)
        if self.headers.get("X-aws-ec2-metadata-token") not in tokens:
            return self.reply(401)
        text = ITEMS.get(self.path.rstrip("/"))
        self.reply(404) if text is None else self.reply(200, text)

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Imds)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// The stand-in service, killed on drop.
struct StandIn {
    child: Child,
    endpoint: String,
    requests: PathBuf,
    _dir: tempfile::TempDir,
}

impl StandIn {
    fn start() -> StandIn {
        let dir = tempfile::tempdir().unwrap();
        let requests = dir.path().join("imds-requests.log");
        let mut child = Command::new(common::python())
            .args(["-c", STAND_IN])
            .arg(&requests)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut port = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut port)
            .unwrap();
        assert!(!port.trim().is_empty(), "the stand-in IMDS did not start");
        StandIn {
            child,
            endpoint: format!("http://127.0.0.1:{}", port.trim()),
            requests,
            _dir: dir,
        }
    }

    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.requests)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `wasm-router -c <dir>/fluent-bit.conf` on the classic `config` (`{dir}` replaced), with the
/// AWS test credentials and `env`.
fn start_classic(dir: tempfile::TempDir, config: &str, env: &[(&str, &str)]) -> RouterProcess {
    let path = dir.path().join("fluent-bit.conf");
    std::fs::write(&path, config.replace("{dir}", dir.path().to_str().unwrap())).unwrap();
    let mut cmd = common::router_command();
    cmd.arg("-c").arg(&path).envs(aws::aws_env());
    // aws_env turns IMDS off for the AWS SDK; here it is the stand-in.
    cmd.env_remove("AWS_EC2_METADATA_DISABLED");
    cmd.envs(env.iter().copied());
    RouterProcess::spawn(&mut cmd, dir)
}

const FORWARD_IN: &str = "
[INPUT]
    Name forward
    Listen 127.0.0.1
    Port 0
";

fn records(n: u64) -> Vec<(u64, Value)> {
    (0..n)
        .map(|i| (aws::now_ns() + i, json!({"log": format!("line {i}")})))
        .collect()
}

#[test]
fn forwarded_records_gain_the_instance_metadata_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let imds = StandIn::start();
    let config = format!(
        "{FORWARD_IN}
[FILTER]
    Name aws
    Match app-*
    imds_version v2
    ec2_instance_type On
    private_ip On
    vpc_id On
    account_id On
    tags_enabled On
    tags_include Name

[OUTPUT]
    Name stdout
    Match *
"
    );
    let router = start_classic(
        dir,
        &config,
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.endpoint)],
    );
    router.wait_for_log("the metadata read", |l| {
        l.contains("EC2 instance metadata read")
    });
    let addr = router.tcp_addr();
    let app = records(20);
    let other = records(3);
    aws::send_forward(&addr, "app-firelens-1", &app, 7);
    aws::send_forward(&addr, "other", &other, 7);

    let with_metadata = |r: &Value| {
        let mut r = r.as_object().unwrap().clone();
        for (k, v) in [
            ("az", "us-west-2a"),
            ("ec2_instance_id", INSTANCE_ID),
            ("ec2_instance_type", "c7g.xlarge"),
            ("private_ip", "10.0.1.23"),
            ("vpc_id", "vpc-0123456789abcdef0"),
            ("account_id", "111122223333"),
            ("Name", "web-1"),
        ] {
            r.insert(k.into(), json!(v));
        }
        Value::Object(r)
    };
    let mut expected: Vec<PrintedEvent> = app
        .iter()
        .map(|(t, r)| PrintedEvent::new("app-firelens-1", *t, with_metadata(r)))
        .collect();
    expected.extend(
        other
            .iter()
            .map(|(t, r)| PrintedEvent::new("other", *t, r.clone())),
    );
    router.wait_for_events(expected.len());
    let got = router.stop();
    assert_events_eq(&got, &expected);

    // One token, then each item once (two for the VPC, three for the tags): not per record.
    let requests = imds.requests();
    assert_eq!(requests[0], "PUT /latest/api/token", "{requests:#?}");
    assert_eq!(requests.len(), 1 + 9, "{requests:#?}");
}

#[test]
fn with_the_service_down_records_pass_on_unchanged_and_the_failure_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let closed = format!("http://127.0.0.1:{}", common::free_port());
    let config = format!(
        "{FORWARD_IN}
[FILTER]
    Name aws
    Match *

[OUTPUT]
    Name stdout
    Match *
"
    );
    let router = start_classic(
        dir,
        &config,
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", closed.as_str())],
    );
    let line = router.wait_for_log("the metadata failure", |l| {
        l.contains("cannot read EC2 instance metadata")
    });
    assert!(
        line.contains("retry_in_s=300") && line.contains("ec2_metadata_missing"),
        "{line}"
    );
    let sent = records(5);
    aws::send_forward(&router.tcp_addr(), "app", &sent, 5);
    let expected: Vec<PrintedEvent> = sent
        .iter()
        .map(|(t, r)| PrintedEvent::new("app", *t, r.clone()))
        .collect();
    router.wait_for_events(expected.len());
    assert_events_eq(&router.stop(), &expected);
}

/// Corpus case 21 (aws-samples ecs-log-collection): `[FILTER] Name aws` and a `cloudwatch`
/// output whose group and stream come from `$(ecs_cluster)`, `$(ec2_instance_id)` and
/// `$(ecs_task_id)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_stream_template_takes_the_instance_id_the_filter_adds() {
    let moto = aws::Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let imds = StandIn::start();
    let config = format!(
        "{FORWARD_IN}
[FILTER]
    Name aws
    Match *

[OUTPUT]
    Name cloudwatch
    Match   app-firelens*
    region {}
    log_group_name firelens-tutorial-$(ecs_cluster)
    log_stream_name /logs/app/$(ec2_instance_id)-$(ecs_task_id)
    auto_create_group true
    retry_limit 2
",
        aws::REGION
    );
    let router = start_classic(
        dir,
        &config,
        &[
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.endpoint),
            ("AWS_ENDPOINT_URL", &moto.endpoint),
            ("ECS_CLUSTER", "prod-cluster"),
            ("ECS_TASK_ID", TASK_ID),
        ],
    );
    router.wait_for_log("the metadata read", |l| {
        l.contains("EC2 instance metadata read")
    });
    aws::send_forward(&router.tcp_addr(), "app-firelens-1", &records(4), 4);
    let group = "firelens-tutorial-prod-cluster";
    let stream = format!("/logs/app/{INSTANCE_ID}-{TASK_ID}");
    let events = aws::eventually(Duration::from_secs(30), "the events in moto", || async {
        // The group does not exist until the first delivery.
        let streams = aws::logs_client(&moto.endpoint)
            .describe_log_streams()
            .log_group_name(group)
            .send()
            .await
            .ok()?;
        if !streams
            .log_streams()
            .iter()
            .any(|s| s.log_stream_name() == Some(stream.as_str()))
        {
            return None;
        }
        let events = aws::log_events(&moto.endpoint, group, &stream).await;
        (events.len() == 4).then_some(events)
    })
    .await;
    assert_eq!(aws::log_streams(&moto.endpoint, group).await, [stream]);
    let first: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(first["ec2_instance_id"], INSTANCE_ID, "{first}");
    assert_eq!(first["az"], "us-west-2a", "{first}");
}

#[test]
fn the_ecs_filter_adds_keys_from_the_task_metadata_read_at_startup() {
    let imds = StandIn::start();
    let config = format!(
        "{FORWARD_IN}
[FILTER]
    Name ecs
    Match *
    ADD ecs_cluster $ClusterName
    ADD ecs_task $TaskDefinitionFamily:$TaskDefinitionVersion/$TaskID

[OUTPUT]
    Name stdout
    Match *
"
    );
    let metadata_uri = format!("{}/v4/abc", imds.endpoint);
    let router = start_classic(
        tempfile::tempdir().unwrap(),
        &config,
        &[("ECS_CONTAINER_METADATA_URI_V4", metadata_uri.as_str())],
    );
    let sent = records(3);
    aws::send_forward(&router.tcp_addr(), "app", &sent, 3);
    let expected: Vec<PrintedEvent> = sent
        .iter()
        .map(|(t, r)| {
            let mut r = r.as_object().unwrap().clone();
            r.insert("ecs_cluster".into(), json!("prod"));
            r.insert("ecs_task".into(), json!(format!("web:7/{TASK_ID}")));
            PrintedEvent::new("app", *t, Value::Object(r))
        })
        .collect();
    router.wait_for_events(expected.len());
    assert_events_eq(&router.stop(), &expected);
    assert_eq!(imds.requests(), ["GET /v4/abc/task"]);
}
