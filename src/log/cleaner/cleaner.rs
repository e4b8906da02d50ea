//! One cleaning of one log (Kafka's `Cleaner`): build the offset map over the dirty part,
//! then rewrite the cleanable segments from the log's start, in groups of about
//! `segment.bytes`, keeping for each key only its latest record, and swap each cleaned
//! group in. What is dropped:
//!
//! - a record whose key has a later record in the map's range, or that has no key;
//! - a tombstone (null value) once its batch's delete horizon has passed; the first
//!   cleaning that keeps a tombstone sets the horizon to now + `delete.retention.ms`;
//! - every batch of an aborted transaction;
//! - a transaction marker once its horizon has passed and no batch of its transaction is
//!   left.
//!
//! What is kept even when empty: a producer's last batch (its sequence and epoch must
//! survive) and a group's last batch (so the cleaned segment covers the same offsets as
//! the segments it replaces; start-up relies on that to finish an interrupted swap).
//! Offsets never change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::super::compaction::{CleanedSegment, CleaningPlan, SegmentToClean};
use super::super::file_names::{self, CLEANED_SUFFIX, SWAP_SUFFIX};
use super::super::index::{OffsetEntry, OffsetIndex, TimeEntry, TimeIndex};
use super::super::producer_state::AbortedTxn;
use super::super::record_batch::{BatchHeader, HEADER_SIZE};
use super::super::record_view::{delete_horizon, BatchRecords, RecordRef};
use super::super::records::control_marker;
use super::super::segment::read_bytes_at;
use super::super::transaction_index::encode_entry;
use super::super::{io_err, Log, LogError};
use super::batch_rewrite::{empty_batch, rewrite};
use super::offset_map::OffsetMap;
use super::throttler::Throttler;
use crate::storage::{OpenMode, Storage};

/// Bytes read from a segment, or written to a cleaned one, at a time, unless the broker
/// sets it (`log.cleaner.io.buffer.size`).
pub const DEFAULT_IO_CHUNK: usize = 256 << 10;

/// What one cleaning did, for the cleaner's log line and the benchmark.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CleanerStats {
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Bytes of the cleaned segments before and after.
    pub size_before: u64,
    pub size_after: u64,
    pub records_read: u64,
    pub records_kept: u64,
    pub keys_in_map: usize,
    pub segments_before: usize,
    pub segments_after: usize,
    pub first_dirty: i64,
    /// The next cleaning's first dirty offset.
    pub cleaned_to: i64,
    pub elapsed: Duration,
}

/// A cleaner thread's tools: its offset map, the shared rate limit, and the flag that
/// stops it (shutdown).
pub struct Cleaner<'a> {
    pub map: &'a mut OffsetMap,
    pub throttler: &'a Throttler,
    pub stop: &'a AtomicBool,
    /// Bytes per read and per write (`CleanerConfig::io_chunk`).
    pub io_chunk: usize,
}

/// How one batch leaves the cleaner.
enum Filtered {
    Keep,
    Drop,
    Rewritten(Vec<u8>),
}

/// Transaction state carried across the batches of one cleaning.
#[derive(Default)]
struct Transactions {
    /// Aborted transactions by producer: (first offset, marker offset).
    aborted: HashMap<i64, Vec<(i64, i64)>>,
    /// Producers whose open transaction (in scan order) still has a batch kept.
    retained: HashMap<i64, bool>,
    /// Abort markers dropped.
    removed_aborts: Vec<AbortedTxn>,
}

impl Transactions {
    fn new(aborted: &[AbortedTxn]) -> Transactions {
        let mut t = Transactions::default();
        for a in aborted {
            t.aborted
                .entry(a.producer_id)
                .or_default()
                .push((a.first_offset, a.last_offset));
        }
        t
    }

    fn is_aborted(&self, h: &BatchHeader) -> bool {
        h.is_transactional()
            && !h.is_control()
            && self.aborted.get(&h.producer_id).is_some_and(|ranges| {
                ranges
                    .iter()
                    .any(|(first, last)| (*first..=*last).contains(&h.base_offset))
            })
    }
}

/// Everything one cleaning shares among its groups.
struct Pass<'p> {
    plan: &'p CleaningPlan,
    now: i64,
    map_end: i64,
    txns: Transactions,
    /// The earliest delete horizon still in the log.
    next_horizon: Option<i64>,
    stats: CleanerStats,
}

