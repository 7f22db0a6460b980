//! Disk buffer tests on real files: order, acked-pointer persistence, recovery after a
//! simulated crash, corruption and truncation, bounds.

use super::*;
use crate::buffer::{BufferKind, BufferReader, BufferWriter, MemoryBudget, open_buffer};
use crate::event::Event;

fn batch(i: u64, n: usize) -> Batch {
    let events = (0..n)
        .map(|k| {
            let mut body = vec![0x81, 0xa1, b'i'];
            rmp::encode::write_uint(&mut body, i * 1000 + k as u64).unwrap();
            Event {
                time_ns: i,
                body: Bytes::from(body),
            }
        })
        .collect();
    Batch::new(Bytes::from(format!("tag{i}")), events)
}

fn options(dir: &Path, max_bytes: u64, when_full: WhenFull) -> DiskOptions {
    DiskOptions {
        dir: dir.to_path_buf(),
        max_bytes,
        when_full,
        fsync: FsyncPolicy::Never,
        fsync_interval: Duration::from_secs(1),
    }
}

/// Open, waiting while the previous instance's writer thread still holds the lock.
async fn open_dir(opts: &DiskOptions, metrics: &Arc<Metrics>) -> (BufferWriter, BufferReader) {
    for _ in 0..500 {
        match open_buffer(
            &BufferKind::Disk(opts.clone()),
            &MemoryBudget::new(64 << 20),
            Component::output("o"),
            metrics.clone(),
        ) {
            Ok(pair) => return pair,
            Err(DiskError::Locked { .. }) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the disk buffer stayed locked");
}

async fn pop_n(r: &mut BufferReader, n: usize) -> Vec<Queued> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(r.pop().await.expect("a batch"));
    }
    out
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn batches_come_back_in_order_and_end_when_the_writers_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let (w, mut r) = open_dir(&options(dir.path(), 1 << 20, WhenFull::Block), &metrics).await;
    for i in 0..10 {
        w.push(batch(i, 3)).await.unwrap();
    }
    drop(w);
    for (i, q) in pop_n(&mut r, 10).await.into_iter().enumerate() {
        assert_eq!(q.batch, batch(i as u64, 3));
        assert!(q.accepted_at_ns > 0);
        q.done();
    }
    assert!(r.pop().await.is_none());
}

#[tokio::test]
async fn after_a_crash_only_what_was_not_done_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let opts = options(dir.path(), 1 << 20, WhenFull::Block);
    {
        let (w, mut r) = open_dir(&opts, &metrics).await;
        for i in 0..10 {
            w.push(batch(i, 2)).await.unwrap();
        }
        let mut taken = pop_n(&mut r, 6).await;
        // Batches 0..4 delivered; 4 and 5 were in flight when the process "died".
        for q in taken.drain(..4) {
            q.done();
        }
        // No finish, no done: like kill -9.
    }
    let (w, mut r) = open_dir(&opts, &metrics).await;
    drop(w);
    let mut seen = Vec::new();
    while let Some(q) = r.pop().await {
        seen.push(q.batch.events[0].time_ns);
        q.done();
    }
    assert_eq!(seen, (4..10).collect::<Vec<_>>());
    // Everything is acked now: a third start delivers nothing, and the old segments are gone.
    drop(r);
    let (w, mut r) = open_dir(&opts, &metrics).await;
    drop(w);
    assert!(r.pop().await.is_none());
    assert_eq!(
        segment_files(dir.path()).len(),
        1,
        "only the new run's segment remains"
    );
}

#[tokio::test]
async fn segments_rotate_and_delivered_ones_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    // 64 KiB → segments of 8 KiB; each batch is ~1.2 KiB.
    let (w, mut r) = open_dir(&options(dir.path(), 64 << 10, WhenFull::Block), &metrics).await;
    for i in 0..30 {
        w.push(batch(i, 100)).await.unwrap();
    }
    assert!(segment_files(dir.path()).len() > 3);
    for q in pop_n(&mut r, 30).await {
        q.done();
    }
    assert_eq!(segment_files(dir.path()).len(), 1);
}

