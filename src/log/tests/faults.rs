//! Segment-store tests on the simulated storage: index entries and fsyncs that fail,
//! power loss after a clean close, files that can't be read, and cut-backs to the durable
//! point (producer state, indexes and `.txnindex` going back with the log).

use super::*;

fn open_on(sim: &SimulatedStorage, recovery: RecoveryStart) -> Arc<Log> {
    open_on_with(sim, recovery, config(1 << 20))
}

fn open_on_with(sim: &SimulatedStorage, recovery: RecoveryStart, cfg: LogConfig) -> Arc<Log> {
    sim.create_dir_all_durable(std::path::Path::new("/d/t-0"));
    let (log, _) = load_log(&sim.shared(), tp(), "/d/t-0".into(), cfg, recovery, 0).unwrap();
    Arc::new(log)
}

/// An abort marker whose `.txnindex` entry can't be written is undone and its append fails:
/// kept without the entry, the abort would be forgotten once a later producer snapshot
/// covers the marker, and read_committed consumers would get the aborted records.
#[test]
fn a_marker_whose_transaction_index_entry_fails_is_undone() {
    use crate::storage::simulated::Op;
    let sim = SimulatedStorage::new(21);
    let log = open_on(&sim, RecoveryStart::From(0));
    let b = txn_batch(&[b"t1", b"t2"], 7, 0);
    log.append(&b, &[check_batch(&b).unwrap()]).unwrap(); // offsets 0-1, open
    log.flush_once().unwrap();
    // The segment's first abort creates its .txnindex.
    sim.fail_next(Op::Create, libc::EIO);
    assert!(matches!(
        log.append_marker(7, 0, false),
        Err(LogError::Io { path, .. }) if path.ends_with("00000000000000000000.txnindex")
    ));
    assert_eq!(log.log_end_offset(), 2, "the marker was undone");
    assert_eq!(log.last_stable_offset(), 0, "the transaction is still open");
    assert_eq!(log.append_marker(7, 0, false).unwrap().base_offset, 2);
    log.flush_once().unwrap();
    assert_eq!(log.read(0, 1 << 20, true, true).unwrap().aborted.len(), 1);
}

/// The active segment's `.txnindex` and the producer snapshot written at close are fsynced:
/// after a clean close and a power loss, a start that trusts the snapshot (no replay of the
/// marker) still knows the abort.
#[test]
fn the_transaction_index_and_the_closing_snapshot_survive_a_power_loss() {
    // A power loss keeps a random part of what was not synced: several seeds, so that an
    // unsynced file is lost in some of them.
    for seed in 1..=16 {
        let sim = SimulatedStorage::new(seed);
        let log = open_on(&sim, RecoveryStart::From(0));
        let b = txn_batch(&[b"t1"], 7, 0);
        log.append(&b, &[check_batch(&b).unwrap()]).unwrap();
        log.append_marker(7, 0, false).unwrap();
        let b = batch(&[b"after"], 1);
        log.append(&b, &[check_batch(&b).unwrap()]).unwrap(); // offset 2
        log.close().unwrap();
        drop(log);
        sim.power_loss();
        let snapshot = producer_state::snapshot_file(std::path::Path::new("/d/t-0"), 3);
        assert!(
            sim.shared().exists(&snapshot),
            "seed {seed}: the closing snapshot was lost"
        );
        let log = open_on(&sim, RecoveryStart::CleanShutdown);
        assert_eq!(log.log_end_offset(), 3, "seed {seed}");
        let aborted = log.read(0, 1 << 20, true, true).unwrap().aborted;
        assert_eq!(aborted.len(), 1, "seed {seed}: the abort was forgotten");
    }
}

