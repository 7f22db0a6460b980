//! The `aws` filter against a stand-in metadata service on loopback: a real HTTP server that
//! answers as IMDS does (v2 tokens required when asked to, 401 for a missing or revoked token,
//! 404 for what it does not have).

use super::*;
use crate::event::record::tests::{body, json};
use crate::filter::NativeConfig as _;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// How the stand-in behaves, and what it saw.
#[derive(Default)]
struct StandIn {
    /// Refuse `GET`s without a valid token (an instance with `HttpTokens=required`).
    tokens_required: bool,
    /// Items answered 500 while this is above zero (decremented per failed answer).
    failures_left: usize,
    /// Serve instance tags.
    tags: bool,
    /// Tokens issued; a token is valid while it is the last one issued and not revoked.
    issued: usize,
    revoked: bool,
    /// `METHOD path token-or-ttl` of each request.
    seen: Vec<String>,
}

fn item(path: &str) -> Option<&'static str> {
    Some(match path {
        "/latest/meta-data/placement/availability-zone" => "eu-west-1b",
        "/latest/meta-data/instance-id" => "i-0abc1234def567890",
        "/latest/meta-data/instance-type" => "m7g.large",
        "/latest/meta-data/local-ipv4" => "10.0.1.23",
        "/latest/meta-data/ami-id" => "ami-0123456789abcdef0",
        "/latest/meta-data/hostname" => "ip-10-0-1-23.eu-west-1.compute.internal",
        "/latest/meta-data/mac" => "0e:11:22:33:44:55",
        "/latest/meta-data/network/interfaces/macs/0e:11:22:33:44:55/vpc-id" => {
            "vpc-0123456789abcdef0"
        }
        "/latest/dynamic/instance-identity/document" => {
            r#"{"accountId":"111122223333","region":"eu-west-1","instanceId":"i-0abc1234def567890"}"#
        }
        _ => return None,
    })
}

fn tag(path: &str) -> Option<&'static str> {
    Some(
        match path.strip_prefix("/latest/meta-data/tags/instance")? {
            "" => "Name\nteam\nenv",
            "/Name" => "web-1",
            "/team" => "payments",
            "/env" => "prod",
            _ => return None,
        },
    )
}

impl StandIn {
    fn answer(
        &mut self,
        method: &str,
        path: &str,
        headers: &BTreeMap<String, String>,
    ) -> (u16, String) {
        let token = headers.get("x-aws-ec2-metadata-token");
        let ttl = headers.get("x-aws-ec2-metadata-token-ttl-seconds");
        self.seen.push(format!(
            "{method} {path} {}",
            token.or(ttl).map_or("-", String::as_str)
        ));
        if method == "PUT" && path == "/latest/api/token" {
            return match ttl.and_then(|t| t.parse::<u32>().ok()) {
                Some(1..=21600) => {
                    self.issued += 1;
                    self.revoked = false;
                    (200, format!("token-{}", self.issued))
                }
                _ => (400, "missing or bad TTL header".into()),
            };
        }
        if method != "GET" {
            return (405, String::new());
        }
        let valid = !self.revoked && token.is_some_and(|t| *t == format!("token-{}", self.issued));
        if token.is_some() && !valid || self.tokens_required && token.is_none() {
            return (401, String::new());
        }
        let found = item(path).or_else(|| if self.tags { tag(path) } else { None });
        match found {
            Some(_) if self.failures_left > 0 => {
                self.failures_left -= 1;
                (500, "busy".into())
            }
            Some(text) => (200, text.to_string()),
            None => (404, String::new()),
        }
    }
}

