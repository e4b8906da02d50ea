//! `log.cache.hot.bytes`: one page-cache budget for the fsynced data of every log of the
//! broker. Each flush hands in the ranges it made durable; they queue newest last, and
//! once the queued ranges add up to more than the budget the oldest leave the page cache
//! (`StorageFile::evict`, `posix_fadvise(DONTNEED)`), whichever partition they belong to.
//! Eight busy partitions then share one window instead of holding eight, and a partition
//! that stopped taking writes keeps its data cached until newer data anywhere needs the
//! room. A log's `ColdMark` says how far its data has left the cache: reads below it stream
//! from disk and drop what they read (a consumer catching up does not push out the data of
//! consumers at the end), reads above it find the data in memory.
//!
//! Why at all (Kafka leaves the page cache to the OS): on VMs, page-cache pages that the
//! guest never touched are slow to fill (docs/benchmarks.md measured 360 MB/s into new
//! memory against 3 GB/s into reused), so a cache that keeps growing makes writing slow;
//! a bounded cache keeps reusing the same memory.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use super::OffsetPosition;
use crate::storage::{FileRef, StorageFile};

/// Ranges are queued in pieces of at least this size (a log's newest, smaller piece waits
/// for its next flushes), so the queue stays short however small each flush is.
const QUEUE_PIECE: u64 = 256 << 10;

/// The broker's budget and the ranges it holds.
pub struct PageCache {
    /// None: nothing is ever evicted (`log.cache.hot.bytes` -1, as Kafka).
    budget: Option<u64>,
    queued: Mutex<Queued>,
}

#[derive(Default)]
struct Queued {
    /// Oldest first.
    ranges: VecDeque<CachedRange>,
    bytes: u64,
    /// Admits since the last sweep of ranges whose file is gone.
    since_sweep: u32,
}

/// Every this many admits the queue drops the ranges of deleted files wherever they are
/// (a deleted topic's data would otherwise count against the budget until it reached the
/// front, pushing live data out early); amortised, a few steps per admit.
const SWEEP_EVERY: u32 = 1024;

/// A durable range of a segment file that is (as far as Gregor knows) in the page cache.
pub struct CachedRange {
    /// Weak: a deleted segment's file closes when its log lets go of it, not when its
    /// range leaves the queue.
    file: Weak<dyn StorageFile>,
    segment_base: i64,
    start: u64,
    len: u64,
    mark: Arc<ColdMark>,
}

impl PageCache {
    pub fn new(budget: Option<u64>) -> Arc<PageCache> {
        Arc::new(PageCache {
            budget,
            queued: Mutex::default(),
        })
    }

    pub fn budget(&self) -> Option<u64> {
        self.budget
    }

    /// Bytes of the ranges queued now.
    pub fn queued_bytes(&self) -> u64 {
        self.lock().bytes
    }

    fn lock(&self) -> MutexGuard<'_, Queued> {
        // The queue is consistent after every statement: a panic elsewhere cannot leave
        // it half-changed.
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues newly durable ranges, then evicts the oldest while the queue is over budget
    /// (and drops ranges whose file is gone). Blocking: call it off the runtime's workers.
    fn admit(&self, ranges: Vec<CachedRange>) {
        let Some(budget) = self.budget else { return };
        let mut evict: Vec<CachedRange> = Vec::new();
        {
            let mut q = self.lock();
            for r in ranges {
                q.bytes += r.len;
                q.ranges.push_back(r);
            }
            q.since_sweep += 1;
            if q.since_sweep >= SWEEP_EVERY {
                q.since_sweep = 0;
                let mut bytes = 0;
                q.ranges.retain(|r| {
                    let live = r.file.strong_count() > 0;
                    if live {
                        bytes += r.len;
                    }
                    live
                });
                q.bytes = bytes;
            }
            while let Some(front) = q.ranges.front() {
                if q.bytes <= budget && front.file.strong_count() > 0 {
                    break;
                }
                let front = q.ranges.pop_front().expect("front exists");
                q.bytes -= front.len;
                // Neighbouring pieces of one file go out in one call.
                match evict.last_mut() {
                    Some(last)
                        if last.file.ptr_eq(&front.file)
                            && last.start + last.len == front.start =>
                    {
                        last.len += front.len;
                    }
                    _ => evict.push(front),
                }
            }
        }
        for r in evict {
            if let Some(file) = r.file.upgrade() {
                file.evict(r.start, r.len);
            }
            r.mark.advance(r.segment_base, r.start + r.len);
        }
    }
}

impl std::fmt::Debug for PageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageCache")
            .field("budget", &self.budget)
            .finish()
    }
}

