//! One segment of a partition's log: the `.log` file of record batches starting at
//! `base_offset`, with its offset and time indexes. Appends go to the end of the newest
//! (active) segment; reads use positional reads on a shared handle, outside the log's lock.
//!
//! Synchronisation: a `LogSegment` is owned by its `Log` and only mutated under the log's
//! lock. Its `.log` file is a shared `FileRef`: readers clone it and read without the lock
//! (a segment deleted meanwhile stays readable through the open handle).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::file_names;
use super::index::{OffsetEntry, OffsetIndex, TimeEntry, TimeIndex};
use super::record_batch::{check_batch, BatchHeader, HEADER_SIZE};
use crate::storage::{FileRef, OpenMode, Storage, StorageFile};

/// The result of scanning a segment at recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryResult {
    /// Bytes cut from the end because they did not form valid batches.
    pub truncated_bytes: u64,
    /// Valid batches found.
    pub batches: u64,
}

#[derive(Debug)]
pub struct LogSegment {
    base_offset: i64,
    path: PathBuf,
    file: FileRef,
    size: u64,
    next_offset: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    bytes_since_last_index_entry: u64,
    /// Largest batch max timestamp in the segment (-1 when empty), and the batch it is in.
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    /// Wall-clock ms when this segment was created or opened, for `segment.ms` when the
    /// first batch has no timestamp.
    created_ms: i64,
    /// The first batch's max timestamp, Kafka's basis for time-based rolling (`None`: not
    /// read yet, or the segment is empty).
    first_batch_timestamp: Option<i64>,
}

impl LogSegment {
    /// Creates an empty segment (its files must not exist or be empty).
    pub fn create(
        storage: &Arc<dyn Storage>,
        dir: &Path,
        base_offset: i64,
    ) -> io::Result<LogSegment> {
        let path = file_names::log_file(dir, base_offset);
        let file = storage.open(&path, OpenMode::Truncate)?;
        Ok(LogSegment {
            base_offset,
            path,
            file,
            size: 0,
            next_offset: base_offset,
            offset_index: OffsetIndex::create(
                storage,
                &file_names::index_file(dir, base_offset),
                base_offset,
            )?,
            time_index: TimeIndex::create(
                storage,
                &file_names::time_index_file(dir, base_offset),
                base_offset,
            )?,
            bytes_since_last_index_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            created_ms: crate::log::now_ms(),
            first_batch_timestamp: None,
        })
    }

    /// Opens an existing segment. With `recover_from` (a recovery point), or when an index
    /// file is missing or inconsistent, batches are checked and the indexes rebuilt: from
    /// the last index entry at or before the recovery point when that entry checks out
    /// (everything before it was fsynced), else from the start (see [`LogSegment::recover`]).
    pub fn open(
        storage: &Arc<dyn Storage>,
        dir: &Path,
        base_offset: i64,
        recover_from: Option<i64>,
        index_interval_bytes: u64,
        now_ms: i64,
    ) -> io::Result<(LogSegment, Option<RecoveryResult>)> {
        let path = file_names::log_file(dir, base_offset);
        let file = storage.open(&path, OpenMode::Existing)?;
        let size = file.len()?;
        let index_path = file_names::index_file(dir, base_offset);
        let time_path = file_names::time_index_file(dir, base_offset);
        if recover_from.is_none() {
            let offset_index = OffsetIndex::load(storage, &index_path, base_offset, size)?;
            let time_index = TimeIndex::load(storage, &time_path, base_offset, i64::MAX)?;
            if let (Some(offset_index), Some(time_index)) = (offset_index, time_index) {
                let mut segment = LogSegment {
                    base_offset,
                    path: path.clone(),
                    file: file.clone(),
                    size,
                    next_offset: base_offset,
                    offset_index,
                    time_index,
                    bytes_since_last_index_entry: 0,
                    max_timestamp: -1,
                    offset_of_max_timestamp: -1,
                    created_ms: now_ms,
                    first_batch_timestamp: None,
                };
                if segment.load_tail()? {
                    return Ok((segment, None));
                }
            }
        }
        let resume = match recover_from {
            Some(point) if point > base_offset => {
                let offset_index = OffsetIndex::load(storage, &index_path, base_offset, size)?;
                let time_index = TimeIndex::load(storage, &time_path, base_offset, i64::MAX)?;
                match (offset_index, time_index) {
                    (Some(o), Some(t)) => Self::resume_point(file.as_ref(), size, o, t, point)?,
                    _ => None,
                }
            }
            _ => None,
        };
        let (offset_index, time_index, start) = match resume {
            Some((offset_index, time_index, start)) => (offset_index, time_index, start),
            None => (
                OffsetIndex::create(storage, &index_path, base_offset)?,
                TimeIndex::create(storage, &time_path, base_offset)?,
                (base_offset, 0),
            ),
        };
        let mut segment = LogSegment {
            base_offset,
            path,
            file,
            size,
            next_offset: base_offset,
            offset_index,
            time_index,
            bytes_since_last_index_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            created_ms: now_ms,
            first_batch_timestamp: None,
        };
        let trusted_below = recover_from.unwrap_or(i64::MIN);
        let result = segment.recover_from(start, trusted_below, index_interval_bytes)?;
        Ok((segment, Some(result)))
    }

