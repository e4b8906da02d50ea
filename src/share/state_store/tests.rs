//! The share coordinator's state: ranges as they are put and pruned, its records encoded
//! and replayed, and a snapshot value against Kafka's encoding.

use super::*;

fn batch(first: i64, last: i64, state: i8, count: i16) -> StateBatch {
    StateBatch {
        first_offset: first,
        last_offset: last,
        delivery_state: state,
        delivery_count: count,
    }
}

#[test]
fn a_newer_range_cuts_what_it_overlaps_and_neighbours_that_agree_merge() {
    let mut s = ShareState {
        start_offset: 0,
        ..ShareState::default()
    };
    s.put(&batch(0, 9, AVAILABLE, 1));
    s.put(&batch(3, 5, ACKNOWLEDGED, 1));
    assert_eq!(
        s.state_batches(),
        vec![
            batch(0, 2, AVAILABLE, 1),
            batch(3, 5, ACKNOWLEDGED, 1),
            batch(6, 9, AVAILABLE, 1)
        ]
    );
    s.put(&batch(0, 2, ACKNOWLEDGED, 1));
    s.put(&batch(6, 9, ACKNOWLEDGED, 1));
    assert_eq!(s.state_batches(), vec![batch(0, 9, ACKNOWLEDGED, 1)]);
    s.start_offset = 4;
    s.prune_below_start();
    assert_eq!(s.state_batches(), vec![batch(4, 9, ACKNOWLEDGED, 1)]);
}

#[test]
fn records_encode_and_replay_to_the_same_state() {
    let key = SharePartitionKey {
        group: "g".into(),
        topic_id: Uuid::from_u128(7),
        partition: 3,
    };
    let stored = Stored {
        state: ShareState {
            state_epoch: 2,
            leader_epoch: 0,
            start_offset: 10,
            delivery_complete_count: 1,
            batches: BTreeMap::from([(10, (12, AVAILABLE, 2)), (13, (13, ARCHIVED, 5))]),
        },
        snapshot_epoch: 1,
        create_timestamp: 5,
        updates_since_snapshot: 0,
        snapshot_offset: 0,
    };
    let mut p = StorePartition::default();
    apply(
        &mut p,
        0,
        &key.record_key(SNAPSHOT),
        Some(&snapshot_value(&stored, 6)),
    );
    assert_eq!(p.states[&key].state, stored.state);
    let update = update_value(
        1,
        11,
        2,
        &[
            batch(10, 10, ACKNOWLEDGED, 2),
            batch(11, 11, ACKNOWLEDGED, 2),
        ],
    );
    apply(&mut p, 1, &key.record_key(UPDATE), Some(&update));
    let s = &p.states[&key].state;
    assert_eq!(s.start_offset, 11);
    assert_eq!(s.delivery_complete_count, 2);
    assert_eq!(
        s.state_batches(),
        vec![
            batch(11, 11, ACKNOWLEDGED, 2),
            batch(12, 12, AVAILABLE, 2),
            batch(13, 13, ARCHIVED, 5)
        ]
    );
    // A tombstone deletes it; an update without a snapshot creates nothing.
    apply(&mut p, 2, &key.record_key(SNAPSHOT), None);
    apply(&mut p, 3, &key.record_key(UPDATE), Some(&update));
    assert!(p.states.is_empty());
}

/// The bytes of a ShareSnapshotValue as Kafka's generated code writes them (field by
/// field from ShareSnapshotValue.json, version 0, flexible).
#[test]
fn a_snapshot_value_is_kafkas_encoding() {
    let stored = Stored {
        state: ShareState {
            state_epoch: 1,
            leader_epoch: 0,
            start_offset: 5,
            delivery_complete_count: -1,
            batches: BTreeMap::from([(5, (6, ACKNOWLEDGED, 1))]),
        },
        snapshot_epoch: 0,
        create_timestamp: 0x0102,
        updates_since_snapshot: 0,
        snapshot_offset: 0,
    };
    let expected: Vec<u8> = [
        &[0u8, 0][..],             // version 0
        &[0, 0, 0, 0],             // snapshot epoch
        &[0, 0, 0, 1],             // state epoch
        &[0, 0, 0, 0],             // leader epoch
        &[0, 0, 0, 0, 0, 0, 0, 5], // start offset
        &[0, 0, 0, 0, 0, 0, 1, 2], // create timestamp
        &[0, 0, 0, 0, 0, 0, 0, 9], // write timestamp
        &[2],                      // one state batch
        &[0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 6, 2, 0, 1, 0],
        &[0], // no tagged fields: DeliveryCompleteCount at its default
    ]
    .concat();
    assert_eq!(snapshot_value(&stored, 9), expected);
}
