//! The log of one `TopicPartition`: an ordered set of segments, the offsets that describe it
//! (`log_start_offset`, `high_watermark`, log end offset, `recovery_point`), appends with
//! group-committed fsyncs, and reads of stored bytes.
//!
//! Synchronisation: all mutable state is in `LogState` behind one `std::sync::Mutex`. It is
//! held for in-memory work, the `pwritev` of an append, and the few small writes that must
//! stay in order with appends: a roll's new segment files and producer snapshot, and an
//! abort marker's `.txnindex` entry. fsyncs and reads happen outside it, on cloned file
//! handles. Nothing under the lock panics, and `lock()` recovers a poisoned
//! mutex, so one failed request can't wedge the partition. Waiters are woken through
//! `tokio::sync` primitives: `durable` (a watch of the fsynced offset) for producers and
//! `data_arrived` (a `Notify`) for long-polling fetches.

mod append;
pub mod cleaner;
pub mod compaction;
pub mod compression;
pub mod file_names;
mod file_records;
pub use file_records::{FileRecords, Records};
mod flush;
pub mod index;
pub mod legacy_record;
pub mod loader;
pub mod page_cache;
pub mod producer_state;
mod read;
pub mod record_batch;
pub mod record_view;
pub mod records;
mod retention;
pub mod segment;
mod segments;
mod transaction_index;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{watch, Notify};

use crate::config::LogConfig;
use crate::storage::{FileRef, OpenMode, Storage};
use producer_state::{AbortedTxn, ProducerEntry, ProducerError, ProducerStateManager};
use record_batch::BatchError;
use segments::LogSegments;

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

impl std::error::Error for LogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LogError::Batch(e) => Some(e),
            LogError::Producer(e) => Some(e),
            LogError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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

/// Stored batches returned by a read (as bytes, or as `FileRecords` still in their file),
/// with the partition's offsets at that moment.
#[derive(Debug, Clone)]
pub struct ReadResult<R = Bytes> {
    pub records: R,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// For read_committed: the aborted transactions overlapping the returned records.
    pub aborted: Vec<AbortedTxn>,
}

/// A producer snapshot taken under the log's lock, written after it is released.
pub(super) struct PendingSnapshot {
    offset: i64,
    bytes: Vec<u8>,
    /// `LogState::flush_failures` when it was taken: a change means the log was cut back.
    flush_failures: u64,
}

/// A timestamp lookup's answer (ListOffsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
}

struct LogState {
    config: LogConfig,
    segments: LogSegments,
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
    /// Durable data not yet queued in the broker's page-cache budget.
    cache_tail: page_cache::CacheTail,
    unflushed_messages: u64,
    last_flush: Instant,
    flush_running: bool,
    closed: bool,
    producers: ProducerStateManager,
    /// Aborted transactions, by marker offset (also in the segments' `.txnindex` files).
    aborted: Vec<AbortedTxn>,
    /// Compacted logs: where the dirty part starts (`cleaner-offset-checkpoint`).
    cleaner_checkpoint: i64,
    /// Compacted logs: the earliest delete horizon the last cleaning left in the log (a
    /// cleaning is due once it passes, to drop those tombstones and markers).
    next_delete_horizon: Option<i64>,
}

pub struct Log {
    storage: Arc<dyn Storage>,
    tp: TopicPartition,
    dir: PathBuf,
    state: Mutex<LogState>,
    durable: watch::Sender<Durability>,
    data_arrived: Notify,
    /// `LogState::closed`, readable without the lock (the cleaner checks it per batch).
    closed: std::sync::atomic::AtomicBool,
    /// This log's share of the broker's page-cache budget (`log.cache.hot.bytes`).
    cache: page_cache::LogCache,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("tp", &self.tp).finish()
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
        let active = segments.active().expect("at least one segment");
        let end = OffsetPosition {
            offset: active.next_offset(),
            segment_base: active.base_offset(),
            position: active.size(),
        };
        let cache = page_cache::LogCache {
            cache: config.page_cache.clone(),
            mark: page_cache::ColdMark::at(end),
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
            cache_tail: page_cache::CacheTail::at(end),
            unflushed_messages: 0,
            last_flush: Instant::now(),
            flush_running: false,
            closed: false,
            producers,
            aborted,
            cleaner_checkpoint: 0,
            next_delete_horizon: None,
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
            closed: std::sync::atomic::AtomicBool::new(false),
            cache,
        }
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the log was closed (deleted, or the broker is stopping).
    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Relaxed)
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
        self.lock().segments.size_bytes()
    }

    /// How many segments the log has.
    pub fn segment_count(&self) -> usize {
        self.lock().segments.len()
    }

    /// Woken whenever the high watermark moves (long-polling fetches wait on it).
    pub fn data_arrived(&self) -> &Notify {
        &self.data_arrived
    }

    /// Producer state up to `offset`, encoded under the lock; [`Log::write_producer_snapshot`]
    /// writes it after the lock is released.
    fn producer_snapshot(&self, state: &LogState, offset: i64) -> PendingSnapshot {
        PendingSnapshot {
            offset,
            bytes: state.producers.encode(offset),
            flush_failures: state.flush_failures,
        }
    }

    /// Writes `<offset>.snapshot` outside the log's lock, queues it for the next flush's
    /// fsync (with its directory) and keeps the latest three. If the log was cut back while
    /// it was written (a failed fsync), the file describes data that is gone and is removed
    /// again. A failure is logged and costs only time: the loader then starts from an older
    /// snapshot and replays more, and a torn one fails its CRC and is skipped.
    fn write_producer_snapshot(&self, snapshot: PendingSnapshot) {
        let path = producer_state::snapshot_file(&self.dir, snapshot.offset);
        let written = self.storage.open(&path, OpenMode::Truncate).and_then(|f| {
            f.write_all_at(&[&snapshot.bytes], 0)?;
            Ok(f)
        });
        let file = match written {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "writing a producer snapshot failed");
                return;
            }
        };
        {
            let mut state = self.lock();
            if state.flush_failures != snapshot.flush_failures {
                // A cut-back that ran before this file existed could not remove it.
                drop(state);
                if let Err(e) = self.storage.remove_file(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "removing a producer snapshot of cut data failed");
                }
                return;
            }
            state.pending_sync.push(file);
            state.dir_sync_pending = true;
        }
        if let Ok(all) = producer_state::list_snapshots(self.storage.as_ref(), &self.dir) {
            for (_, old) in all.iter().rev().skip(3) {
                if let Err(e) = self.storage.remove_file(old) {
                    tracing::warn!(path = %old.display(), error = %e, "removing an old producer snapshot failed");
                }
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

    /// Checks the whole log against itself: every batch passes its CRC, offsets increase
    /// across segments (with gaps only where compaction removed records), every offset-index entry points at the start of the batch
    /// with that offset, and the log end is where the last batch ends.
    #[cfg(any(test, fuzzing))]
    pub fn check_consistency(&self) -> Result<(), String> {
        use record_batch::check_batch;
        use segment::{read_bytes_at, read_header_at};
        let state = self.lock();
        let mut next: Option<i64> = None;
        for segment in state.segments.iter() {
            let base = &segment.base_offset();
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
                // Offsets increase; compaction leaves gaps between batches, never overlaps.
                if next.is_some_and(|n| h.base_offset < n) || h.base_offset < *base {
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
        self.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let end = state.log_end_offset;
        let snapshot = self.producer_snapshot(&state, end);
        drop(state);
        self.write_producer_snapshot(snapshot);
        self.flush(true)
    }
}

#[cfg(test)]
mod tests;
