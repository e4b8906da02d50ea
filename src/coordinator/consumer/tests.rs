//! The consumer group protocol in the coordinator, driven heartbeat by heartbeat.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::heartbeat::{ConsumerHeartbeat, HeartbeatAnswer, TopicsView};
use super::Assignment;
use crate::coordinator::{CoordinatorError, GroupCoordinator};
use crate::storage::simulated::SimulatedStorage;

/// A coordinator on simulated storage.
fn coordinator() -> (GroupCoordinator, SimulatedStorage) {
    let sim = SimulatedStorage::new(1);
    sim.create_dir_all_durable(std::path::Path::new("/data"));
    (open(&sim), sim)
}

/// The coordinator of the broker that starts on `sim`'s disk.
fn open(sim: &SimulatedStorage) -> GroupCoordinator {
    crate::coordinator::tests::simulated_coordinator(sim)
}

const TOPIC: Uuid = Uuid::from_u128(7);

fn topics(partitions: i32) -> TopicsView {
    BTreeMap::from([("t".to_string(), (TOPIC, partitions))])
}

fn join(member: &str) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        version: 1,
        group_id: "g".into(),
        member_id: member.into(),
        member_epoch: 0,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        subscribed_topic_regex: None,
        server_assignor: None,
        owned: Some(Assignment::new()),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
    }
}

/// A heartbeat reporting `owned` at `epoch`.
fn beat(member: &str, epoch: i32, owned: &Assignment) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        subscribed_topic_names: None,
        owned: Some(owned.clone()),
        ..join(member)
    }
}

fn parts(a: &Assignment) -> BTreeSet<i32> {
    a.get(&TOPIC).cloned().unwrap_or_default()
}

/// A member as the client sees it: its epoch and what it owns.
struct Client {
    id: &'static str,
    epoch: i32,
    owned: Assignment,
}

impl Client {
    fn apply(&mut self, answer: HeartbeatAnswer) {
        self.epoch = answer.member_epoch;
        if let Some(a) = answer.assignment {
            self.owned = a;
        }
    }

    async fn heartbeat(&mut self, gc: &GroupCoordinator, view: &TopicsView) {
        let answer = gc
            .consumer_heartbeat(beat(self.id, self.epoch, &self.owned), view)
            .await
            .expect("heartbeat");
        self.apply(answer);
    }
}

async fn joined(gc: &GroupCoordinator, id: &'static str, view: &TopicsView) -> Client {
    let answer = gc.consumer_heartbeat(join(id), view).await.expect("join");
    let mut client = Client {
        id,
        epoch: 0,
        owned: Assignment::new(),
    };
    client.apply(answer);
    client
}

#[tokio::test]
async fn a_partition_never_has_two_owners_while_members_join_and_leave() {
    let (gc, _sim) = coordinator();
    let view = topics(6);
    let mut a = joined(&gc, "a", &view).await;
    assert_eq!(parts(&a.owned).len(), 6);
    assert_eq!(a.epoch, 1);
    let mut b = joined(&gc, "b", &view).await;
    // b waits for what a still owns; a gives up three first.
    assert!(parts(&b.owned).is_empty());
    assert_eq!(b.epoch, 2);
    for _ in 0..4 {
        a.heartbeat(&gc, &view).await;
        b.heartbeat(&gc, &view).await;
        let (pa, pb) = (parts(&a.owned), parts(&b.owned));
        assert!(pa.is_disjoint(&pb), "two owners: {pa:?} {pb:?}");
    }
    assert_eq!((parts(&a.owned).len(), parts(&b.owned).len()), (3, 3));
    assert_eq!((a.epoch, b.epoch), (2, 2));
    let g = gc.describe_consumer_group("g").unwrap();
    assert_eq!(g.state(), "Stable");
    // a leaves: b gets everything.
    gc.consumer_heartbeat(beat("a", -1, &a.owned), &view)
        .await
        .unwrap();
    b.heartbeat(&gc, &view).await;
    assert_eq!(parts(&b.owned).len(), 6);
    assert_eq!(b.epoch, 3);
}

