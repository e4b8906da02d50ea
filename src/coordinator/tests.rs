//! Group coordinator tests with controlled time: the join/sync protocol, session expiry,
//! generation and static-member fencing, and offset commit rules.

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use super::group::JoinResult;
use super::*;
use crate::config::{BrokerConfig, RawConfig, DEFAULT_CONFIG_YAML};
use crate::storage::simulated::{Op, SimulatedStorage};

fn coordinator(dir: &std::path::Path, initial_delay_ms: u64) -> GroupCoordinator {
    let mut raw = RawConfig::from_yaml(DEFAULT_CONFIG_YAML).unwrap();
    raw.set("log.dirs", dir.to_str().unwrap());
    raw.set("offsets.topic.num.partitions", "3");
    raw.set(
        "group.initial.rebalance.delay.ms",
        &initial_delay_ms.to_string(),
    );
    let config = Arc::new(BrokerConfig::from_raw(&raw).unwrap());
    let logs = Arc::new(LogManager::open(config.clone(), crate::storage::file_system()).unwrap());
    GroupCoordinator::load(config.coordinator.clone(), logs).unwrap()
}

/// A coordinator on simulated storage, for tests that fail its disk (also the one that
/// starts again after `sim.power_loss()`).
pub(super) fn simulated_coordinator(sim: &SimulatedStorage) -> GroupCoordinator {
    sim.create_dir_all_durable(std::path::Path::new("/data"));
    let mut raw = RawConfig::from_yaml(DEFAULT_CONFIG_YAML).unwrap();
    raw.set("log.dirs", "/data");
    raw.set("offsets.topic.num.partitions", "1");
    let config = Arc::new(BrokerConfig::from_raw(&raw).unwrap());
    let logs = Arc::new(LogManager::open(config.clone(), sim.shared()).unwrap());
    GroupCoordinator::load(config.coordinator.clone(), logs).unwrap()
}

/// Commits offset 5 for partitions 0 and 1 of topic `t` as group `simple`.
async fn commit_two(c: &GroupCoordinator) {
    c.logs.create_topic("t", 2, 1, BTreeMap::new()).unwrap();
    let entry = |partition| OffsetCommitEntry {
        topic: "t".into(),
        partition,
        offset: 5,
        leader_epoch: -1,
        metadata: None,
    };
    let codes = c
        .commit("simple", "", None, -1, vec![entry(0), entry(1)])
        .await;
    assert_eq!(codes, vec![Ok(()), Ok(())]);
}

fn committed(c: &GroupCoordinator) -> usize {
    c.fetch_offsets("simple", None)
        .iter()
        .map(|(_, ps)| ps.iter().filter(|(_, o)| o.is_some()).count())
        .sum()
}

fn join_req(member_id: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member_id.into(),
        group_instance_id: instance.map(String::from),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
        require_known_member_id: true,
    }
}

async fn resolve<T>(o: Outcome<T>) -> T {
    match o {
        Outcome::Now(t) => t,
        Outcome::Wait(rx) => rx.await.expect("answered"),
    }
}

/// Joins a new dynamic member through the MEMBER_ID_REQUIRED round; returns its id and
/// the parked join.
fn join_new(c: &GroupCoordinator) -> (String, Outcome<JoinResult>) {
    let first = match c.join(join_req("", None)) {
        Outcome::Now(r) => r,
        Outcome::Wait(_) => panic!("a new member first gets MEMBER_ID_REQUIRED"),
    };
    assert_eq!(first.error, Some(CoordinatorError::MemberIdRequired));
    let id = first.member_id.clone();
    let outcome = c.join(join_req(&id, None));
    (id, outcome)
}

fn sync_req(member: &str, generation: i32, assignments: HashMap<String, Bytes>) -> SyncRequest<'_> {
    SyncRequest {
        group_id: "g",
        member_id: member,
        group_instance_id: None,
        generation_id: generation,
        protocol_type: Some("consumer"),
        protocol_name: Some("range"),
        assignments,
    }
}

