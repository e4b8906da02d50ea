//! LogManager: topics across restarts, name validation, leftovers of crashed deletions.

use super::*;
use crate::config::{RawConfig, DEFAULT_CONFIG_YAML};
use std::fs;

fn manager(dir: &Path) -> LogManager {
    let mut raw = RawConfig::from_yaml(DEFAULT_CONFIG_YAML).unwrap();
    raw.set("log.dirs", dir.to_str().unwrap());
    LogManager::open(
        Arc::new(BrokerConfig::from_raw(&raw).unwrap()),
        crate::storage::file_system(),
    )
    .unwrap()
}

/// The default config with its data directory at `/data` on `sim` (created durably).
fn simulated_config(sim: &crate::storage::simulated::SimulatedStorage) -> Arc<BrokerConfig> {
    sim.create_dir_all_durable(Path::new("/data"));
    let mut raw = RawConfig::from_yaml(DEFAULT_CONFIG_YAML).unwrap();
    raw.set("log.dirs", "/data");
    Arc::new(BrokerConfig::from_raw(&raw).unwrap())
}

#[test]
fn topics_survive_restart_and_deletion_is_permanent() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let m = manager(dir.path());
        let mut configs = BTreeMap::new();
        configs.insert("retention.ms".to_string(), "1000".to_string());
        let t = m.create_topic("orders", 3, -1, configs).unwrap();
        m.create_topic("doomed", 2, 1, BTreeMap::new()).unwrap();
        assert!(matches!(
            m.create_topic("orders", 1, 1, BTreeMap::new()),
            Err(TopicError::AlreadyExists(_))
        ));
        m.delete_topic("doomed").unwrap();
        m.shutdown().unwrap();
        t.id
    };
    let m = manager(dir.path());
    let t = m.topic("orders").unwrap();
    assert_eq!(t.id, id);
    assert_eq!(t.partitions.len(), 3);
    assert_eq!(
        t.configs.get("retention.ms").map(String::as_str),
        Some("1000")
    );
    assert!(m.topic("doomed").is_none());
    assert!(!dir.path().join("doomed-0").exists());
    assert_eq!(m.topic_by_id(id).unwrap().name, "orders");
}

#[test]
fn invalid_topics_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let none = BTreeMap::new();
    assert!(matches!(
        m.create_topic("bad/name", 1, 1, none.clone()),
        Err(TopicError::InvalidName(_))
    ));
    assert!(matches!(
        m.create_topic("t", 0, 1, none.clone()),
        Err(TopicError::InvalidPartitions(_))
    ));
    assert!(matches!(
        m.create_topic("t", 1, 3, none),
        Err(TopicError::InvalidReplicationFactor(_))
    ));
    let mut bad = BTreeMap::new();
    bad.insert("no.such.config".to_string(), "1".to_string());
    assert!(matches!(
        m.create_topic("t", 1, 1, bad),
        Err(TopicError::InvalidConfig(_))
    ));
}

#[test]
fn only_directories_of_deleted_topics_are_removed_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    {
        let m = manager(dir.path());
        m.create_topic("kept", 1, 1, BTreeMap::new()).unwrap();
        m.shutdown().unwrap();
    }
    // Not Gregor's: no partition.metadata.
    fs::create_dir_all(dir.path().join("backup-2024")).unwrap();
    fs::write(dir.path().join("backup-2024/file"), b"precious").unwrap();
    // A deletion interrupted after its metadata file went: a known-format orphan.
    fs::create_dir_all(dir.path().join("gone-0")).unwrap();
    write_partition_metadata(
        &crate::storage::FileSystem,
        &dir.path().join("gone-0"),
        Uuid::new_v4(),
    )
    .unwrap();
    let m = manager(dir.path());
    assert!(dir.path().join("backup-2024/file").exists());
    assert!(!dir.path().join("gone-0").exists());
    let id = m.topic("kept").unwrap().id;
    assert_eq!(
        read_partition_metadata(&crate::storage::FileSystem, &dir.path().join("kept-0")),
        Some(id)
    );
}

#[test]
fn cluster_id_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let a = manager(dir.path()).cluster_id().to_string();
    assert_eq!(a.len(), 22);
    assert_eq!(manager(dir.path()).cluster_id(), a);
}

