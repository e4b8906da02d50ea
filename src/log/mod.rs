//! The log of one `TopicPartition`: an ordered set of segments, the offsets that describe it
//! (`log_start_offset`, `high_watermark`, log end offset, `recovery_point`), appends with
//! group-committed fsyncs, and reads of stored bytes.
//!
//! Synchronisation: all mutable state is in `LogState` behind one `std::sync::Mutex`, held
//! only for in-memory work and the `pwritev` of an append; fsyncs and reads happen outside
//! it on cloned file handles. Nothing under the lock panics, and `lock()` recovers a poisoned
//! mutex, so one failed request can't wedge the partition. Waiters are woken through
//! `tokio::sync` primitives: `durable` (a watch of the fsynced offset) for producers and
//! `data_arrived` (a `Notify`) for long-polling fetches.

pub mod file_names;
pub mod index;
pub mod loader;
pub mod producer_state;
pub mod record_batch;
pub mod segment;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{watch, Notify};

use crate::config::{LogConfig, TimestampType};
use crate::storage::{FileRef, OpenMode, Storage};
use producer_state::{AbortedTxn, Check, ProducerEntry, ProducerError, ProducerStateManager};
use record_batch::{
    assign_offset, check_batch, encode_control_batch, set_log_append_time, BatchError, BatchHeader,
    HEADER_SIZE,
};
use segment::{read_bytes_at, read_header_at, LogSegment};

/// The only leader epoch of a single-node broker.
pub const LEADER_EPOCH: i32 = 0;

/// A topic name and partition index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Errors of the log layer. Converted to Kafka error codes only in `api/`.
#[derive(Debug)]
pub enum LogError {
    /// A batch failed validation.
    Batch(BatchError),
    /// An idempotent batch out of sequence or from a fenced epoch.
    Producer(ProducerError),
    /// The requested offset is outside [log_start_offset, log_end_offset].
    OffsetOutOfRange { offset: i64, start: i64, end: i64 },
    /// The disk said no (write, read or fsync); the path says where.
    Io { path: PathBuf, source: io::Error },
    /// The append would not fit in a segment.
    BatchTooLargeForSegment { size: usize, segment_bytes: u64 },
    /// The log was deleted or the broker is stopping.
    Closed,
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogError::Batch(e) => write!(f, "{e}"),
            LogError::Producer(e) => write!(f, "{e}"),
            LogError::OffsetOutOfRange { offset, start, end } => {
                write!(
                    f,
                    "offset {offset} is outside the log's range [{start}, {end}]"
                )
            }
            LogError::Io { path, source } => write!(f, "I/O error on {}: {source}", path.display()),
            LogError::BatchTooLargeForSegment {
                size,
                segment_bytes,
            } => write!(
                f,
                "{size} bytes do not fit in a segment of {segment_bytes} bytes"
            ),
            LogError::Closed => f.write_str("the log is closed"),
        }
    }
}

impl std::error::Error for LogError {}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An offset with the segment and file position where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OffsetPosition {
    offset: i64,
    segment_base: i64,
    position: u64,
}

/// What the flusher publishes: the offset up to which data is fsynced, and how many
/// flushes have failed (a waiter that sees the count move fails its request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durability {
    pub offset: i64,
    pub failures: u64,
}

/// The outcome of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker time written into the batches, or -1 for CreateTime.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// Failed flushes before this append: if the count moves before the append is
    /// durable, the append was cut off and must not be acknowledged.
    pub flush_failures: u64,
}

/// A segment range a read may take batches from (see [`Log::read`]).
struct ReadPlan {
    file: FileRef,
    path: PathBuf,
    start: u64,
    limit: u64,
    cold_before: u64,
}

/// Stored batches returned by a read, with the partition's offsets at that moment.
#[derive(Debug, Clone)]
pub struct ReadResult {
    pub records: Bytes,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// For read_committed: the aborted transactions overlapping the returned records.
    pub aborted: Vec<AbortedTxn>,
}

/// A timestamp lookup's answer (ListOffsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
}

struct LogState {
    config: LogConfig,
    segments: BTreeMap<i64, LogSegment>,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: OffsetPosition,
    recovery_point: i64,
    /// Where the last successful flush ended: everything before it is on disk.
    durable_end: OffsetPosition,
    /// fsync handles of rolled segments not yet synced, and whether the directory (which
    /// names new segments) needs one.
    pending_sync: Vec<FileRef>,
    dir_sync_pending: bool,
    /// Flushes that failed (each one cut the log back to `durable_end`).
    flush_failures: u64,
    /// Whether anything was appended since the last failed flush.
    appended_since_failure: bool,
    /// (segment base, position): the active segment's page cache is dropped up to here.
    evicted: (i64, u64),
    unflushed_messages: u64,
    last_flush: Instant,
    flush_running: bool,
    closed: bool,
    producers: ProducerStateManager,
    /// Aborted transactions, by marker offset (also in the segments' `.txnindex` files).
    aborted: Vec<AbortedTxn>,
}

