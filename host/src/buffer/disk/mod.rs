//! The disk buffer of one output: append-only segment files of checksummed records in a
//! directory of its own, a persisted acked-read pointer, and recovery on start.
//!
//! Write path: a push encodes its batch as one record ([`segment`]) and hands it to the
//! buffer's writer thread, which appends it to the active segment, fsyncs per the policy and
//! only then answers — so the forward input acks its sender only once the batch is in the file
//! (and on the disk, with `fsync = "always"`). Several pending pushes share one write and one
//! fsync (group commit). A segment is closed when it reaches its size and a new one started;
//! every start of the router begins a new segment, so files written before a crash are never
//! appended to.
//!
//! Read path: the output's reader reads records in order from the oldest segment. When the
//! output is done with a batch (delivered, or given up and counted), the acked-read pointer
//! moves past it and is written to the `ack` file ([`ack`]); segments wholly before it are
//! deleted. After a crash (even `kill -9`) the reader starts from the stored pointer, so what
//! was delivered is not sent again — except the batches delivered after the pointer's last
//! write: at most the delivery in flight when the process died (the output runner merges the
//! batches waiting behind one into a single delivery: up to `MAX_MERGED_EVENTS` events) and,
//! after a power loss, what was acked since the last sync of the `ack` file (at most one fsync
//! interval).
//!
//! Bounds: `max_bytes` caps the bytes on disk. Pushes are admitted while the bytes not yet
//! delivered stay under `max_bytes` minus one segment (the already-delivered head of the
//! oldest segment is still on disk until that segment is deleted); then `when_full` decides:
//! `block` waits for room, `drop_newest` drops and counts. Memory: encoded records waiting for
//! the writer thread are bounded by [`MAX_PENDING_BYTES`] per buffer (a larger record goes
//! alone), not drawn from the router's memory budget — so a memory-buffered output that holds
//! the whole budget while its endpoint is down cannot stall a disk-buffered one.
//!
//! Damage: a record whose header or payload fails its checksum, a truncated tail or a missing
//! segment is skipped, counted as `buffer_corrupt` and logged with its file and offsets; a
//! damaged segment file header holds no events (the records after it are still read). The
//! count is per event lost: a record with an intact header counts its own events; a region
//! whose headers are damaged counts 1 at first, and the next intact record of the same run
//! tells, by its first event's number ([`segment::Sequence`]), how many the region held — the
//! rest is counted then. Only damage with no intact record after it in its run (the tail the
//! run wrote last) stays counted as 1 per region. It never stops the router.
//!
//! Writes that fail (full disk, read-only directory, I/O error, failed fsync) never lose an
//! acknowledged batch: with `block` the writer thread retries in order, with backoff, until
//! writing works or the buffer closes (one log line per episode, the `buffer_stalled` gauge);
//! with `drop_newest` the batch is dropped and counted `buffer_write_failed`. A record cut by
//! a failed write is truncated away; a failed rotation reuses its segment file.

pub mod ack;
pub mod progress;
pub mod segment;

use super::{AbandonedPush, FsyncPolicy, PushError, Queued, Ticket, WhenFull};
use crate::event::{Batch, now_ns};
use crate::ops::metrics::{Component, Metrics};
use ack::{AckFile, Position};
use bytes::{Bytes, BytesMut};
use progress::{Delivered, ProgressFile};
use segment::{Parsed, RECORD_HEADER_LEN, SEGMENT_MAGIC, Sequence};
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore, oneshot};

/// Bytes the reader reads at once (a larger record is read whole).
const READ_WINDOW: usize = 1 << 20;
/// Bytes of encoded records handed to the writer thread and not yet written, per buffer.
pub const MAX_PENDING_BYTES: usize = 8 << 20;
/// Most records the writer thread writes before one fsync.
const MAX_GROUP_RECORDS: usize = 256;
/// Smallest and largest segment file.
const SEGMENT_BYTES: (u64, u64) = (4 << 10, 64 << 20);
const HEADER_LEN: u64 = SEGMENT_MAGIC.len() as u64;

/// How a disk buffer is set up.
#[derive(Clone, Debug)]
pub struct DiskOptions {
    /// The buffer's own directory (created if missing).
    pub dir: PathBuf,
    /// Most bytes of segment files.
    pub max_bytes: u64,
    /// What a push does when the buffer is full.
    pub when_full: WhenFull,
    /// When written records are flushed to the disk.
    pub fsync: FsyncPolicy,
    /// The period of [`FsyncPolicy::Interval`] (and of syncing the ack pointer).
    pub fsync_interval: Duration,
}

/// Why a disk buffer could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// Another process holds the directory.
    #[error(
        "disk buffer {dir} is in use by another process (its `lock` file is locked); give each router its own buffer path"
    )]
    Locked {
        /// The directory.
        dir: String,
    },
    /// A file operation failed.
    #[error(
        "disk buffer {dir}: cannot {what}: {source}; check that the path exists, is writable and has free space"
    )]
    Io {
        /// The directory.
        dir: String,
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
}

struct Shared {
    dir: PathBuf,
    component: Component,
    metrics: Arc<Metrics>,
    /// Most bytes not yet delivered (+ being written) before a push must wait or drop.
    admit_limit: u64,
    segment_max: u64,
    when_full: WhenFull,
    fsync: FsyncPolicy,
    /// Segments older than this one were written by an earlier run.
    first_segment_of_run: u64,
    state: Mutex<State>,
    /// Woken when bytes are acked (room for pushes) or the buffer is closed.
    space: Notify,
    /// Woken when records are committed or the writer ends.
    data: Notify,
    ack_dirty: AtomicBool,
    ack_sync: File,
    progress_dirty: AtomicBool,
    _lock: File,
}

