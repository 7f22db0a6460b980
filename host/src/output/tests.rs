//! The runner: retries, deadlines, dead letters, shutdown, independence of outputs, merging of
//! the batches that wait behind a delivery.

use super::*;
use crate::buffer::{
    BufferKind, DiskOptions, FsyncPolicy, MemoryBudget, WhenFull, memory_buffer, open_buffer,
};
use crate::event::Event;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// One scripted attempt: mark these events in the progress, then answer `result`.
struct Answer {
    delivered: Vec<usize>,
    rejected: Vec<(Vec<usize>, &'static str)>,
    result: Result<(), DeliveryError>,
}

impl From<Result<(), DeliveryError>> for Answer {
    fn from(result: Result<(), DeliveryError>) -> Self {
        Answer {
            delivered: Vec::new(),
            rejected: Vec::new(),
            result,
        }
    }
}

impl Answer {
    /// Play this answer on `progress`; the times of the events it delivers go to `delivered`.
    fn play(
        self,
        batch: &Batch,
        progress: &mut DeliveryProgress,
        delivered: &Mutex<Vec<u64>>,
    ) -> Result<(), DeliveryError> {
        let marked: Vec<usize> = self
            .delivered
            .iter()
            .copied()
            .filter(|&i| progress.is_pending(i))
            .collect();
        progress.delivered(marked.iter().copied());
        for (events, reason) in self.rejected {
            progress.reject(events, reason, || format!("{reason} detail"));
        }
        let mut times: Vec<usize> = marked;
        if self.result.is_ok() {
            times.extend(progress.pending());
            times.sort_unstable();
        }
        delivered
            .lock()
            .unwrap()
            .extend(times.into_iter().map(|i| batch.events[i].time_ns));
        self.result
    }
}

/// An output that answers from a script (then succeeds) and records what it delivered.
struct Scripted {
    answers: VecDeque<Answer>,
    delivered: Arc<Mutex<Vec<u64>>>,
    attempts: Arc<Mutex<u32>>,
}

impl Output for Scripted {
    async fn deliver(
        &mut self,
        batch: &Batch,
        progress: &mut DeliveryProgress,
    ) -> Result<(), DeliveryError> {
        *self.attempts.lock().unwrap() += 1;
        let answer = self.answers.pop_front().unwrap_or(Ok(()).into());
        answer.play(batch, progress, &self.delivered)
    }
}

/// An output that never succeeds.
struct Down;

impl Output for Down {
    async fn deliver(
        &mut self,
        _batch: &Batch,
        _progress: &mut DeliveryProgress,
    ) -> Result<(), DeliveryError> {
        Err(DeliveryError::Retryable {
            reason: "connection refused".into(),
            after: None,
        })
    }
}

type Delivered = Arc<Mutex<Vec<u64>>>;

fn scripted(answers: Vec<Result<(), DeliveryError>>) -> (Scripted, Delivered, Arc<Mutex<u32>>) {
    scripted_answers(answers.into_iter().map(Answer::from).collect())
}

fn scripted_answers(answers: Vec<Answer>) -> (Scripted, Delivered, Arc<Mutex<u32>>) {
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
    tagged("t", first, n)
}

/// `n` events under `tag`, with times `first..first + n`.
fn tagged(tag: &'static str, first: u64, n: u64) -> Batch {
    let events = (first..first + n)
        .map(|t| Event {
            time_ns: t,
            body: Bytes::from_static(b"\x81\xa1k\x01"),
        })
        .collect();
    Batch::new(Bytes::from_static(tag.as_bytes()), events)
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
        window: WindowLength::new(Duration::ZERO),
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
    // Tags of their own, so that each batch is a delivery of its own.
    for (i, tag) in ["a", "b", "c"].into_iter().enumerate() {
        w.push(tagged(tag, i as u64 * 10, 3)).await.unwrap();
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
    let (output, delivered, _) = scripted_answers(vec![
        Err(DeliveryError::Permanent {
            reason: "invalid_request".into(),
            detail: "400 bad".into(),
        })
        .into(),
        Answer {
            delivered: vec![],
            rejected: vec![(vec![2, 0, 9], "too_old")],
            result: Ok(()),
        },
    ]);
    // Tags of their own, so that each batch is a delivery of its own.
    w.push(tagged("a", 0, 2)).await.unwrap();
    w.push(tagged("b", 10, 3)).await.unwrap();
    w.push(tagged("c", 20, 1)).await.unwrap();
    drop(w);
    let dl = DeadLetter::File(dead_letter::DeadLetterFile::open(&path, 1 << 20).unwrap());
    run_output(
        output,
        r,
        runner("o", &metrics, &deadline, fast_retry(), Some(dl)),
    )
    .await;
    assert_eq!(*delivered.lock().unwrap(), vec![11, 20]);
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

/// An output whose first delivery waits until the test releases it; then it answers from a
/// script (then succeeds). Records the batch of every attempt.
struct Held {
    started: Option<oneshot::Sender<()>>,
    release: Option<oneshot::Receiver<()>>,
    answers: VecDeque<Answer>,
    attempts: Arc<Mutex<Vec<Batch>>>,
}

impl Output for Held {
    async fn deliver(
        &mut self,
        batch: &Batch,
        progress: &mut DeliveryProgress,
    ) -> Result<(), DeliveryError> {
        if let (Some(started), Some(release)) = (self.started.take(), self.release.take()) {
            let _ = started.send(());
            let _ = release.await;
        }
        self.attempts.lock().unwrap().push(batch.clone());
        let answer = self.answers.pop_front().unwrap_or(Ok(()).into());
        answer.play(batch, progress, &Mutex::default())
    }
}

/// Run an output whose first delivery (of `first`) is held while `behind` is pushed into its
/// memory buffer, then released; returns every attempt's batch once the buffer is drained.
async fn deliver_behind_a_held_one(
    first: Batch,
    behind: Vec<Batch>,
    answers: Vec<Answer>,
    runner: OutputRunner,
) -> Vec<Batch> {
    let (w, r) = memory_buffer(
        64 << 20,
        WhenFull::Block,
        runner.component.clone(),
        runner.metrics.clone(),
    );
    let (started_tx, started_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let output = Held {
        started: Some(started_tx),
        release: Some(release_rx),
        answers: answers.into(),
        attempts: attempts.clone(),
    };
    w.push(first).await.unwrap();
    let task = tokio::spawn(run_output(output, r, runner));
    started_rx.await.unwrap();
    for b in behind {
        w.push(b).await.unwrap();
    }
    release_tx.send(()).unwrap();
    drop(w);
    task.await.unwrap();
    std::mem::take(&mut *attempts.lock().unwrap())
}

fn times(batch: &Batch) -> Vec<u64> {
    batch.events.iter().map(|e| e.time_ns).collect()
}

#[tokio::test]
async fn batches_waiting_behind_a_delivery_go_out_as_one() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let out = Component::output("o");
    let behind = (1..=50).map(|i| batch(i * 10, 2)).collect();
    let attempts = deliver_behind_a_held_one(
        batch(0, 2),
        behind,
        Vec::new(),
        runner("o", &metrics, &deadline, fast_retry(), None),
    )
    .await;
    assert_eq!(attempts.len(), 2);
    assert_eq!(times(&attempts[0]), vec![0, 1]);
    let expected: Vec<u64> = (1..=50).flat_map(|i| [i * 10, i * 10 + 1]).collect();
    assert_eq!(times(&attempts[1]), expected);
    assert_eq!(&attempts[1].tag[..], b"t");
    assert_eq!(metrics.sent_events.get_or_create(&out.labels()).get(), 102);
    assert_eq!(metrics.discarded_total(), 0);
    assert_eq!(
        metrics.buffer_events.get_or_create(&out.labels()).get(),
        0,
        "every merged batch was released"
    );
}

#[tokio::test]
async fn each_tag_is_merged_into_its_own_delivery_in_order() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let behind = vec![
        tagged("t", 10, 1),
        tagged("t", 20, 1),
        tagged("u", 30, 1),
        tagged("u", 40, 1),
        tagged("t", 50, 1),
        tagged("t", 60, 2),
    ];
    let attempts = deliver_behind_a_held_one(
        batch(0, 2),
        behind,
        Vec::new(),
        runner("o", &metrics, &deadline, fast_retry(), None),
    )
    .await;
    let got: Vec<(&[u8], Vec<u64>)> = attempts.iter().map(|b| (&b.tag[..], times(b))).collect();
    assert_eq!(
        got,
        vec![
            (&b"t"[..], vec![0, 1]),
            (&b"t"[..], vec![10, 20, 50, 60, 61]),
            (&b"u"[..], vec![30, 40]),
        ]
    );
    assert_eq!(
        metrics
            .sent_events
            .get_or_create(&Component::output("o").labels())
            .get(),
        9
    );
}

#[tokio::test]
async fn merging_stops_at_the_event_cap() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let per_batch = MAX_MERGED_EVENTS as u64 / 10;
    let mut behind: Vec<Batch> = (0..25)
        .map(|i| batch(10 + i * per_batch, per_batch))
        .collect();
    let after = 10 + 25 * per_batch;
    // Larger than the cap on its own: it goes alone, as it came.
    behind.push(batch(after, MAX_MERGED_EVENTS as u64 + 1));
    behind.push(batch(after + MAX_MERGED_EVENTS as u64 + 1, 1));
    let attempts = deliver_behind_a_held_one(
        batch(0, 2),
        behind,
        Vec::new(),
        runner("o", &metrics, &deadline, fast_retry(), None),
    )
    .await;
    let sizes: Vec<usize> = attempts.iter().map(Batch::len).collect();
    let cap = MAX_MERGED_EVENTS;
    assert_eq!(sizes, vec![2, cap, cap, cap / 2, cap + 1, 1]);
    let all: Vec<u64> = attempts.iter().flat_map(times).collect();
    let expected: Vec<u64> = [0, 1]
        .into_iter()
        .chain(10..after + MAX_MERGED_EVENTS as u64 + 2)
        .collect();
    assert_eq!(all, expected, "every event once, in order");
}

#[tokio::test]
async fn merging_stops_at_the_body_bytes_cap() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let body = Bytes::from(vec![0xc0; MAX_MERGED_BODY_BYTES / 4]);
    let behind = (1..=10)
        .map(|t| {
            let event = Event {
                time_ns: t,
                body: body.clone(),
            };
            Batch::new(Bytes::from_static(b"t"), vec![event])
        })
        .collect();
    let attempts = deliver_behind_a_held_one(
        batch(0, 1),
        behind,
        Vec::new(),
        runner("o", &metrics, &deadline, fast_retry(), None),
    )
    .await;
    let got: Vec<Vec<u64>> = attempts.iter().map(times).collect();
    assert_eq!(
        got,
        vec![vec![0], vec![1, 2, 3, 4], vec![5, 6, 7, 8], vec![9, 10]]
    );
}

