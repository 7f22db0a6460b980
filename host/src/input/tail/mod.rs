//! `type = "tail"`: Fluent Bit's `in_tail`. Reads the files matching `path` (shell globs, less
//! `exclude_path`) line by line, each line a record `{"log": "…"}` (or what `parser` makes of
//! it) tagged `tag`, where a `*` becomes the file's path (`kube.*` → `kube.var.log.app.log`).
//!
//! Delivery: a file's offset moves past a line only once the pipeline took it (every matching
//! output's buffer holds it); the offsets are saved in `db` (see [`db`]) when the input is idle,
//! at least every second while busy, and at shutdown, so a restart resumes where the pipeline
//! stopped taking lines: nothing lost, nothing read twice (with multiline parsers: nothing lost,
//! see below). While the buffers are full the input waits; a batch a buffer refuses is read again
//! later, never dropped.
//!
//! Files: found by the globs at start (read from their end, or their start with
//! `read_from_head`, or from their saved offset) and every `refresh_interval` or as soon as
//! inotify reports a new name in a watched directory (files found after start are read from
//! their start). Open files are read when inotify says they changed and checked every second
//! (the polling fallback where inotify is not available). A file renamed away (rotation) is
//! read to its end for up to `rotate_wait` while the new file at its path is read from its
//! start; a file renamed to another matching name is simply followed; a file whose size falls
//! below its offset was truncated (copytruncate) and is read again from 0
//! (`component_errors_total{reason="file_truncated"}`); a deleted file is read to its end and
//! closed. At most `max_open_files` are open; when more match, files idle for
//! `refresh_interval` are closed (their offsets kept) to give the others a turn.
//!
//! Multiline (`multiline_parser`, Fluent Bit `multiline.parser`): each file's lines go, as raw
//! text, through one [`Joiner`] of the named [multiline parsers](crate::multiline) per file (so
//! `docker` and `cri` parse the runtime's line format themselves); what comes out gets `path_key`
//! and `offset_key` (the offset after the line whose reading released it) and goes into the
//! pipeline like other lines; `parser` and `key` are not applied (text is under `log`, as in
//! Fluent Bit). An open message is passed on after the chain's flush timeout (the longest of its
//! parsers', e.g. 4s), checked at each wake-up (at least every second); when its file is closed
//! (deleted, rotated away, stopped); and at shutdown (within `drain`). Records a buffer refuses
//! wait with their file (`pending`) and are sent before its next lines: never dropped. Messages
//! cut at the joiner's limits (2MiB, 10000 lines) are counted
//! `component_errors_total{reason="multiline_size_cap"|"multiline_line_cap"}`; when the joiners of
//! all files hold more than [`MAX_HELD_BYTES`], the file being read passes its messages on early
//! (`multiline_held_cap`).
//!
//! Multiline delivery: a line in a joiner (or in a pending record) has left the file but not
//! reached the pipeline, so the offset saved for a file is `min(offset, where the oldest held or
//! pending line starts)` ([`Joiner::oldest_held_at`]; conservatively, a line starts where the
//! line before it ended). After a crash the open messages are read again whole: no line is
//! lost, though lines of a message passed on just before the crash may be read twice (duplicates,
//! never loss). A graceful stop passes on the open messages and saves the offset past them.
//!
//! Bounded: one read buffer for the whole input, at most `buffer_max_size` + 1 bytes for a line.
//! A longer line is skipped with `skip_long_lines` (counted dropped, `line_too_long`); without
//! it the file stops being read, as in Fluent Bit (also counted `line_too_long`, and logged).
//! Text left after the last newline of a file that is closed is counted
//! `file_closed_mid_line`.

pub mod config;
pub mod db;
mod lines;
mod record;

pub use config::TailInputConfig;

use crate::event::{Batch, now_ns};
use crate::multiline::{JoinLimits, Joiner, ParserChain};
use crate::ops::metrics::{Component, Metrics};
use crate::ops::shutdown::Shutdown;
use crate::pipeline::Pipeline;
use bytes::Bytes;
use db::{FileId, OffsetDb};
use lines::LineCutter;
use record::{LineRecords, expand_tag};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often open files are checked without an inotify event, and the soonest the globs are
/// looked at again after inotify reports a new name.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Most the offsets go unsaved while lines keep coming.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// Bytes read at a time at least (one batch): fewer, larger batches for the pipeline.
const MIN_READ: usize = 128 * 1024;
/// Batches read from one file before the next file gets its turn.
const BATCHES_PER_TURN: usize = 8;
/// How long a batch a buffer refused waits before it is read again.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Most bytes the multiline joiners of all files hold at once, at least: past it, the file being
/// read passes on its open messages early (`multiline_held_cap`).
const MAX_HELD_BYTES: usize = 16 << 20;