struct State {
    /// Segment id → committed size in bytes.
    segments: BTreeMap<u64, u64>,
    /// The segment the writer appends to.
    active: u64,
    /// Bytes admitted by pushes and not yet committed.
    reserved: u64,
    /// Where the first record not yet done starts.
    acked: Position,
    /// Items handed out by the reader, in order, until the pointer passes them.
    outstanding: VecDeque<Outstanding>,
    next_ticket: u64,
    ack_file: AckFile,
    progress: ProgressFile,
    /// Events an earlier run delivered from records not yet done, by record start.
    delivered_before: Delivered,
    writer_closed: bool,
    push_closed: bool,
}

struct Outstanding {
    ticket: u64,
    end: Position,
    events: u64,
    done: bool,
}

impl State {
    /// Bytes from the acked pointer to the end of the newest segment.
    fn undelivered(&self) -> u64 {
        let total: u64 = self
            .segments
            .range(self.acked.segment..)
            .map(|(_, size)| size)
            .sum();
        total.saturating_sub(self.acked.offset)
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn segment_path(&self, id: u64) -> PathBuf {
        segment_path(&self.dir, id)
    }

    fn update_gauge(&self, state: &State) {
        self.metrics
            .buffer_bytes
            .get_or_create(&self.component.labels())
            .set(state.undelivered() as i64);
    }

    /// Mark `ticket` done and move the acked pointer over every done item at the front.
    fn complete(&self, ticket: u64) {
        let mut st = self.state();
        if let Some(item) = st.outstanding.iter_mut().find(|o| o.ticket == ticket) {
            item.done = true;
        }
        let mut moved_to = None;
        let mut events = 0;
        while st.outstanding.front().is_some_and(|o| o.done) {
            let item = st.outstanding.pop_front().unwrap();
            events += item.events;
            moved_to = Some(item.end);
        }
        let Some(to) = moved_to else { return };
        self.metrics
            .buffer_events
            .get_or_create(&self.component.labels())
            .dec_by(events as i64);
        st.acked = to;
        if let Err(e) = st.ack_file.store(to) {
            tracing::warn!(component = %self.component.id, dir = %self.dir.display(), error = %e,
                "cannot write the disk buffer's ack pointer; delivered batches may be sent again after a restart");
        }
        self.ack_dirty.store(true, Ordering::Relaxed);
        if let Err(e) = st.progress.forget_before(to) {
            tracing::warn!(component = %self.component.id, dir = %self.dir.display(), error = %e,
                "cannot empty the disk buffer's progress file");
        }
        let gone: Vec<u64> = st.segments.range(..to.segment).map(|(id, _)| *id).collect();
        for id in gone {
            st.segments.remove(&id);
            if let Err(e) = std::fs::remove_file(self.segment_path(id))
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(component = %self.component.id, segment = %self.segment_path(id).display(), error = %e,
                    "cannot delete a delivered segment");
            }
        }
        self.update_gauge(&st);
        drop(st);
        self.space.notify_waiters();
    }

    /// Log and count damage; `events` unknown counts as 1 until a later record tells more.
    /// Returns the events counted.
    fn count_corrupt(
        &self,
        segment: u64,
        from: u64,
        to: u64,
        events: Option<u32>,
        what: &str,
    ) -> u64 {
        let file = self.segment_path(segment);
        tracing::error!(component = %self.component.id, file = %file.display(), from, to, events = ?events,
            "disk buffer: skipping {what}");
        self.metrics.error(&self.component, "buffer_corrupt");
        let counted = events.map_or(1, u64::from);
        if counted > 0 {
            self.metrics
                .events_dropped(&self.component, "buffer_corrupt", counted);
        }
        counted
    }

    fn sync_ack(&self) {
        if self.ack_dirty.swap(false, Ordering::Relaxed)
            && let Err(e) = self.ack_sync.sync_data()
        {
            tracing::warn!(component = %self.component.id, error = %e, "cannot sync the disk buffer's ack pointer");
        }
        if self.progress_dirty.swap(false, Ordering::Relaxed)
            && let Err(e) = self.state().progress.sync()
        {
            tracing::warn!(component = %self.component.id, error = %e, "cannot sync the disk buffer's progress file");
        }
    }

    /// Persist that the events `delivered` (indexes into the record's events) of the record
    /// starting at `start` reached the destination.
    fn mark_delivered(&self, start: Position, delivered: impl IntoIterator<Item = u32>) {
        let bitmap = progress::bitmap_of(delivered);
        if bitmap.is_empty() {
            return;
        }
        let st = &mut *self.state();
        let result = st
            .progress
            .append(start, &bitmap)
            .and_then(|()| match self.fsync {
                FsyncPolicy::Always => st.progress.sync(),
                FsyncPolicy::Interval => {
                    self.progress_dirty.store(true, Ordering::Relaxed);
                    Ok(())
                }
                FsyncPolicy::Never => Ok(()),
            });
        if let Err(e) = result {
            tracing::warn!(component = %self.component.id, dir = %self.dir.display(), error = %e,
                "cannot write the disk buffer's progress file; delivered events of a cut delivery may be sent again after a restart");
        }
    }
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The pipeline's side of a disk buffer.
#[derive(Clone)]
pub(crate) struct DiskWriter {
    shared: Arc<Shared>,
    tx: std_mpsc::Sender<Append>,
    pending: Arc<Semaphore>,
}

/// The output's side of a disk buffer.
pub(crate) struct DiskReader {
    shared: Arc<Shared>,
    pos: Position,
    file: Option<(u64, File)>,
    ahead: VecDeque<ReadItem>,
    pending_read: Option<tokio::task::JoinHandle<ReadOutcome>>,
    /// The sequence the next record should have (after the last intact header read).
    expect: Option<Sequence>,
    /// Events counted for damage since then whose number was not known (1 per region).
    provisional: u64,
    /// Set when the reader passed a segment's file header since the last intact record
    /// header: if that segment is the first of its run, its first event is number 0.
    run_start: Option<Sequence>,
}

/// Completes a disk-buffered batch: moves the acked pointer past it.
pub(crate) struct DiskTicket {
    shared: Arc<Shared>,
    ticket: u64,
    /// Where the batch's record starts.
    start: Position,
    /// The record's index of each event of the batch, when an earlier run delivered some of
    /// the record's events (they are not in the batch); `None`: the batch is the whole record.
    record_index: Option<Vec<u32>>,
}

impl DiskTicket {
    pub(crate) fn done(self) {
        self.shared.complete(self.ticket);
    }

