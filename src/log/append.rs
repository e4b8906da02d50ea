//! Appends: offsets are assigned to the client's batches (only their headers are copied and
//! patched), idempotent retries are answered with their original offsets, and a new active
//! segment is rolled when the current one is full or old (`segment.bytes`, `segment.ms`).

use std::sync::Arc;

use super::producer_state::Check;
use super::record_batch::{
    assign_offset, check_batch, set_log_append_time, BatchError, BatchHeader, HEADER_SIZE,
};
use super::records::{control_marker, encode_control_batch};
use super::segment::LogSegment;
use super::{
    file_names, io_err, now_ms, AppendInfo, Log, LogError, LogState, OffsetPosition,
    PendingSnapshot, LEADER_EPOCH,
};
use crate::config::TimestampType;
use crate::storage::OpenMode;

impl Log {
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

    /// Appends one batch committed elsewhere (cluster mode's replica, `cluster/replica.rs`):
    /// `parts` are the batch's bytes with its offsets in the header already. A batch the
    /// log has is skipped (`Ok(false)`); one that does not start at the log end offset is
    /// a gap (`OffsetOutOfRange`, the replica then catches up from PostgreSQL), unless
    /// `jump`: the cluster deleted the records in between (retention or DeleteRecords
    /// while this replica was behind), and the log goes on after a hole in its offsets,
    /// as a compacted log does. Committed data is acknowledged already, so the high
    /// watermark moves to the new end at once; the fsync follows the flush policy (the
    /// object store holds the data, this log is a cache of it).
    pub fn append_replicated(
        self: &Arc<Self>,
        parts: &[&[u8]],
        h: &BatchHeader,
        jump: bool,
    ) -> Result<bool, LogError> {
        let size: usize = parts.iter().map(|p| p.len()).sum();
        let now = now_ms();
        let mut state = self.lock();
        if state.closed {
            return Err(LogError::Closed);
        }
        if h.last_offset() < state.log_end_offset {
            return Ok(false);
        }
        if h.base_offset != state.log_end_offset && !(jump && h.base_offset > state.log_end_offset)
        {
            return Err(LogError::OffsetOutOfRange {
                offset: h.base_offset,
                start: state.log_start_offset,
                end: state.log_end_offset,
            });
        }
        let rolled = self.maybe_roll(&mut state, size as u64, now, h.max_timestamp)?;
        let did_roll = rolled.is_some();
        let index_interval = state.config.index_interval_bytes;
        let log_end_offset = state.log_end_offset;
        let segment = state.segments.active_mut().ok_or(LogError::Closed)?;
        let before = OffsetPosition {
            offset: log_end_offset,
            segment_base: segment.base_offset(),
            position: segment.size(),
        };
        if let Err(source) = segment.append(parts, std::slice::from_ref(h), index_interval) {
            return Err(LogError::Io {
                path: segment.path().to_path_buf(),
                source,
            });
        }
        let end = OffsetPosition {
            offset: h.next_offset(),
            segment_base: segment.base_offset(),
            position: segment.size(),
        };
        state.log_end_offset = end.offset;
        state.appended_since_failure = true;
        state.unflushed_messages += h.records_count.max(0) as u64;
        if h.is_control() {
            // A transaction coordinator's marker, committed elsewhere (tiny: one record).
            let marker = control_marker(&parts.concat());
            self.end_txn(&mut state, h, marker, before)?;
        } else {
            state.producers.update(h);
        }
        state.high_watermark = end;
        let flush_due = state.unflushed_messages >= state.config.flush_messages || did_roll;
        drop(state);
        if let Some(snapshot) = rolled {
            self.write_producer_snapshot(snapshot);
        }
        self.data_arrived.notify_waiters();
        if flush_due {
            self.request_flush();
        }
        Ok(true)
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
                    timestamp,
                } if headers.len() == 1 => {
                    // Kafka answers a duplicate with the stored batch's max timestamp as
                    // its log append time (on a CreateTime topic too).
                    return Ok(AppendInfo {
                        base_offset: first_offset,
                        last_offset,
                        log_append_time: timestamp,
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
        let did_roll = rolled.is_some();
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
        let log_end_offset = state.log_end_offset;
        let segment = state.segments.active_mut().ok_or(LogError::Closed)?;
        let before = OffsetPosition {
            offset: log_end_offset,
            segment_base: segment.base_offset(),
            position: segment.size(),
        };
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
                self.end_txn(&mut state, h, marker, before)?;
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
        let durable = state.config.is_durable();
        let mut flush_due = durable;
        if !durable {
            // Kafka's default semantics: visible (and acknowledged) before the fsync.
            state.high_watermark = end;
            // Like Kafka, a rolled segment is flushed right away whatever the flush policy.
            flush_due = state.unflushed_messages >= state.config.flush_messages || did_roll;
        }
        drop(state);
        // The roll's producer snapshot is written outside the lock, before the flush that
        // syncs it.
        if let Some(snapshot) = rolled {
            self.write_producer_snapshot(snapshot);
        }
        if !durable {
            self.data_arrived.notify_waiters();
        }
        if flush_due {
            self.request_flush();
        }
        Ok(info)
    }

    /// A transaction marker `h` (commit or abort, if known) was appended: its transaction
    /// ends, and an abort goes to the transaction index. If the index cannot be written the
    /// append is undone back to `before`: without the entry the abort would be forgotten
    /// once a later snapshot covers the marker.
    fn end_txn(
        &self,
        state: &mut LogState,
        h: &BatchHeader,
        marker: Option<bool>,
        before: OffsetPosition,
    ) -> Result<(), LogError> {
        let Some(aborted) = marker.and_then(|commit| state.producers.end_txn(h, commit)) else {
            return Ok(());
        };
        if let Err(e) = self.write_txn_index(state, &aborted) {
            if let Err(cut) = self.truncate_to(state, before) {
                tracing::error!(partition = %self.tp, error = %cut, "undoing a marker whose transaction index entry failed also failed; recovery at restart will cut it");
            }
            return Err(e);
        }
        state.aborted.push(aborted);
        Ok(())
    }

    /// Rolls a new active segment if `incoming` bytes would not fit or `segment.ms` passed.
    /// Returns, if it rolled, the producer snapshot as of the roll, for the caller to write
    /// once the lock is released.
    fn maybe_roll(
        &self,
        state: &mut LogState,
        incoming: u64,
        now: i64,
        incoming_timestamp: i64,
    ) -> Result<Option<PendingSnapshot>, LogError> {
        let segment_ms = state.config.roll_ms();
        let segment_bytes = state.config.segment_bytes;
        let Some(active) = state.segments.active_mut() else {
            return Err(LogError::Closed);
        };
        let full = active.size() > 0 && active.size() + incoming > segment_bytes;
        let old = active.is_due_for_time_roll(segment_ms, now, incoming_timestamp);
        let active = &*active;
        let overflows_index = state.log_end_offset - active.base_offset() > (u32::MAX / 2) as i64
            || active.size() + incoming > u32::MAX as u64;
        if !(full || old || overflows_index) {
            return Ok(None);
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
        let segment =
            LogSegment::create(&self.storage, &self.dir, base).map_err(io_err(&self.dir))?;
        tracing::debug!(partition = %self.tp, base_offset = base, "rolled a new segment");
        state.pending_sync.extend(handles);
        state.dir_sync_pending = true;
        state.segments.add(segment);
        // Producer state as of the roll, so start-up replays at most one segment.
        Ok(Some(self.producer_snapshot(state, base)))
    }
}
