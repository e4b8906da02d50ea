//! The log's side of compaction, the parts that need its lock: what may be cleaned now
//! (Kafka's `LogCleanerManager` view of one log: first dirty offset, first uncleanable
//! offset, dirty ratio) and the swap of cleaned segments for the ones they replace
//! (Kafka's `UnifiedLog.replaceSegments`). The cleaning itself runs outside the lock, in
//! `cleaner/`.

use std::collections::HashMap;
use std::path::PathBuf;

use super::file_names::{self, SWAP_SUFFIX};
use super::producer_state::AbortedTxn;
use super::segment::{read_header_at, LogSegment};
use super::{io_err, Log, LogError};
use crate::config::LogConfig;
use crate::storage::FileRef;

/// A sealed segment as the cleaner sees it when it plans.
#[derive(Debug, Clone)]
pub struct SegmentToClean {
    pub base_offset: i64,
    pub next_offset: i64,
    pub size: u64,
    pub max_timestamp: i64,
    pub file: FileRef,
    pub path: PathBuf,
}

/// What one cleaning of a log may touch, taken under the lock.
#[derive(Debug, Clone)]
pub struct CleaningPlan {
    /// The sealed segments from the log's first one whose every record may be cleaned, in
    /// order: each ends at or before `first_uncleanable`.
    pub segments: Vec<SegmentToClean>,
    /// Where the dirty part starts (the cleaner checkpoint, at least the log start).
    pub first_dirty: i64,
    /// Nothing at or after this offset is cleaned: the active segment, what is not yet
    /// durable or not yet stable (open transactions), and what is younger than
    /// `min.compaction.lag.ms`.
    pub first_uncleanable: i64,
    /// Dirty bytes over all cleanable bytes.
    pub dirty_ratio: f64,
    pub dirty_bytes: u64,
    /// Cleaning is due whatever the ratio: `max.compaction.lag.ms` passed for the oldest
    /// dirty record, or a delete horizon passed.
    pub forced: bool,
    pub config: LogConfig,
    pub aborted: Vec<AbortedTxn>,
    /// Each producer's last batch (its last offset): kept, if only as an empty batch, so
    /// the producer's sequence and epoch survive cleaning.
    pub last_batch_of_producer: HashMap<i64, i64>,
}

impl CleaningPlan {
    /// Whether this log should be cleaned now.
    pub fn is_due(&self) -> bool {
        !self.segments.is_empty()
            && (self.forced
                || self.dirty_bytes > 0
                    && self.dirty_ratio >= self.config.compaction.min_cleanable_dirty_ratio)
    }
}

/// A cleaned segment, durable under `.swap` names, ready to replace `replaces`.
#[derive(Debug)]
pub struct CleanedSegment {
    pub base_offset: i64,
    /// (base offset, size) of each segment it replaces; the swap is refused if any of them
    /// changed meanwhile (retention, DeleteRecords, deletion).
    pub replaces: Vec<(i64, u64)>,
    /// Abort markers the cleaning removed: their transactions are forgotten.
    pub removed_aborts: Vec<AbortedTxn>,
}

impl Log {
    /// The cleaner's view of this log now; `None` unless it is compacted and open.
    pub fn cleaning_plan(&self, now: i64) -> Option<CleaningPlan> {
        let state = self.lock();
        if !state.config.cleanup_compact || state.closed {
            return None;
        }
        let config = state.config.clone();
        let log_start = state.log_start_offset;
        let first_dirty = if state.cleaner_checkpoint > state.log_end_offset {
            log_start
        } else {
            state.cleaner_checkpoint.max(log_start)
        };
        let lso = state
            .producers
            .first_unstable_offset()
            .map_or(state.high_watermark.offset, |o| {
                o.min(state.high_watermark.offset)
            });
        // Only segments wholly before the high watermark's and the durable end's segment:
        // their positions are never cut back or referenced by a waiting reader.
        let segment_limit = state
            .high_watermark
            .segment_base
            .min(state.durable_end.segment_base)
            .min(state.segments.active_base().unwrap_or(i64::MIN));
        let mut first_uncleanable = lso.min(segment_limit);
        let lag = config.compaction.min_compaction_lag_ms;
        if lag > 0 {
            if let Some(young) = state.segments.sealed().find(|s| {
                s.next_offset() > first_dirty && s.max_timestamp() > now.saturating_sub(lag)
            }) {
                first_uncleanable = first_uncleanable.min(young.base_offset());
            }
        }
        let segments: Vec<SegmentToClean> = state
            .segments
            .sealed()
            .take_while(|s| s.next_offset() <= first_uncleanable)
            .map(|s| SegmentToClean {
                base_offset: s.base_offset(),
                next_offset: s.next_offset(),
                size: s.size(),
                max_timestamp: s.max_timestamp(),
                file: s.file(),
                path: s.path().to_path_buf(),
            })
            .collect();
        let (mut clean_bytes, mut dirty_bytes) = (0u64, 0u64);
        let mut first_dirty_segment = None;
        for s in &segments {
            if s.next_offset > first_dirty {
                dirty_bytes += s.size;
                first_dirty_segment.get_or_insert(s);
            } else {
                clean_bytes += s.size;
            }
        }
        let total = clean_bytes + dirty_bytes;
        let dirty_ratio = if total == 0 {
            0.0
        } else {
            dirty_bytes as f64 / total as f64
        };
        let max_lag = config.compaction.max_compaction_lag_ms;
        let overdue = max_lag < i64::MAX
            && first_dirty_segment.is_some_and(|s| {
                let first = read_header_at(s.file.as_ref(), 0, s.size)
                    .ok()
                    .flatten()
                    .map_or(s.max_timestamp, |h| h.max_timestamp);
                first >= 0 && now.saturating_sub(first) > max_lag
            });
        let horizon_passed = state.next_delete_horizon.is_some_and(|h| h <= now);
        let last_batch_of_producer = state
            .producers
            .producers()
            .iter()
            .filter_map(|(id, e)| e.batches.back().map(|b| (*id, b.last_offset)))
            .collect();
        Some(CleaningPlan {
            segments,
            first_dirty,
            first_uncleanable,
            dirty_ratio,
            dirty_bytes,
            forced: overdue || horizon_passed,
            config,
            aborted: state.aborted.clone(),
            last_batch_of_producer,
        })
    }

