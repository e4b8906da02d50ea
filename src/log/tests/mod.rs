//! Segment-store tests: appends across segment rolls, reads by offset and size, lookups by
//! time, and recovery from torn and garbage tails through the loader.

use std::sync::Arc;

use super::loader::{load_log, RecoveryStart};
use super::record_batch::test_support::{batch, TestBatch};
use super::record_batch::{check_batch, BatchHeader};
use super::*;
use crate::config::{LogConfig, TimestampType};
use crate::storage::simulated::SimulatedStorage;

mod faults;

pub(super) fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        segment_ms: i64::MAX,
        index_interval_bytes: 64,
        flush_messages: 1,
        flush_ms: None,
        max_message_bytes: 1 << 20,
        message_timestamp_type: TimestampType::CreateTime,
        retention_ms: -1,
        retention_bytes: -1,
        cleanup_delete: true,
        cleanup_compact: false,
        compaction: crate::config::CompactionConfig::default(),
        page_cache: crate::log::page_cache::PageCache::new(None),
    }
}

fn tp() -> TopicPartition {
    TopicPartition {
        topic: "t".into(),
        partition: 0,
    }
}

pub(super) fn open(dir: &std::path::Path, cfg: LogConfig, recovery: RecoveryStart) -> Arc<Log> {
    let (log, _) = load_log(
        &crate::storage::file_system(),
        tp(),
        dir.join("t-0"),
        cfg,
        recovery,
        0,
    )
    .unwrap();
    Arc::new(log)
}

pub(super) fn produce(log: &Arc<Log>, values: &[&[u8]], ts: i64) -> AppendInfo {
    let b = batch(values, ts);
    let h = check_batch(&b).unwrap();
    let info = log.append(&b, &[h]).unwrap();
    log.flush_once().unwrap();
    info
}

pub(super) fn batches(bytes: &[u8]) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let h = check_batch(&bytes[at..]).unwrap();
        at += h.size();
        out.push(h);
    }
    out
}

#[test]
fn appends_roll_segments_and_reads_cross_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config(300), RecoveryStart::From(0));
    for i in 0..20i64 {
        let info = produce(&log, &[b"0123456789", b"abcdefghij"], 1000 + i);
        assert_eq!(info.base_offset, i * 2);
    }
    assert_eq!(log.log_end_offset(), 40);
    assert_eq!(log.high_watermark(), 40);
    let segments = std::fs::read_dir(dir.path().join("t-0"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().unwrap() == "log")
        .count();
    assert!(segments > 3, "expected several segments, got {segments}");
    // Every offset is readable, from the batch that holds it.
    for offset in 0..40 {
        let r = log.read(offset, 1 << 20, true, false).unwrap();
        let hs = batches(&r.records);
        assert!(!hs.is_empty(), "offset {offset}");
        assert!(hs[0].base_offset <= offset && offset <= hs[0].last_offset());
    }
    // max_bytes is respected in whole batches, but one batch is always returned.
    let r = log.read(0, 1, true, false).unwrap();
    assert_eq!(batches(&r.records).len(), 1);
    let r = log.read(0, 1, false, false).unwrap();
    assert!(r.records.is_empty());
    // At the end: empty; past it: out of range.
    assert!(log.read(40, 1000, true, false).unwrap().records.is_empty());
    assert!(matches!(
        log.read(41, 1000, true, false),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn timestamps_are_found_through_the_time_index() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config(400), RecoveryStart::From(0));
    for i in 0..30i64 {
        produce(&log, &[b"x", b"y"], 10_000 + i * 10);
    }
    // Batch i holds timestamps 10000+10i and 10000+10i+1 at offsets 2i, 2i+1.
    let found = log.offset_for_timestamp(10_051).unwrap().unwrap();
    assert_eq!(found.offset, 11);
    assert_eq!(found.timestamp, 10_051);
    let found = log.offset_for_timestamp(10_052).unwrap().unwrap();
    assert_eq!(found.offset, 12);
    assert_eq!(log.offset_for_timestamp(0).unwrap().unwrap().offset, 0);
    assert!(log.offset_for_timestamp(99_999).unwrap().is_none());
    let max = log.max_timestamp_offset().unwrap().unwrap();
    assert_eq!((max.offset, max.timestamp), (59, 10_291));
}

#[test]
fn restart_after_clean_close_and_after_crash_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), config(500), RecoveryStart::From(0));
        for i in 0..25 {
            produce(&log, &[b"hello world"], i);
        }
        log.close().unwrap();
    }
    let log = open(dir.path(), config(500), RecoveryStart::CleanShutdown);
    assert_eq!(log.log_end_offset(), 25);
    assert_eq!(produce(&log, &[b"more"], 99).base_offset, 25);
    drop(log);
    let log = open(dir.path(), config(500), RecoveryStart::From(0));
    assert_eq!(log.log_end_offset(), 26);
    let r = log.read(25, 1000, true, false).unwrap();
    assert_eq!(batches(&r.records)[0].base_offset, 25);
}