impl Cleaner<'_> {
    /// Cleans `log` as `plan` allows. `Ok(None)` when there was nothing to do or the
    /// cleaning was stopped or overtaken (segments changed meanwhile).
    pub fn clean(
        &mut self,
        log: &Log,
        plan: &CleaningPlan,
        now: i64,
    ) -> Result<Option<CleanerStats>, LogError> {
        let started = Instant::now();
        self.map.clear();
        let map_end = self.build_offset_map(log, plan)?;
        if map_end <= plan.first_dirty && plan.dirty_bytes > 0 && !plan.forced {
            tracing::warn!(partition = %log.topic_partition(), "the offset map holds too few keys to clean this log: raise log.cleaner.dedupe.buffer.size");
            return Ok(None);
        }
        let mut pass = Pass {
            plan,
            now,
            map_end,
            txns: Transactions::new(&plan.aborted),
            next_horizon: None,
            stats: CleanerStats {
                first_dirty: plan.first_dirty,
                cleaned_to: map_end,
                keys_in_map: self.map.len(),
                ..CleanerStats::default()
            },
        };
        let to_clean: Vec<&SegmentToClean> = plan
            .segments
            .iter()
            .take_while(|s| s.base_offset < map_end.max(plan.first_dirty + 1))
            .collect();
        for group in group_by_size(&to_clean, plan.config.segment_bytes) {
            if self.stopped(log) {
                return Ok(None);
            }
            let cleaned = self.clean_group(log, &group, &mut pass);
            let cleaned = match cleaned {
                Ok(Some(cleaned)) => cleaned,
                Ok(None) => continue,
                Err(e) => {
                    remove_leftovers(log.storage.as_ref(), log.dir(), group[0].base_offset);
                    return Err(e);
                }
            };
            if !log.replace_segments(cleaned)? {
                // Retention, DeleteRecords or a deletion got there first.
                return Ok(None);
            }
        }
        log.set_cleaned(map_end, pass.next_horizon);
        pass.stats.elapsed = started.elapsed();
        Ok(Some(pass.stats))
    }

    /// Shutdown, or the log was closed (deleted): give up at the next batch.
    fn stopped(&self, log: &Log) -> bool {
        self.stop.load(Ordering::Relaxed) || log.is_closed()
    }

    /// Reads the dirty part into the map; returns the offset after the last batch whose
    /// keys all went in (the map's end).
    fn build_offset_map(&mut self, log: &Log, plan: &CleaningPlan) -> Result<i64, LogError> {
        let txns = Transactions::new(&plan.aborted);
        let mut map_end = plan.first_dirty;
        for segment in plan
            .segments
            .iter()
            .filter(|s| s.next_offset > plan.first_dirty)
        {
            let mut full = false;
            for_each_batch(segment, self.io_chunk, self.throttler, |batch, h| {
                if h.next_offset() <= plan.first_dirty {
                    return Ok(true);
                }
                if !h.is_control() && !txns.is_aborted(&h) {
                    if let Some(records) = BatchRecords::read(batch) {
                        for r in records
                            .records
                            .iter()
                            .filter(|r| r.offset >= plan.first_dirty)
                        {
                            if let Some(key) = records.key(r) {
                                if !self.map.put(key, r.offset) {
                                    full = true;
                                    return Ok(false);
                                }
                            }
                        }
                    }
                }
                map_end = h.next_offset();
                Ok(!self.stopped(log))
            })?;
            if full {
                break;
            }
        }
        Ok(map_end)
    }

    /// Writes the cleaned form of `group` under `.swap` names, durably. `None` when it
    /// would be the same single segment.
    fn clean_group(
        &mut self,
        log: &Log,
        group: &[&SegmentToClean],
        pass: &mut Pass<'_>,
    ) -> Result<Option<CleanedSegment>, LogError> {
        let storage = log.storage.as_ref();
        let dir = log.dir();
        let base = group[0].base_offset;
        let [log_path, index_path, time_path, txn_path] = file_names::segment_files(dir, base)
            .map(|p| file_names::with_suffix(&p, CLEANED_SUFFIX));
        let out = storage
            .open(&log_path, OpenMode::Truncate)
            .map_err(io_err(&log_path))?;
        let mut writer =
            SegmentWriter::new(base, pass.plan.config.index_interval_bytes, self.io_chunk);
        let mut changed = group.len() > 1;
        let removed_before = pass.txns.removed_aborts.len();
        for (i, segment) in group.iter().enumerate() {
            pass.stats.size_before += segment.size;
            let last_segment = i + 1 == group.len();
            for_each_batch(segment, self.io_chunk, self.throttler, |batch, h| {
                pass.stats.bytes_read += batch.len() as u64;
                pass.stats.records_read += h.records_count.max(0) as u64;
                let mut filtered = self.filter_batch(batch, &h, pass);
                let last_of_producer = h.producer_id >= 0
                    && pass.plan.last_batch_of_producer.get(&h.producer_id)
                        == Some(&h.last_offset());
                let last_of_group = last_segment && h.next_offset() == segment.next_offset;
                if matches!(filtered, Filtered::Drop) && (last_of_producer || last_of_group) {
                    filtered = Filtered::Rewritten(empty_batch(batch));
                    if h.is_transactional() && !h.is_control() {
                        pass.txns.retained.insert(h.producer_id, true);
                    }
                }
                let bytes: &[u8] = match &filtered {
                    Filtered::Keep => batch,
                    Filtered::Drop => {
                        changed = true;
                        return Ok(true);
                    }
                    Filtered::Rewritten(b) => {
                        changed = true;
                        b
                    }
                };
                let written = BatchHeader::parse(bytes).map_or(0, |h| h.records_count.max(0));
                pass.stats.records_kept += written as u64;
                writer.push(bytes);
                if writer.buffered() >= self.io_chunk {
                    let n = writer.flush_to(out.as_ref()).map_err(io_err(&log_path))?;
                    self.throttler.acquire(n);
                }
                Ok(!self.stopped(log))
            })?;
            if self.stopped(log) {
                drop(out);
                remove_leftovers(storage, dir, base);
                return Ok(None);
            }
        }
        if !changed {
            drop(out);
            remove_leftovers(storage, dir, base);
            pass.stats.size_after += group[0].size;
            return Ok(None);
        }
        let n = writer.flush_to(out.as_ref()).map_err(io_err(&log_path))?;
        self.throttler.acquire(n);
        pass.stats.bytes_written += writer.size;
        pass.stats.size_after += writer.size;
        pass.stats.segments_before += group.len();
        pass.stats.segments_after += 1;
        let end = group[group.len() - 1].next_offset;
        let removed_aborts = pass.txns.removed_aborts[removed_before..].to_vec();
        let kept_aborts: Vec<&AbortedTxn> = pass
            .plan
            .aborted
            .iter()
            .filter(|a| (base..end).contains(&a.last_offset) && !removed_aborts.contains(a))
            .collect();
        // Durable before the swap: the `.log.swap` name promises a complete segment.
        out.sync_data().map_err(io_err(&log_path))?;
        drop(out);
        writer.write_indexes(log, &index_path, &time_path)?;
        let mut txn_bytes = Vec::new();
        for a in kept_aborts {
            txn_bytes.extend_from_slice(&encode_entry(a, a.last_offset));
        }
        let txn_file = storage
            .open(&txn_path, OpenMode::Truncate)
            .map_err(io_err(&txn_path))?;
        txn_file
            .write_all_at(&[&txn_bytes], 0)
            .and_then(|()| txn_file.sync_data())
            .map_err(io_err(&txn_path))?;
        if self.stopped(log) {
            // A deleted topic's directory may be gone or reused: promise nothing in it.
            remove_leftovers(storage, dir, base);
            return Ok(None);
        }
        // The log file last, then the directory: from then on the swap is what start-up
        // puts in place of the old segments.
        for path in [&index_path, &time_path, &txn_path, &log_path] {
            let swap = swap_name(path);
            storage.rename(path, &swap).map_err(io_err(path))?;
        }
        storage.sync_dir(dir).map_err(io_err(dir))?;
        Ok(Some(CleanedSegment {
            base_offset: base,
            replaces: group.iter().map(|s| (s.base_offset, s.size)).collect(),
            removed_aborts,
        }))
    }

    /// Decides one batch's fate.
    fn filter_batch(&self, batch: &[u8], h: &BatchHeader, pass: &mut Pass<'_>) -> Filtered {
        let now = pass.now;
        let new_horizon = now.saturating_add(pass.plan.config.compaction.delete_retention_ms);
        let horizon = delete_horizon(h);
        if h.is_control() {
            if pass.txns.retained.remove(&h.producer_id).unwrap_or(false) {
                // Kafka's rule: a marker's grace period starts only once no batch of its
                // transaction is left.
                return Filtered::Keep;
            }
            if horizon.is_some_and(|t| now >= t) {
                if control_marker(batch) == Some(false) {
                    pass.txns.removed_aborts.push(AbortedTxn {
                        producer_id: h.producer_id,
                        first_offset: pass
                            .txns
                            .aborted
                            .get(&h.producer_id)
                            .and_then(|r| {
                                r.iter()
                                    .find(|(_, last)| *last == h.base_offset)
                                    .map(|(f, _)| *f)
                            })
                            .unwrap_or(h.base_offset),
                        last_offset: h.base_offset,
                    });
                }
                return Filtered::Drop;
            }
            let horizon = horizon.unwrap_or(new_horizon);
            note_horizon(&mut pass.next_horizon, horizon, now);
            if delete_horizon(h).is_some() {
                return Filtered::Keep;
            }
            return match BatchRecords::read(batch) {
                Some(records) => {
                    let all: Vec<&RecordRef> = records.records.iter().collect();
                    rewrite(batch, &records, &all, Some(horizon))
                        .map_or(Filtered::Keep, Filtered::Rewritten)
                }
                None => Filtered::Keep,
            };
        }
        if pass.txns.is_aborted(h) {
            return Filtered::Drop;
        }
        let Some(records) = BatchRecords::read(batch) else {
            // Not decodable here: kept as it is rather than guessed at.
            if h.is_transactional() {
                pass.txns.retained.insert(h.producer_id, true);
            }
            return Filtered::Keep;
        };
        let expired = horizon.is_some_and(|t| now >= t);
        let kept: Vec<&RecordRef> = records
            .records
            .iter()
            .filter(|r| {
                if r.offset >= pass.map_end {
                    return true;
                }
                let Some(key) = records.key(r) else {
                    return false;
                };
                let latest = r.offset >= self.map.get(key).unwrap_or(-1);
                latest && (r.has_value || !expired)
            })
            .collect();
        if kept.is_empty() {
            return Filtered::Drop;
        }
        if h.is_transactional() {
            pass.txns.retained.insert(h.producer_id, true);
        }
        let tombstones = kept.iter().any(|r| !r.has_value);
        let horizon_after = match (horizon, tombstones) {
            (Some(t), _) => Some(t),
            (None, true) => Some(new_horizon),
            (None, false) => None,
        };
        if tombstones {
            note_horizon(
                &mut pass.next_horizon,
                horizon_after.unwrap_or(new_horizon),
                now,
            );
        }
        if kept.len() == records.records.len() && horizon_after == horizon {
            return Filtered::Keep;
        }
        rewrite(batch, &records, &kept, horizon_after).map_or(Filtered::Keep, Filtered::Rewritten)
    }
}

