//! Idempotent producer state of one partition (Kafka's `ProducerStateManager`): for every
//! producer id, its epoch and the sequence ranges and offsets of its last five batches, so
//! that a retried batch is recognised and acknowledged with its original offset, and a gap
//! in sequence numbers is refused.
//!
//! The state is rebuilt at start-up from a snapshot (`<offset>.snapshot`, written at clean
//! shutdown and at every segment roll) plus the batch headers after it, as Kafka does.
//!
//! It also tracks each producer's open transaction on this partition (the offset of its
//! first transactional batch since the last marker): the smallest of those is the last
//! stable offset, and an abort marker yields an aborted transaction for read_committed
//! fetches.
//!
//! ```text
//! snapshot file: u32 magic "GPS3" | i64 offset | u32 count | count x entry | u32 crc32c (of all before)
//! entry:         i64 producer_id | i16 epoch | i64 last_timestamp | i64 current_txn_first_offset (-1: none)
//!                | u8 batches | batches x (i32 first_seq | i32 last_seq | i64 first_offset | i64 last_offset
//!                | i64 timestamp)
//! ```
//!
//! "GPS2" snapshots (before the batches' timestamps) are still read, with timestamps of -1.
//!
//! Synchronisation: owned by the `Log`, used under its lock.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};

use super::record_batch::BatchHeader;

/// Batches remembered per producer (Kafka's `NUM_BATCHES_TO_RETAIN`).
const BATCHES_TO_RETAIN: usize = 5;
const SNAPSHOT_MAGIC: &[u8; 4] = b"GPS3";
/// The format before `BatchMetadata::timestamp`: read, never written.
const SNAPSHOT_MAGIC_V2: &[u8; 4] = b"GPS2";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    /// The batch's max timestamp as stored (on a LogAppendTime topic, its append time):
    /// a retry of it is answered with this as its log append time, as Kafka answers a
    /// duplicate. -1 when unknown (read from an older snapshot).
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub last_timestamp: i64,
    pub batches: VecDeque<BatchMetadata>,
    /// First offset of the producer's open transaction on this partition.
    pub current_txn_first_offset: Option<i64>,
}

/// A transaction aborted on this partition: read_committed consumers drop the producer's
/// records in `first_offset..=last_offset` (the abort marker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

impl ProducerEntry {
    pub fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }
}

/// Why an idempotent batch was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProducerError {
    /// The epoch is older than the producer's current one: INVALID_PRODUCER_EPOCH.
    StaleEpoch { epoch: i16, current: i16 },
    /// A gap (or a new epoch not starting at 0): OUT_OF_ORDER_SEQUENCE_NUMBER.
    OutOfOrder { expected: i32, got: i32 },
}

impl std::fmt::Display for ProducerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProducerError::StaleEpoch { epoch, current } => {
                write!(
                    f,
                    "producer epoch {epoch} is older than the current epoch {current}"
                )
            }
            ProducerError::OutOfOrder { expected, got } => {
                write!(
                    f,
                    "out of order sequence number: expected {expected}, got {got}"
                )
            }
        }
    }
}

impl std::error::Error for ProducerError {}

/// What checking a batch found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// New data: append it.
    Append,
    /// A retry of a batch already in the log at these offsets, stored with this max
    /// timestamp: acknowledge, don't append.
    Duplicate {
        first_offset: i64,
        last_offset: i64,
        timestamp: i64,
    },
}

fn next_seq(seq: i32, delta: i32) -> i32 {
    // Sequence numbers wrap around at i32::MAX, as in Kafka.
    ((seq as i64 + delta as i64) % (i32::MAX as i64 + 1)) as i32
}

/// Most undo records kept (see `ProducerStateManager::undo`); past it a cut-back replays
/// from a snapshot instead. About 100 bytes each.
const UNDO_LIMIT: usize = 100_000;

/// A producer's entry before a change made by the batch at `offset` (`None`: it had none).
#[derive(Debug)]
struct UndoRecord {
    offset: i64,
    producer_id: i64,
    before: Option<ProducerEntry>,
}

#[derive(Debug)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// Changes since the log's last durable point, newest last, so that cutting the log
    /// back there (a failed fsync) restores producer state in memory, under the log's lock
    /// for only as long as the undo takes, instead of replaying batch headers from a
    /// snapshot. `None` once it outgrew `UNDO_LIMIT` (a cut-back then replays) until
    /// everything appended is durable again.
    undo: Option<Vec<UndoRecord>>,
    /// The durable point the undo records start at: they cannot undo below it.
    undo_floor: i64,
}