#[tokio::test(start_paused = true)]
async fn two_members_join_sync_and_get_the_leaders_assignment() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path(), 0);
    let (a, join_a) = join_new(&c);
    // A alone completes the first rebalance at once.
    let ra = resolve(join_a).await;
    assert_eq!(
        (ra.error, ra.generation_id, ra.leader_id.as_str()),
        (None, 1, a.as_str())
    );
    assert_eq!(ra.members.len(), 1);
    // B joins: A must rejoin (heartbeat says so), then both get generation 2.
    let (b, join_b) = join_new(&c);
    assert_eq!(
        c.heartbeat("g", &a, None, 1),
        Err(CoordinatorError::RebalanceInProgress)
    );
    let ra = resolve(c.join(join_req(&a, None))).await;
    let rb = resolve(join_b).await;
    assert_eq!((ra.generation_id, rb.generation_id), (2, 2));
    assert_eq!(ra.leader_id, a, "the leader stays the leader");
    assert_eq!(ra.members.len(), 2, "the leader sees every member");
    assert!(rb.members.is_empty(), "followers see none");
    assert_eq!(ra.protocol_name.as_deref(), Some("range"));

    // Completing the rebalance: a commit with the old generation is ILLEGAL_GENERATION (the
    // client drops it), one with the new generation REBALANCE_IN_PROGRESS, as in Kafka.
    let entry = || {
        vec![OffsetCommitEntry {
            topic: "t".into(),
            partition: 0,
            offset: 1,
            leader_epoch: -1,
            metadata: None,
        }]
    };
    assert_eq!(
        c.commit("g", &a, None, 1, entry()).await,
        vec![Err(CoordinatorError::IllegalGeneration)]
    );
    assert_eq!(
        c.commit("g", &a, None, 2, entry()).await,
        vec![Err(CoordinatorError::RebalanceInProgress)]
    );

    let follower = c.sync(sync_req(&b, 2, HashMap::new()));
    let mut plan = HashMap::new();
    plan.insert(a.clone(), Bytes::from_static(b"for-a"));
    plan.insert(b.clone(), Bytes::from_static(b"for-b"));
    let leader = resolve(c.sync(sync_req(&a, 2, plan))).await;
    assert_eq!(&leader.assignment[..], b"for-a");
    assert_eq!(&resolve(follower).await.assignment[..], b"for-b");
    assert_eq!(c.describe("g").unwrap().state, GroupState::Stable);
    assert_eq!(c.heartbeat("g", &b, None, 2), Ok(()));
    assert_eq!(
        c.heartbeat("g", &b, None, 1),
        Err(CoordinatorError::IllegalGeneration)
    );
    assert_eq!(
        c.heartbeat("g", "nobody", None, 2),
        Err(CoordinatorError::UnknownMemberId)
    );
}

#[tokio::test(start_paused = true)]
async fn a_member_that_stops_heartbeating_is_removed_after_its_session_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path(), 0);
    let (a, ja) = join_new(&c);
    resolve(ja).await;
    let (b, jb) = join_new(&c);
    let ra = resolve(c.join(join_req(&a, None))).await;
    resolve(jb).await;
    let mut plan = HashMap::new();
    plan.insert(a.clone(), Bytes::from_static(b"x"));
    let fb = c.sync(sync_req(&b, ra.generation_id, HashMap::new()));
    resolve(c.sync(sync_req(&a, ra.generation_id, plan))).await;
    resolve(fb).await;
    // A keeps heartbeating; B goes silent for longer than its 10 s session.
    for _ in 0..12 {
        tokio::time::advance(Duration::from_secs(1)).await;
        let _ = c.heartbeat("g", &a, None, ra.generation_id);
        c.tick(Instant::now());
    }
    assert_eq!(
        c.heartbeat("g", &b, None, ra.generation_id),
        Err(CoordinatorError::UnknownMemberId)
    );
    assert_eq!(
        c.heartbeat("g", &a, None, ra.generation_id),
        Err(CoordinatorError::RebalanceInProgress),
        "the survivor is told to rejoin"
    );
    let again = resolve(c.join(join_req(&a, None))).await;
    assert_eq!(again.generation_id, ra.generation_id + 1);
    assert_eq!(again.members.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_restarted_static_member_gets_its_assignment_back_without_a_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path(), 0);
    let first = resolve(c.join(join_req("", Some("instance-1")))).await;
    assert_eq!(first.error, None, "static members skip MEMBER_ID_REQUIRED");
    let old_id = first.member_id.clone();
    let mut plan = HashMap::new();
    plan.insert(old_id.clone(), Bytes::from_static(b"mine"));
    resolve(c.sync(sync_req(&old_id, first.generation_id, plan))).await;

    // The process restarts: same instance id, no member id.
    let again = resolve(c.join(join_req("", Some("instance-1")))).await;
    assert_eq!(again.error, None);
    assert_eq!(again.generation_id, first.generation_id, "no rebalance");
    assert_ne!(again.member_id, old_id);
    let sync = resolve(c.sync(SyncRequest {
        group_instance_id: Some("instance-1"),
        ..sync_req(&again.member_id, again.generation_id, HashMap::new())
    }))
    .await;
    assert_eq!(&sync.assignment[..], b"mine");
    // The old incarnation is fenced.
    assert_eq!(
        c.heartbeat("g", &old_id, Some("instance-1"), first.generation_id),
        Err(CoordinatorError::FencedInstanceId)
    );
}

