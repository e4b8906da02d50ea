//! `make bench-cleaner` (and part of `make bench`): the log cleaner's throughput and the
//! space it reclaims. One partition on the real file system gets `RECORDS` records (default
//! 1,000,000) over `KEYS` keys (default 10,000), 100-byte values in batches of 100, in
//! 16 MiB segments; then one cleaning runs and its figures are printed as RESULT lines:
//! MB/s of dirty log cleaned (wall clock of the cleaning), bytes before and after.
//!
//! Environment: RECORDS, KEYS, SEGMENT_BYTES, COMPRESSION (none, lz4, zstd, gzip, snappy;
//! compressed batches are small: lower SEGMENT_BYTES so that there are sealed segments),
//! BENCH_DIR (a directory on the disk to measure; default the system's temp dir).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use gregor::config::{CompactionConfig, LogConfig, TimestampType};
use gregor::log::cleaner::{Cleaner, OffsetMap, Throttler};
use gregor::log::loader::{load_log, RecoveryStart};
use gregor::log::record_batch::check_batch;
use gregor::log::{now_ms, TopicPartition};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn compression() -> Compression {
    match std::env::var("COMPRESSION").as_deref() {
        Ok("lz4") => Compression::Lz4,
        Ok("zstd") => Compression::Zstd,
        Ok("gzip") => Compression::Gzip,
        Ok("snappy") => Compression::Snappy,
        _ => Compression::None,
    }
}

fn batch(first: usize, count: usize, keys: usize, compression: Compression) -> Vec<u8> {
    let value = vec![b'v'; 100];
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let n = first + i;
            // Keys in a scattered order, every key as often as the others.
            let key = format!("key-{:08}", (n * 7919) % keys);
            gregor::log::records::plain_record(
                i as i64,
                1_700_000_000_000 + n as i64,
                Some(Bytes::from(key)),
                Some(Bytes::from(value.clone())),
                kafka_protocol::indexmap::IndexMap::default(),
            )
        })
        .collect();
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut out, &records, &options).expect("encode");
    out.to_vec()
}

fn main() {
    let records = env("RECORDS", 1_000_000);
    let keys = env("KEYS", 10_000).max(1);
    let compression = compression();
    let base = std::env::var("BENCH_DIR").map_or_else(|_| std::env::temp_dir(), Into::into);
    let dir = tempfile::tempdir_in(base).expect("temp dir");
    let config = LogConfig {
        segment_bytes: env("SEGMENT_BYTES", 16 << 20) as u64,
        segment_ms: i64::MAX,
        index_interval_bytes: 4096,
        flush_messages: u64::MAX,
        flush_ms: None,
        max_message_bytes: 1 << 20,
        message_timestamp_type: TimestampType::CreateTime,
        retention_ms: -1,
        retention_bytes: -1,
        cleanup_delete: false,
        cleanup_compact: true,
        compaction: CompactionConfig::default(),
        page_cache: gregor::log::page_cache::PageCache::new(None),
    };
    let tp = TopicPartition {
        topic: "bench".into(),
        partition: 0,
    };
    let storage = gregor::storage::file_system();
    let (log, _) = load_log(
        &storage,
        tp,
        dir.path().join("bench-0"),
        config,
        RecoveryStart::From(0),
        0,
    )
    .expect("open the log");
    let log = Arc::new(log);
    let per_batch = 100;
    let mut n = 0;
    while n < records {
        let count = per_batch.min(records - n);
        let b = batch(n, count, keys, compression);
        let h = check_batch(&b).expect("a valid batch");
        log.append(&b, &[h]).expect("append");
        n += count;
    }
    log.flush_once().expect("flush");
    let before = log.size_bytes();
    let plan = log.cleaning_plan(now_ms()).expect("a compacted log");
    let dirty = plan.dirty_bytes;
    let mut map = OffsetMap::with_memory(128 << 20, 0.9);
    let throttler = Throttler::new(f64::MAX);
    let stop = AtomicBool::new(false);
    let mut cleaner = Cleaner {
        map: &mut map,
        throttler: &throttler,
        stop: &stop,
        io_chunk: gregor::log::cleaner::DEFAULT_IO_CHUNK,
    };
    let started = Instant::now();
    let stats = cleaner
        .clean(&log, &plan, now_ms())
        .expect("clean")
        .expect("something to clean");
    let secs = started.elapsed().as_secs_f64();
    let after = log.size_bytes();
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "RESULT cleaner_throughput records={records} keys={keys} compression={compression:?} dirty_MB={:.1} seconds={secs:.2} MB_per_s={:.1}",
        mb(dirty),
        mb(dirty) / secs
    );
    println!(
        "RESULT cleaner_space log_before_MB={:.1} log_after_MB={:.1} reclaimed_pct={:.1} records_read={} records_kept={} segments={}->{}",
        mb(before),
        mb(after),
        100.0 * (1.0 - after as f64 / before as f64),
        stats.records_read,
        stats.records_kept,
        stats.segments_before,
        stats.segments_after
    );
    log.close().expect("close");
}
