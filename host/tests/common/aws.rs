//! AWS test support: moto's server (PyPI `moto[server]`, installed by `scripts/test` into
//! `.test-deps/venv`) started on a random loopback port per test, SDK clients to read back what
//! the outputs wrote, a PackedForward sender with acks, and a delivery loop that retries like
//! the output runner.

use super::RouterProcess;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wasm_router::Batch;
use wasm_router::output::{DeliveryError, DeliveryProgress, Output};

/// The dummy credentials every test uses (moto accepts any).
pub const ACCESS_KEY: &str = "testing";
/// See [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "testing";
/// The region every test uses.
pub const REGION: &str = "us-east-1";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// moto's server, killed on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl Moto {
    /// Start `moto_server` on a random loopback port and wait until it listens.
    pub fn start() -> Moto {
        let path = std::env::var_os("WASM_ROUTER_TEST_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".test-deps/venv/bin/moto_server"));
        assert!(
            path.exists(),
            "moto's server is not installed at {} ($WASM_ROUTER_TEST_MOTO_SERVER). Run `scripts/test` (or \
             `scripts/install-test-deps`) from the repository root first: it installs PyPI moto[server] into \
             .test-deps/venv.",
            path.display()
        );
        let mut child = Command::new(&path)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", path.display()));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            let mut seen = Vec::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(url) = line.split("Running on ").nth(1) {
                        let url = url
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_string();
                        let _ = tx.send(Ok(url));
                        sent = true;
                    } else {
                        seen.push(line);
                    }
                }
            }
            if !sent {
                let _ = tx.send(Err(seen.join("\n")));
            }
        });
        let endpoint = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(url)) => url,
            Ok(Err(log)) => panic!("moto_server exited before listening:\n{log}"),
            Err(_) => panic!("moto_server did not report its address within 60 s"),
        };
        Moto {
            child,
            endpoint: endpoint.trim_end_matches('/').to_string(),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Environment for a `wasm-router` child process: dummy credentials, no IMDS lookups.
pub fn aws_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/nonexistent".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".into()),
    ]
}

/// The SDK configuration tests read moto with.
pub fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    let creds = aws_sdk_s3::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test");
    aws_config::SdkConfig::builder()
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(creds))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

/// An S3 client for moto (path-style).
pub fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&sdk_config(endpoint))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A CloudWatch Logs client for moto.
pub fn logs_client(endpoint: &str) -> aws_sdk_cloudwatchlogs::Client {
    aws_sdk_cloudwatchlogs::Client::new(&sdk_config(endpoint))
}

/// A Firehose client for moto.
pub fn firehose_client(endpoint: &str) -> aws_sdk_firehose::Client {
    aws_sdk_firehose::Client::new(&sdk_config(endpoint))
}

/// A Kinesis Data Streams client for moto.
pub fn kinesis_client(endpoint: &str) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(&sdk_config(endpoint))
}

