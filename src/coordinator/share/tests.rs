//! Share groups on simulated storage: membership through the coordinator, records through
//! the share manager, and both surviving a power loss as the members last heard of them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::ShareHeartbeat;
use crate::config::{BrokerConfig, RawConfig, DEFAULT_CONFIG_YAML};
use crate::coordinator::group_configs::AutoOffsetReset;
use crate::coordinator::{CoordinatorError, GroupCoordinator};
use crate::log::record_batch::{check_batch, test_support::batch};
use crate::log_manager::LogManager;
use crate::share::partition::{Acknowledgement, ACK_ACCEPT, ACK_RELEASE};
use crate::share::state_store::{SharePartitionKey, ShareStateStore};
use crate::share::{ShareGroupSettings, ShareManager};
use crate::storage::simulated::SimulatedStorage;

/// The broker's share side on `sim`'s disk: logs, coordinator, share manager.
struct Opened {
    logs: Arc<LogManager>,
    groups: GroupCoordinator,
    shares: ShareManager,
}

fn open(sim: &SimulatedStorage) -> Opened {
    sim.create_dir_all_durable(std::path::Path::new("/data"));
    let mut raw = RawConfig::from_yaml(DEFAULT_CONFIG_YAML).unwrap();
    raw.set("log.dirs", "/data");
    raw.set("offsets.topic.num.partitions", "1");
    raw.set("share.coordinator.state.topic.num.partitions", "2");
    raw.set(
        "share.coordinator.snapshot.update.records.per.snapshot",
        "3",
    );
    let config = Arc::new(BrokerConfig::from_raw(&raw).unwrap());
    let logs = Arc::new(LogManager::open(config.clone(), sim.shared()).unwrap());
    let store =
        Arc::new(ShareStateStore::load(logs.clone(), config.coordinator.share.clone()).unwrap());
    let groups = GroupCoordinator::load(config.coordinator.clone(), logs.clone())
        .unwrap()
        .with_share_store(store.clone());
    let shares = ShareManager::new(config.coordinator.share.clone(), store);
    Opened {
        logs,
        groups,
        shares,
    }
}

fn join(member: &str) -> ShareHeartbeat {
    ShareHeartbeat {
        group_id: "g".into(),
        member_id: member.into(),
        member_epoch: 0,
        rack_id: None,
        subscribed_topic_names: Some(vec!["t".into()]),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
    }
}

const SETTINGS: ShareGroupSettings = ShareGroupSettings {
    record_lock_duration: Duration::from_secs(30),
    auto_offset_reset: AutoOffsetReset::Earliest,
    read_committed: false,
};

fn offsets(ranges: &[crate::share::partition::AcquiredRange]) -> BTreeSet<i64> {
    ranges
        .iter()
        .flat_map(|r| r.first_offset..=r.last_offset)
        .collect()
}