/// `try_pop` hands out, in order and without waiting, what the last read brought in; `pop`
/// reads on. Batches taken either way are acked alike: after a crash only those not done return.
#[tokio::test]
async fn try_pop_takes_what_was_read_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    // 64 KiB → segments of 8 KiB; each batch is ~1.2 KiB, so a read window ends with a segment.
    let opts = options(dir.path(), 64 << 10, WhenFull::Block);
    {
        let (w, mut r) = open_dir(&opts, &metrics).await;
        assert!(r.try_pop().is_none(), "nothing written yet");
        for i in 0..30 {
            w.push(batch(i, 100)).await.unwrap();
        }
        let mut taken = Vec::new();
        let mut without_waiting = 0;
        while taken.len() < 30 {
            taken.push(r.pop().await.expect("a batch"));
            while let Some(q) = r.try_pop() {
                without_waiting += 1;
                taken.push(q);
            }
        }
        assert!(r.try_pop().is_none());
        let seen: Vec<u64> = taken.iter().map(|q| q.batch.events[0].time_ns).collect();
        assert_eq!(seen, (0..30).collect::<Vec<_>>());
        assert!(without_waiting > 0, "a read window holds several batches");
        for q in taken.drain(..20) {
            q.done();
        }
        // No finish, no done for the rest: like kill -9.
    }
    let (w, mut r) = open_dir(&opts, &metrics).await;
    drop(w);
    let mut seen = Vec::new();
    while let Some(q) = r.pop().await {
        seen.push(q.batch.events[0].time_ns);
        q.done();
    }
    assert_eq!(seen, (20..30).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_full_buffer_blocks_or_drops_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let out = Component::output("o");
    let (w, mut r) = open_dir(
        &options(dir.path(), 64 << 10, WhenFull::DropNewest),
        &metrics,
    )
    .await;
    let mut accepted = 0;
    for i in 0..100 {
        if w.push(batch(i, 100)).await.is_ok() {
            accepted += 1;
        }
    }
    let dropped = metrics.discarded(&out, "buffer_full");
    assert_eq!(
        accepted * 100 + dropped,
        100 * 100,
        "every event accepted or counted"
    );
    assert!(accepted < 100 && dropped > 0);
    let on_disk: u64 = segment_files(dir.path())
        .iter()
        .map(|p| p.metadata().unwrap().len())
        .sum();
    assert!(on_disk <= 64 << 10, "{on_disk} bytes on disk");
    for q in pop_n(&mut r, accepted as usize).await {
        q.done();
    }
    drop((w, r));

    let dir = tempfile::tempdir().unwrap();
    let (w, mut r) = open_dir(&options(dir.path(), 64 << 10, WhenFull::Block), &metrics).await;
    let writer = tokio::spawn(async move {
        for i in 0..100 {
            w.push(batch(i, 100)).await.unwrap();
        }
    });
    // The writer can only finish because the reader makes room.
    for i in 0..100 {
        let q = r.pop().await.unwrap();
        assert_eq!(q.batch.events[0].time_ns, i);
        q.done();
    }
    writer.await.unwrap();
}

/// Write three records, damage the file, reopen: the damage is skipped and counted, and what
/// is intact around it is delivered.
async fn damaged(damage: impl FnOnce(&mut Vec<u8>, &[usize])) -> (Vec<u64>, u64) {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let opts = options(dir.path(), 1 << 20, WhenFull::Block);
    {
        let (w, _r) = open_dir(&opts, &metrics).await;
        for i in 0..3 {
            w.push(batch(i, 5)).await.unwrap();
        }
    }
    let path = segment_files(dir.path())[0].clone();
    let mut bytes = std::fs::read(&path).unwrap();
    let mut starts = vec![SEGMENT_MAGIC.len()];
    for _ in 0..3 {
        let Parsed::Record { len, .. } =
            segment::parse_record(&Bytes::copy_from_slice(&bytes[*starts.last().unwrap()..]))
        else {
            panic!()
        };
        starts.push(starts.last().unwrap() + len);
    }
    damage(&mut bytes, &starts);
    std::fs::write(&path, bytes).unwrap();

    let metrics = Metrics::new();
    let (w, mut r) = open_dir(&opts, &metrics).await;
    drop(w);
    let mut seen = Vec::new();
    while let Some(q) = r.pop().await {
        seen.push(q.batch.events[0].time_ns);
        q.done();
    }
    (
        seen,
        metrics.discarded(&Component::output("o"), "buffer_corrupt"),
    )
}