    pub(crate) fn mark_delivered(&self, delivered: &[u32]) {
        match &self.record_index {
            None => self
                .shared
                .mark_delivered(self.start, delivered.iter().copied()),
            Some(map) => self.shared.mark_delivered(
                self.start,
                delivered
                    .iter()
                    .filter_map(|&i| map.get(i as usize).copied()),
            ),
        }
    }
}

struct Append {
    record: Vec<u8>,
    events: u64,
    reply: oneshot::Sender<Result<(), WriteFailure>>,
}

/// Why the writer thread did not write a record.
enum WriteFailure {
    /// Writing failed and the policy is `drop_newest`: the batch is dropped.
    Io(io::Error),
    /// Writing failed with `block` and the buffer was closed before it worked again.
    Closed,
}

/// Open (or create) the disk buffer in `options.dir`, recovering what an earlier run left.
pub(crate) fn open(
    options: &DiskOptions,
    component: Component,
    metrics: Arc<Metrics>,
) -> Result<(DiskWriter, DiskReader), DiskError> {
    let dir = options.dir.clone();
    let io_err = |what: &str, source| DiskError::Io {
        dir: dir.display().to_string(),
        what: what.to_string(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(|e| io_err("create the directory", e))?;
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("lock"))
        .map_err(|e| io_err("create its lock file", e))?;
    if lock.try_lock().is_err() {
        return Err(DiskError::Locked {
            dir: dir.display().to_string(),
        });
    }

    let mut segments = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| io_err("list the directory", e))? {
        let entry = entry.map_err(|e| io_err("list the directory", e))?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_segment_name) {
            let size = entry
                .metadata()
                .map_err(|e| io_err("read a segment's size", e))?
                .len();
            segments.insert(id, size);
        }
    }
    let (mut ack_file, stored) =
        AckFile::open(&dir.join("ack")).map_err(|e| io_err("open the ack file", e))?;
    let active = segments.keys().next_back().map_or(1, |id| id + 1);
    // Start at the stored pointer; a pointer into a deleted segment moves to the next one.
    let mut acked = stored.unwrap_or(Position {
        segment: 0,
        offset: 0,
    });
    if !segments.contains_key(&acked.segment) {
        let next = segments
            .range(acked.segment..)
            .next()
            .map_or(active, |(id, _)| *id);
        acked = Position {
            segment: next,
            offset: 0,
        };
    }
    if let Some(&size) = segments.get(&acked.segment)
        && acked.offset > size
    {
        tracing::warn!(component = %component.id, dir = %dir.display(), "disk buffer: the ack pointer is past the end of its segment; resuming at the next one");
        acked = Position {
            segment: acked.segment + 1,
            offset: 0,
        };
    }
    if acked.offset < HEADER_LEN {
        acked.offset = 0;
    }
    for id in segments
        .range(..acked.segment)
        .map(|(id, _)| *id)
        .collect::<Vec<_>>()
    {
        segments.remove(&id);
        let _ = std::fs::remove_file(segment_path(&dir, id));
    }
    let recovered_segments = segments.len();

    // A directory that cannot take a new segment now (full, read-only) does not stop the
    // router: the writer thread starts the segment once writing works (what was recovered is
    // delivered meanwhile).
    let file = match start_segment(&dir, active, options.fsync) {
        Ok(file) => {
            segments.insert(active, HEADER_LEN);
            Some(file)
        }
        Err(e) => {
            tracing::error!(component = %component.id, dir = %dir.display(), error = %e,
                "disk buffer: cannot start a segment; pushes wait until the directory can be written (free space or make it writable)");
            None
        }
    };
    if stored != Some(acked) {
        ack_file
            .store(acked)
            .map_err(|e| io_err("write the ack file", e))?;
    }
    let ack_sync =
        std::fs::File::open(dir.join("ack")).map_err(|e| io_err("open the ack file", e))?;
    let (progress, delivered_before) = ProgressFile::open(&dir.join("progress"), acked)
        .map_err(|e| io_err("open the progress file", e))?;

    let segment_max = (options.max_bytes / 8).clamp(SEGMENT_BYTES.0, SEGMENT_BYTES.1);
    let state = State {
        segments,
        active,
        reserved: 0,
        acked,
        outstanding: VecDeque::new(),
        next_ticket: 0,
        ack_file,
        progress,
        delivered_before,
        writer_closed: false,
        push_closed: false,
    };
    let pending = state.undelivered().saturating_sub(HEADER_LEN);
    let shared = Arc::new(Shared {
        dir: dir.clone(),
        component,
        metrics,
        admit_limit: options.max_bytes.saturating_sub(segment_max).max(1),
        segment_max,
        when_full: options.when_full,
        fsync: options.fsync,
        first_segment_of_run: active,
        state: Mutex::new(state),
        space: Notify::new(),
        data: Notify::new(),
        ack_dirty: AtomicBool::new(false),
        ack_sync,
        progress_dirty: AtomicBool::new(false),
        _lock: lock,
    });
    shared.update_gauge(&shared.state());
    if recovered_segments > 0 {
        tracing::info!(component = %shared.component.id, dir = %dir.display(), segments = recovered_segments,
            bytes = pending, "disk buffer: resuming delivery of what an earlier run left");
    }