    /// Where recovery may start instead of position 0: the last offset-index entry at or
    /// before `recovery_point`, if the batch header at its position has that offset. The
    /// indexes come back cut to the entries before it.
    #[allow(clippy::type_complexity)]
    fn resume_point(
        file: &dyn StorageFile,
        size: u64,
        mut offset_index: OffsetIndex,
        mut time_index: TimeIndex,
        recovery_point: i64,
    ) -> io::Result<Option<(OffsetIndex, TimeIndex, (i64, u64))>> {
        let (offset, position) = offset_index.lookup(recovery_point);
        if position == 0 {
            return Ok(None);
        }
        match read_header_at(file, position as u64, size)? {
            Some(h) if h.base_offset == offset => {}
            _ => return Ok(None),
        }
        offset_index.keep_before(offset)?;
        time_index.keep_before(offset)?;
        Ok(Some((offset_index, time_index, (offset, position as u64))))
    }

    /// For a segment opened without recovery: walks the batch headers after the last index
    /// entry to find the next offset and the largest timestamp. `false` if anything is off
    /// (then the caller recovers the segment).
    fn load_tail(&mut self) -> io::Result<bool> {
        if self.size > 0 && self.offset_index.len() == 0 {
            return Ok(false);
        }
        let (offset, position) = self.offset_index.lookup(i64::MAX);
        let mut pos = position as u64;
        let mut next = offset;
        let mut walked: Option<(i64, i64)> = None;
        while pos < self.size {
            match read_header_at(self.file.as_ref(), pos, self.size)? {
                Some(h)
                    if h.base_offset >= next || (walked.is_none() && h.base_offset == offset) =>
                {
                    next = h.next_offset();
                    pos += h.size() as u64;
                    if walked.is_none_or(|(ts, _)| h.max_timestamp > ts) {
                        walked = Some((h.max_timestamp, h.base_offset));
                    }
                }
                _ => return Ok(false),
            }
        }
        if pos != self.size {
            return Ok(false);
        }
        self.next_offset = if self.size == 0 {
            self.base_offset
        } else {
            next
        };
        if let Some(last) = self.time_index.last_entry_offset() {
            if last >= self.next_offset.max(self.base_offset + 1) {
                return Ok(false);
            }
        }
        self.max_timestamp = self.time_index.last_timestamp().unwrap_or(-1);
        self.offset_of_max_timestamp = self.time_index.lookup(i64::MAX);
        if let Some((ts, offset)) = walked {
            if ts > self.max_timestamp {
                self.max_timestamp = ts;
                self.offset_of_max_timestamp = offset;
            }
        }
        if self.max_timestamp < 0 {
            self.offset_of_max_timestamp = -1;
        }
        Ok(true)
    }

    /// Checks every batch from the start (header sanity, offsets increasing, CRC32C),
    /// rebuilds both indexes, and truncates the file after the last valid batch. Returns
    /// how many bytes were cut.
    pub fn recover(&mut self, index_interval_bytes: u64) -> io::Result<RecoveryResult> {
        self.offset_index.reset(Vec::new())?;
        self.time_index.reset(Vec::new())?;
        self.recover_from((self.base_offset, 0), i64::MIN, index_interval_bytes)
    }