#[test]
fn recovery_truncates_a_garbage_tail_and_drops_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), config(300), RecoveryStart::From(0));
        for i in 0..12 {
            produce(&log, &[b"0123456789012345678901234567890123456789"], i);
        }
    }
    let pdir = dir.path().join("t-0");
    let mut logs: Vec<_> = std::fs::read_dir(&pdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().unwrap() == "log")
        .collect();
    logs.sort();
    assert!(logs.len() >= 3);
    // Overwrite the middle of the second segment's last batch with garbage.
    let victim = &logs[1];
    let mut bytes = std::fs::read(victim).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n - 20..n - 10] {
        *b ^= 0x5a;
    }
    std::fs::write(victim, &bytes).unwrap();
    let (log, report) = load_log(
        &crate::storage::file_system(),
        tp(),
        pdir.clone(),
        config(300),
        RecoveryStart::From(0),
        0,
    )
    .unwrap();
    assert!(report.truncated_bytes > 0);
    assert_eq!(report.deleted_segments, logs.len() - 2);
    let end = log.log_end_offset();
    assert!(end > 0 && end < 12, "end {end}");
    // Every remaining offset reads back with a valid CRC.
    for offset in 0..end {
        let r = log.read(offset, 1 << 20, true, false).unwrap();
        assert!(!batches(&r.records).is_empty());
    }
}

#[test]
fn log_append_time_rewrites_the_stored_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(1 << 20);
    cfg.message_timestamp_type = TimestampType::LogAppendTime;
    let log = open(dir.path(), cfg, RecoveryStart::From(0));
    let info = produce(&log, &[b"a"], 5);
    assert!(info.log_append_time > 1_600_000_000_000);
    let r = log.read(0, 1000, true, false).unwrap();
    let h = batches(&r.records)[0];
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, info.log_append_time);
}

/// A retried idempotent batch is answered as Kafka answers a duplicate: the original's
/// offsets, and its stored max timestamp as the log append time (the original's append
/// time on a LogAppendTime topic, the client's timestamp on a CreateTime one), also after a
/// restart that reads the producer state from a snapshot.
#[test]
fn a_duplicate_is_answered_with_the_original_timestamp() {
    use super::record_batch::test_support::idempotent_batch;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(1 << 20);
    cfg.message_timestamp_type = TimestampType::LogAppendTime;
    let retry = |log: &Arc<Log>| {
        let b = idempotent_batch(&[b"a", b"b"], 5, 7, 0, 0);
        log.append(&b, &[check_batch(&b).unwrap()]).unwrap()
    };
    let log = open(dir.path(), cfg.clone(), RecoveryStart::From(0));
    let first = retry(&log);
    log.flush_once().unwrap();
    assert!(first.log_append_time > 1_600_000_000_000);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let again = retry(&log);
    assert_eq!(
        (again.base_offset, again.last_offset, again.log_append_time),
        (first.base_offset, first.last_offset, first.log_append_time)
    );
    log.close().unwrap();
    let log = open(dir.path(), cfg, RecoveryStart::CleanShutdown);
    assert_eq!(retry(&log).log_append_time, first.log_append_time);
    log.close().unwrap();
    // CreateTime: the batch's max timestamp, the client's.
    let create_time = open(dir.path(), config(1 << 20), RecoveryStart::CleanShutdown);
    let b = idempotent_batch(&[b"c"], 9, 8, 0, 0);
    let new = create_time.append(&b, &[check_batch(&b).unwrap()]).unwrap();
    assert_eq!(new.log_append_time, -1, "a new batch on a CreateTime topic");
    let again = create_time.append(&b, &[check_batch(&b).unwrap()]).unwrap();
    assert_eq!(
        (again.base_offset, again.log_append_time),
        (new.base_offset, 9)
    );
}

