//! Delivery progress inside records that are not done yet: which events of a record already
//! reached the destination, so that after a restart only the others are read back.
//!
//! The output marks events of a batch as delivered when it stops in the middle of a delivery
//! (the shutdown deadline cut it): the acked-read pointer cannot move past a batch that is only
//! partly delivered, and without this the delivered part would be sent again.
//!
//! The `progress` file is an append-only log of entries, each
//! `magic "WRpg" | segment (u64 LE) | offset (u64 LE) | bits (u32 LE) | bitmap | CRC-32 of all before`,
//! where (segment, offset) is where the record starts and bit `i` of the bitmap (LSB first) says
//! that event `i` of the record was delivered. Entries for one record are merged (union). A torn
//! last entry fails its checksum and is ignored: losing it only means re-sending those events.
//! The file is emptied once the acked-read pointer has passed every record it names.

use super::ack::Position;
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

const ENTRY_MAGIC: &[u8; 4] = b"WRpg";
const ENTRY_FIXED: usize = 4 + 8 + 8 + 4;

/// Delivered events per record start, as bitmaps over the record's event indexes.
pub type Delivered = BTreeMap<Position, Vec<u8>>;

/// The progress file, open for appending.
#[derive(Debug)]
pub struct ProgressFile {
    file: File,
    len: u64,
    /// The last record start named by an entry in the file, if any.
    newest: Option<Position>,
}

impl ProgressFile {
    /// Open or create the file at `path`; returns it with what it holds for records at or after
    /// `acked` (entries for records before it are obsolete and dropped from the file).
    pub fn open(path: &Path, acked: Position) -> io::Result<(ProgressFile, Delivered)> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let bytes = std::fs::read(path)?;
        let mut delivered = Delivered::new();
        let mut at = 0;
        while let Some((start, bitmap, len)) = decode_entry(&bytes[at..]) {
            at += len;
            if start >= acked {
                merge(delivered.entry(start).or_default(), &bitmap);
            }
        }
        let mut progress = ProgressFile {
            file,
            len: bytes.len() as u64,
            newest: None,
        };
        // Rewrite the file with only what still matters (usually nothing).
        progress.file.set_len(0)?;
        progress.len = 0;
        for (start, bitmap) in &delivered {
            progress.append(*start, bitmap)?;
        }
        Ok((progress, delivered))
    }

    /// Record that the events of the record starting at `start` whose bits are set in `bitmap`
    /// were delivered (not synced; see [`ProgressFile::sync`]).
    pub fn append(&mut self, start: Position, bitmap: &[u8]) -> io::Result<()> {
        let entry = encode_entry(start, bitmap);
        self.file.write_all_at(&entry, self.len)?;
        self.len += entry.len() as u64;
        self.newest = self.newest.max(Some(start));
        Ok(())
    }

    /// Empty the file once the acked-read pointer is past every record it names.
    pub fn forget_before(&mut self, acked: Position) -> io::Result<()> {
        if self.newest.is_some_and(|newest| newest < acked) {
            self.file.set_len(0)?;
            self.len = 0;
            self.newest = None;
        }
        Ok(())
    }

    /// Flush the file to the disk.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// A bitmap with the bits of `indexes` set.
pub fn bitmap_of(indexes: impl IntoIterator<Item = u32>) -> Vec<u8> {
    let mut bitmap = Vec::new();
    for i in indexes {
        let byte = i as usize / 8;
        if bitmap.len() <= byte {
            bitmap.resize(byte + 1, 0);
        }
        bitmap[byte] |= 1 << (i % 8);
    }
    bitmap
}

/// Whether bit `i` of `bitmap` is set.
pub fn is_set(bitmap: &[u8], i: usize) -> bool {
    bitmap.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

fn merge(into: &mut Vec<u8>, bitmap: &[u8]) {
    if into.len() < bitmap.len() {
        into.resize(bitmap.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(bitmap) {
        *a |= b;
    }
}

fn encode_entry(start: Position, bitmap: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENTRY_FIXED + bitmap.len() + 4);
    out.extend_from_slice(ENTRY_MAGIC);
    out.extend_from_slice(&start.segment.to_le_bytes());
    out.extend_from_slice(&start.offset.to_le_bytes());
    out.extend_from_slice(&((bitmap.len() * 8) as u32).to_le_bytes());
    out.extend_from_slice(bitmap);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The entry at the start of `buf` and its length, if it is whole and intact.
fn decode_entry(buf: &[u8]) -> Option<(Position, Vec<u8>, usize)> {
    if buf.len() < ENTRY_FIXED || &buf[0..4] != ENTRY_MAGIC {
        return None;
    }
    let bits = u32::from_le_bytes(buf[20..24].try_into().ok()?) as usize;
    let len = ENTRY_FIXED + bits.div_ceil(8) + 4;
    let (body, crc) = buf.get(..len)?.split_at(len - 4);
    let crc = u32::from_le_bytes(crc.try_into().ok()?);
    if crc32fast::hash(body) != crc {
        return None;
    }
    let start = Position {
        segment: u64::from_le_bytes(buf[4..12].try_into().ok()?),
        offset: u64::from_le_bytes(buf[12..20].try_into().ok()?),
    };
    Some((start, body[ENTRY_FIXED..].to_vec(), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(segment: u64, offset: u64) -> Position {
        Position { segment, offset }
    }

    #[test]
    fn entries_merge_survive_reopen_and_obsolete_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("progress");
        let (mut f, delivered) = ProgressFile::open(&path, pos(1, 0)).unwrap();
        assert!(delivered.is_empty());
        f.append(pos(1, 8), &bitmap_of([0, 1])).unwrap();
        f.append(pos(2, 100), &bitmap_of([3])).unwrap();
        f.append(pos(2, 100), &bitmap_of([9])).unwrap();
        drop(f);
        let (_, delivered) = ProgressFile::open(&path, pos(1, 50)).unwrap();
        assert_eq!(
            delivered.len(),
            1,
            "the record at 1:8 is before the pointer"
        );
        let bitmap = &delivered[&pos(2, 100)];
        let set: Vec<usize> = (0..16).filter(|&i| is_set(bitmap, i)).collect();
        assert_eq!(set, vec![3, 9]);
        // The rewrite kept only what matters.
        let (_, delivered) = ProgressFile::open(&path, pos(0, 0)).unwrap();
        assert_eq!(
            delivered.keys().copied().collect::<Vec<_>>(),
            vec![pos(2, 100)]
        );
    }

    #[test]
    fn a_torn_last_entry_is_ignored_and_forgetting_empties_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("progress");
        let (mut f, _) = ProgressFile::open(&path, pos(0, 0)).unwrap();
        f.append(pos(3, 8), &bitmap_of([0])).unwrap();
        f.append(pos(3, 90), &bitmap_of([1, 2])).unwrap();
        drop(f);
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (mut f, delivered) = ProgressFile::open(&path, pos(0, 0)).unwrap();
        assert_eq!(
            delivered.keys().copied().collect::<Vec<_>>(),
            vec![pos(3, 8)]
        );
        f.forget_before(pos(3, 8)).unwrap();
        assert!(
            std::fs::metadata(&path).unwrap().len() > 0,
            "3:8 is not passed yet"
        );
        f.forget_before(pos(3, 50)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }
}
