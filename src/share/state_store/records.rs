//! The records of `__share_group_state`, Kafka's byte for byte (the layout is in the
//! parent module's doc): encoding a ShareSnapshot or ShareUpdate value, and applying a
//! replayed record to a partition's state.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{SharePartitionKey, ShareState, StateBatch, StorePartition, Stored, SNAPSHOT, UPDATE};
use crate::coordinator::flexible::{Fields, Value};
use crate::coordinator::internal_topic::Reader;

fn put_batches(v: &mut Value, batches: &[StateBatch]) {
    v.uvarint(batches.len() as u64 + 1);
    for b in batches {
        v.i64(b.first_offset);
        v.i64(b.last_offset);
        v.i8(b.delivery_state);
        v.i16(b.delivery_count);
        v.no_tags();
    }
}

/// Tag 0, DeliveryCompleteCount, when not its default -1.
fn put_complete_count(v: &mut Value, count: i32) {
    if count == -1 {
        v.no_tags();
    } else {
        v.0.extend_from_slice(&[1, 0, 4]);
        v.i32(count);
    }
}

pub(super) fn snapshot_value(s: &Stored, now: i64) -> Vec<u8> {
    let mut v = Value::new();
    v.i32(s.snapshot_epoch);
    v.i32(s.state.state_epoch);
    v.i32(s.state.leader_epoch);
    v.i64(s.state.start_offset);
    v.i64(s.create_timestamp);
    v.i64(now);
    put_batches(&mut v, &s.state.state_batches());
    put_complete_count(&mut v, s.state.delivery_complete_count);
    v.0
}

pub(super) fn update_value(
    snapshot_epoch: i32,
    start_offset: i64,
    delivery_complete_count: i32,
    batches: &[StateBatch],
) -> Vec<u8> {
    let mut v = Value::new();
    v.i32(snapshot_epoch);
    v.i32(0); // leader epoch: one node leads every partition
    v.i64(start_offset);
    put_batches(&mut v, batches);
    put_complete_count(&mut v, delivery_complete_count);
    v.0
}

fn read_batches(f: &mut Fields<'_>) -> Option<Vec<StateBatch>> {
    let n = f.len()?;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        out.push(StateBatch {
            first_offset: f.i64()?,
            last_offset: f.i64()?,
            delivery_state: f.i8()?,
            delivery_count: f.i16()?,
        });
        f.tags()?;
    }
    Some(out)
}

fn complete_count(tag0: Option<&[u8]>) -> i32 {
    tag0.and_then(|t| t.try_into().ok())
        .map_or(-1, i32::from_be_bytes)
}

/// Applies one record at `offset`; records that do not decode are skipped.
pub(super) fn apply(into: &mut StorePartition, offset: i64, key: &[u8], value: Option<&[u8]>) {
    let mut k = Reader::new(key);
    let Some(kind) = k.i16().filter(|k| matches!(*k, SNAPSHOT | UPDATE)) else {
        return;
    };
    let (Some(group), Some(topic), Some(partition)) = (k.string(), k.take(16), k.i32()) else {
        return;
    };
    let Ok(topic_id) = Uuid::from_slice(topic) else {
        return;
    };
    let key = SharePartitionKey {
        group,
        topic_id,
        partition,
    };
    let Some(value) = value else {
        into.states.remove(&key);
        return;
    };
    let mut r = Reader::new(value);
    if r.i16() != Some(0) {
        return;
    }
    let mut f = Fields(r);
    if kind == SNAPSHOT {
        let read = (|| {
            let snapshot_epoch = f.i32()?;
            let state_epoch = f.i32()?;
            let leader_epoch = f.i32()?;
            let start_offset = f.i64()?;
            let create_timestamp = f.i64()?;
            let _write_timestamp = f.i64()?;
            let batches = read_batches(&mut f)?;
            let count = complete_count(f.tags()?);
            let mut state = ShareState {
                state_epoch,
                leader_epoch,
                start_offset,
                delivery_complete_count: count,
                batches: BTreeMap::new(),
            };
            for b in &batches {
                state.put(b);
            }
            Some(Stored {
                state,
                snapshot_epoch,
                create_timestamp,
                updates_since_snapshot: 0,
                snapshot_offset: offset,
            })
        })();
        if let Some(stored) = read {
            into.states.insert(key, stored);
        }
    } else {
        let read = (|| {
            let _snapshot_epoch = f.i32()?;
            let _leader_epoch = f.i32()?;
            let start_offset = f.i64()?;
            let batches = read_batches(&mut f)?;
            Some((start_offset, batches, complete_count(f.tags()?)))
        })();
        let (Some((start_offset, batches, count)), Some(stored)) =
            (read, into.states.get_mut(&key))
        else {
            return;
        };
        if start_offset >= 0 {
            stored.state.start_offset = start_offset;
        }
        stored.state.delivery_complete_count = count;
        for b in &batches {
            stored.state.put(b);
        }
        stored.state.prune_below_start();
        stored.updates_since_snapshot += 1;
    }
}