#[tokio::test]
async fn wrong_epochs_are_fenced_and_unknown_members_refused() {
    let (gc, _sim) = coordinator();
    let view = topics(2);
    let a = joined(&gc, "a", &view).await;
    let err = gc
        .consumer_heartbeat(beat("a", a.epoch + 1, &a.owned), &view)
        .await
        .unwrap_err();
    assert_eq!(err.0, CoordinatorError::FencedMemberEpoch);
    let err = gc
        .consumer_heartbeat(beat("z", 1, &Assignment::new()), &view)
        .await
        .unwrap_err();
    assert_eq!(err.0, CoordinatorError::UnknownMemberId);
    // b joins; a revokes one partition (keeping epoch 1), then moves to epoch 2.
    let _b = joined(&gc, "b", &view).await;
    let mut a = a;
    let both = a.owned.clone();
    a.heartbeat(&gc, &view).await;
    assert_eq!((a.epoch, parts(&a.owned).len()), (1, 1));
    a.heartbeat(&gc, &view).await;
    assert_eq!(a.epoch, 2);
    // The previous epoch is fine while the member owns no more than it is assigned (it
    // missed the answer that moved it on), not while it claims more.
    let ok = gc.consumer_heartbeat(beat("a", 1, &a.owned), &view).await;
    assert_eq!(ok.map(|answer| answer.member_epoch), Ok(2));
    let err = gc
        .consumer_heartbeat(beat("a", 1, &both), &view)
        .await
        .unwrap_err();
    assert_eq!(err.0, CoordinatorError::FencedMemberEpoch);
    // A join must carry a subscription and no owned partitions.
    let mut bad = join("c");
    bad.subscribed_topic_names = None;
    assert_eq!(
        gc.consumer_heartbeat(bad, &view).await.unwrap_err().0,
        CoordinatorError::InvalidRequest
    );
    let mut bad = join("c");
    bad.server_assignor = Some("sticky".into());
    assert_eq!(
        gc.consumer_heartbeat(bad, &view).await.unwrap_err().0,
        CoordinatorError::UnsupportedAssignor
    );
}

#[tokio::test]
async fn new_partitions_and_regex_subscriptions_are_picked_up() {
    let (gc, _sim) = coordinator();
    let mut a = joined(&gc, "a", &topics(2)).await;
    assert_eq!(parts(&a.owned).len(), 2);
    // The topic grows: the next heartbeat bumps the epoch and hands out the new ones.
    let grown = topics(4);
    a.heartbeat(&gc, &grown).await;
    assert_eq!(parts(&a.owned).len(), 4);
    assert_eq!(a.epoch, 2);
    // A regex subscription covers topics by name.
    let other = Uuid::from_u128(9);
    let mut both = grown.clone();
    both.insert("t-2".into(), (other, 1));
    let mut r = join("r");
    r.subscribed_topic_names = Some(vec![]);
    r.subscribed_topic_regex = Some("t-.*".into());
    let answer = gc.consumer_heartbeat(r, &both).await.unwrap();
    // As in Kafka, a new regex is resolved asynchronously: nothing yet, then its topics.
    assert_eq!(answer.assignment, Some(Assignment::new()));
    gc.tick(tokio::time::Instant::now());
    let answer = gc
        .consumer_heartbeat(beat("r", answer.member_epoch, &Assignment::new()), &both)
        .await
        .unwrap();
    let owned = answer.assignment.unwrap();
    assert_eq!(owned.keys().copied().collect::<Vec<_>>(), vec![other]);
    let mut bad = join("x");
    bad.subscribed_topic_regex = Some("(".into());
    assert_eq!(
        gc.consumer_heartbeat(bad, &both).await.unwrap_err().0,
        CoordinatorError::InvalidRegularExpression
    );
}

