//! Cleaner tests on one log: only the latest record per key survives, offsets stay,
//! tombstones live exactly `delete.retention.ms` past the first cleaning, aborted
//! transactions go and read_committed state does not change, producers' state survives, and
//! a crash at any I/O operation of a cleaning recovers to old or new segments, never a mix
//! that loses or duplicates a record.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::{Cleaner, CleanerStats, OffsetMap, Throttler};
use crate::config::{CompactionConfig, LogConfig, TimestampType};
use crate::log::loader::{load_log, RecoveryStart};
use crate::log::record_batch::{check_batch, BatchHeader};
use crate::log::records::{control_marker, decode_key_values};
use crate::log::{Log, TopicPartition};
use crate::storage::simulated::SimulatedStorage;
use crate::test_batches::TestBatch;

const DIR: &str = "/d/c-0";
/// Tombstones and markers live this long (ms) after the first cleaning that keeps them.
const RETENTION: i64 = 1000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        segment_ms: i64::MAX,
        index_interval_bytes: 128,
        flush_messages: 1,
        flush_ms: None,
        max_message_bytes: 1 << 20,
        message_timestamp_type: TimestampType::CreateTime,
        retention_ms: -1,
        retention_bytes: -1,
        cleanup_delete: false,
        cleanup_compact: true,
        compaction: CompactionConfig {
            delete_retention_ms: RETENTION,
            min_cleanable_dirty_ratio: 0.0,
            ..CompactionConfig::default()
        },
        page_cache: crate::log::page_cache::PageCache::new(None),
    }
}

fn open(sim: &SimulatedStorage) -> Arc<Log> {
    open_after(sim, RecoveryStart::From(0))
}

fn open_after(sim: &SimulatedStorage, recovery: RecoveryStart) -> Arc<Log> {
    sim.create_dir_all_durable(Path::new(DIR));
    let tp = TopicPartition {
        topic: "c".into(),
        partition: 0,
    };
    let (log, _) = load_log(&sim.shared(), tp, DIR.into(), config(), recovery, 0).expect("load");
    Arc::new(log)
}

type Kv<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

fn append(log: &Arc<Log>, batch: Vec<u8>) {
    let h = check_batch(&batch).unwrap();
    log.append(&batch, &[h]).unwrap();
    log.flush_once().unwrap();
}

fn produce(log: &Arc<Log>, records: &[Kv<'_>]) {
    append(log, TestBatch::keyed(records).timestamp(1_000).encode());
}

/// `n` batches of 4 records each over `keys` keys; value `v<i>` for the i-th record.
fn fill(log: &Arc<Log>, n: usize, keys: usize) {
    let mut i = 0usize;
    for _ in 0..n {
        let owned: Vec<(Vec<u8>, Vec<u8>)> = (0..4)
            .map(|_| {
                i += 1;
                (
                    format!("k{}", i % keys).into_bytes(),
                    format!("v{i}").into_bytes(),
                )
            })
            .collect();
        let records: Vec<Kv<'_>> = owned
            .iter()
            .map(|(k, v)| (Some(&k[..]), Some(&v[..])))
            .collect();
        produce(log, &records);
    }
}

fn clean(log: &Arc<Log>, now: i64) -> Option<CleanerStats> {
    let plan = log.cleaning_plan(now).expect("a compacted log");
    let mut map = OffsetMap::with_memory(1 << 20, 0.9);
    let throttler = Throttler::new(f64::MAX);
    let stop = AtomicBool::new(false);
    let mut cleaner = Cleaner {
        map: &mut map,
        throttler: &throttler,
        stop: &stop,
        io_chunk: super::DEFAULT_IO_CHUNK,
    };
    cleaner.clean(log, &plan, now).expect("clean")
}

/// A record as read back: offset, key, value.
type Stored = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// Every stored batch, in order.
fn batches(log: &Log) -> Vec<(BatchHeader, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let read = log.read(offset, 1 << 20, true, false).unwrap();
        let bytes = read.records;
        let mut at = 0;
        while at < bytes.len() {
            let h = check_batch(&bytes[at..]).expect("stored batches pass their CRC");
            out.push((h, bytes[at..at + h.size()].to_vec()));
            offset = h.next_offset();
            at += h.size();
        }
        if bytes.is_empty() {
            break;
        }
    }
    out
}

