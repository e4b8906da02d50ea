//! Share groups on disk: Kafka 4.2's share group records in `__consumer_offsets`, byte for
//! byte, so that a share group and its members survive a restart (and a kill -9).
//!
//! ```text
//! key:   i16 record type | string group id [| string member id]      (non-flexible, v0)
//! value: i16 version 0   | the value message, flexible; a null value is a tombstone
//!   10 ShareGroupMemberMetadata          rack id?, client id, client host, subscribed names []
//!   11 ShareGroupMetadata                epoch i32, metadata hash i64
//!   12 ShareGroupTargetAssignmentMetadata  assignment epoch i32
//!   13 ShareGroupTargetAssignmentMember    [topic id uuid, partitions [i32]]
//!   14 ShareGroupCurrentMemberAssignment   member epoch, previous epoch, state i8 (0,
//!                                        stable), assigned [..]
//! ```
//!
//! Which share-partitions are initialised (Kafka's record 15) is not written here: the
//! share coordinator's own state (`share/state_store.rs`) is the one place that says so.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::{ShareGroup, ShareMember};
use crate::coordinator::consumer::Assignment;
use crate::coordinator::flexible::{Fields, Value};
use crate::coordinator::internal_topic::{put_string, Reader};

const MEMBER_METADATA: i16 = 10;
const GROUP_METADATA: i16 = 11;
const TARGET_METADATA: i16 = 12;
const TARGET_MEMBER: i16 = 13;
const CURRENT_ASSIGNMENT: i16 = 14;

/// A record: key bytes and value bytes (None: a tombstone).
pub type Record = (Vec<u8>, Option<Vec<u8>>);

fn key(kind: i16, group: &str, member: Option<&str>) -> Vec<u8> {
    let mut out = kind.to_be_bytes().to_vec();
    put_string(&mut out, group);
    if let Some(m) = member {
        put_string(&mut out, m);
    }
    out
}

fn member_metadata(group: &str, m: &ShareMember) -> Record {
    let mut v = Value::new();
    v.nullable(m.rack_id.as_deref());
    v.string(&m.client_id);
    v.string(&m.client_host);
    v.uvarint(m.subscribed_topic_names.len() as u64 + 1);
    for t in &m.subscribed_topic_names {
        v.string(t);
    }
    v.no_tags();
    (key(MEMBER_METADATA, group, Some(&m.member_id)), Some(v.0))
}

fn group_metadata(group: &str, g: &ShareGroup) -> Record {
    let mut v = Value::new();
    v.i32(g.group_epoch);
    v.i64(g.metadata_hash);
    v.no_tags();
    (key(GROUP_METADATA, group, None), Some(v.0))
}

fn target_metadata(group: &str, g: &ShareGroup) -> Record {
    let mut v = Value::new();
    v.i32(g.assignment_epoch);
    v.no_tags();
    (key(TARGET_METADATA, group, None), Some(v.0))
}

fn target_member(group: &str, member: &str, target: &Assignment) -> Record {
    let mut v = Value::new();
    v.partitions(target);
    v.no_tags();
    (key(TARGET_MEMBER, group, Some(member)), Some(v.0))
}

fn current_assignment(group: &str, m: &ShareMember) -> Record {
    let mut v = Value::new();
    v.i32(m.epoch);
    v.i32(m.previous_epoch);
    v.i8(0); // STABLE: share members have no other state
    v.partitions(&m.assigned);
    v.no_tags();
    (
        key(CURRENT_ASSIGNMENT, group, Some(&m.member_id)),
        Some(v.0),
    )
}

fn metadata_differs(a: &ShareMember, b: &ShareMember) -> bool {
    a.rack_id != b.rack_id
        || a.client_id != b.client_id
        || a.client_host != b.client_host
        || a.subscribed_topic_names != b.subscribed_topic_names
}

fn assignment_differs(a: &ShareMember, b: &ShareMember) -> bool {
    a.epoch != b.epoch || a.previous_epoch != b.previous_epoch || a.assigned != b.assigned
}

/// The records that take a share group from `before` (None: it did not exist) to `after`
/// (None: it is deleted), in Kafka's order: members, the group epoch, the target
/// assignment, the members' current assignments; tombstones for members that left.
pub fn changes(
    group: &str,
    before: Option<&ShareGroup>,
    after: Option<&ShareGroup>,
) -> Vec<Record> {
    let empty = ShareGroup::default();
    let b = before.unwrap_or(&empty);
    let Some(a) = after else {
        let mut out: Vec<Record> = Vec::new();
        for id in b.members.keys() {
            for kind in [CURRENT_ASSIGNMENT, TARGET_MEMBER, MEMBER_METADATA] {
                out.push((key(kind, group, Some(id)), None));
            }
        }
        if before.is_some() {
            out.push((key(TARGET_METADATA, group, None), None));
            out.push((key(GROUP_METADATA, group, None), None));
        }
        return out;
    };
    let mut out = Vec::new();
    for (id, m) in &a.members {
        if b.members.get(id).is_none_or(|old| metadata_differs(old, m)) {
            out.push(member_metadata(group, m));
        }
    }
    for id in b.members.keys().filter(|id| !a.members.contains_key(*id)) {
        out.push((key(CURRENT_ASSIGNMENT, group, Some(id)), None));
        out.push((key(TARGET_MEMBER, group, Some(id)), None));
        out.push((key(MEMBER_METADATA, group, Some(id)), None));
    }
    if before.is_none() || a.group_epoch != b.group_epoch || a.metadata_hash != b.metadata_hash {
        out.push(group_metadata(group, a));
    }
    for (id, t) in &a.target {
        if b.target.get(id) != Some(t) {
            out.push(target_member(group, id, t));
        }
    }
    if before.is_none() || a.assignment_epoch != b.assignment_epoch {
        out.push(target_metadata(group, a));
    }
    for (id, m) in &a.members {
        if b.members
            .get(id)
            .is_none_or(|old| assignment_differs(old, m))
        {
            out.push(current_assignment(group, m));
        }
    }
    out
}

