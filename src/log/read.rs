//! Reads: stored batches returned as they are (no record is decoded), bounded by the high
//! watermark or the last stable offset, with the aborted transactions they overlap; and the
//! timestamp lookups of ListOffsets.

use std::path::PathBuf;

use super::producer_state::AbortedTxn;
use super::records;
use bytes::Bytes;

use super::file_records::{FileRecords, Records};
use super::record_batch::BatchHeader;
use super::segment::{read_bytes_at, read_header_at};
use super::{io_err, Log, LogError, ReadResult, TimestampOffset};
use crate::storage::FileRef;

/// Reads of at least this many bytes are announced to the OS before their headers are
/// walked (`StorageFile::prefetch`).
const PREFETCH_MIN: u64 = 64 << 10;

/// What a read may return (see [`Log::read_records`]).
struct ReadLimits {
    offset: i64,
    upper: i64,
    max_bytes: usize,
    min_one_batch: bool,
    in_file: bool,
}

/// A segment range a read may take batches from (see [`Log::read_records`]).
struct ReadPlan {
    file: FileRef,
    path: PathBuf,
    start: u64,
    limit: u64,
    cold_before: u64,
    /// A batch boundary from the offset index, (offset of the batch there, its position):
    /// the last one at most `max_bytes` past `start` (and at or before `limit`) whose batches
    /// before it are all below the read's upper offset. The walk for the read's end starts
    /// here, so it reads at most one index interval of batch headers.
    boundary: (i64, u64),
}

impl Log {
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
        let r = self.read_records(offset, max_bytes, min_one_batch, read_committed, false)?;
        Ok(ReadResult {
            records: r.records.into_bytes()?,
            high_watermark: r.high_watermark,
            last_stable_offset: r.last_stable_offset,
            log_start_offset: r.log_start_offset,
            aborted: r.aborted,
        })
    }

    /// As [`Log::read`]; with `in_file` the batches stay in their segment file (only batch
    /// headers are read, to find where the whole batches end), else they are read at once
    /// with the bytes after them up to `max_bytes`, and cut back to whole batches.
    pub fn read_records(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        read_committed: bool,
        in_file: bool,
    ) -> Result<ReadResult<Records>, LogError> {
        let (plan, hw, start_offset, lso, aborted, in_file) = {
            let state = self.lock();
            let hw = state.high_watermark;
            // Without an fsync before the high watermark moves, a cut-back after a failed
            // fsync can rewrite bytes below it while a range waits to be sent: such logs are
            // read into memory now.
            let in_file = in_file && state.config.is_durable();
            if offset < state.log_start_offset || offset > state.log_end_offset {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    start: state.log_start_offset,
                    end: state.log_end_offset,
                });
            }
            let lso = state
                .producers
                .first_unstable_offset()
                .map_or(hw.offset, |o| o.min(hw.offset));
            // read_committed stops at the last stable offset.
            let upper = if read_committed { lso } else { hw.offset };
            let mut plan = Vec::new();
            if offset < hw.offset {
                for seg in state.segments.holding_and_after(offset) {
                    let base = seg.base_offset();
                    if base > hw.segment_base {
                        break;
                    }
                    let limit = if base == hw.segment_base {
                        hw.position
                    } else {
                        seg.size()
                    };
                    let start = if plan.is_empty() {
                        seg.offset_index().lookup(offset).1 as u64
                    } else {
                        0
                    };
                    let reach = limit.min(start.saturating_add(max_bytes as u64));
                    let boundary = seg
                        .offset_index()
                        .last_boundary_within(reach, upper)
                        .map_or((base, 0), |(o, p)| (o, p as u64));
                    plan.push(ReadPlan {
                        file: seg.file(),
                        path: seg.path().to_path_buf(),
                        start,
                        limit,
                        cold_before: self.cache.cold_before(base, seg.size()),
                        boundary,
                    });
                }
            }
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
            (
                plan,
                hw.offset,
                state.log_start_offset,
                lso,
                aborted,
                in_file,
            )
        };
        let upper = if read_committed { lso } else { hw };
        let mut result = ReadResult {
            records: Records::Bytes(Bytes::new()),
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
        let limits = ReadLimits {
            offset,
            upper,
            max_bytes,
            min_one_batch,
            in_file,
        };
        let end = self.read_batches(plan, &limits, &mut result)?;
        result.aborted.retain(|a| a.first_offset < end.max(offset));
        Ok(result)
    }

    /// Finds whole batches in the first segment of `plan` that has any at or after
    /// `offset`, below `upper`, and puts them in `result.records`; returns the offset after
    /// the last one.
    fn read_batches(
        &self,
        plan: Vec<ReadPlan>,
        limits: &ReadLimits,
        result: &mut ReadResult<Records>,
    ) -> Result<i64, LogError> {
        let &ReadLimits {
            offset,
            upper,
            max_bytes,
            min_one_batch,
            in_file,
        } = limits;
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
            if first.size() > max_bytes && !min_one_batch {
                return Ok(offset);
            }
            let reach = p.limit.min(pos + max_bytes.max(first.size()) as u64);
            let (len, end) = if first.size() > max_bytes {
                (first.size() as u64, first.next_offset())
            } else if in_file {
                // Whole batches up to `reach`: from the index's boundary (or the first
                // batch's end, if that is further), header by header. The walk reads a
                // header near the far end first: announce the whole range, so that uncached
                // data is read in one go instead of the OS's read-ahead being thrown off.
                if reach - pos >= PREFETCH_MIN {
                    p.file.prefetch(pos, reach - pos);
                }
                let (mut end, mut at) = (first.next_offset(), pos + first.size() as u64);
                if p.boundary.1 > at && p.boundary.1 <= reach {
                    (end, at) = p.boundary;
                }
                while let Some(h) =
                    read_header_at(p.file.as_ref(), at, reach).map_err(io_err(&p.path))?
                {
                    if h.base_offset >= upper {
                        break;
                    }
                    at += h.size() as u64;
                    end = h.next_offset();
                }
                (at - pos, end)
            } else {
                let chunk = read_bytes_at(p.file.as_ref(), pos, (reach - pos) as usize)
                    .map_err(io_err(&p.path))?;
                // A reader far behind the end streams from disk without filling the cache.
                let cold_end = reach.min(p.cold_before);
                if cold_end > pos {
                    p.file.evict(pos, cold_end - pos);
                }
                // Keep whole batches only.
                let (mut keep, mut end) = (0usize, offset);
                while let Some(h) = BatchHeader::parse(&chunk[keep..]) {
                    if keep + h.size() > chunk.len() || h.batch_length < 0 || h.base_offset >= upper
                    {
                        break;
                    }
                    keep += h.size();
                    end = h.next_offset();
                }
                result.records = Records::Bytes(chunk.slice(..keep));
                return Ok(end);
            };
            let records = FileRecords {
                file: Some(p.file),
                path: p.path,
                position: pos,
                len: len as usize,
                cold_before: p.cold_before,
            };
            result.records = if in_file {
                Records::File(records)
            } else {
                Records::Bytes(records.read_bytes()?)
            };
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
                .iter()
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
                    let found = records::first_record_at_or_after(&batch, timestamp).unwrap_or(
                        TimestampOffset {
                            timestamp: h.max_timestamp,
                            offset: h.base_offset,
                        },
                    );
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
                .iter()
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
        let found = records::first_record_with_timestamp(&exact.records, ts);
        Ok(Some(found.unwrap_or(TimestampOffset {
            timestamp: ts,
            offset: batch_offset,
        })))
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
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