/// A started tail input.
pub struct TailInput {
    component: Component,
    metrics: Arc<Metrics>,
    globs: Vec<String>,
    patterns: Vec<glob::Pattern>,
    exclude: Vec<glob::Pattern>,
    tag: String,
    records: LineRecords,
    read_from_head: bool,
    skip_long_lines: bool,
    skip_empty_lines: bool,
    read_size: usize,
    max_line: usize,
    max_open: usize,
    refresh: Duration,
    rotate_wait: Duration,
    inotify: bool,
    db: Option<OffsetDb>,
    files: HashMap<FileId, TailedFile>,
    /// Files found by the first look at the globs but not opened yet (over `max_open_files`),
    /// with their size then: they are read like files found at start when they open.
    found_at_start: HashMap<FileId, u64>,
    /// Matching files the last look at the globs left closed (over `max_open_files`).
    waiting: usize,
    /// Files closed while idle to make room: their offset, whether it is inside a long line
    /// being skipped, and when they were closed.
    parked: HashMap<FileId, (u64, bool, Instant)>,
    /// Files stopped for a line longer than `buffer_max_size`: not opened again.
    stopped: HashSet<FileId>,
    buf: Vec<u8>,
    /// The multiline parsers (`multiline_parser`): each file gets a joiner of them.
    chain: Option<Arc<ParserChain>>,
    /// Bytes held by the joiners of all files.
    held: usize,
}

/// One open file.
struct TailedFile {
    id: FileId,
    file: File,
    /// Its name now.
    path: PathBuf,
    /// Its name when opened (`path_key`).
    name: String,
    tag: Bytes,
    /// The first byte not yet taken by the pipeline.
    offset: u64,
    cutter: LineCutter,
    /// When it was renamed away from a matching name.
    rotated_at: Option<Instant>,
    /// Removed (no name left).
    deleted: bool,
    /// A buffer refused its last batch: read again from here on.
    retry_at: Option<Instant>,
    /// A long line was reported.
    warned_long: bool,
    /// When a line was last taken from it (or it was opened).
    last_read: Instant,
    /// Its multiline state (with `multiline_parser`).
    joiner: Option<Joiner>,
    /// Joined records a buffer refused (or shutdown abandoned): sent before anything else.
    pending: Option<Pending>,
    /// Bytes of lines the joiner took whose records have not gone yet (counted received with
    /// the next records that go).
    unsent_bytes: u64,
}

/// Records of a file made from lines already read, waiting for room in the pipeline.
struct Pending {
    batch: Batch,
    /// Bytes of the lines read for them.
    bytes: u64,
    /// No line of theirs starts before this offset.
    from: u64,
}

impl TailedFile {
    /// The offset to save: its offset, or where the oldest line whose record is not delivered
    /// yet starts (held by the joiner, or pending), if earlier.
    fn saved_offset(&self) -> u64 {
        let held = self.joiner.as_ref().and_then(Joiner::oldest_held_at);
        let pending = self.pending.as_ref().map(|p| p.from);
        [Some(self.offset), held, pending]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.offset)
    }

    /// Whether records of read lines wait (held by the joiner, or pending).
    fn holds(&self) -> bool {
        self.pending.is_some() || self.joiner.as_ref().is_some_and(|j| !j.is_empty())
    }
}

/// What one turn at a file found.
#[derive(PartialEq, Eq)]
enum Turn {
    /// Everything there is was read.
    AtEnd,
    /// More is there.
    More,
    /// A buffer refused a batch; try later.
    Refused,
    /// A line longer than allowed and no `skip_long_lines`: stop reading this file.
    Stop,
    /// Shutdown came while a batch waited for room.
    Abandoned,
}

impl TailInput {
    /// The input of `config` (validated before); reads its offsets file, which must be usable.
    pub fn new(config: &TailInputConfig, metrics: Arc<Metrics>) -> Result<Self, db::DbError> {
        let (chunk, max_line) = config.sizes();
        let db = match &config.db {
            Some(path) => Some(OffsetDb::open(
                path,
                matches!(config.db_sync, config::DbSync::Full | config::DbSync::Extra),
            )?),
            None => None,
        };
        Ok(TailInput {
            component: Component::input(config.name()),
            metrics,
            globs: config.path.clone(),
            patterns: config
                .path
                .iter()
                .filter_map(|p| glob::Pattern::new(p).ok())
                .collect(),
            exclude: config
                .exclude_path
                .iter()
                .filter_map(|p| glob::Pattern::new(p).ok())
                .collect(),
            tag: config.tag.clone().unwrap_or_else(|| "tail".to_string()),
            records: LineRecords {
                key: config.key.clone().unwrap_or_else(|| "log".to_string()),
                path_key: config.path_key.clone(),
                offset_key: config.offset_key.clone(),
                parser: config.line_parser().ok().flatten(),
            },
            read_from_head: config.read_from_head,
            skip_long_lines: config.skip_long_lines,
            skip_empty_lines: config.skip_empty_lines,
            read_size: chunk.max(MIN_READ),
            max_line,
            max_open: config
                .max_open_files
                .unwrap_or(config::DEFAULT_MAX_OPEN_FILES),
            refresh: config
                .refresh_interval
                .map_or(config::DEFAULT_REFRESH, |d| d.0),
            rotate_wait: config
                .rotate_wait
                .map_or(config::DEFAULT_ROTATE_WAIT, |d| d.0),
            inotify: config.inotify_watcher.unwrap_or(true),
            db,
            files: HashMap::new(),
            found_at_start: HashMap::new(),
            waiting: 0,
            parked: HashMap::new(),
            stopped: HashSet::new(),
            buf: Vec::new(),
            chain: config.multiline_chain().ok().flatten().map(Arc::new),
            held: 0,
        })
    }