#[tokio::test(start_paused = true)]
async fn protocol_mismatch_and_bad_session_timeouts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path(), 0);
    let (_a, ja) = join_new(&c);
    resolve(ja).await;
    let mut other = join_req("", None);
    other.protocols = vec![("roundrobin".into(), Bytes::new())];
    let r = resolve(c.join(other)).await;
    assert_eq!(r.error, Some(CoordinatorError::InconsistentGroupProtocol));
    let mut short = join_req("", None);
    short.session_timeout_ms = 10;
    assert_eq!(
        resolve(c.join(short)).await.error,
        Some(CoordinatorError::InvalidSessionTimeout)
    );
}

#[tokio::test(start_paused = true)]
async fn the_initial_rebalance_delay_gathers_members() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path(), 3000);
    let (_a, ja) = join_new(&c);
    tokio::time::advance(Duration::from_millis(500)).await;
    let (_b, jb) = join_new(&c);
    tokio::time::advance(Duration::from_millis(2600)).await;
    c.tick(Instant::now());
    let (ra, rb) = (resolve(ja).await, resolve(jb).await);
    assert_eq!(
        (ra.generation_id, rb.generation_id),
        (1, 1),
        "one rebalance for both"
    );
}

#[tokio::test]
async fn offsets_commit_fetch_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = coordinator(dir.path(), 0);
        c.logs.create_topic("t", 2, 1, BTreeMap::new()).unwrap();
        // A simple consumer commits with generation -1 to a group without members.
        let codes = c
            .commit(
                "simple",
                "",
                None,
                -1,
                vec![
                    OffsetCommitEntry {
                        topic: "t".into(),
                        partition: 0,
                        offset: 42,
                        leader_epoch: 0,
                        metadata: Some("m".into()),
                    },
                    OffsetCommitEntry {
                        topic: "t".into(),
                        partition: 9,
                        offset: 1,
                        leader_epoch: -1,
                        metadata: None,
                    },
                ],
            )
            .await;
        assert_eq!(
            codes,
            vec![Ok(()), Err(CoordinatorError::UnknownTopicOrPartition)]
        );
        let fetched = c.fetch_offsets("simple", Some(vec![("t".into(), vec![0, 1])]));
        assert_eq!(fetched[0].1[0].1.as_ref().unwrap().offset, 42);
        assert!(fetched[0].1[1].1.is_none());
        c.logs.shutdown().unwrap();
    }
    let c = coordinator(dir.path(), 0);
    let all = c.fetch_offsets("simple", None);
    assert_eq!(all.len(), 1);
    let o = all[0].1[0].1.clone().unwrap();
    assert_eq!((o.offset, o.metadata.as_str()), (42, "m"));
    // Deleting the group deletes its offsets, also on disk.
    assert_eq!(c.delete_group("simple").await, Ok(()));
    assert_eq!(
        c.delete_group("simple").await,
        Err(CoordinatorError::GroupIdNotFound)
    );
    c.logs.shutdown().unwrap();
    let c = coordinator(dir.path(), 0);
    assert!(c.fetch_offsets("simple", None).is_empty());
}