/// Five batches of three events wait behind the held delivery of event 0 and are merged.
fn fifteen_behind() -> Vec<Batch> {
    (1..=5).map(|i| batch(i * 10, 3)).collect()
}

#[tokio::test]
async fn a_merged_batch_is_retried_as_one() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let out = Component::output("o");
    let attempts = deliver_behind_a_held_one(
        batch(0, 1),
        fifteen_behind(),
        vec![Ok(()).into(), retryable().into(), retryable().into()],
        runner("o", &metrics, &deadline, fast_retry(), None),
    )
    .await;
    let sizes: Vec<usize> = attempts.iter().map(Batch::len).collect();
    assert_eq!(sizes, vec![1, 15, 15, 15]);
    assert_eq!(
        attempts[1], attempts[3],
        "a retry hands over the same batch"
    );
    assert_eq!(metrics.retries.get_or_create(&out.labels()).get(), 2);
    assert_eq!(metrics.sent_events.get_or_create(&out.labels()).get(), 16);
    assert_eq!(metrics.discarded_total(), 0);
}

#[tokio::test]
async fn a_merged_batch_given_up_counts_and_dead_letters_each_event_once() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let out = Component::output("o");
    let (dlw, mut dlr) = memory_buffer(
        1 << 20,
        WhenFull::Block,
        Component::output("backup"),
        metrics.clone(),
    );
    let dead_letter = DeadLetter::Output {
        name: "backup".into(),
        buffer: dlw,
    };
    let policy = RetryPolicy {
        retry_limit: Some(2),
        ..fast_retry()
    };
    let attempts = deliver_behind_a_held_one(
        batch(0, 1),
        fifteen_behind(),
        [Ok(()), retryable(), retryable(), retryable(), retryable()]
            .into_iter()
            .map(Answer::from)
            .collect(),
        runner("o", &metrics, &deadline, policy, Some(dead_letter)),
    )
    .await;
    assert_eq!(attempts.len(), 1 + 3, "one try and two retries");
    assert_eq!(metrics.discarded(&out, "retries_exhausted"), 15);
    assert_eq!(metrics.discarded_total(), 15);
    assert_eq!(metrics.sent_events.get_or_create(&out.labels()).get(), 1);
    let dead = dlr.pop().await.unwrap();
    let expected: Vec<u64> = (1..=5).flat_map(|i| i * 10..i * 10 + 3).collect();
    assert_eq!(times(&dead.batch), expected);
    assert!(dlr.try_pop().is_none(), "dead-lettered once");
}

