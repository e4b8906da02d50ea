//! The consumer group protocol in the coordinator, driven heartbeat by heartbeat.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use std::sync::Arc;

use super::heartbeat::{ConsumerHeartbeat, HeartbeatAnswer, TopicsView};
use super::Assignment;
use crate::config::{BrokerConfig, RawConfig, DEFAULT_CONFIG_YAML};
use crate::coordinator::{CoordinatorError, GroupCoordinator};
use crate::log_manager::LogManager;

/// A coordinator on simulated storage (these tests write nothing).
fn coordinator() -> (
    GroupCoordinator,
    crate::storage::simulated::SimulatedStorage,
) {
    let sim = crate::storage::simulated::SimulatedStorage::new(1);
    sim.create_dir_all_durable(std::path::Path::new("/data"));
    let mut raw = RawConfig::from_yaml(DEFAULT_CONFIG_YAML).unwrap();
    raw.set("log.dirs", "/data");
    raw.set("offsets.topic.num.partitions", "1");
    let config = Arc::new(BrokerConfig::from_raw(&raw).unwrap());
    let logs = Arc::new(LogManager::open(config.clone(), sim.shared()).unwrap());
    (
        GroupCoordinator::load(config.coordinator.clone(), logs).unwrap(),
        sim,
    )
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

    fn heartbeat(&mut self, gc: &GroupCoordinator, view: &TopicsView) {
        let answer = gc
            .consumer_heartbeat(beat(self.id, self.epoch, &self.owned), view)
            .expect("heartbeat");
        self.apply(answer);
    }
}

fn joined(gc: &GroupCoordinator, id: &'static str, view: &TopicsView) -> Client {
    let answer = gc.consumer_heartbeat(join(id), view).expect("join");
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
    let mut a = joined(&gc, "a", &view);
    assert_eq!(parts(&a.owned).len(), 6);
    assert_eq!(a.epoch, 1);
    let mut b = joined(&gc, "b", &view);
    // b waits for what a still owns; a gives up three first.
    assert!(parts(&b.owned).is_empty());
    assert_eq!(b.epoch, 2);
    for _ in 0..4 {
        a.heartbeat(&gc, &view);
        b.heartbeat(&gc, &view);
        let (pa, pb) = (parts(&a.owned), parts(&b.owned));
        assert!(pa.is_disjoint(&pb), "two owners: {pa:?} {pb:?}");
    }
    assert_eq!((parts(&a.owned).len(), parts(&b.owned).len()), (3, 3));
    assert_eq!((a.epoch, b.epoch), (2, 2));
    let g = gc.describe_consumer_group("g").unwrap();
    assert_eq!(g.state(), "Stable");
    // a leaves: b gets everything.
    gc.consumer_heartbeat(beat("a", -1, &a.owned), &view)
        .unwrap();
    b.heartbeat(&gc, &view);
    assert_eq!(parts(&b.owned).len(), 6);
    assert_eq!(b.epoch, 3);
}

#[tokio::test]
async fn wrong_epochs_are_fenced_and_unknown_members_refused() {
    let (gc, _sim) = coordinator();
    let view = topics(2);
    let a = joined(&gc, "a", &view);
    let err = gc
        .consumer_heartbeat(beat("a", a.epoch + 1, &a.owned), &view)
        .unwrap_err();
    assert_eq!(err.0, CoordinatorError::FencedMemberEpoch);
    let err = gc
        .consumer_heartbeat(beat("z", 1, &Assignment::new()), &view)
        .unwrap_err();
    assert_eq!(err.0, CoordinatorError::UnknownMemberId);
    // b joins; a revokes one partition (keeping epoch 1), then moves to epoch 2.
    let _b = joined(&gc, "b", &view);
    let mut a = a;
    let both = a.owned.clone();
    a.heartbeat(&gc, &view);
    assert_eq!((a.epoch, parts(&a.owned).len()), (1, 1));
    a.heartbeat(&gc, &view);
    assert_eq!(a.epoch, 2);
    // The previous epoch is fine while the member owns no more than it is assigned (it
    // missed the answer that moved it on), not while it claims more.
    let ok = gc.consumer_heartbeat(beat("a", 1, &a.owned), &view);
    assert_eq!(ok.map(|answer| answer.member_epoch), Ok(2));
    let err = gc
        .consumer_heartbeat(beat("a", 1, &both), &view)
        .unwrap_err();
    assert_eq!(err.0, CoordinatorError::FencedMemberEpoch);
    // A join must carry a subscription and no owned partitions.
    let mut bad = join("c");
    bad.subscribed_topic_names = None;
    assert_eq!(
        gc.consumer_heartbeat(bad, &view).unwrap_err().0,
        CoordinatorError::InvalidRequest
    );
    let mut bad = join("c");
    bad.server_assignor = Some("sticky".into());
    assert_eq!(
        gc.consumer_heartbeat(bad, &view).unwrap_err().0,
        CoordinatorError::UnsupportedAssignor
    );
}

#[tokio::test]
async fn new_partitions_and_regex_subscriptions_are_picked_up() {
    let (gc, _sim) = coordinator();
    let mut a = joined(&gc, "a", &topics(2));
    assert_eq!(parts(&a.owned).len(), 2);
    // The topic grows: the next heartbeat bumps the epoch and hands out the new ones.
    let grown = topics(4);
    a.heartbeat(&gc, &grown);
    assert_eq!(parts(&a.owned).len(), 4);
    assert_eq!(a.epoch, 2);
    // A regex subscription covers topics by name.
    let other = Uuid::from_u128(9);
    let mut both = grown.clone();
    both.insert("t-2".into(), (other, 1));
    let mut r = join("r");
    r.subscribed_topic_names = Some(vec![]);
    r.subscribed_topic_regex = Some("t-.*".into());
    let answer = gc.consumer_heartbeat(r, &both).unwrap();
    // As in Kafka, a new regex is resolved asynchronously: nothing yet, then its topics.
    assert_eq!(answer.assignment, Some(Assignment::new()));
    gc.tick(tokio::time::Instant::now());
    let answer = gc
        .consumer_heartbeat(beat("r", answer.member_epoch, &Assignment::new()), &both)
        .unwrap();
    let owned = answer.assignment.unwrap();
    assert_eq!(owned.keys().copied().collect::<Vec<_>>(), vec![other]);
    let mut bad = join("x");
    bad.subscribed_topic_regex = Some("(".into());
    assert_eq!(
        gc.consumer_heartbeat(bad, &both).unwrap_err().0,
        CoordinatorError::InvalidRegularExpression
    );
}

#[tokio::test]
async fn commits_need_the_members_current_epoch() {
    let (gc, _sim) = coordinator();
    let view = topics(1);
    let a = joined(&gc, "a", &view);
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