#[tokio::test]
async fn commits_need_the_members_current_epoch() {
    let (gc, _sim) = coordinator();
    let view = topics(1);
    let a = joined(&gc, "a", &view).await;
    let commit = |member: &str, epoch: i32| gc.check_commit_for_test("g", member, epoch);
    assert_eq!(commit("a", a.epoch), Ok(()));
    assert_eq!(
        commit("a", a.epoch + 1),
        Err(CoordinatorError::StaleMemberEpoch)
    );
    assert_eq!(
        commit("nobody", a.epoch),
        Err(CoordinatorError::UnknownMemberId)
    );
    assert_eq!(
        commit("", -1),
        Err(CoordinatorError::UnknownMemberId),
        "not while members are in"
    );
    // ListGroups reports it as a consumer group; DescribeGroups does not describe it.
    let listed = gc.list_groups();
    assert_eq!(listed[0].1, "consumer");
    assert_eq!(listed[0].3, "consumer");
    assert!(gc.describe("g").is_none());
}

/// OffsetDelete refuses the topics a consumer group's members subscribe to, as Kafka does.
#[tokio::test]
async fn offsets_of_subscribed_topics_are_not_deleted() {
    let (gc, _sim) = coordinator();
    gc.logs
        .create_topic("t", 1, 1, std::collections::BTreeMap::new())
        .unwrap();
    let _a = joined(&gc, "a", &topics(1)).await;
    let codes = gc
        .delete_offsets("g", &[("t".into(), 0), ("other".into(), 0)])
        .await
        .unwrap();
    assert_eq!(codes[0], Err(CoordinatorError::GroupSubscribedToTopic));
    assert_eq!(codes[1], Ok(()));
}

/// Every answered heartbeat's records were durable first: after a power loss the group
/// comes back as its members last heard of it, and they carry on with their epochs.
#[tokio::test]
async fn a_consumer_group_survives_a_power_loss() {
    let (gc, sim) = coordinator();
    let view = topics(4);
    let mut a = joined(&gc, "a", &view).await;
    let mut b = joined(&gc, "b", &view).await;
    for _ in 0..3 {
        a.heartbeat(&gc, &view).await;
        b.heartbeat(&gc, &view).await;
    }
    let before = gc.describe_consumer_group("g").unwrap();
    assert_eq!(before.state(), "Stable");
    sim.power_loss();
    drop(gc);
    let gc = open(&sim);
    let after = gc.describe_consumer_group("g").expect("the group is back");
    assert_eq!(
        (after.group_epoch, after.assignment_epoch),
        (before.group_epoch, before.assignment_epoch)
    );
    assert_eq!(after.target, before.target);
    for (id, m) in &before.members {
        let back = &after.members[id];
        assert_eq!(
            (back.epoch, &back.assigned, back.state),
            (m.epoch, &m.assigned, m.state)
        );
        assert_eq!(back.subscribed_topic_names, m.subscribed_topic_names);
    }
    // The members go on where they were: no rejoin, same partitions.
    let owned = (a.owned.clone(), b.owned.clone());
    a.heartbeat(&gc, &view).await;
    b.heartbeat(&gc, &view).await;
    assert_eq!((a.owned.clone(), b.owned.clone()), owned);
    assert_eq!(a.epoch, before.members["a"].epoch);
    // A member that leaves is gone after the next restart too.
    gc.consumer_heartbeat(beat("a", -1, &a.owned), &view)
        .await
        .unwrap();
    sim.power_loss();
    drop(gc);
    let gc = open(&sim);
    let again = gc.describe_consumer_group("g").unwrap();
    assert!(!again.members.contains_key("a"));
    assert!(again.members.contains_key("b"));
}

