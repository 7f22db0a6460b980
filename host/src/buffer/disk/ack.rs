//! The acked-read pointer of a disk buffer: where the first record not yet delivered starts.
//!
//! The file holds two 32-byte slots written alternately, each
//! `sequence (u64 LE) | segment id (u64 LE) | offset (u64 LE) | CRC-32 of those 24 bytes | 0u32`.
//! A write goes to the slot the previous write did not use, so a torn write (power loss during
//! `pwrite`) leaves the other slot intact; on open the valid slot with the higher sequence wins.
//! Losing the newest pointer only means re-sending what was delivered since the one before it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

const SLOT_LEN: u64 = 32;

/// A position in the buffer's segment files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Segment id (the file name's number).
    pub segment: u64,
    /// Byte offset inside that segment.
    pub offset: u64,
}

/// The pointer file, open for updates.
#[derive(Debug)]
pub struct AckFile {
    file: File,
    sequence: u64,
}

impl AckFile {
    /// Open or create the file at `path`; returns it with the stored position, if any.
    pub fn open(path: &Path) -> io::Result<(AckFile, Option<Position>)> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut best: Option<(u64, Position)> = None;
        for slot in 0..2 {
            let mut buf = [0u8; SLOT_LEN as usize];
            if file.read_exact_at(&mut buf, slot * SLOT_LEN).is_err() {
                continue;
            }
            if let Some((seq, pos)) = decode_slot(&buf)
                && best.is_none_or(|(s, _)| seq > s)
            {
                best = Some((seq, pos));
            }
        }
        let sequence = best.map(|(s, _)| s).unwrap_or(0);
        Ok((AckFile { file, sequence }, best.map(|(_, p)| p)))
    }

    /// Store `pos` (not synced; see [`AckFile::sync`]).
    pub fn store(&mut self, pos: Position) -> io::Result<()> {
        self.sequence += 1;
        let slot = self.sequence % 2;
        self.file
            .write_all_at(&encode_slot(self.sequence, pos), slot * SLOT_LEN)
    }

    /// Flush stored positions to the disk.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

fn encode_slot(sequence: u64, pos: Position) -> [u8; SLOT_LEN as usize] {
    let mut buf = [0u8; SLOT_LEN as usize];
    buf[0..8].copy_from_slice(&sequence.to_le_bytes());
    buf[8..16].copy_from_slice(&pos.segment.to_le_bytes());
    buf[16..24].copy_from_slice(&pos.offset.to_le_bytes());
    let crc = crc32fast::hash(&buf[0..24]);
    buf[24..28].copy_from_slice(&crc.to_le_bytes());
    buf
}

fn decode_slot(buf: &[u8; SLOT_LEN as usize]) -> Option<(u64, Position)> {
    let crc = u32::from_le_bytes(buf[24..28].try_into().unwrap());
    if crc32fast::hash(&buf[0..24]) != crc {
        return None;
    }
    let seq = u64::from_le_bytes(buf[0..8].try_into().unwrap());
    let segment = u64::from_le_bytes(buf[8..16].try_into().unwrap());
    let offset = u64::from_le_bytes(buf[16..24].try_into().unwrap());
    (seq > 0).then_some((seq, Position { segment, offset }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_valid_slot_wins_and_a_torn_slot_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ack");
        let (mut f, pos) = AckFile::open(&path).unwrap();
        assert_eq!(pos, None);
        f.store(Position {
            segment: 1,
            offset: 100,
        })
        .unwrap();
        f.store(Position {
            segment: 1,
            offset: 200,
        })
        .unwrap();
        f.store(Position {
            segment: 2,
            offset: 8,
        })
        .unwrap();
        drop(f);
        let (mut f, pos) = AckFile::open(&path).unwrap();
        assert_eq!(
            pos,
            Some(Position {
                segment: 2,
                offset: 8
            })
        );
        // The next write continues the sequence (slot 0), so it wins over slot 1.
        f.store(Position {
            segment: 2,
            offset: 50,
        })
        .unwrap();
        drop(f);
        assert_eq!(
            AckFile::open(&path).unwrap().1,
            Some(Position {
                segment: 2,
                offset: 50
            })
        );

        // Tear the newest slot (slot 0 holds sequence 4): the previous position comes back.
        let raw = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        raw.write_all_at(&[0xff; 5], 10).unwrap();
        drop(raw);
        assert_eq!(
            AckFile::open(&path).unwrap().1,
            Some(Position {
                segment: 2,
                offset: 8
            })
        );
    }
}