fn records(log: &Log) -> Vec<Stored> {
    batches(log)
        .iter()
        .filter(|(h, _)| !h.is_control())
        .flat_map(|(_, b)| decode_key_values(b).unwrap())
        .map(|kv| (kv.offset, kv.key, kv.value))
        .collect()
}

/// What a read_committed consumer restoring a table from the log ends with.
fn committed_state(log: &Log) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let aborted = log
        .read(log.log_start_offset(), 1, true, true)
        .unwrap()
        .aborted;
    let mut state = BTreeMap::new();
    for (h, b) in batches(log) {
        if h.is_control() {
            continue;
        }
        let is_aborted = h.is_transactional()
            && aborted.iter().any(|a| {
                a.producer_id == h.producer_id
                    && (a.first_offset..=a.last_offset).contains(&h.base_offset)
            });
        if is_aborted {
            continue;
        }
        for kv in decode_key_values(&b).unwrap() {
            let key = kv.key.expect("keyed");
            match kv.value {
                Some(v) => state.insert(key, v),
                None => state.remove(&key),
            };
        }
    }
    state
}

fn latest_per_key(records: &[Stored]) -> BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)> {
    let mut latest = BTreeMap::new();
    for (offset, key, value) in records {
        latest.insert(key.clone().unwrap(), (*offset, value.clone()));
    }
    latest
}

fn segment_count(log: &Log) -> usize {
    log.lock().segments.len()
}

