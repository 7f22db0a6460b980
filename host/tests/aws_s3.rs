//! `s3` against moto's S3: objects under keys from `s3_key_format`, gzip that decodes,
//! newline-delimited JSON lines equal to the records; multipart uploads with parts of at least
//! 5 MiB; data in `store_dir` survives a restart (unfinished multipart uploads are completed);
//! faults on every call lose and duplicate nothing; an object that keeps failing is dropped
//! after `upload_attempts` attempts and counted.

use crate::common::aws;
use crate::common::fault_proxy;

use aws::*;
use fault_proxy::{Fault, FaultProxy};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasm_router::ops::metrics::{Component, Metrics};
use wasm_router::output::Output;
use wasm_router::output::aws::AwsOverrides;
use wasm_router::output::s3::{S3Config, S3Output};

/// 2023-11-14T22:13:20.123456789Z
const BASE_NS: u64 = 1_700_000_000_123_456_789;

async fn output(endpoint: &str, store: &Path, extra: &str, metrics: Arc<Metrics>) -> S3Output {
    let text = format!(
        "bucket = \"logs\"\nregion = \"{REGION}\"\nendpoint = \"{endpoint}\"\nstore_dir = \"{}\"\n{extra}",
        store.display()
    );
    let config: S3Config = toml::from_str(&text).unwrap();
    S3Output::build(
        &config,
        Component::output("s3"),
        metrics,
        &AwsOverrides::static_credentials(ACCESS_KEY, SECRET_KEY),
    )
    .await
    .unwrap()
}

/// Records whose JSON is about `size` bytes, distinct and hard to compress.
fn records(n: u64, size: usize) -> Vec<(u64, Value)> {
    (0..n)
        .map(|i| {
            let mut noise = String::with_capacity(size);
            let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            while noise.len() < size {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                noise.push_str(&format!("{x:016x}"));
            }
            (
                BASE_NS + i * 1_000_000,
                json!({"log": format!("event {i}"), "noise": noise}),
            )
        })
        .collect()
}

