//! The `opensearch` output plugin (plugins/opensearch) and the router's SigV4 signing, as the
//! real binary runs them, into a Bulk API stand-in on 127.0.0.1 (Python's http.server): it
//! answers each item on its own (some 429 once, some 400 `mapper_parsing_exception` always,
//! 409 for an `_id` it has), checks basic auth, and verifies every SigV4 signature with
//! botocore's signer, answering a wrong one 403 as Amazon OpenSearch does.
//!
//! - every event is stored exactly once or dead-lettered and counted under its item's reason;
//! - a FireLens-style classic `[OUTPUT] Name opensearch` with `AWS_Auth On` end to end, and the
//!   same stand-in refusing a wrong secret key (counted as `http_403`);
//! - a classic `[OUTPUT] Name http` with `aws_auth On` (the corpus's SigV4 http config).

use crate::common;

use common::aws::aws_env;
use common::delivery::{dead_letters, send_acked};
use common::{HANG_TIMEOUT, RouterProcess, discarded, router_command, scrape};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Bulk API stand-in. argv: the log file (one JSON line per request), then a JSON config:
/// `sigv4` {access_key, secret_key, region, service} to verify signatures, `basic` the
/// expected `Authorization` header, `fail_every`/`fail_at` (seq % fail_every == fail_at →
/// 400 mapper_parsing_exception), `busy_at` (seq % fail_every == busy_at → 429 the first
/// time). Prints its port.
const STAND_IN: &str = r#"
import gzip, hashlib, json, re, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

LOG = sys.argv[1]
CONF = json.loads(sys.argv[2])
LOCK = threading.Lock()
SEEN_BUSY = set()
IDS = set()
AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$")

