//! Fetch reads, into memory or as file ranges: wherever the offset and byte limits fall, a read returns
//! exactly the whole batches a scan of the log would pick.

use crate::log::loader::RecoveryStart;
use crate::log::record_batch::{check_batch, BatchHeader};
use crate::log::tests::{batches, config, open, produce, txn_batch};

/// What a read from `offset` of at most `max_bytes` must return, found by scanning every
/// batch of `segments` (the whole log, segment by segment): in the first segment with a
/// batch holding `offset` or after it, whole batches below `upper` while they fit (the
/// first one always, if `min_one_batch`). A read never crosses segments.
fn expected(
    segments: &[Vec<u8>],
    offset: i64,
    max_bytes: usize,
    upper: i64,
    min_one: bool,
) -> Vec<u8> {
    for segment in segments {
        let all = batches(segment);
        let Some(first) = all.iter().position(|h| h.last_offset() >= offset) else {
            continue;
        };
        let from: usize = all[..first].iter().map(BatchHeader::size).sum();
        if all[first].base_offset >= upper || (all[first].size() > max_bytes && !min_one) {
            return Vec::new();
        }
        let mut taken = all[first].size();
        for h in &all[first + 1..] {
            if h.base_offset >= upper || taken + h.size() > max_bytes {
                break;
            }
            taken += h.size();
        }
        return segment[from..from + taken].to_vec();
    }
    Vec::new()
}

/// (first offset, next offset, bytes) of a read, for readable failures.
fn summary(records: &[u8]) -> (i64, i64, usize) {
    let all = batches(records);
    match (all.first(), all.last()) {
        (Some(f), Some(l)) => (f.base_offset, l.next_offset(), records.len()),
        _ => (-1, -1, 0),
    }
}

#[test]
fn reads_return_the_whole_batches_a_scan_picks_at_any_offset_and_limit() {
    for segment_bytes in [1 << 20, 2000] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(segment_bytes);
        cfg.index_interval_bytes = 300;
        let log = open(dir.path(), cfg, RecoveryStart::From(0));
        let payload = vec![7u8; 90];
        let mut next = 0i64;
        for i in 0..120usize {
            let records: Vec<&[u8]> = (0..=(i % 4)).map(|_| payload.as_slice()).collect();
            next = produce(&log, &records, 1).last_offset + 1;
        }
        // The rest is behind an open transaction: read_committed stops at its start.
        let lso = next;
        let b = txn_batch(&[b"open"], 9, 0);
        let h = check_batch(&b).unwrap();
        log.append(&b, &[h]).unwrap();
        log.flush_once().unwrap();
        for i in 0..10 {
            produce(&log, &[&payload], i);
        }
        let hw = log.high_watermark();
        // Each unbounded read from a segment's start returns that whole segment.
        let mut segments = Vec::new();
        let mut at = 0;
        while at < hw {
            let r = log.read(at, 1 << 30, true, false).unwrap();
            at = batches(&r.records).last().unwrap().next_offset();
            segments.push(r.records.to_vec());
        }
        assert_eq!(segments.len() > 1, segment_bytes < 1 << 20);
        for offset in [0, 1, 2, 57, 130, lso - 1, lso, lso + 3, hw - 1] {
            for max_bytes in [1, 100, 450, 1000, 2500, 7000, 1 << 20] {
                for (read_committed, upper) in [(false, hw), (true, lso)] {
                    for (min_one, in_file) in
                        [(true, false), (false, false), (true, true), (false, true)]
                    {
                        let r = log
                            .read_records(offset, max_bytes, min_one, read_committed, in_file)
                            .unwrap();
                        let records = r.records.into_bytes().unwrap();
                        let want = expected(&segments, offset, max_bytes, upper, min_one);
                        assert_eq!(
                            summary(&records),
                            summary(&want),
                            "segment.bytes {segment_bytes}, offset {offset}, max {max_bytes}, \
                             committed {read_committed}, min_one {min_one}, in file {in_file}"
                        );
                        assert_eq!(records.to_vec(), want);
                    }
                }
            }
        }
    }
}