    let (tx, rx) = std_mpsc::channel();
    let thread_shared = shared.clone();
    let interval = options.fsync_interval.max(Duration::from_millis(1));
    std::thread::Builder::new()
        .name(format!("disk-buffer-{}", shared.component.id))
        .spawn(move || {
            SegmentWriter {
                shared: thread_shared,
                file,
                segment: active,
                size: HEADER_LEN,
                interval,
                dirty: false,
                failing: None,
                run: active,
                next_event: 0,
            }
            .run(rx)
        })
        .map_err(|e| io_err("start its writer thread", e))?;

    let writer = DiskWriter {
        shared: shared.clone(),
        tx,
        pending: Arc::new(Semaphore::new(MAX_PENDING_BYTES)),
    };
    let reader = DiskReader {
        shared,
        pos: acked,
        file: None,
        ahead: VecDeque::new(),
        pending_read: None,
        expect: None,
        provisional: 0,
        run_start: None,
    };
    Ok((writer, reader))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl DiskWriter {
    /// Write `batch` to the buffer; returns once it is in the segment file (and synced per the
    /// fsync policy).
    pub(crate) async fn push(&self, batch: Batch) -> Result<(), PushError> {
        let shared = &self.shared;
        let mut abandoned =
            AbandonedPush::new(&shared.metrics, &shared.component, batch.len() as u64);
        let pushed = self.write(batch, &mut abandoned).await;
        abandoned.settled();
        pushed
    }

    /// [`push`](Self::push); once the record is handed to the writer thread, `abandoned` is
    /// settled: the thread writes it or counts it, whether or not this push still waits.
    async fn write(
        &self,
        batch: Batch,
        abandoned: &mut AbandonedPush<'_>,
    ) -> Result<(), PushError> {
        let events = batch.len() as u64;
        let len = segment::encoded_len(&batch) as u64;
        let reservation = self.reserve(len, events).await?;
        // Waiting here is brief: the writer thread drains at disk speed.
        let Ok(_pending) = self
            .pending
            .acquire_many(len.clamp(1, MAX_PENDING_BYTES as u64) as u32)
            .await
        else {
            return Err(self.closed(events));
        };
        let mut record = Vec::new();
        segment::encode_record(&batch, now_ns(), &mut record);
        drop(batch);
        let (reply, answer) = oneshot::channel();
        if self
            .tx
            .send(Append {
                record,
                events,
                reply,
            })
            .is_err()
        {
            return Err(self.closed(events));
        }
        // The writer thread now owns the reserved bytes and the record's fate.
        reservation.handed_over();
        abandoned.settled();
        // The writer thread logs failed writes (once per episode) and counts what it drops.
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(WriteFailure::Io(e))) => Err(PushError::Write(e)),
            Ok(Err(WriteFailure::Closed)) => Err(PushError::Closed),
            Err(_) => Err(self.closed(events)),
        }
    }

    fn full(&self, events: u64) -> PushError {
        self.shared
            .metrics
            .events_dropped(&self.shared.component, "buffer_full", events);
        PushError::Full
    }

    fn closed(&self, events: u64) -> PushError {
        self.shared
            .metrics
            .events_dropped(&self.shared.component, "shutdown_undelivered", events);
        PushError::Closed
    }

    /// Admit `len` bytes, waiting for room with `block`.
    async fn reserve(&self, len: u64, events: u64) -> Result<Reservation<'_>, PushError> {
        let shared = &self.shared;
        loop {
            let notified = shared.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = shared.state();
                if st.push_closed {
                    return Err(self.closed(events));
                }
                let used = st.undelivered().saturating_sub(HEADER_LEN) + st.reserved;
                // A record larger than the whole buffer still goes through, alone.
                if used + len <= shared.admit_limit || used == 0 {
                    st.reserved += len;
                    return Ok(Reservation {
                        shared,
                        len: Some(len),
                    });
                }
            }
            match shared.when_full {
                WhenFull::DropNewest => return Err(self.full(events)),
                WhenFull::Block => notified.await,
            }
        }
    }
}

/// Bytes admitted for a push; given back if the push ends before the writer thread has them.
struct Reservation<'a> {
    shared: &'a Shared,
    len: Option<u64>,
}

impl Reservation<'_> {
    fn handed_over(mut self) {
        self.len = None;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(len) = self.len {
            let mut st = self.shared.state();
            st.reserved = st.reserved.saturating_sub(len);
            drop(st);
            self.shared.space.notify_waiters();
        }
    }
}

/// The writer thread's state: the active segment.
struct SegmentWriter {
    shared: Arc<Shared>,
    /// The active segment; `None` until it could be started (the directory could not take a
    /// new file when the buffer opened).
    file: Option<File>,
    segment: u64,
    size: u64,
    interval: Duration,
    dirty: bool,
    /// Since when writing fails, while it does.
    failing: Option<Failing>,
    /// This run (its first segment id) and the number of the next event it writes.
    run: u64,
    next_event: u64,
}

/// An episode of failed writes.
struct Failing {
    since: Instant,
    attempts: u32,
}

/// Backoff between attempts while writing fails: doubling from the first to the second.
const RETRY_BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));

/// What went wrong in one step of [`SegmentWriter::write_group`].
enum StepError {
    /// Writing the front record failed; nothing of it is in the file.
    Append(io::Error),
    /// Syncing or rolling back what the group wrote failed: those records are not in the file
    /// (they were truncated away) and go back to the front of the queue.
    Commit(io::Error),
    /// Starting the next segment failed; the front record was not written.
    Rotate(io::Error),
}