    /// [`LogSegment::recover`] from `(offset, position)`, a batch boundary before which
    /// everything is known good and indexed (the indexes hold only entries before it).
    /// Batches that end at or before `trusted_below` (the recovery point: fsynced before
    /// it was checkpointed) get their headers checked but not their CRCs.
    fn recover_from(
        &mut self,
        (start_offset, start_position): (i64, u64),
        trusted_below: i64,
        index_interval_bytes: u64,
    ) -> io::Result<RecoveryResult> {
        let file_len = self.file.len()?;
        let mut pos = start_position;
        let mut next = start_offset;
        let mut offset_entries: Vec<OffsetEntry> = self.offset_index.raw_entries().to_vec();
        let mut time_entries: Vec<TimeEntry> = self.time_index.raw_entries().to_vec();
        // The first scanned batch gets an index entry.
        let mut since_entry = index_interval_bytes + 1;
        let (mut max_ts, mut offset_of_max_ts) = match time_entries.last() {
            Some(e) => (e.timestamp, self.base_offset + e.relative_offset as i64),
            None => (-1i64, -1i64),
        };
        let mut batches = 0u64;
        let mut buf = Vec::new();
        while pos < file_len {
            let Some(header) = read_header_at(self.file.as_ref(), pos, file_len)? else {
                break;
            };
            if header.base_offset < next || header.last_offset_delta < 0 {
                // Offsets must increase: a stale or foreign batch ends the valid log.
                break;
            }
            let size = header.size();
            if header.next_offset() > trusted_below {
                buf.resize(size, 0);
                self.file.read_exact_at(&mut buf, pos)?;
                if check_batch(&buf).is_err() {
                    break;
                }
            }
            let rel = header.base_offset - self.base_offset;
            if rel > u32::MAX as i64 {
                break;
            }
            if header.max_timestamp > max_ts {
                max_ts = header.max_timestamp;
                offset_of_max_ts = header.base_offset;
            }
            if offset_entries.is_empty() || since_entry > index_interval_bytes {
                offset_entries.push(OffsetEntry {
                    relative_offset: rel as u32,
                    position: pos as u32,
                });
                if max_ts >= 0 && time_entries.last().is_none_or(|e| e.timestamp < max_ts) {
                    time_entries.push(TimeEntry {
                        timestamp: max_ts,
                        relative_offset: (offset_of_max_ts - self.base_offset) as u32,
                    });
                }
                since_entry = 0;
            }
            since_entry += size as u64;
            next = header.next_offset();
            pos += size as u64;
            batches += 1;
        }
        let truncated_bytes = file_len - pos;
        if truncated_bytes > 0 {
            self.file.set_len(pos)?;
        }
        // Only entries past the starting point are new; the rest are in the files already.
        let (kept_offsets, kept_times) = (self.offset_index.len(), self.time_index.len());
        self.offset_index.extend(&offset_entries[kept_offsets..])?;
        self.time_index.extend(&time_entries[kept_times..])?;
        self.size = pos;
        self.next_offset = next;
        self.bytes_since_last_index_entry = since_entry;
        self.max_timestamp = max_ts;
        self.offset_of_max_timestamp = offset_of_max_ts;
        Ok(RecoveryResult {
            truncated_bytes,
            batches,
        })
    }

    /// Appends batches whose offsets are already assigned: `bufs` written back to back
    /// (one vectored write) hold the batches `headers` describes, in order. On an error
    /// nothing of the append remains, in the file or the indexes.
    pub fn append(
        &mut self,
        bufs: &[&[u8]],
        headers: &[BatchHeader],
        index_interval_bytes: u64,
    ) -> io::Result<()> {
        let before = (
            self.size,
            self.next_offset,
            self.max_timestamp,
            self.offset_of_max_timestamp,
            self.bytes_since_last_index_entry,
            self.offset_index.len(),
            self.time_index.len(),
            self.first_batch_timestamp,
        );
        let result = self.append_unchecked(bufs, headers, index_interval_bytes);
        if result.is_err() {
            let (size, next, max_ts, max_ts_offset, since, offsets, times, first_ts) = before;
            self.first_batch_timestamp = first_ts;
            // Best effort: a failure here leaves a tail that recovery cuts at restart.
            let _ignored_secondary = self.file.set_len(size);
            let _ignored_secondary = self.offset_index.truncate_entries(offsets);
            let _ignored_secondary = self.time_index.truncate_entries(times);
            self.size = size;
            self.next_offset = next;
            self.max_timestamp = max_ts;
            self.offset_of_max_timestamp = max_ts_offset;
            self.bytes_since_last_index_entry = since;
        }
        result
    }

    fn append_unchecked(
        &mut self,
        bufs: &[&[u8]],
        headers: &[BatchHeader],
        index_interval_bytes: u64,
    ) -> io::Result<()> {
        self.file.write_all_at(bufs, self.size)?;
        let mut pos = self.size;
        for h in headers {
            if h.max_timestamp > self.max_timestamp {
                self.max_timestamp = h.max_timestamp;
                self.offset_of_max_timestamp = h.base_offset;
            }
            if self.bytes_since_last_index_entry > index_interval_bytes
                || self.offset_index.len() == 0
            {
                self.offset_index.append(h.base_offset, pos as u32)?;
                // No entry for NO_TIMESTAMP (-1) batches.
                if self.max_timestamp >= 0
                    && self
                        .time_index
                        .last_timestamp()
                        .is_none_or(|t| t < self.max_timestamp)
                {
                    self.time_index
                        .append(self.max_timestamp, self.offset_of_max_timestamp)?;
                }
                self.bytes_since_last_index_entry = 0;
            }
            self.bytes_since_last_index_entry += h.size() as u64;
            pos += h.size() as u64;
            self.next_offset = h.next_offset();
        }
        if self.size == 0 {
            self.first_batch_timestamp = headers.first().map(|h| h.max_timestamp);
        }
        self.size = pos;
        Ok(())
    }