#[tokio::test]
async fn rejections_index_into_the_merged_batch() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let out = Component::output("o");
    let (dlw, mut dlr) = memory_buffer(
        1 << 20,
        WhenFull::Block,
        Component::output("backup"),
        metrics.clone(),
    );
    let dead_letter = DeadLetter::Output {
        name: "backup".into(),
        buffer: dlw,
    };
    deliver_behind_a_held_one(
        batch(0, 1),
        fifteen_behind(),
        vec![
            Ok(()).into(),
            Answer {
                delivered: vec![],
                rejected: vec![(vec![14, 0, 4], "too_old")],
                result: Ok(()),
            },
        ],
        runner("o", &metrics, &deadline, fast_retry(), Some(dead_letter)),
    )
    .await;
    assert_eq!(metrics.discarded(&out, "too_old"), 3);
    assert_eq!(metrics.discarded_total(), 3);
    assert_eq!(
        metrics.sent_events.get_or_create(&out.labels()).get(),
        1 + 12
    );
    // Indexes 0, 4 and 14 of the merged batch: the first event of its first part, the second of
    // its second part and the last of its last part.
    assert_eq!(times(&dlr.pop().await.unwrap().batch), vec![10, 21, 52]);
}

#[tokio::test]
async fn a_merged_batch_keeps_the_earliest_acceptance_time() {
    let metrics = Metrics::new();
    let (w, mut r) = memory_buffer(
        1 << 20,
        WhenFull::Block,
        Component::output("o"),
        metrics.clone(),
    );
    w.push(batch(0, 1)).await.unwrap();
    w.push(batch(10, 1)).await.unwrap();
    w.push(tagged("u", 20, 1)).await.unwrap();
    let first = r.pop().await.unwrap();
    let earliest = first.accepted_at_ns;
    let (window, carried) = Window::open(first, &WindowLength::new(Duration::ZERO), &mut r);
    assert!(carried.is_none());
    let mut groups = window.into_groups().into_iter();
    let merged = groups.next().unwrap();
    assert_eq!(merged.accepted_at_ns, earliest);
    assert!(merged.taken[1].0.accepted_at_ns >= earliest);
    assert_eq!(times(&merged.batch), vec![0, 10]);
    assert_eq!(merged.body_bytes, 8);
    let other = groups.next().unwrap();
    assert_eq!(times(&other.batch), vec![20]);
    merged.done();
    other.done();
}