impl SegmentWriter {
    fn run(mut self, rx: std_mpsc::Receiver<Append>) {
        let mut last_sync = Instant::now();
        loop {
            let first = if self.shared.fsync == FsyncPolicy::Never {
                rx.recv()
                    .map_err(|_| std_mpsc::RecvTimeoutError::Disconnected)
            } else {
                rx.recv_timeout(self.interval.saturating_sub(last_sync.elapsed()))
            };
            let first = match first {
                Ok(a) => a,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    self.periodic_sync();
                    last_sync = Instant::now();
                    continue;
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP_RECORDS {
                match rx.try_recv() {
                    Ok(a) => group.push(a),
                    Err(_) => break,
                }
            }
            self.write_group(group);
            if self.shared.fsync == FsyncPolicy::Interval && last_sync.elapsed() >= self.interval {
                self.periodic_sync();
                last_sync = Instant::now();
            }
        }
        if self.shared.fsync != FsyncPolicy::Never {
            self.periodic_sync();
        }
        if let Some(file) = &self.file {
            // A failed write may have left a partial record after the last committed one.
            let _ = file.set_len(self.size);
        }
        self.shared.state().writer_closed = true;
        self.shared.data.notify_waiters();
    }

    fn periodic_sync(&mut self) {
        if self.dirty
            && let Some(file) = &self.file
        {
            if let Err(e) = file.sync_data() {
                tracing::warn!(component = %self.shared.component.id, error = %e, "disk buffer: fsync failed");
            }
            self.dirty = false;
        }
        self.shared.sync_ack();
    }

    /// Write `group` in order. A record is answered once it is committed: in the file, synced
    /// per the policy, and visible to the reader. When writing fails, `block` waits and
    /// retries (in order) until it works again or the buffer is closed; `drop_newest` answers
    /// the records that could not be written with the error (their pushes count them).
    fn write_group(&mut self, group: Vec<Append>) {
        let mut queue: VecDeque<Append> = group.into();
        // Records in the file but not committed yet, and where the first of them starts.
        let mut written: Vec<Append> = Vec::new();
        let mut from = self.size;
        loop {
            let step = match queue.front() {
                None if written.is_empty() => break,
                None => self.commit(&mut written, &mut from),
                Some(a) if self.needs_rotation(a.record.len()) => self
                    .commit(&mut written, &mut from)
                    .and_then(|()| self.rotate().map_err(StepError::Rotate))
                    .map(|()| from = self.size),
                Some(_) => {
                    let a = queue.front_mut().expect("a front record");
                    let sequence = Sequence {
                        run: self.run,
                        first: self.next_event,
                    };
                    segment::set_sequence(&mut a.record, sequence);
                    match self.append(&a.record) {
                        Ok(()) => {
                            self.next_event += a.events;
                            written.push(queue.pop_front().expect("a front record"));
                            Ok(())
                        }
                        Err(e) => Err(StepError::Append(e)),
                    }
                }
            };
            let error = match step {
                Ok(()) => {
                    self.writing_again();
                    continue;
                }
                Err(StepError::Commit(e)) => {
                    while let Some(a) = written.pop() {
                        queue.push_front(a);
                    }
                    e
                }
                Err(StepError::Append(e) | StepError::Rotate(e)) => e,
            };
            self.failed(&error);
            match self.shared.when_full {
                WhenFull::DropNewest => {
                    // Only the record that could not be written is dropped; `written` is kept.
                    let a = queue.pop_front().expect("a failed record");
                    self.answer(a, Err(WriteFailure::Io(error)));
                }
                WhenFull::Block => {
                    if !self.wait_to_retry() {
                        // Closed: keep what is written if it can still be committed.
                        if self.commit(&mut written, &mut from).is_err() {
                            while let Some(a) = written.pop() {
                                queue.push_front(a);
                            }
                        }
                        for a in queue.drain(..) {
                            self.answer(a, Err(WriteFailure::Closed));
                        }
                        return;
                    }
                }
            }
        }
    }

    fn needs_rotation(&self, len: usize) -> bool {
        self.file.is_none()
            || (self.size > HEADER_LEN && self.size + len as u64 > self.shared.segment_max)
    }

    /// Append one record after the last one; on failure nothing of it stays in the file.
    fn append(&mut self, record: &[u8]) -> io::Result<()> {
        let file = self.file.as_ref().expect("an active segment");
        match file.write_all_at(record, self.size) {
            Ok(()) => {
                self.size += record.len() as u64;
                self.dirty = true;
                Ok(())
            }
            Err(e) => {
                // Drop a partial write; if that fails too, the next record overwrites it, and
                // the reader never reads past the committed size.
                let _ = file.set_len(self.size);
                Err(e)
            }
        }
    }

    /// Sync `written` (with `always`), publish it to the reader and answer its pushes. On a
    /// failed sync the records are cut off the file (a failed fsync leaves their pages in an
    /// unknown state) to be written again.
    fn commit(&mut self, written: &mut Vec<Append>, from: &mut u64) -> Result<(), StepError> {
        if written.is_empty() {
            return Ok(());
        }
        let file = self.file.as_ref().expect("an active segment");
        if self.shared.fsync == FsyncPolicy::Always {
            if let Err(e) = file.sync_data() {
                self.size = *from;
                let _ = file.set_len(*from);
                self.next_event -= written.iter().map(|a| a.events).sum::<u64>();
                return Err(StepError::Commit(e));
            }
            self.dirty = false;
        }
        let events: u64 = written.iter().map(|a| a.events).sum();
        {
            let mut st = self.shared.state();
            st.segments.insert(self.segment, self.size);
            self.shared.update_gauge(&st);
        }
        self.shared
            .metrics
            .buffer_events
            .get_or_create(&self.shared.component.labels())
            .inc_by(events as i64);
        for a in written.drain(..) {
            self.answer(a, Ok(()));
        }
        *from = self.size;
        self.shared.data.notify_waiters();
        Ok(())
    }

    /// The record leaves the writer: its reserved bytes are released, its events counted if it
    /// was not written, and its push answered (if the push still waits).
    fn answer(&self, append: Append, result: Result<(), WriteFailure>) {
        {
            let mut st = self.shared.state();
            st.reserved = st.reserved.saturating_sub(append.record.len() as u64);
        }
        let reason = match &result {
            Ok(()) => None,
            Err(WriteFailure::Io(_)) => Some("buffer_write_failed"),
            Err(WriteFailure::Closed) => Some("shutdown_undelivered"),
        };
        if let Some(reason) = reason {
            self.shared
                .metrics
                .events_dropped(&self.shared.component, reason, append.events);
        }
        self.shared.space.notify_waiters();
        let _ = append.reply.send(result);
    }

    /// Close the active segment (synced per the policy) and start the next; or start the first
    /// one of this run if that failed when the buffer opened.
    fn rotate(&mut self) -> io::Result<()> {
        let never = self.shared.fsync == FsyncPolicy::Never;
        let next = match &self.file {
            None => self.segment,
            Some(file) => {
                if !never {
                    file.sync_data()?;
                    self.dirty = false;
                }
                self.segment + 1
            }
        };
        let file = start_segment(&self.shared.dir, next, self.shared.fsync)?;
        let mut st = self.shared.state();
        if self.file.is_some() {
            st.segments.insert(self.segment, self.size);
        }
        st.segments.insert(next, HEADER_LEN);
        st.active = next;
        drop(st);
        self.file = Some(file);
        self.segment = next;
        self.size = HEADER_LEN;
        Ok(())
    }

    /// Writing failed: the first failure of an episode is logged and shown on the
    /// `buffer_stalled` gauge.
    fn failed(&mut self, error: &io::Error) {
        match &mut self.failing {
            Some(failing) => failing.attempts += 1,
            None => {
                let what = match self.shared.when_full {
                    WhenFull::Block => {
                        "pushes wait (the inputs stop acknowledging) and writing is retried until it works again"
                    }
                    WhenFull::DropNewest => {
                        "batches that cannot be written are dropped and counted as buffer_write_failed (when_full = \"drop_newest\")"
                    }
                };
                tracing::error!(component = %self.shared.component.id, dir = %self.shared.dir.display(), segment = self.segment, %error,
                    "disk buffer: cannot write; {what}; free space or make the directory writable");
                self.shared
                    .metrics
                    .error(&self.shared.component, "buffer_write_failed");
                self.shared
                    .metrics
                    .buffer_stalled
                    .get_or_create(&self.shared.component.labels())
                    .set(1);
                self.failing = Some(Failing {
                    since: Instant::now(),
                    attempts: 1,
                });
            }
        }
    }

    /// A step succeeded: end the episode of failed writes, if any.
    fn writing_again(&mut self) {
        if let Some(failing) = self.failing.take() {
            tracing::warn!(component = %self.shared.component.id, dir = %self.shared.dir.display(),
                failed_for = ?failing.since.elapsed(), attempts = failing.attempts,
                "disk buffer: writing works again");
            self.shared
                .metrics
                .buffer_stalled
                .get_or_create(&self.shared.component.labels())
                .set(0);
        }
    }

    /// Wait before the next attempt; false if the buffer was closed meanwhile.
    fn wait_to_retry(&self) -> bool {
        let attempts = self.failing.as_ref().map_or(1, |f| f.attempts);
        let backoff = RETRY_BACKOFF
            .0
            .saturating_mul(1 << attempts.min(8).saturating_sub(1))
            .min(RETRY_BACKOFF.1);
        let until = Instant::now() + backoff;
        loop {
            if self.shared.state().push_closed {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(RETRY_BACKOFF.0));
        }
    }
}

/// Create (or, after a failed attempt, reuse) segment `id` with its file header, synced per
/// `fsync`. On failure the file is removed if possible; a file left shorter than its header
/// holds no records, and the reader passes it over.
fn start_segment(dir: &Path, id: u64, fsync: FsyncPolicy) -> io::Result<File> {
    let path = segment_path(dir, id);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    let started = file.write_all_at(SEGMENT_MAGIC, 0).and_then(|()| {
        if fsync == FsyncPolicy::Never {
            return Ok(());
        }
        file.sync_data()?;
        sync_dir(dir)
    });
    match started {
        Ok(()) => Ok(file),
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
    }
}

/// What one read of a segment found.
enum ReadItem {
    Record {
        batch: Batch,
        accepted_at_ns: u64,
        start: Position,
        end: Position,
        recovered: bool,
        sequence: Option<Sequence>,
    },
    Corrupt {
        segment: u64,
        from: u64,
        end: Position,
        events: Option<u32>,
        /// Known when the damaged record's header is intact.
        sequence: Option<Sequence>,
        what: &'static str,
    },
    /// Bytes passed over that hold no events (a segment's file header).
    Skip { end: Position },
}

type ReadOutcome = (Option<(u64, File)>, io::Result<Vec<ReadItem>>);

/// What the reader should do next, decided under the state lock.
enum Plan {
    Read { limit: u64 },
    NextSegment(u64),
    Wait,
    End,
}

impl DiskReader {
    /// The next batch in order, waiting for one; `None` once the writers are gone and
    /// everything written has been handed out.
    pub(crate) async fn pop(&mut self) -> Option<Queued> {
        loop {
            if let Some(item) = self.ahead.pop_front() {
                if let Some(queued) = self.hand_out(item) {
                    return Some(queued);
                }
                continue;
            }
            if let Some(handle) = self.pending_read.as_mut() {
                let outcome = handle.await;
                self.pending_read = None;
                match outcome {
                    Ok((file, Ok(items))) => {
                        self.file = file;
                        self.ahead.extend(items);
                    }
                    Ok((file, Err(e))) => {
                        self.file = file;
                        tracing::error!(component = %self.shared.component.id, segment = self.pos.segment, error = %e,
                            "disk buffer: cannot read a segment; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Err(e) => {
                        tracing::error!(component = %self.shared.component.id, error = %e, "disk buffer: read task failed");
                        self.file = None;
                    }
                }
                continue;
            }
            let notified = self.shared.data.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.plan() {
                Plan::End => return None,
                Plan::Wait => notified.await,
                Plan::NextSegment(next) => {
                    let end = Position {
                        segment: next,
                        offset: 0,
                    };
                    self.ahead.push_back(ReadItem::Skip { end });
                }
                Plan::Read { limit } => {
                    let file = self.file.take();
                    let (dir, pos, recovered) = (
                        self.shared.dir.clone(),
                        self.pos,
                        self.pos.segment < self.shared.first_segment_of_run,
                    );
                    self.pending_read = Some(tokio::task::spawn_blocking(move || {
                        read_segment(&dir, file, pos, limit, recovered)
                    }));
                }
            }
        }
    }

    /// The next batch already read from its segment (a read window holds many), if any; never
    /// reads nor waits: when the window is used up, the next [`pop`](Self::pop) reads on.
    pub(crate) fn try_pop(&mut self) -> Option<Queued> {
        while let Some(item) = self.ahead.pop_front() {
            if let Some(queued) = self.hand_out(item) {
                return Some(queued);
            }
        }
        None
    }

    fn plan(&self) -> Plan {
        let st = self.shared.state();
        let Some(&size) = st.segments.get(&self.pos.segment) else {
            // Not a segment (e.g. the pointer was past every file): go to the next one.
            return match st.segments.range(self.pos.segment..).next() {
                Some((&id, _)) => Plan::NextSegment(id),
                None if st.writer_closed => Plan::End,
                None => Plan::Wait,
            };
        };
        let last = self.pos.segment < st.active;
        if self.pos.offset < size {
            Plan::Read { limit: size }
        } else if last {
            let next = st
                .segments
                .range(self.pos.segment + 1..)
                .next()
                .map_or(st.active, |(id, _)| *id);
            Plan::NextSegment(next)
        } else if st.writer_closed {
            Plan::End
        } else {
            Plan::Wait
        }
    }

    /// Register `item` as outstanding; a record becomes a [`Queued`].
    fn hand_out(&mut self, mut item: ReadItem) -> Option<Queued> {
        if let ReadItem::Record {
            batch,
            start,
            sequence,
            ..
        } = &item
        {
            self.in_sequence(*sequence, batch.len() as u64, *start);
        }
        if let ReadItem::Skip { end } | ReadItem::Corrupt { end, .. } = &item
            && end.offset == HEADER_LEN
            && self.pos.offset == 0
        {
            self.run_start = Some(Sequence {
                run: end.segment,
                first: 0,
            });
        }
        let mut record_index = None;
        if let ReadItem::Record {
            batch, start, end, ..
        } = &mut item
            && let Some(bitmap) = self.shared.state().delivered_before.remove(start)
        {
            let total = batch.len();
            let (kept, index): (Vec<_>, Vec<_>) = std::mem::take(&mut batch.events)
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !progress::is_set(&bitmap, *i))
                .map(|(i, event)| (event, i as u32))
                .unzip();
            tracing::info!(component = %self.shared.component.id, segment = start.segment, offset = start.offset,
                delivered = total - kept.len(), left = kept.len(),
                "disk buffer: an earlier run delivered part of this batch; reading back only the rest");
            if kept.is_empty() {
                item = ReadItem::Skip { end: *end };
            } else {
                batch.events = kept;
                record_index = Some(index);
            }
        }
        let (end, events) = match &item {
            ReadItem::Record { batch, end, .. } => (*end, batch.len() as u64),
            ReadItem::Corrupt { end, .. } | ReadItem::Skip { end } => (*end, 0),
        };
        if end.segment != self.pos.segment {
            self.file = None;
        }
        self.pos = end;
        let ticket = {
            let mut st = self.shared.state();
            let ticket = st.next_ticket;
            st.next_ticket += 1;
            st.outstanding.push_back(Outstanding {
                ticket,
                end,
                events,
                done: false,
            });
            ticket
        };
        match item {
            ReadItem::Record {
                batch,
                accepted_at_ns,
                start,
                recovered,
                ..
            } => {
                if recovered {
                    self.shared
                        .metrics
                        .buffer_events
                        .get_or_create(&self.shared.component.labels())
                        .inc_by(events as i64);
                }
                let ticket = DiskTicket {
                    shared: self.shared.clone(),
                    ticket,
                    start,
                    record_index,
                };
                Some(Queued {
                    batch,
                    accepted_at_ns,
                    ticket: Ticket::Disk(ticket),
                })
            }
            ReadItem::Corrupt {
                segment,
                from,
                end,
                events,
                sequence,
                what,
            } => {
                let counted = self
                    .shared
                    .count_corrupt(segment, from, end.offset, events, what);
                match sequence {
                    Some(_) => {
                        let at = Position {
                            segment,
                            offset: from,
                        };
                        self.in_sequence(sequence, counted, at);
                    }
                    None => self.provisional += counted,
                }
                self.shared.complete(ticket);
                None
            }
            ReadItem::Skip { .. } => {
                self.shared.complete(ticket);
                None
            }
        }
    }