def verify(method, path, headers, body):
    c = CONF["sigv4"]
    m = AUTH.match(headers.get("authorization", ""))
    if not m:
        return "no SigV4 Authorization header"
    key, _, region, service, signed, signature = m.groups()
    if (key, region, service) != (c["access_key"], c["region"], c["service"]):
        return "credential scope %s/%s/%s" % (key, region, service)
    if headers.get("x-amz-content-sha256") != hashlib.sha256(body).hexdigest():
        return "x-amz-content-sha256 is not the body's"
    request = AWSRequest(method=method, url="http://" + headers["host"] + path, data=body,
                         headers={h: headers[h] for h in signed.split(";")})
    request.context["timestamp"] = headers["x-amz-date"]
    auth = SigV4Auth(Credentials(c["access_key"], c["secret_key"], headers.get("x-amz-security-token")), service, region)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    return None if expected == signature else "signature mismatch"

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, answer):
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {"path": self.path, "headers": headers, "items": []}
        problem = None
        if "sigv4" in CONF:
            problem = verify("POST", self.path, headers, raw)
        if problem is None and "basic" in CONF and headers.get("authorization") != CONF["basic"]:
            problem = "basic auth"
        if problem is not None:
            entry["refused"] = problem
            with LOCK, open(LOG, "a") as log:
                log.write(json.dumps(entry) + "\n")
            return self.reply(403, {"message": "The request signature we calculated does not match the signature you provided (" + problem + ")"})
        body = gzip.decompress(raw) if headers.get("content-encoding") == "gzip" else raw
        if not self.path.split("?")[0].endswith("/_bulk"):
            entry["lines"] = body.decode().splitlines()
            with LOCK, open(LOG, "a") as log:
                log.write(json.dumps(entry) + "\n")
            return self.reply(200, {})
        lines = body.decode().split("\n")
        assert lines[-1] == "", "the body ends with a newline"
        items, errors = [], False
        with LOCK:
            for action_line, doc_line in zip(lines[0:-1:2], lines[1:-1:2]):
                (op, meta), = json.loads(action_line).items()
                doc = json.loads(doc_line)
                seq = doc.get("seq")
                every = CONF.get("fail_every", 0)
                if every and seq % every == CONF.get("fail_at"):
                    status, error = 400, {"type": "mapper_parsing_exception", "reason": "failed to parse field [seq]"}
                elif every and seq % every == CONF.get("busy_at") and seq not in SEEN_BUSY:
                    SEEN_BUSY.add(seq)
                    status, error = 429, {"type": "es_rejected_execution_exception", "reason": "rejected execution: queue full"}
                elif op == "create" and meta.get("_id") in IDS:
                    status, error = 409, {"type": "version_conflict_engine_exception", "reason": "document already exists"}
                else:
                    status, error = 201, None
                    if "_id" in meta:
                        IDS.add(meta["_id"])
                errors = errors or status >= 300
                result = {"_index": meta["_index"], "status": status}
                if error:
                    result["error"] = error
                items.append({op: result})
                entry["items"].append({"op": op, "meta": meta, "doc": doc, "status": status})
            with open(LOG, "a") as log:
                log.write(json.dumps(entry) + "\n")
        self.reply(200, {"took": 1, "errors": errors, "items": items})

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// The stand-in, killed on drop.
struct BulkStandIn {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl BulkStandIn {
    fn start(config: Value) -> BulkStandIn {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.jsonl");
        let mut child = Command::new(common::python())
            .args(["-c", STAND_IN])
            .arg(&log)
            .arg(config.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut port = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut port)
            .unwrap();
        let port = port
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the Bulk API stand-in did not start: {port:?}"));
        BulkStandIn {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    /// Every request it received, in order.
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// How many times each `seq` was stored (answered 2xx).
    fn stored(&self) -> BTreeMap<u64, u32> {
        let mut stored = BTreeMap::new();
        for request in self.requests() {
            for item in request["items"].as_array().into_iter().flatten() {
                if item["status"].as_u64().unwrap() < 300 {
                    *stored
                        .entry(item["doc"]["seq"].as_u64().unwrap())
                        .or_default() += 1;
                }
            }
        }
        stored
    }
}

impl Drop for BulkStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `done` holds, showing the router's log if it never does.
fn wait_for(router: &RouterProcess, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG_TIMEOUT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}; log:\n{}",
            router.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A router config: forward in, the opensearch plugin out as output `os` into the stand-in on
/// `port` (dead letters in `{dir}/os.dead.jsonl`), with `grants` (TOML lines) and `config`
/// (fields of the plugin's config table after host and port).
fn os_output_config(port: u16, grants: &str, config: &str) -> String {
    format!(
        r#"
[service]
grace = "5s"
http_listen = "127.0.0.1:0"
retry_backoff_base = "10ms"
retry_backoff_cap = "50ms"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[outputs]]
type = "wasm"
name = "os"
match = "*"
path = "{}"
allow_hosts = ["http://127.0.0.1:{port}"]
{grants}
dead_letter = {{ path = "{{dir}}/os.dead.jsonl" }}
config = {{ host = "127.0.0.1", port = {port}{config} }}
"#,
        wasm_router_test_artifacts::OPENSEARCH
    )
}

const ES_PASSWORD: &str = "es-passwd-0123456789abcdef";

#[test]
fn bulk_items_are_retried_or_dead_lettered_each_on_its_own() {
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("elastic:{ES_PASSWORD}"))
    );
    let standin = BulkStandIn::start(serde_json::json!({
        "basic": basic, "fail_every": 10, "fail_at": 3, "busy_at": 7,
    }));
    let port = standin.port;
    let config = os_output_config(
        port,
        r#"max_response_bytes = "16MiB"
secrets = { basic_auth = "basic:elastic:env:ES_PASSWORD" }"#,
        r#", basic_auth = true, compress = "gzip", generate_id = true, suppress_type_name = true, logstash_format = true, logstash_prefix = "app""#,
    );
    let router = RouterProcess::start_with_env(&config, &[("ES_PASSWORD", ES_PASSWORD)]);
    let total = 100u32;
    send_acked(&router.tcp_addr(), "app-firelens-1", 0, total, 10, 20);
    let dead_path = router.dir.path().join("os.dead.jsonl");
    wait_for(&router, "events still missing", || {
        standin.stored().len() + dead_letters(&dead_path).len() >= total as usize
    });
    let stored = standin.stored();
    assert!(stored.values().all(|n| *n == 1), "stored twice: {stored:?}");
    let dead = dead_letters(&dead_path);
    let mut dead_seqs: Vec<u64> = dead.iter().map(|(seq, _, _)| u64::from(*seq)).collect();
    dead_seqs.sort_unstable();
    let refused: Vec<u64> = (0..u64::from(total)).filter(|s| s % 10 == 3).collect();
    assert_eq!(dead_seqs, refused, "dead letters = the items answered 400");
    assert!(
        dead.iter()
            .all(|(_, reason, detail)| reason == "mapper_parsing_exception"
                && detail.contains("failed to parse field [seq]")),
        "{dead:?}"
    );
    let mut all: Vec<u64> = stored.keys().copied().chain(dead_seqs).collect();
    all.sort_unstable();
    assert_eq!(all, (0..u64::from(total)).collect::<Vec<_>>());
    // Only the items answered 429 were sent again, each once more; the others were sent once.
    let mut sent: BTreeMap<u64, u32> = BTreeMap::new();
    for request in standin.requests() {
        assert_eq!(request["headers"]["content-encoding"], "gzip");
        for item in request["items"].as_array().unwrap() {
            *sent
                .entry(item["doc"]["seq"].as_u64().unwrap())
                .or_default() += 1;
            assert_eq!(item["op"], "create");
            assert_eq!(item["meta"]["_index"], "app-2023.11.14");
            assert!(item["meta"].get("_type").is_none(), "{item}");
            assert_eq!(item["meta"]["_id"].as_str().map(str::len), Some(36));
            assert!(
                item["doc"]["@timestamp"]
                    .as_str()
                    .unwrap()
                    .starts_with("2023-11-14T22:13:20."),
                "{item}"
            );
        }
    }
    for (seq, n) in &sent {
        assert_eq!(
            *n,
            if seq % 10 == 7 { 2 } else { 1 },
            "seq {seq} sent {n} times"
        );
    }
    let metrics = scrape(&router.http_addr());
    assert_eq!(
        discarded(&metrics, "os", "mapper_parsing_exception"),
        refused.len() as u64
    );
    assert!(
        !router.log_text().contains(ES_PASSWORD),
        "the password is in the log"
    );
}

