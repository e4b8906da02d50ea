//! The log cleaner's threads and checkpoint (Kafka's `LogCleaner` threads and
//! `LogCleanerManager`): `log.cleaner.threads` loops, each with its own offset map, take
//! the compacted log with the highest dirty ratio that is due (`min.cleanable.dirty.ratio`,
//! `max.compaction.lag.ms`, a passed delete horizon), clean it, checkpoint how far it is
//! clean in each directory's `cleaner-offset-checkpoint`, and pause `log.cleaner.backoff.ms`
//! when nothing is due.
//!
//! Synchronisation: `cleaning` (a mutex over the partitions being cleaned) keeps two threads
//! off one log; `stop` tells a running cleaning to give up at the next batch (shutdown).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::checkpoint::{self, CheckpointError};
use super::LogManager;
use crate::log::cleaner::{Cleaner, CleanerStats, OffsetMap};
use crate::log::file_names::CLEANER_OFFSET_CHECKPOINT;
use crate::log::{Log, TopicPartition};

/// Partitions being cleaned right now.
pub(super) type InProgress = std::sync::Mutex<HashSet<TopicPartition>>;

/// A partition's place on the busy list, given up when dropped.
struct Busy<'a> {
    set: &'a InProgress,
    tp: TopicPartition,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.tp);
    }
}

impl LogManager {
    /// One cleaner thread until shutdown.
    pub(super) async fn run_cleaner_thread(
        self: Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut map = OffsetMap::with_memory(
            self.config.cleaner.map_memory_per_thread(),
            self.config.cleaner.io_buffer_load_factor,
        );
        loop {
            let manager = self.clone();
            let cleaned = tokio::task::spawn_blocking(move || {
                let cleaned = manager.clean_dirtiest(&mut map);
                (map, cleaned)
            })
            .await;
            let cleaned = match cleaned {
                Ok((returned, cleaned)) => {
                    map = returned;
                    cleaned
                }
                Err(e) => {
                    tracing::error!(error = %e, "a cleaner thread failed");
                    map = OffsetMap::with_memory(
                        self.config.cleaner.map_memory_per_thread(),
                        self.config.cleaner.io_buffer_load_factor,
                    );
                    false
                }
            };
            if *shutdown.borrow() {
                return;
            }
            if !cleaned {
                tokio::select! {
                    () = tokio::time::sleep(self.config.cleaner.backoff) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }

    /// Cleans the dirtiest log that is due, if any; `true` if one was cleaned (or tried).
    pub fn clean_dirtiest(&self, map: &mut OffsetMap) -> bool {
        let now = crate::log::now_ms();
        let candidate = {
            let mut busy = self
                .cleaning
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let best = self
                .all_logs()
                .into_iter()
                .filter(|l| !busy.contains(l.topic_partition()))
                .filter_map(|l| l.cleaning_plan(now).map(|p| (l, p)))
                .filter(|(_, p)| p.is_due())
                .max_by(|(_, a), (_, b)| {
                    (a.forced, a.dirty_ratio)
                        .partial_cmp(&(b.forced, b.dirty_ratio))
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
            if let Some((log, _)) = &best {
                busy.insert(log.topic_partition().clone());
            }
            best
        };
        let Some((log, plan)) = candidate else {
            return false;
        };
        // Off the busy list however the cleaning ends, a panic included.
        let _busy = Busy {
            set: &self.cleaning,
            tp: log.topic_partition().clone(),
        };
        self.clean_log(&log, &plan, map, now).is_some()
    }

    /// Waits until no cleaner thread works on `tp` (Kafka's `abortAndPauseCleaning`): the
    /// log is closed first, so a running cleaning stops at its next batch. Topic deletion
    /// calls this before it touches the partition's directory.
    pub(super) fn wait_for_cleaning(&self, tp: &TopicPartition) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self
            .cleaning
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(tp)
        {
            if std::time::Instant::now() > deadline {
                tracing::error!(partition = %tp, "a cleaning did not stop within 60 s");
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Cleans one log now, whatever its dirty ratio (the cleaner threads and tests).
    pub fn clean_log(
        &self,
        log: &Arc<Log>,
        plan: &crate::log::compaction::CleaningPlan,
        map: &mut OffsetMap,
        now: i64,
    ) -> Option<CleanerStats> {
        let mut cleaner = Cleaner {
            map,
            throttler: &self.throttler,
            stop: &self.stopping,
            io_chunk: self.config.cleaner.io_chunk(),
        };
        match cleaner.clean(log, plan, now) {
            Ok(Some(stats)) => {
                tracing::info!(
                    partition = %log.topic_partition(),
                    first_dirty = stats.first_dirty,
                    cleaned_to = stats.cleaned_to,
                    bytes_before = stats.size_before,
                    bytes_after = stats.size_after,
                    records_read = stats.records_read,
                    records_kept = stats.records_kept,
                    segments_before = stats.segments_before,
                    segments_after = stats.segments_after,
                    ms = stats.elapsed.as_millis() as u64,
                    "cleaned log"
                );
                // Failure costs only a repeated cleaning after a restart.
                if let Err(e) = self.checkpoint_cleaner_offsets() {
                    tracing::warn!(error = %e, "the cleaner checkpoint will be written with the next cleaning");
                }
                Some(stats)
            }
            Ok(None) => None,
            Err(e) if self.stopping.load(Ordering::Relaxed) => {
                tracing::debug!(partition = %log.topic_partition(), error = %e, "cleaning stopped");
                None
            }
            Err(e) => {
                tracing::error!(partition = %log.topic_partition(), error = %e, "cleaning failed; the log is left as it was");
                None
            }
        }
    }

    /// Writes each data directory's `cleaner-offset-checkpoint` (compacted logs only); one
    /// writer at a time (they share the temp file).
    pub fn checkpoint_cleaner_offsets(&self) -> Result<(), CheckpointError> {
        let _one_writer = self
            .cleaner_checkpoint_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let logs: Vec<Arc<Log>> = self
            .all_logs()
            .into_iter()
            .filter(|l| l.config().cleanup_compact)
            .collect();
        let mut first_error = None;
        for dir in &self.config.log_dirs {
            let entries: Vec<_> = logs
                .iter()
                .filter(|l| l.dir().parent() == Some(dir.as_path()))
                .map(|l| (l.topic_partition(), l.cleaner_checkpoint()))
                .collect();
            let path = dir.join(CLEANER_OFFSET_CHECKPOINT);
            if let Err(source) = self
                .storage
                .write_atomically(&path, checkpoint::encode(&entries).as_bytes())
            {
                first_error.get_or_insert(CheckpointError { path, source });
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