/// Create the data stream `name` with `shards` shards and wait until it is ACTIVE.
pub async fn create_data_stream(endpoint: &str, name: &str, shards: i32) {
    let client = kinesis_client(endpoint);
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .expect("CreateStream");
    for _ in 0..100 {
        let d = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .expect("DescribeStreamSummary");
        if d.stream_description_summary()
            .map(|s| s.stream_status().as_str())
            == Some("ACTIVE")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("stream {name} never became ACTIVE");
}

/// Every record of every shard of `stream`, read from the start: shard id → `(partition key,
/// data)` in shard order.
pub async fn stream_records(
    endpoint: &str,
    stream: &str,
) -> std::collections::BTreeMap<String, Vec<(String, Vec<u8>)>> {
    let client = kinesis_client(endpoint);
    let shards = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("ListShards");
    let mut all = std::collections::BTreeMap::new();
    for shard in shards.shards() {
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator
            .expect("a shard iterator");
        let mut records = Vec::new();
        loop {
            let out = client
                .get_records()
                .shard_iterator(&iterator)
                .limit(10_000)
                .send()
                .await
                .expect("GetRecords");
            if out.records().is_empty() {
                break;
            }
            records.extend(out.records().iter().map(|r| {
                (
                    r.partition_key().unwrap_or_default().to_string(),
                    r.data().as_ref().to_vec(),
                )
            }));
            match out.next_shard_iterator {
                Some(next) => iterator = next,
                None => break,
            }
        }
        all.insert(shard.shard_id().to_string(), records);
    }
    all
}

/// Create `bucket`.
pub async fn create_bucket(endpoint: &str, bucket: &str) {
    s3_client(endpoint)
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("CreateBucket");
}

/// Create a direct-PUT delivery stream that delivers to `bucket` under `prefix`.
pub async fn create_delivery_stream(endpoint: &str, name: &str, bucket: &str, prefix: &str) {
    let dest = aws_sdk_firehose::types::ExtendedS3DestinationConfiguration::builder()
        .role_arn("arn:aws:iam::123456789012:role/firehose")
        .bucket_arn(format!("arn:aws:s3:::{bucket}"))
        .prefix(prefix)
        .build()
        .unwrap();
    firehose_client(endpoint)
        .create_delivery_stream()
        .delivery_stream_name(name)
        .extended_s3_destination_configuration(dest)
        .send()
        .await
        .expect("CreateDeliveryStream");
}

/// Every `(key, body)` under `prefix`, in key order; gzip bodies are decoded (all members).
pub async fn objects(endpoint: &str, bucket: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
    raw_objects(endpoint, bucket, prefix)
        .await
        .into_iter()
        .map(|(key, raw)| (key, gunzip_if_gzip(&raw)))
        .collect()
}

/// Every `(key, body)` under `prefix`, in key order, as stored.
pub async fn raw_objects(endpoint: &str, bucket: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let client = s3_client(endpoint);
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let obj = client
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
        let raw = obj.body.collect().await.unwrap().into_bytes().to_vec();
        out.push((key, raw));
    }
    out
}

/// Decode every gzip member of `raw`, or return it as is when it is not gzip.
pub fn gunzip_if_gzip(raw: &[u8]) -> Vec<u8> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(raw)
            .read_to_end(&mut text)
            .expect("valid gzip");
        text
    } else {
        raw.to_vec()
    }
}

/// [`log_events`] of a stream once it exists (an output with `auto_create_group` creates it)
/// and holds at least `count` events; fails after `timeout`.
pub async fn wait_for_log_events(
    endpoint: &str,
    group: &str,
    stream: &str,
    count: usize,
    timeout: Duration,
) -> Vec<(i64, String)> {
    let what = format!("{count} events in {group} / {stream}");
    eventually(timeout, &what, || async {
        let streams = logs_client(endpoint)
            .describe_log_streams()
            .log_group_name(group)
            .send()
            .await
            .ok()?;
        streams
            .log_streams()
            .iter()
            .any(|s| s.log_stream_name() == Some(stream))
            .then_some(())?;
        let events = log_events(endpoint, group, stream).await;
        (events.len() >= count).then_some(events)
    })
    .await
}

/// Every `(timestamp ms, message)` of a stream, in order (all pages).
pub async fn log_events(endpoint: &str, group: &str, stream: &str) -> Vec<(i64, String)> {
    let client = logs_client(endpoint);
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetLogEvents {group} {stream}: {e:?}"));
        let before = events.len();
        events.extend(page.events().iter().map(|e| {
            (
                e.timestamp().unwrap_or_default(),
                e.message().unwrap_or_default().to_string(),
            )
        }));
        let next = page.next_forward_token().map(str::to_string);
        if events.len() == before || next == token {
            break;
        }
        token = next;
    }
    events
}

