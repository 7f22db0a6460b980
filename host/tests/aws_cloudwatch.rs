//! `cloudwatch_logs` against moto's CloudWatch Logs: events sent over the forward protocol land
//! in order under the names the templates give; every PutLogEvents stays within the API limits
//! (10,000 events, 1,048,576 bytes, < 24 h); faults between the output and moto (throttling,
//! 500s, resets, slow responses) lose nothing and duplicate nothing; what the API rejects is
//! reported per event.

use crate::common;
use crate::common::aws;
use crate::common::fault_proxy;

use aws::*;
use fault_proxy::{Fault, FaultProxy, cloudwatch_events};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use wasm_router::ops::metrics::{Component, Metrics};
use wasm_router::output::aws::{AwsOverrides, EcsMetadata};
use wasm_router::output::cloudwatch::{CloudWatchLogsConfig, CloudWatchLogsOutput};
use wasm_router::output::{DeliveryError, DeliveryProgress, Output};

const HOUR_NS: u64 = 3_600_000_000_000;
const TASK_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123abcd";

async fn output(endpoint: &str, extra: &str) -> CloudWatchLogsOutput {
    let text = format!("region = \"{REGION}\"\nendpoint = \"{endpoint}\"\n{extra}");
    let config: CloudWatchLogsConfig = toml::from_str(&text).unwrap();
    let metrics = Metrics::new();
    CloudWatchLogsOutput::build(
        &config,
        Component::output("cloudwatch_logs"),
        metrics,
        &AwsOverrides::static_credentials(ACCESS_KEY, SECRET_KEY),
    )
    .await
    .unwrap()
}

fn message_values(events: &[(i64, String)]) -> Vec<(i64, Value)> {
    events
        .iter()
        .map(|(t, m)| {
            (
                *t,
                serde_json::from_str(m).unwrap_or_else(|_| Value::String(m.clone())),
            )
        })
        .collect()
}