    /// Cuts the segment back to `size` bytes (a batch boundary) and rebuilds its indexes
    /// from what is left.
    /// Cuts the segment back to `size` bytes, where the batch at `end_offset` started (a
    /// batch boundary; everything before it was checked when it was appended). As Kafka
    /// truncates by its indexes: entries from the last offset-index entry before the cut on
    /// are dropped and only the bytes after that entry are re-read (about
    /// `index.interval.bytes`), headers only, not the whole segment.
    pub fn truncate_to(
        &mut self,
        size: u64,
        end_offset: i64,
        index_interval_bytes: u64,
    ) -> io::Result<()> {
        self.file.set_len(size)?;
        let (start_offset, start_position) = self.offset_index.lookup(end_offset - 1);
        self.offset_index.keep_before(start_offset)?;
        self.time_index.keep_before(start_offset)?;
        self.first_batch_timestamp = None;
        self.recover_from(
            (start_offset, u64::from(start_position)),
            end_offset,
            index_interval_bytes,
        )?;
        Ok(())
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn file(&self) -> FileRef {
        self.file.clone()
    }
    pub fn offset_index(&self) -> &OffsetIndex {
        &self.offset_index
    }
    pub fn time_index(&self) -> &TimeIndex {
        &self.time_index
    }

    /// Whether `segment.ms` says this segment should be rolled before appending batches
    /// whose largest timestamp is `incoming_timestamp`. As in Kafka (KIP-33), the time is
    /// measured in record timestamps from the segment's first batch, or by the wall clock
    /// since the segment was opened when that batch has none.
    pub fn is_due_for_time_roll(
        &mut self,
        segment_ms: i64,
        now_ms: i64,
        incoming_timestamp: i64,
    ) -> bool {
        if self.size == 0 {
            return false;
        }
        let first = *self.first_batch_timestamp.get_or_insert_with(|| {
            match read_header_at(self.file.as_ref(), 0, self.size) {
                Ok(Some(h)) => h.max_timestamp,
                // Unreadable here: the wall clock decides (recovery checks the batch).
                _ => -1,
            }
        });
        let waited = if first >= 0 {
            incoming_timestamp.saturating_sub(first)
        } else {
            now_ms.saturating_sub(self.created_ms)
        };
        waited > segment_ms
    }

    /// Handles that must be fsynced for this segment to be durable (log and the indexes
    /// written since they were last released).
    pub fn sync_handles(&self) -> Vec<FileRef> {
        [
            Some(self.file.clone()),
            self.offset_index.sync_handle(),
            self.time_index.sync_handle(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Closes the index files of a segment that is no longer active (their entries stay in
    /// memory). Take `sync_handles` first if they still need an fsync.
    pub fn release_index_files(&mut self) {
        self.offset_index.release();
        self.time_index.release();
    }
}

/// Reads and sanity-checks the header of the batch at `pos`; `None` if no plausible batch
/// header is there (end of data, torn write, garbage). Does not check the CRC.
pub fn read_header_at(
    file: &dyn StorageFile,
    pos: u64,
    limit: u64,
) -> io::Result<Option<BatchHeader>> {
    if pos + HEADER_SIZE as u64 > limit {
        return Ok(None);
    }
    let mut buf = [0u8; HEADER_SIZE];
    file.read_exact_at(&mut buf, pos)?;
    let Some(h) = BatchHeader::parse(&buf) else {
        return Ok(None);
    };
    if h.magic != 2 || (h.batch_length as usize) < HEADER_SIZE - 12 || h.batch_length < 0 {
        return Ok(None);
    }
    if pos + h.size() as u64 > limit {
        return Ok(None);
    }
    Ok(Some(h))
}

/// Reads `len` bytes at `pos` into a new buffer.
pub fn read_bytes_at(file: &dyn StorageFile, pos: u64, len: usize) -> io::Result<Bytes> {
    Ok(file.read_vec_at(pos, len)?.into())
}

#[cfg(test)]
#[path = "segment_tests.rs"]
mod tests;