    /// An intact record header at `at` (of a record or of a damaged payload) with `events`
    /// events: if the damage read since the last intact header held more events than were
    /// counted for it, count the rest now (the run's event numbers tell exactly how many).
    fn in_sequence(&mut self, sequence: Option<Sequence>, events: u64, at: Position) {
        let same_run =
            |s: &Option<Sequence>| s.filter(|s| sequence.is_some_and(|g| g.run == s.run));
        let expected = same_run(&self.expect).or(same_run(&self.run_start));
        self.run_start = None;
        if let (Some(got), Some(expected)) = (sequence, expected)
            && got.first > expected.first
        {
            let lost = got.first - expected.first;
            let uncounted = lost.saturating_sub(self.provisional);
            if uncounted > 0 {
                tracing::error!(component = %self.shared.component.id, segment = at.segment, offset = at.offset, lost,
                    "disk buffer: the damage before this record held {lost} events; counting the {uncounted} not counted yet");
                self.shared.metrics.events_dropped(
                    &self.shared.component,
                    "buffer_corrupt",
                    uncounted,
                );
            }
        }
        self.provisional = 0;
        self.expect = sequence.map(|s| Sequence {
            run: s.run,
            first: s.first + events,
        });
    }

    /// Refuse further pushes: waiting and new pushes fail (counted as `shutdown_undelivered`).
    pub(crate) fn close(&mut self) {
        self.shared.state().push_closed = true;
        self.shared.space.notify_waiters();
    }