/// Serve `stand_in` on a loopback port; returns `http://127.0.0.1:PORT`.
async fn serve(stand_in: Arc<Mutex<StandIn>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let stand_in = stand_in.clone();
            tokio::spawn(async move {
                let mut raw = Vec::new();
                let mut buf = [0u8; 1024];
                while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => raw.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&raw).into_owned();
                let mut lines = head.split("\r\n");
                let mut first = lines.next().unwrap().split(' ');
                let (method, path) = (first.next().unwrap(), first.next().unwrap());
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let (status, text) = stand_in.lock().unwrap().answer(method, path, &headers);
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

fn config(toml_text: &str) -> AwsFilterConfig {
    toml::from_str(toml_text).unwrap()
}

/// Start the filter on `endpoint` and wait until the fetch task has finished a round.
async fn started(config: &AwsFilterConfig, endpoint: &str, metrics: &Arc<Metrics>) -> AwsFilter {
    let filter = AwsFilter::start(config, Some(endpoint), "aws.0", metrics).unwrap();
    wait_until(|| filter.current().count > 0 || metrics_errors(metrics, "imds_request_failed") > 0)
        .await;
    filter
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the condition did not hold within 5 s");
}

fn metrics_errors(metrics: &Metrics, reason: &str) -> u64 {
    metrics
        .errors
        .get_or_create(&ReasonLabels {
            component_kind: "filter",
            component_id: "aws.0".into(),
            reason: reason.into(),
        })
        .get()
}

fn apply(filter: &AwsFilter, record: serde_json::Value) -> String {
    let event = Event {
        time_ns: 7,
        body: Bytes::from(body(record)),
    };
    match filter.apply(&event) {
        Verdict::Replace(e) => {
            assert_eq!(e.time_ns, 7);
            json(&e.body)
        }
        Verdict::Keep => json(&event.body),
        Verdict::Drop => panic!("the aws filter never drops"),
    }
}

#[tokio::test]
async fn v2_reads_every_item_with_a_token_and_appends_them_in_fluent_bit_order() {
    let stand_in = Arc::new(Mutex::new(StandIn {
        tokens_required: true,
        tags: true,
        ..StandIn::default()
    }));
    let endpoint = serve(stand_in.clone()).await;
    let metrics = Metrics::new();
    let c = config(
        "ec2_instance_type = true\nprivate_ip = true\nvpc_id = true\nami_id = true\naccount_id = true\nhostname = true\ntags_enabled = true\ntags_exclude = [\"team\"]\n",
    );
    let filter = started(&c, &endpoint, &metrics).await;
    assert_eq!(
        apply(&filter, json!({"log": "hello"})),
        concat!(
            r#"{"log":"hello","az":"eu-west-1b","ec2_instance_id":"i-0abc1234def567890","#,
            r#""ec2_instance_type":"m7g.large","private_ip":"10.0.1.23","vpc_id":"vpc-0123456789abcdef0","#,
            r#""ami_id":"ami-0123456789abcdef0","account_id":"111122223333","#,
            r#""hostname":"ip-10-0-1-23.eu-west-1.compute.internal","Name":"web-1","env":"prod"}"#
        )
    );
    let seen = stand_in.lock().unwrap().seen.clone();
    assert_eq!(seen[0], "PUT /latest/api/token 21600", "{seen:#?}");
    assert!(
        seen[1..]
            .iter()
            .all(|s| s.starts_with("GET ") && s.ends_with(" token-1")),
        "one token for every GET: {seen:#?}"
    );
    // Read once: more records ask nothing more.
    let asked = seen.len();
    for _ in 0..100 {
        apply(&filter, json!({"log": "x"}));
    }
    assert_eq!(stand_in.lock().unwrap().seen.len(), asked);
    assert_eq!(metrics_errors(&metrics, MISSING_REASON), 0);
    // Not a map: passed on unchanged.
    assert_eq!(apply(&filter, json!([1])), "[1]");
}

#[tokio::test]
async fn v1_asks_without_a_token_and_fails_where_tokens_are_required() {
    let stand_in = Arc::new(Mutex::new(StandIn::default()));
    let endpoint = serve(stand_in.clone()).await;
    let metrics = Metrics::new();
    let filter = started(&config("imds_version = \"v1\""), &endpoint, &metrics).await;
    assert_eq!(
        apply(&filter, json!({"log": "a"})),
        r#"{"log":"a","az":"eu-west-1b","ec2_instance_id":"i-0abc1234def567890"}"#
    );
    let seen = stand_in.lock().unwrap().seen.clone();
    assert_eq!(
        seen,
        [
            "GET /latest/meta-data/placement/availability-zone -",
            "GET /latest/meta-data/instance-id -"
        ]
    );

    let required = Arc::new(Mutex::new(StandIn {
        tokens_required: true,
        ..StandIn::default()
    }));
    let endpoint = serve(required).await;
    let metrics = Metrics::new();
    let filter = started(&config("imds_version = \"v1\""), &endpoint, &metrics).await;
    wait_until(|| metrics_errors(&metrics, "imds_request_failed") == 2).await;
    assert_eq!(apply(&filter, json!({"log": "a"})), r#"{"log":"a"}"#);
    assert_eq!(metrics_errors(&metrics, MISSING_REASON), 1);
}

#[tokio::test]
async fn a_revoked_token_is_taken_again_once() {
    let stand_in = Arc::new(Mutex::new(StandIn {
        tokens_required: true,
        ..StandIn::default()
    }));
    let endpoint = serve(stand_in.clone()).await;
    let mut client = ImdsClient::new(&endpoint, ImdsVersion::V2).unwrap();
    assert_eq!(
        client.get("/latest/meta-data/instance-id").await.unwrap(),
        "i-0abc1234def567890"
    );
    stand_in.lock().unwrap().revoked = true;
    assert_eq!(
        client.get("/latest/meta-data/ami-id").await.unwrap(),
        "ami-0123456789abcdef0"
    );
    let seen = stand_in.lock().unwrap().seen.clone();
    assert_eq!(
        seen,
        [
            "PUT /latest/api/token 21600",
            "GET /latest/meta-data/instance-id token-1",
            "GET /latest/meta-data/ami-id token-1",
            "PUT /latest/api/token 21600",
            "GET /latest/meta-data/ami-id token-2",
        ]
    );
    let e = client.get("/latest/meta-data/nothing").await.unwrap_err();
    assert!(matches!(e, ImdsError::NotFound(_)), "{e}");
}

#[tokio::test]
async fn a_failing_service_leaves_records_unchanged_and_counted_until_a_retry_reads_it() {
    // Nothing listens: every request fails at once.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let metrics = Metrics::new();
    let filter = started(&config(""), &closed, &metrics).await;
    assert_eq!(apply(&filter, json!({"log": "a"})), r#"{"log":"a"}"#);
    assert_eq!(apply(&filter, json!({"log": "b"})), r#"{"log":"b"}"#);
    assert_eq!(metrics_errors(&metrics, MISSING_REASON), 2);
    assert!(metrics_errors(&metrics, "imds_request_failed") >= 1);
    // A token that never comes says why it may not (the hop limit in containers).
    let e = ImdsClient::new(&closed, ImdsVersion::V2)
        .unwrap()
        .get("/latest/meta-data/instance-id")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("PUT ")
            && e.contains("/latest/api/token")
            && e.contains("HttpPutResponseHopLimit"),
        "{e}"
    );

    // Answers 500 three times (the PUT succeeds; az, instance-id, then az again fail), then
    // everything: the second round (after 1 s) reads the rest.
    let stand_in = Arc::new(Mutex::new(StandIn {
        failures_left: 3,
        ..StandIn::default()
    }));
    let endpoint = serve(stand_in.clone()).await;
    let metrics = Metrics::new();
    let c = config("retry_interval_s = 0");
    let filter = started(&c, &endpoint, &metrics).await;
    assert_eq!(apply(&filter, json!({"log": "a"})), r#"{"log":"a"}"#);
    wait_until(|| filter.current().complete).await;
    assert_eq!(
        apply(&filter, json!({"log": "b"})),
        r#"{"log":"b","az":"eu-west-1b","ec2_instance_id":"i-0abc1234def567890"}"#
    );
    assert!(metrics_errors(&metrics, MISSING_REASON) >= 1);
}

#[tokio::test]
async fn no_tags_is_not_an_error_and_entity_keys_follow_the_rest() {
    let stand_in = Arc::new(Mutex::new(StandIn::default()));
    let endpoint = serve(stand_in).await;
    let metrics = Metrics::new();
    let c = config("az = false\ntags_enabled = true\nenable_entity = true\n");
    let filter = started(&c, &endpoint, &metrics).await;
    wait_until(|| filter.current().complete).await;
    assert_eq!(
        apply(&filter, json!({"log": "a"})),
        concat!(
            r#"{"log":"a","ec2_instance_id":"i-0abc1234def567890","#,
            r#""aws_entity_ec2_instance_id":"i-0abc1234def567890","aws_entity_account_id":"111122223333"}"#
        )
    );
    assert_eq!(metrics_errors(&metrics, "imds_request_failed"), 0);
}

#[test]
fn disabled_or_without_a_runtime_nothing_is_asked() {
    let metrics = Metrics::new();
    let filter = AwsFilter::start(&config(""), None, "aws.0", &metrics).unwrap();
    assert!(filter._fetch.is_none());
    assert_eq!(apply(&filter, json!({"log": "a"})), r#"{"log":"a"}"#);
    assert_eq!(metrics_errors(&metrics, MISSING_REASON), 0);
    // `validate` builds filters outside the runtime: no task, no request.
    let filter =
        AwsFilter::start(&config(""), Some("http://127.0.0.1:9"), "aws.0", &metrics).unwrap();
    assert!(filter._fetch.is_none());
}

#[test]
fn bad_keys_are_refused_with_the_key_and_the_fix() {
    let check = |text: &str| {
        toml::from_str::<AwsFilterConfig>(text)
            .map_err(|e| e.to_string())
            .and_then(|c| c.check())
    };
    assert!(check("").is_ok());
    let e =
        check("tags_enabled = true\ntags_include = [\"a\"]\ntags_exclude = [\"b\"]").unwrap_err();
    assert!(e.contains("cannot be combined"), "{e}");
    let e = check("tags_include = [\"Name\"]").unwrap_err();
    assert!(e.contains("tags_enabled = true"), "{e}");
    let e = check("tags_enabled = true\ntags_include = [\"\"]").unwrap_err();
    assert!(e.starts_with(".tags_include[0] is empty"), "{e}");
    let e = check("imds_version = \"v3\"").unwrap_err();
    assert!(e.contains("v1") && e.contains("v2"), "{e}");
    let e = check("zone = true").unwrap_err();
    assert!(e.contains("unknown field `zone`"), "{e}");
}