#[tokio::test]
async fn a_damaged_payload_is_skipped_with_its_event_count() {
    let (seen, corrupt) = damaged(|b, starts| b[starts[1] + RECORD_HEADER_LEN + 7] ^= 0xff).await;
    assert_eq!(seen, vec![0, 2]);
    assert_eq!(corrupt, 5);
}

#[tokio::test]
async fn a_damaged_header_is_skipped_the_next_record_found_and_its_events_counted() {
    let (seen, corrupt) = damaged(|b, starts| b[starts[1] + 5] ^= 0xff).await;
    assert_eq!(seen, vec![0, 2]);
    assert_eq!(
        corrupt, 5,
        "the next record's event number shows 5 were lost"
    );
    // Two damaged headers in a row: one region, still counted exactly.
    let (seen, corrupt) = damaged(|b, starts| {
        b[starts[0] + 5] ^= 0xff;
        b[starts[1] + 5] ^= 0xff;
    })
    .await;
    assert_eq!(seen, vec![2]);
    assert_eq!(corrupt, 10);
}

#[tokio::test]
async fn a_truncated_tail_is_skipped_and_counted() {
    let (seen, corrupt) = damaged(|b, starts| b.truncate(starts[2] + RECORD_HEADER_LEN + 12)).await;
    assert_eq!(seen, vec![0, 1]);
    assert_eq!(corrupt, 5, "the header survived: its event count is known");
    let (seen, corrupt) = damaged(|b, starts| b.truncate(starts[2] + 10)).await;
    assert_eq!(seen, vec![0, 1]);
    assert_eq!(corrupt, 1);
}

#[tokio::test]
async fn a_damaged_segment_file_header_loses_no_record() {
    let (seen, corrupt) = damaged(|b, _| b[0] = b'X').await;
    assert_eq!(seen, vec![0, 1, 2]);
    assert_eq!(corrupt, 0);
}

/// The case the issue measured (4,400 events lost, 100 counted): many records with a damaged
/// header, and a zeroed stretch over several records, spread over segments, one of which is
/// missing altogether. Every lost event is counted, exactly.
#[tokio::test]
async fn corruption_is_counted_per_event_lost() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 256 << 10, WhenFull::Block);
    {
        let metrics = Metrics::new();
        let (w, _r) = open_dir(&opts, &metrics).await;
        for i in 0..200 {
            w.push(batch(i, 44)).await.unwrap();
        }
    }
    let files = segment_files(dir.path());
    assert!(files.len() >= 6, "{} segments", files.len());
    // Record starts and event counts per segment.
    let records = |bytes: &[u8]| {
        let mut starts = Vec::new();
        let mut at = SEGMENT_MAGIC.len();
        while at < bytes.len() {
            let Parsed::Record { len, .. } =
                segment::parse_record(&Bytes::copy_from_slice(&bytes[at..]))
            else {
                panic!()
            };
            starts.push((at, len));
            at += len;
        }
        starts
    };
    let mut lost = 0;
    // Segment 1: every other record's header damaged.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    for (k, (at, _)) in records(&bytes).into_iter().enumerate() {
        if k % 2 == 1 {
            bytes[at + 9] ^= 0x40;
            lost += 44;
        }
    }
    std::fs::write(&files[0], &bytes).unwrap();
    // Segment 2: zeros over the middle three records (headers and payloads).
    let mut bytes = std::fs::read(&files[1]).unwrap();
    let recs = records(&bytes);
    let (from, _) = recs[recs.len() / 2 - 1];
    let (last, len) = recs[recs.len() / 2 + 1];
    bytes[from..last + len].fill(0);
    lost += 3 * 44;
    std::fs::write(&files[1], &bytes).unwrap();
    // Segment 3: gone.
    let bytes = std::fs::read(&files[2]).unwrap();
    lost += 44 * records(&bytes).len() as u64;
    std::fs::remove_file(&files[2]).unwrap();

    let metrics = Metrics::new();
    let (w, mut r) = open_dir(&opts, &metrics).await;
    drop(w);
    let mut delivered = 0;
    while let Some(q) = r.pop().await {
        delivered += q.batch.len() as u64;
        q.done();
    }
    let corrupt = metrics.discarded(&Component::output("o"), "buffer_corrupt");
    assert_eq!(corrupt, lost);
    assert_eq!(delivered + corrupt, 200 * 44);
}