#[test]
fn only_the_latest_record_of_each_key_survives_at_its_offset() {
    let sim = SimulatedStorage::new(1);
    let log = open(&sim);
    fill(&log, 60, 10);
    let before = records(&log);
    let segments_before = segment_count(&log);
    let size_before = log.size_bytes();
    let plan = log.cleaning_plan(0).unwrap();
    assert!(plan.is_due() && plan.dirty_ratio > 0.9, "{plan:?}");
    let stats = clean(&log, 0).expect("cleaned");
    log.check_consistency().unwrap();
    let after = records(&log);
    assert!(stats.size_after * 5 < stats.size_before, "{stats:?}");
    assert!(log.size_bytes() < size_before);
    // Groups are sized by what the segments held before: the next cleaning merges the
    // small cleaned segments into one.
    let merged = clean(&log, 0).expect("cleaned again");
    assert!(merged.segments_after < merged.segments_before, "{merged:?}");
    assert!(segment_count(&log) < segments_before);
    // The cleaned part holds one record per key, the latest; the active segment is as it was.
    let cleaned_to = stats.cleaned_to;
    assert_eq!(log.cleaner_checkpoint(), cleaned_to);
    let cleaned: Vec<&Stored> = after.iter().filter(|r| r.0 < cleaned_to).collect();
    let keys: BTreeSet<_> = cleaned.iter().map(|r| r.1.clone()).collect();
    assert_eq!(keys.len(), cleaned.len(), "one record per key: {cleaned:?}");
    assert_eq!(latest_per_key(&after), latest_per_key(&before));
    let tail = |rs: &[Stored]| {
        rs.iter()
            .filter(|r| r.0 >= cleaned_to)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(tail(&after), tail(&before));
    // Every survivor is the record that was at its offset: offsets never move.
    for r in &after {
        assert!(before.contains(r), "{r:?} was not in the log before");
    }
    // Nothing new to clean: the next pass does nothing.
    assert!(!log.cleaning_plan(0).unwrap().is_due());
    // The log reopens to the same records.
    drop(log);
    let log = open(&sim);
    assert_eq!(records(&log), after);
}

#[test]
fn tombstones_survive_delete_retention_after_the_first_cleaning_and_then_go() {
    let sim = SimulatedStorage::new(2);
    let log = open(&sim);
    fill(&log, 20, 5);
    produce(&log, &[(Some(b"k1"), None), (Some(b"k2"), None)]);
    fill(&log, 20, 3); // k0..k2 again: k1 and k2 come back after their tombstones
    produce(&log, &[(Some(b"k4"), None)]);
    fill(&log, 30, 1); // only k0 from here on, to roll segments past the tombstone
    let t0 = 1_000_000;
    clean(&log, t0).expect("first cleaning");
    let has_tombstone = |log: &Log| {
        records(log)
            .iter()
            .any(|r| r.1.as_deref() == Some(b"k4") && r.2.is_none())
    };
    assert!(has_tombstone(&log), "kept by the first cleaning");
    assert!(!records(&log)
        .iter()
        .any(|r| r.1.as_deref() == Some(b"k4") && r.2.is_some()));
    let plan = log.cleaning_plan(t0 + RETENTION - 1).unwrap();
    assert!(!plan.is_due(), "nothing is due before the horizon");
    clean(&log, t0 + RETENTION - 1);
    assert!(has_tombstone(&log), "kept until the horizon");
    let plan = log.cleaning_plan(t0 + RETENTION).unwrap();
    assert!(
        plan.forced && plan.is_due(),
        "the passed horizon makes the log due"
    );
    clean(&log, t0 + RETENTION).expect("cleaning after the horizon");
    assert!(!has_tombstone(&log), "gone once the horizon passed");
    log.check_consistency().unwrap();
    // k1 and k2 live again with their later values.
    let latest = latest_per_key(&records(&log));
    assert!(latest[&b"k1".to_vec()].1.is_some() && latest[&b"k2".to_vec()].1.is_some());
    assert!(!latest.contains_key(b"k4".as_slice()));
}

fn txn(records: &[Kv<'_>], pid: i64, seq: i32) -> Vec<u8> {
    TestBatch::keyed(records)
        .timestamp(1_000)
        .producer(pid, 0, seq)
        .transactional()
        .encode()
}

#[test]
fn aborted_transactions_go_and_read_committed_state_does_not_change() {
    let sim = SimulatedStorage::new(3);
    let log = open(&sim);
    fill(&log, 10, 4);
    // Producer 7 commits k0 = committed, producer 8 aborts k1 = aborted.
    append(&log, txn(&[(Some(b"k0"), Some(b"committed"))], 7, 0));
    append(&log, txn(&[(Some(b"k1"), Some(b"aborted"))], 8, 0));
    log.append_marker(7, 0, true).unwrap();
    log.append_marker(8, 0, false).unwrap();
    fill(&log, 30, 2); // k0 and k1 overwritten; rolls segments past the markers
                       // Each producer's last batch is kept (as an empty batch at least), and so is the marker
                       // of its transaction: later transactions leave the first ones unpinned.
    append(&log, txn(&[(Some(b"t7"), Some(b"later"))], 7, 1));
    append(&log, txn(&[(Some(b"t8"), Some(b"later"))], 8, 1));
    log.append_marker(7, 0, true).unwrap();
    log.append_marker(8, 0, true).unwrap();
    fill(&log, 30, 2);
    let state = committed_state(&log);
    assert!(!state.values().any(|v| v == b"aborted"));
    assert_eq!(
        state.get(b"t7".as_slice()).map(Vec::as_slice),
        Some(&b"later"[..])
    );
    let markers = |log: &Log| {
        batches(log)
            .iter()
            .filter(|(h, b)| h.is_control() && control_marker(b).is_some())
            .count()
    };
    assert_eq!(markers(&log), 4);
    clean(&log, 0).expect("cleaned");
    log.check_consistency().unwrap();
    assert_eq!(
        committed_state(&log),
        state,
        "read_committed state across cleaning"
    );
    let values: Vec<_> = records(&log).into_iter().filter_map(|r| r.2).collect();
    assert!(
        !values.contains(&b"aborted".to_vec()),
        "aborted data is gone"
    );
    assert!(!values.contains(&b"committed".to_vec()), "overwritten");
    assert_eq!(markers(&log), 4, "markers stay until their horizon");
    clean(&log, RETENTION).expect("cleaned after the horizon");
    assert_eq!(committed_state(&log), state);
    assert_eq!(
        markers(&log),
        2,
        "markers of transactions without data left go"
    );
    // The markers left are pinned by their producers' last batches: they get no horizon,
    // so no cleaning is forced for them (a passed horizon there made the cleaner spin).
    for later in [RETENTION + 1, 100 * RETENTION] {
        let plan = log.cleaning_plan(later).unwrap();
        assert!(!plan.forced && !plan.is_due(), "{plan:?}");
    }
    assert!(
        log.lock().aborted.is_empty(),
        "the removed abort is forgotten"
    );
    log.check_consistency().unwrap();
    drop(log);
    let log = open(&sim);
    assert_eq!(committed_state(&log), state, "after a restart too");
    assert!(log.lock().aborted.is_empty());
}

#[test]
fn a_producers_last_batch_survives_empty_so_its_sequence_goes_on() {
    let sim = SimulatedStorage::new(4);
    let log = open(&sim);
    let idempotent = |seq: i32, value: &'static [u8]| {
        TestBatch::keyed(&[(Some(b"p"), Some(value))])
            .timestamp(1_000)
            .producer(42, 3, seq)
            .encode()
    };
    append(&log, idempotent(0, b"old"));
    fill(&log, 30, 1); // k0 only; the producer's key p is overwritten next
    produce(&log, &[(Some(b"p"), Some(b"newer"))]);
    fill(&log, 30, 1);
    clean(&log, 0).expect("cleaned");
    assert!(!records(&log).iter().any(|r| r.2.as_deref() == Some(b"old")));
    let kept = batches(&log)
        .into_iter()
        .find(|(h, _)| h.producer_id == 42)
        .expect("the producer's last batch is kept");
    assert_eq!((kept.0.records_count, kept.0.base_sequence), (0, 0));
    drop(log);
    let log = open(&sim);
    // A retry of sequence 0 is a duplicate; sequence 1 goes on.
    let retry = idempotent(0, b"old");
    let info = log.append(&retry, &[check_batch(&retry).unwrap()]).unwrap();
    assert_eq!(
        info.base_offset, kept.0.base_offset,
        "a duplicate gets its original offset"
    );
    let next = idempotent(1, b"next");
    log.append(&next, &[check_batch(&next).unwrap()])
        .expect("sequence 1 follows");
}

/// The crash test: for every I/O operation of a cleaning, crash there, lose power, reopen.
/// What survives holds every record the cleaning kept and nothing that was not in the log
/// before; offsets stay increasing and every batch passes its CRC.
#[test]
fn a_crash_at_any_step_of_a_cleaning_loses_and_duplicates_nothing() {
    let build = |seed: u64| {
        let sim = SimulatedStorage::new(seed);
        let log = open(&sim);
        fill(&log, 40, 6);
        produce(&log, &[(Some(b"k1"), None)]);
        fill(&log, 20, 2);
        log.close().unwrap();
        drop(log);
        (sim.clone(), open(&sim))
    };
    let (sim, log) = build(100);
    let original: BTreeSet<Stored> = records(&log).into_iter().collect();
    let start = sim.ops();
    clean(&log, 0).expect("cleaned");
    let total_ops = sim.ops() - start;
    let cleaned: BTreeSet<Stored> = records(&log).into_iter().collect();
    assert!(cleaned.len() < original.len());
    assert!(total_ops > 10, "{total_ops}");
    for crash in 0..total_ops {
        let (sim, log) = build(100 + crash);
        sim.crash_at(sim.ops() + crash);
        let plan = log.cleaning_plan(0).unwrap();
        let mut map = OffsetMap::with_memory(1 << 20, 0.9);
        let throttler = Throttler::new(f64::MAX);
        let stop = AtomicBool::new(false);
        let _crashed = Cleaner {
            map: &mut map,
            throttler: &throttler,
            stop: &stop,
            io_chunk: super::DEFAULT_IO_CHUNK,
        }
        .clean(&log, &plan, 0);
        drop(log);
        sim.power_loss();
        let log = open(&sim);
        log.check_consistency()
            .unwrap_or_else(|e| panic!("crash at op {crash}: {e}"));
        let recovered: BTreeSet<Stored> = records(&log).into_iter().collect();
        assert!(
            cleaned.is_subset(&recovered),
            "crash at op {crash}: lost {:?}",
            cleaned.difference(&recovered).collect::<Vec<_>>()
        );
        assert!(
            recovered.is_subset(&original),
            "crash at op {crash}: invented {:?}",
            recovered.difference(&original).collect::<Vec<_>>()
        );
        let offsets: Vec<i64> = records(&log).iter().map(|r| r.0).collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "crash at op {crash}: duplicated offsets"
        );
        // And a cleaning after the restart finishes the job.
        clean(&log, 0);
        let finished: BTreeSet<Stored> = records(&log).into_iter().collect();
        assert_eq!(finished, cleaned, "crash at op {crash}: cleaning again");
    }
}

