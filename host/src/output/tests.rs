//! The runner: retries, deadlines, dead letters, shutdown, independence of outputs.

use super::*;
use crate::buffer::{
    BufferKind, DiskOptions, FsyncPolicy, MemoryBudget, WhenFull, memory_buffer, open_buffer,
};
use crate::event::Event;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Mutex;

/// An output that answers from a script (then succeeds) and records what it delivered.
struct Scripted {
    answers: VecDeque<Result<(), DeliveryError>>,
    delivered: Arc<Mutex<Vec<u64>>>,
    attempts: Arc<Mutex<u32>>,
}

impl Output for Scripted {
    async fn deliver(&mut self, batch: &Batch) -> Result<(), DeliveryError> {
        *self.attempts.lock().unwrap() += 1;
        let answer = self.answers.pop_front().unwrap_or(Ok(()));
        if answer.is_ok() {
            self.delivered
                .lock()
                .unwrap()
                .extend(batch.events.iter().map(|e| e.time_ns));
        }
        answer
    }
}

/// An output that never succeeds.
struct Down;

impl Output for Down {
    async fn deliver(&mut self, _batch: &Batch) -> Result<(), DeliveryError> {
        Err(DeliveryError::Retryable {
            reason: "connection refused".into(),
            after: None,
        })
    }
}

type Delivered = Arc<Mutex<Vec<u64>>>;

fn scripted(answers: Vec<Result<(), DeliveryError>>) -> (Scripted, Delivered, Arc<Mutex<u32>>) {
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let attempts = Arc::new(Mutex::new(0));
    (
        Scripted {
            answers: answers.into(),
            delivered: delivered.clone(),
            attempts: attempts.clone(),
        },
        delivered,
        attempts,
    )
}

fn batch(first: u64, n: u64) -> Batch {
    let events = (first..first + n)
        .map(|t| Event {
            time_ns: t,
            body: Bytes::from_static(b"\x81\xa1k\x01"),
        })
        .collect();
    Batch::new(Bytes::from_static(b"t"), events)
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        backoff_base: Duration::from_millis(1),
        backoff_cap: Duration::from_millis(5),
        ..RetryPolicy::default()
    }
}

fn runner(
    name: &str,
    metrics: &Arc<Metrics>,
    deadline: &watch::Sender<Option<Instant>>,
    retry: RetryPolicy,
    dead_letter: Option<DeadLetter>,
) -> OutputRunner {
    OutputRunner {
        component: Component::output(name),
        metrics: metrics.clone(),
        deadline: deadline.subscribe(),
        retry,
        dead_letter,
    }
}

fn retryable() -> Result<(), DeliveryError> {
    Err(DeliveryError::Retryable {
        reason: "503".into(),
        after: None,
    })
}

#[tokio::test]
async fn retryable_failures_are_retried_and_order_is_kept() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let out = Component::output("o");
    let (w, r) = memory_buffer(1 << 20, WhenFull::Block, out.clone(), metrics.clone());
    let (output, delivered, attempts) =
        scripted(vec![retryable(), retryable(), Ok(()), retryable()]);
    for i in 0..3 {
        w.push(batch(i * 10, 3)).await.unwrap();
    }
    drop(w);
    run_output(
        output,
        r,
        runner("o", &metrics, &deadline, fast_retry(), None),
    )
    .await;
    assert_eq!(
        *delivered.lock().unwrap(),
        vec![0, 1, 2, 10, 11, 12, 20, 21, 22]
    );
    assert_eq!(*attempts.lock().unwrap(), 6);
    assert_eq!(metrics.retries.get_or_create(&out.labels()).get(), 3);
    assert_eq!(metrics.sent_events.get_or_create(&out.labels()).get(), 9);
    assert_eq!(metrics.discarded_total(), 0);
}