    /// Read the files until `shutdown`; a batch waiting for room in a buffer then gets `drain`
    /// more. The offsets are saved last.
    pub async fn run(mut self, pipeline: Arc<Pipeline>, shutdown: Shutdown, drain: Duration) {
        let wake = Arc::new(Notify::new());
        let names_changed = Arc::new(AtomicBool::new(false));
        let mut watcher = self.watcher(&wake, &names_changed);
        let mut watched = HashSet::new();
        // The globs' directories first, so no file created during the first look is missed.
        self.watch(&mut watcher, &mut watched);
        self.scan(true);
        if let Some(db) = &mut self.db {
            // Entries of files no glob matches any more (Fluent Bit deletes them too): an inode
            // reused by a new file must not inherit an old offset.
            let (files, waiting) = (&self.files, &self.found_at_start);
            db.retain(|id| files.contains_key(&id) || waiting.contains_key(&id));
        }
        self.watch(&mut watcher, &mut watched);
        tracing::info!(input = %self.component.id, files = self.files.len(), "tailing");
        let now = Instant::now();
        let (mut last_check, mut last_scan, mut last_save) = (now, now, now);
        let mut wait_for_shutdown = shutdown.clone();
        loop {
            let more = self.read_all(&pipeline, &shutdown, drain).await;
            if shutdown.is_triggered() {
                break;
            }
            self.flush_expired(&pipeline, &shutdown, drain).await;
            if self.db.as_ref().is_some_and(OffsetDb::dirty)
                && (!more || last_save.elapsed() >= SAVE_EVERY)
            {
                self.save();
                last_save = Instant::now();
            }
            // Renames and deletions are looked for every second, and as soon as inotify reports
            // one; the globs every refresh_interval, and at most every second when inotify
            // reports new names. Also while lines keep coming.
            let names = names_changed.load(Ordering::Relaxed);
            if names || last_check.elapsed() >= CHECK_EVERY {
                last_check = Instant::now();
                self.check_files();
            }
            let room = self.waiting > 0 && self.files.len() < self.max_open;
            if ((names || room) && last_scan.elapsed() >= CHECK_EVERY)
                || last_scan.elapsed() >= self.refresh
            {
                names_changed.store(false, Ordering::Relaxed);
                last_scan = Instant::now();
                self.scan(false);
                self.watch(&mut watcher, &mut watched);
            }
            if more {
                tokio::task::yield_now().await;
                continue;
            }
            let next_check = tokio::time::Instant::from_std(last_check + CHECK_EVERY);
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep_until(next_check) => {}
                _ = wait_for_shutdown.wait() => break,
            }
        }
        self.flush_at_shutdown(&pipeline, &shutdown, drain).await;
        if self.db.as_ref().is_some_and(OffsetDb::dirty) {
            self.save();
        }
        tracing::info!(input = %self.component.id, "stopped");
    }

    /// An inotify watcher that wakes the loop (and notes new or removed names); none when
    /// inotify is off or unavailable (the loop then polls every second).
    fn watcher(
        &self,
        wake: &Arc<Notify>,
        names_changed: &Arc<AtomicBool>,
    ) -> Option<notify::RecommendedWatcher> {
        use notify::EventKind;
        if !self.inotify {
            return None;
        }
        let (wake, names_changed) = (wake.clone(), names_changed.clone());
        let handler = move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && matches!(
                    event.kind,
                    EventKind::Create(_)
                        | EventKind::Remove(_)
                        | EventKind::Modify(notify::event::ModifyKind::Name(_))
                )
            {
                names_changed.store(true, Ordering::Relaxed);
            }
            wake.notify_one();
        };
        match notify::recommended_watcher(handler) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(input = %self.component.id, error = %e, "no inotify; checking the files every second");
                None
            }
        }
    }

    /// Watch the directory of each glob and of each open file (not recursively), and of the file
    /// a matching symbolic link points to (Kubernetes' `/var/log/containers/*.log`).
    fn watch(
        &self,
        watcher: &mut Option<notify::RecommendedWatcher>,
        watched: &mut HashSet<PathBuf>,
    ) {
        use notify::Watcher;
        let Some(watcher) = watcher else { return };
        let dirs = self
            .globs
            .iter()
            .map(|g| glob_dir(g))
            .chain(self.files.values().flat_map(|f| {
                [Some(f.path.clone()), current_name(&f.file)]
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.parent().map(Path::to_path_buf))
            }));
        for dir in dirs {
            if !watched.contains(&dir)
                && watcher
                    .watch(&dir, notify::RecursiveMode::NonRecursive)
                    .is_ok()
            {
                watched.insert(dir);
            }
        }
    }

    /// Whether `path` is one of the files to read.
    fn wanted(&self, path: &Path) -> bool {
        self.patterns.iter().any(|p| p.matches_path(path))
            && !self.exclude.iter().any(|p| p.matches_path(path))
    }

    /// Look at the globs: open the matching files not open yet (up to `max_open_files`). When
    /// more match, files idle for `refresh_interval` are closed (their offsets kept) so the
    /// others get a turn at the next look; files never opened go before those closed so.
    fn scan(&mut self, at_start: bool) {
        // As glob(3): a `*` does not match a leading dot.
        let options = glob::MatchOptions {
            require_literal_leading_dot: true,
            ..Default::default()
        };
        let mut found = Vec::new();
        for pattern in &self.globs {
            let Ok(paths) = glob::glob_with(pattern, options) else {
                continue;
            };
            for path in paths.flatten() {
                if self.exclude.iter().any(|p| p.matches_path(&path)) {
                    continue;
                }
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                let id = FileId::of(&meta);
                if meta.is_file() && !self.files.contains_key(&id) && !self.stopped.contains(&id) {
                    found.push((path, id, meta.len()));
                }
            }
        }
        let seen: HashSet<FileId> = found.iter().map(|(_, id, _)| *id).collect();
        self.parked.retain(|id, _| seen.contains(id));
        // Files never opened first, then those closed longest ago.
        found.sort_by_key(|(_, id, _)| self.parked.get(id).map(|p| p.2));
        let room = self
            .max_open
            .saturating_sub(self.files.len())
            .min(found.len());
        let waiting = found.split_off(room);
        for (path, id, size) in found {
            let end_at_start = match self.found_at_start.remove(&id) {
                Some(size) => Some(size),
                None => at_start.then_some(size),
            };
            self.open(path, id, end_at_start);
        }
        let before = std::mem::replace(&mut self.waiting, waiting.len());
        if waiting.is_empty() {
            return;
        }
        if at_start {
            self.found_at_start
                .extend(waiting.iter().map(|(_, id, size)| (*id, *size)));
        }
        let idle: Vec<FileId> = self
            .files
            .values()
            .filter(|f| {
                f.rotated_at.is_none()
                    && !f.deleted
                    && f.retry_at.is_none()
                    && !f.holds()
                    && f.last_read.elapsed() >= self.refresh
            })
            .map(|f| f.id)
            .take(waiting.len())
            .collect();
        for id in &idle {
            let f = self.files.remove(id).expect("listed from the open files");
            self.parked
                .insert(f.id, (f.offset, f.cutter.skipping(), Instant::now()));
        }
        if waiting.len() != before {
            tracing::info!(input = %self.component.id, waiting = waiting.len(), max_open_files = self.max_open, "more files match than may be open; idle files are closed to give the others a turn");
        }
    }

    /// Open the file at `path` and decide where to read it from: its saved offset, else its
    /// end for a file found at start (`end_at_start`: its size then; unless `read_from_head`),
    /// else its start.
    fn open(&mut self, path: PathBuf, id: FileId, end_at_start: Option<u64>) {
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(input = %self.component.id, path = %path.display(), error = %e, "cannot open a matching file; trying again at the next look at the globs");
                self.metrics.error(&self.component, "open_failed");
                return;
            }
        };
        let name = path.to_string_lossy().into_owned();
        let size = file.metadata().map_or(0, |m| m.len());
        let parked = self.parked.remove(&id);
        let saved = parked
            .map(|(offset, _, _)| offset)
            .or_else(|| self.db.as_ref().and_then(|db| db.get(id)).map(|s| s.offset));
        let offset = match saved {
            Some(offset) if offset > size => {
                tracing::info!(input = %self.component.id, path = %name, offset, size, "the file is shorter than its saved offset (truncated while stopped); reading it from the start");
                self.metrics.error(&self.component, "file_truncated");
                0
            }
            Some(offset) => offset,
            None => match end_at_start {
                Some(end) if !self.read_from_head => end,
                _ => 0,
            },
        };
        tracing::debug!(input = %self.component.id, path = %name, offset, "following");
        let mut cutter =
            LineCutter::new(self.max_line, self.skip_long_lines, self.skip_empty_lines);
        cutter.restore(parked.is_some_and(|(_, skipping, _)| skipping) && offset > 0);
        let tag = Bytes::from(expand_tag(&self.tag, &name));
        if let Some(db) = &mut self.db {
            db.set(id, &name, offset);
        }
        self.files.insert(
            id,
            TailedFile {
                id,
                file,
                path,
                name,
                tag,
                offset,
                cutter,
                rotated_at: None,
                deleted: false,
                retry_at: None,
                warned_long: false,
                last_read: Instant::now(),
                joiner: self
                    .chain
                    .as_ref()
                    .map(|c| Joiner::new(c.clone(), JoinLimits::default())),
                pending: None,
                unsent_bytes: 0,
            },
        );
    }

    /// Read every open file's new lines into the pipeline. True when some file has more.
    async fn read_all(
        &mut self,
        pipeline: &Pipeline,
        shutdown: &Shutdown,
        drain: Duration,
    ) -> bool {
        let mut more = false;
        let ids: Vec<FileId> = self.files.keys().copied().collect();
        for id in ids {
            if shutdown.is_triggered() {
                break;
            }
            let Some(mut file) = self.files.remove(&id) else {
                continue;
            };
            if file.retry_at.is_some_and(|t| t > Instant::now()) {
                self.files.insert(id, file);
                continue;
            }
            file.retry_at = None;
            let turn = self.turn(&mut file, pipeline, shutdown, drain).await;
            if let Some(db) = &mut self.db {
                db.set(id, &file.name, file.saved_offset());
            }
            match turn {
                Turn::More => more = true,
                Turn::Refused => file.retry_at = Some(Instant::now() + RETRY_AFTER),
                Turn::Abandoned => {
                    self.files.insert(id, file);
                    return false;
                }
                Turn::Stop => {
                    if !self
                        .release(&mut file, None, pipeline, shutdown, drain)
                        .await
                    {
                        file.retry_at = Some(Instant::now() + RETRY_AFTER);
                        self.files.insert(id, file);
                        continue;
                    }
                    self.stopped.insert(id);
                    self.close(file, "stopped: a line is longer than buffer_max_size");
                    continue;
                }
                Turn::AtEnd => {
                    let rotated_long_ago = file
                        .rotated_at
                        .is_some_and(|t| t.elapsed() >= self.rotate_wait);
                    if file.deleted || rotated_long_ago {
                        if !self
                            .release(&mut file, None, pipeline, shutdown, drain)
                            .await
                        {
                            file.retry_at = Some(Instant::now() + RETRY_AFTER);
                            self.files.insert(id, file);
                            continue;
                        }
                        let why = if file.deleted { "deleted" } else { "rotated" };
                        self.close(file, why);
                        continue;
                    }
                }
            }
            self.files.insert(id, file);
        }
        more
    }

    /// Read up to [`BATCHES_PER_TURN`] batches of lines from `f` into the pipeline.
    async fn turn(
        &mut self,
        f: &mut TailedFile,
        pipeline: &Pipeline,
        shutdown: &Shutdown,
        drain: Duration,
    ) -> Turn {
        if let Some(p) = f.pending.take() {
            match self.send(f, p, pipeline, shutdown, drain).await {
                Turn::More => {}
                other => return other,
            }
        }
        for _ in 0..BATCHES_PER_TURN {
            let before = f.cutter.skipping();
            let mut want = self.read_size.min(self.max_line + 1);
            let cut = loop {
                self.buf.clear();
                if let Err(e) = read_at(&f.file, f.offset, want, &mut self.buf) {
                    tracing::warn!(input = %self.component.id, path = %f.name, error = %e, "read failed; trying again");
                    self.metrics.error(&self.component, "read_failed");
                    return Turn::Refused;
                }
                let cut = f.cutter.cut(&self.buf);
                if cut.consumed == 0
                    && !cut.stopped
                    && self.buf.len() == want
                    && want <= self.max_line
                {
                    // One line longer than this read: read more of it, up to one byte past the
                    // longest line.
                    want = want.saturating_mul(2).min(self.max_line + 1);
                    continue;
                }
                break cut;
            };
            let at_end = self.buf.len() < want;
            if at_end && self.buf.is_empty() {
                self.check_truncated(f);
            }
            if f.joiner.is_some() {
                let turn = self.join(f, &cut, pipeline, shutdown, drain).await;
                if cut.too_long > 0 {
                    self.long_lines(f, cut.too_long, "skipping them (skip_long_lines)");
                }
                if cut.consumed > 0 {
                    f.last_read = Instant::now();
                }
                if turn != Turn::More {
                    return turn;
                }
                if cut.stopped {
                    self.long_lines(f, 1, "no longer reading the file; set skip_long_lines on to skip such lines, or raise buffer_max_size");
                    return Turn::Stop;
                }
                if at_end {
                    return Turn::AtEnd;
                }
                continue;
            }
            let mut events = Vec::with_capacity(cut.lines.len());
            let mut bytes = 0;
            let mut invalid_times = 0;
            for (range, end) in &cut.lines {
                let line = &self.buf[range.clone()];
                bytes += line.len();
                let r = self.records.record(line, &f.name, f.offset + *end as u64);
                invalid_times += u64::from(r.invalid_time);
                events.push(r.event);
            }
            if !events.is_empty() {
                let batch = Batch::new(f.tag.clone(), events);
                let n = batch.len() as u64;
                let mut abandon = shutdown.clone();
                let dispatched = tokio::select! {
                    r = pipeline.dispatch(batch) => Some(r),
                    _ = async { abandon.wait().await; tokio::time::sleep(drain).await } => None,
                };
                match dispatched {
                    Some(Ok(())) => {
                        self.metrics.received(&self.component, n, bytes as u64);
                        for _ in 0..invalid_times {
                            self.metrics.error(&self.component, "invalid_time");
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(input = %self.component.id, path = %f.name, error = %e, "a buffer refused lines of this file; reading them again in a second");
                        self.metrics.error(&self.component, "buffer_refused");
                        f.cutter.restore(before);
                        return Turn::Refused;
                    }
                    None => return Turn::Abandoned,
                }
            }
            if cut.too_long > 0 {
                self.long_lines(f, cut.too_long, "skipping them (skip_long_lines)");
            }
            f.offset += cut.consumed as u64;
            if cut.consumed > 0 {
                f.last_read = Instant::now();
            }
            if cut.stopped {
                self.long_lines(f, 1, "no longer reading the file; set skip_long_lines on to skip such lines, or raise buffer_max_size");
                return Turn::Stop;
            }
            if at_end {
                return Turn::AtEnd;
            }
        }
        Turn::More
    }

    /// Offer the lines of `cut` (read into `buf` from `f.offset`) to `f`'s joiner and send what
    /// it passes on; `f.offset` moves past the lines either way (a record the pipeline refuses
    /// waits in `f.pending`). `More` when all went.
    async fn join(
        &mut self,
        f: &mut TailedFile,
        cut: &lines::Cut,
        pipeline: &Pipeline,
        shutdown: &Shutdown,
        drain: Duration,
    ) -> Turn {
        let from = f.saved_offset();
        let joiner = f.joiner.as_mut().expect("called with a joiner");
        let held_before = joiner.held_bytes();
        let (now, time_ns) = (Instant::now(), now_ns());
        let (mut events, mut out) = (Vec::new(), Vec::new());
        let mut bytes = f.unsent_bytes;
        // Each line starts where the one before it ended (or earlier, after skipped lines).
        let mut start = 0;
        for (range, end) in &cut.lines {
            let line = &self.buf[range.clone()];
            bytes += line.len() as u64;
            joiner.push_text(line, f.offset + start as u64, time_ns, now, &mut out);
            let offset = f.offset + *end as u64;
            events.extend(
                out.drain(..)
                    .map(|e| self.records.add_keys(e, &f.name, offset)),
            );
            start = *end;
        }
        f.offset += cut.consumed as u64;
        self.held = self.held + joiner.held_bytes() - held_before;
        if self.held > MAX_HELD_BYTES && !joiner.is_empty() {
            self.metrics.error(&self.component, "multiline_held_cap");
            self.held -= joiner.held_bytes();
            joiner.flush_all(&mut out);
            let offset = f.offset;
            events.extend(
                out.drain(..)
                    .map(|e| self.records.add_keys(e, &f.name, offset)),
            );
        }
        self.count_cuts(f);
        if events.is_empty() {
            // Lines the joiner holds are counted received when their record goes.
            f.unsent_bytes = bytes;
            return Turn::More;
        }
        f.unsent_bytes = 0;
        let batch = Batch::new(f.tag.clone(), events);
        self.send(f, Pending { batch, bytes, from }, pipeline, shutdown, drain)
            .await
    }

    /// Pass on `f`'s open messages (those that waited `timeout`, or all with `None`) and any
    /// pending records. True when nothing is left waiting.
    async fn release(
        &mut self,
        f: &mut TailedFile,
        timeout: Option<Duration>,
        pipeline: &Pipeline,
        shutdown: &Shutdown,
        drain: Duration,
    ) -> bool {
        if let Some(p) = f.pending.take()
            && self.send(f, p, pipeline, shutdown, drain).await != Turn::More
        {
            return false;
        }
        let from = f.saved_offset();
        let Some(joiner) = f.joiner.as_mut() else {
            return true;
        };
        let held_before = joiner.held_bytes();
        let mut events = Vec::new();
        match timeout {
            Some(t) => joiner.flush_expired(Instant::now(), t, &mut events),
            None => joiner.flush_all(&mut events),
        }
        self.held = self.held + joiner.held_bytes() - held_before;
        if events.is_empty() {
            return true;
        }
        let events = events
            .into_iter()
            .map(|e| self.records.add_keys(e, &f.name, f.offset))
            .collect();
        let batch = Batch::new(f.tag.clone(), events);
        let pending = Pending {
            batch,
            bytes: std::mem::take(&mut f.unsent_bytes),
            from,
        };
        self.send(f, pending, pipeline, shutdown, drain).await == Turn::More
    }

    /// Dispatch joined records of `f`: `More` when the pipeline took them; else they wait in
    /// `f.pending` (`Refused`, or `Abandoned` at shutdown).
    async fn send(
        &mut self,
        f: &mut TailedFile,
        p: Pending,
        pipeline: &Pipeline,
        shutdown: &Shutdown,
        drain: Duration,
    ) -> Turn {
        let n = p.batch.len() as u64;
        let mut abandon = shutdown.clone();
        let dispatched = tokio::select! {
            r = pipeline.dispatch(p.batch.clone()) => Some(r),
            _ = async { abandon.wait().await; tokio::time::sleep(drain).await } => None,
        };
        match dispatched {
            Some(Ok(())) => {
                self.metrics.received(&self.component, n, p.bytes);
                Turn::More
            }
            Some(Err(e)) => {
                tracing::warn!(input = %self.component.id, path = %f.name, error = %e, "a buffer refused joined records of this file; sending them again in a second");
                self.metrics.error(&self.component, "buffer_refused");
                f.pending = Some(p);
                Turn::Refused
            }
            None => {
                f.pending = Some(p);
                Turn::Abandoned
            }
        }
    }

    /// Count the messages `f`'s joiner passed on in pieces (size or line cap).
    fn count_cuts(&self, f: &mut TailedFile) {
        let Some(joiner) = f.joiner.as_mut() else {
            return;
        };
        let cuts = joiner.take_cuts();
        for (reason, n) in [
            ("multiline_size_cap", cuts.size_cap),
            ("multiline_line_cap", cuts.line_cap),
        ] {
            for _ in 0..n {
                self.metrics.error(&self.component, reason);
            }
        }
    }

    /// Pass on the open messages that waited the chain's flush timeout for their next line.
    async fn flush_expired(&mut self, pipeline: &Pipeline, shutdown: &Shutdown, drain: Duration) {
        let Some(timeout) = self.chain.as_ref().map(|c| c.flush_timeout()) else {
            return;
        };
        let now = Instant::now();
        let due: Vec<FileId> = self
            .files
            .values()
            .filter(|f| {
                f.pending.is_none()
                    && f.joiner
                        .as_ref()
                        .and_then(Joiner::oldest_line_at)
                        .is_some_and(|t| now.saturating_duration_since(t) >= timeout)
            })
            .map(|f| f.id)
            .collect();
        for id in due {
            let Some(mut f) = self.files.remove(&id) else {
                continue;
            };
            if !self
                .release(&mut f, Some(timeout), pipeline, shutdown, drain)
                .await
            {
                f.retry_at = Some(Instant::now() + RETRY_AFTER);
            }
            if let Some(db) = &mut self.db {
                db.set(id, &f.name, f.saved_offset());
            }
            self.files.insert(id, f);
        }
    }

    /// At shutdown, pass on every open message (for up to `drain` while buffers are full); what
    /// is not taken is read again after a restart (the saved offset stays before it).
    async fn flush_at_shutdown(
        &mut self,
        pipeline: &Pipeline,
        shutdown: &Shutdown,
        drain: Duration,
    ) {
        let deadline = Instant::now() + drain;
        let ids: Vec<FileId> = self.files.keys().copied().collect();
        for id in ids {
            let Some(mut f) = self.files.remove(&id) else {
                continue;
            };
            if f.holds() {
                let left = deadline.saturating_duration_since(Instant::now());
                self.release(&mut f, None, pipeline, shutdown, left).await;
            }
            if let Some(db) = &mut self.db {
                db.set(id, &f.name, f.saved_offset());
            }
            self.files.insert(id, f);
        }
    }

    /// Count `n` lines of `f` longer than `buffer_max_size`, and log it once per file (`what`
    /// is done about them).
    fn long_lines(&self, f: &mut TailedFile, n: u64, what: &str) {
        self.metrics.received(&self.component, n, 0);
        self.metrics
            .events_dropped(&self.component, "line_too_long", n);
        if !f.warned_long {
            f.warned_long = true;
            tracing::warn!(input = %self.component.id, path = %f.name, max = self.max_line, "lines longer than buffer_max_size; {what}");
        }
    }

    /// A file shorter than its offset was truncated (copytruncate): read it from 0.
    fn check_truncated(&self, f: &mut TailedFile) {
        if let Ok(meta) = f.file.metadata()
            && meta.len() < f.offset
        {
            tracing::info!(input = %self.component.id, path = %f.name, offset = f.offset, size = meta.len(), "file truncated; reading it from the start");
            self.metrics.error(&self.component, "file_truncated");
            f.offset = 0;
            f.cutter.restore(false);
        }
    }

    /// Notice deleted, renamed and truncated open files.
    fn check_files(&mut self) {
        let wanted: Vec<(FileId, Option<PathBuf>)> = self
            .files
            .values_mut()
            .filter_map(|f| {
                if f.file.metadata().is_ok_and(|m| m.nlink() == 0) {
                    f.deleted = true;
                }
                if f.rotated_at.is_some() {
                    return None;
                }
                let same = std::fs::metadata(&f.path).is_ok_and(|m| FileId::of(&m) == f.id);
                (!same).then(|| (f.id, current_name(&f.file)))
            })
            .collect();
        for (id, new_name) in wanted {
            let follow = new_name.as_deref().is_some_and(|p| self.wanted(p));
            let Some(f) = self.files.get_mut(&id) else {
                continue;
            };
            match new_name {
                Some(new) if follow => {
                    tracing::debug!(input = %self.component.id, from = %f.path.display(), to = %new.display(), "renamed to another matching name; following it");
                    f.path = new;
                }
                _ if f.deleted => {}
                _ => {
                    tracing::info!(input = %self.component.id, path = %f.name, rotate_wait = ?self.rotate_wait, "rotated; reading the old file to its end");
                    f.rotated_at = Some(Instant::now());
                }
            }
        }
        let mut files = std::mem::take(&mut self.files);
        for f in files.values_mut() {
            self.check_truncated(f);
        }
        self.files = files;
    }

    /// Stop reading `f` for good.
    fn close(&mut self, f: TailedFile, why: &str) {
        let left = f
            .file
            .metadata()
            .map_or(0, |m| m.len().saturating_sub(f.offset));
        if left > 0 && !f.cutter.skipping() && !why.starts_with("stopped") {
            self.metrics.received(&self.component, 1, left);
            self.metrics
                .events_dropped(&self.component, "file_closed_mid_line", 1);
        }
        tracing::info!(input = %self.component.id, path = %f.name, offset = f.offset, "closing: {why}");
        if let Some(db) = &mut self.db {
            if why.starts_with("stopped") {
                // Keep the offset: a restart with a larger buffer_max_size resumes there.
                db.set(f.id, &f.name, f.saved_offset());
            } else {
                db.remove(f.id);
            }
        }
    }

    fn save(&mut self) {
        if let Some(db) = &mut self.db
            && let Err(e) = db.save()
        {
            tracing::warn!(input = %self.component.id, error = %e, "cannot save the offsets; trying again");
            self.metrics.error(&self.component, "db_write_failed");
        }
    }
}

/// Read up to `want` bytes of `file` from `offset` into `buf`.
fn read_at(file: &File, offset: u64, want: usize, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.resize(want, 0);
    let mut got = 0;
    while got < want {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.clear();
                return Err(e);
            }
        }
    }
    buf.truncate(got);
    Ok(())
}

/// The name an open file has now (Linux: its `/proc/self/fd` link); none once deleted.
fn current_name(file: &File) -> Option<PathBuf> {
    use std::os::fd::AsRawFd;
    let path = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    (!path.to_string_lossy().ends_with(" (deleted)")).then_some(path)
}

/// The directory a glob's files are in, as far as it has no wildcard (`/var/log/*/a.log` →
/// `/var/log`).
fn glob_dir(pattern: &str) -> PathBuf {
    let mut dir = PathBuf::from("/");
    let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        if part.contains(['*', '?', '[']) {
            break;
        }
        dir.push(part);
    }
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_globs_directory_stops_at_the_first_wildcard() {
        assert_eq!(
            glob_dir("/var/log/containers/*.log"),
            Path::new("/var/log/containers")
        );
        assert_eq!(glob_dir("/var/log/*/app.log"), Path::new("/var/log"));
        assert_eq!(glob_dir("/app.log"), Path::new("/"));
    }
}
