//! One share-partition in memory (Kafka's `SharePartition`): the delivery state of every
//! offset from the share-partition start offset (SPSO) to the end of what was fetched.
//!
//! | state | how it is entered | what may follow |
//! |---|---|---|
//! | **Available** | never fetched yet but inside the window, released (RELEASE, lock expiry, the member's session closed) | Acquired |
//! | **Acquired** | a ShareFetch gave it to one member, for `share.record.lock.duration.ms`; its delivery count goes up | Acknowledged (ACCEPT), Archived (REJECT, a gap), Available (RELEASE, lock expiry); Archived instead of Available once delivered `group.share.delivery.count.limit` times |
//! | **Acknowledged** | ACCEPT | — (terminal) |
//! | **Archived** | REJECT, a gap (an offset with no record: compaction, a control record), the delivery limit, an aborted transaction's record under read_committed | — (terminal) |
//!
//! The SPSO moves past terminal offsets at the front; the window (SPSO to the last offset
//! fetched) holds at most `group.share.partition.max.record.locks` offsets before new ones
//! are fetched (a whole stored batch may overshoot it). ACQUIRED is never persisted:
//! acquisitions write nothing; acknowledgements, releases and lock expiry write the ranges
//! they changed (`share/state_store.rs`) before they are answered.
//!
//! Pure: no I/O and no clock of its own, so the rules are unit-tested on their own.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::time::Instant;

use super::state_store::{ShareState, StateBatch, ACKNOWLEDGED, ARCHIVED, AVAILABLE};

/// A record's delivery state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    Available,
    Acquired,
    Acknowledged,
    Archived,
}

impl RecordState {
    fn is_terminal(self) -> bool {
        matches!(self, RecordState::Acknowledged | RecordState::Archived)
    }

    /// The persisted id (Acquired is written as what it was before: never here).
    fn persisted(self) -> i8 {
        match self {
            RecordState::Available | RecordState::Acquired => AVAILABLE,
            RecordState::Acknowledged => ACKNOWLEDGED,
            RecordState::Archived => ARCHIVED,
        }
    }
}

/// Acknowledgement types (ShareFetch, ShareAcknowledge).
pub const ACK_GAP: i8 = 0;
pub const ACK_ACCEPT: i8 = 1;
pub const ACK_RELEASE: i8 = 2;
pub const ACK_REJECT: i8 = 3;
pub const ACK_RENEW: i8 = 4;

#[derive(Debug, Clone)]
struct Slot {
    state: RecordState,
    delivery_count: i16,
    owner: Option<Arc<str>>,
    deadline: Option<Instant>,
}

impl Slot {
    fn available(delivery_count: i16) -> Slot {
        Slot {
            state: RecordState::Available,
            delivery_count,
            owner: None,
            deadline: None,
        }
    }
}

/// A stored batch as acquisition sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    /// False for the records of an aborted transaction under read_committed: archived, not
    /// delivered.
    pub deliverable: bool,
}

/// Offsets handed to a member, all with the same delivery count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquiredRange {
    pub first_offset: i64,
    pub last_offset: i64,
    pub delivery_count: i16,
}

/// What a share fetch acquired: the ranges, and which of the given batches hold them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acquisition {
    pub ranges: Vec<AcquiredRange>,
    /// Indexes of the first and last batch with an acquired offset.
    pub batches: Option<(usize, usize)>,
}

impl Acquisition {
    pub fn records(&self) -> usize {
        self.ranges
            .iter()
            .map(|r| (r.last_offset - r.first_offset + 1) as usize)
            .sum()
    }
}

/// One acknowledgement batch, checked (`types` has one entry, or one per offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    pub first_offset: i64,
    pub last_offset: i64,
    pub types: Vec<i8>,
}

impl Acknowledgement {
    fn type_at(&self, offset: i64) -> i8 {
        if self.types.len() == 1 {
            self.types[0]
        } else {
            self.types[(offset - self.first_offset) as usize]
        }
    }
}

/// Why an acknowledgement was refused (the partition's whole acknowledgement is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckError {
    /// An offset this member has not acquired: INVALID_RECORD_STATE.
    InvalidRecordState(String),
    /// An offset past everything fetched: INVALID_REQUEST.
    InvalidRequest(String),
}

/// The settings a share-partition obeys.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `group.share.delivery.count.limit`.
    pub delivery_count_limit: i16,
    /// `group.share.partition.max.record.locks`.
    pub max_in_flight: i64,
}