#[tokio::test]
async fn share_groups_and_their_records_survive_a_power_loss() {
    let sim = SimulatedStorage::new(7);
    let o = open(&sim);
    let topic = o.logs.create_topic("t", 2, 1, BTreeMap::new()).unwrap();
    for p in &topic.partitions {
        for i in 0..4 {
            let b = batch(&[b"a", b"b", b"c", b"d", b"e"], i);
            let h = check_batch(&b).unwrap();
            let info = p.append(&b, &[h]).unwrap();
            p.wait_durable(&info).await.unwrap();
        }
    }
    let view = BTreeMap::from([("t".to_string(), (topic.id, 2))]);
    let a = o.groups.share_heartbeat(join("a"), &view).await.unwrap();
    let all: BTreeSet<i32> = a.assignment.as_ref().unwrap()[&topic.id].clone();
    assert_eq!(
        all,
        BTreeSet::from([0, 1]),
        "a alone gets both partitions at once"
    );
    let b = o.groups.share_heartbeat(join("b"), &view).await.unwrap();
    assert_eq!(b.assignment.as_ref().unwrap()[&topic.id].len(), 1);
    // Another type's heartbeat for the id is refused; and the other way round.
    assert!(matches!(
        o.groups
            .share_heartbeat(
                ShareHeartbeat {
                    member_epoch: 9,
                    ..join("x")
                },
                &view
            )
            .await,
        Err((CoordinatorError::UnknownMemberId, _))
    ));
    let before = o.groups.describe_share_group("g").unwrap();

    // Records of partition 0: a acquires, accepts 0-4, releases 5-9, keeps 10-19 unsettled.
    let key = SharePartitionKey {
        group: "g".into(),
        topic_id: topic.id,
        partition: 0,
    };
    let entry = o.shares.entry(key.clone(), &topic.partitions[0]);
    let member: Arc<str> = "a".into();
    let got = o
        .shares
        .acquire(&entry, &member, 100, 500, 1 << 20, false, &SETTINGS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(offsets(&got.ranges), (0..20).collect());
    let ack = |first, last, kind| Acknowledgement {
        first_offset: first,
        last_offset: last,
        types: vec![kind],
    };
    for acks in [vec![ack(0, 4, ACK_ACCEPT)], vec![ack(5, 9, ACK_RELEASE)]] {
        o.shares
            .acknowledge(&entry, "a", &acks, &SETTINGS)
            .await
            .unwrap();
    }

    sim.power_loss();
    drop(o);
    let o = open(&sim);
    let after = o
        .groups
        .describe_share_group("g")
        .expect("the group is back");
    assert_eq!(
        (after.group_epoch, after.assignment_epoch),
        (before.group_epoch, before.assignment_epoch)
    );
    for (id, m) in &before.members {
        assert_eq!(
            (after.members[id].epoch, &after.members[id].assigned),
            (m.epoch, &m.assigned)
        );
    }
    let state = o.shares.store.read(&key).await.expect("state is back");
    assert_eq!(state.start_offset, 5, "0-4 accepted");
    // What was released comes back at delivery count 2; what was held unsettled (never
    // written) comes back as never delivered; what was accepted never comes back.
    let entry = o
        .shares
        .entry(key.clone(), &o.logs.topic("t").unwrap().partitions[0]);
    let got = o
        .shares
        .acquire(&entry, &"b".into(), 100, 500, 1 << 20, false, &SETTINGS)
        .await
        .unwrap()
        .unwrap();
    let counts: BTreeMap<i64, i16> = got
        .ranges
        .iter()
        .flat_map(|r| (r.first_offset..=r.last_offset).map(move |o| (o, r.delivery_count)))
        .collect();
    assert_eq!(
        counts.keys().copied().collect::<BTreeSet<i64>>(),
        (5..20).collect()
    );
    assert!((5..10).all(|o| counts[&o] == 2));
    assert!((10..20).all(|o| counts[&o] == 1));
    // Enough acknowledgements to write snapshots among updates, then another power loss.
    for o_ in 5..20 {
        o.shares
            .acknowledge(&entry, "b", &[ack(o_, o_, ACK_ACCEPT)], &SETTINGS)
            .await
            .unwrap();
    }
    sim.power_loss();
    drop(o);
    let o = open(&sim);
    let state = o.shares.store.read(&key).await.unwrap();
    assert_eq!(state.start_offset, 20);
    // Deleting the group (it has members: refused) after they leave removes its state.
    assert_eq!(
        o.groups.delete_group("g").await,
        Err(CoordinatorError::NonEmptyGroup)
    );
    for m in ["a", "b"] {
        o.groups
            .share_heartbeat(
                ShareHeartbeat {
                    member_epoch: -1,
                    subscribed_topic_names: None,
                    ..join(m)
                },
                &view,
            )
            .await
            .unwrap();
    }
    o.groups.delete_group("g").await.unwrap();
    assert!(o.shares.store.read(&key).await.is_none());
    sim.power_loss();
    drop(o);
    let o = open(&sim);
    assert!(o.groups.describe_share_group("g").is_none());
    assert!(o.shares.store.read(&key).await.is_none());
}