#[tokio::test]
async fn garbage_files_and_pointer_do_not_stop_the_buffer() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("00000000000000000003.seg"),
        b"not a segment at all",
    )
    .unwrap();
    std::fs::write(dir.path().join("ack"), [0xffu8; 64]).unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
    let metrics = Metrics::new();
    let opts = options(dir.path(), 1 << 20, WhenFull::Block);
    let (w, mut r) = open_dir(&opts, &metrics).await;
    w.push(batch(7, 1)).await.unwrap();
    let q = r.pop().await.unwrap();
    assert_eq!(q.batch, batch(7, 1));
    q.done();
    assert_eq!(
        metrics.discarded(&Component::output("o"), "buffer_corrupt"),
        1
    );
}

#[tokio::test]
async fn a_second_process_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let opts = options(dir.path(), 1 << 20, WhenFull::Block);
    let _first = open_dir(&opts, &metrics).await;
    let second = open_buffer(
        &BufferKind::Disk(opts),
        &MemoryBudget::new(1 << 20),
        Component::output("o"),
        metrics,
    );
    let e = second.err().expect("locked").to_string();
    assert!(e.contains("in use"), "{e}");
}

#[tokio::test]
async fn fsync_always_and_interval_work_the_same_from_the_outside() {
    for fsync in [FsyncPolicy::Always, FsyncPolicy::Interval] {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new();
        let opts = DiskOptions {
            fsync,
            fsync_interval: Duration::from_millis(5),
            ..options(dir.path(), 1 << 20, WhenFull::Block)
        };
        let (w, mut r) = open_dir(&opts, &metrics).await;
        let pushes: Vec<_> = (0..20)
            .map(|i| {
                let w = w.clone();
                tokio::spawn(async move { w.push(batch(i, 2)).await })
            })
            .collect();
        for p in pushes {
            p.await.unwrap().unwrap();
        }
        drop(w);
        let mut n = 0;
        while let Some(q) = r.pop().await {
            n += 1;
            q.done();
        }
        assert_eq!(n, 20);
    }
}

#[tokio::test]
async fn close_fails_waiting_pushes_and_keeps_what_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let (w, mut r) = open_dir(&options(dir.path(), 64 << 10, WhenFull::Block), &metrics).await;
    let mut n = 0;
    // Fill the buffer.
    loop {
        let push = w.push(batch(n, 100));
        tokio::pin!(push);
        let done = tokio::time::timeout(Duration::from_millis(200), &mut push)
            .await
            .ok();
        match done {
            Some(r) => {
                r.unwrap();
                n += 1;
            }
            None => {
                // This push waits for room: close the buffer under it.
                r.close();
                assert!(matches!(push.await, Err(PushError::Closed)));
                break;
            }
        }
    }
    assert_eq!(
        metrics.discarded(&Component::output("o"), "shutdown_undelivered"),
        100
    );
    drop(w);
    let mut taken = 0;
    while let Some(q) = r.pop().await {
        taken += 1;
        q.done();
    }
    assert_eq!(taken, n);
}