/// Configs compare by their setting, not by what happens to be cached.
impl PartialEq for PageCache {
    fn eq(&self, other: &PageCache) -> bool {
        self.budget == other.budget
    }
}

/// A log's (segment base, position) below which its data has left the page cache.
#[derive(Debug)]
pub struct ColdMark(Mutex<(i64, u64)>);

impl ColdMark {
    /// Data already on disk when the log opened counts as cold: it is not in the budget,
    /// and whether the OS still caches it is not known.
    pub(super) fn at(end: OffsetPosition) -> Arc<ColdMark> {
        Arc::new(ColdMark(Mutex::new((end.segment_base, end.position))))
    }

    fn get(&self) -> (i64, u64) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// After a cut-back to `end`: what is written past it is not cold.
    fn lower_to(&self, end: OffsetPosition) {
        let mut m = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *m = (*m).min((end.segment_base, end.position));
    }

    fn advance(&self, segment_base: i64, position: u64) {
        let mut m = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *m = (*m).max((segment_base, position));
    }

    /// The position of segment `segment_base` (`size` bytes long) below which its data is
    /// cold.
    pub fn cold_before(&self, segment_base: i64, size: u64) -> u64 {
        match self.get() {
            (base, _) if segment_base < base => size,
            (base, position) if segment_base == base => position.min(size),
            _ => 0,
        }
    }
}

/// A log's durable data not yet queued: from `from` in segment `segment_base` up to what
/// the last flush made durable.
#[derive(Debug)]
pub struct CacheTail {
    segment_base: i64,
    from: u64,
}

/// A segment as `CacheTail::flushed` needs it.
pub struct SegmentRange {
    pub base: i64,
    pub file: FileRef,
    pub size: u64,
}

impl CacheTail {
    pub(super) fn at(end: OffsetPosition) -> CacheTail {
        CacheTail {
            segment_base: end.segment_base,
            from: end.position,
        }
    }

    /// After a cut-back to `end`: the tail starts there (bytes before it were queued; those
    /// after it are gone).
    pub(super) fn cut_back_to(&mut self, end: OffsetPosition) {
        if (end.segment_base, end.position) < (self.segment_base, self.from) {
            self.segment_base = end.segment_base;
            self.from = end.position;
        }
    }

    /// The segment this tail starts in; `flushed` wants the segments from here.
    pub fn segment_base(&self) -> i64 {
        self.segment_base
    }

    /// A flush made everything up to `end` durable; `segments` are the log's segments from
    /// the tail's up to `end`'s, in order. Returns the ranges to queue: whole rolled
    /// segments (the rest of them), and the active segment's new data once it is a queue
    /// piece long.
    fn flushed(
        &mut self,
        segments: impl IntoIterator<Item = SegmentRange>,
        end: OffsetPosition,
        mark: &Arc<ColdMark>,
    ) -> Vec<CachedRange> {
        let mut out = Vec::new();
        let mut push = |s: &SegmentRange, start: u64, end: u64| {
            if end > start {
                out.push(CachedRange {
                    file: Arc::downgrade(&s.file),
                    segment_base: s.base,
                    start,
                    len: end - start,
                    mark: mark.clone(),
                });
            }
        };
        for s in segments {
            if s.base > end.segment_base {
                break;
            }
            let from = if s.base == self.segment_base {
                self.from.min(s.size)
            } else {
                0
            };
            if s.base < end.segment_base {
                push(&s, from, s.size);
                continue;
            }
            // The active segment (a cut-back may have shortened it below `from`).
            let to = end.position.min(s.size);
            let from = from.min(to);
            if to - from >= QUEUE_PIECE {
                push(&s, from, to);
                self.from = to;
            } else {
                self.from = from;
            }
            self.segment_base = s.base;
        }
        out
    }
}

/// A log's share of the broker's page cache.
#[derive(Debug)]
pub struct LogCache {
    pub cache: Arc<PageCache>,
    pub mark: Arc<ColdMark>,
}

impl LogCache {
    /// Moves `tail` on for a flush up to `end` (`segments`: the log's segments from the
    /// tail's on) and returns what became whole pieces, for [`LogCache::admit`]. Cheap:
    /// call it under the log's lock.
    pub(super) fn flushed(
        &self,
        tail: &mut CacheTail,
        segments: impl IntoIterator<Item = SegmentRange>,
        end: OffsetPosition,
    ) -> Vec<CachedRange> {
        if self.cache.budget.is_none() {
            return Vec::new();
        }
        tail.flushed(segments, end, &self.mark)
    }