/// Remembers the earliest delete horizon still ahead (one already passed makes no later
/// cleaning due: what it guards is kept for another reason).
fn note_horizon(next: &mut Option<i64>, horizon: i64, now: i64) {
    if horizon > now {
        *next = Some(next.map_or(horizon, |n| n.min(horizon)));
    }
}

fn swap_name(cleaned: &Path) -> PathBuf {
    let name = cleaned.to_string_lossy();
    PathBuf::from(format!(
        "{}{SWAP_SUFFIX}",
        name.strip_suffix(CLEANED_SUFFIX).unwrap_or(&name)
    ))
}

/// Removes a group's `.cleaned` and `.swap` files after a failed or abandoned cleaning.
fn remove_leftovers(storage: &dyn Storage, dir: &Path, base: i64) {
    for path in file_names::segment_files(dir, base) {
        for suffix in [CLEANED_SUFFIX, SWAP_SUFFIX] {
            let leftover = file_names::with_suffix(&path, suffix);
            if storage.exists(&leftover) {
                if let Err(e) = storage.remove_file(&leftover) {
                    tracing::warn!(path = %leftover.display(), error = %e, "removing a cleaner leftover failed");
                }
            }
        }
    }
}

/// Kafka's `groupSegmentsBySize`: consecutive segments whose sizes add up to at most
/// `segment.bytes` (and whose offsets fit one segment's relative offsets) become one.
fn group_by_size<'s>(
    segments: &[&'s SegmentToClean],
    max_bytes: u64,
) -> Vec<Vec<&'s SegmentToClean>> {
    let mut groups: Vec<Vec<&SegmentToClean>> = Vec::new();
    let mut size = 0u64;
    for s in segments {
        let fits = groups.last().is_some_and(|g| {
            size + s.size <= max_bytes.min(u32::MAX as u64)
                && s.next_offset - g[0].base_offset <= (u32::MAX / 2) as i64
        });
        if fits {
            size += s.size;
            groups.last_mut().expect("a group").push(s);
        } else {
            size = s.size;
            groups.push(vec![s]);
        }
    }
    groups
}