#[tokio::test]
async fn permanent_failures_and_rejections_are_counted_and_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let out = Component::output("o");
    let (w, r) = memory_buffer(1 << 20, WhenFull::Block, out.clone(), metrics.clone());
    let (output, delivered, _) = scripted(vec![
        Err(DeliveryError::Permanent {
            reason: "invalid_request".into(),
            detail: "400 bad".into(),
        }),
        Err(DeliveryError::Rejected {
            events: vec![2, 0, 9],
            reason: "too_old".into(),
            detail: "expired".into(),
        }),
    ]);
    w.push(batch(0, 2)).await.unwrap();
    w.push(batch(10, 3)).await.unwrap();
    w.push(batch(20, 1)).await.unwrap();
    drop(w);
    let dl = DeadLetter::File(dead_letter::DeadLetterFile::open(&path, 1 << 20).unwrap());
    run_output(
        output,
        r,
        runner("o", &metrics, &deadline, fast_retry(), Some(dl)),
    )
    .await;
    assert_eq!(*delivered.lock().unwrap(), vec![20]);
    assert_eq!(metrics.discarded(&out, "invalid_request"), 2);
    assert_eq!(
        metrics.discarded(&out, "too_old"),
        2,
        "index 9 is not in the batch"
    );
    assert_eq!(
        metrics.sent_events.get_or_create(&out.labels()).get(),
        1 + 1
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(u64, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["time_ns"].as_u64().unwrap(),
                l["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, "invalid_request"),
            (1, "invalid_request"),
            (10, "too_old"),
            (12, "too_old")
        ]
    );
}

#[tokio::test]
async fn retry_limit_and_retry_until_give_up_with_their_reason() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let out = Component::output("o");
    let (w, r) = memory_buffer(1 << 20, WhenFull::Block, out.clone(), metrics.clone());
    w.push(batch(0, 4)).await.unwrap();
    drop(w);
    let policy = RetryPolicy {
        retry_limit: Some(3),
        ..fast_retry()
    };
    let (output, _, attempts) = scripted(vec![
        retryable(),
        retryable(),
        retryable(),
        retryable(),
        retryable(),
    ]);
    run_output(output, r, runner("o", &metrics, &deadline, policy, None)).await;
    assert_eq!(*attempts.lock().unwrap(), 4, "one try and three retries");
    assert_eq!(metrics.discarded(&out, "retries_exhausted"), 4);

    let (w, r) = memory_buffer(1 << 20, WhenFull::Block, out.clone(), metrics.clone());
    w.push(batch(0, 5)).await.unwrap();
    drop(w);
    let policy = RetryPolicy {
        retry_until: Duration::from_millis(30),
        ..fast_retry()
    };
    run_output(Down, r, runner("o", &metrics, &deadline, policy, None)).await;
    assert_eq!(metrics.discarded(&out, "retry_expired"), 5);
}

#[tokio::test]
async fn dead_letters_can_go_to_another_output_with_the_reason_added() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let (w, r) = memory_buffer(
        1 << 20,
        WhenFull::Block,
        Component::output("o"),
        metrics.clone(),
    );
    let (dlw, mut dlr) = memory_buffer(
        1 << 20,
        WhenFull::Block,
        Component::output("backup"),
        metrics.clone(),
    );
    w.push(batch(0, 2)).await.unwrap();
    drop(w);
    let (output, _, _) = scripted(vec![Err(DeliveryError::Permanent {
        reason: "bad".into(),
        detail: "d".into(),
    })]);
    let dl = DeadLetter::Output {
        name: "backup".into(),
        buffer: dlw,
    };
    run_output(
        output,
        r,
        runner("o", &metrics, &deadline, fast_retry(), Some(dl)),
    )
    .await;
    let q = dlr.pop().await.unwrap();
    assert_eq!(q.batch.len(), 2);
    let json = crate::event::json::to_json(&q.batch.events[0].body).unwrap();
    assert_eq!(
        json,
        r#"{"k":1,"dead_letter_reason":"bad","dead_letter_output":"o"}"#
    );
}

