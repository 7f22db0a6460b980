//! The tail input's offsets across restarts (Fluent Bit `DB`). Fluent Bit keeps them in
//! SQLite; this router keeps its own small file instead: a JSON document with one entry per
//! file — device and inode (the key: a renamed file keeps its offset), its name, and the offset
//! of the first byte not yet handed to the pipeline. It is written whole to `<db>.tmp` and
//! renamed over `<db>` (and fsynced with `db_sync = "full"`), so a crash leaves the old or the
//! new file, never a torn one.
//!
//! A Fluent Bit SQLite file at the path is refused, not overwritten: its offsets cannot be read
//! here, and starting without them would read the files again or skip what was written while
//! no router ran.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What identifies a file across renames: its device and inode.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub inode: u64,
}

impl FileId {
    /// The id of the file `meta` describes.
    pub fn of(meta: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: meta.dev(),
            inode: meta.ino(),
        }
    }
}

/// One file's saved position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// Its name when last saved.
    pub name: String,
    /// The first byte not yet handed to the pipeline.
    pub offset: u64,
}

/// The document on disk.
#[derive(Serialize, Deserialize)]
struct Document {
    format: String,
    files: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    dev: u64,
    inode: u64,
    name: String,
    offset: u64,
}

const FORMAT: &str = "wasm-router tail offsets v1";
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

/// Why the offsets file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A Fluent Bit (SQLite) database is at the path.
    #[error(
        "{0} is a Fluent Bit SQLite database; this router keeps offsets in its own format and does not overwrite it: point `DB` at a new file (e.g. {0}.wasm-router), or delete it to read the files as new (from their end, or from their start with Read_from_Head On)"
    )]
    FluentBit(PathBuf),
    /// The file is not ours or is damaged.
    #[error(
        "{path} is not a tail offsets file ({why}); point `DB` at a new file, or delete it to read the files as new"
    )]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// The offsets file, in memory.
#[derive(Debug)]
pub struct OffsetDb {
    path: PathBuf,
    fsync: bool,
    files: HashMap<FileId, Saved>,
    dirty: bool,
}

impl OffsetDb {
    /// Read the offsets at `path` (none when it does not exist yet, and then it is created, so
    /// a path that cannot be written fails now); `fsync` each save.
    pub fn open(path: &Path, fsync: bool) -> Result<OffsetDb, DbError> {
        let mut db = OffsetDb {
            path: path.to_path_buf(),
            fsync,
            files: HashMap::new(),
            dirty: false,
        };
        match read(path)? {
            Some(files) => db.files = files,
            None => db.save()?,
        }
        Ok(db)
    }

    /// Whether the file at `path` can be used (it need not exist yet), without writing.
    pub fn check(path: &Path) -> Result<(), DbError> {
        read(path).map(drop)
    }

    /// The saved position of `id`.
    pub fn get(&self, id: FileId) -> Option<&Saved> {
        self.files.get(&id)
    }

    /// Note the position of `id` (saved by the next [`OffsetDb::save`]).
    pub fn set(&mut self, id: FileId, name: &str, offset: u64) {
        let new = Saved {
            name: name.to_string(),
            offset,
        };
        if self.files.get(&id) != Some(&new) {
            self.files.insert(id, new);
            self.dirty = true;
        }
    }

    /// Forget `id` (a file closed for good).
    pub fn remove(&mut self, id: FileId) {
        self.dirty |= self.files.remove(&id).is_some();
    }

    /// Forget every file but those `keep` says to keep.
    pub fn retain(&mut self, mut keep: impl FnMut(FileId) -> bool) {
        let before = self.files.len();
        self.files.retain(|id, _| keep(*id));
        self.dirty |= self.files.len() != before;
    }

    /// Whether there are changes not saved yet.
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// Write the offsets: to `<db>.tmp`, then renamed over `<db>`.
    pub fn save(&mut self) -> Result<(), DbError> {
        let io = |source| DbError::Io {
            path: self.path.clone(),
            source,
        };
        let mut files: Vec<Entry> = self
            .files
            .iter()
            .map(|(id, s)| Entry {
                dev: id.dev,
                inode: id.inode,
                name: s.name.clone(),
                offset: s.offset,
            })
            .collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let doc = Document {
            format: FORMAT.to_string(),
            files,
        };
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&serde_json::to_vec_pretty(&doc).expect("plain data"))
            .map_err(io)?;
        if self.fsync {
            f.sync_all().map_err(io)?;
        }
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if self.fsync
            && let Some(dir) = self.path.parent()
        {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        self.dirty = false;
        Ok(())
    }
}

/// The offsets in the file at `path`; none when there is no file.
fn read(path: &Path) -> Result<Option<HashMap<FileId, Saved>>, DbError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DbError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if bytes.starts_with(SQLITE_MAGIC) {
        return Err(DbError::FluentBit(path.to_path_buf()));
    }
    let unreadable = |why: String| DbError::Unreadable {
        path: path.to_path_buf(),
        why,
    };
    let doc: Document = serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
    if doc.format != FORMAT {
        return Err(unreadable(format!(
            "format {:?}, expected {FORMAT:?}",
            doc.format
        )));
    }
    Ok(Some(
        doc.files
            .into_iter()
            .map(|e| {
                let id = FileId {
                    dev: e.dev,
                    inode: e.inode,
                };
                let saved = Saved {
                    name: e.name,
                    offset: e.offset,
                };
                (id, saved)
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_survive_a_round_trip_and_a_fluent_bit_db_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tail.db");
        let id = FileId { dev: 7, inode: 42 };
        let mut db = OffsetDb::open(&path, true).unwrap();
        assert!(
            path.exists(),
            "created at open, so a bad path fails at start"
        );
        db.set(id, "/var/log/a.log", 1234);
        db.set(FileId { dev: 7, inode: 43 }, "/var/log/b.log", 5);
        assert!(db.dirty());
        db.save().unwrap();
        db.remove(FileId { dev: 7, inode: 43 });
        db.save().unwrap();
        let db = OffsetDb::open(&path, false).unwrap();
        assert_eq!(
            db.get(id),
            Some(&Saved {
                name: "/var/log/a.log".into(),
                offset: 1234
            })
        );
        assert_eq!(db.get(FileId { dev: 7, inode: 43 }), None);
        assert!(!dir.path().join("tail.db.tmp").exists());

        std::fs::write(&path, b"SQLite format 3\0rest").unwrap();
        let e = OffsetDb::check(&path).unwrap_err().to_string();
        assert!(e.contains("is a Fluent Bit SQLite database"), "{e}");
        let e = OffsetDb::open(&path, false).unwrap_err().to_string();
        assert!(e.contains("is a Fluent Bit SQLite database"), "{e}");
        std::fs::write(&path, b"{\"nope\":1}").unwrap();
        let e = OffsetDb::open(&path, false).unwrap_err().to_string();
        assert!(e.contains("is not a tail offsets file"), "{e}");
    }
}