#[tokio::test]
async fn a_full_memory_budget_does_not_stall_a_disk_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let budget = MemoryBudget::new(1000);
    let _held_by_a_stuck_memory_output = budget.try_acquire(1000).unwrap();
    let opts = options(dir.path(), 1 << 20, WhenFull::Block);
    let (w, mut r) = open_buffer(
        &BufferKind::Disk(opts),
        &budget,
        Component::output("o"),
        Metrics::new(),
    )
    .unwrap();
    w.push(batch(1, 50)).await.unwrap();
    assert_eq!(r.pop().await.unwrap().batch, batch(1, 50));
}

/// A delivery cut at shutdown marks what reached the destination; after a crash (no `done`,
/// no `finish`) only the rest of each batch comes back, in order, and a batch wholly delivered
/// does not come back at all.
#[tokio::test]
async fn marked_events_are_not_read_back_after_a_crash() {
    for fsync in [
        FsyncPolicy::Always,
        FsyncPolicy::Interval,
        FsyncPolicy::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new();
        let opts = DiskOptions {
            fsync,
            ..options(dir.path(), 1 << 20, WhenFull::Block)
        };
        {
            let (w, mut r) = open_dir(&opts, &metrics).await;
            for i in 0..4 {
                w.push(batch(i, 10)).await.unwrap();
            }
            let mut taken = pop_n(&mut r, 4).await;
            taken.remove(0).done();
            taken[0].mark_delivered(&[0, 1, 2, 7]);
            taken[1].mark_delivered(&(0..10).collect::<Vec<_>>());
            // The Interval policy syncs on the writer's timer; the test only needs the bytes in
            // the file, as after kill -9.
        }
        let (w, mut r) = open_dir(&opts, &metrics).await;
        drop(w);
        let first = r.pop().await.unwrap();
        let left: Vec<_> = first.batch.events.iter().map(|e| e.body.clone()).collect();
        let expected: Vec<_> = batch(1, 10)
            .events
            .into_iter()
            .enumerate()
            .filter(|(i, _)| ![0, 1, 2, 7].contains(i))
            .map(|(_, e)| e.body)
            .collect();
        assert_eq!(left, expected, "{fsync:?}");
        assert_eq!(r.pop().await.unwrap().batch, batch(3, 10), "{fsync:?}");
        // Marks on a batch already cut by an earlier run use the batch's own indexes: mark two
        // more, crash again, and only four events of batch 1 remain.
        let mut first = first;
        first.mark_delivered(&[0, 5]);
        drop((first, r));
        let (w, mut r) = open_dir(&opts, &metrics).await;
        drop(w);
        let again = r.pop().await.unwrap();
        let left: Vec<_> = again.batch.events.iter().map(|e| e.body.clone()).collect();
        assert_eq!(
            left,
            [&expected[1..5], &expected[6..]].concat(),
            "{fsync:?}"
        );
        again.done();
        let last = r.pop().await.unwrap();
        assert_eq!(last.batch, batch(3, 10));
        last.done();
        assert!(r.pop().await.is_none());
        // Once the pointer passed every marked record, the progress file is empty.
        assert_eq!(
            std::fs::metadata(dir.path().join("progress"))
                .unwrap()
                .len(),
            0
        );
    }
}

#[tokio::test]
async fn marking_a_memory_buffered_batch_changes_nothing() {
    let (w, mut r) = crate::buffer::memory_buffer(
        1 << 20,
        WhenFull::Block,
        Component::output("m"),
        Metrics::new(),
    );
    w.push(batch(1, 3)).await.unwrap();
    let mut q = r.pop().await.unwrap();
    q.mark_delivered(&[0]);
    assert_eq!(q.batch, batch(1, 3));
    q.done();
}

