//! The durable side of the `s3` output: `store_dir` holds, per object being built, a metadata
//! file (`<id>.json`: tag, key, counts, the multipart upload id and the parts S3 accepted) and
//! its data as part files (`<id>.<part>.data`, the object's bytes in order, each at most the
//! part size given to [`Store::append`]). With compression, the part files hold the plain lines
//! and the object is compressed as one stream into `<id>.z` when it is complete
//! ([`Store::compress`]); its parts are then ranges of that file. Appends are fsynced before
//! `deliver` returns, so what the router acknowledged survives a crash; on restart every object
//! found is completed (unfinished multipart uploads are resumed from their recorded parts, or
//! aborted if that fails).
//!
//! The metadata is written before the first byte of data (temp file + rename), so data never
//! exists without a key; a part file whose part S3 already accepted is deleted on recovery, and
//! so are the part files of an object already compressed.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A part S3 accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedPart {
    /// Part number (1-based).
    pub number: u32,
    /// Its ETag, for CompleteMultipartUpload.
    pub etag: String,
    /// Its size.
    pub bytes: u64,
}

/// Everything known about one object, persisted as `<id>.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// Store-local id.
    pub id: u64,
    /// The tag of its events.
    pub tag: String,
    /// The S3 key.
    pub key: String,
    /// When it was started (wall clock, ns since the epoch), for `upload_timeout`.
    pub created_ns: u64,
    /// Events in it.
    pub events: u64,
    /// Bytes appended to it (all parts).
    pub bytes: u64,
    /// The multipart upload, once created.
    pub upload_id: Option<String>,
    /// Parts S3 accepted.
    pub parts: Vec<UploadedPart>,
    /// The part number appends go to.
    pub current_part: u32,
    /// No more appends: it is being completed.
    pub sealed: bool,
    /// The size of `<id>.z`, the compressed object, once it is made.
    #[serde(default)]
    pub compressed: Option<u64>,
}

impl ObjectMeta {
    /// Bytes not yet accepted by S3.
    pub fn pending_bytes(&self) -> u64 {
        self.compressed.unwrap_or(self.bytes) - self.uploaded_bytes()
    }

    /// Bytes S3 accepted.
    pub fn uploaded_bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.bytes).sum()
    }
}

/// The store failed (disk full, permissions, corruption).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O error on a path.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `store_dir_limit_size` would be exceeded.
    #[error(
        "store_dir holds {used} bytes; {incoming} more would pass store_dir_limit_size {limit}"
    )]
    Full {
        /// Bytes on disk.
        used: u64,
        /// Bytes to append.
        incoming: u64,
        /// The limit.
        limit: u64,
    },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// An object in memory: its metadata and the sizes of its part files on disk.
#[derive(Clone, Debug)]
pub struct StoredObject {
    /// The persisted metadata.
    pub meta: ObjectMeta,
    /// Part number → bytes in its file (parts not yet accepted by S3).
    pub part_files: BTreeMap<u32, u64>,
}

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The object appended to.
    pub id: u64,
    /// Bytes in its current part file now.
    pub current_part_bytes: u64,
    /// Bytes in the object now.
    pub object_bytes: u64,
}

/// The store of one `s3` output.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    objects: BTreeMap<u64, StoredObject>,
    active: HashMap<String, u64>,
    next_id: u64,
    index: u64,
    used_bytes: u64,
    limit_bytes: u64,
}