/// `wasm-router run` on the classic `config`, with the first-party plugin `artifact` as
/// `file` in its plugin directory and the AWS test credentials (`secret_key` as the secret).
fn classic_with_plugin(
    artifact: &str,
    file: &str,
    config: &str,
    secret_key: &str,
) -> RouterProcess {
    let (dir, path) = common::classic_dir(config, &[]);
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(artifact, plugins.join(file)).unwrap();
    let mut cmd = router_command();
    cmd.arg("run")
        .arg("-c")
        .arg(&path)
        .envs(aws_env())
        .env("AWS_SECRET_ACCESS_KEY", secret_key)
        .env("WASM_ROUTER_PLUGIN_DIR", &plugins);
    RouterProcess::spawn(&mut cmd, dir)
}

/// The classic input every test here sends to.
const CLASSIC_INPUT: &str =
    "[SERVICE]\n    Grace 5\n[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n";

/// The test credentials' secret key.
fn secret_key() -> String {
    aws_env()
        .into_iter()
        .find(|(k, _)| *k == "AWS_SECRET_ACCESS_KEY")
        .unwrap()
        .1
}

fn sigv4_standin(service: &str) -> BulkStandIn {
    let env: BTreeMap<&str, String> = aws_env().into_iter().collect();
    BulkStandIn::start(serde_json::json!({
        "sigv4": {
            "access_key": env["AWS_ACCESS_KEY_ID"],
            "secret_key": env["AWS_SECRET_ACCESS_KEY"],
            "region": "us-west-2",
            "service": service,
        }
    }))
}

