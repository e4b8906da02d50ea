//! The segments of one log, by base offset (Kafka's `LogSegments`). The last one is the
//! active segment, the only one appended to; the others are sealed.
//!
//! Not synchronised itself: it lives inside `LogState`, behind the log's mutex.

use std::collections::BTreeMap;

use super::segment::LogSegment;

#[derive(Default)]
pub struct LogSegments {
    by_base: BTreeMap<i64, LogSegment>,
}

impl LogSegments {
    pub fn is_empty(&self) -> bool {
        self.by_base.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_base.len()
    }

    /// Adds a segment; it becomes the active one if its base offset is the highest.
    /// Adds a segment; the one that was active until now releases its index files (see
    /// `IndexFile`), so take its `sync_handles` first.
    pub fn add(&mut self, segment: LogSegment) {
        if let Some((_, previous)) = self.by_base.range_mut(..segment.base_offset()).next_back() {
            previous.release_index_files();
        }
        self.by_base.insert(segment.base_offset(), segment);
    }

    pub fn remove(&mut self, base: i64) -> Option<LogSegment> {
        self.by_base.remove(&base)
    }

    pub fn get_mut(&mut self, base: i64) -> Option<&mut LogSegment> {
        self.by_base.get_mut(&base)
    }

    /// The segment appends go to (the one with the highest base offset).
    pub fn active(&self) -> Option<&LogSegment> {
        self.by_base.values().next_back()
    }

    pub fn active_mut(&mut self) -> Option<&mut LogSegment> {
        self.by_base.values_mut().next_back()
    }

    pub fn active_base(&self) -> Option<i64> {
        self.by_base.keys().next_back().copied()
    }

    pub fn first_base(&self) -> Option<i64> {
        self.by_base.keys().next().copied()
    }

    /// Base offsets, oldest first.
    pub fn bases(&self) -> impl DoubleEndedIterator<Item = i64> + '_ {
        self.by_base.keys().copied()
    }

    /// Every segment, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &LogSegment> + '_ {
        self.by_base.values()
    }

    /// Every segment but the active one, oldest first.
    pub fn sealed(&self) -> impl Iterator<Item = &LogSegment> + '_ {
        let active = self.active_base();
        self.by_base
            .values()
            .take_while(move |s| Some(s.base_offset()) != active)
    }

    /// The segment that holds `offset` (the last one whose base is at or below it) and every
    /// later one.
    pub fn holding_and_after(&self, offset: i64) -> impl Iterator<Item = &LogSegment> + '_ {
        let first = self
            .by_base
            .range(..=offset)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        self.by_base.range(first..).map(|(_, s)| s)
    }

    /// Base offsets of the segments after the one based at `base`.
    pub fn bases_after(&self, base: i64) -> Vec<i64> {
        self.by_base
            .range(base.saturating_add(1)..)
            .map(|(b, _)| *b)
            .collect()
    }

    /// Bytes in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.by_base
            .values()
            .map(super::segment::LogSegment::size)
            .sum()
    }
}