#[tokio::test]
async fn at_the_shutdown_deadline_memory_is_counted_and_disk_is_kept() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let out = Component::output("mem");
    let (w, r) = memory_buffer(1 << 20, WhenFull::Block, out.clone(), metrics.clone());
    for i in 0..5 {
        w.push(batch(i * 10, 2)).await.unwrap();
    }
    let task = tokio::spawn(run_output(
        Down,
        r,
        runner("mem", &metrics, &deadline, fast_retry(), None),
    ));
    deadline.send_replace(Some(Instant::now() + Duration::from_millis(50)));
    task.await.unwrap();
    assert_eq!(metrics.discarded(&out, "shutdown_undelivered"), 10);
    // The buffer is closed: a late push is refused and counted too.
    assert!(w.push(batch(99, 3)).await.is_err());
    assert_eq!(metrics.discarded(&out, "shutdown_undelivered"), 13);

    let dir = tempfile::tempdir().unwrap();
    let opts = DiskOptions {
        dir: dir.path().to_path_buf(),
        max_bytes: 1 << 20,
        when_full: WhenFull::Block,
        fsync: FsyncPolicy::Never,
        fsync_interval: Duration::from_secs(1),
    };
    let disk = Component::output("disk");
    let (deadline, _) = watch::channel(None);
    {
        let (w, r) = open_buffer(
            &BufferKind::Disk(opts.clone()),
            &MemoryBudget::new(1 << 20),
            disk.clone(),
            metrics.clone(),
        )
        .unwrap();
        for i in 0..5 {
            w.push(batch(i * 10, 2)).await.unwrap();
        }
        let task = tokio::spawn(run_output(
            Down,
            r,
            runner("disk", &metrics, &deadline, fast_retry(), None),
        ));
        deadline.send_replace(Some(Instant::now() + Duration::from_millis(50)));
        task.await.unwrap();
        assert_eq!(metrics.discarded(&disk, "shutdown_undelivered"), 0);
    }
    // The next start delivers all of it.
    let (output, delivered, _) = scripted(vec![]);
    let (w, r) = loop {
        match open_buffer(
            &BufferKind::Disk(opts.clone()),
            &MemoryBudget::new(1 << 20),
            disk.clone(),
            metrics.clone(),
        ) {
            Ok(pair) => break pair,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    drop(w);
    let (deadline, _) = watch::channel(None);
    run_output(
        output,
        r,
        runner("disk", &metrics, &deadline, fast_retry(), None),
    )
    .await;
    assert_eq!(delivered.lock().unwrap().len(), 10);
}

/// One output down and retrying does not hold up another: each has its own task.
#[tokio::test]
async fn an_output_in_backoff_does_not_stall_another() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let (down_w, down_r) = memory_buffer(
        1 << 20,
        WhenFull::Block,
        Component::output("down"),
        metrics.clone(),
    );
    let (up_w, up_r) = memory_buffer(
        1 << 20,
        WhenFull::Block,
        Component::output("up"),
        metrics.clone(),
    );
    let down = tokio::spawn(run_output(
        Down,
        down_r,
        runner("down", &metrics, &deadline, fast_retry(), None),
    ));
    let (output, delivered, _) = scripted(vec![]);
    let up = tokio::spawn(run_output(
        output,
        up_r,
        runner("up", &metrics, &deadline, fast_retry(), None),
    ));
    for i in 0..50 {
        down_w.push(batch(i * 10, 2)).await.unwrap();
        up_w.push(batch(i * 10, 2)).await.unwrap();
    }
    drop(up_w);
    up.await.unwrap();
    assert_eq!(delivered.lock().unwrap().len(), 100);
    assert!(!down.is_finished());
    deadline.send_replace(Some(Instant::now()));
    drop(down_w);
    down.await.unwrap();
}