/// Share groups rebuilt from their records, in log order.
#[derive(Default)]
pub struct Replayed {
    pub groups: BTreeMap<String, ShareGroup>,
}

impl Replayed {
    /// Applies one record; false if it is not a share group record (or does not decode).
    pub fn apply(&mut self, key_bytes: &[u8], value: Option<&[u8]>, now: Instant) -> bool {
        let mut key = Reader::new(key_bytes);
        let Some(kind) = key.i16() else { return false };
        if !(MEMBER_METADATA..=CURRENT_ASSIGNMENT).contains(&kind) {
            return false;
        }
        let Some(group) = key.string() else {
            return false;
        };
        let member = if matches!(kind, MEMBER_METADATA | TARGET_MEMBER | CURRENT_ASSIGNMENT) {
            let Some(m) = key.string() else { return false };
            Some(m)
        } else {
            None
        };
        let Some(value) = value else {
            if let Some(g) = self.groups.get_mut(&group) {
                match (kind, member) {
                    (MEMBER_METADATA, Some(id)) => {
                        g.members.remove(&id);
                    }
                    (TARGET_MEMBER, Some(id)) => {
                        g.target.remove(&id);
                    }
                    (GROUP_METADATA, _) => {
                        self.groups.remove(&group);
                    }
                    _ => {}
                }
            }
            return true;
        };
        let mut reader = Reader::new(value);
        if reader.i16() != Some(0) {
            return false;
        }
        let mut f = Fields(reader);
        let existed = self.groups.contains_key(&group);
        let g = self.groups.entry(group.clone()).or_default();
        let decoded = match (kind, member) {
            (GROUP_METADATA, _) => f.i32().and_then(|e| {
                g.group_epoch = e;
                g.metadata_hash = f.i64()?;
                Some(())
            }),
            (TARGET_METADATA, _) => f.i32().map(|e| g.assignment_epoch = e),
            (TARGET_MEMBER, Some(id)) => f.partitions().map(|p| {
                g.target.insert(id, p);
            }),
            (MEMBER_METADATA, Some(id)) => (|| {
                let rack_id = f.nullable()?;
                let client_id = f.string()?;
                let client_host = f.string()?;
                let mut names = Vec::new();
                for _ in 0..f.len()? {
                    names.push(f.string()?);
                }
                Some((rack_id, client_id, client_host, names))
            })()
            .map(|(rack_id, client_id, client_host, names)| {
                let m = g
                    .members
                    .entry(id.clone())
                    .or_insert_with(|| ShareMember::new(id, now));
                m.rack_id = rack_id;
                m.client_id = client_id;
                m.client_host = client_host;
                m.subscribed_topic_names = names;
            }),
            (CURRENT_ASSIGNMENT, Some(id)) => (|| {
                let epoch = f.i32()?;
                let previous = f.i32()?;
                let _state = f.i8()?;
                let assigned = f.partitions()?;
                Some((epoch, previous, assigned))
            })()
            .map(|(epoch, previous, assigned)| {
                let m = g
                    .members
                    .entry(id.clone())
                    .or_insert_with(|| ShareMember::new(id, now));
                m.epoch = epoch;
                m.previous_epoch = previous;
                m.assigned = assigned;
            }),
            _ => None,
        };
        if decoded.is_none() && !existed {
            self.groups.remove(&group);
        }
        decoded.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn a_group_replays_from_its_records() {
        let now = Instant::now();
        let mut g = ShareGroup {
            group_epoch: 3,
            assignment_epoch: 3,
            metadata_hash: 42,
            ..ShareGroup::default()
        };
        let mut m = ShareMember::new("m1".into(), now);
        m.client_id = "c".into();
        m.client_host = "/127.0.0.1".into();
        m.subscribed_topic_names = vec!["t".into()];
        m.epoch = 3;
        m.previous_epoch = 2;
        let a: Assignment = [(Uuid::from_u128(9), [0, 1].into_iter().collect())]
            .into_iter()
            .collect();
        m.assigned = a.clone();
        g.members.insert("m1".into(), m);
        g.target.insert("m1".into(), a);
        let mut replayed = Replayed::default();
        for (k, v) in changes("g", None, Some(&g)) {
            assert!(replayed.apply(&k, v.as_deref(), now));
        }
        let back = &replayed.groups["g"];
        assert_eq!(back.group_epoch, 3);
        assert_eq!(back.metadata_hash, 42);
        assert_eq!(back.members["m1"].assigned, g.members["m1"].assigned);
        assert_eq!(
            back.members["m1"].subscribed_topic_names,
            vec!["t".to_string()]
        );
        assert_eq!(back.target, g.target);
        // Deleted: tombstones take it away.
        for (k, v) in changes("g", Some(&g), None) {
            replayed.apply(&k, v.as_deref(), now);
        }
        assert!(replayed.groups.is_empty());
    }

    /// ShareGroupMetadataValue v0 as Kafka's generated code writes it: epoch, metadata hash
    /// (a regular field in share groups, unlike consumer groups' tag), no tags.
    #[test]
    fn group_metadata_is_kafkas_encoding() {
        let g = ShareGroup {
            group_epoch: 1,
            metadata_hash: 2,
            ..ShareGroup::default()
        };
        let (k, v) = group_metadata("g", &g);
        assert_eq!(k, vec![0, 11, 0, 1, b'g']);
        assert_eq!(
            v.unwrap(),
            vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0]
        );
    }
}