async fn finish(out: &S3Output) {
    for _ in 0..30 {
        if out.upload_pass(true).await.remaining == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("objects still not uploaded");
}

fn lines(body: &[u8]) -> Vec<Value> {
    String::from_utf8(body.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_events_become_gzipped_ndjson_objects_under_the_key_format() {
    let moto = Moto::start();
    create_bucket(&moto.endpoint, "logs").await;
    let config = format!(
        r#"
[service]
grace = "30s"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[outputs]]
type = "s3"
match = "*"
bucket = "logs"
region = "{REGION}"
endpoint = "{}"
store_dir = "{{dir}}/store"
total_file_size = "1M"
upload_timeout = "2s"
use_put_object = "On"
compression = "gzip"
s3_key_format = "/fluent-bit-logs/$TAG[0]/$TAG[2]/%Y/%m/%d/%H%M%S-$UUID.ndjson.gz"
s3_key_format_tag_delimiters = ".-"
"#,
        moto.endpoint
    );
    let router = start_router(&config, &[]);
    let addr = router.tcp_addr();
    let events: Vec<_> = (0..2_000u64)
        .map(|i| {
            (
                BASE_NS + i * 1_000_000,
                json!({"log": format!("line {i}"), "source": "stdout"}),
            )
        })
        .collect();
    send_forward(&addr, "app-firelens.web", &events, 500);
    let objects = eventually(Duration::from_secs(60), "2,000 lines in S3", || {
        let endpoint = moto.endpoint.clone();
        async move {
            let objects = objects(&endpoint, "logs", "fluent-bit-logs/").await;
            (objects.iter().map(|(_, b)| lines(b).len()).sum::<usize>() >= 2_000).then_some(objects)
        }
    })
    .await;
    router.stop();

    let mut got = Vec::new();
    for (key, body) in &objects {
        let text = String::from_utf8(body.clone()).unwrap();
        let head = "{\"date\":\"2023-11-14T22:13:2";
        assert!(
            text.starts_with(head),
            "json_date_key comes first: {}",
            &text[..60]
        );
        // The key's time is that of the object's first event.
        let second = &text[head.len()..head.len() + 1];
        let prefix = format!("fluent-bit-logs/app/web/2023/11/14/22132{second}-");
        assert!(
            key.starts_with(&prefix)
                && key.ends_with(".ndjson.gz")
                && key.len() == prefix.len() + 8 + 10,
            "key {key}"
        );
        got.extend(lines(body));
    }
    got.sort_by_key(|v| v["log"].as_str().unwrap()[5..].parse::<u64>().unwrap());
    assert_eq!(got.len(), 2_000, "each event once");
    for (i, v) in got.iter().enumerate() {
        assert_eq!(v["log"], format!("line {i}"));
        assert_eq!(v["source"], "stdout");
        let ms = 123 + i;
        assert_eq!(
            v["date"],
            format!(
                "2023-11-14T22:13:{:02}.{:03}456Z",
                20 + ms / 1000,
                ms % 1000
            )
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_survive_faults_without_duplicate_parts() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    create_bucket(&moto.endpoint, "logs").await;
    let store = tempfile::tempdir().unwrap();
    let extra = "total_file_size = \"12M\"\nupload_chunk_size = \"5M\"\nupload_timeout = \"1h\"\nupload_attempts = 10\njson_date_key = false\nsend_content_md5 = true\ns3_key_format = \"/mp/$TAG/$INDEX.ndjson\"\n";
    let mut out = output(&proxy.endpoint, store.path(), extra, Metrics::new()).await;
    proxy.inject(
        "UploadPart",
        [
            Fault::ServerError,
            Fault::Reset,
            Fault::Throttle,
            Fault::Slow(Duration::from_millis(800)),
        ],
    );
    proxy.inject("CompleteMultipartUpload", [Fault::Throttle]);
    proxy.inject("CreateMultipartUpload", [Fault::ServerError]);
    // ~11 MiB in 11 batches: two full 5 MiB parts and a last one.
    let all = records(11_000, 1_000);
    for chunk in all.chunks(1_000) {
        deliver_until_done(&mut out, &batch("app", chunk), 5)
            .await
            .0
            .unwrap();
        out.upload_pass(false).await;
    }
    finish(&out).await;

    let objects = objects(&moto.endpoint, "logs", "mp/").await;
    assert_eq!(
        objects.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        vec!["mp/app/1.ndjson"]
    );
    let got = lines(&objects[0].1);
    assert_eq!(
        got,
        all.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        "every line once, in order"
    );

    let mut parts: BTreeMap<String, usize> = BTreeMap::new();
    for seen in proxy
        .seen_op("UploadPart")
        .iter()
        .filter(|s| s.forwarded.is_some())
    {
        let n = seen
            .target
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("partNumber="))
            .unwrap()
            .to_string();
        *parts.entry(n).or_default() += 1;
        assert!(seen.header("content-md5").is_some(), "send_content_md5");
    }
    assert!(
        parts.len() >= 2 && parts.values().all(|n| *n == 1),
        "each part accepted once: {parts:?}"
    );
    let forwarded: Vec<usize> = proxy
        .seen_op("UploadPart")
        .iter()
        .filter_map(|s| s.forwarded.as_ref().map(Vec::len))
        .collect();
    assert!(
        forwarded[..forwarded.len() - 1]
            .iter()
            .all(|n| *n >= 5 * 1024 * 1024),
        "non-last parts are at least 5 MiB: {forwarded:?}"
    );
    assert_eq!(
        proxy.pending_faults("UploadPart") + proxy.pending_faults("CompleteMultipartUpload"),
        0,
        "every fault was hit"
    );
    assert!(
        std::fs::read_dir(out.store_dir())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != "index")
            .count()
            == 0,
        "store_dir is empty"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_completes_what_the_previous_run_left() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    create_bucket(&moto.endpoint, "logs").await;
    let store = tempfile::tempdir().unwrap();
    let multipart = "total_file_size = \"20M\"\nupload_chunk_size = \"5M\"\nupload_timeout = \"1h\"\njson_date_key = false\ns3_key_format = \"/mp/$TAG\"\n";
    let small = "total_file_size = \"1M\"\nupload_timeout = \"1h\"\njson_date_key = false\nuse_put_object = true\ns3_key_format = \"/small/$TAG/$UUID\"\n";

    let first = records(6_000, 1_000);
    let mut out = output(&proxy.endpoint, store.path(), multipart, Metrics::new()).await;
    for chunk in first.chunks(500) {
        deliver_until_done(&mut out, &batch("big", chunk), 5)
            .await
            .0
            .unwrap();
        out.upload_pass(false).await;
    }
    assert_eq!(
        proxy.seen_op("UploadPart").len(),
        1,
        "the first 5 MiB part went out, the rest waits"
    );
    drop(out); // a crash: no flush

    let tail = records(200, 100);
    let mut small_out = output(&moto.endpoint, store.path(), small, Metrics::new()).await;
    deliver_until_done(&mut small_out, &batch("tiny", &tail), 5)
        .await
        .0
        .unwrap();
    drop(small_out);

    let restarted = output(&proxy.endpoint, store.path(), multipart, Metrics::new()).await;
    finish(&restarted).await;
    let restarted_small = output(&moto.endpoint, store.path(), small, Metrics::new()).await;
    finish(&restarted_small).await;

    let big = objects(&moto.endpoint, "logs", "mp/").await;
    assert_eq!(big.len(), 1);
    assert_eq!(
        lines(&big[0].1),
        first.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>()
    );
    let parts: Vec<String> = proxy
        .seen_op("UploadPart")
        .iter()
        .map(|s| s.target.clone())
        .collect();
    assert_eq!(
        parts.len(),
        2,
        "part 1 was not uploaded again after the restart: {parts:?}"
    );
    let tiny = objects(&moto.endpoint, "logs", "small/tiny/").await;
    assert_eq!(tiny.len(), 1);
    assert_eq!(
        lines(&tiny[0].1),
        tail.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_that_keeps_failing_is_dropped_after_upload_attempts_and_counted() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    create_bucket(&moto.endpoint, "logs").await;
    let store = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let extra = "total_file_size = \"1M\"\nupload_timeout = \"1h\"\nuse_put_object = true\nupload_attempts = 3\nlog_key = \"log\"\n";
    let mut out = output(&proxy.endpoint, store.path(), extra, metrics.clone()).await;
    proxy.always("PutObject", Fault::ServerError);
    let events: Vec<_> = (0..50u64)
        .map(|i| (BASE_NS + i, json!({"log": format!("l{i}")})))
        .collect();
    let mut with_missing = events.clone();
    with_missing.push((BASE_NS + 99, json!({"other": 1})));
    let (result, _, progress) = deliver_tracked(&mut out, &batch("app", &with_missing), 5).await;
    result.unwrap();
    assert_eq!(
        rejections(&progress),
        vec![("log_key_missing".to_string(), vec![50])]
    );
    let mut passes = 0;
    while out.upload_pass(true).await.remaining > 0 {
        passes += 1;
        assert!(passes < 10);
    }
    assert_eq!(
        proxy.seen_op("PutObject").len(),
        3,
        "upload_attempts attempts"
    );
    assert_eq!(
        metrics.discarded(&Component::output("s3"), "s3_upload_failed"),
        50
    );
    proxy.clear("PutObject");
    out.flush().await.unwrap();
    assert!(objects(&moto.endpoint, "logs", "").await.is_empty());
}

/// The `(uploadId, partNumber, bytes)` of every UploadPart the proxy forwarded to moto.
fn forwarded_parts(proxy: &FaultProxy) -> BTreeMap<String, BTreeMap<u32, usize>> {
    let mut uploads: BTreeMap<String, BTreeMap<u32, usize>> = BTreeMap::new();
    for seen in proxy.seen_op("UploadPart") {
        let Some(body) = &seen.forwarded else {
            continue;
        };
        let query = |key: &str| {
            seen.target
                .split(['?', '&'])
                .find_map(|p| p.strip_prefix(key))
                .unwrap()
                .to_string()
        };
        uploads
            .entry(query("uploadId="))
            .or_default()
            .insert(query("partNumber=").parse().unwrap(), body.len());
    }
    uploads
}

/// Issue 16 (AWS parity): 30 MB delivered in 3 MB batches with `total_file_size 12M` and
/// `upload_chunk_size 5M` make objects of at most 12 MiB — each closed only because the next
/// line would not fit — uploaded in parts of exactly 5 MiB (the last one smaller). With gzip an
/// object is one gzip stream (Fluent Bit: one stream per object), its parts slices of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_file_size_and_upload_chunk_size_are_honoured_to_the_byte() {
    let moto = Moto::start();
    create_bucket(&moto.endpoint, "logs").await;
    let all = records(30_000, 1_000);
    let expected: Vec<Value> = all.iter().map(|(_, v)| v.clone()).collect();
    for compression in ["none", "gzip"] {
        let proxy = FaultProxy::start(&moto.endpoint);
        let store = tempfile::tempdir().unwrap();
        let extra = format!(
            "total_file_size = \"12M\"\nupload_chunk_size = \"5M\"\nupload_timeout = \"1h\"\njson_date_key = false\ncompression = \"{compression}\"\ns3_key_format = \"/{compression}/$TAG/$INDEX\"\n"
        );
        let mut out = output(&proxy.endpoint, store.path(), &extra, Metrics::new()).await;
        for chunk in all.chunks(3_000) {
            deliver_until_done(&mut out, &batch("app", chunk), 5)
                .await
                .0
                .unwrap();
            out.upload_pass(false).await;
        }
        finish(&out).await;

        let (limit, chunk) = (12 * 1024 * 1024, 5 * 1024 * 1024);
        // Keys end with $INDEX: in the order the objects were made.
        let mut objects = raw_objects(&moto.endpoint, "logs", &format!("{compression}/")).await;
        objects.sort_by_key(|(k, _)| k.rsplit('/').next().unwrap().parse::<u64>().unwrap());
        let bodies: Vec<Vec<u8>> = objects.into_iter().map(|(_, b)| b).collect();
        assert!(bodies.len() >= 3, "{compression}: {} objects", bodies.len());
        let mut texts = Vec::new();
        for raw in &bodies {
            if compression == "gzip" {
                let mut decoder = flate2::bufread::GzDecoder::new(&raw[..]);
                let mut text = Vec::new();
                std::io::Read::read_to_end(&mut decoder, &mut text).unwrap();
                assert!(
                    decoder.into_inner().is_empty(),
                    "one gzip stream per object, nothing after it"
                );
                texts.push(text);
            } else {
                texts.push(raw.clone());
            }
        }
        for (i, text) in texts.iter().enumerate() {
            assert!(
                text.len() <= limit,
                "{compression}: object {i} has {} bytes",
                text.len()
            );
            if let Some(next) = texts.get(i + 1) {
                let next_line = next.iter().position(|b| *b == b'\n').unwrap() + 1;
                assert!(
                    text.len() + next_line > limit,
                    "{compression}: object {i} ({} bytes) was closed although the next line fitted",
                    text.len()
                );
            }
        }
        let got: Vec<Value> = texts.iter().flat_map(|t| lines(t)).collect();
        assert_eq!(got, expected, "{compression}: every line once, in order");

        let uploads = forwarded_parts(&proxy);
        assert!(!uploads.is_empty(), "{compression}: multipart uploads");
        for parts in uploads.values() {
            let sizes: Vec<usize> = parts.values().copied().collect();
            let (last, full) = sizes.split_last().unwrap();
            assert!(
                full.iter().all(|n| *n == chunk) && *last <= chunk,
                "{compression}: parts of exactly upload_chunk_size, the last one smaller: {sizes:?}"
            );
        }
        if compression == "gzip" {
            assert!(
                proxy
                    .seen_op("CreateMultipartUpload")
                    .iter()
                    .all(|s| s.header("content-encoding") == Some("gzip"))
            );
        }
    }
}
