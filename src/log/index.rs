//! The sparse indexes of one segment, as in Kafka: `.index` maps an offset to the file
//! position of the batch that starts at it; `.timeindex` maps a timestamp to the offset of the
//! batch that first reached it. Entries are kept in memory and appended to their file; a file
//! that fails its sanity check at load time is rebuilt from the log.
//!
//! Synchronisation: owned by a `LogSegment`, which is only touched under its `Log`'s lock.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::storage::{FileRef, OpenMode, Storage};

/// `.index` entry: (offset - base_offset) as u32 BE, file position as u32 BE.
pub const OFFSET_ENTRY_SIZE: usize = 8;
/// `.timeindex` entry: timestamp as i64 BE, (offset - base_offset) as u32 BE.
pub const TIME_ENTRY_SIZE: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

/// Appends fixed-size entries to an index file. The file is opened only while entries are
/// written to it: entries are also kept in memory, so a rolled segment's indexes hold no
/// file descriptor (as Kafka's, whose indexes are mmapped and their files closed), and a
/// partition costs one descriptor per segment plus two for an active one with entries.
#[derive(Debug)]
struct IndexFile {
    storage: Arc<dyn Storage>,
    path: PathBuf,
    file: Option<FileRef>,
    len: u64,
}

impl IndexFile {
    fn create(storage: &Arc<dyn Storage>, path: &Path) -> io::Result<IndexFile> {
        storage.open(path, OpenMode::Truncate)?;
        Ok(IndexFile {
            storage: storage.clone(),
            path: path.to_path_buf(),
            file: None,
            len: 0,
        })
    }

    fn open(storage: &Arc<dyn Storage>, path: &Path) -> io::Result<(IndexFile, Vec<u8>)> {
        let file = storage.open(path, OpenMode::Existing)?;
        let len = file.len()?;
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, 0)?;
        let index = IndexFile {
            storage: storage.clone(),
            path: path.to_path_buf(),
            file: None,
            len,
        };
        Ok((index, bytes))
    }

    /// The open file, opening it if needed.
    fn file(&mut self) -> io::Result<&FileRef> {
        if self.file.is_none() {
            self.file = Some(self.storage.open(&self.path, OpenMode::CreateOrOpen)?);
        }
        Ok(self.file.as_ref().expect("just opened"))
    }

    fn append(&mut self, entry: &[u8]) -> io::Result<()> {
        let len = self.len;
        let file = self.file()?;
        if let Err(e) = file.write_all_at(&[entry], len) {
            // Don't leave half an entry behind (best effort: the load-time check also
            // catches it).
            let _ignored_secondary = file.set_len(len);
            return Err(e);
        }
        self.len += entry.len() as u64;
        Ok(())
    }

    fn rewrite(&mut self, bytes: &[u8]) -> io::Result<()> {
        let file = self.file()?.clone();
        file.set_len(0)?;
        self.len = 0;
        file.write_all_at(&[bytes], 0)?;
        self.len = bytes.len() as u64;
        Ok(())
    }

    /// Cuts the file back to `len` bytes (undoing appends of a failed log append).
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        if len < self.len {
            self.file()?.set_len(len)?;
            self.len = len;
        }
        Ok(())
    }
}

/// An index of one segment: fixed-size entries, kept in memory and appended to a file.
#[derive(Debug)]
pub struct SparseIndex<E> {
    base_offset: i64,
    file: IndexFile,
    entries: Vec<E>,
}

/// The offset index of one segment.
pub type OffsetIndex = SparseIndex<OffsetEntry>;
/// The time index of one segment.
pub type TimeIndex = SparseIndex<TimeEntry>;