impl Store {
    /// Open (creating) `dir` and load what a previous run left: every object found is sealed,
    /// to be completed.
    pub fn open(dir: &Path, limit_bytes: u64) -> Result<Store, StoreError> {
        fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let mut store = Store {
            dir: dir.to_path_buf(),
            objects: BTreeMap::new(),
            active: HashMap::new(),
            next_id: 1,
            index: 0,
            used_bytes: 0,
            limit_bytes,
        };
        let index_path = dir.join("index");
        if let Ok(text) = fs::read_to_string(&index_path) {
            store.index = text.trim().parse().unwrap_or(0);
        }
        let mut data_files: Vec<(u64, u32, PathBuf, u64)> = Vec::new();
        let mut compressed_files: Vec<(u64, PathBuf, u64)> = Vec::new();
        for entry in fs::read_dir(dir).map_err(io("reading", dir))? {
            let entry = entry.map_err(io("reading", dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name
                .strip_suffix(".json")
                .and_then(|s| s.parse::<u64>().ok())
            {
                let text = fs::read_to_string(&path).map_err(io("reading", &path))?;
                match serde_json::from_str::<ObjectMeta>(&text) {
                    Ok(mut meta) => {
                        meta.sealed = true;
                        store.next_id = store.next_id.max(id + 1);
                        store.objects.insert(
                            id,
                            StoredObject {
                                meta,
                                part_files: BTreeMap::new(),
                            },
                        );
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "unreadable S3 object metadata in store_dir; skipping it")
                    }
                }
            } else if let Some(rest) = name.strip_suffix(".data")
                && let Some((id, part)) = rest.split_once('.')
                && let (Ok(id), Ok(part)) = (id.parse::<u64>(), part.parse::<u32>())
            {
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                data_files.push((id, part, path, len));
            } else if let Some(id) = name.strip_suffix(".z").and_then(|s| s.parse::<u64>().ok()) {
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                compressed_files.push((id, path, len));
            } else if name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
            }
        }
        for (id, path, len) in compressed_files {
            match store.objects.get(&id).and_then(|o| o.meta.compressed) {
                Some(size) if size == len => store.used_bytes += len,
                // Compressed before a crash that kept the metadata from saying so: the part
                // files are still there, and it is compressed again.
                _ => {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        for (id, part, path, len) in data_files {
            let uploaded = store.objects.get(&id).map(|o| {
                o.meta.compressed.is_some() || o.meta.parts.iter().any(|p| p.number == part)
            });
            match uploaded {
                Some(false) if len > 0 => {
                    store.used_bytes += len;
                    store
                        .objects
                        .get_mut(&id)
                        .expect("checked")
                        .part_files
                        .insert(part, len);
                }
                Some(_) => {
                    let _ = fs::remove_file(&path);
                }
                None => {
                    tracing::warn!(path = %path.display(), "S3 data in store_dir without its metadata; removing it");
                    let _ = fs::remove_file(&path);
                }
            }
        }
        for object in store.objects.values() {
            store.persist(&object.meta)?;
        }
        Ok(store)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every object, by id.
    pub fn objects(&self) -> &BTreeMap<u64, StoredObject> {
        &self.objects
    }

    /// One object.
    pub fn get(&self, id: u64) -> Option<&StoredObject> {
        self.objects.get(&id)
    }

    /// Bytes of part files on disk.
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    /// The path of a part file.
    pub fn part_path(&self, id: u64, part: u32) -> PathBuf {
        self.dir.join(format!("{id}.{part}.data"))
    }

    fn meta_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn persist(&self, meta: &ObjectMeta) -> Result<(), StoreError> {
        let path = self.meta_path(meta.id);
        let tmp = self.dir.join(format!("{}.json.tmp", meta.id));
        let text = serde_json::to_vec(meta).expect("metadata serializes");
        fs::write(&tmp, text).map_err(io("writing", &tmp))?;
        fs::rename(&tmp, &path).map_err(io("renaming", &path))
    }

    /// Bytes in the open object of `tag` (0 when it has none).
    pub fn open_bytes(&self, tag: &str) -> u64 {
        self.active
            .get(tag)
            .and_then(|id| self.objects.get(id))
            .map_or(0, |o| o.meta.bytes)
    }

    /// Seal the open object of `tag`, if any (the next append starts a new object).
    pub fn seal_open(&mut self, tag: &str) -> Result<(), StoreError> {
        match self.active.get(tag).copied() {
            Some(id) => self.seal_object(id),
            None => Ok(()),
        }
    }

    /// Append `data` (the rendered lines of `events` events with tag `tag`) to the tag's open
    /// object, creating it first with the key `make_key(index)` (`index` advanced when
    /// `uses_index`). Part files are filled to `part_bytes` exactly; a full one is closed and
    /// the rest goes to the next. Fsynced before returning.
    #[allow(clippy::too_many_arguments)]
    pub fn append(
        &mut self,
        tag: &str,
        data: &[u8],
        events: u64,
        now_ns: u64,
        uses_index: bool,
        part_bytes: u64,
        make_key: impl FnOnce(u64) -> String,
    ) -> Result<Appended, StoreError> {
        let incoming = data.len() as u64;
        if self.limit_bytes > 0 && self.used_bytes + incoming > self.limit_bytes {
            return Err(StoreError::Full {
                used: self.used_bytes,
                incoming,
                limit: self.limit_bytes,
            });
        }
        let id = match self.active.get(tag) {
            Some(id) => *id,
            None => {
                if uses_index {
                    self.index += 1;
                    let path = self.dir.join("index");
                    fs::write(&path, self.index.to_string()).map_err(io("writing", &path))?;
                }
                let id = self.next_id;
                self.next_id += 1;
                let meta = ObjectMeta {
                    id,
                    tag: tag.to_string(),
                    key: make_key(self.index),
                    created_ns: now_ns,
                    events: 0,
                    bytes: 0,
                    upload_id: None,
                    parts: Vec::new(),
                    current_part: 1,
                    sealed: false,
                    compressed: None,
                };
                self.persist(&meta)?;
                self.objects.insert(
                    id,
                    StoredObject {
                        meta,
                        part_files: BTreeMap::new(),
                    },
                );
                self.active.insert(tag.to_string(), id);
                id
            }
        };
        let part_bytes = part_bytes.max(1);
        let mut rest = data;
        while !rest.is_empty() {
            let object = self.objects.get_mut(&id).expect("present");
            let part = object.meta.current_part;
            let have = object.part_files.get(&part).copied().unwrap_or(0);
            let take = (part_bytes.saturating_sub(have) as usize).min(rest.len());
            let path = self.dir.join(format!("{id}.{part}.data"));
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io("opening", &path))?;
            file.write_all(&rest[..take])
                .map_err(io("writing", &path))?;
            file.sync_data().map_err(io("syncing", &path))?;
            *object.part_files.entry(part).or_insert(0) += take as u64;
            if have + take as u64 >= part_bytes {
                object.meta.current_part += 1;
            }
            rest = &rest[take..];
        }
        self.used_bytes += incoming;
        let object = self.objects.get_mut(&id).expect("present");
        object.meta.events += events;
        object.meta.bytes += incoming;
        let appended = Appended {
            id,
            current_part_bytes: object
                .part_files
                .get(&object.meta.current_part)
                .copied()
                .unwrap_or(0),
            object_bytes: object.meta.bytes,
        };
        let meta = object.meta.clone();
        self.persist(&meta)?;
        Ok(appended)
    }

    /// What compressing `id` takes: its part files in order, and the temporary file to write
    /// (`None` when it is compressed already, or unknown). Run it with [`CompressJob::run`]
    /// outside the store's lock, then [`Store::compressed`].
    pub fn compress_job(&self, id: u64) -> Option<CompressJob> {
        let object = self.objects.get(&id)?;
        if object.meta.compressed.is_some() {
            return None;
        }
        Some(CompressJob {
            inputs: object
                .part_files
                .keys()
                .map(|part| self.part_path(id, *part))
                .collect(),
            output: self.dir.join(format!("{id}.z.tmp")),
        })
    }

    /// The [`CompressJob`] of `id` ran: its output becomes `<id>.z` and the part files go.
    /// Returns the compressed size.
    pub fn compressed(&mut self, id: u64) -> Result<u64, StoreError> {
        let tmp = self.dir.join(format!("{id}.z.tmp"));
        let path = self.compressed_path(id);
        let size = fs::metadata(&tmp).map_err(io("reading", &tmp))?.len();
        fs::rename(&tmp, &path).map_err(io("renaming", &path))?;
        let Some(object) = self.objects.get_mut(&id) else {
            let _ = fs::remove_file(&path);
            return Ok(0);
        };
        object.meta.compressed = Some(size);
        let parts = std::mem::take(&mut object.part_files);
        let meta = object.meta.clone();
        self.persist(&meta)?;
        self.used_bytes += size;
        for (part, bytes) in parts {
            self.used_bytes -= bytes;
            let _ = fs::remove_file(self.part_path(id, part));
        }
        Ok(size)
    }

    /// Move the files of `id` to `store_dir/quarantine` and forget it, unless that would take
    /// the quarantine past `limit` bytes (0 = no limit): then it is removed. Returns whether
    /// it was quarantined.
    pub fn quarantine(&mut self, id: u64, limit: u64) -> Result<bool, StoreError> {
        let Some(object) = self.objects.get(&id) else {
            return Ok(false);
        };
        let dir = self.dir.join("quarantine");
        let held: u64 = fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        let size = object.meta.compressed.unwrap_or(object.meta.bytes);
        if limit > 0 && held + size > limit {
            self.remove(id);
            return Ok(false);
        }
        fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        let mut files: Vec<PathBuf> = object
            .part_files
            .keys()
            .map(|part| self.part_path(id, *part))
            .collect();
        if object.meta.compressed.is_some() {
            files.push(self.compressed_path(id));
        }
        files.push(self.meta_path(id));
        for path in files {
            let name = path.file_name().expect("a file name");
            fs::rename(&path, dir.join(name)).map_err(io("quarantining", &path))?;
        }
        let object = self.objects.remove(&id).expect("present");
        if self.active.get(&object.meta.tag) == Some(&id) {
            self.active.remove(&object.meta.tag);
        }
        self.used_bytes -=
            object.part_files.values().sum::<u64>() + object.meta.compressed.unwrap_or(0);
        Ok(true)
    }

    /// `len` bytes at `offset` of the compressed object `id`.
    pub fn read_compressed(&self, id: u64, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        use std::io::{Read as _, Seek as _};
        let path = self.compressed_path(id);
        let mut file = File::open(&path).map_err(io("opening", &path))?;
        file.seek(std::io::SeekFrom::Start(offset))
            .map_err(io("reading", &path))?;
        let mut buf = Vec::with_capacity(len as usize);
        file.take(len)
            .read_to_end(&mut buf)
            .map_err(io("reading", &path))?;
        Ok(buf)
    }

    /// The path of the compressed object `id`.
    pub fn compressed_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.z"))
    }

    /// Close the current part of `id` (appends go to the next part number); returns the closed
    /// part's number, or `None` when it is empty.
    pub fn seal_part(&mut self, id: u64) -> Result<Option<u32>, StoreError> {
        let Some(object) = self.objects.get_mut(&id) else {
            return Ok(None);
        };
        let part = object.meta.current_part;
        if object.part_files.get(&part).copied().unwrap_or(0) == 0 {
            return Ok(None);
        }
        object.meta.current_part += 1;
        let meta = object.meta.clone();
        self.persist(&meta)?;
        Ok(Some(part))
    }

    /// Stop appending to `id` (the next append for its tag starts a new object) and close its
    /// current part.
    pub fn seal_object(&mut self, id: u64) -> Result<(), StoreError> {
        let Some(object) = self.objects.get_mut(&id) else {
            return Ok(());
        };
        if !object.meta.sealed {
            object.meta.sealed = true;
            if self.active.get(&object.meta.tag) == Some(&id) {
                self.active.remove(&object.meta.tag);
            }
        }
        self.seal_part(id)?;
        let meta = self.objects[&id].meta.clone();
        self.persist(&meta)
    }

    /// Remember the multipart upload of `id`.
    pub fn set_upload_id(&mut self, id: u64, upload_id: Option<String>) -> Result<(), StoreError> {
        let Some(object) = self.objects.get_mut(&id) else {
            return Ok(());
        };
        object.meta.upload_id = upload_id;
        if object.meta.upload_id.is_none() {
            object.meta.parts.clear();
        }
        let meta = object.meta.clone();
        self.persist(&meta)
    }

    /// S3 accepted `part` of `id` (`bytes` long): record it, then delete its file (a part of a
    /// compressed object has none).
    pub fn part_uploaded(
        &mut self,
        id: u64,
        part: u32,
        etag: String,
        bytes: u64,
    ) -> Result<(), StoreError> {
        let path = self.part_path(id, part);
        let Some(object) = self.objects.get_mut(&id) else {
            return Ok(());
        };
        let file_bytes = object.part_files.remove(&part).unwrap_or(0);
        object.meta.parts.retain(|p| p.number != part);
        object.meta.parts.push(UploadedPart {
            number: part,
            etag,
            bytes,
        });
        object.meta.parts.sort_by_key(|p| p.number);
        let meta = object.meta.clone();
        self.persist(&meta)?;
        self.used_bytes -= file_bytes;
        if file_bytes > 0 {
            let _ = fs::remove_file(path);
        }
        Ok(())
    }

    /// Forget `id` and delete its files (completed, or given up).
    pub fn remove(&mut self, id: u64) {
        let Some(object) = self.objects.remove(&id) else {
            return;
        };
        if self.active.get(&object.meta.tag) == Some(&id) {
            self.active.remove(&object.meta.tag);
        }
        for (part, bytes) in &object.part_files {
            self.used_bytes -= bytes;
            let _ = fs::remove_file(self.part_path(id, *part));
        }
        if let Some(size) = object.meta.compressed {
            self.used_bytes -= size;
            let _ = fs::remove_file(self.compressed_path(id));
        }
        let _ = fs::remove_file(self.meta_path(id));
    }

    /// The sealed part files of `id` in order (what can be uploaded now).
    pub fn sealed_parts(&self, id: u64) -> Vec<u32> {
        let Some(object) = self.objects.get(&id) else {
            return Vec::new();
        };
        object
            .part_files
            .keys()
            .copied()
            .filter(|p| object.meta.sealed || *p < object.meta.current_part)
            .collect()
    }

    /// Read one part file.
    pub fn read_part(&self, id: u64, part: u32) -> Result<Vec<u8>, StoreError> {
        let path = self.part_path(id, part);
        fs::read(&path).map_err(io("reading", &path))
    }
}

/// Compressing one object: its part files, read in order, into `output`.
#[derive(Clone, Debug)]
pub struct CompressJob {
    /// The part files.
    pub inputs: Vec<PathBuf>,
    /// The file to write (renamed by [`Store::compressed`]).
    pub output: PathBuf,
}

impl CompressJob {
    /// Whether the data is gzip already: a store written by an earlier version, which gzipped
    /// each batch as it came. (JSON lines never start with the gzip magic bytes.) Such an object
    /// is uploaded as it is, a series of gzip members.
    pub fn already_gzip(&self) -> bool {
        let mut magic = [0u8; 2];
        self.inputs.first().is_some_and(|path| {
            File::open(path).is_ok_and(|mut f| {
                std::io::Read::read_exact(&mut f, &mut magic).is_ok() && magic == [0x1f, 0x8b]
            })
        })
    }

    /// Write the part files through `encode` (input → compressed output) into the output
    /// file, synced.
    pub fn run(
        &self,
        encode: impl FnOnce(&mut dyn std::io::Read, &mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Result<(), StoreError> {
        let mut input: Box<dyn std::io::Read> = Box::new(std::io::empty());
        for path in &self.inputs {
            let file = File::open(path).map_err(io("opening", path))?;
            input = Box::new(std::io::Read::chain(input, file));
        }
        let out = File::create(&self.output).map_err(io("creating", &self.output))?;
        let mut writer = std::io::BufWriter::new(out);
        encode(&mut input, &mut writer).map_err(io("compressing into", &self.output))?;
        let out = writer
            .into_inner()
            .map_err(|e| io("writing", &self.output)(e.into_error()))?;
        out.sync_all().map_err(io("syncing", &self.output))
    }
}

/// Whether `file` exists (for tests and recovery checks).
pub fn exists(path: &Path) -> bool {
    File::open(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_are_durable_and_recovered_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), 0).unwrap();
        let a = store
            .append("app", b"one\n", 1, 10, true, u64::MAX, |i| format!("k/{i}"))
            .unwrap();
        let b = store
            .append("app", b"two\n", 1, 11, true, u64::MAX, |_| unreachable!())
            .unwrap();
        assert_eq!(a.id, b.id);
        assert_eq!((b.current_part_bytes, b.object_bytes), (8, 8));
        let other = store
            .append("db", b"x\n", 1, 12, true, u64::MAX, |i| format!("k/{i}"))
            .unwrap();
        assert_ne!(other.id, a.id);
        assert_eq!(store.get(other.id).unwrap().meta.key, "k/2");
        drop(store);

        let store = Store::open(dir.path(), 0).unwrap();
        let app = store.get(a.id).unwrap();
        assert!(
            app.meta.sealed,
            "recovered objects are completed, not appended to"
        );
        assert_eq!((app.meta.events, app.meta.key.as_str()), (2, "k/1"));
        assert_eq!(store.read_part(a.id, 1).unwrap(), b"one\ntwo\n");
        assert_eq!(store.sealed_parts(a.id), vec![1]);
        assert_eq!(store.used_bytes(), 10);
    }

    #[test]
    fn parts_uploaded_are_not_uploaded_again_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), 0).unwrap();
        let a = store
            .append("app", b"part one", 1, 1, false, u64::MAX, |_| "key".into())
            .unwrap();
        assert_eq!(store.seal_part(a.id).unwrap(), Some(1));
        store
            .append(
                "app",
                b"part two",
                1,
                2,
                false,
                u64::MAX,
                |_| unreachable!(),
            )
            .unwrap();
        assert_eq!(
            store.sealed_parts(a.id),
            vec![1],
            "the open part is not uploadable yet"
        );
        store.set_upload_id(a.id, Some("up-1".into())).unwrap();
        // Crash between "S3 accepted part 1" being recorded and its file being deleted.
        let part1 = store.read_part(a.id, 1).unwrap();
        store.part_uploaded(a.id, 1, "etag-1".into(), 8).unwrap();
        fs::write(store.part_path(a.id, 1), part1).unwrap();
        drop(store);