/// Offsets whose state changed, with what they were (to undo them if the write fails).
#[derive(Debug, Default)]
pub struct Changes {
    before: Vec<(i64, Slot)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.before.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct SharePartition {
    start_offset: i64,
    /// The state of offsets `start_offset..start_offset + slots.len()`.
    slots: VecDeque<Slot>,
    state_epoch: i32,
}

impl SharePartition {
    /// A share-partition loaded from its durable state, starting at `start_offset` (the
    /// stored one, or the one `share.auto.offset.reset` resolved). Offsets up to the last
    /// stored range that have no state were fetched before but never written: available
    /// again, as never delivered.
    pub fn load(state: &ShareState, start_offset: i64) -> SharePartition {
        let mut sp = SharePartition {
            start_offset,
            slots: VecDeque::new(),
            state_epoch: state.state_epoch,
        };
        for b in state.state_batches() {
            if b.last_offset < start_offset {
                continue;
            }
            let end = sp.end_offset();
            for _ in end..=b.last_offset {
                sp.slots.push_back(Slot::available(0));
            }
            for offset in b.first_offset.max(start_offset)..=b.last_offset {
                let slot = sp.slot_mut(offset).expect("pushed above");
                slot.delivery_count = b.delivery_count;
                slot.state = match b.delivery_state {
                    ACKNOWLEDGED => RecordState::Acknowledged,
                    ARCHIVED => RecordState::Archived,
                    _ => RecordState::Available,
                };
            }
        }
        sp.advance_start();
        sp
    }

    pub fn start_offset(&self) -> i64 {
        self.start_offset
    }

    pub fn state_epoch(&self) -> i32 {
        self.state_epoch
    }

    /// The offset after the last one fetched (the SPSO when nothing is in flight).
    pub fn end_offset(&self) -> i64 {
        self.start_offset + self.slots.len() as i64
    }

    fn slot_mut(&mut self, offset: i64) -> Option<&mut Slot> {
        let i = usize::try_from(offset - self.start_offset).ok()?;
        self.slots.get_mut(i)
    }

    /// Where the next share fetch reads from: the first available offset in the window,
    /// else the end.
    pub fn next_fetch_offset(&self) -> i64 {
        self.slots
            .iter()
            .position(|s| s.state == RecordState::Available)
            .map_or(self.end_offset(), |i| self.start_offset + i as i64)
    }

    /// Whether a fetch could acquire anything: something available in the window, or room
    /// for new offsets.
    pub fn can_acquire(&self, limits: &Limits) -> bool {
        self.slots.iter().any(|s| s.state == RecordState::Available)
            || (self.slots.len() as i64) < limits.max_in_flight
    }

    /// Offsets in the window whose delivery is complete (Kafka's DeliveryCompleteCount).
    pub fn delivery_complete_count(&self) -> i32 {
        self.slots.iter().filter(|s| s.state.is_terminal()).count() as i32
    }