fn write_file(sim: &SimulatedStorage, path: &Path, bytes: &[u8]) {
    let storage = sim.shared();
    let file = storage
        .open(path, crate::storage::OpenMode::Truncate)
        .unwrap();
    file.write_all_at(&[bytes], 0).unwrap();
    file.sync_data().unwrap();
    storage.sync_dir(Path::new(DIR)).unwrap();
}

/// Start-up finishes a swap only if it still covers whole segments: a stale one (left by a
/// failed swap whose undo failed too, after later cleanings merged its range) is removed.
/// And a segment with cleaner leftovers gets its indexes rebuilt, since the renames of a
/// swap may have reached the disk one without the other.
#[test]
fn start_up_discards_a_stale_swap_and_rebuilds_indexes_beside_leftovers() {
    use crate::log::file_names;
    let sim = SimulatedStorage::new(5);
    let log = open_after(&sim, RecoveryStart::CleanShutdown);
    fill(&log, 60, 10);
    let storage = sim.shared();
    let dir = Path::new(DIR);
    let first_log = storage.read(&file_names::log_file(dir, 0)).unwrap();
    let first_index = storage.read(&file_names::index_file(dir, 0)).unwrap();
    clean(&log, 0).expect("cleaned");
    clean(&log, 0).expect("merged");
    let expected = records(&log);
    log.close().unwrap();
    drop(log);
    // The original first segment as a swap: it covers less than today's merged segment 0.
    write_file(
        &sim,
        &file_names::with_suffix(&file_names::log_file(dir, 0), ".swap"),
        &first_log,
    );
    let log = open_after(&sim, RecoveryStart::CleanShutdown);
    log.check_consistency().unwrap();
    assert_eq!(records(&log), expected, "the stale swap changed nothing");
    assert!(!storage.exists(&file_names::with_suffix(
        &file_names::log_file(dir, 0),
        ".swap"
    )));
    log.close().unwrap();
    drop(log);
    // The old segment's index beside the cleaned log, and a `.deleted` leftover.
    write_file(&sim, &file_names::index_file(dir, 0), &first_index);
    write_file(
        &sim,
        &file_names::deleted(&file_names::index_file(dir, 0)),
        b"",
    );
    let log = open_after(&sim, RecoveryStart::CleanShutdown);
    log.check_consistency().unwrap();
    assert_eq!(records(&log), expected);
}

