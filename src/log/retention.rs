//! Deleting old data: retention by time and size (`cleanup.policy=delete`) and DeleteRecords,
//! both of which move `log_start_offset` and remove whole sealed segments.

use super::{file_names, Log, LogError, LogState};

impl Log {
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
        let bases: Vec<i64> = state.segments.bases().collect();
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
        if state.segments.active_base() == Some(base) {
            return;
        }
        let Some(segment) = state.segments.remove(base) else {
            return;
        };
        let paths = file_names::segment_files(&self.dir, base);
        let mut doomed = Vec::new();
        for path in paths.iter().filter(|p| self.storage.exists(p)) {
            let renamed = file_names::deleted(path);
            match self.storage.rename(path, &renamed) {
                Ok(()) => doomed.push(renamed),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "renaming a deleted segment failed");
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
        let mut total = state.segments.size_bytes() as i64;
        let mut doomed = Vec::new();
        let sealed: Vec<(i64, i64, i64, i64)> = state
            .segments
            .sealed()
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
}