#[tokio::test]
async fn concurrent_durable_appends_share_fsyncs_and_all_complete() {
    let sim = SimulatedStorage::new(1);
    sim.create_dir_all_durable(std::path::Path::new("/data"));
    let (log, _) = load_log(
        &sim.shared(),
        tp(),
        std::path::PathBuf::from("/data/t-0"),
        config(1 << 20),
        RecoveryStart::From(0),
        0,
    )
    .unwrap();
    let log = Arc::new(log);
    let syncs_before = sim.data_syncs();
    // 50 appends before the (current-thread) runtime runs the flush task the first one
    // started: all of them wait on that one flush round.
    let mut waits = Vec::new();
    for i in 0..50 {
        let b = batch(&[b"payload"], i);
        let h = check_batch(&b).unwrap();
        let info = log.append(&b, &[h]).unwrap();
        let log = log.clone();
        waits.push(tokio::spawn(async move {
            log.wait_durable(&info).await.unwrap();
            info.base_offset
        }));
    }
    let mut offsets = Vec::new();
    for t in waits {
        offsets.push(t.await.unwrap());
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (0..50).collect::<Vec<_>>());
    assert_eq!(log.high_watermark(), 50);
    // Without group commit this would be one fsync per append (50).
    let syncs = sim.data_syncs() - syncs_before;
    assert_eq!(syncs, 1, "50 appends waiting together took {syncs} fsyncs");
}

/// A transactional batch of `values` from producer `pid` (sequence numbers from `seq`).
pub(super) fn txn_batch(values: &[&[u8]], pid: i64, seq: i32) -> Vec<u8> {
    TestBatch::new(values)
        .timestamp(1)
        .producer(pid, 0, seq)
        .transactional()
        .encode()
}

#[test]
fn open_transactions_bound_read_committed_and_aborts_are_listed_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config(1 << 20), RecoveryStart::From(0));
    let append = |b: Vec<u8>| {
        let h = check_batch(&b).unwrap();
        let info = log.append(&b, &[h]).unwrap();
        log.flush_once().unwrap();
        info
    };
    append(batch(&[b"plain"], 1)); // offset 0
    append(txn_batch(&[b"t1", b"t2"], 7, 0)); // offsets 1-2, open
    assert_eq!(log.last_stable_offset(), 1);
    let r = log.read(0, 1 << 20, true, true).unwrap();
    assert_eq!(
        batches(&r.records).len(),
        1,
        "read_committed stops at the open transaction"
    );
    assert!(log.read(0, 1 << 20, true, false).unwrap().records.len() > r.records.len());
    // Abort it: the marker takes offset 3, the range 1..=3 is reported to read_committed.
    assert_eq!(log.append_marker(7, 0, false).unwrap().base_offset, 3);
    log.flush_once().unwrap();
    assert_eq!(log.last_stable_offset(), 4);
    let r = log.read(0, 1 << 20, true, true).unwrap();
    assert_eq!(r.aborted.len(), 1);
    assert_eq!(
        (
            r.aborted[0].producer_id,
            r.aborted[0].first_offset,
            r.aborted[0].last_offset
        ),
        (7, 1, 3)
    );
    // A committed transaction is not listed.
    append(txn_batch(&[b"t3"], 7, 2));
    log.append_marker(7, 0, true).unwrap();
    log.flush_once().unwrap();
    assert_eq!(log.read(0, 1 << 20, true, true).unwrap().aborted.len(), 1);
    // After a crash (no snapshot): replay finds the same state.
    drop(log);
    let log = open(dir.path(), config(1 << 20), RecoveryStart::From(0));
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    assert_eq!(log.read(0, 1 << 20, true, true).unwrap().aborted.len(), 1);
}