#[test]
fn classic_amazon_opensearch_signed_with_sigv4_end_to_end() {
    let standin = sigv4_standin("es");
    // As the corpus's Amazon OpenSearch case (12-ex-amazon-opensearch), into the stand-in.
    let router = classic_with_plugin(
        wasm_router_test_artifacts::OPENSEARCH,
        "opensearch.wasm",
        &format!(
            "{CLASSIC_INPUT}[OUTPUT]\n    Name opensearch\n    Match app-firelens*\n    Aws_Auth On\n    Aws_Region us-west-2\n    Host 127.0.0.1\n    Index my_index\n    Port {}\n    Suppress_Type_Name On\n    Retry_Limit 2\n    tls Off\n",
            standin.port
        ),
        &secret_key(),
    );
    send_acked(&router.tcp_addr(), "app-firelens-1", 0, 50, 10, 20);
    wait_for(&router, "events still missing", || {
        standin.stored().len() >= 50
    });
    let stored = standin.stored();
    assert_eq!(
        stored.keys().copied().collect::<Vec<_>>(),
        (0..50).collect::<Vec<u64>>()
    );
    assert!(stored.values().all(|n| *n == 1), "{stored:?}");
    for request in standin.requests() {
        assert!(request.get("refused").is_none(), "{request}");
        assert_eq!(request["path"], "/_bulk");
        for item in request["items"].as_array().unwrap() {
            assert_eq!(item["meta"], serde_json::json!({"_index": "my_index"}));
        }
    }
}

#[test]
fn a_wrong_secret_key_is_refused_and_counted() {
    let standin = sigv4_standin("es");
    let port = standin.port;
    let config = os_output_config(
        port,
        r#"aws_sigv4 = { service = "es", region = "us-west-2" }"#,
        "",
    );
    let mut env = aws_env();
    env.retain(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY");
    env.push(("AWS_SECRET_ACCESS_KEY", "not-the-secret-key".into()));
    let router = RouterProcess::start_with_env(&config, &env);
    send_acked(&router.tcp_addr(), "app", 0, 20, 10, 20);
    let dead_path = router.dir.path().join("os.dead.jsonl");
    wait_for(&router, "the refused events are not dead-lettered", || {
        dead_letters(&dead_path).len() >= 20
    });
    let dead = dead_letters(&dead_path);
    assert!(
        dead.iter()
            .all(|(_, reason, detail)| reason == "http_403" && detail.contains("aws_sigv4")),
        "{dead:?}"
    );
    assert_eq!(
        discarded(&scrape(&router.http_addr()), "os", "http_403"),
        20
    );
    let requests = standin.requests();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r["refused"] == "signature mismatch"),
        "{requests:?}"
    );
    assert!(standin.stored().is_empty());
    assert!(
        !router.log_text().contains("not-the-secret-key"),
        "the secret key is in the log"
    );
}

#[test]
fn classic_http_output_with_aws_auth_is_signed() {
    let standin = sigv4_standin("my-service");
    // As the corpus's SigV4 http case (75-afb-dev-http-sigv4), into the stand-in.
    let router = classic_with_plugin(
        wasm_router_test_artifacts::HTTP,
        "http.wasm",
        &format!(
            "{CLASSIC_INPUT}[OUTPUT]\n    Name http\n    Match *\n    Host 127.0.0.1\n    Port {}\n    URI /\n    Format json_lines\n    aws_auth true\n    aws_region us-west-2\n    aws_service my-service\n",
            standin.port
        ),
        &secret_key(),
    );
    send_acked(&router.tcp_addr(), "app", 0, 30, 10, 20);
    let lines = || -> usize {
        standin
            .requests()
            .iter()
            .map(|r| r["lines"].as_array().map_or(0, Vec::len))
            .sum()
    };
    wait_for(&router, "events still missing", || lines() >= 30);
    for request in standin.requests() {
        assert!(request.get("refused").is_none(), "{request}");
        assert!(
            request["headers"]["authorization"]
                .as_str()
                .unwrap()
                .contains("/us-west-2/my-service/aws4_request"),
            "{request}"
        );
    }
}