    /// Records how far the log is clean (the next cleaning builds its map from here) and
    /// the earliest delete horizon left in it (a cleaning is due once it passes).
    pub fn set_cleaned(&self, first_dirty: i64, next_delete_horizon: Option<i64>) {
        let mut state = self.lock();
        state.cleaner_checkpoint = first_dirty;
        state.next_delete_horizon = next_delete_horizon;
    }

    /// The cleaner checkpoint: where the dirty part of the log starts.
    pub fn cleaner_checkpoint(&self) -> i64 {
        self.lock().cleaner_checkpoint
    }

    /// Start-up: the offset read from `cleaner-offset-checkpoint`.
    pub fn restore_cleaner_checkpoint(&self, first_dirty: i64) {
        self.lock().cleaner_checkpoint = first_dirty;
    }

    /// Swaps a cleaned segment (durable under `.swap` names) in for the segments it
    /// replaces: the old files are renamed to `.deleted`, the swap files to their final
    /// names, the new segment is opened, and once the names are durable the old files are
    /// removed. A crash at any point leaves either the old segments or the swap file,
    /// which start-up puts in their place (see `loader.rs`). Returns `false` (and removes
    /// the swap files) when the segments changed meanwhile or the log was closed.
    pub fn replace_segments(&self, cleaned: CleanedSegment) -> Result<bool, LogError> {
        let base = cleaned.base_offset;
        let swap_files: Vec<(PathBuf, PathBuf)> = file_names::segment_files(&self.dir, base)
            .into_iter()
            .map(|final_name| {
                (
                    file_names::with_suffix(&final_name, SWAP_SUFFIX),
                    final_name,
                )
            })
            .collect();
        let mut state = self.lock();
        let unchanged = !state.closed
            && cleaned.replaces.iter().all(|(b, size)| {
                state.segments.active_base() != Some(*b)
                    && state
                        .segments
                        .iter()
                        .any(|s| s.base_offset() == *b && s.size() == *size)
            });
        if !unchanged {
            drop(state);
            self.remove_swap_files(&swap_files)?;
            return Ok(false);
        }
        // Every rename, so that a failure part-way can put the old names back: a swap left
        // behind with the old segments still in use would be finished by the next start-up
        // even after later cleanings or retention changed those offsets.
        let mut renamed: Vec<(PathBuf, PathBuf)> = Vec::new();
        let installed = (|| -> Result<LogSegment, LogError> {
            for (old, _) in &cleaned.replaces {
                for path in file_names::segment_files(&self.dir, *old) {
                    if self.storage.exists(&path) {
                        let to = file_names::deleted(&path);
                        self.storage.rename(&path, &to).map_err(io_err(&path))?;
                        renamed.push((path, to));
                    }
                }
            }
            // The log file last: start-up treats a `.log.swap` as the whole swap.
            for (swap, final_name) in swap_files.iter().rev() {
                if self.storage.exists(swap) {
                    self.storage
                        .rename(swap, final_name)
                        .map_err(io_err(swap))?;
                    renamed.push((swap.clone(), final_name.clone()));
                }
            }
            let (segment, _) = LogSegment::open(
                &self.storage,
                &self.dir,
                base,
                None,
                state.config.index_interval_bytes,
                super::now_ms(),
            )
            .map_err(io_err(&file_names::log_file(&self.dir, base)))?;
            Ok(segment)
        })();
        let mut segment = match installed {
            Ok(segment) => segment,
            Err(e) => {
                for (from, to) in renamed.iter().rev() {
                    if let Err(undo) = self.storage.rename(to, from) {
                        tracing::error!(path = %to.display(), error = %undo, "undoing a segment swap failed; start-up will finish or discard it");
                    }
                }
                drop(state);
                self.remove_swap_files(&swap_files)?;
                return Err(e);
            }
        };
        for (old, _) in &cleaned.replaces {
            state.segments.remove(*old);
        }
        // A sealed segment: its indexes are not written again (see `IndexFile`).
        segment.release_index_files();
        state.segments.add(segment);
        state
            .aborted
            .retain(|a| !cleaned.removed_aborts.contains(a));
        drop(state);
        self.storage
            .sync_dir(&self.dir)
            .map_err(io_err(&self.dir))?;
        for (_, to) in renamed
            .iter()
            .filter(|(from, _)| !from.to_string_lossy().ends_with(SWAP_SUFFIX))
        {
            if let Err(e) = self.storage.remove_file(to) {
                tracing::warn!(path = %to.display(), error = %e, "removing a replaced segment failed");
            }
        }
        Ok(true)
    }

    /// Removes a refused swap's files, durably: a swap that came back after a power loss
    /// would be finished at start-up.
    fn remove_swap_files(&self, swap_files: &[(PathBuf, PathBuf)]) -> Result<(), LogError> {
        let mut removed = false;
        for (swap, _) in swap_files {
            if self.storage.exists(swap) {
                self.storage.remove_file(swap).map_err(io_err(swap))?;
                removed = true;
            }
        }
        if removed {
            self.storage
                .sync_dir(&self.dir)
                .map_err(io_err(&self.dir))?;
        }
        Ok(())
    }
}