/// Open a disk buffer, waiting while the previous instance's writer thread still holds it.
async fn open_disk(
    opts: &DiskOptions,
    name: &str,
    metrics: &Arc<Metrics>,
) -> (crate::buffer::BufferWriter, BufferReader) {
    loop {
        match open_buffer(
            &BufferKind::Disk(opts.clone()),
            &MemoryBudget::new(1 << 20),
            Component::output(name),
            metrics.clone(),
        ) {
            Ok(pair) => break pair,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// The batches pushed before the runner starts: `t` (8 events, merged) and `u` (2), in one
/// window.
async fn push_mixed_tags(w: &crate::buffer::BufferWriter) {
    for b in [
        tagged("t", 0, 2),
        tagged("t", 10, 2),
        tagged("t", 20, 2),
        tagged("u", 30, 2),
        tagged("t", 40, 2),
    ] {
        w.push(b).await.unwrap();
    }
}

#[tokio::test]
async fn at_the_shutdown_deadline_merged_and_carried_batches_are_left_once() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let out = Component::output("mem");
    let (w, r) = memory_buffer(1 << 20, WhenFull::Block, out.clone(), metrics.clone());
    push_mixed_tags(&w).await;
    let task = tokio::spawn(run_output(
        Down,
        r,
        runner("mem", &metrics, &deadline, fast_retry(), None),
    ));
    deadline.send_replace(Some(Instant::now() + Duration::from_millis(50)));
    task.await.unwrap();
    assert_eq!(metrics.discarded(&out, "shutdown_undelivered"), 10);
    assert_eq!(metrics.discarded_total(), 10);
    assert_eq!(metrics.buffer_events.get_or_create(&out.labels()).get(), 0);

    let dir = tempfile::tempdir().unwrap();
    let opts = DiskOptions {
        dir: dir.path().to_path_buf(),
        max_bytes: 1 << 20,
        when_full: WhenFull::Block,
        fsync: FsyncPolicy::Never,
        fsync_interval: Duration::from_secs(1),
    };
    let (deadline, _) = watch::channel(None);
    {
        let (w, r) = open_disk(&opts, "disk", &metrics).await;
        push_mixed_tags(&w).await;
        let task = tokio::spawn(run_output(
            Down,
            r,
            runner("disk", &metrics, &deadline, fast_retry(), None),
        ));
        deadline.send_replace(Some(Instant::now() + Duration::from_millis(50)));
        task.await.unwrap();
    }
    assert_eq!(
        metrics.discarded_total(),
        10,
        "nothing more counted for disk"
    );
    // The next start delivers every event once, in order.
    let (output, delivered, attempts) = scripted(vec![]);
    let (w, r) = open_disk(&opts, "disk", &metrics).await;
    drop(w);
    let (deadline, _) = watch::channel(None);
    run_output(
        output,
        r,
        runner("disk", &metrics, &deadline, fast_retry(), None),
    )
    .await;
    assert_eq!(
        *delivered.lock().unwrap(),
        vec![0, 1, 10, 11, 20, 21, 40, 41, 30, 31]
    );
    assert_eq!(*attempts.lock().unwrap(), 2, "t merged, then u");
}

/// A batch under `tag` with events at these times.
fn at_times(tag: &'static str, times: &[u64]) -> Batch {
    let events = times
        .iter()
        .map(|&t| Event {
            time_ns: t,
            body: Bytes::from_static(b"\x81\xa1k\x01"),
        })
        .collect();
    Batch::new(Bytes::from_static(tag.as_bytes()), events)
}

/// The times of the events a dead-letter file holds, with their reasons.
fn dead_lettered(path: &std::path::Path) -> Vec<(u64, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["time_ns"].as_u64().unwrap(),
                v["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_rejected_event_is_counted_and_dead_lettered_under_its_own_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let out = Component::output("o");
    let (w, r) = memory_buffer(1 << 20, WhenFull::Block, out.clone(), metrics.clone());
    w.push(batch(0, 7)).await.unwrap();
    drop(w);
    let (output, delivered, _) = scripted_answers(vec![Answer {
        delivered: vec![],
        rejected: vec![
            (vec![0], "too_old"),
            (vec![1, 2], "too_new"),
            (vec![3], "log_key_missing"),
            (vec![4], "empty_message"),
        ],
        result: Ok(()),
    }]);
    let dl = DeadLetter::File(dead_letter::DeadLetterFile::open(&path, 1 << 20).unwrap());
    run_output(
        output,
        r,
        runner("o", &metrics, &deadline, fast_retry(), Some(dl)),
    )
    .await;
    let counts: Vec<u64> = ["too_old", "too_new", "log_key_missing", "empty_message"]
        .iter()
        .map(|reason| metrics.discarded(&out, reason))
        .collect();
    assert_eq!(counts, vec![1, 2, 1, 1]);
    assert_eq!(metrics.discarded_total(), 5);
    assert_eq!(*delivered.lock().unwrap(), vec![5, 6]);
    assert_eq!(metrics.sent_events.get_or_create(&out.labels()).get(), 2);
    let mut dead = dead_lettered(&path);
    dead.sort();
    let want: Vec<(u64, String)> = [
        (0, "too_old"),
        (1, "too_new"),
        (2, "too_new"),
        (3, "log_key_missing"),
        (4, "empty_message"),
    ]
    .iter()
    .map(|(t, r)| (*t, r.to_string()))
    .collect();
    assert_eq!(dead, want);
}

#[tokio::test]
async fn giving_up_after_a_partial_delivery_counts_and_dead_letters_only_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let out = Component::output("o");
    let (w, r) = memory_buffer(1 << 20, WhenFull::Block, out.clone(), metrics.clone());
    w.push(batch(0, 5)).await.unwrap();
    drop(w);
    // The first request delivers events 0-2, the second fails; then nothing gets through.
    let (output, delivered, attempts) = scripted_answers(vec![
        Answer {
            delivered: vec![0, 1, 2],
            rejected: vec![],
            result: retryable(),
        },
        retryable().into(),
        retryable().into(),
    ]);
    let policy = RetryPolicy {
        retry_limit: Some(2),
        ..fast_retry()
    };
    let dl = DeadLetter::File(dead_letter::DeadLetterFile::open(&path, 1 << 20).unwrap());
    run_output(
        output,
        r,
        runner("o", &metrics, &deadline, policy, Some(dl)),
    )
    .await;
    assert_eq!(*attempts.lock().unwrap(), 3);
    assert_eq!(*delivered.lock().unwrap(), vec![0, 1, 2]);
    assert_eq!(metrics.sent_events.get_or_create(&out.labels()).get(), 3);
    assert_eq!(metrics.discarded(&out, "retries_exhausted"), 2);
    assert_eq!(metrics.discarded_total(), 2);
    let dead: Vec<u64> = dead_lettered(&path).into_iter().map(|(t, _)| t).collect();
    assert_eq!(dead, vec![3, 4]);
}

/// An output whose delivery delivers the first half of what is pending and then never
/// finishes (a slow request cut by the shutdown deadline).
struct CutHalfway {
    delivered: Delivered,
}

impl Output for CutHalfway {
    async fn deliver(
        &mut self,
        batch: &Batch,
        progress: &mut DeliveryProgress,
    ) -> Result<(), DeliveryError> {
        let pending: Vec<usize> = progress.pending().collect();
        let half = &pending[..pending.len() / 2];
        progress.delivered(half.iter().copied());
        self.delivered
            .lock()
            .unwrap()
            .extend(half.iter().map(|&i| batch.events[i].time_ns));
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_delivery_cut_at_the_shutdown_deadline_keeps_what_it_delivered_in_memory() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let out = Component::output("mem");
    let (w, r) = memory_buffer(1 << 20, WhenFull::Block, out.clone(), metrics.clone());
    for i in 0..3 {
        w.push(batch(i * 10, 4)).await.unwrap();
    }
    let delivered = Delivered::default();
    let task = tokio::spawn(run_output(
        CutHalfway {
            delivered: delivered.clone(),
        },
        r,
        runner("mem", &metrics, &deadline, fast_retry(), None),
    ));
    deadline.send_replace(Some(Instant::now() + Duration::from_millis(100)));
    task.await.unwrap();
    assert_eq!(*delivered.lock().unwrap(), vec![0, 1, 2, 3, 10, 11]);
    assert_eq!(metrics.sent_events.get_or_create(&out.labels()).get(), 6);
    assert_eq!(metrics.discarded(&out, "shutdown_undelivered"), 6);
    assert_eq!(metrics.discarded_total(), 6);
    assert_eq!(metrics.buffer_events.get_or_create(&out.labels()).get(), 0);
}

#[tokio::test]
async fn a_delivery_cut_at_the_shutdown_deadline_is_not_resent_from_disk() {
    let metrics = Metrics::new();
    let dir = tempfile::tempdir().unwrap();
    let opts = DiskOptions {
        dir: dir.path().to_path_buf(),
        max_bytes: 1 << 20,
        when_full: WhenFull::Block,
        fsync: FsyncPolicy::Never,
        fsync_interval: Duration::from_secs(1),
    };
    let cut = Delivered::default();
    {
        let (deadline, _) = watch::channel(None);
        let (w, r) = open_disk(&opts, "disk", &metrics).await;
        for i in 0..3 {
            w.push(batch(i * 10, 4)).await.unwrap();
        }
        let task = tokio::spawn(run_output(
            CutHalfway {
                delivered: cut.clone(),
            },
            r,
            runner("disk", &metrics, &deadline, fast_retry(), None),
        ));
        deadline.send_replace(Some(Instant::now() + Duration::from_millis(100)));
        task.await.unwrap();
    }
    let cut = cut.lock().unwrap().clone();
    assert!(!cut.is_empty());
    assert_eq!(metrics.discarded_total(), 0);
    let (output, delivered, _) = scripted(vec![]);
    let (w, r) = open_disk(&opts, "disk", &metrics).await;
    drop(w);
    let (deadline, _) = watch::channel(None);
    run_output(
        output,
        r,
        runner("disk", &metrics, &deadline, fast_retry(), None),
    )
    .await;
    let mut all: Vec<u64> = cut.clone();
    all.extend(delivered.lock().unwrap().iter());
    all.sort_unstable();
    let want: Vec<u64> = (0..3).flat_map(|i| i * 10..i * 10 + 4).collect();
    assert_eq!(all, want, "every event delivered once: cut {cut:?}");
}

/// An output with two destinations: events at time ≥ 1000 go to "denied", which fails while
/// `denied` is set; the others go to "open".
struct TwoDestinations {
    denied: Arc<std::sync::atomic::AtomicBool>,
    delivered: Delivered,
}

impl Output for TwoDestinations {
    async fn deliver(
        &mut self,
        batch: &Batch,
        progress: &mut DeliveryProgress,
    ) -> Result<(), DeliveryError> {
        let denied = self.denied.load(std::sync::atomic::Ordering::SeqCst);
        for i in progress.pending().collect::<Vec<_>>() {
            let time = batch.events[i].time_ns;
            let dest = if time >= 1000 { "denied" } else { "open" };
            if progress.is_blocked(dest) || (dest == "denied" && denied) {
                progress.destination_failed([i], dest, || "AccessDeniedException".into());
            } else {
                progress.delivered([i]);
                self.delivered.lock().unwrap().push(time);
            }
        }
        if progress.failing_destinations().is_empty() {
            Ok(())
        } else {
            retryable()
        }
    }
}

/// Pushes batches mixing both destinations, each a delivery of its own (tags differ).
async fn push_two_destinations(w: &crate::buffer::BufferWriter) {
    for b in [
        at_times("a", &[1000, 1]),
        at_times("b", &[2]),
        at_times("c", &[1001, 3]),
        at_times("d", &[4, 1002]),
        at_times("e", &[5]),
    ] {
        w.push(b).await.unwrap();
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_failing_destination_is_set_aside_while_the_others_flow() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let out = Component::output("o");
    let (w, r) = memory_buffer(1 << 20, WhenFull::Block, out.clone(), metrics.clone());
    let denied = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let delivered = Delivered::default();
    let task = tokio::spawn(run_output(
        TwoDestinations {
            denied: denied.clone(),
            delivered: delivered.clone(),
        },
        r,
        runner("o", &metrics, &deadline, fast_retry(), None),
    ));
    push_two_destinations(&w).await;
    wait_for("the open destination's events", || {
        delivered.lock().unwrap().len() == 5
    })
    .await;
    assert_eq!(*delivered.lock().unwrap(), vec![1, 2, 3, 4, 5]);
    wait_for("the gauge", || {
        metrics.set_aside_events.get_or_create(&out.labels()).get() == 3
    })
    .await;
    assert!(metrics.retries.get_or_create(&out.labels()).get() > 0);
    denied.store(false, std::sync::atomic::Ordering::SeqCst);
    drop(w);
    task.await.unwrap();
    let got = delivered.lock().unwrap().clone();
    let denied_order: Vec<u64> = got.iter().copied().filter(|&t| t >= 1000).collect();
    assert_eq!(
        denied_order,
        vec![1000, 1001, 1002],
        "order per destination"
    );
    assert_eq!(metrics.sent_events.get_or_create(&out.labels()).get(), 8);
    assert_eq!(metrics.discarded_total(), 0);
    assert_eq!(
        metrics.set_aside_events.get_or_create(&out.labels()).get(),
        0
    );
}

#[tokio::test]
async fn a_destination_failing_past_retry_until_gives_up_only_its_own_events() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let out = Component::output("o");
    let (w, r) = memory_buffer(1 << 20, WhenFull::Block, out.clone(), metrics.clone());
    let delivered = Delivered::default();
    push_two_destinations(&w).await;
    drop(w);
    let policy = RetryPolicy {
        retry_until: Duration::from_millis(200),
        ..fast_retry()
    };
    run_output(
        TwoDestinations {
            denied: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            delivered: delivered.clone(),
        },
        r,
        runner("o", &metrics, &deadline, policy, None),
    )
    .await;
    assert_eq!(*delivered.lock().unwrap(), vec![1, 2, 3, 4, 5]);
    assert_eq!(metrics.sent_events.get_or_create(&out.labels()).get(), 5);
    assert_eq!(metrics.discarded(&out, "retry_expired"), 3);
    assert_eq!(metrics.discarded_total(), 3);
}

#[tokio::test]
async fn at_most_a_bounded_number_of_deliveries_are_set_aside() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let out = Component::output("o");
    let (w, r) = memory_buffer(1 << 20, WhenFull::Block, out.clone(), metrics.clone());
    let delivered = Delivered::default();
    let task = tokio::spawn(run_output(
        TwoDestinations {
            denied: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            delivered: delivered.clone(),
        },
        r,
        runner("o", &metrics, &deadline, fast_retry(), None),
    ));
    // Each batch a delivery of its own (a tag of its own), every one for the denied destination,
    // then one for the open destination.
    for i in 0..MAX_SET_ASIDE_DELIVERIES as u64 + 4 {
        let tag: &'static str = Box::leak(format!("t{i}").into_boxed_str());
        w.push(at_times(tag, &[1000 + i])).await.unwrap();
    }
    w.push(at_times("z", &[1])).await.unwrap();
    wait_for("the cap", || {
        metrics.set_aside_events.get_or_create(&out.labels()).get()
            == MAX_SET_ASIDE_DELIVERIES as i64
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        delivered.lock().unwrap().is_empty(),
        "no new batch is taken past the cap"
    );
    assert_eq!(
        metrics.buffer_events.get_or_create(&out.labels()).get(),
        MAX_SET_ASIDE_DELIVERIES as i64 + 5,
        "the buffer still holds (and bounds) every event set aside"
    );
    deadline.send_replace(Some(Instant::now()));
    drop(w);
    task.await.unwrap();
    assert_eq!(
        metrics.discarded(&out, "shutdown_undelivered"),
        MAX_SET_ASIDE_DELIVERIES as u64 + 5
    );
}

/// Every event goes to destination "denied", which fails until `open`; then the first attempt
/// that carries event 1000 fails as a whole (the output is down for 200 ms).
struct DownOnce {
    open: Arc<std::sync::atomic::AtomicBool>,
    failed_once: bool,
    delivered: Delivered,
}

impl Output for DownOnce {
    async fn deliver(
        &mut self,
        batch: &Batch,
        progress: &mut DeliveryProgress,
    ) -> Result<(), DeliveryError> {
        let open = self.open.load(std::sync::atomic::Ordering::SeqCst);
        for i in progress.pending().collect::<Vec<_>>() {
            let time = batch.events[i].time_ns;
            if open && time == 1000 && !self.failed_once {
                self.failed_once = true;
                return Err(DeliveryError::Retryable {
                    reason: "connection refused".into(),
                    after: Some(Duration::from_millis(200)),
                });
            }
            if !open || progress.is_blocked("denied") {
                progress.destination_failed([i], "denied", || "AccessDeniedException".into());
            } else {
                progress.delivered([i]);
                self.delivered.lock().unwrap().push(time);
            }
        }
        if progress.failing_destinations().is_empty() {
            Ok(())
        } else {
            retryable()
        }
    }
}

#[tokio::test]
async fn a_set_aside_delivery_that_then_fails_as_a_whole_keeps_its_place() {
    let metrics = Metrics::new();
    let (deadline, _) = watch::channel(None);
    let out = Component::output("o");
    let (w, r) = memory_buffer(1 << 20, WhenFull::Block, out.clone(), metrics.clone());
    let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let delivered = Delivered::default();
    let task = tokio::spawn(run_output(
        DownOnce {
            open: open.clone(),
            failed_once: false,
            delivered: delivered.clone(),
        },
        r,
        runner("o", &metrics, &deadline, fast_retry(), None),
    ));
    w.push(at_times("a", &[1000])).await.unwrap();
    w.push(at_times("b", &[1001])).await.unwrap();
    wait_for("both set aside", || {
        metrics.set_aside_events.get_or_create(&out.labels()).get() == 2
    })
    .await;
    open.store(true, std::sync::atomic::Ordering::SeqCst);
    drop(w);
    task.await.unwrap();
    assert_eq!(
        *delivered.lock().unwrap(),
        vec![1000, 1001],
        "the younger delivery waited for the older one of its destination"
    );
}

/// An output with its own request limits that records when each attempt came and its batch,
/// and throttles its first `throttle` attempts.
struct Timed {
    limits: RequestLimits,
    throttle: u32,
    attempts: Arc<Mutex<Vec<(tokio::time::Instant, Batch)>>>,
}

impl Output for Timed {
    fn request_limits(&self) -> RequestLimits {
        self.limits
    }

    async fn deliver(
        &mut self,
        batch: &Batch,
        progress: &mut DeliveryProgress,
    ) -> Result<(), DeliveryError> {
        let now = tokio::time::Instant::now();
        self.attempts.lock().unwrap().push((now, batch.clone()));
        if self.throttle > 0 {
            self.throttle -= 1;
            progress.throttled();
            return retryable();
        }
        Ok(())
    }
}

type Attempts = Arc<Mutex<Vec<(tokio::time::Instant, Batch)>>>;

/// A [`Timed`] output under a runner with a flush window of `window`, over a memory buffer.
fn timed(
    window: Duration,
    limits: RequestLimits,
    throttle: u32,
    deadline: &watch::Sender<Option<Instant>>,
) -> (
    crate::buffer::BufferWriter,
    tokio::task::JoinHandle<()>,
    Attempts,
    Arc<Metrics>,
) {
    let metrics = Metrics::new();
    let (w, r) = memory_buffer(
        1 << 20,
        WhenFull::Block,
        Component::output("o"),
        metrics.clone(),
    );
    let attempts = Attempts::default();
    let output = Timed {
        limits,
        throttle,
        attempts: attempts.clone(),
    };
    let mut runner = runner("o", &metrics, deadline, fast_retry(), None);
    runner.window = WindowLength::new(window);
    (
        w,
        tokio::spawn(run_output(output, r, runner)),
        attempts,
        metrics,
    )
}

#[tokio::test(start_paused = true)]
async fn a_window_gathers_what_arrives_within_it_into_one_delivery() {
    let (deadline, _) = watch::channel(None);
    let start = tokio::time::Instant::now();
    let (w, task, attempts, metrics) = timed(
        Duration::from_secs(1),
        RequestLimits::default(),
        0,
        &deadline,
    );
    // 20 events a second for 3 seconds, one per batch, as Docker's log driver sends them.
    for i in 0..60 {
        w.push(batch(i, 1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(w);
    task.await.unwrap();
    let attempts = attempts.lock().unwrap();
    assert!(
        (3..=4).contains(&attempts.len()),
        "one delivery per window of about a second, not one per event: {}",
        attempts.len()
    );
    let first = attempts[0].0 - start;
    assert!(
        first >= Duration::from_millis(900) && first <= Duration::from_secs(1),
        "the first event waited the window less its jitter: {first:?}"
    );
    let all: Vec<u64> = attempts.iter().flat_map(|(_, b)| times(b)).collect();
    assert_eq!(
        all,
        (0..60).collect::<Vec<u64>>(),
        "every event once, in order"
    );
    assert_eq!(
        metrics
            .sent_events
            .get_or_create(&Component::output("o").labels())
            .get(),
        60
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_worth_of_events_goes_out_without_waiting_for_the_window() {
    let (deadline, _) = watch::channel(None);
    let start = tokio::time::Instant::now();
    let limits = RequestLimits {
        events: 5,
        body_bytes: 1 << 20,
    };
    let (w, task, attempts, _) = timed(Duration::from_secs(3600), limits, 0, &deadline);
    for i in 0..5 {
        w.push(batch(i, 1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    w.push(batch(5, 1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let seen: Vec<(Duration, Vec<u64>)> = attempts
        .lock()
        .unwrap()
        .iter()
        .map(|(at, b)| (*at - start, times(b)))
        .collect();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].0 < Duration::from_millis(100), "{seen:?}");
    assert_eq!(seen[0].1, vec![0, 1, 2, 3, 4]);
    // The sixth waits for its window; closing the buffer sends it at once.
    drop(w);
    task.await.unwrap();
    let (at, last) = attempts
        .lock()
        .unwrap()
        .last()
        .map(|(at, b)| (*at - start, times(b)))
        .unwrap();
    assert_eq!(last, vec![5]);
    assert!(at < Duration::from_secs(1), "{at:?}");
}

#[tokio::test(start_paused = true)]
async fn shutdown_sends_every_window_at_once() {
    let (deadline, _) = watch::channel(None);
    let start = tokio::time::Instant::now();
    let (w, task, attempts, metrics) = timed(
        Duration::from_secs(3600),
        RequestLimits::default(),
        0,
        &deadline,
    );
    for (i, tag) in ["a", "b", "a"].into_iter().enumerate() {
        w.push(tagged(tag, i as u64, 1)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(attempts.lock().unwrap().is_empty(), "the window is open");
    deadline.send_replace(Some(Instant::now() + Duration::from_secs(30)));
    tokio::time::sleep(Duration::from_millis(10)).await;
    let seen: Vec<(Duration, Vec<u64>)> = attempts
        .lock()
        .unwrap()
        .iter()
        .map(|(at, b)| (*at - start, times(b)))
        .collect();
    assert_eq!(
        seen.iter().map(|s| s.1.clone()).collect::<Vec<_>>(),
        vec![vec![0, 2], vec![1]]
    );
    assert!(
        seen.iter().all(|s| s.0 < Duration::from_secs(1)),
        "{seen:?}"
    );
    drop(w);
    task.await.unwrap();
    assert_eq!(metrics.discarded_total(), 0);
}

#[tokio::test(start_paused = true)]
async fn throttling_stretches_the_window_of_the_next_deliveries() {
    let (deadline, _) = watch::channel(None);
    let (w, task, attempts, _) = timed(
        Duration::from_secs(1),
        RequestLimits::default(),
        2,
        &deadline,
    );
    w.push(batch(0, 1)).await.unwrap();
    // Throttled twice (window 4 s), then delivered (window 3 s).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(attempts.lock().unwrap().len(), 3);
    let pushed = tokio::time::Instant::now();
    w.push(batch(1, 1)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let waited = attempts.lock().unwrap()[3].0 - pushed;
    assert!(
        waited >= Duration::from_millis(2700) && waited <= Duration::from_secs(3),
        "the next window is stretched: {waited:?}"
    );
    drop(w);
    task.await.unwrap();
}