/// What the two kinds of index entries have in common.
pub trait IndexEntry: Copy {
    /// Bytes of one entry in the file.
    const SIZE: usize;
    /// The offset the entry points at, relative to the segment's base offset.
    fn relative_offset(&self) -> u32;
    /// Appends the entry's file form to `out`.
    fn encode(&self, out: &mut Vec<u8>);
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = OFFSET_ENTRY_SIZE;
    fn relative_offset(&self) -> u32 {
        self.relative_offset
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = TIME_ENTRY_SIZE;
    fn relative_offset(&self) -> u32 {
        self.relative_offset
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
}

fn encode_all<E: IndexEntry>(entries: &[E]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(entries.len() * E::SIZE);
    for e in entries {
        e.encode(&mut bytes);
    }
    bytes
}

impl<E: IndexEntry> SparseIndex<E> {
    /// Appends `entries` (which follow the existing ones) in one write.
    pub fn extend(&mut self, entries: &[E]) -> io::Result<()> {
        self.file.append(&encode_all(entries))?;
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    /// Replaces the content with `entries` (after a rebuild).
    pub fn reset(&mut self, entries: Vec<E>) -> io::Result<()> {
        self.file.rewrite(&encode_all(&entries))?;
        self.entries = entries;
        Ok(())
    }

    /// A handle for an fsync outside the log's lock, if the file was written since it was
    /// last released (otherwise there is nothing to sync).
    pub fn sync_handle(&self) -> Option<FileRef> {
        self.file.file.clone()
    }

    /// Closes the file (a rolled segment's index: its entries stay in memory; any write
    /// reopens it).
    pub fn release(&mut self) {
        self.file.file = None;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn raw_entries(&self) -> &[E] {
        &self.entries
    }

    /// Keeps only the entries that point at offsets before `offset`.
    pub fn keep_before(&mut self, offset: i64) -> io::Result<()> {
        let rel = offset - self.base_offset;
        let keep = self
            .entries
            .partition_point(|e| (e.relative_offset() as i64) < rel);
        self.truncate_entries(keep)
    }

    /// Keeps only the first `entries` entries (undoing a failed append).
    pub fn truncate_entries(&mut self, entries: usize) -> io::Result<()> {
        self.file.truncate((entries * E::SIZE) as u64)?;
        self.entries.truncate(entries);
        Ok(())
    }
}

impl OffsetIndex {
    pub fn create(
        storage: &Arc<dyn Storage>,
        path: &Path,
        base_offset: i64,
    ) -> io::Result<OffsetIndex> {
        Ok(OffsetIndex {
            base_offset,
            file: IndexFile::create(storage, path)?,
            entries: Vec::new(),
        })
    }

    /// Loads an index file; `Ok(None)` if it is missing or fails a sanity check against a
    /// log of `log_size` bytes (then the caller rebuilds it).
    pub fn load(
        storage: &Arc<dyn Storage>,
        path: &Path,
        base_offset: i64,
        log_size: u64,
    ) -> io::Result<Option<OffsetIndex>> {
        if !storage.exists(path) {
            return Ok(None);
        }
        let (file, bytes) = IndexFile::open(storage, path)?;
        if bytes.len() % OFFSET_ENTRY_SIZE != 0 {
            return Ok(None);
        }
        let mut entries = Vec::with_capacity(bytes.len() / OFFSET_ENTRY_SIZE);
        for chunk in bytes.chunks_exact(OFFSET_ENTRY_SIZE) {
            let e = OffsetEntry {
                relative_offset: u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
                position: u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
            };
            let sane = (e.position as u64) < log_size.max(1)
                && entries.last().is_none_or(|prev: &OffsetEntry| {
                    prev.relative_offset < e.relative_offset && prev.position < e.position
                });
            if !sane {
                return Ok(None);
            }
            entries.push(e);
        }
        Ok(Some(OffsetIndex {
            base_offset,
            file,
            entries,
        }))
    }

    pub fn append(&mut self, offset: i64, position: u32) -> io::Result<()> {
        let relative_offset = (offset - self.base_offset) as u32;
        let mut buf = [0u8; OFFSET_ENTRY_SIZE];
        buf[..4].copy_from_slice(&relative_offset.to_be_bytes());
        buf[4..].copy_from_slice(&position.to_be_bytes());
        self.file.append(&buf)?;
        self.entries.push(OffsetEntry {
            relative_offset,
            position,
        });
        Ok(())
    }

    /// The last entry at or before `offset`: (offset, position); (base_offset, 0) if none.
    pub fn lookup(&self, offset: i64) -> (i64, u32) {
        let rel = offset - self.base_offset;
        if rel < 0 {
            return (self.base_offset, 0);
        }
        let idx = self
            .entries
            .partition_point(|e| (e.relative_offset as i64) <= rel);
        match idx {
            0 => (self.base_offset, 0),
            i => {
                let e = self.entries[i - 1];
                (self.base_offset + e.relative_offset as i64, e.position)
            }
        }
    }

    /// The last entry at or before file position `position` whose offset is at most
    /// `offset`: a batch boundary (offset and position of the batch starting there) with
    /// only batches below `offset` before it. Entries grow in both, so it is a binary search.
    pub fn last_boundary_within(&self, position: u64, offset: i64) -> Option<(i64, u32)> {
        let rel = offset - self.base_offset;
        let idx = self.entries.partition_point(|e| {
            u64::from(e.position) <= position && i64::from(e.relative_offset) <= rel
        });
        let e = self.entries.get(idx.checked_sub(1)?)?;
        Some((self.base_offset + i64::from(e.relative_offset), e.position))
    }

    /// Every entry as (offset, position).
    #[cfg(any(test, fuzzing))]
    pub fn entries(&self) -> Vec<(i64, u32)> {
        self.entries
            .iter()
            .map(|e| (self.base_offset + e.relative_offset as i64, e.position))
            .collect()
    }
}

impl TimeIndex {
    pub fn create(
        storage: &Arc<dyn Storage>,
        path: &Path,
        base_offset: i64,
    ) -> io::Result<TimeIndex> {
        Ok(TimeIndex {
            base_offset,
            file: IndexFile::create(storage, path)?,
            entries: Vec::new(),
        })
    }

    /// Loads a time index; `Ok(None)` if missing or not monotonic.
    pub fn load(
        storage: &Arc<dyn Storage>,
        path: &Path,
        base_offset: i64,
        next_offset: i64,
    ) -> io::Result<Option<TimeIndex>> {
        if !storage.exists(path) {
            return Ok(None);
        }
        let (file, bytes) = IndexFile::open(storage, path)?;
        if bytes.len() % TIME_ENTRY_SIZE != 0 {
            return Ok(None);
        }
        let mut entries = Vec::with_capacity(bytes.len() / TIME_ENTRY_SIZE);
        for chunk in bytes.chunks_exact(TIME_ENTRY_SIZE) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let e = TimeEntry {
                timestamp: i64::from_be_bytes(ts),
                relative_offset: u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]),
            };
            let sane = base_offset + (e.relative_offset as i64) < next_offset.max(base_offset + 1)
                && entries.last().is_none_or(|prev: &TimeEntry| {
                    prev.timestamp < e.timestamp && prev.relative_offset < e.relative_offset
                });
            if !sane {
                return Ok(None);
            }
            entries.push(e);
        }
        Ok(Some(TimeIndex {
            base_offset,
            file,
            entries,
        }))
    }

    pub fn append(&mut self, timestamp: i64, offset: i64) -> io::Result<()> {
        let relative_offset = (offset - self.base_offset) as u32;
        let mut buf = [0u8; TIME_ENTRY_SIZE];
        buf[..8].copy_from_slice(&timestamp.to_be_bytes());
        buf[8..].copy_from_slice(&relative_offset.to_be_bytes());
        self.file.append(&buf)?;
        self.entries.push(TimeEntry {
            timestamp,
            relative_offset,
        });
        Ok(())
    }

    /// Where a search for the first batch with a timestamp >= `timestamp` may start: the
    /// offset of the last entry whose timestamp is below it (every batch up to there is
    /// older), or the segment's base offset.
    pub fn lookup(&self, timestamp: i64) -> i64 {
        let idx = self.entries.partition_point(|e| e.timestamp < timestamp);
        match idx {
            0 => self.base_offset,
            i => self.base_offset + self.entries[i - 1].relative_offset as i64,
        }
    }

    pub fn last_entry_offset(&self) -> Option<i64> {
        self.entries
            .last()
            .map(|e| self.base_offset + e.relative_offset as i64)
    }

    pub fn last_timestamp(&self) -> Option<i64> {
        self.entries.last().map(|e| e.timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_lookup_finds_floor_entry_and_survives_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        let fs = crate::storage::file_system();
        let mut idx = OffsetIndex::create(&fs, &path, 100).unwrap();
        idx.append(100, 0).unwrap();
        idx.append(110, 4000).unwrap();
        idx.append(125, 9000).unwrap();
        assert_eq!(idx.lookup(50), (100, 0));
        assert_eq!(idx.lookup(109), (100, 0));
        assert_eq!(idx.lookup(110), (110, 4000));
        assert_eq!(idx.lookup(200), (125, 9000));
        let loaded = OffsetIndex::load(&fs, &path, 100, 10_000).unwrap().unwrap();
        assert_eq!(loaded.lookup(124), (110, 4000));
        // An entry pointing past the end of the log fails the sanity check.
        assert!(OffsetIndex::load(&fs, &path, 100, 5000).unwrap().is_none());
    }

    #[test]
    fn time_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.timeindex");
        let fs = crate::storage::file_system();
        let mut idx = TimeIndex::create(&fs, &path, 0).unwrap();
        idx.append(1000, 0).unwrap();
        idx.append(2000, 10).unwrap();
        idx.append(3000, 20).unwrap();
        assert_eq!(idx.lookup(500), 0);
        assert_eq!(idx.lookup(1000), 0);
        assert_eq!(idx.lookup(2500), 10);
        assert_eq!(idx.lookup(9000), 20);
        let loaded = TimeIndex::load(&fs, &path, 0, 30).unwrap().unwrap();
        assert_eq!(loaded.lookup(2001), 10);
    }
}