/// Calls `f` with each batch of `segment` in order, reading `chunk` bytes at a time (a
/// larger batch whole), until it returns `false`.
fn for_each_batch(
    segment: &SegmentToClean,
    chunk: usize,
    throttler: &Throttler,
    mut f: impl FnMut(&[u8], BatchHeader) -> Result<bool, LogError>,
) -> Result<(), LogError> {
    let mut pos = 0u64;
    while pos < segment.size {
        let len = (segment.size - pos).min(chunk as u64) as usize;
        let mut chunk: Bytes =
            read_bytes_at(segment.file.as_ref(), pos, len).map_err(io_err(&segment.path))?;
        throttler.acquire(len as u64);
        let mut at = 0usize;
        while let Some(h) = BatchHeader::parse(&chunk[at..]) {
            let size = h.size();
            if size < HEADER_SIZE {
                return Err(LogError::Io {
                    path: segment.path.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("a batch of {size} bytes at {}", pos + at as u64),
                    ),
                });
            }
            if at + size > chunk.len() {
                if at > 0 {
                    break;
                }
                // A batch larger than the chunk: read it whole.
                chunk = read_bytes_at(segment.file.as_ref(), pos, size)
                    .map_err(io_err(&segment.path))?;
                throttler.acquire(size as u64);
            }
            if !f(&chunk[at..at + size], h)? {
                return Ok(());
            }
            at += size;
        }
        if at == 0 {
            // Unreachable for a segment that loaded: its batches were checked.
            return Err(LogError::Io {
                path: segment.path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "no batch where one should start",
                ),
            });
        }
        pos += at as u64;
    }
    Ok(())
}