impl Default for ProducerStateManager {
    fn default() -> ProducerStateManager {
        ProducerStateManager {
            producers: HashMap::new(),
            undo: Some(Vec::new()),
            undo_floor: 0,
        }
    }
}

impl ProducerStateManager {
    /// Remembers `producer_id`'s entry before the batch at `offset` changes it.
    fn record_undo(&mut self, offset: i64, producer_id: i64) {
        let Some(undo) = &mut self.undo else {
            return;
        };
        if undo.len() >= UNDO_LIMIT {
            self.undo = None;
            return;
        }
        undo.push(UndoRecord {
            offset,
            producer_id,
            before: self.producers.get(&producer_id).cloned(),
        });
    }

    /// The state as loaded is the durable state: no undo records (replaying the log at load
    /// or after a cut-back records them like appends do).
    pub fn forget_undo(&mut self, durable_end: i64) {
        self.undo = Some(Vec::new());
        self.undo_floor = durable_end;
    }

    /// Everything before `durable_end` is durable now: its undo records go. When that is
    /// the whole log (`log_end`), undo starts afresh even after it had overflowed.
    pub fn durable_up_to(&mut self, durable_end: i64, log_end: i64) {
        match &mut self.undo {
            Some(undo) => {
                undo.retain(|r| r.offset >= durable_end);
                self.undo_floor = self.undo_floor.max(durable_end);
            }
            None if durable_end >= log_end => self.forget_undo(durable_end),
            None => {}
        }
    }

    /// Restores producer state as it was before the batch at `offset` (a cut-back to a
    /// durable point). False if the undo records do not reach back that far: the caller
    /// then rebuilds the state from a snapshot and the log.
    pub fn undo_to(&mut self, offset: i64) -> bool {
        let Some(undo) = &mut self.undo else {
            return false;
        };
        if offset < self.undo_floor {
            return false;
        }
        while let Some(r) = undo.last() {
            if r.offset < offset {
                break;
            }
            let r = undo.pop().expect("just looked");
            match r.before {
                Some(entry) => {
                    self.producers.insert(r.producer_id, entry);
                }
                None => {
                    self.producers.remove(&r.producer_id);
                }
            }
        }
        true
    }

    /// A manager over entries kept elsewhere (cluster mode keeps them in PostgreSQL and
    /// checks a commit's batches against them).
    pub fn from_producers(producers: HashMap<i64, ProducerEntry>) -> ProducerStateManager {
        ProducerStateManager {
            producers,
            undo: None,
            undo_floor: 0,
        }
    }

    pub fn producers(&self) -> &HashMap<i64, ProducerEntry> {
        &self.producers
    }

    /// Checks a client batch (Kafka's `ProducerAppendInfo` rules).
    pub fn check(&self, h: &BatchHeader) -> Result<Check, ProducerError> {
        // Control batches and the coordinators' own transactional writes (no sequence).
        if h.producer_id < 0 || h.is_control() || h.base_sequence < 0 {
            return Ok(Check::Append);
        }
        let last_seq = next_seq(h.base_sequence, h.last_offset_delta);
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // An unknown producer (new, or its state expired): any sequence is accepted.
            return Ok(Check::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(ProducerError::StaleEpoch {
                epoch: h.producer_epoch,
                current: entry.epoch,
            });
        }
        if h.producer_epoch == entry.epoch {
            if let Some(b) = entry
                .batches
                .iter()
                .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
            {
                return Ok(Check::Duplicate {
                    first_offset: b.first_offset,
                    last_offset: b.last_offset,
                    timestamp: b.timestamp,
                });
            }
            if let Some(last) = entry.last_seq() {
                let expected = next_seq(last, 1);
                if h.base_sequence != expected {
                    return Err(ProducerError::OutOfOrder {
                        expected,
                        got: h.base_sequence,
                    });
                }
            }
        } else if h.base_sequence != 0 {
            return Err(ProducerError::OutOfOrder {
                expected: 0,
                got: h.base_sequence,
            });
        }
        Ok(Check::Append)
    }