    /// Sync the ack pointer and report what stays on disk for the next start.
    pub(crate) fn finish(self) {
        self.shared.sync_ack();
        let left = self.shared.state().undelivered().saturating_sub(HEADER_LEN);
        if left > 0 {
            tracing::info!(component = %self.shared.component.id, dir = %self.shared.dir.display(), bytes = left,
                "disk buffer: undelivered events stay on disk for the next start");
        }
    }
}

/// Read records of segment `pos.segment` from `pos.offset` up to `limit`, its committed size
/// (committed sizes always fall on record boundaries, so a record reaching past `limit` is
/// damaged or truncated).
fn read_segment(
    dir: &Path,
    file: Option<(u64, File)>,
    pos: Position,
    limit: u64,
    recovered: bool,
) -> ReadOutcome {
    let file = match file {
        Some((id, f)) if id == pos.segment => f,
        _ => match File::open(segment_path(dir, pos.segment)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let end = Position {
                    segment: pos.segment,
                    offset: limit,
                };
                let item = ReadItem::Corrupt {
                    segment: pos.segment,
                    from: pos.offset,
                    end,
                    events: None,
                    sequence: None,
                    what: "a missing segment",
                };
                return (None, Ok(vec![item]));
            }
            Err(e) => return (None, Err(e)),
        },
    };
    let items = read_records(&file, pos, limit, recovered);
    (Some((pos.segment, file)), items)
}