    /// The number of acquired records.
    pub fn acquired_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.state == RecordState::Acquired)
            .count()
    }

    /// When the next acquisition lock expires.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots.iter().filter_map(|s| s.deadline).min()
    }

    /// The log's start moved past the SPSO (retention, DeleteRecords): what is below it is
    /// gone, whatever its state (an acknowledgement of it later is a no-op, as in Kafka).
    pub fn move_start_to(&mut self, log_start_offset: i64) {
        while self.start_offset < log_start_offset {
            if self.slots.pop_front().is_none() {
                self.start_offset = log_start_offset;
                break;
            }
            self.start_offset += 1;
        }
    }

    /// Acquires for `member`, from `batches` (the stored batches read at
    /// `next_fetch_offset`, in order), each offset locked until `deadline`: at least
    /// `max_records` records if there are that many, in whole batches (the last one may
    /// overshoot), a range of more than `batch_size` records cut at the next batch boundary;
    /// with `record_limit` (KIP-1206), at most `max_records`, the rest of a batch left
    /// available.
    #[allow(clippy::too_many_arguments)]
    pub fn acquire(
        &mut self,
        member: &Arc<str>,
        batches: &[LogBatch],
        max_records: usize,
        batch_size: usize,
        record_limit: bool,
        deadline: Instant,
        limits: &Limits,
    ) -> Acquisition {
        let mut out = Acquisition::default();
        let mut expected = self.next_fetch_offset();
        // Set at a batch's end once the current range is `batch_size` long.
        let mut cut = false;
        for (index, b) in batches.iter().enumerate() {
            if out.records() >= max_records {
                break;
            }
            if b.last_offset < self.start_offset || b.last_offset < expected {
                continue;
            }
            // Offsets between the last batch and this one have no record (compaction):
            // nothing to deliver there.
            for offset in expected.max(self.start_offset)..b.base_offset.min(self.end_offset()) {
                if let Some(s) = self.slot_mut(offset) {
                    if s.state == RecordState::Available {
                        s.state = RecordState::Archived;
                    }
                }
            }
            expected = b.last_offset + 1;
            if b.last_offset >= self.end_offset() {
                if self.slots.len() as i64 >= limits.max_in_flight {
                    // The window is full: fetch nothing new until the SPSO moves.
                    break;
                }
                while self.end_offset() < b.base_offset {
                    self.slots.push_back(Slot {
                        state: RecordState::Archived,
                        ..Slot::available(0)
                    });
                }
                while self.end_offset() <= b.last_offset {
                    self.slots.push_back(Slot::available(0));
                }
            }
            // Kafka 4.2's poison-record isolation: a batch holding records delivered
            // `throttle` times or more comes alone, in chunks halved with each further
            // delivery, and a record on its last delivery comes alone, so that one bad record
            // does not use up its neighbours' deliveries.
            let limit = limits.delivery_count_limit;
            let throttle = ((limit + 1) / 2).max(2);
            let first = b.base_offset.max(self.start_offset);
            let throttled = (first..=b.last_offset).find_map(|o| {
                let s = self
                    .slots
                    .get(usize::try_from(o - self.start_offset).ok()?)?;
                (s.state == RecordState::Available && s.delivery_count >= throttle)
                    .then_some(s.delivery_count)
            });
            if throttled.is_some() && out.records() > 0 {
                break;
            }
            let cap = throttled.map(|count| {
                let size = (b.last_offset - first + 1) as usize;
                (size >> (count - throttle + 1)).max(1)
            });
            let before = out.records();
            let mut stop = false;
            for offset in first..=b.last_offset {
                if (record_limit && out.records() >= max_records)
                    || cap.is_some_and(|c| out.records() - before >= c)
                {
                    stop = cap.is_some();
                    break;
                }
                let Some(s) = self.slot_mut(offset) else {
                    continue;
                };
                if s.state != RecordState::Available {
                    continue;
                }
                if !b.deliverable {
                    s.state = RecordState::Archived;
                    continue;
                }
                if limit > 2 && s.delivery_count == limit - 1 && out.records() > 0 {
                    stop = true;
                    break;
                }
                s.state = RecordState::Acquired;
                s.delivery_count = s.delivery_count.saturating_add(1);
                s.owner = Some(member.clone());
                s.deadline = Some(deadline);
                let count = s.delivery_count;
                push_range(&mut out.ranges, offset, count, std::mem::take(&mut cut));
                if limit > 2 && count == limit && out.records() == 1 {
                    // Its last delivery: alone.
                    stop = true;
                    break;
                }
            }
            if out.records() > before {
                out.batches = Some(match out.batches {
                    None => (index, index),
                    Some((first, _)) => (first, index),
                });
                cut = out
                    .ranges
                    .last()
                    .is_some_and(|r| r.last_offset - r.first_offset + 1 >= batch_size as i64);
            }
            if stop || throttled.is_some() {
                break;
            }
        }
        out
    }

    /// Applies `member`'s acknowledgements, all or nothing: every offset at or after the
    /// SPSO must be acquired by `member` (offsets below it are skipped, as Kafka does). A
    /// RENEW restarts the offset's lock until `renewed_until`.
    pub fn acknowledge(
        &mut self,
        member: &str,
        acks: &[Acknowledgement],
        renewed_until: Instant,
        limits: &Limits,
    ) -> Result<Changes, AckError> {
        for a in acks {
            for offset in a.first_offset.max(self.start_offset)..=a.last_offset {
                let Some(s) = self.slot_mut(offset) else {
                    return Err(AckError::InvalidRequest(format!(
                        "Offset {offset} has not been fetched"
                    )));
                };
                if s.state != RecordState::Acquired {
                    return Err(AckError::InvalidRecordState(format!(
                        "The record at offset {offset} is not acquired"
                    )));
                }
                if s.owner.as_deref() != Some(member) {
                    return Err(AckError::InvalidRecordState(format!(
                        "Member is not the owner of the record at offset {offset}"
                    )));
                }
            }
        }
        let mut changes = Changes::default();
        for a in acks {
            for offset in a.first_offset.max(self.start_offset)..=a.last_offset {
                let kind = a.type_at(offset);
                let s = self.slot_mut(offset).expect("checked above");
                if kind == ACK_RENEW {
                    s.deadline = Some(renewed_until);
                    continue;
                }
                changes.before.push((offset, s.clone()));
                s.state = match kind {
                    ACK_ACCEPT => RecordState::Acknowledged,
                    ACK_RELEASE if s.delivery_count < limits.delivery_count_limit => {
                        RecordState::Available
                    }
                    _ => RecordState::Archived,
                };
                s.owner = None;
                s.deadline = None;
            }
        }
        Ok(changes)
    }

    /// Releases what `member` holds (its share session ended).
    pub fn release(&mut self, member: &str, limits: &Limits) -> Changes {
        self.release_where(limits, |s| s.owner.as_deref() == Some(member))
    }

    /// Releases what was held past its lock.
    pub fn expire(&mut self, now: Instant, limits: &Limits) -> Changes {
        self.release_where(limits, |s| s.deadline.is_some_and(|d| d <= now))
    }

    fn release_where(&mut self, limits: &Limits, which: impl Fn(&Slot) -> bool) -> Changes {
        let mut changes = Changes::default();
        let start = self.start_offset;
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.state == RecordState::Acquired && which(s) {
                changes.before.push((start + i as i64, s.clone()));
                s.state = if s.delivery_count < limits.delivery_count_limit {
                    RecordState::Available
                } else {
                    RecordState::Archived
                };
                s.owner = None;
                s.deadline = None;
            }
        }
        changes
    }

    /// Undoes `changes` (their write failed).
    pub fn undo(&mut self, changes: Changes) {
        for (offset, slot) in changes.before.into_iter().rev() {
            if let Some(s) = self.slot_mut(offset) {
                *s = slot;
            }
        }
    }

    /// Where the SPSO goes once `changes` are written: past the terminal offsets at the
    /// front.
    pub fn next_start_offset(&self) -> i64 {
        let done = self
            .slots
            .iter()
            .take_while(|s| s.state.is_terminal())
            .count();
        self.start_offset + done as i64
    }

    /// The ranges to write for `changes`: offsets at or after `from`, by state and count.
    pub fn state_batches(&self, changes: &Changes, from: i64) -> Vec<StateBatch> {
        let mut offsets: Vec<i64> = changes
            .before
            .iter()
            .map(|(o, _)| *o)
            .filter(|o| *o >= from)
            .collect();
        offsets.sort_unstable();
        offsets.dedup();
        let mut out: Vec<StateBatch> = Vec::new();
        for offset in offsets {
            let i = (offset - self.start_offset) as usize;
            let s = &self.slots[i];
            let (state, count) = (s.state.persisted(), s.delivery_count);
            match out.last_mut() {
                Some(last)
                    if last.last_offset + 1 == offset
                        && last.delivery_state == state
                        && last.delivery_count == count =>
                {
                    last.last_offset = offset;
                }
                _ => out.push(StateBatch {
                    first_offset: offset,
                    last_offset: offset,
                    delivery_state: state,
                    delivery_count: count,
                }),
            }
        }
        out
    }

    /// Moves the SPSO past the terminal offsets at the front (after a successful write).
    pub fn advance_start(&mut self) {
        while self.slots.front().is_some_and(|s| s.state.is_terminal()) {
            self.slots.pop_front();
            self.start_offset += 1;
        }
    }
}

/// Adds `offset` to the last range if it continues it with the same count (and no `cut`
/// is due), else starts a new one.
fn push_range(ranges: &mut Vec<AcquiredRange>, offset: i64, count: i16, cut: bool) {
    if let Some(last) = ranges.last_mut() {
        if !cut && last.last_offset + 1 == offset && last.delivery_count == count {
            last.last_offset = offset;
            return;
        }
    }
    ranges.push(AcquiredRange {
        first_offset: offset,
        last_offset: offset,
        delivery_count: count,
    });
}

#[cfg(test)]
mod tests;
