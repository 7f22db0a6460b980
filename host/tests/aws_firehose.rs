//! `firehose` against moto's Firehose, which delivers to moto's S3: events sent over the
//! forward protocol arrive in S3 as newline-terminated JSON, 500 records per PutRecordBatch at
//! most; on partial failures only the failed records are sent again, so every event is in S3
//! exactly once; throttling, 500s and resets lose nothing.

use crate::common::aws;
use crate::common::fault_proxy;

use aws::*;
use fault_proxy::{Fault, FaultProxy, firehose_records};
use serde_json::{Value, json};
use std::time::Duration;
use wasm_router::ops::metrics::{Component, Metrics};
use wasm_router::output::aws::AwsOverrides;
use wasm_router::output::firehose::{FirehoseConfig, FirehoseOutput};

/// Every line of every object under `prefix`, objects in key order.
async fn delivered_lines(endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for (_, body) in objects(endpoint, bucket, prefix).await {
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "every record ends with a newline"
        );
        lines.extend(text.lines().map(str::to_string));
    }
    lines
}

fn as_values(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_events_reach_s3_through_firehose_500_records_per_call() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    create_bucket(&moto.endpoint, "fh-dest").await;
    create_delivery_stream(&moto.endpoint, "logs", "fh-dest", "fh/").await;
    let config = format!(
        r#"
[service]
grace = "30s"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[outputs]]
type = "kinesis_firehose"
match = "*"
region = "{REGION}"
delivery_stream = "logs"
endpoint = "{}"
time_key = "time"
time_key_format = "%Y-%m-%dT%H:%M:%S.%L"
"#,
        proxy.endpoint
    );
    let router = start_router(&config, &[]);
    let addr = router.tcp_addr();
    // 2023-11-14T22:13:20.123Z + i ms
    let base = 1_700_000_000_123_000_000u64;
    let events: Vec<_> = (0..1_200u64)
        .map(|i| (base + i * 1_000_000, json!({"container_name": "/app", "log": format!("line {i} é \"q\""), "source": "stdout"})))
        .collect();
    send_forward(&addr, "app-firelens-1", &events, 1_200);
    let lines = eventually(Duration::from_secs(60), "1,200 lines in S3", || {
        let endpoint = moto.endpoint.clone();
        async move {
            let lines = delivered_lines(&endpoint, "fh-dest", "fh/").await;
            (lines.len() >= 1_200).then_some(lines)
        }
    })
    .await;
    router.stop();

    // Firehose objects written in the same second have random names: order by the line number.
    let mut got = as_values(&lines);
    got.sort_by_key(|v| {
        v["log"]
            .as_str()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    });
    let want: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, (_, v))| {
            let mut v = v.clone();
            let ms = 123 + i;
            v["time"] = json!(format!(
                "2023-11-14T22:13:{:02}.{:03}",
                20 + ms / 1000,
                ms % 1000
            ));
            v
        })
        .collect();
    assert_eq!(got.len(), want.len(), "every event once");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!("event {i} differs:\n got {}\nwant {}", got[i], want[i]);
    }
    let calls = proxy.seen_op("PutRecordBatch");
    let sizes: Vec<usize> = calls
        .iter()
        .map(|c| firehose_records(&c.body).len())
        .collect();
    assert_eq!(sizes, vec![500, 500, 200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_failures_resend_only_the_failed_records() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    create_bucket(&moto.endpoint, "fh-partial").await;
    create_delivery_stream(&moto.endpoint, "partial", "fh-partial", "p/").await;
    let config: FirehoseConfig = toml::from_str(&format!(
        "region = \"{REGION}\"\ndelivery_stream = \"partial\"\nendpoint = \"{}\"\nlog_key = \"log\"\n",
        proxy.endpoint
    ))
    .unwrap();
    let mut out = FirehoseOutput::build(
        &config,
        Component::output("firehose"),
        Metrics::new(),
        &AwsOverrides::static_credentials(ACCESS_KEY, SECRET_KEY),
    )
    .await
    .unwrap();
    proxy.inject(
        "PutRecordBatch",
        [
            Fault::FirehoseFail((0..500).step_by(3).collect()),
            Fault::Throttle,
            Fault::FirehoseFail(vec![0, 7, 499]),
            Fault::Reset,
            Fault::ServerError,
            Fault::Slow(Duration::from_millis(1200)),
            Fault::FirehoseFail(vec![1]),
        ],
    );
    let now = now_ns();
    let events: Vec<_> = (0..1_200u64)
        .map(|i| (now + i, json!({"log": format!("record {i}")})))
        .collect();
    let (result, attempts) = deliver_until_done(&mut out, &batch("app", &events), 100).await;
    result.unwrap();
    assert!(attempts > 3, "{attempts}");
    let faulted = proxy
        .seen_op("PutRecordBatch")
        .iter()
        .filter(|s| s.fault.is_some())
        .count();
    assert!(faulted >= 6, "the faults were hit ({faulted})");

    let mut accepted: Vec<String> = proxy
        .seen_op("PutRecordBatch")
        .iter()
        .filter_map(|s| s.forwarded.as_ref())
        .flat_map(|b| firehose_records(b))
        .map(|r| String::from_utf8(r).unwrap())
        .collect();
    assert_eq!(
        accepted.len(),
        1_200,
        "each record reached Firehose exactly once"
    );
    accepted.sort();
    accepted.dedup();
    assert_eq!(accepted.len(), 1_200, "no record was accepted twice");
    let mut lines = delivered_lines(&moto.endpoint, "fh-partial", "p/").await;
    lines.sort();
    let mut want: Vec<String> = (0..1_200).map(|i| format!("record {i}")).collect();
    want.sort();
    assert_eq!(lines, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregation_compression_and_oversize_records() {
    let moto = Moto::start();
    create_bucket(&moto.endpoint, "fh-agg").await;
    create_delivery_stream(&moto.endpoint, "agg", "fh-agg", "a/").await;
    let text = format!(
        "region = \"{REGION}\"\ndelivery_stream = \"agg\"\nendpoint = \"{}\"\nsimple_aggregation = true\ncompression = \"gzip\"\noversize_records = \"drop\"\ndata_keys = \"log\"\n",
        moto.endpoint
    );
    let config: FirehoseConfig = toml::from_str(&text).unwrap();
    let metrics = Metrics::new();
    let mut out = FirehoseOutput::build(
        &config,
        Component::output("firehose"),
        metrics,
        &AwsOverrides::static_credentials(ACCESS_KEY, SECRET_KEY),
    )
    .await
    .unwrap();
    let mut events: Vec<_> = (0..300u64)
        .map(|i| (i, json!({"log": format!("small {i}"), "drop": "me"})))
        .collect();
    events.insert(10, (10, json!({"log": "x".repeat(1_100_000)})));
    let (result, _, progress) = deliver_tracked(&mut out, &batch("app", &events), 10).await;
    result.unwrap();
    assert_eq!(
        rejections(&progress),
        vec![("record_too_large".to_string(), vec![10])]
    );
    let objects = objects(&moto.endpoint, "fh-agg", "a/").await;
    assert_eq!(objects.len(), 1, "one call");
    let text = String::from_utf8(objects[0].1.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 300);
    assert_eq!(
        lines[0], "{\"log\":\"small 0\"}",
        "data_keys keeps only `log`"
    );
}

/// Issue 16 (AWS parity): a Fluent Bit config keeps each plugin's behaviour. `kinesis_firehose`
/// (C) writes keys in record order, reads `time_key_format`'s `%L` as nanoseconds and drops a
/// record over 1,000 KiB (counted as `record_too_large`); `firehose` (Go) sorts the keys (the
/// time key among them), reads `%L` as milliseconds and truncates that record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_and_go_plugin_names_keep_their_plugins_behaviour() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    create_bucket(&moto.endpoint, "fh-names").await;
    create_delivery_stream(&moto.endpoint, "c-stream", "fh-names", "c/").await;
    create_delivery_stream(&moto.endpoint, "go-stream", "fh-names", "go/").await;
    let output = |name: &str, alias: &str, stream: &str| {
        format!(
            "[OUTPUT]\n    Name {name}\n    Alias {alias}\n    Match *\n    region {REGION}\n    endpoint {}\n    \
             delivery_stream {stream}\n    time_key time\n    time_key_format %Y-%m-%dT%H:%M:%S.%L\n\n",
            proxy.endpoint
        )
    };
    let router = start_classic_router(&format!(
        "[SERVICE]\n    Grace 1\n    HTTP_Server On\n    HTTP_Listen 127.0.0.1\n    HTTP_Port 0\n\n\
         [INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n\n{}{}",
        output("kinesis_firehose", "c", "c-stream"),
        output("firehose", "go", "go-stream")
    ));
    // 2023-11-14T22:13:20.123456789Z. (`json!` maps are sorted already: the time key, last in
    // the C plugin's record order and among the keys in the Go plugin's, tells them apart;
    // aws::record's unit tests have records out of order.)
    let t = 1_700_000_000_123_456_789u64;
    let events = vec![
        (t, json!({"z": 1, "a": {"y": 2, "b": 3}, "log": "small"})),
        (t, json!({"log": "x".repeat(1_100_000)})),
    ];
    send_forward(&router.tcp_addr(), "app", &events, 2);
    let http = router.http_addr();
    eventually(Duration::from_secs(30), "both deliveries", || async {
        let samples = crate::common::scrape(&http);
        let sent = |id: &str| {
            wasm_router::ops::prometheus_text::sum(
                &samples,
                "component_sent_events_total",
                &[("component_id", id)],
            ) as u64
        };
        (sent("c") == 1
            && sent("go") == 2
            && crate::common::discarded(&samples, "c", "record_too_large") == 1)
            .then_some(())
    })
    .await;
    router.stop();

    let sent_to = |stream: &str| -> Vec<Vec<u8>> {
        proxy
            .seen_op("PutRecordBatch")
            .iter()
            .filter(|s| s.forwarded.is_some())
            .filter(|s| {
                serde_json::from_slice::<Value>(&s.body).unwrap()["DeliveryStreamName"] == stream
            })
            .flat_map(|s| firehose_records(&s.body))
            .collect()
    };
    let c = sent_to("c-stream");
    assert_eq!(
        c,
        vec![
            b"{\"a\":{\"b\":3,\"y\":2},\"log\":\"small\",\"z\":1,\"time\":\"2023-11-14T22:13:20.123456789\"}\n"
                .to_vec()
        ],
        "record order, %L in nanoseconds, the oversize record dropped"
    );
    let go = sent_to("go-stream");
    assert_eq!(go.len(), 2);
    assert_eq!(
        go[0],
        b"{\"a\":{\"b\":3,\"y\":2},\"log\":\"small\",\"time\":\"2023-11-14T22:13:20.123\",\"z\":1}\n"
    );
    assert_eq!(go[1].len(), 1_000 * 1024);
    assert!(go[1].ends_with(b"[Truncated...]\n"));
}