    /// Records an appended batch (also used when replaying the log).
    pub fn update(&mut self, h: &BatchHeader) {
        if h.producer_id < 0 || h.is_control() {
            return;
        }
        self.record_undo(h.base_offset, h.producer_id);
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: h.producer_epoch,
                last_timestamp: h.max_timestamp,
                batches: VecDeque::new(),
                current_txn_first_offset: None,
            });
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.last_timestamp = h.max_timestamp;
        if h.is_transactional() && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(h.base_offset);
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: h.base_sequence,
            last_seq: next_seq(h.base_sequence, h.last_offset_delta),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
            timestamp: h.max_timestamp,
        });
        while entry.batches.len() > BATCHES_TO_RETAIN {
            entry.batches.pop_front();
        }
    }

    /// A transaction marker (control batch at `h`): closes the producer's open
    /// transaction; an abort returns the aborted range.
    pub fn end_txn(&mut self, h: &BatchHeader, commit: bool) -> Option<AbortedTxn> {
        self.record_undo(h.base_offset, h.producer_id);
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: h.producer_epoch,
                last_timestamp: h.max_timestamp,
                batches: VecDeque::new(),
                current_txn_first_offset: None,
            });
        if h.producer_epoch > entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.last_timestamp = h.max_timestamp;
        let first = entry.current_txn_first_offset.take()?;
        (!commit).then_some(AbortedTxn {
            producer_id: h.producer_id,
            first_offset: first,
            last_offset: h.base_offset,
        })
    }

    /// The first offset of the oldest open transaction, if any.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producers
            .values()
            .filter_map(|e| e.current_txn_first_offset)
            .min()
    }

    /// Forgets producers idle since before `cutoff_ms` (`producer.id.expiration.ms`);
    /// producers with an open transaction are kept.
    pub fn expire(&mut self, cutoff_ms: i64) {
        self.producers
            .retain(|_, e| e.last_timestamp >= cutoff_ms || e.current_txn_first_offset.is_some());
    }

    pub fn encode(&self, offset: i64) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&offset.to_be_bytes());
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort();
        for id in ids {
            let e = &self.producers[id];
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.extend_from_slice(&e.last_timestamp.to_be_bytes());
            out.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
            out.push(e.batches.len() as u8);
            for b in &e.batches {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.first_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
                out.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Decodes a snapshot; `None` if it is damaged.
    pub fn decode(bytes: &[u8]) -> Option<(i64, ProducerStateManager)> {
        if bytes.len() < 20 {
            return None;
        }
        let with_timestamps = match &bytes[..4] {
            m if m == SNAPSHOT_MAGIC => true,
            m if m == SNAPSHOT_MAGIC_V2 => false,
            _ => return None,
        };
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body) != u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return None;
        }
        let mut at = 4;
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = body.get(at..at + n)?;
            at += n;
            Some(s)
        };
        let i64_of = |s: &[u8]| i64::from_be_bytes(s.try_into().unwrap_or([0; 8]));
        let i32_of = |s: &[u8]| i32::from_be_bytes(s.try_into().unwrap_or([0; 4]));
        let offset = i64_of(take(8)?);
        let count = u32::from_be_bytes(take(4)?.try_into().ok()?);
        let mut producers = HashMap::new();
        for _ in 0..count {
            let id = i64_of(take(8)?);
            let epoch = i16::from_be_bytes(take(2)?.try_into().ok()?);
            let last_timestamp = i64_of(take(8)?);
            let txn_first = i64_of(take(8)?);
            let n = take(1)?[0];
            let mut batches = VecDeque::new();
            for _ in 0..n {
                batches.push_back(BatchMetadata {
                    first_seq: i32_of(take(4)?),
                    last_seq: i32_of(take(4)?),
                    first_offset: i64_of(take(8)?),
                    last_offset: i64_of(take(8)?),
                    timestamp: if with_timestamps {
                        i64_of(take(8)?)
                    } else {
                        -1
                    },
                });
            }
            producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    last_timestamp,
                    batches,
                    current_txn_first_offset: (txn_first >= 0).then_some(txn_first),
                },
            );
        }
        Some((
            offset,
            ProducerStateManager {
                producers,
                undo: Some(Vec::new()),
                undo_floor: offset,
            },
        ))
    }
}

/// `<dir>/<20-digit offset>.snapshot`.
pub fn snapshot_file(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}.snapshot"))
}