        let store = Store::open(dir.path(), 0).unwrap();
        let o = store.get(a.id).unwrap();
        assert_eq!(o.meta.upload_id.as_deref(), Some("up-1"));
        assert_eq!(
            o.meta.parts,
            vec![UploadedPart {
                number: 1,
                etag: "etag-1".into(),
                bytes: 8
            }]
        );
        assert_eq!(store.sealed_parts(a.id), vec![2]);
        assert!(!exists(&store.part_path(a.id, 1)));
        assert_eq!(o.meta.pending_bytes(), 8);
    }

    #[test]
    fn sealing_starts_a_new_object_and_the_limit_is_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), 10).unwrap();
        let a = store
            .append("app", b"12345", 1, 1, false, u64::MAX, |_| "a".into())
            .unwrap();
        store.seal_object(a.id).unwrap();
        let b = store
            .append("app", b"678", 1, 2, false, u64::MAX, |_| "b".into())
            .unwrap();
        assert_ne!(a.id, b.id);
        assert!(matches!(
            store.append("app", b"too much", 1, 3, false, u64::MAX, |_| "c".into()),
            Err(StoreError::Full { .. })
        ));
        store.remove(a.id);
        assert_eq!(store.used_bytes(), 3);
        assert!(!exists(&store.part_path(a.id, 1)));
    }

    #[test]
    fn parts_are_filled_to_the_byte_and_objects_compress_as_one_stream() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), 0).unwrap();
        let a = store
            .append("app", b"0123456", 1, 1, false, 3, |_| "k".into())
            .unwrap();
        store
            .append("app", b"789", 1, 2, false, 3, |_| unreachable!())
            .unwrap();
        let sizes: Vec<u64> = store
            .get(a.id)
            .unwrap()
            .part_files
            .values()
            .copied()
            .collect();
        assert_eq!(
            sizes,
            vec![3, 3, 3, 1],
            "parts of exactly 3 bytes, the last one open"
        );
        assert_eq!(store.sealed_parts(a.id), vec![1, 2, 3]);
        assert_eq!(store.open_bytes("app"), 10);
        store.seal_open("app").unwrap();
        assert_eq!(store.open_bytes("app"), 0);
        store
            .compress_job(a.id)
            .unwrap()
            .run(|input, out| {
                let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
                std::io::copy(input, &mut enc)?;
                enc.finish().map(drop)
            })
            .unwrap();
        let size = store.compressed(a.id).unwrap();
        assert!(store.compress_job(a.id).is_none(), "compressed once");
        let elsewhere = tempfile::tempdir().unwrap();
        let gz_part = elsewhere.path().join("1.1.data");
        fs::write(&gz_part, store.read_compressed(a.id, 0, 2).unwrap()).unwrap();
        let legacy = CompressJob {
            inputs: vec![gz_part],
            output: elsewhere.path().join("1.z.tmp"),
        };
        assert!(
            legacy.already_gzip(),
            "a part file of an earlier version, gzipped per batch"
        );
        assert!(store.get(a.id).unwrap().part_files.is_empty());
        assert_eq!(store.used_bytes(), size);
        let gz = store.read_compressed(a.id, 0, size).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text)
            .unwrap();
        assert_eq!(text, "0123456789");
        assert_eq!(store.read_compressed(a.id, 2, 3).unwrap(), gz[2..5]);
        drop(store);
        let mut store = Store::open(dir.path(), 0).unwrap();
        assert_eq!(store.get(a.id).unwrap().meta.compressed, Some(size));
        assert_eq!(
            store.used_bytes(),
            size,
            "the compressed file is kept on recovery"
        );
        assert!(store.quarantine(a.id, 0).unwrap());
        assert_eq!(store.used_bytes(), 0);
        assert!(!exists(&store.compressed_path(a.id)));
        assert!(exists(
            &dir.path().join("quarantine").join(format!("{}.z", a.id))
        ));
        let b = store
            .append("app", b"more", 1, 3, false, 3, |_| "k2".into())
            .unwrap();
        assert!(
            !store.quarantine(b.id, 1).unwrap(),
            "past the limit: removed"
        );
        assert_eq!(store.used_bytes(), 0);
        assert!(store.objects().is_empty());
    }
}