/// A tmpfs mounted on a fresh directory (we are root in the test environment), unmounted on
/// drop: a real disk that fills up.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount -t tmpfs (these tests run as root)");
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fill the file system with a ballast file, then give back `pages` 4 KiB pages.
    fn fill_leaving(&self, pages: u64) -> PathBuf {
        let path = self.path().join("ballast");
        let f = File::create(&path).unwrap();
        let page = [0u8; 4096];
        let mut len = 0u64;
        while f.write_all_at(&page, len).is_ok() {
            len += 4096;
        }
        f.set_len(len.saturating_sub(pages * 4096)).unwrap();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// 32 KiB → segments of 4 KiB, one tmpfs page each: with batches of 53 events (~1 KiB records,
/// four per segment) the disk can only run out of space when the next segment's header is
/// written, at rotation.
fn one_page_segments(dir: &Path, when_full: WhenFull) -> DiskOptions {
    options(&dir.join("buf"), 32 << 10, when_full)
}

fn stalled(metrics: &Metrics) -> i64 {
    metrics
        .buffer_stalled
        .get_or_create(&Component::output("o").labels())
        .get()
}

async fn wait_stalled(metrics: &Metrics, want: i64) {
    for _ in 0..1000 {
        if stalled(metrics) == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("buffer_stalled never became {want}");
}

/// The old rotation created the next segment with `create_new`: after a failed header write
/// the empty file stayed and every later rotation failed with "File exists". Now a push waits
/// while the disk is full, and once space is freed (without reopening) it completes and every
/// batch is read back in order.
#[tokio::test]
async fn a_full_disk_at_rotation_blocks_until_space_is_freed() {
    let fs = Tmpfs::mount("64k");
    let metrics = Metrics::new();
    let opts = one_page_segments(fs.path(), WhenFull::Block);
    let (w, mut r) = open_dir(&opts, &metrics).await;
    let ballast = fs.fill_leaving(2);
    // Segment 1 (already there) and two more fit: 12 batches.
    for i in 0..12 {
        w.push(batch(i, 53)).await.unwrap();
    }
    let w2 = w.clone();
    let blocked = tokio::spawn(async move { w2.push(batch(12, 53)).await });
    wait_stalled(&metrics, 1).await;
    assert!(
        !blocked.is_finished(),
        "the push waits while the disk is full"
    );
    // The reader keeps delivering what is written meanwhile.
    for i in 0..12 {
        let q = r.pop().await.unwrap();
        assert_eq!(q.batch, batch(i, 53));
        q.done();
    }
    std::fs::remove_file(ballast).unwrap();
    blocked.await.unwrap().unwrap();
    assert_eq!(stalled(&metrics), 0);
    for i in 13..40 {
        w.push(batch(i, 53)).await.unwrap();
    }
    drop(w);
    for i in 12..40 {
        let q = r.pop().await.unwrap();
        assert_eq!(q.batch, batch(i, 53));
        q.done();
    }
    assert!(r.pop().await.is_none());
    let out = Component::output("o");
    assert_eq!(metrics.discarded(&out, "buffer_write_failed"), 0);
    assert_eq!(metrics.discarded(&out, "buffer_corrupt"), 0);
}

/// `drop_newest`: a batch that cannot be written is dropped and counted (the sender is acked:
/// that is the configured policy); once space is back, pushes are written again.
#[tokio::test]
async fn drop_newest_drops_and_counts_what_a_full_disk_cannot_take() {
    let fs = Tmpfs::mount("64k");
    let metrics = Metrics::new();
    let opts = one_page_segments(fs.path(), WhenFull::DropNewest);
    let (w, mut r) = open_dir(&opts, &metrics).await;
    let ballast = fs.fill_leaving(2);
    let mut written = Vec::new();
    for i in 0..16 {
        match w.push(batch(i, 53)).await {
            Ok(()) => written.push(i),
            Err(e) => assert!(e.dropped_by_policy(), "{e}"),
        }
    }
    assert_eq!(written, (0..12).collect::<Vec<_>>());
    let out = Component::output("o");
    assert_eq!(metrics.discarded(&out, "buffer_write_failed"), 4 * 53);
    assert_eq!(stalled(&metrics), 1);
    std::fs::remove_file(ballast).unwrap();
    w.push(batch(16, 53)).await.unwrap();
    assert_eq!(stalled(&metrics), 0);
    drop(w);
    let mut seen = Vec::new();
    while let Some(q) = r.pop().await {
        seen.push(q.batch.events[0].time_ns);
        q.done();
    }
    assert_eq!(seen, [(0..12).collect::<Vec<_>>(), vec![16]].concat());
}

/// A push waiting on a full disk when the output closes (the shutdown deadline) fails with
/// `Closed` — never acked — and its events are counted as `shutdown_undelivered`. What was
/// written before stays for the next start, and the failed segment start left nothing behind
/// that the next start would count as damage.
#[tokio::test]
async fn close_fails_a_push_waiting_on_a_full_disk() {
    let fs = Tmpfs::mount("64k");
    let metrics = Metrics::new();
    let opts = one_page_segments(fs.path(), WhenFull::Block);
    {
        let (w, mut r) = open_dir(&opts, &metrics).await;
        let _ballast = fs.fill_leaving(2);
        for i in 0..12 {
            w.push(batch(i, 53)).await.unwrap();
        }
        let w2 = w.clone();
        let blocked = tokio::spawn(async move { w2.push(batch(12, 53)).await });
        wait_stalled(&metrics, 1).await;
        r.close();
        assert!(matches!(blocked.await.unwrap(), Err(PushError::Closed)));
        let out = Component::output("o");
        assert_eq!(metrics.discarded(&out, "shutdown_undelivered"), 53);
        r.finish();
    }
    std::fs::remove_file(fs.path().join("ballast")).unwrap();
    let metrics = Metrics::new();
    let (w, mut r) = open_dir(&opts, &metrics).await;
    drop(w);
    let mut seen = Vec::new();
    while let Some(q) = r.pop().await {
        seen.push(q.batch.events[0].time_ns);
        q.done();
    }
    assert_eq!(seen, (0..12).collect::<Vec<_>>());
    assert_eq!(
        metrics.discarded(&Component::output("o"), "buffer_corrupt"),
        0
    );
}

/// A push abandoned while it waits for room (the input's drain time ended) is counted as
/// `shutdown_undelivered` and never written; one abandoned while a full disk stalls the writer
/// is counted by the writer thread when the buffer closes.
#[tokio::test]
async fn an_abandoned_push_is_counted_once_and_not_written() {
    let out = Component::output("o");
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let (w, mut r) = open_dir(&options(dir.path(), 64 << 10, WhenFull::Block), &metrics).await;
    let mut n = 0;
    let waiting = loop {
        let w2 = w.clone();
        let push = tokio::spawn(async move { w2.push(batch(n, 100)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        if !push.is_finished() {
            break push;
        }
        push.await.unwrap().unwrap();
        n += 1;
    };
    waiting.abort();
    let _ = waiting.await;
    assert_eq!(metrics.discarded(&out, "shutdown_undelivered"), 100);
    drop(w);
    let mut taken = 0;
    while let Some(q) = r.pop().await {
        taken += 1;
        q.done();
    }
    assert_eq!(taken, n, "the abandoned batch was not written");

    let fs = Tmpfs::mount("64k");
    let metrics = Metrics::new();
    let (w, mut r) = open_dir(&one_page_segments(fs.path(), WhenFull::Block), &metrics).await;
    let _ballast = fs.fill_leaving(2);
    for i in 0..12 {
        w.push(batch(i, 53)).await.unwrap();
    }
    let w2 = w.clone();
    let stalled_push = tokio::spawn(async move { w2.push(batch(12, 53)).await });
    wait_stalled(&metrics, 1).await;
    stalled_push.abort();
    let _ = stalled_push.await;
    assert_eq!(
        metrics.discarded(&out, "shutdown_undelivered"),
        0,
        "the writer thread still holds it"
    );
    r.close();
    for _ in 0..200 {
        if metrics.discarded(&out, "shutdown_undelivered") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(metrics.discarded(&out, "shutdown_undelivered"), 53);
}
