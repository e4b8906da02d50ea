//! The transaction index (`.txnindex`, Kafka's `TransactionIndex`): one entry per aborted
//! transaction, in the segment whose log holds its abort marker. Read committed fetches use
//! it to tell consumers which records to drop. An entry is 34 bytes, big-endian: i16 version
//! (0), i64 producer id, i64 first offset, i64 last offset, i64 last stable offset.

use std::path::Path;

use super::file_names;
use super::producer_state::AbortedTxn;
use super::segments::LogSegments;
use super::{Log, LogError, LogState};
use crate::storage::{OpenMode, Storage};

/// Bytes per entry.
const ENTRY_SIZE: usize = 34;

pub(super) fn encode_entry(a: &AbortedTxn, last_stable_offset: i64) -> [u8; ENTRY_SIZE] {
    let mut entry = [0u8; ENTRY_SIZE];
    entry[0..2].copy_from_slice(&0i16.to_be_bytes());
    entry[2..10].copy_from_slice(&a.producer_id.to_be_bytes());
    entry[10..18].copy_from_slice(&a.first_offset.to_be_bytes());
    entry[18..26].copy_from_slice(&a.last_offset.to_be_bytes());
    entry[26..34].copy_from_slice(&last_stable_offset.to_be_bytes());
    entry
}

/// The entries of one index file; a torn last entry is ignored.
fn decode_entries(bytes: &[u8]) -> impl Iterator<Item = AbortedTxn> + '_ {
    bytes.chunks_exact(ENTRY_SIZE).map(|e| {
        let i64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&e[at..at + 8]);
            i64::from_be_bytes(b)
        };
        AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
        }
    })
}

/// The aborted transactions recorded in the segments' `.txnindex` files (entries whose
/// marker is beyond the log end, after a truncation, are dropped).
pub(super) fn read_txn_indexes(
    storage: &dyn Storage,
    dir: &Path,
    segments: &LogSegments,
) -> Result<Vec<AbortedTxn>, LogError> {
    let log_end = segments
        .active()
        .map_or(0, super::segment::LogSegment::next_offset);
    let mut out = Vec::new();
    for base in segments.bases() {
        let path = file_names::txn_index_file(dir, base);
        let bytes = match storage.read(&path) {
            Ok(bytes) => bytes,
            // Only segments that saw an abort have one.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(LogError::Io { path, source }),
        };
        out.extend(
            decode_entries(&bytes)
                .filter(|a| a.last_offset < log_end && a.first_offset <= a.last_offset),
        );
    }
    Ok(out)
}

impl Log {
    /// Drops the entries of the segment at `base` whose abort markers are at or after
    /// `end` (a cut-back removed them): left in the file they would apply again once the
    /// log grows past those offsets with other data. Entries are in marker order, so the
    /// file is cut at the first such entry; the cut is fsynced with the next flush.
    pub(super) fn truncate_txn_index(
        &self,
        state: &mut LogState,
        base: i64,
        end: i64,
    ) -> Result<(), LogError> {
        let path = file_names::txn_index_file(&self.dir, base);
        let io = |source| LogError::Io {
            path: path.clone(),
            source,
        };
        let bytes = match self.storage.read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        };
        let kept = decode_entries(&bytes)
            .take_while(|a| a.last_offset < end)
            .count();
        let len = (kept * ENTRY_SIZE) as u64;
        if len < bytes.len() as u64 {
            let file = self.storage.open(&path, OpenMode::Existing).map_err(io)?;
            file.set_len(len).map_err(io)?;
            state.pending_sync.push(file);
        }
        Ok(())
    }

    /// Appends an aborted transaction to the active segment's `.txnindex` and queues the
    /// file for the next flush's fsync, so the entry is durable with its marker. The
    /// entry goes at the last whole-entry boundary, over any torn tail of an earlier
    /// failed write.
    pub(super) fn write_txn_index(
        &self,
        state: &mut LogState,
        a: &AbortedTxn,
    ) -> Result<(), LogError> {
        let Some(base) = state.segments.active_base() else {
            return Err(LogError::Closed);
        };
        let path = file_names::txn_index_file(&self.dir, base);
        let lso = state
            .producers
            .first_unstable_offset()
            .unwrap_or(a.last_offset);
        let entry = encode_entry(a, lso);
        let file = self
            .storage
            .open(&path, OpenMode::CreateOrOpen)
            .and_then(|f| {
                let end = f.len()? / ENTRY_SIZE as u64 * ENTRY_SIZE as u64;
                f.write_all_at(&[&entry], end)?;
                Ok(f)
            })
            .map_err(|source| LogError::Io {
                path: path.clone(),
                source,
            })?;
        state.pending_sync.push(file);
        // A new file's name is durable only with its directory.
        state.dir_sync_pending = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_round_trips_and_a_torn_tail_is_ignored() {
        let a = AbortedTxn {
            producer_id: 7,
            first_offset: 10,
            last_offset: 20,
        };
        let mut bytes = encode_entry(&a, 15).to_vec();
        bytes.extend_from_slice(&[1, 2, 3]);
        let back: Vec<_> = decode_entries(&bytes).collect();
        assert_eq!(back.len(), 1);
        assert_eq!(
            (
                back[0].producer_id,
                back[0].first_offset,
                back[0].last_offset
            ),
            (7, 10, 20)
        );
    }
}
