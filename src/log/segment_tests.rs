//! LogSegment tests: recovery of garbage and torn tails, a clean open that trusts the
//! indexes, and recovery that resumes from an index entry at the recovery point.

use super::*;
use crate::log::record_batch::{assign_offset, test_support::batch};

fn append_batch(seg: &mut LogSegment, offset: i64, values: &[&[u8]], ts: i64) {
    let mut b = batch(values, ts);
    assign_offset(&mut b, offset, 0);
    let h = check_batch(&b).unwrap();
    seg.append(&[&b], &[h], 100).unwrap();
}

#[test]
fn recovery_truncates_garbage_and_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = LogSegment::create(&crate::storage::file_system(), dir.path(), 0).unwrap();
    for i in 0..10 {
        append_batch(
            &mut seg,
            i * 2,
            &[b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", b"b"],
            1000 + i,
        );
    }
    let good_size = seg.size();
    drop(seg);
    // Garbage after the last batch.
    let path = file_names::log_file(dir.path(), 0);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0xAB; 100]);
    std::fs::write(&path, &bytes).unwrap();
    let (seg, result) = LogSegment::open(
        &crate::storage::file_system(),
        dir.path(),
        0,
        Some(0),
        100,
        0,
    )
    .unwrap();
    let result = result.unwrap();
    assert_eq!(result.truncated_bytes, 100);
    assert_eq!(result.batches, 10);
    assert_eq!(seg.size(), good_size);
    assert_eq!(seg.next_offset(), 20);
    // A torn last batch (half written).
    drop(seg);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let (seg, result) = LogSegment::open(
        &crate::storage::file_system(),
        dir.path(),
        0,
        Some(0),
        100,
        0,
    )
    .unwrap();
    assert_eq!(result.unwrap().batches, 9);
    assert_eq!(seg.next_offset(), 18);
    assert!(seg.offset_index().len() > 1);
}

#[test]
fn clean_open_uses_indexes_and_finds_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = LogSegment::create(&crate::storage::file_system(), dir.path(), 100).unwrap();
    for i in 0..20 {
        append_batch(
            &mut seg,
            100 + i,
            &[b"0123456789012345678901234567890123456789"],
            5000 + i,
        );
    }
    let entries = seg.offset_index().len();
    drop(seg);
    let (seg, result) = LogSegment::open(
        &crate::storage::file_system(),
        dir.path(),
        100,
        None,
        100,
        0,
    )
    .unwrap();
    assert!(result.is_none(), "a clean segment needs no recovery");
    assert_eq!(seg.next_offset(), 120);
    assert_eq!(seg.offset_index().len(), entries);
    assert_eq!(seg.max_timestamp(), 5019);
    // A corrupted index is detected and rebuilt.
    drop(seg);
    std::fs::write(file_names::index_file(dir.path(), 100), [1, 2, 3]).unwrap();
    let (seg, result) = LogSegment::open(
        &crate::storage::file_system(),
        dir.path(),
        100,
        None,
        100,
        0,
    )
    .unwrap();
    assert!(result.is_some());
    assert_eq!(seg.next_offset(), 120);
    assert_eq!(seg.offset_index().len(), entries);
}

#[test]
fn recovery_from_a_recovery_point_scans_only_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = LogSegment::create(&crate::storage::file_system(), dir.path(), 0).unwrap();
    for i in 0..40 {
        append_batch(
            &mut seg,
            i,
            &[b"0123456789012345678901234567890123456789"],
            100 + i,
        );
    }
    let (entries, times) = (seg.offset_index().entries(), seg.time_index().len());
    drop(seg);
    let path = file_names::log_file(dir.path(), 0);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0xAB; 33]);
    std::fs::write(&path, &bytes).unwrap();
    let (seg, result) = LogSegment::open(
        &crate::storage::file_system(),
        dir.path(),
        0,
        Some(30),
        100,
        0,
    )
    .unwrap();
    let result = result.unwrap();
    assert!(
        result.batches < 15,
        "only batches from the index entry before offset 30 are checked ({})",
        result.batches
    );
    assert_eq!(result.truncated_bytes, 33);
    assert_eq!(seg.next_offset(), 40);
    assert_eq!(
        seg.offset_index().entries(),
        entries,
        "the same index as before"
    );
    assert_eq!(seg.time_index().len(), times);
    assert_eq!(seg.max_timestamp(), 139);
    // A garbage index can't be trusted: the whole segment is scanned.
    drop(seg);
    std::fs::write(file_names::index_file(dir.path(), 0), [0u8; 16]).unwrap();
    let (seg, result) = LogSegment::open(
        &crate::storage::file_system(),
        dir.path(),
        0,
        Some(30),
        100,
        0,
    )
    .unwrap();
    assert_eq!(result.unwrap().batches, 40);
    assert_eq!(seg.offset_index().entries(), entries);
}