/// A `.txnindex` or producer snapshot that can't be read fails the load with the file's
/// name; the loader used to skip it and start with the aborted transactions or producer
/// state it could read.
#[test]
fn an_unreadable_transaction_index_or_snapshot_fails_the_load_naming_it() {
    let dir = std::path::Path::new("/d/t-0");
    let txn_index = file_names::txn_index_file(dir, 0);
    let snapshot = producer_state::snapshot_file(dir, 3);
    for unreadable in [txn_index, snapshot] {
        let sim = SimulatedStorage::new(23);
        let log = open_on(&sim, RecoveryStart::From(0));
        let b = txn_batch(&[b"t1"], 7, 0);
        log.append(&b, &[check_batch(&b).unwrap()]).unwrap();
        log.append_marker(7, 0, false).unwrap();
        let b = batch(&[b"after"], 1);
        log.append(&b, &[check_batch(&b).unwrap()]).unwrap();
        log.close().unwrap();
        drop(log);
        sim.fail_reads_of(&unreadable, libc::EIO);
        let loaded = load_log(
            &sim.shared(),
            tp(),
            dir.to_path_buf(),
            config(1 << 20),
            RecoveryStart::CleanShutdown,
            0,
        );
        match loaded {
            Err(LogError::Io { path, .. }) => assert_eq!(path, unreadable),
            Err(e) => panic!("{}: {e}", unreadable.display()),
            Ok(_) => panic!("loaded over an unreadable {}", unreadable.display()),
        }
    }
}

/// A failed fsync cuts the log back to its durable point, and producer state goes back
/// with it, undone in memory instead of replayed from disk: the state equals what a restart
/// rebuilds from the log, and the producer's retry of its first lost batch is appended,
/// neither a duplicate nor out of order.
#[test]
fn a_cut_back_undoes_producer_state_to_the_durable_point() {
    use super::record_batch::test_support::idempotent_batch;
    use crate::storage::simulated::Op;
    let sim = SimulatedStorage::new(24);
    // Kafka's default flush policy: appends do not flush, so three of them stay unflushed.
    let lazy = LogConfig {
        flush_messages: u64::MAX,
        ..config(1 << 20)
    };
    let log = open_on_with(&sim, RecoveryStart::From(0), lazy);
    let send = |seq: i32, pid: i64| {
        let b = idempotent_batch(&[b"v"], 1, pid, 0, seq);
        log.append(&b, &[check_batch(&b).unwrap()])
    };
    for seq in 0..3 {
        send(seq, 7).unwrap();
    }
    log.flush_once().unwrap();
    // Lost with the failed fsync: two more batches of producer 7, one of a new producer 8.
    send(3, 7).unwrap();
    send(4, 7).unwrap();
    send(0, 8).unwrap();
    sim.fail_next(Op::SyncData, libc::EIO);
    assert!(log.flush_once().is_err());
    assert_eq!(log.log_end_offset(), 3);
    let after_cut = log.producers();
    assert!(after_cut.iter().all(|(pid, _)| *pid == 7), "{after_cut:?}");
    log.close().unwrap();
    drop(log);
    let reloaded = open_on(&sim, RecoveryStart::From(0));
    assert_eq!(reloaded.producers(), after_cut);
    drop(reloaded);
    let log = open_on(&sim, RecoveryStart::CleanShutdown);
    let b = idempotent_batch(&[b"v"], 1, 7, 0, 3);
    assert_eq!(
        log.append(&b, &[check_batch(&b).unwrap()])
            .unwrap()
            .base_offset,
        3
    );
}

#[test]
fn undo_records_restore_entries_and_overflow_to_none() {
    use super::producer_state::ProducerStateManager;
    use super::record_batch::test_support::idempotent_batch;
    let mut m = ProducerStateManager::default();
    let header = |seq: i32, offset: i64| {
        let mut b = idempotent_batch(&[b"v"], 1, 7, 0, seq);
        super::record_batch::assign_offset(&mut b, offset, 0);
        check_batch(&b).unwrap()
    };
    m.update(&header(0, 0));
    m.durable_up_to(1, 1);
    m.update(&header(1, 1));
    m.update(&header(2, 2));
    assert!(m.undo_to(1));
    assert_eq!(m.producers()[&7].last_seq(), Some(0));
    // Below the durable point there is nothing to undo with: the caller rebuilds.
    assert!(!m.undo_to(0));
    assert_eq!(m.producers()[&7].last_seq(), Some(0));
}