/// The cleaned segment as it is written: its bytes, buffered, and its index entries, as
/// `LogSegment::append` would have made them.
struct SegmentWriter {
    base: i64,
    interval: u64,
    buf: Vec<u8>,
    /// Bytes already in the file.
    flushed: u64,
    size: u64,
    since_entry: u64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
}

impl SegmentWriter {
    fn new(base: i64, interval: u64, chunk: usize) -> SegmentWriter {
        SegmentWriter {
            base,
            interval,
            buf: Vec::with_capacity(chunk),
            flushed: 0,
            size: 0,
            since_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            offsets: Vec::new(),
            times: Vec::new(),
        }
    }

    fn push(&mut self, batch: &[u8]) {
        let Some(h) = BatchHeader::parse(batch) else {
            return;
        };
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.base_offset;
        }
        if self.offsets.is_empty() || self.since_entry > self.interval {
            self.offsets.push(OffsetEntry {
                relative_offset: (h.base_offset - self.base) as u32,
                position: self.size as u32,
            });
            if self.max_timestamp >= 0
                && self
                    .times
                    .last()
                    .is_none_or(|t| t.timestamp < self.max_timestamp)
            {
                self.times.push(TimeEntry {
                    timestamp: self.max_timestamp,
                    relative_offset: (self.offset_of_max_timestamp - self.base) as u32,
                });
            }
            self.since_entry = 0;
        }
        self.since_entry += batch.len() as u64;
        self.size += batch.len() as u64;
        self.buf.extend_from_slice(batch);
    }

    fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Writes the buffer at the file's end; returns how many bytes.
    fn flush_to(&mut self, file: &dyn crate::storage::StorageFile) -> std::io::Result<u64> {
        let n = self.buf.len() as u64;
        if n > 0 {
            file.write_all_at(&[&self.buf], self.flushed)?;
            self.flushed += n;
            self.buf.clear();
        }
        Ok(n)
    }

    /// Writes and fsyncs the two indexes.
    fn write_indexes(
        &self,
        log: &Log,
        index_path: &Path,
        time_path: &Path,
    ) -> Result<(), LogError> {
        let mut offsets =
            OffsetIndex::create(&log.storage, index_path, self.base).map_err(io_err(index_path))?;
        offsets.extend(&self.offsets).map_err(io_err(index_path))?;
        let mut times =
            TimeIndex::create(&log.storage, time_path, self.base).map_err(io_err(time_path))?;
        times.extend(&self.times).map_err(io_err(time_path))?;
        for (handle, path) in [
            (offsets.sync_handle(), index_path),
            (times.sync_handle(), time_path),
        ] {
            if let Some(handle) = handle {
                handle.sync_data().map_err(io_err(path))?;
            }
        }
        Ok(())
    }
}