/// The snapshot files of a partition directory, by offset.
pub fn list_snapshots(
    storage: &dyn crate::storage::Storage,
    dir: &Path,
) -> io::Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    for path in storage.list(dir)? {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if let Some(stem) = name.strip_suffix(".snapshot") {
            if let Ok(offset) = stem.parse::<i64>() {
                out.push((offset, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, seq: i32, count: i32, offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset: offset,
            batch_length: 100,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 1,
            max_timestamp: 1,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    #[test]
    fn duplicates_gaps_and_fencing() {
        let mut s = ProducerStateManager::default();
        let mut b0 = batch(7, 0, 0, 3, 10);
        b0.max_timestamp = 5_000;
        assert_eq!(s.check(&b0), Ok(Check::Append));
        s.update(&b0);
        // The same batch again: its original offsets and stored timestamp.
        assert_eq!(
            s.check(&batch(7, 0, 0, 3, 0)),
            Ok(Check::Duplicate {
                first_offset: 10,
                last_offset: 12,
                timestamp: 5_000,
            })
        );
        // The next sequence is 3; 5 is a gap.
        assert_eq!(s.check(&batch(7, 0, 3, 1, 0)), Ok(Check::Append));
        assert_eq!(
            s.check(&batch(7, 0, 5, 1, 0)),
            Err(ProducerError::OutOfOrder {
                expected: 3,
                got: 5
            })
        );
        // A new epoch starts at 0; an older epoch is fenced.
        assert_eq!(s.check(&batch(7, 1, 0, 1, 0)), Ok(Check::Append));
        assert!(matches!(
            s.check(&batch(7, 1, 4, 1, 0)),
            Err(ProducerError::OutOfOrder { .. })
        ));
        s.update(&batch(7, 1, 0, 1, 20));
        assert!(matches!(
            s.check(&batch(7, 0, 3, 1, 0)),
            Err(ProducerError::StaleEpoch { .. })
        ));
        // An unknown producer may start anywhere.
        assert_eq!(s.check(&batch(8, 0, 42, 1, 0)), Ok(Check::Append));
    }

    #[test]
    fn snapshots_round_trip_and_detect_damage() {
        let mut s = ProducerStateManager::default();
        for i in 0..7 {
            s.update(&batch(1, 0, i, 1, 100 + i as i64));
        }
        s.update(&batch(2, 3, 0, 10, 200));
        let bytes = s.encode(210);
        let (offset, back) = ProducerStateManager::decode(&bytes).unwrap();
        assert_eq!(offset, 210);
        assert_eq!(back.producers(), s.producers());
        assert_eq!(back.producers()[&1].batches.len(), BATCHES_TO_RETAIN);
        let mut bad = bytes.clone();
        bad[10] ^= 1;
        assert!(ProducerStateManager::decode(&bad).is_none());
    }

    /// A snapshot written before the batches' timestamps ("GPS2") is read, with them unknown.
    #[test]
    fn a_snapshot_without_batch_timestamps_is_read() {
        let mut v2 = Vec::new();
        v2.extend_from_slice(b"GPS2");
        v2.extend_from_slice(&42i64.to_be_bytes());
        v2.extend_from_slice(&1u32.to_be_bytes());
        v2.extend_from_slice(&7i64.to_be_bytes()); // producer id
        v2.extend_from_slice(&3i16.to_be_bytes()); // epoch
        v2.extend_from_slice(&1_000i64.to_be_bytes()); // last timestamp
        v2.extend_from_slice(&(-1i64).to_be_bytes()); // no open transaction
        v2.push(1);
        v2.extend_from_slice(&0i32.to_be_bytes());
        v2.extend_from_slice(&4i32.to_be_bytes());
        v2.extend_from_slice(&30i64.to_be_bytes());
        v2.extend_from_slice(&34i64.to_be_bytes());
        let crc = crc32c::crc32c(&v2);
        v2.extend_from_slice(&crc.to_be_bytes());
        let (offset, s) = ProducerStateManager::decode(&v2).unwrap();
        assert_eq!(offset, 42);
        let batches = &s.producers()[&7].batches;
        assert_eq!(
            batches.iter().copied().collect::<Vec<_>>(),
            vec![BatchMetadata {
                first_seq: 0,
                last_seq: 4,
                first_offset: 30,
                last_offset: 34,
                timestamp: -1,
            }]
        );
        // Written again, it is the current format.
        assert_eq!(&s.encode(42)[..4], SNAPSHOT_MAGIC);
    }
}