/// A cut-back reads only the bytes after the last index entry before the cut, as Kafka
/// truncates by its indexes; it used to re-read and CRC-check the whole active segment
/// under the partition lock.
#[test]
fn a_cut_back_rereads_only_the_tail_after_the_last_index_entry() {
    use crate::storage::simulated::Op;
    let sim = SimulatedStorage::new(25);
    let lazy = LogConfig {
        flush_messages: u64::MAX,
        index_interval_bytes: 4096,
        ..config(64 << 20)
    };
    let log = open_on_with(&sim, RecoveryStart::From(0), lazy.clone());
    let value = [3u8; 1000];
    for _ in 0..1024 {
        let b = batch(&[&value[..]], 1);
        log.append(&b, &[check_batch(&b).unwrap()]).unwrap();
    }
    log.flush_once().unwrap();
    for _ in 0..3 {
        let b = batch(&[&value[..]], 1);
        log.append(&b, &[check_batch(&b).unwrap()]).unwrap();
    }
    let before = sim.read_bytes();
    sim.fail_next(Op::SyncData, libc::EIO);
    assert!(log.flush_once().is_err());
    let read = sim.read_bytes() - before;
    assert_eq!(log.log_end_offset(), 1024);
    assert!(
        read < 16 << 10,
        "the cut-back read {read} bytes of a 1 MiB segment"
    );
    log.check_consistency().unwrap();
    // The cut log takes appends at its end and loads consistently after a crash.
    let b = batch(&[&value[..]], 1);
    assert_eq!(
        log.append(&b, &[check_batch(&b).unwrap()])
            .unwrap()
            .base_offset,
        1024
    );
    log.flush_once().unwrap();
    drop(log);
    let log = open_on_with(&sim, RecoveryStart::From(0), lazy);
    assert_eq!(log.log_end_offset(), 1025);
    log.check_consistency().unwrap();
}

/// A cut-back also cuts the `.txnindex` entries of aborts it removed: left in the file, a
/// restart would list the aborted range again once the log grew past it with other data.
#[test]
fn a_cut_back_removes_the_transaction_index_entries_of_cut_markers() {
    use crate::storage::simulated::Op;
    let sim = SimulatedStorage::new(26);
    let lazy = LogConfig {
        flush_messages: u64::MAX,
        ..config(1 << 20)
    };
    let log = open_on_with(&sim, RecoveryStart::From(0), lazy.clone());
    let b = txn_batch(&[b"kept"], 7, 0);
    log.append(&b, &[check_batch(&b).unwrap()]).unwrap();
    log.append_marker(7, 0, false).unwrap(); // abort at 1, durable
    log.flush_once().unwrap();
    let b = txn_batch(&[b"cut"], 7, 1);
    log.append(&b, &[check_batch(&b).unwrap()]).unwrap();
    log.append_marker(7, 0, false).unwrap(); // abort at 3, lost with the fsync
    let txn_index = file_names::txn_index_file(std::path::Path::new("/d/t-0"), 0);
    assert_eq!(sim.shared().read(&txn_index).unwrap().len(), 68);
    sim.fail_next(Op::SyncData, libc::EIO);
    assert!(log.flush_once().is_err());
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(sim.shared().read(&txn_index).unwrap().len(), 34);
    // The log grows past offset 3 again with committed data, and a restart lists only the
    // abort that is still in the log.
    let b = txn_batch(&[b"again"], 7, 1);
    log.append(&b, &[check_batch(&b).unwrap()]).unwrap();
    log.append_marker(7, 0, true).unwrap();
    let b = batch(&[b"more"], 1);
    log.append(&b, &[check_batch(&b).unwrap()]).unwrap();
    log.close().unwrap();
    drop(log);
    let log = open_on_with(&sim, RecoveryStart::CleanShutdown, lazy);
    let aborted = log.read(0, 1 << 20, true, true).unwrap().aborted;
    assert_eq!(aborted.len(), 1, "{aborted:?}");
    assert_eq!(aborted[0].last_offset, 1);
}