/// `cleanup.policy=compact,delete`: retention deletes old segments of a compacted log and
/// the cleaner carries on from the new log start (a windowed store's changelog).
#[test]
fn compact_and_delete_both_apply() {
    let sim = SimulatedStorage::new(6);
    sim.create_dir_all_durable(Path::new(DIR));
    let mut cfg = config();
    cfg.cleanup_delete = true;
    cfg.retention_ms = 10_000;
    let tp = TopicPartition {
        topic: "c".into(),
        partition: 0,
    };
    let (log, _) = load_log(
        &sim.shared(),
        tp,
        DIR.into(),
        cfg,
        RecoveryStart::From(0),
        0,
    )
    .unwrap();
    let log = Arc::new(log);
    // Old records (timestamp 1 000), then new ones (timestamp 100 000).
    fill(&log, 30, 5);
    for _ in 0..30 {
        append(
            &log,
            TestBatch::keyed(&[(Some(b"k1"), Some(b"new")), (Some(b"k2"), Some(b"new"))])
                .timestamp(100_000)
                .encode(),
        );
    }
    clean(&log, 50_000).expect("cleaned");
    assert!(log.apply_retention(50_000) > 0, "old segments expire");
    assert!(log.log_start_offset() > 0);
    let plan = log.cleaning_plan(50_000).unwrap();
    assert!(plan.first_dirty >= log.log_start_offset());
    log.check_consistency().unwrap();
    let latest = latest_per_key(&records(&log));
    assert_eq!(latest[b"k1".as_slice()].1.as_deref(), Some(&b"new"[..]));
    assert!(records(&log).iter().all(|r| r.0 >= log.log_start_offset()));
}