/// A heartbeat whose records can't be made durable changes nothing: the client's retry
/// meets the group as it was.
#[tokio::test]
async fn a_failed_write_leaves_the_group_as_it_was() {
    let (gc, sim) = coordinator();
    let view = topics(2);
    let a = joined(&gc, "a", &view).await;
    let before = gc.describe_consumer_group("g").unwrap();
    sim.fail_next(crate::storage::simulated::Op::SyncData, libc::EIO);
    let err = gc.consumer_heartbeat(join("b"), &view).await.unwrap_err();
    assert_eq!(err.0, CoordinatorError::KafkaStorageError);
    let after = gc.describe_consumer_group("g").unwrap();
    assert!(!after.members.contains_key("b"));
    assert_eq!(after.group_epoch, before.group_epoch);
    // The disk works again: b joins, a carries on.
    let b = joined(&gc, "b", &view).await;
    assert_eq!(b.epoch, before.group_epoch + 1);
    assert!(gc
        .consumer_heartbeat(beat("a", a.epoch, &a.owned), &view)
        .await
        .is_ok());
}

/// DeleteGroups on an empty consumer group: its records get tombstones with its offsets,
/// so it does not come back after a restart.
#[tokio::test]
async fn a_deleted_consumer_group_stays_deleted() {
    let (gc, sim) = coordinator();
    let view = topics(1);
    let a = joined(&gc, "a", &view).await;
    gc.consumer_heartbeat(beat("a", -1, &a.owned), &view)
        .await
        .unwrap();
    assert_eq!(gc.delete_group("g").await, Ok(()));
    sim.power_loss();
    drop(gc);
    let gc = open(&sim);
    assert!(gc.describe_consumer_group("g").is_none());
    assert!(gc.list_groups().is_empty());
}

/// TxnOffsetCommit from a consumer group member is checked against its epoch, as Kafka's
/// validateOffsetCommit for transactions does (zombie fencing of consume-transform-produce).
#[tokio::test]
async fn transactional_commits_need_the_members_epoch() {
    let (gc, _sim) = coordinator();
    let a = joined(&gc, "a", &topics(1)).await;
    let entry = crate::coordinator::OffsetCommitEntry {
        topic: "t".into(),
        partition: 0,
        offset: 1,
        leader_epoch: -1,
        metadata: None,
    };
    let stale = gc
        .txn_commit(
            "g",
            7,
            0,
            Some(("a", None, a.epoch + 1)),
            vec![entry.clone()],
        )
        .await;
    assert_eq!(stale, vec![Err(CoordinatorError::IllegalGeneration)]);
    let unknown = gc
        .txn_commit("g", 7, 0, Some(("zombie", None, a.epoch)), vec![entry])
        .await;
    assert_eq!(unknown, vec![Err(CoordinatorError::UnknownMemberId)]);
}

/// Offsets of topics no member subscribes to expire while the group has members; those
/// of subscribed topics stay.
#[tokio::test]
async fn unsubscribed_offsets_of_a_live_group_expire() {
    let (gc, _sim) = coordinator();
    let _a = joined(&gc, "a", &topics(1)).await;
    let old = crate::coordinator::group::CommittedOffset {
        offset: 5,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp: 0,
    };
    {
        let mut groups = gc.lock();
        let g = groups.get_mut("g").unwrap();
        g.offsets.insert(("t".into(), 0), old.clone());
        g.offsets.insert(("gone".into(), 0), old);
    }
    // After offsets.retention.check.interval.ms (10 minutes by default); the member's
    // session has ended by then, so keep it alive first.
    let later = tokio::time::Instant::now() + std::time::Duration::from_secs(601);
    gc.lock()
        .get_mut("g")
        .unwrap()
        .consumer
        .as_mut()
        .unwrap()
        .members
        .get_mut("a")
        .unwrap()
        .session_deadline = later + std::time::Duration::from_secs(60);
    let expired = gc.tick(later);
    assert_eq!(
        expired,
        vec![("g".to_string(), vec![("gone".to_string(), 0)])]
    );
    assert!(gc.lock()["g"].offsets.contains_key(&("t".to_string(), 0)));
}