/// What CloudWatch should hold for `events`: sorted by time (stable), ms timestamps.
fn expected(events: &[(u64, Value)]) -> Vec<(i64, Value)> {
    let mut e: Vec<(i64, Value)> = events
        .iter()
        .map(|(t, v)| ((t / 1_000_000) as i64, v.clone()))
        .collect();
    e.sort_by_key(|(t, _)| *t);
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_events_land_in_order_under_templated_names_within_every_limit() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    let config = format!(
        r#"
[service]
grace = "30s"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[outputs]]
type = "cloudwatch"
match = "app-firelens-*"
region = "{REGION}"
endpoint = "{}"
log_group_name = "/ecs/$(tag[1])"
log_stream_name = "$(ecs_task_id)/$(case)"
auto_create_group = true
log_retention_days = 7
"#,
        proxy.endpoint
    );
    let router = start_router(&config, &[("ECS_TASK_ARN", TASK_ARN)]);
    let addr = router.tcp_addr();

    let now = now_ns() - HOUR_NS / 60;
    let mut count_case = Vec::new();
    for i in 0..10_001u64 {
        count_case.push((
            now - 10_001 * 1_000_000 + i * 1_000_000,
            json!({"case": "count", "log": format!("c{i}")}),
        ));
    }
    // 1,100 events of ~1 KB: 1.1 MB, over PutLogEvents' 1,048,576 bytes.
    let pad = "p".repeat(1000);
    let bytes_case: Vec<_> = (0..1_100u64)
        .map(|i| {
            (
                now - 1_100_000_000 + i * 1_000_000,
                json!({"case": "bytes", "log": format!("b{i} {pad}")}),
            )
        })
        .collect();
    // 26 events an hour apart: a 25-hour span, over PutLogEvents' 24 hours. Sent newest first.
    let span_case: Vec<_> = (0..26u64)
        .rev()
        .map(|h| {
            (
                now - h * HOUR_NS,
                json!({"case": "span", "log": format!("h{h}")}),
            )
        })
        .collect();
    let tag = "app-firelens-0123abcd.web";
    // One forward request each, so each case reaches the output as one batch.
    send_forward(&addr, tag, &count_case, count_case.len());
    send_forward(&addr, tag, &bytes_case, bytes_case.len());
    send_forward(&addr, tag, &span_case, span_case.len());

    for (case, sent) in [
        ("count", &count_case),
        ("bytes", &bytes_case),
        ("span", &span_case),
    ] {
        let stream = format!("0123abcd/{case}");
        let got = wait_for_log_events(
            &moto.endpoint,
            "/ecs/web",
            &stream,
            sent.len(),
            Duration::from_secs(120),
        )
        .await;
        assert_eq!(
            message_values(&got),
            expected(sent),
            "stream {stream}: every event once, in time order"
        );
    }
    router.stop();

    let puts = proxy.seen_op("PutLogEvents");
    let mut calls_per_stream: BTreeMap<String, usize> = BTreeMap::new();
    let mut forwarded = 0;
    for put in &puts {
        let body: Value = serde_json::from_slice(&put.body).unwrap();
        let events = cloudwatch_events(&put.body);
        forwarded += events.len();
        let bytes: usize = events.iter().map(|(_, m)| m.len() + 26).sum();
        assert!(
            events.len() <= 10_000,
            "{} events in one PutLogEvents",
            events.len()
        );
        assert!(bytes <= 1_048_576, "{bytes} bytes in one PutLogEvents");
        let span = events.last().unwrap().0 - events[0].0;
        assert!(span < 24 * 3_600_000, "a PutLogEvents spanning {span} ms");
        assert!(
            events.windows(2).all(|w| w[0].0 <= w[1].0),
            "PutLogEvents events must be in time order"
        );
        *calls_per_stream
            .entry(body["logStreamName"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(forwarded, 10_001 + 1_100 + 26, "no event was sent twice");
    assert_eq!(
        calls_per_stream.get("0123abcd/count"),
        Some(&2),
        "10,001 events need two calls"
    );
    assert_eq!(
        calls_per_stream.get("0123abcd/bytes"),
        Some(&2),
        "1.1 MB needs two calls"
    );
    assert_eq!(
        calls_per_stream.get("0123abcd/span"),
        Some(&2),
        "25 hours need two calls"
    );
    let groups = logs_client(&moto.endpoint)
        .describe_log_groups()
        .log_group_name_prefix("/ecs/web")
        .send()
        .await
        .unwrap();
    assert_eq!(
        groups.log_groups()[0].retention_in_days(),
        Some(7),
        "log_retention_days applies to created groups"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_errors_resets_and_slow_responses_lose_and_duplicate_nothing() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    let mut out = output(&proxy.endpoint, "log_group_name = \"faults\"\nlog_stream_name = \"s\"\nauto_create_group = true\nlog_key = \"log\"\n").await;
    proxy.inject("CreateLogStream", [Fault::Throttle, Fault::Reset]);
    proxy.inject("CreateLogGroup", [Fault::ServerError]);
    proxy.inject(
        "PutLogEvents",
        [
            Fault::Throttle,
            Fault::ServerError,
            Fault::Reset,
            Fault::Slow(Duration::from_millis(1500)),
            Fault::Throttle,
        ],
    );
    let start = now_ns() - HOUR_NS;
    let events: Vec<_> = (0..25_000u64)
        .map(|i| (start + i * 1_000_000, json!({"log": format!("line {i}")})))
        .collect();
    let (result, attempts) = deliver_until_done(&mut out, &batch("app", &events), 100).await;
    result.unwrap();
    assert!(
        attempts >= 6,
        "every injected failure costs a retry ({attempts} attempts)"
    );
    assert_eq!(proxy.pending_faults("PutLogEvents"), 0);

    let got = log_events(&moto.endpoint, "faults", "s").await;
    let want: Vec<(i64, String)> = events
        .iter()
        .map(|(t, v)| {
            (
                (t / 1_000_000) as i64,
                v["log"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got.len(), want.len(), "nothing lost, nothing duplicated");
    assert_eq!(got, want);
    let forwarded: usize = proxy
        .seen_op("PutLogEvents")
        .iter()
        .filter_map(|s| s.forwarded.as_ref())
        .map(|b| cloudwatch_events(b).len())
        .sum();
    assert_eq!(forwarded, 25_000, "no accepted PutLogEvents was sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_and_unsendable_events_are_reported_one_by_one() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    let mut out = output(&proxy.endpoint, "log_group_name = \"rej\"\nlog_stream_name = \"s\"\nauto_create_group = true\nlog_key = \"log\"\n").await;
    let now = now_ns();
    let mut events = vec![
        (now - 15 * 24 * HOUR_NS, json!({"log": "fifteen days old"})),
        (now + 3 * HOUR_NS, json!({"log": "three hours ahead"})),
        (now - HOUR_NS, json!({"msg": "no log key"})),
        (now - HOUR_NS, json!({"log": ""})),
    ];
    for i in 0..10u64 {
        events.push((
            now - HOUR_NS + i * 1_000_000,
            json!({"log": format!("ok {i}")}),
        ));
    }
    // CloudWatch rejects the first (oldest) one as too old and the last one as too new.
    proxy.inject(
        "PutLogEvents",
        [Fault::CloudWatchReject {
            too_old: 1,
            too_new: 1,
        }],
    );
    let (result, _, progress) = deliver_tracked(&mut out, &batch("app", &events), 10).await;
    result.unwrap();
    // Each event under its own reason.
    assert_eq!(
        rejections(&progress),
        vec![
            ("empty_message".to_string(), vec![3]),
            ("log_key_missing".to_string(), vec![2]),
            ("rejected_too_new".to_string(), vec![13]),
            ("rejected_too_old".to_string(), vec![4]),
            ("too_new".to_string(), vec![1]),
            ("too_old".to_string(), vec![0]),
        ]
    );
    assert_eq!(progress.delivered_count(), 8);
    let got: Vec<String> = log_events(&moto.endpoint, "rej", "s")
        .await
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(got, (1..9).map(|i| format!("ok {i}")).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_and_streams_are_created_once_and_recreated_when_deleted() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    let now = now_ns() - HOUR_NS;
    let one = |i: u64| vec![(now + i, json!({"log": format!("e{i}")}))];

    let mut strict = output(
        &proxy.endpoint,
        "log_group_name = \"missing\"\nlog_stream_name = \"s\"\n",
    )
    .await;
    // A missing group that may not be created fails that destination only: the runner sets
    // its events aside and retries them (someone may create the group).
    let mut progress = DeliveryProgress::new(1);
    match strict.deliver(&batch("app", &one(0)), &mut progress).await {
        Err(DeliveryError::Retryable { reason, .. }) => {
            assert!(reason.contains("auto_create_group"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        progress.failing_destinations()[0].0,
        "group \"missing\" stream \"s\""
    );
    assert_eq!(progress.pending_count(), 1);

    let mut out = output(
        &proxy.endpoint,
        "log_group_name = \"made\"\nlog_stream_name = \"s\"\nauto_create_group = \"On\"\nnew_log_group_tags = \"team=core,env=test\"\nlog_format = \"json/emf\"\n",
    )
    .await;
    for i in 1..4 {
        deliver_until_done(&mut out, &batch("app", &one(i)), 5)
            .await
            .0
            .unwrap();
    }
    // Strict output: one try. Here: one try, CreateLogGroup, one more try; then remembered.
    assert_eq!(
        proxy.seen_op("CreateLogStream").len(),
        3,
        "streams are created once and remembered"
    );
    assert_eq!(proxy.seen_op("CreateLogGroup").len(), 1);
    #[allow(deprecated)] // moto has no ListTagsForResource for log groups
    let tags = logs_client(&moto.endpoint)
        .list_tags_log_group()
        .log_group_name("made")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags.tags().and_then(|t| t.get("team")).map(String::as_str),
        Some("core")
    );
    assert!(
        proxy
            .seen_op("PutLogEvents")
            .iter()
            .all(|s| s.header("x-amzn-logs-format") == Some("json/emf"))
    );

    logs_client(&moto.endpoint)
        .delete_log_stream()
        .log_group_name("made")
        .log_stream_name("s")
        .send()
        .await
        .unwrap();
    deliver_until_done(&mut out, &batch("app", &one(4)), 5)
        .await
        .0
        .unwrap();
    let got: Vec<String> = log_events(&moto.endpoint, "made", "s")
        .await
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(got.len(), 1, "the stream was recreated: {got:?}");
    assert!(got[0].contains("e4"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_accessor_templates_fall_back_and_role_arn_is_assumed() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    let extra = format!(
        "log_group_name = \"/fallback/$TAG\"\nlog_group_template = \"/k8s/$kubernetes['namespace_name']\"\n\
         log_stream_template = \"$TAG[1].$(ecs_cluster)\"\nlog_stream_name = \"$(missing)\"\ndefault_log_stream_name = \"default-stream\"\n\
         auto_create_group = true\nrole_arn = \"arn:aws:iam::123456789012:role/cross\"\nexternal_id = \"ext-42\"\nsts_endpoint = \"{}\"\n",
        proxy.endpoint
    );
    let out = output(&proxy.endpoint, &extra).await;
    let mut out = out.with_ecs_metadata(EcsMetadata {
        cluster: Some("prod".into()),
        ..Default::default()
    });
    let now = now_ns() - HOUR_NS;
    let events = vec![
        (
            now,
            json!({"kubernetes": {"namespace_name": "payments"}, "log": "a"}),
        ),
        (now + 1, json!({"log": "b"})),
    ];
    deliver_until_done(&mut out, &batch("kube.web", &events), 5)
        .await
        .0
        .unwrap();
    let mut other = output(&proxy.endpoint, &extra).await;
    deliver_until_done(&mut other, &batch("kube.web", &events[1..]), 5)
        .await
        .0
        .unwrap();

    assert_eq!(
        log_streams(&moto.endpoint, "/k8s/payments").await,
        vec!["web.prod"]
    );
    assert_eq!(
        log_streams(&moto.endpoint, "/fallback/kube.web").await,
        vec!["default-stream", "web.prod"]
    );
    let assumed = proxy.seen_op("AssumeRole");
    assert!(
        !assumed.is_empty(),
        "role_arn is assumed through sts_endpoint"
    );
    let body = String::from_utf8_lossy(&assumed[0].body);
    assert!(
        body.contains("ExternalId=ext-42") && body.contains("role%2Fcross"),
        "{body}"
    );
}

/// A router with one `cloudwatch` output named `cw` (log group from the tag, stream `s`,
/// `log_key = "log"`) sending through `proxy`, with its HTTP server on, fast retries and the
/// output keys in `extra`.
fn isolated_router(proxy: &FaultProxy, extra: &str) -> common::RouterProcess {
    let config = format!(
        r#"
[service]
grace = "1s"
http_listen = "127.0.0.1:0"
retry_backoff_base = "20ms"
retry_backoff_cap = "200ms"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[outputs]]
type = "cloudwatch"
name = "cw"
match = "*"
region = "{REGION}"
endpoint = "{}"
log_group_name = "$(tag)"
log_stream_name = "s"
auto_create_group = true
log_key = "log"
{extra}
"#,
        proxy.endpoint
    );
    start_router(&config, &[])
}

/// `n` events of tag-free records `{"log": "<prefix><i>"}`, a millisecond apart, an hour ago.
fn numbered(prefix: &str, n: u64) -> Vec<(u64, Value)> {
    let start = now_ns() - HOUR_NS;
    (0..n)
        .map(|i| {
            (
                start + i * 1_000_000,
                json!({"log": format!("{prefix}{i}")}),
            )
        })
        .collect()
}

/// The messages of group `group` stream `s` in moto (none while the stream does not exist).
async fn messages(moto: &Moto, group: &str) -> Vec<String> {
    let streams = logs_client(&moto.endpoint)
        .describe_log_streams()
        .log_group_name(group)
        .send()
        .await;
    if !streams.is_ok_and(|s| {
        s.log_streams()
            .iter()
            .any(|s| s.log_stream_name() == Some("s"))
    }) {
        return Vec::new();
    }
    log_events(&moto.endpoint, group, "s")
        .await
        .into_iter()
        .map(|(_, m)| m)
        .collect()
}

/// Issue 13 (accounting): a batch mixing events CloudWatch would refuse for different reasons
/// is counted per reason, not all under the most frequent one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refused_event_is_counted_under_its_own_reason() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    let router = isolated_router(&proxy, "");
    let now = now_ns();
    let events = vec![
        (now - 15 * 24 * HOUR_NS, json!({"log": "fifteen days old"})),
        (now + 3 * HOUR_NS, json!({"log": "three hours ahead"})),
        (now + 4 * HOUR_NS, json!({"log": "four hours ahead"})),
        (now - HOUR_NS, json!({"msg": "no log key"})),
        (now - HOUR_NS, json!({"log": ""})),
        (now - HOUR_NS, json!({"log": "ok 1"})),
        (now - HOUR_NS + 1_000_000, json!({"log": "ok 2"})),
    ];
    send_forward(&router.tcp_addr(), "mixed", &events, 100);
    let http = router.http_addr();
    let samples = eventually(Duration::from_secs(30), "the delivery", || async {
        let samples = common::scrape(&http);
        let sent = wasm_router::ops::prometheus_text::sum(
            &samples,
            "component_sent_events_total",
            &[("component_id", "cw")],
        );
        (sent == 2.0).then_some(samples)
    })
    .await;
    let counts: Vec<(&str, u64)> = ["too_old", "too_new", "log_key_missing", "empty_message"]
        .into_iter()
        .map(|reason| (reason, common::discarded(&samples, "cw", reason)))
        .collect();
    assert_eq!(
        counts,
        vec![
            ("too_old", 1),
            ("too_new", 2),
            ("log_key_missing", 1),
            ("empty_message", 1)
        ]
    );
    assert_eq!(messages(&moto, "mixed").await, ["ok 1", "ok 2"]);
    router.stop();
}

/// Issue 13 (accounting): a delivery of 25,000 events goes out as three PutLogEvents calls;
/// the first is accepted, then CloudWatch throttles until the retry limit. Only the 15,000
/// events not delivered are counted as `retries_exhausted`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_up_after_a_partial_delivery_counts_only_what_was_not_delivered() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    let router = isolated_router(&proxy, "retry_limit = 2");
    proxy.inject("PutLogEvents", [Fault::Slow(Duration::ZERO)]);
    proxy.always("PutLogEvents", Fault::Throttle);
    send_forward(
        &router.tcp_addr(),
        "partial",
        &numbered("p", 25_000),
        25_000,
    );
    let http = router.http_addr();
    let samples = eventually(Duration::from_secs(60), "the give-up", || async {
        let samples = common::scrape(&http);
        (common::discarded(&samples, "cw", "retries_exhausted") > 0).then_some(samples)
    })
    .await;
    let sent = wasm_router::ops::prometheus_text::sum(
        &samples,
        "component_sent_events_total",
        &[("component_id", "cw")],
    );
    assert_eq!(
        (
            sent as u64,
            common::discarded(&samples, "cw", "retries_exhausted")
        ),
        (10_000, 15_000)
    );
    assert_eq!(
        proxy.seen_op("PutLogEvents").len(),
        1 + 3,
        "the accepted call, then the second call three times (one try, two retries)"
    );
    assert_eq!(messages(&moto, "partial").await.len(), 10_000);
    router.stop();
}

/// Issue 13 (accounting, shutdown): SIGTERM while the second of three PutLogEvents calls of a
/// disk-buffered delivery hangs. The first call's 10,000 events are not sent again after the
/// restart; the other 15,000 are, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_cut_by_sigterm_is_not_resent_after_the_restart() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    let buffers = tempfile::tempdir().unwrap();
    let disk = format!(
        "buffer = {{ type = \"disk\", path = \"{}\" }}",
        buffers.path().display()
    );
    proxy.inject("PutLogEvents", [Fault::Slow(Duration::ZERO), Fault::Hang]);
    let mut router = isolated_router(&proxy, &disk);
    send_forward(&router.tcp_addr(), "cut", &numbered("c", 25_000), 25_000);
    eventually(Duration::from_secs(30), "the second call", || async {
        (proxy.seen_op("PutLogEvents").len() == 2).then_some(())
    })
    .await;
    router.terminate();
    let log = router.log_text();
    assert!(
        log.contains("what it delivered is not sent again"),
        "the cut is logged:\n{log}"
    );
    assert_eq!(messages(&moto, "cut").await.len(), 10_000);

    let router = isolated_router(&proxy, &disk);
    let got = eventually(Duration::from_secs(60), "the rest", || async {
        let got = messages(&moto, "cut").await;
        (got.len() >= 25_000).then_some(got)
    })
    .await;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &got {
        *counts.entry(m.as_str()).or_default() += 1;
    }
    let duplicates = got.len() - counts.len();
    assert_eq!((counts.len(), duplicates), (25_000, 0), "0 lost, 0 twice");
    let forwarded: usize = proxy
        .seen_op("PutLogEvents")
        .iter()
        .filter_map(|s| s.forwarded.as_deref())
        .map(|body| cloudwatch_events(body).len())
        .sum();
    assert_eq!(forwarded, 25_000, "no accepted call was sent again");
    router.stop();
}

/// Issue 13 (destination isolation): IAM denies one templated log group. Its events are set
/// aside with their own retries while another group's events are delivered; once the group is
/// allowed, its events follow, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_log_group_does_not_hold_up_another() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    proxy.deny_log_group("denied");
    let router = isolated_router(&proxy, "");
    let addr = router.tcp_addr();
    let denied = numbered("d", 6);
    let allowed = numbered("a", 6);
    for (d, a) in denied.iter().zip(&allowed) {
        send_forward(&addr, "denied", std::slice::from_ref(d), 1);
        send_forward(&addr, "allowed", std::slice::from_ref(a), 1);
    }
    let want = |prefix: &str| (0..6).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>();
    let got = eventually(Duration::from_secs(30), "the allowed group", || async {
        let got = messages(&moto, "allowed").await;
        (got.len() >= 6).then_some(got)
    })
    .await;
    assert_eq!(got, want("a"));
    // Delivered while the denied group is still failing.
    let samples = common::scrape(&router.http_addr());
    assert_eq!(
        wasm_router::ops::prometheus_text::sum(
            &samples,
            "output_set_aside_events",
            &[("component_id", "cw")]
        ),
        6.0,
        "the denied group's events wait, set aside"
    );
    assert!(
        proxy
            .seen()
            .iter()
            .any(|s| s.fault == Some(Fault::AccessDenied)),
        "the proxy denied the group"
    );
    assert_eq!(common::discarded(&samples, "cw", "retry_expired"), 0);

    proxy.allow_log_group("denied");
    let got = eventually(Duration::from_secs(30), "the denied group", || async {
        let got = messages(&moto, "denied").await;
        (got.len() >= 6).then_some(got)
    })
    .await;
    assert_eq!(got, want("d"), "in order, once");
    router.stop();
}

/// Issue 16 (AWS parity): with `auto_create_group false` a missing log group is not dropped at
/// once. As in Fluent Bit, its events are retried `Retry_Limit` times — each attempt tries to
/// create the stream again, in case someone created the group — and then counted as
/// `retries_exhausted`; the output's other group is delivered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_group_is_retried_per_retry_limit_then_counted() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint);
    logs_client(&moto.endpoint)
        .create_log_group()
        .log_group_name("present")
        .send()
        .await
        .unwrap();
    let router = start_classic_router(&format!(
        "[SERVICE]\n    Grace 1\n    HTTP_Server On\n    HTTP_Listen 127.0.0.1\n    HTTP_Port 0\n\n\
         [INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n\n\
         [OUTPUT]\n    Name cloudwatch\n    Alias cw\n    Match *\n    region {REGION}\n    endpoint {}\n    \
         log_group_name $(tag)\n    log_stream_name s\n    auto_create_group false\n    log_key log\n    Retry_Limit 2\n",
        proxy.endpoint
    ));
    let addr = router.tcp_addr();
    send_forward(&addr, "missing", &numbered("m", 3), 3);
    send_forward(&addr, "present", &numbered("p", 3), 3);
    let http = router.http_addr();
    let samples = eventually(Duration::from_secs(30), "the give-up", || async {
        let samples = common::scrape(&http);
        (common::discarded(&samples, "cw", "retries_exhausted") > 0).then_some(samples)
    })
    .await;
    assert_eq!(common::discarded(&samples, "cw", "retries_exhausted"), 3);
    let creates = proxy
        .seen_op("CreateLogStream")
        .iter()
        .filter(|s| String::from_utf8_lossy(&s.body).contains("\"missing\""))
        .count();
    assert_eq!(creates, 3, "one try and two retries (Retry_Limit 2)");
    assert!(proxy.seen_op("CreateLogGroup").is_empty());
    assert_eq!(messages(&moto, "present").await, ["p0", "p1", "p2"]);
    router.stop();
}
