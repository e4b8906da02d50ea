//! Flushes: group-committed fsyncs (every append that arrives during one fsync shares the
//! next), the durable offset producers wait on, and the cut-back to the last durable offset
//! after a failed fsync.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use super::page_cache::SegmentRange;
use super::{file_names, io_err, AppendInfo, Log, LogError, LogState, OffsetPosition};

impl Log {
    /// Starts a flush task unless one is running (it then picks up the new data itself) or
    /// everything is durable already (a producer whose data an earlier round synced must
    /// not cost another fsync).
    pub fn request_flush(self: &Arc<Self>) {
        let mut state = self.lock();
        if state.flush_running || state.closed || self.caught_up(&state) {
            return;
        }
        state.flush_running = true;
        drop(state);
        let log = self.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { log.run_flushes().await });
        } else {
            // Outside a runtime (tests, shutdown): flush inline.
            let _ = log.flush_once();
            log.lock().flush_running = false;
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
            let caught_up = self.caught_up(&state);
            // After a failure the log was cut back to what is durable; anything appended
            // since has producers waiting for a flush. Without such appends, stop rather
            // than retry a failing disk in a loop.
            if caught_up || state.closed || (failed && !state.appended_since_failure) {
                state.flush_running = false;
                return;
            }
        }
    }

    /// Whether every appended offset, queued file and directory entry is durable.
    fn caught_up(&self, state: &LogState) -> bool {
        self.durable.borrow().offset >= state.log_end_offset
            && state.pending_sync.is_empty()
            && !state.dir_sync_pending
    }

    /// One flush round, blocking: fsyncs rolled segments, the directory and the active
    /// segment up to the current end, then publishes the new durable offset and high
    /// watermark.
    pub fn flush_once(&self) -> Result<(), LogError> {
        self.flush(false)
    }

    /// A flush round; with `with_indexes` the active segment's index files are synced too
    /// (at close, so a clean shutdown leaves indexes that are safe to trust).
    pub(super) fn flush(&self, with_indexes: bool) -> Result<(), LogError> {
        let (handles, sync_dir, end, failures) = {
            let mut state = self.lock();
            let Some(active) = state.segments.active() else {
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
        let started = std::time::Instant::now();
        let mut synced = handles.iter().try_for_each(|file| file.sync_data());
        if synced.is_ok() && sync_dir {
            synced = self.storage.sync_dir(&self.dir);
        }
        crate::metrics::global()
            .flush_time_ms
            .observe(started.elapsed().as_secs_f64() * 1000.0);
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
            let log_end = state.log_end_offset;
            state.producers.durable_up_to(end.offset, log_end);
        }
        state.last_flush = Instant::now();
        state.unflushed_messages = 0;
        let durable_mode = state.config.is_durable();
        if durable_mode && end.offset > state.high_watermark.offset {
            state.high_watermark = end;
        }
        // At close nothing is queued: the broker's budget goes away with it.
        let cached = if with_indexes {
            Vec::new()
        } else {
            let LogState {
                segments,
                cache_tail,
                ..
            } = &mut *state;
            let from = cache_tail.segment_base();
            let segments = segments.holding_and_after(from).map(|s| SegmentRange {
                base: s.base_offset(),
                file: s.file(),
                size: s.size(),
            });
            self.cache.flushed(cache_tail, segments, end)
        };
        drop(state);
        self.durable
            .send_modify(|d| d.offset = d.offset.max(end.offset));
        if durable_mode {
            self.data_arrived.notify_waiters();
        }
        // Producers are answered first; the page-cache advice can wait that long.
        self.cache.admit(cached);
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
        // Handles queued for a sync hold only data past `keep`, which the cut removes; the
        // cut queues what it changes itself (a shortened `.txnindex`).
        state.pending_sync.clear();
        let outcome = self.truncate_to(&mut state, keep);
        // The directory may name segments that are now gone: sync it with the next flush.
        state.dir_sync_pending = true;
        drop(state);
        match outcome {
            Ok(()) => {
                tracing::error!(partition = %self.tp, error = %cause, end_offset = keep.offset, lost_offsets = lost, "fsync failed; cut the log back to its last durable offset");
            }
            Err(e) => {
                tracing::error!(partition = %self.tp, error = %cause, truncate_error = %e, "fsync failed and cutting the log back failed too; recovery at restart will cut it");
            }
        }
        self.durable.send_modify(|d| {
            d.failures += 1;
            d.offset = d.offset.min(keep.offset);
        });
    }

    /// Cuts the log back to `end` (a batch boundary at or below the log end): later
    /// segments go, the segment holding `end` is truncated and re-indexed, aborted
    /// transactions after `end` are dropped and producer state is undone to `end`.
    pub(super) fn truncate_to(
        &self,
        state: &mut LogState,
        end: OffsetPosition,
    ) -> Result<(), LogError> {
        for base in state.segments.bases_after(end.segment_base) {
            state.segments.remove(base);
            for path in file_names::segment_files(&self.dir, base) {
                if self.storage.exists(&path) {
                    self.storage.remove_file(&path).map_err(io_err(&path))?;
                }
            }
        }
        let interval = state.config.index_interval_bytes;
        if let Some(segment) = state.segments.get_mut(end.segment_base) {
            segment
                .truncate_to(end.position, end.offset, interval)
                .map_err(io_err(&self.dir))?;
        }
        self.truncate_txn_index(state, end.segment_base, end.offset)?;
        // What gets written after `end` now is new: not queued, not cold.
        state.cache_tail.cut_back_to(end);
        self.cache.cut_back(end);
        state.log_end_offset = end.offset;
        if state.high_watermark.offset > end.offset {
            state.high_watermark = end;
        }
        state.log_start_offset = state.log_start_offset.min(end.offset);
        state.aborted.retain(|a| a.last_offset < end.offset);
        // Producer state: undone in memory when the undo records reach back to `end` (a
        // cut-back to the last durable point always does, unless they overflowed), else
        // rebuilt from the newest snapshot and the batch headers after it.
        if state.producers.undo_to(end.offset) {
            return Ok(());
        }
        let (producers, aborted) = super::loader::rebuild_producer_state(
            self.storage.as_ref(),
            &self.dir,
            &state.segments,
        )?;
        state.producers = producers;
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
}