/// A group's `consumer.heartbeat.interval.ms` is what its members are told.
#[tokio::test]
async fn group_configs_apply_to_the_group() {
    let sim = SimulatedStorage::new(1);
    sim.create_dir_all_durable(std::path::Path::new("/data"));
    let store = crate::coordinator::group_configs::GroupConfigs::open(
        sim.shared(),
        "/data/group-configs.yaml".into(),
    )
    .unwrap();
    let gc = open(&sim).with_group_configs(store);
    let broker = gc.config.clone();
    let configs = BTreeMap::from([(
        "consumer.heartbeat.interval.ms".to_string(),
        "7000".to_string(),
    )]);
    gc.group_configs.set("g", configs, &broker, false).unwrap();
    let answer = gc.consumer_heartbeat(join("a"), &topics(1)).await.unwrap();
    assert_eq!(answer.heartbeat_interval_ms, 7000);
    let mut other = join("b");
    other.group_id = "other".into();
    let answer = gc.consumer_heartbeat(other, &topics(1)).await.unwrap();
    assert_eq!(
        answer.heartbeat_interval_ms,
        broker.consumer.heartbeat_interval_ms
    );
}

/// A classic group `g` of `members`, Stable at generation 5, each member subscribed to
/// topic `t` with `protocol_type` and holding the partitions `assigned` gives it.
fn classic_group(
    gc: &GroupCoordinator,
    protocol_type: &str,
    members: &[(&str, Vec<i32>)],
    user_data: Option<&'static [u8]>,
) {
    use bytes::{BufMut, Bytes, BytesMut};
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
    use kafka_protocol::protocol::{Encodable, StrBytes};
    let encoded = |version: i16, e: &dyn Fn(&mut BytesMut)| {
        let mut b = BytesMut::new();
        b.put_i16(version);
        e(&mut b);
        b.freeze()
    };
    let subscription = encoded(1, &|b| {
        ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("t")])
            .encode(b, 1)
            .unwrap();
    });
    let mut groups = gc.lock();
    let mut g = crate::coordinator::group::Group::new("g");
    g.state = crate::coordinator::group::GroupState::Stable;
    g.generation_id = 5;
    g.protocol_type = Some(protocol_type.into());
    g.protocol_name = Some("range".into());
    for (i, (id, parts)) in members.iter().enumerate() {
        let assignment: Bytes = encoded(1, &|b| {
            ConsumerProtocolAssignment::default()
                .with_assigned_partitions(vec![TopicPartition::default()
                    .with_topic(kafka_protocol::messages::TopicName(
                        StrBytes::from_static_str("t"),
                    ))
                    .with_partitions(parts.clone())])
                .with_user_data(user_data.map(Bytes::from_static))
                .encode(b, 1)
                .unwrap();
        });
        g.members.insert(
            id.to_string(),
            crate::coordinator::group::Member {
                member_id: id.to_string(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 30_000,
                protocols: vec![("range".into(), subscription.clone())],
                assignment,
                awaiting_join: None,
                awaiting_sync: None,
                synced: true,
                session_deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(60),
                join_order: i as u64,
            },
        );
    }
    groups.insert("g".into(), g);
}