    /// Queues `ranges` in the broker's budget; the evictions this causes happen here
    /// (blocking: call it off the runtime's workers, after producers were answered).
    pub fn admit(&self, ranges: Vec<CachedRange>) {
        if !ranges.is_empty() {
            self.cache.admit(ranges);
        }
    }

    /// After a cut-back to `end`: the log's queued ranges past it are forgotten (their
    /// bytes are gone; evicting them later would mark new data cold) and its mark comes
    /// back to `end`. Rare (a failed fsync): a walk of the whole queue is fine.
    pub(super) fn cut_back(&self, end: OffsetPosition) {
        let at = (end.segment_base, end.position);
        {
            let mut q = self.cache.lock();
            let mut bytes = 0;
            q.ranges.retain_mut(|r| {
                if Arc::ptr_eq(&r.mark, &self.mark) && (r.segment_base, r.start + r.len) > at {
                    if (r.segment_base, r.start) >= at {
                        return false;
                    }
                    r.len = end.position - r.start;
                }
                bytes += r.len;
                true
            });
            q.bytes = bytes;
        }
        self.mark.lower_to(end);
    }

    /// Where reads of segment `base` (`size` bytes) stop finding their data cached; 0
    /// when nothing is ever evicted.
    pub fn cold_before(&self, base: i64, size: u64) -> u64 {
        match self.cache.budget {
            None => 0,
            Some(_) => self.mark.cold_before(base, size),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::simulated::SimulatedStorage;
    use crate::storage::OpenMode;
    use std::path::Path;

    fn file(sim: &SimulatedStorage, name: &str) -> FileRef {
        sim.shared()
            .open(Path::new(name), OpenMode::Truncate)
            .unwrap()
    }

    fn end(segment_base: i64, position: u64) -> OffsetPosition {
        OffsetPosition {
            offset: 0,
            segment_base,
            position,
        }
    }

    fn log(cache: &Arc<PageCache>) -> (LogCache, CacheTail) {
        let log = LogCache {
            cache: cache.clone(),
            mark: ColdMark::at(end(0, 0)),
        };
        (log, CacheTail::at(end(0, 0)))
    }

    /// One flush of a log whose segments are (base, file, size).
    fn flush(
        log: &LogCache,
        tail: &mut CacheTail,
        segments: &[(i64, &FileRef, u64)],
        to: OffsetPosition,
    ) {
        let segments = segments.iter().map(|(base, file, size)| SegmentRange {
            base: *base,
            file: (*file).clone(),
            size: *size,
        });
        let ranges = log.flushed(tail, segments, to);
        log.admit(ranges);
    }

    #[test]
    fn the_oldest_ranges_of_any_log_leave_first_once_over_budget() {
        let sim = SimulatedStorage::new(1);
        sim.create_dir_all_durable(Path::new("/d"));
        let cache = PageCache::new(Some(3 * QUEUE_PIECE));
        let (a, b) = (file(&sim, "/d/a"), file(&sim, "/d/b"));
        let ((log_a, mut tail_a), (log_b, mut tail_b)) = (log(&cache), log(&cache));
        // Less than a piece waits in the tail.
        flush(&log_a, &mut tail_a, &[(0, &a, 100)], end(0, 100));
        assert_eq!(cache.queued_bytes(), 0);
        // a: two pieces, then b: one and another; four pieces are one over the budget, and
        // a's, the oldest, leave.
        let p = QUEUE_PIECE;
        flush(&log_a, &mut tail_a, &[(0, &a, 2 * p)], end(0, 2 * p));
        flush(&log_b, &mut tail_b, &[(0, &b, p)], end(0, p));
        assert!(sim.evictions(Path::new("/d/a")).is_empty());
        flush(&log_b, &mut tail_b, &[(0, &b, 2 * p)], end(0, 2 * p));
        assert_eq!(cache.queued_bytes(), 2 * p);
        assert_eq!(sim.evictions(Path::new("/d/a")), vec![(0, 2 * p)]);
        assert!(sim.evictions(Path::new("/d/b")).is_empty());
        assert_eq!(log_a.cold_before(0, 3 * p), 2 * p);
        assert_eq!(log_b.cold_before(0, 3 * p), 0);
    }

    #[test]
    fn a_rolled_segment_is_queued_whole_and_a_deleted_one_leaves_without_advice() {
        let sim = SimulatedStorage::new(1);
        sim.create_dir_all_durable(Path::new("/d"));
        let p = QUEUE_PIECE;
        let cache = PageCache::new(Some(2 * p));
        let (log, mut tail) = log(&cache);
        let (old, new) = (file(&sim, "/d/0"), file(&sim, "/d/10"));
        flush(&log, &mut tail, &[(0, &old, 100)], end(0, 100));
        // The segment rolled at 150 bytes; the new one has 10.
        flush(
            &log,
            &mut tail,
            &[(0, &old, 150), (10, &new, 10)],
            end(10, 10),
        );
        assert_eq!(cache.queued_bytes(), 150);
        assert_eq!(tail.segment_base(), 10);
        // Retention deletes the old segment: its range leaves the queue at the next flush,
        // with no advice to give, and the reads of the segment count as cold.
        drop(old);
        flush(&log, &mut tail, &[(10, &new, p + 10)], end(10, p + 10));
        assert_eq!(cache.queued_bytes(), p + 10);
        assert!(sim.evictions(Path::new("/d/0")).is_empty());
        assert_eq!(log.cold_before(0, 150), 150);
        assert_eq!(log.cold_before(10, p + 10), 0);
    }

    #[test]
    fn a_cut_back_moves_the_tail_back_to_the_new_end() {
        let sim = SimulatedStorage::new(1);
        sim.create_dir_all_durable(Path::new("/d"));
        let p = QUEUE_PIECE;
        let cache = PageCache::new(Some(10 * p));
        let (log, mut tail) = log(&cache);
        let f = file(&sim, "/d/0");
        flush(&log, &mut tail, &[(0, &f, p)], end(0, p));
        flush(&log, &mut tail, &[(0, &f, p / 2)], end(0, p / 2));
        flush(&log, &mut tail, &[(0, &f, p + p / 2)], end(0, p + p / 2));
        assert_eq!(cache.queued_bytes(), 2 * p);
    }

    #[test]
    fn after_a_cut_back_new_data_is_neither_cold_nor_skipped() {
        let sim = SimulatedStorage::new(1);
        sim.create_dir_all_durable(Path::new("/d"));
        let p = QUEUE_PIECE;
        let cache = PageCache::new(Some(p));
        let (log, mut tail) = log(&cache);
        let f = file(&sim, "/d/0");
        flush(&log, &mut tail, &[(0, &f, 2 * p)], end(0, 2 * p));
        flush(&log, &mut tail, &[(0, &f, 3 * p)], end(0, 3 * p));
        assert_eq!(log.cold_before(0, 3 * p), 2 * p);
        // A failed fsync cuts the log back to p: what is written from there is new.
        tail.cut_back_to(end(0, p));
        log.cut_back(end(0, p));
        assert_eq!(
            cache.queued_bytes(),
            0,
            "the range past the cut is forgotten"
        );
        assert_eq!(log.cold_before(0, 3 * p), p);
        flush(&log, &mut tail, &[(0, &f, 2 * p)], end(0, 2 * p));
        assert_eq!(cache.queued_bytes(), p);
        assert_eq!(
            log.cold_before(0, 2 * p),
            p,
            "the rewritten range is not cold"
        );
    }

    #[test]
    fn a_deleted_files_ranges_stop_counting_against_the_budget() {
        let sim = SimulatedStorage::new(1);
        sim.create_dir_all_durable(Path::new("/d"));
        let p = QUEUE_PIECE;
        let cache = PageCache::new(Some(1 << 40));
        let ((old_log, mut old_tail), (log, mut tail)) = (log(&cache), log(&cache));
        let gone = file(&sim, "/d/gone");
        flush(&old_log, &mut old_tail, &[(0, &gone, 4 * p)], end(0, 4 * p));
        drop(gone);
        let f = file(&sim, "/d/live");
        for i in 1..=u64::from(SWEEP_EVERY) {
            flush(&log, &mut tail, &[(0, &f, i * p)], end(0, i * p));
        }
        assert_eq!(cache.queued_bytes(), u64::from(SWEEP_EVERY) * p);
    }

    #[test]
    fn without_a_budget_nothing_is_queued_or_cold() {
        let cache = PageCache::new(None);
        let log = LogCache {
            cache: cache.clone(),
            mark: ColdMark::at(end(5, 100)),
        };
        let mut tail = CacheTail::at(end(5, 100));
        let sim = SimulatedStorage::new(1);
        sim.create_dir_all_durable(Path::new("/d"));
        let f = file(&sim, "/d/5");
        flush(
            &log,
            &mut tail,
            &[(5, &f, 100 + 2 * QUEUE_PIECE)],
            end(5, 100 + 2 * QUEUE_PIECE),
        );
        assert_eq!(cache.queued_bytes(), 0);
        assert_eq!(log.cold_before(0, 1000), 0);
    }
}