/// The streams of `group`.
pub async fn log_streams(endpoint: &str, group: &str) -> Vec<String> {
    let page = logs_client(endpoint)
        .describe_log_streams()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = page
        .log_streams()
        .iter()
        .filter_map(|s| s.log_stream_name().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Deliver `batch` like the output runner: retry retryable errors after a short pause, until
/// the output returns anything else (or `max_attempts` is reached, which fails the test).
/// Returns the final result and how many attempts it took.
pub async fn deliver_until_done<O: Output>(
    output: &mut O,
    batch: &Batch,
    max_attempts: usize,
) -> (Result<(), DeliveryError>, usize) {
    let (result, attempts, _) = deliver_tracked(output, batch, max_attempts).await;
    (result, attempts)
}

/// [`deliver_until_done`], also returning the delivery's progress: what was delivered and
/// what was rejected, under which reason.
pub async fn deliver_tracked<O: Output>(
    output: &mut O,
    batch: &Batch,
    max_attempts: usize,
) -> (Result<(), DeliveryError>, usize, DeliveryProgress) {
    let mut progress = DeliveryProgress::new(batch.len());
    for attempt in 1..=max_attempts {
        match output.deliver(batch, &mut progress).await {
            Err(DeliveryError::Retryable { .. }) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => return (other, attempt, progress),
        }
    }
    panic!("still retrying after {max_attempts} attempts");
}

/// The rejections of `progress` as (reason, sorted indexes), sorted by reason.
pub fn rejections(progress: &DeliveryProgress) -> Vec<(String, Vec<usize>)> {
    let mut all: Vec<(String, Vec<usize>)> = progress
        .rejections()
        .iter()
        .map(|r| {
            let mut events = r.events.clone();
            events.sort_unstable();
            (r.reason.clone(), events)
        })
        .collect();
    all.sort();
    all
}

/// The msgpack of a JSON record.
pub fn msgpack(value: &Value) -> Vec<u8> {
    rmp_serde::to_vec_named(value).unwrap()
}

/// A batch under `tag` of `(time_ns, record)` events.
pub fn batch(tag: &str, events: &[(u64, Value)]) -> Batch {
    Batch::new(
        bytes::Bytes::copy_from_slice(tag.as_bytes()),
        events
            .iter()
            .map(|(t, v)| wasm_router::Event {
                time_ns: *t,
                body: msgpack(v).into(),
            })
            .collect(),
    )
}

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> u64 {
    wasm_router::event::now_ns()
}

/// Send `events` to a forward listener at `addr` as PackedForward requests of at most
/// `per_request` events, each with a chunk id, waiting for every ack.
pub fn send_forward(addr: &str, tag: &str, events: &[(u64, Value)], per_request: usize) {
    let mut conn =
        std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    for (n, chunk) in events.chunks(per_request.max(1)).enumerate() {
        let mut entries = Vec::new();
        for (time_ns, record) in chunk {
            rmp::encode::write_array_len(&mut entries, 2).unwrap();
            let mut t = [0xd7u8, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
            t[2..6].copy_from_slice(&((time_ns / 1_000_000_000) as u32).to_be_bytes());
            t[6..].copy_from_slice(&((time_ns % 1_000_000_000) as u32).to_be_bytes());
            entries.extend_from_slice(&t);
            entries.extend_from_slice(&msgpack(record));
        }
        let id = format!("aws-test-{n}");
        let mut frame = Vec::new();
        rmp::encode::write_array_len(&mut frame, 3).unwrap();
        rmp::encode::write_str(&mut frame, tag).unwrap();
        rmp::encode::write_bin(&mut frame, &entries).unwrap();
        rmp::encode::write_map_len(&mut frame, 1).unwrap();
        rmp::encode::write_str(&mut frame, "chunk").unwrap();
        rmp::encode::write_str(&mut frame, &id).unwrap();
        conn.write_all(&frame).unwrap();
        let mut want = vec![0x81, 0xa3, b'a', b'c', b'k'];
        rmp::encode::write_str(&mut want, &id).unwrap();
        let mut got = vec![0; want.len()];
        conn.read_exact(&mut got)
            .unwrap_or_else(|e| panic!("no ack for request {n}: {e}"));
        assert_eq!(got, want, "wrong ack for request {n}");
    }
}

/// Poll `check` every 200 ms until it returns `Some`, or panic with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `wasm-router -c fluent-bit.conf` on the Fluent Bit classic `config` (`{dir}` = a fresh
/// temporary directory) with the AWS test credentials of [`aws_env`] in its environment.
pub fn start_classic_router(config: &str) -> RouterProcess {
    let (dir, path) = crate::common::classic_dir(config, &[]);
    let mut cmd = crate::common::router_command();
    cmd.arg("-c").arg(&path).envs(aws_env());
    RouterProcess::spawn(&mut cmd, dir)
}

/// A `wasm-router run` on `config` (TOML; `{dir}` = a fresh temporary directory) with the AWS
/// test credentials of [`aws_env`] and `env` in its environment.
pub fn start_router(config: &str, env: &[(&str, &str)]) -> RouterProcess {
    let mut all: Vec<(&str, String)> = aws_env();
    all.extend(env.iter().map(|(k, v)| (*k, v.to_string())));
    RouterProcess::start_with_env(config, &all)
}