/// A shutdown whose final checkpoint fails is reported (main exits 1) and does not mark the
/// directory clean, so the next start recovers instead of trusting stale recovery points.
#[test]
fn a_failed_final_checkpoint_makes_the_shutdown_unclean() {
    use crate::storage::simulated::{Op, SimulatedStorage};
    let sim = SimulatedStorage::new(7);
    let storage = sim.shared();
    let m = LogManager::open(simulated_config(&sim), storage.clone()).unwrap();
    m.create_topic("t", 1, 1, BTreeMap::new()).unwrap();
    let marker = Path::new("/data").join(CLEAN_SHUTDOWN_FILE);
    // The first rename after the final flushes is a checkpoint's (write_atomically).
    sim.fail_next(Op::Rename, libc::EIO);
    assert!(matches!(m.shutdown(), Err(ShutdownError::Checkpoint(_))));
    assert!(!storage.exists(&marker));
    // With the disk healthy again the same shutdown is clean.
    m.shutdown().unwrap();
    assert!(storage.exists(&marker));
}

/// A CreateTopics that fails halfway (here a foreign directory is in the way of partition
/// 3; in practice descriptors or space run out) leaves nothing of the topic behind, and
/// the foreign directory untouched; before, the topic file and partitions 0-2 stayed and
/// were loaded at the next start.
#[test]
fn a_topic_creation_that_fails_halfway_is_undone() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("t-3")).unwrap();
    fs::write(dir.path().join("t-3/notes"), b"not Gregor's").unwrap();
    let m = manager(dir.path());
    assert!(m.create_topic("t", 5, 1, BTreeMap::new()).is_err());
    assert!(m.topic("t").is_none());
    for p in 0..3 {
        assert!(
            !dir.path().join(format!("t-{p}")).exists(),
            "t-{p} was left"
        );
    }
    assert!(dir.path().join("t-3/notes").exists());
    m.shutdown().unwrap();
    let m = manager(dir.path());
    assert!(m.topic("t").is_none(), "the half-made topic came back");
    fs::remove_dir_all(dir.path().join("t-3")).unwrap();
    m.create_topic("t", 5, 1, BTreeMap::new()).unwrap();
}

/// DeleteRecords answers only once the new log start offset is checkpointed: when the
/// checkpoint can't be made durable it fails (KAFKA_STORAGE_ERROR at the API), and the
/// retry, which checkpoints again, is what survives a restart.
#[test]
fn delete_records_fails_when_its_checkpoint_cannot_be_made_durable() {
    use crate::log::record_batch::{check_batch, test_support::batch};
    use crate::storage::simulated::{Op, SimulatedStorage};
    let sim = SimulatedStorage::new(9);
    let config = simulated_config(&sim);
    let m = LogManager::open(config.clone(), sim.shared()).unwrap();
    let topic = m.create_topic("t", 1, 1, BTreeMap::new()).unwrap();
    let log = topic.partitions[0].clone();
    for i in 0..3u8 {
        let b = batch(&[&[i]], 1);
        log.append(&b, &[check_batch(&b).unwrap()]).unwrap();
        log.flush_once().unwrap();
    }
    sim.fail_next(Op::Rename, libc::EIO);
    assert!(matches!(
        m.delete_records(&log, 2),
        Err(crate::log::LogError::Io { .. })
    ));
    assert_eq!(m.delete_records(&log, 2).unwrap(), 2);
    m.shutdown().unwrap();
    drop((log, topic, m));
    let m = LogManager::open(config, sim.shared()).unwrap();
    assert_eq!(m.topic("t").unwrap().partitions[0].log_start_offset(), 2);
}

/// The periodic checkpoint and a topic creation's checkpoint may run at the same moment (the
/// CI failure of stop 31: a CreateTopics answered KAFKA_STORAGE_ERROR because the other
/// writer had renamed the shared temp file away). Every concurrent checkpoint succeeds.
#[test]
fn concurrent_checkpoints_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let m = Arc::new(manager(dir.path()));
    for i in 0..20 {
        m.create_topic(&format!("topic-{i}"), 1, 1, BTreeMap::new())
            .unwrap();
    }
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                (0..200)
                    .filter(|_| m.checkpoint_recovery_points().is_err())
                    .count()
            })
        })
        .collect();
    let failures: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(failures, 0, "checkpoints failed while others ran");
    // And the file is still one that reads back whole.
    let text = fs::read_to_string(dir.path().join(LOG_START_OFFSET_CHECKPOINT)).unwrap();
    assert_eq!(text.lines().count(), 2 + 20, "{text}");
}