/// Regression: Gregor dropped a group as soon as it had neither members nor offsets (on the
/// next 100 ms tick), so a DeleteGroups right after got GROUP_ID_NOT_FOUND where Kafka, which
/// cleans up every `offsets.retention.check.interval.ms`, answers NONE (the differential
/// runner's groups/delete_groups step).
#[tokio::test(start_paused = true)]
async fn an_empty_group_stays_until_the_retention_check() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path(), 0);
    let (a, join) = join_new(&c);
    assert_eq!(resolve(join).await.error, None);
    let leaving = [Leaving {
        member_id: a,
        group_instance_id: None,
    }];
    assert_eq!(c.leave("g", &leaving), Ok(vec![Ok(())]));
    tokio::time::advance(Duration::from_secs(1)).await;
    c.tick(Instant::now());
    assert_eq!(c.describe("g").map(|d| d.state), Some(GroupState::Empty));
    // Past offsets.retention.check.interval.ms (600 s by default) it is gone.
    tokio::time::advance(Duration::from_secs(600)).await;
    c.tick(Instant::now());
    assert!(c.describe("g").is_none());
}

/// DeleteGroups answers only once its tombstones are durable: when their fsync fails it
/// answers with the error and the group, with its offsets, is still there (and still on
/// disk after a restart); the retry deletes it for good.
#[tokio::test]
async fn a_delete_group_whose_tombstones_fail_to_sync_keeps_the_group() {
    let sim = SimulatedStorage::new(11);
    let c = simulated_coordinator(&sim);
    commit_two(&c).await;
    sim.fail_next(Op::SyncData, libc::EIO);
    assert_eq!(
        c.delete_group("simple").await,
        Err(CoordinatorError::KafkaStorageError)
    );
    assert_eq!(committed(&c), 2);
    c.logs.shutdown().unwrap();
    let c = simulated_coordinator(&sim);
    assert_eq!(committed(&c), 2);
    assert_eq!(c.delete_group("simple").await, Ok(()));
    c.logs.shutdown().unwrap();
    let c = simulated_coordinator(&sim);
    assert_eq!(committed(&c), 0);
}

/// OffsetDelete, likewise: a failed tombstone fsync keeps the offsets it could not delete.
#[tokio::test]
async fn an_offset_delete_whose_tombstones_fail_to_sync_keeps_the_offsets() {
    let sim = SimulatedStorage::new(12);
    let c = simulated_coordinator(&sim);
    commit_two(&c).await;
    let one = [("t".to_string(), 0)];
    sim.fail_next(Op::SyncData, libc::EIO);
    assert_eq!(
        c.delete_offsets("simple", &one).await,
        Err(CoordinatorError::KafkaStorageError)
    );
    assert_eq!(committed(&c), 2);
    assert_eq!(c.delete_offsets("simple", &one).await, Ok(vec![Ok(())]));
    assert_eq!(committed(&c), 1);
    c.logs.shutdown().unwrap();
    let c = simulated_coordinator(&sim);
    assert_eq!(committed(&c), 1);
}

/// A read error while replaying `__consumer_offsets` fails the load with the partition's
/// directory in the message; it used to stop the replay quietly and start with the offsets
/// read so far (here: none).
#[tokio::test]
async fn a_read_error_in_the_offsets_replay_fails_the_load_naming_the_partition() {
    let sim = SimulatedStorage::new(13);
    let c = simulated_coordinator(&sim);
    commit_two(&c).await;
    c.logs.shutdown().unwrap();
    drop(c);
    let segment =
        crate::log::file_names::log_file(std::path::Path::new("/data/__consumer_offsets-0"), 0);
    let mut raw = RawConfig::from_yaml(DEFAULT_CONFIG_YAML).unwrap();
    raw.set("log.dirs", "/data");
    raw.set("offsets.topic.num.partitions", "1");
    let config = Arc::new(BrokerConfig::from_raw(&raw).unwrap());
    let logs = Arc::new(LogManager::open(config.clone(), sim.shared()).unwrap());
    // The disk goes bad between opening the logs and replaying them.
    sim.fail_reads_of(&segment, libc::EIO);
    let Err(e) = GroupCoordinator::load(config.coordinator.clone(), logs) else {
        panic!("the load succeeded over an unreadable segment");
    };
    let message = e.to_string();
    assert!(message.contains("/data/__consumer_offsets-0"), "{message}");
}