/// Kafka's validateOnlineUpgrade: a live classic group becomes a consumer group only with
/// the consumer protocol type and no assignor user data; else GROUP_ID_NOT_FOUND.
#[tokio::test]
async fn a_live_classic_group_upgrades_only_when_kafka_would() {
    let (gc, _sim) = coordinator();
    classic_group(&gc, "connect", &[("a", vec![0, 1])], None);
    let refused = gc
        .consumer_heartbeat(join("x"), &topics(2))
        .await
        .unwrap_err();
    assert_eq!(refused.0, CoordinatorError::GroupIdNotFound);
    assert!(refused
        .1
        .unwrap()
        .contains("does not use the consumer embedded protocol"));
    classic_group(&gc, "consumer", &[("a", vec![0, 1])], Some(b"sticky"));
    let refused = gc
        .consumer_heartbeat(join("x"), &topics(2))
        .await
        .unwrap_err();
    assert!(refused.1.unwrap().contains("unsupported custom assignor"));
    // A heartbeat at another epoch than 0 is never an upgrade.
    classic_group(&gc, "consumer", &[("a", vec![0, 1])], None);
    let refused = gc
        .consumer_heartbeat(beat("x", 3, &Assignment::new()), &topics(2))
        .await
        .unwrap_err();
    assert_eq!(refused.0, CoordinatorError::GroupIdNotFound);
    // Upgraded: the classic members keep what they had at epoch = generation 5; the new
    // member waits for what they still hold.
    let answer = gc.consumer_heartbeat(join("x"), &topics(2)).await.unwrap();
    let cg = gc
        .describe_consumer_group("g")
        .expect("a consumer group now");
    assert_eq!(cg.members["a"].epoch, 5);
    assert!(cg.members["a"].classic.is_some());
    assert_eq!(parts(&cg.members["a"].assigned), BTreeSet::from([0, 1]));
    assert_eq!(answer.member_epoch, 6, "the join bumped the group epoch");
    assert!(answer.assignment.is_some_and(|a| parts(&a).is_empty()));
    // The classic member is told to rejoin, and its JoinGroup (eager: owning nothing)
    // moves it to the new epoch, where SyncGroup gives it its half; then the new member
    // gets the partition it released.
    {
        let mut groups = gc.lock();
        let g = groups.get_mut("g").unwrap();
        assert_eq!(
            GroupCoordinator::heartbeat_consumer_group(g, "a", None, 5),
            Some(Err(CoordinatorError::RebalanceInProgress))
        );
    }
    let protocols = gc.lock()["g"].consumer.as_ref().unwrap().members["a"]
        .classic
        .as_ref()
        .unwrap()
        .protocols
        .clone();
    let rejoin = crate::coordinator::JoinRequest {
        group_id: "g".into(),
        member_id: "a".into(),
        group_instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols,
        require_known_member_id: true,
    };
    let joined = gc.join_consumer_group(&rejoin, &topics(2)).await.unwrap();
    assert_eq!(joined.error, None);
    assert_eq!(joined.generation_id, 6);
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert!(joined.leader_id.is_empty() && joined.members.is_empty());
    let synced = {
        let mut groups = gc.lock();
        let g = groups.get_mut("g").unwrap();
        gc.sync_consumer_group(g, "a", None, 6, (Some("consumer"), Some("range")))
            .unwrap()
    };
    assert_eq!(synced.error, None);
    assert!(!synced.assignment.is_empty());
    let mut x = Client {
        id: "x",
        epoch: 6,
        owned: Assignment::new(),
    };
    x.heartbeat(&gc, &topics(2)).await;
    let cg = gc.describe_consumer_group("g").unwrap();
    assert_eq!(parts(&x.owned).len(), 1);
    assert_eq!(parts(&cg.members["a"].assigned).len(), 1);
    assert!(parts(&x.owned).is_disjoint(&parts(&cg.members["a"].assigned)));
}

/// A consumer group left with classic members only becomes a classic group at generation =
/// its epoch, with their target assignments, and rebalances; after a power loss it is
/// still gone (its tombstones were written).
#[tokio::test]
async fn a_consumer_group_left_with_classic_members_downgrades() {
    let (gc, sim) = coordinator();
    classic_group(&gc, "consumer", &[("a", vec![0, 1])], None);
    let x = gc.consumer_heartbeat(join("x"), &topics(2)).await.unwrap();
    let epoch = gc.describe_consumer_group("g").unwrap().group_epoch;
    gc.consumer_heartbeat(beat("x", -1, &Assignment::new()), &topics(2))
        .await
        .unwrap();
    assert!(
        gc.describe_consumer_group("g").is_none(),
        "x was the last consumer-protocol member"
    );
    let d = gc.describe("g").expect("a classic group again");
    assert_eq!(
        d.state,
        crate::coordinator::group::GroupState::PreparingRebalance
    );
    assert_eq!(d.members.len(), 1);
    assert_eq!(
        gc.lock()["g"].generation_id,
        epoch,
        "the epoch before x left: members at it can still commit"
    );
    let _ = x;
    sim.power_loss();
    drop(gc);
    let gc = open(&sim);
    assert!(gc.describe_consumer_group("g").is_none());
}