#[test]
fn idempotent_producer_state_is_rebuilt_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let idem = |values: &[&[u8]], seq: i32| {
        TestBatch::new(values)
            .timestamp(1)
            .producer(9, 0, seq)
            .encode()
    };
    {
        let log = open(dir.path(), config(1 << 20), RecoveryStart::From(0));
        for (values, seq) in [(&[&b"a"[..], b"b", b"c"][..], 0), (&[&b"d"[..]][..], 3)] {
            let b = idem(values, seq);
            log.append(&b, &[check_batch(&b).unwrap()]).unwrap();
        }
        log.flush_once().unwrap();
    }
    let log = open(dir.path(), config(1 << 20), RecoveryStart::From(0));
    let gap = idem(&[b"x"], 10);
    assert!(matches!(
        log.append(&gap, &[check_batch(&gap).unwrap()]),
        Err(LogError::Producer(_))
    ));
    let dup = idem(&[b"d"], 3);
    assert_eq!(
        log.append(&dup, &[check_batch(&dup).unwrap()])
            .unwrap()
            .base_offset,
        3
    );
}

#[test]
fn retention_deletes_old_and_excess_segments_but_never_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(300);
    cfg.retention_ms = 1000;
    let log = open(dir.path(), cfg.clone(), RecoveryStart::From(0));
    // Old data (timestamps 0..), then recent data.
    for i in 0..10 {
        produce(&log, &[b"0123456789012345678901234567890123456789"], i);
    }
    let now = now_ms();
    for i in 0..10 {
        produce(
            &log,
            &[b"0123456789012345678901234567890123456789"],
            now + i,
        );
    }
    let deleted = log.apply_retention(now);
    assert!(deleted > 0);
    let start = log.log_start_offset();
    assert!(start > 0 && start <= 10, "old segments went: start {start}");
    assert!(matches!(
        log.read(0, 100, true, false),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(!log
        .read(start, 1 << 20, true, false)
        .unwrap()
        .records
        .is_empty());
    // Size: keep at most ~600 bytes; the active segment always stays.
    cfg.retention_ms = -1;
    cfg.retention_bytes = 600;
    log.set_config(cfg);
    log.apply_retention(now);
    assert!(log.size_bytes() <= 600 + 300);
    assert_eq!(log.log_end_offset(), 20);
    assert!(
        !std::fs::read_dir(dir.path().join("t-0")).unwrap().any(|e| e
            .unwrap()
            .path()
            .to_string_lossy()
            .ends_with(".deleted"))
    );
}

/// `log.cache.hot.bytes` is one budget for all logs: writes to one partition push an idle
/// partition's oldest data out of the page cache, and a read of that cold data drops what
/// it read while a read at the end does not.
#[test]
fn the_page_cache_budget_is_shared_by_all_logs_and_cold_reads_leave_no_cache() {
    use crate::log::page_cache::PageCache;
    use crate::storage::simulated::SimulatedStorage;
    let sim = SimulatedStorage::new(3);
    sim.create_dir_all_durable(std::path::Path::new("/data"));
    let mut cfg = config(64 << 20);
    cfg.page_cache = PageCache::new(Some(1 << 20));
    let open = |name: &str| {
        let dir = std::path::Path::new("/data").join(name);
        let (log, _) = load_log(
            &sim.shared(),
            tp(),
            dir,
            cfg.clone(),
            RecoveryStart::From(0),
            0,
        )
        .unwrap();
        Arc::new(log)
    };
    let (idle, busy) = (open("idle-0"), open("busy-0"));
    let value = vec![b'x'; 60 << 10];
    for i in 0..12 {
        produce(&idle, &[&value], i);
    }
    let idle_segment = file_names::log_file(std::path::Path::new("/data/idle-0"), 0);
    assert!(sim.evictions(&idle_segment).is_empty(), "within budget");
    assert!(cfg.page_cache.queued_bytes() <= 1 << 20);
    for i in 0..40 {
        produce(&busy, &[&value], i);
    }
    let evicted = sim.evictions(&idle_segment);
    assert!(
        !evicted.is_empty(),
        "the idle log's data left for the busy log's"
    );
    let mut covered = 0;
    for (start, len) in &evicted {
        assert_eq!(
            *start, covered,
            "oldest first, each range once: {evicted:?}"
        );
        covered += len;
    }
    assert!(cfg.page_cache.queued_bytes() <= 1 << 20);
    // A read at the busy log's end finds its data cached and leaves it there.
    let busy_segment = file_names::log_file(std::path::Path::new("/data/busy-0"), 0);
    let before = sim.evictions(&busy_segment).len();
    let tail = busy.read(39, 1 << 20, true, false).unwrap();
    assert!(!tail.records.is_empty());
    assert_eq!(
        sim.evictions(&busy_segment).len(),
        before,
        "tail reads stay cached"
    );
    // A read of the idle log's cold start drops what it read.
    let before = sim.evictions(&idle_segment).len();
    let cold = idle.read(0, 1 << 20, true, false).unwrap();
    assert!(!cold.records.is_empty());
    let after = sim.evictions(&idle_segment);
    assert_eq!(after.len(), before + 1);
    assert_eq!(
        after.last().unwrap().0,
        0,
        "dropped from where the read started"
    );
}

/// Kafka's time-based rolling (KIP-33): the age of a segment is measured in record
/// timestamps, from its first batch's to the incoming batch's. Found by the differential
/// runner: Kafka rolled where Gregor, counting wall-clock time, did not.
#[test]
fn segments_roll_by_record_timestamps_as_kafka_does() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        dir.path(),
        LogConfig {
            segment_ms: 1000,
            ..config(1 << 20)
        },
        RecoveryStart::From(0),
    );
    let segments = || {
        let mut bases: Vec<i64> = log.lock().segments.bases().collect();
        bases.sort_unstable();
        bases
    };
    produce(&log, &[b"a"], 5000);
    produce(&log, &[b"b"], 6000); // 1000 ms later: not more than segment.ms
    assert_eq!(segments(), vec![0]);
    produce(&log, &[b"c"], 6001); // 1001 ms after the first batch: a new segment
    assert_eq!(segments(), vec![0, 2]);
    // An old timestamp does not make the new segment due.
    produce(&log, &[b"d"], 10);
    assert_eq!(segments(), vec![0, 2]);
}

/// As in Kafka, a read_committed fetch lists only the aborted transactions that overlap the
/// batches it returns, not every one below the last stable offset.
#[test]
fn aborted_transactions_are_those_overlapping_the_returned_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config(1 << 20), RecoveryStart::From(0));
    let first = produce(&log, &[b"plain"], 1); // offset 0
    assert_eq!(first.base_offset, 0);
    let b = txn_batch(&[b"t1", b"t2"], 7, 0); // offsets 1-2
    let h = check_batch(&b).unwrap();
    log.append(&b, &[h]).unwrap();
    log.append_marker(7, 0, false).unwrap(); // abort marker at 3
    log.flush_once().unwrap();
    let one_batch = log.read(0, 1, true, true).unwrap();
    assert_eq!(batches(&one_batch.records).len(), 1);
    assert!(one_batch.aborted.is_empty(), "{:?}", one_batch.aborted);
    let all = log.read(0, 1 << 20, true, true).unwrap();
    assert_eq!(all.aborted.len(), 1);
    let from_the_marker = log.read(3, 1 << 20, true, true).unwrap();
    assert_eq!(
        from_the_marker.aborted.len(),
        1,
        "the marker closes the aborted range"
    );
}
