//! `kinesis_streams` against moto's Kinesis Data Streams: events sent over the forward protocol
//! are read back from every shard of a two-shard stream, each exactly once with its partition
//! key, at most 500 records per PutRecords; on partial failures only the failed records are
//! sent again; an oversize record is dropped and counted; a missing stream is dead-lettered.

use crate::common::aws;
use crate::common::fault_proxy;

use aws::*;
use fault_proxy::{Fault, FaultProxy, kinesis_records};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use wasm_router::ops::metrics::{Component, Metrics};
use wasm_router::output::aws::AwsOverrides;
use wasm_router::output::kinesis::{KinesisConfig, KinesisOutput};

/// Every record of `stream` as (shard, partition key, data), shards in id order.
async fn read_back(endpoint: &str, stream: &str) -> Vec<(String, String, Vec<u8>)> {
    stream_records(endpoint, stream)
        .await
        .into_iter()
        .flat_map(|(shard, records)| {
            records
                .into_iter()
                .map(move |(key, data)| (shard.clone(), key, data))
        })
        .collect()
}

async fn build(text: &str, metrics: std::sync::Arc<Metrics>) -> KinesisOutput {
    let config: KinesisConfig = toml::from_str(text).unwrap();
    KinesisOutput::build(
        &config,
        Component::output("kinesis_streams"),
        metrics,
        &AwsOverrides::static_credentials(ACCESS_KEY, SECRET_KEY),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_events_reach_both_shards_once_with_their_partition_keys() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    create_data_stream(&moto.endpoint, "logs", 2).await;
    let config = format!(
        r#"
[service]
grace = "30s"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[outputs]]
type = "kinesis_streams"
match = "*"
region = "{REGION}"
stream = "logs"
endpoint = "{}"
partition_key = "container_id"
time_key = "time"
time_key_format = "%Y-%m-%dT%H:%M:%S.%L"
"#,
        proxy.endpoint
    );
    let router = start_router(&config, &[]);
    let addr = router.tcp_addr();
    // 2023-11-14T22:13:20.123Z + i ms; every 100th event has no container_id (random key).
    let base = 1_700_000_000_123_000_000u64;
    let events: Vec<_> = (0..1_200u64)
        .map(|i| {
            let mut v = json!({"log": format!("line {i} é \"q\""), "source": "stdout"});
            if i % 100 != 0 {
                v["container_id"] = json!(format!("c{}", i % 10));
            }
            (base + i * 1_000_000, v)
        })
        .collect();
    send_forward(&addr, "app-firelens-1", &events, 1_200);
    let records = eventually(
        Duration::from_secs(60),
        "1,200 records in the stream",
        || {
            let endpoint = moto.endpoint.clone();
            async move {
                let records = read_back(&endpoint, "logs").await;
                (records.len() >= 1_200).then_some(records)
            }
        },
    )
    .await;
    router.stop();

    let shards: std::collections::BTreeSet<&str> =
        records.iter().map(|(s, _, _)| s.as_str()).collect();
    assert_eq!(shards.len(), 2, "the keys spread over both shards");
    let mut got: BTreeMap<u64, (String, Value)> = BTreeMap::new();
    for (_, key, data) in &records {
        let text = std::str::from_utf8(data).unwrap();
        assert!(
            text.ends_with('\n'),
            "kinesis_streams ends records with \\n"
        );
        let v: Value = serde_json::from_str(text).unwrap();
        let n: u64 = v["log"]
            .as_str()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert!(got.insert(n, (key.clone(), v)).is_none(), "event {n} twice");
    }
    assert_eq!(got.len(), 1_200, "every event once");
    for (i, (_, v)) in events.iter().enumerate() {
        let (key, record) = &got[&(i as u64)];
        let mut want = v.clone();
        let ms = 123 + i;
        want["time"] = json!(format!(
            "2023-11-14T22:13:{:02}.{:03}",
            20 + ms / 1000,
            ms % 1000
        ));
        assert_eq!(record, &want, "event {i}");
        match v["container_id"].as_str() {
            Some(id) => assert_eq!(key, id, "event {i}: the partition key is its container_id"),
            None => assert!(
                key.len() == 16 && key.chars().all(|c| c.is_ascii_hexdigit()),
                "event {i}: a random key, got {key:?}"
            ),
        }
    }
    let sizes: Vec<usize> = proxy
        .seen_op("PutRecords")
        .iter()
        .map(|c| kinesis_records(&c.body).len())
        .collect();
    assert_eq!(sizes, vec![500, 500, 200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_failures_resend_only_the_failed_records() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    create_data_stream(&moto.endpoint, "partial", 2).await;
    let metrics = Metrics::new();
    let mut out = build(
        &format!(
            "region = \"{REGION}\"\nstream = \"partial\"\nendpoint = \"{}\"\nlog_key = \"log\"\nappend_newline = false\n",
            proxy.endpoint
        ),
        metrics.clone(),
    )
    .await;
    let first: Vec<usize> = (0..500).step_by(3).collect();
    proxy.inject(
        "PutRecords",
        [
            Fault::KinesisFail(first.clone()),
            Fault::Throttle,
            Fault::KinesisFail(vec![0, 7, 499]),
            Fault::Reset,
            Fault::ServerError,
            Fault::Slow(Duration::from_millis(1200)),
            Fault::KinesisFail(vec![1]),
        ],
    );
    let now = now_ns();
    let events: Vec<_> = (0..1_200u64)
        .map(|i| (now + i, json!({"log": format!("record {i}")})))
        .collect();
    let (result, attempts) = deliver_until_done(&mut out, &batch("app", &events), 100).await;
    result.unwrap();
    assert!(attempts > 3, "{attempts}");
    let seen = proxy.seen_op("PutRecords");
    assert!(
        seen.iter().filter(|s| s.fault.is_some()).count() >= 6,
        "the faults were hit"
    );
    let mut accepted: Vec<String> = seen
        .iter()
        .filter_map(|s| s.forwarded.as_ref())
        .flat_map(|b| kinesis_records(b))
        .map(|(_, data)| String::from_utf8(data).unwrap())
        .collect();
    assert_eq!(accepted.len(), 1_200, "each record reached Kinesis once");
    accepted.sort();
    accepted.dedup();
    assert_eq!(accepted.len(), 1_200, "no record was accepted twice");
    let mut stored: Vec<String> = read_back(&moto.endpoint, "partial")
        .await
        .into_iter()
        .map(|(_, _, data)| String::from_utf8(data).unwrap())
        .collect();
    stored.sort();
    let mut want: Vec<String> = (0..1_200).map(|i| format!("record {i}")).collect();
    want.sort();
    assert_eq!(stored, want);
    // Every record a partial failure refused is counted once.
    let failed: usize = seen
        .iter()
        .filter_map(|s| match &s.fault {
            Some(Fault::KinesisFail(ix)) => {
                let sent = kinesis_records(&s.body).len();
                Some(ix.iter().filter(|&&i| i < sent).count())
            }
            _ => None,
        })
        .sum();
    assert!(failed >= first.len() + 3, "{failed}");
    let text = metrics.encode();
    assert!(
        text.contains(&format!(
            "aws_records_failed_total{{component_id=\"kinesis_streams\",operation=\"PutRecords\",outcome=\"ProvisionedThroughputExceededException\"}} {failed}"
        )),
        "{failed} records counted as refused:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_records_are_counted_and_a_missing_stream_is_dead_lettered() {
    let moto = Moto::start();
    create_data_stream(&moto.endpoint, "sizes", 2).await;
    let mut out = build(
        &format!(
            "region = \"{REGION}\"\nstream = \"sizes\"\nendpoint = \"{}\"\ndata_keys = \"log\"\n",
            moto.endpoint
        ),
        Metrics::new(),
    )
    .await;
    let mut events: Vec<_> = (0..20u64)
        .map(|i| (i, json!({"log": format!("small {i}"), "drop": "me"})))
        .collect();
    events.insert(5, (5, json!({"log": "x".repeat(1_100_000)})));
    let (result, _, progress) = deliver_tracked(&mut out, &batch("app", &events), 10).await;
    result.unwrap();
    assert_eq!(
        rejections(&progress),
        vec![("record_too_large".to_string(), vec![5])]
    );
    let records = read_back(&moto.endpoint, "sizes").await;
    assert_eq!(records.len(), 20);
    let mut lines: Vec<String> = records
        .iter()
        .map(|(_, _, d)| String::from_utf8(d.clone()).unwrap())
        .collect();
    lines.sort();
    assert_eq!(
        lines[0], "{\"log\":\"small 0\"}\n",
        "data_keys keeps only `log`"
    );

    let mut missing = build(
        &format!(
            "region = \"{REGION}\"\nstream = \"nope\"\nendpoint = \"{}\"\n",
            moto.endpoint
        ),
        Metrics::new(),
    )
    .await;
    let (result, _, progress) =
        deliver_tracked(&mut missing, &batch("app", &events[..3]), 10).await;
    result.unwrap();
    assert_eq!(
        rejections(&progress),
        vec![("stream_not_found".to_string(), vec![0, 1, 2])]
    );
}