fn read_records(
    file: &File,
    pos: Position,
    limit: u64,
    recovered: bool,
) -> io::Result<Vec<ReadItem>> {
    let seg = pos.segment;
    let at = |offset| Position {
        segment: seg,
        offset,
    };
    if pos.offset == 0 && limit < HEADER_LEN {
        // A segment whose start failed (full or read-only directory): it never held a record.
        return Ok(vec![ReadItem::Skip { end: at(limit) }]);
    }
    if pos.offset == 0 {
        let mut magic = [0u8; HEADER_LEN as usize];
        let ok = limit >= HEADER_LEN
            && file.read_exact_at(&mut magic, 0).is_ok()
            && &magic == SEGMENT_MAGIC;
        // A damaged file header holds no events; the records after it are read as usual.
        return Ok(vec![if ok {
            ReadItem::Skip {
                end: at(HEADER_LEN),
            }
        } else {
            ReadItem::Corrupt {
                segment: seg,
                from: 0,
                end: at(HEADER_LEN),
                events: Some(0),
                sequence: None,
                what: "a damaged segment file header (the records after it are still read)",
            }
        }]);
    }
    let mut window_len = (limit - pos.offset).min(READ_WINDOW as u64) as usize;
    loop {
        let mut buf = BytesMut::zeroed(window_len);
        file.read_exact_at(&mut buf, pos.offset)?;
        let buf: Bytes = buf.freeze();
        let window_end = pos.offset + window_len as u64;
        let mut items = Vec::new();
        let mut cur = 0usize;
        let mut grow_to = None;
        while cur < buf.len() {
            let offset = pos.offset + cur as u64;
            match segment::parse_record(&buf.slice(cur..)) {
                Parsed::Record {
                    batch,
                    accepted_at_ns,
                    len,
                    sequence,
                } => {
                    cur += len;
                    items.push(ReadItem::Record {
                        batch,
                        accepted_at_ns,
                        start: at(offset),
                        end: at(pos.offset + cur as u64),
                        recovered,
                        sequence,
                    });
                }
                Parsed::BadPayload {
                    len,
                    events,
                    sequence,
                } => {
                    cur += len;
                    let end = at(pos.offset + cur as u64);
                    items.push(ReadItem::Corrupt {
                        segment: seg,
                        from: offset,
                        end,
                        events: Some(events),
                        sequence,
                        what: "a record that fails its checksum",
                    });
                }
                Parsed::Incomplete { need } => {
                    let fits = match need {
                        Some(n) => offset + n as u64 <= limit,
                        None => window_end < limit,
                    };
                    if !fits {
                        let events = need.and_then(|_| header_events(&buf[cur..]));
                        items.push(ReadItem::Corrupt {
                            segment: seg,
                            from: offset,
                            end: at(limit),
                            events,
                            sequence: None,
                            what: "a truncated record",
                        });
                    } else if items.is_empty() {
                        // A record larger than the window: read it whole.
                        grow_to = Some(
                            need.unwrap_or(RECORD_HEADER_LEN)
                                .max(window_len * 2)
                                .min((limit - pos.offset) as usize),
                        );
                    }
                    break;
                }
                Parsed::BadHeader => {
                    let next = segment::find_next_header(&buf, cur);
                    let end = match next {
                        Some(n) => pos.offset + n as u64,
                        None if window_end == limit => limit,
                        // Keep bytes that may be the start of a header cut by the window.
                        None => (window_end - (RECORD_HEADER_LEN as u64 - 1)).max(offset + 1),
                    };
                    items.push(ReadItem::Corrupt {
                        segment: seg,
                        from: offset,
                        end: at(end),
                        events: None,
                        sequence: None,
                        what: "bytes that are not a valid record",
                    });
                    if next.is_none() {
                        break;
                    }
                    cur = (end - pos.offset) as usize;
                }
            }
        }
        match grow_to {
            Some(n) => window_len = n,
            None => return Ok(items),
        }
    }
}

/// The event count of a record header at the start of `buf`, if it is intact.
fn header_events(buf: &[u8]) -> Option<u32> {
    (buf.len() >= 12).then(|| u32::from_le_bytes(buf[8..12].try_into().unwrap()))
}

#[cfg(test)]
mod tests;