pub struct Log {
    storage: Arc<dyn Storage>,
    tp: TopicPartition,
    dir: PathBuf,
    state: Mutex<LogState>,
    durable: watch::Sender<Durability>,
    data_arrived: Notify,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("tp", &self.tp).finish()
    }
}

impl LogState {
    /// `log.cache.hot.bytes`: after a successful flush that ended at `end`, the range of the
    /// active segment that has become cold (more than the hot window before `end`) and was
    /// not dropped from the page cache yet; the caller drops it, and the rolled segments the
    /// flush synced. `None` when nothing is ever dropped.
    fn take_cold_range(&mut self, end: OffsetPosition) -> Option<(u64, u64)> {
        let hot = self.config.cache_hot_bytes?;
        if self.evicted.0 != end.segment_base {
            self.evicted = (end.segment_base, 0);
        }
        let from = self.evicted.1;
        self.evicted.1 = from.max(end.position.saturating_sub(hot));
        Some((from, self.evicted.1))
    }
}

impl Log {
    /// Builds a log from what the loader found. `segments` must not be empty.
    fn from_loaded(loaded: loader::LoadedLog) -> Log {
        let loader::LoadedLog {
            storage,
            tp,
            dir,
            config,
            segments,
            log_start_offset,
            producers,
            aborted,
        } = loaded;
        let active = segments.values().next_back().expect("at least one segment");
        let end = OffsetPosition {
            offset: active.next_offset(),
            segment_base: active.base_offset(),
            position: active.size(),
        };
        let state = LogState {
            config,
            log_start_offset: log_start_offset.min(end.offset),
            log_end_offset: end.offset,
            high_watermark: end,
            recovery_point: end.offset,
            durable_end: end,
            segments,
            pending_sync: Vec::new(),
            dir_sync_pending: false,
            flush_failures: 0,
            appended_since_failure: false,
            evicted: (end.segment_base, 0),
            unflushed_messages: 0,
            last_flush: Instant::now(),
            flush_running: false,
            closed: false,
            producers,
            aborted,
        };
        let (durable, _) = watch::channel(Durability {
            offset: end.offset,
            failures: 0,
        });
        Log {
            storage,
            tp,
            dir,
            state: Mutex::new(state),
            durable,
            data_arrived: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> LogConfig {
        self.lock().config.clone()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.lock().log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.lock().log_end_offset
    }

    pub fn high_watermark(&self) -> i64 {
        self.lock().high_watermark.offset
    }

    pub fn recovery_point(&self) -> i64 {
        self.lock().recovery_point
    }

    /// Size in bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.lock().segments.values().map(|s| s.size()).sum()
    }

    /// Woken whenever the high watermark moves (long-polling fetches wait on it).
    pub fn data_arrived(&self) -> &Notify {
        &self.data_arrived
    }

    /// Appends a Produce request's validated batches (`headers` describe `records`).
    /// Offsets are assigned here. The data is in the page cache on return; call
    /// [`Log::wait_durable`] to wait for the fsync when the log is durable.
    pub fn append(
        self: &Arc<Self>,
        records: &[u8],
        headers: &[BatchHeader],
    ) -> Result<AppendInfo, LogError> {
        self.append_with_marker(records, headers, None)
    }

    /// Appends a transaction marker (commit or abort) for a producer: the transaction
    /// coordinator's write at the end of a transaction.
    pub fn append_marker(
        self: &Arc<Self>,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<AppendInfo, LogError> {
        let batch = encode_control_batch(producer_id, producer_epoch, commit, 0, now_ms());
        let header = check_batch(&batch).map_err(LogError::Batch)?;
        self.append_with_marker(&batch, &[header], Some(commit))
    }

    fn append_with_marker(
        self: &Arc<Self>,
        records: &[u8],
        headers: &[BatchHeader],
        marker: Option<bool>,
    ) -> Result<AppendInfo, LogError> {
        let now = now_ms();
        let mut state = self.lock();
        if state.closed {
            return Err(LogError::Closed);
        }
        let size = records.len();
        if size as u64 > state.config.segment_bytes {
            return Err(LogError::BatchTooLargeForSegment {
                size,
                segment_bytes: state.config.segment_bytes,
            });
        }
        // Idempotent producers: a retried batch is acknowledged with its original offsets.
        for h in headers {
            match state.producers.check(h).map_err(LogError::Producer)? {
                Check::Append => {}
                Check::Duplicate {
                    first_offset,
                    last_offset,
                } if headers.len() == 1 => {
                    return Ok(AppendInfo {
                        base_offset: first_offset,
                        last_offset,
                        log_append_time: -1,
                        log_start_offset: state.log_start_offset,
                        flush_failures: state.flush_failures,
                    });
                }
                Check::Duplicate { .. } => {
                    return Err(LogError::Batch(BatchError::Invalid(
                        "a retried idempotent batch must come alone".into(),
                    )))
                }
            }
        }
        let incoming_timestamp = match state.config.message_timestamp_type {
            TimestampType::LogAppendTime => now,
            TimestampType::CreateTime => {
                headers.iter().map(|h| h.max_timestamp).max().unwrap_or(-1)
            }
        };
        let rolled = self.maybe_roll(&mut state, size as u64, now, incoming_timestamp)?;
        // Offsets go into a patched copy of each batch's header; the client's bytes after
        // it are written as they are (the CRC does not cover the patched fields). Only
        // LogAppendTime, which changes CRC-covered fields, copies whole batches.
        let base_offset = state.log_end_offset;
        let log_append_time = match state.config.message_timestamp_type {
            TimestampType::LogAppendTime => now,
            TimestampType::CreateTime => -1,
        };
        let mut patched: Vec<Vec<u8>> = Vec::with_capacity(headers.len());
        let mut assigned = Vec::with_capacity(headers.len());
        let mut at = 0usize;
        let mut next = base_offset;
        let mut messages = 0u64;
        for h in headers {
            let batch = &records[at..at + h.size()];
            let mut copy = if log_append_time >= 0 {
                batch.to_vec()
            } else {
                batch[..HEADER_SIZE].to_vec()
            };
            assign_offset(&mut copy, next, LEADER_EPOCH);
            let mut stored = *h;
            stored.base_offset = next;
            if log_append_time >= 0 {
                set_log_append_time(&mut copy, log_append_time);
                stored.max_timestamp = log_append_time;
            }
            patched.push(copy);
            assigned.push(stored);
            next = stored.next_offset();
            messages += h.records_count.max(0) as u64;
            at += h.size();
        }
        let mut bufs: Vec<&[u8]> = Vec::with_capacity(2 * headers.len());
        let mut at = 0usize;
        for (h, copy) in headers.iter().zip(&patched) {
            bufs.push(copy);
            if copy.len() < h.size() {
                bufs.push(&records[at + copy.len()..at + h.size()]);
            }
            at += h.size();
        }
        let index_interval = state.config.index_interval_bytes;
        let segment = state
            .segments
            .values_mut()
            .next_back()
            .ok_or(LogError::Closed)?;
        if let Err(source) = segment.append(&bufs, &assigned, index_interval) {
            // The segment has cut itself back: nothing of this append remains.
            return Err(LogError::Io {
                path: segment.path().to_path_buf(),
                source,
            });
        }
        let end = OffsetPosition {
            offset: next,
            segment_base: segment.base_offset(),
            position: segment.size(),
        };
        state.log_end_offset = next;
        state.appended_since_failure = true;
        state.unflushed_messages += messages;
        for h in &assigned {
            if h.is_control() {
                let aborted = marker.and_then(|commit| state.producers.end_txn(h, commit));
                if let Some(a) = aborted {
                    self.write_txn_index(&state, &a);
                    state.aborted.push(a);
                }
            } else {
                state.producers.update(h);
            }
        }
        let info = AppendInfo {
            base_offset,
            last_offset: next - 1,
            log_append_time,
            log_start_offset: state.log_start_offset,
            flush_failures: state.flush_failures,
        };
        if !state.config.is_durable() {
            // Kafka's default semantics: visible (and acknowledged) before the fsync.
            state.high_watermark = end;
            let flush_due = state.unflushed_messages >= state.config.flush_messages;
            drop(state);
            self.data_arrived.notify_waiters();
            // Like Kafka, a rolled segment is flushed right away whatever the flush policy.
            if flush_due || rolled {
                self.request_flush();
            }
        } else {
            drop(state);
            self.request_flush();
        }
        Ok(info)
    }

    /// Rolls a new active segment if `incoming` bytes would not fit or `segment.ms` passed.
    /// Returns whether it rolled.
    fn maybe_roll(
        &self,
        state: &mut LogState,
        incoming: u64,
        now: i64,
        incoming_timestamp: i64,
    ) -> Result<bool, LogError> {
        let segment_ms = state.config.segment_ms;
        let segment_bytes = state.config.segment_bytes;
        let Some(active) = state.segments.values_mut().next_back() else {
            return Err(LogError::Closed);
        };
        let full = active.size() > 0 && active.size() + incoming > segment_bytes;
        let old = active.is_due_for_time_roll(segment_ms, now, incoming_timestamp);
        let active = &*active;
        let overflows_index = state.log_end_offset - active.base_offset() > (u32::MAX / 2) as i64
            || active.size() + incoming > u32::MAX as u64;
        if !(full || old || overflows_index) {
            return Ok(false);
        }
        let base = state.log_end_offset;
        let mut handles = active.sync_handles();
        let txn_index = file_names::txn_index_file(&self.dir, active.base_offset());
        if self.storage.exists(&txn_index) {
            handles.push(
                self.storage
                    .open(&txn_index, OpenMode::Existing)
                    .map_err(io_err(&txn_index))?,
            );
        }
        let segment = LogSegment::create(self.storage.as_ref(), &self.dir, base)
            .map_err(io_err(&self.dir))?;
        tracing::debug!(partition = %self.tp, base_offset = base, "rolled a new segment");
        state.pending_sync.extend(handles);
        // Producer state as of the roll, so start-up replays at most one segment.
        self.write_producer_snapshot(state, base);
        state.dir_sync_pending = true;
        state.segments.insert(base, segment);
        Ok(true)
    }

    /// Starts a flush task unless one is running (it then picks up the new data itself).
    pub fn request_flush(self: &Arc<Self>) {
        let mut state = self.lock();
        if state.flush_running || state.closed {
            return;
        }
        state.flush_running = true;
        drop(state);
        let log = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move { log.run_flushes().await });
            }
            Err(_) => {
                // Outside a runtime (tests, shutdown): flush inline.
                let _ = log.flush_once();
                log.lock().flush_running = false;
            }
        }
    }

    /// Flushes until nothing is left: each round syncs everything appended before it
    /// started, so all appends that arrived during one fsync share the next (group commit).
    async fn run_flushes(self: Arc<Self>) {
        loop {
            let log = self.clone();
            let result = tokio::task::spawn_blocking(move || log.flush_once()).await;
            let failed = !matches!(result, Ok(Ok(())));
            if let Ok(Err(e)) = &result {
                tracing::error!(partition = %self.tp, error = %e, "flush failed");
            }
            let mut state = self.lock();
            let caught_up = self.durable.borrow().offset >= state.log_end_offset
                && state.pending_sync.is_empty()
                && !state.dir_sync_pending;
            // After a failure the log was cut back to what is durable; anything appended
            // since has producers waiting for a flush. Without such appends, stop rather
            // than retry a failing disk in a loop.
            if caught_up || state.closed || (failed && !state.appended_since_failure) {
                state.flush_running = false;
                return;
            }
        }
    }

    /// One flush round, blocking: fsyncs rolled segments, the directory and the active
    /// segment up to the current end, then publishes the new durable offset and high
    /// watermark.
    pub fn flush_once(&self) -> Result<(), LogError> {
        self.flush(false)
    }

    /// A flush round; with `with_indexes` the active segment's index files are synced too
    /// (at close, so a clean shutdown leaves indexes that are safe to trust).
    fn flush(&self, with_indexes: bool) -> Result<(), LogError> {
        let (handles, sync_dir, end, failures) = {
            let mut state = self.lock();
            let Some(active) = state.segments.values().next_back() else {
                return Ok(());
            };
            let end = OffsetPosition {
                offset: state.log_end_offset,
                segment_base: active.base_offset(),
                position: active.size(),
            };
            let mut active_files = if with_indexes {
                active.sync_handles()
            } else {
                vec![active.file()]
            };
            let mut handles = std::mem::take(&mut state.pending_sync);
            handles.append(&mut active_files);
            let sync_dir = std::mem::take(&mut state.dir_sync_pending);
            (handles, sync_dir, end, state.flush_failures)
        };
        let mut synced = handles.iter().try_for_each(|file| file.sync_data());
        if synced.is_ok() && sync_dir {
            synced = self.storage.sync_dir(&self.dir);
        }
        if let Err(source) = synced {
            self.cut_back_after_failed_flush(failures, &source);
            return Err(LogError::Io {
                path: self.dir.clone(),
                source,
            });
        }
        let mut state = self.lock();
        if state.flush_failures != failures {
            // Another flush failed meanwhile and cut the log back below `end`.
            return Ok(());
        }
        state.recovery_point = state.recovery_point.max(end.offset);
        if end.offset >= state.durable_end.offset {
            state.durable_end = end;
        }
        state.last_flush = Instant::now();
        state.unflushed_messages = 0;
        let durable_mode = state.config.is_durable();
        if durable_mode && end.offset > state.high_watermark.offset {
            state.high_watermark = end;
        }
        let evict = if with_indexes {
            None
        } else {
            state.take_cold_range(end)
        };
        drop(state);
        self.durable
            .send_modify(|d| d.offset = d.offset.max(end.offset));
        if durable_mode {
            self.data_arrived.notify_waiters();
        }
        // Producers are answered first; the page-cache advice can wait that long.
        if let (Some((from, to)), Some((active, rolled))) = (evict, handles.split_last()) {
            for file in rolled {
                file.evict(0, 0); // 0: to the end of the file
            }
            if to > from {
                active.evict(from, to - from);
            }
        }
        Ok(())
    }

    /// After a failed fsync nothing written since the last good flush can be trusted (the
    /// kernel may have dropped those pages and will not say so again), so the log is cut
    /// back to `durable_end` and producers waiting on anything after it get an error. The
    /// log keeps taking appends: the next flush tells whether the disk works again.
    fn cut_back_after_failed_flush(&self, failures_seen: u64, cause: &io::Error) {
        let mut state = self.lock();
        if state.flush_failures != failures_seen {
            return; // another failed flush already cut back
        }
        state.flush_failures += 1;
        state.appended_since_failure = false;
        let keep = state.durable_end;
        let lost = state.log_end_offset - keep.offset;
        let outcome = self.truncate_to(&mut state, keep);
        state.pending_sync.clear();
        // The directory may name segments that are now gone: sync it with the next flush.
        state.dir_sync_pending = true;
        drop(state);
        match outcome {
            Ok(()) => {
                tracing::error!(partition = %self.tp, error = %cause, end_offset = keep.offset, lost_offsets = lost, "fsync failed; cut the log back to its last durable offset")
            }
            Err(e) => {
                tracing::error!(partition = %self.tp, error = %cause, truncate_error = %e, "fsync failed and cutting the log back failed too; recovery at restart will cut it")
            }
        }
        self.durable.send_modify(|d| {
            d.failures += 1;
            d.offset = d.offset.min(keep.offset);
        });
    }

    /// Cuts the log back to `end` (a batch boundary at or below the log end): later
    /// segments go, the segment holding `end` is truncated and re-indexed, producer state
    /// and aborted transactions are rebuilt from what remains.
    fn truncate_to(&self, state: &mut LogState, end: OffsetPosition) -> Result<(), LogError> {
        let later: Vec<i64> = state
            .segments
            .range(end.segment_base + 1..)
            .map(|(b, _)| *b)
            .collect();
        for base in later {
            state.segments.remove(&base);
            for path in file_names::segment_files(&self.dir, base) {
                if self.storage.exists(&path) {
                    self.storage.remove_file(&path).map_err(io_err(&path))?;
                }
            }
        }
        let interval = state.config.index_interval_bytes;
        if let Some(segment) = state.segments.get_mut(&end.segment_base) {
            segment
                .truncate_to(end.position, interval)
                .map_err(io_err(&self.dir))?;
        }
        state.log_end_offset = end.offset;
        if state.high_watermark.offset > end.offset {
            state.high_watermark = end;
        }
        state.log_start_offset = state.log_start_offset.min(end.offset);
        let (producers, aborted) =
            loader::rebuild_producer_state(self.storage.as_ref(), &self.dir, &state.segments);
        state.producers = producers;
        state.aborted.retain(|a| a.last_offset < end.offset);
        for a in aborted {
            if !state.aborted.contains(&a) {
                state.aborted.push(a);
            }
        }
        state.aborted.sort_by_key(|a| a.last_offset);
        Ok(())
    }

    /// Waits until the append described by `info` is fsynced. Fails if a flush fails
    /// before that (the append was then cut off the log).
    pub async fn wait_durable(self: &Arc<Self>, info: &AppendInfo) -> Result<(), LogError> {
        let end_offset = info.last_offset + 1;
        let mut rx = self.durable.subscribe();
        self.request_flush();
        let outcome = rx
            .wait_for(|d| d.offset >= end_offset || d.failures != info.flush_failures)
            .await
            .map(|d| *d);
        match outcome {
            Ok(d) if d.failures == info.flush_failures => Ok(()),
            Ok(_) => Err(LogError::Io {
                path: self.dir.clone(),
                source: io::Error::other(
                    "fsync failed; the append was not made durable (retry it)",
                ),
            }),
            Err(_) => Err(LogError::Closed),
        }
    }

    /// Whether `flush.ms` asks for a flush now (called by the log manager's timer).
    pub fn flush_due_by_time(&self) -> bool {
        let state = self.lock();
        match state.config.flush_ms {
            Some(ms) => {
                state.unflushed_messages > 0 && state.last_flush.elapsed().as_millis() as i64 >= ms
            }
            None => false,
        }
    }

    /// Reads stored batches starting with the one that holds `offset`, up to the high
    /// watermark and about `max_bytes` (whole batches only; with `min_one_batch`, the first
    /// batch is returned even if it is larger).
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        read_committed: bool,
    ) -> Result<ReadResult, LogError> {
        let (plan, hw, start_offset, lso, aborted) = {
            let state = self.lock();
            let hw = state.high_watermark;
            if offset < state.log_start_offset || offset > state.log_end_offset {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    start: state.log_start_offset,
                    end: state.log_end_offset,
                });
            }
            let mut plan = Vec::new();
            if offset < hw.offset {
                let first = state
                    .segments
                    .range(..=offset)
                    .next_back()
                    .map(|(b, _)| *b)
                    .unwrap_or(i64::MIN);
                for (base, seg) in state.segments.range(first..) {
                    if *base > hw.segment_base {
                        break;
                    }
                    let limit = if *base == hw.segment_base {
                        hw.position
                    } else {
                        seg.size()
                    };
                    let start = if plan.is_empty() {
                        seg.offset_index().lookup(offset).1 as u64
                    } else {
                        0
                    };
                    plan.push(ReadPlan {
                        file: seg.file(),
                        path: seg.path().to_path_buf(),
                        start,
                        limit,
                        cold_before: match state.config.cache_hot_bytes {
                            None => 0,
                            Some(hot) if *base == hw.segment_base => {
                                hw.position.saturating_sub(hot)
                            }
                            Some(_) => seg.size(),
                        },
                    });
                }
            }
            let lso = state
                .producers
                .first_unstable_offset()
                .map_or(hw.offset, |o| o.min(hw.offset));
            let aborted: Vec<AbortedTxn> = if read_committed {
                state
                    .aborted
                    .iter()
                    .filter(|a| a.last_offset >= offset && a.first_offset < lso)
                    .copied()
                    .collect()
            } else {
                Vec::new()
            };
            (plan, hw.offset, state.log_start_offset, lso, aborted)
        };
        // read_committed stops at the last stable offset.
        let upper = if read_committed { lso } else { hw };
        let mut result = ReadResult {
            records: Bytes::new(),
            high_watermark: hw,
            last_stable_offset: lso,
            log_start_offset: start_offset,
            aborted,
        };
        if offset >= upper {
            result.aborted.clear();
            return Ok(result);
        }
        // As in Kafka, the aborted transactions are those overlapping what is returned:
        // from `offset` up to the offset after the last batch returned.
        let end = self.read_batches(plan, offset, upper, max_bytes, min_one_batch, &mut result)?;
        result.aborted.retain(|a| a.first_offset < end.max(offset));
        Ok(result)
    }

    /// Reads whole batches from the first segment of `plan` that has any at or after
    /// `offset`, below `upper`, into `result.records`; returns the offset after the last one.
    fn read_batches(
        &self,
        plan: Vec<ReadPlan>,
        offset: i64,
        upper: i64,
        max_bytes: usize,
        min_one_batch: bool,
        result: &mut ReadResult,
    ) -> Result<i64, LogError> {
        for p in plan {
            // Find the first batch that holds `offset` or comes after it.
            let mut pos = p.start;
            let first = loop {
                match read_header_at(p.file.as_ref(), pos, p.limit).map_err(io_err(&p.path))? {
                    Some(h) if h.last_offset() < offset => pos += h.size() as u64,
                    Some(h) => break Some(h),
                    None => break None,
                }
            };
            let Some(first) = first else { continue };
            if first.base_offset >= upper {
                return Ok(offset);
            }
            let available = (p.limit - pos) as usize;
            if first.size() > max_bytes {
                if !min_one_batch {
                    return Ok(offset);
                }
                result.records =
                    read_bytes_at(p.file.as_ref(), pos, first.size()).map_err(io_err(&p.path))?;
                return Ok(first.next_offset());
            }
            let len = available.min(max_bytes);
            let chunk = read_bytes_at(p.file.as_ref(), pos, len).map_err(io_err(&p.path))?;
            // A reader far behind the end streams from disk without filling the cache.
            let cold_end = (pos + len as u64).min(p.cold_before);
            if cold_end > pos {
                p.file.evict(pos, cold_end - pos);
            }
            // Keep whole batches only.
            let mut keep = 0usize;
            let mut end = offset;
            while let Some(h) = BatchHeader::parse(&chunk[keep..]) {
                if keep + h.size() > chunk.len() || h.batch_length < 0 || h.base_offset >= upper {
                    break;
                }
                keep += h.size();
                end = h.next_offset();
            }
            result.records = chunk.slice(..keep);
            return Ok(end);
        }
        Ok(offset)
    }

    /// The first offset whose record timestamp is >= `timestamp` (ListOffsets by time).
    pub fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>, LogError> {
        let candidates: Vec<(FileRef, PathBuf, u64, u64)> = {
            let state = self.lock();
            let hw = state.high_watermark;
            state
                .segments
                .values()
                .filter(|s| s.max_timestamp() >= timestamp && s.base_offset() <= hw.segment_base)
                .map(|s| {
                    let from = s.time_index().lookup(timestamp);
                    let start = s.offset_index().lookup(from).1 as u64;
                    let limit = if s.base_offset() == hw.segment_base {
                        hw.position
                    } else {
                        s.size()
                    };
                    (s.file(), s.path().to_path_buf(), start, limit)
                })
                .collect()
        };
        let log_start = self.log_start_offset();
        for (file, path, start, limit) in candidates {
            let mut pos = start;
            while let Some(h) = read_header_at(file.as_ref(), pos, limit).map_err(io_err(&path))? {
                if h.max_timestamp >= timestamp && h.last_offset() >= log_start {
                    let batch =
                        read_bytes_at(file.as_ref(), pos, h.size()).map_err(io_err(&path))?;
                    let found = record_batch::first_record_at_or_after(&batch, timestamp)
                        .unwrap_or(TimestampOffset {
                            timestamp: h.max_timestamp,
                            offset: h.base_offset,
                        });
                    return Ok(Some(TimestampOffset {
                        offset: found.offset.max(log_start),
                        timestamp: found.timestamp,
                    }));
                }
                pos += h.size() as u64;
            }
        }
        Ok(None)
    }

    /// The record with the largest timestamp (ListOffsets MAX_TIMESTAMP).
    pub fn max_timestamp_offset(&self) -> Result<Option<TimestampOffset>, LogError> {
        let best = {
            let state = self.lock();
            state
                .segments
                .values()
                .filter(|s| {
                    s.max_timestamp() >= 0
                        && s.offset_of_max_timestamp() < state.high_watermark.offset
                })
                .max_by_key(|s| s.max_timestamp())
                .map(|s| (s.max_timestamp(), s.offset_of_max_timestamp()))
        };
        let Some((ts, batch_offset)) = best else {
            return Ok(None);
        };
        let exact = self.read(batch_offset, 1, true, false)?;
        let found = record_batch::first_record_with_timestamp(&exact.records, ts);
        Ok(Some(found.unwrap_or(TimestampOffset {
            timestamp: ts,
            offset: batch_offset,
        })))
    }

    /// Appends an aborted transaction to the active segment's `.txnindex` (Kafka's entry:
    /// i16 version 0, i64 producer id, i64 first offset, i64 last offset, i64 last stable
    /// offset).
    fn write_txn_index(&self, state: &LogState, a: &AbortedTxn) {
        let Some(base) = state.segments.keys().next_back() else {
            return;
        };
        let path = file_names::txn_index_file(&self.dir, *base);
        let lso = state
            .producers
            .first_unstable_offset()
            .unwrap_or(a.last_offset);
        let mut entry = Vec::with_capacity(34);
        entry.extend_from_slice(&0i16.to_be_bytes());
        entry.extend_from_slice(&a.producer_id.to_be_bytes());
        entry.extend_from_slice(&a.first_offset.to_be_bytes());
        entry.extend_from_slice(&a.last_offset.to_be_bytes());
        entry.extend_from_slice(&lso.to_be_bytes());
        let written = self
            .storage
            .open(&path, OpenMode::CreateOrOpen)
            .and_then(|f| {
                let end = f.len()?;
                f.write_all_at(&[&entry], end)
            });
        if let Err(e) = written {
            // The marker itself is in the log: recovery replays it.
            tracing::warn!(path = %path.display(), error = %e, "writing the transaction index failed");
        }
    }

    /// The last stable offset: the high watermark, or the first offset of the oldest open
    /// transaction if that is lower.
    pub fn last_stable_offset(&self) -> i64 {
        let state = self.lock();
        let hw = state.high_watermark.offset;
        state
            .producers
            .first_unstable_offset()
            .map_or(hw, |o| o.min(hw))
    }

    /// Writes `<offset>.snapshot` (producer state up to `offset`) and keeps the latest three.
    fn write_producer_snapshot(&self, state: &LogState, offset: i64) {
        let path = producer_state::snapshot_file(&self.dir, offset);
        // Not fsynced here: the snapshot is synced with the directory at the next flush or
        // is lost in a crash, and a torn one fails its CRC and is skipped at load.
        let written = self
            .storage
            .open(&path, OpenMode::Truncate)
            .and_then(|f| f.write_all_at(&[&state.producers.encode(offset)], 0));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "writing a producer snapshot failed");
            return;
        }
        if let Ok(all) = producer_state::list_snapshots(self.storage.as_ref(), &self.dir) {
            for (_, old) in all.iter().rev().skip(3) {
                let _ = self.storage.remove_file(old);
            }
        }
    }

    /// The idempotent producers of this partition (DescribeProducers).
    pub fn producers(&self) -> Vec<(i64, ProducerEntry)> {
        let state = self.lock();
        let mut out: Vec<_> = state
            .producers
            .producers()
            .iter()
            .map(|(id, e)| (*id, e.clone()))
            .collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }

    /// A producer's epoch on this partition and whether it has a transaction open here.
    pub fn producer_status(&self, producer_id: i64) -> Option<(i16, bool)> {
        let state = self.lock();
        state
            .producers
            .producers()
            .get(&producer_id)
            .map(|e| (e.epoch, e.current_txn_first_offset.is_some()))
    }

    /// Forgets producers idle since before `cutoff_ms` (`producer.id.expiration.ms`).
    pub fn expire_producers(&self, cutoff_ms: i64) {
        self.lock().producers.expire(cutoff_ms);
    }

    /// Applies a changed topic config (AlterConfigs); takes effect with the next append.
    pub fn set_config(&self, config: LogConfig) {
        self.lock().config = config;
    }

    /// DeleteRecords: moves log_start_offset to `offset` (-1: the high watermark) and
    /// deletes the segments that now lie entirely before it. Returns the new
    /// log_start_offset. The caller checkpoints it durably.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        let mut state = self.lock();
        let hw = state.high_watermark.offset;
        let target = if offset == -1 { hw } else { offset };
        if target < 0 || target > hw {
            return Err(LogError::OffsetOutOfRange {
                offset,
                start: state.log_start_offset,
                end: hw,
            });
        }
        if target <= state.log_start_offset {
            return Ok(state.log_start_offset);
        }
        state.log_start_offset = target;
        let bases: Vec<i64> = state.segments.keys().copied().collect();
        for pair in bases.windows(2) {
            let (base, next_base) = (pair[0], pair[1]);
            if next_base > target {
                break;
            }
            self.delete_segment(&mut state, base);
        }
        state.aborted.retain(|a| a.last_offset >= target);
        Ok(target)
    }

    /// Removes a segment (never the active one): its files are renamed to `*.deleted`
    /// first, so a crash in between leaves names the loader recognises and removes.
    fn delete_segment(&self, state: &mut LogState, base: i64) {
        if state.segments.keys().next_back() == Some(&base) {
            return;
        }
        let Some(segment) = state.segments.remove(&base) else {
            return;
        };
        let paths = file_names::segment_files(&self.dir, base);
        let mut doomed = Vec::new();
        for path in paths.iter().filter(|p| self.storage.exists(p)) {
            let renamed = file_names::deleted(path);
            match self.storage.rename(path, &renamed) {
                Ok(()) => doomed.push(renamed),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "renaming a deleted segment failed")
                }
            }
        }
        for path in doomed {
            if let Err(e) = self.storage.remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "removing a deleted segment failed");
            }
        }
        drop(segment);
    }

    /// Retention (`retention.ms`, `retention.bytes`, for `cleanup.policy=delete`): deletes
    /// the oldest sealed segments that are entirely below the high watermark and either
    /// hold nothing newer than `now - retention.ms` or push the partition over
    /// `retention.bytes`. Returns how many segments went.
    pub fn apply_retention(&self, now: i64) -> usize {
        let mut state = self.lock();
        let config = state.config.clone();
        if !config.cleanup_delete || state.closed {
            return 0;
        }
        let hw = state.high_watermark.offset;
        let mut total: i64 = state.segments.values().map(|s| s.size() as i64).sum();
        let mut doomed = Vec::new();
        let sealed: Vec<(i64, i64, i64, i64)> = state
            .segments
            .values()
            .rev()
            .skip(1)
            .rev()
            .map(|s| {
                (
                    s.base_offset(),
                    s.next_offset(),
                    s.max_timestamp(),
                    s.size() as i64,
                )
            })
            .collect();
        for (base, next, max_ts, size) in sealed {
            if next > hw {
                break;
            }
            let expired =
                config.retention_ms >= 0 && max_ts >= 0 && now - max_ts > config.retention_ms;
            let too_big = config.retention_bytes >= 0 && total - size >= config.retention_bytes;
            if !(expired || too_big) {
                break;
            }
            total -= size;
            doomed.push((base, next));
        }
        let Some(&(_, new_start)) = doomed.last() else {
            return 0;
        };
        for (base, _) in &doomed {
            self.delete_segment(&mut state, *base);
        }
        state.log_start_offset = state.log_start_offset.max(new_start);
        let start = state.log_start_offset;
        state.aborted.retain(|a| a.last_offset >= start);
        tracing::info!(partition = %self.tp, segments = doomed.len(), log_start_offset = start, "retention deleted segments");
        doomed.len()
    }

    /// Checks the whole log against itself: every batch passes its CRC, offsets are
    /// contiguous across segments, every offset-index entry points at the start of the batch
    /// with that offset, and the log end is where the last batch ends.
    #[cfg(test)]
    pub fn check_consistency(&self) -> Result<(), String> {
        let state = self.lock();
        let mut next: Option<i64> = None;
        for (base, segment) in &state.segments {
            let file = segment.file();
            let mut starts = std::collections::HashMap::new();
            let mut pos = 0u64;
            while pos < segment.size() {
                let h = read_header_at(file.as_ref(), pos, segment.size())
                    .map_err(|e| e.to_string())?
                    .ok_or(format!("segment {base}: no batch header at {pos}"))?;
                let bytes =
                    read_bytes_at(file.as_ref(), pos, h.size()).map_err(|e| e.to_string())?;
                check_batch(&bytes).map_err(|e| format!("segment {base} at {pos}: {e}"))?;
                if next.is_some_and(|n| n != h.base_offset) || h.base_offset < *base {
                    return Err(format!(
                        "segment {base} at {pos}: batch at offset {} after {next:?}",
                        h.base_offset
                    ));
                }
                starts.insert(pos as u32, h.base_offset);
                next = Some(h.next_offset());
                pos += h.size() as u64;
            }
            if segment.next_offset() != next.unwrap_or(*base) {
                return Err(format!(
                    "segment {base} thinks it ends at {} but its batches end at {next:?}",
                    segment.next_offset()
                ));
            }
            for (offset, position) in segment.offset_index().entries() {
                if starts.get(&position) != Some(&offset) {
                    return Err(format!(
                        "segment {base}: index entry ({offset}, {position}) does not point at that batch"
                    ));
                }
            }
        }
        let end = next.unwrap_or(state.log_end_offset);
        if end != state.log_end_offset || state.high_watermark.offset > end {
            return Err(format!(
                "log end {} / high watermark {} but batches end at {end}",
                state.log_end_offset, state.high_watermark.offset
            ));
        }
        Ok(())
    }

    /// Stops further appends and flushes everything (clean shutdown or deletion).
    pub fn close(&self) -> Result<(), LogError> {
        // Closed first, so no append can slip in after the final flush.
        let mut state = self.lock();
        state.closed = true;
        let end = state.log_end_offset;
        self.write_producer_snapshot(&state, end);
        drop(state);
        self.flush(true)
    }
}

#[cfg(test)]
mod tests;
