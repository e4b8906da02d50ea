//! Consumer groups on disk: Kafka 4.1's records in `__consumer_offsets`, byte for byte, so
//! a group survives a restart (and a kill -9) as Kafka's does.
//!
//! ```text
//! key:   i16 record type | string group id [| string member id]      (non-flexible, v0)
//! value: i16 version 0   | the value message, flexible (compact strings and arrays,
//!        a tagged-field section after every struct); a null value is a tombstone
//!   3 ConsumerGroupMetadata              epoch i32 (tag 0: MetadataHash, left at 0)
//!   5 ConsumerGroupMemberMetadata        instance id?, rack id?, client id, client host,
//!                                        subscribed names [], regex?, rebalance timeout,
//!                                        server assignor?; tag 0: ClassicMemberMetadata,
//!                                        null for a consumer-protocol member, else its
//!                                        session timeout and JoinGroup protocols
//!   6 ConsumerGroupTargetAssignmentMetadata  assignment epoch i32
//!   7 ConsumerGroupTargetAssignmentMember    [topic id uuid, partitions [i32]]
//!   8 ConsumerGroupCurrentMemberAssignment   member epoch, previous epoch, state i8,
//!                                        assigned [..], pending revocation [..]
//! ```
//!
//! `changes` turns what a heartbeat or timer did to a group into the records that say so;
//! `Replayed` rebuilds the groups from them at start-up.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::{Assignment, ClassicMembership, ConsumerGroup, ConsumerMember, MemberState};
use crate::coordinator::flexible::{Fields, Value};
use crate::coordinator::internal_topic::{put_string, Reader};

const GROUP_METADATA: i16 = 3;
const MEMBER_METADATA: i16 = 5;
const TARGET_METADATA: i16 = 6;
const TARGET_MEMBER: i16 = 7;
const CURRENT_ASSIGNMENT: i16 = 8;

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

fn group_metadata(group: &str, cg: &ConsumerGroup) -> Record {
    let mut v = Value::new();
    v.i32(cg.group_epoch);
    // Tag 0, MetadataHash, when not its default 0.
    if cg.metadata_hash == 0 {
        v.no_tags();
    } else {
        v.0.extend_from_slice(&[1, 0, 8]);
        v.0.extend_from_slice(&cg.metadata_hash.to_be_bytes());
    }
    (key(GROUP_METADATA, group, None), Some(v.0))
}

fn target_metadata(group: &str, cg: &ConsumerGroup) -> Record {
    let mut v = Value::new();
    v.i32(cg.assignment_epoch);
    v.no_tags();
    (key(TARGET_METADATA, group, None), Some(v.0))
}

fn member_metadata(group: &str, m: &ConsumerMember) -> Record {
    let mut v = Value::new();
    v.nullable(m.instance_id.as_deref());
    v.nullable(m.rack_id.as_deref());
    v.string(&m.client_id);
    v.string(&m.client_host);
    v.uvarint(m.subscribed_topic_names.len() as u64 + 1);
    for t in &m.subscribed_topic_names {
        v.string(t);
    }
    v.nullable(m.subscribed_topic_regex.as_ref().map(|(r, _)| r.as_str()));
    v.i32(m.rebalance_timeout_ms);
    v.nullable(m.server_assignor.as_deref());
    // Tag 0, ClassicMemberMetadata: null for a consumer-protocol member, as Kafka writes it
    // (left out, Kafka would read the member as a classic one); else a present struct
    // (marker 1), its session timeout and JoinGroup protocols.
    let mut tag = Value(Vec::new());
    match &m.classic {
        None => tag.i8(0),
        Some(c) => {
            tag.i8(1);
            tag.i32(c.session_timeout_ms);
            tag.uvarint(c.protocols.len() as u64 + 1);
            for (name, metadata) in &c.protocols {
                tag.string(name);
                tag.bytes(metadata);
                tag.no_tags();
            }
            tag.no_tags();
        }
    }
    v.uvarint(1);
    v.uvarint(0);
    v.uvarint(tag.0.len() as u64);
    v.0.extend_from_slice(&tag.0);
    (key(MEMBER_METADATA, group, Some(&m.member_id)), Some(v.0))
}

fn target_member(group: &str, member: &str, target: &Assignment) -> Record {
    let mut v = Value::new();
    v.partitions(target);
    v.no_tags();
    (key(TARGET_MEMBER, group, Some(member)), Some(v.0))
}

fn current_assignment(group: &str, m: &ConsumerMember) -> Record {
    let mut v = Value::new();
    v.i32(m.epoch);
    v.i32(m.previous_epoch);
    v.i8(match m.state {
        MemberState::Stable => 0,
        MemberState::UnrevokedPartitions => 1,
        MemberState::UnreleasedPartitions => 2,
    });
    v.partitions(&m.assigned);
    v.partitions(&m.revoking);
    v.no_tags();
    (
        key(CURRENT_ASSIGNMENT, group, Some(&m.member_id)),
        Some(v.0),
    )
}

/// Whether two members differ in what record 5 holds.
fn metadata_differs(a: &ConsumerMember, b: &ConsumerMember) -> bool {
    a.instance_id != b.instance_id
        || a.rack_id != b.rack_id
        || a.client_id != b.client_id
        || a.client_host != b.client_host
        || a.subscribed_topic_names != b.subscribed_topic_names
        || a.subscribed_topic_regex.as_ref().map(|r| &r.0)
            != b.subscribed_topic_regex.as_ref().map(|r| &r.0)
        || a.rebalance_timeout_ms != b.rebalance_timeout_ms
        || a.server_assignor != b.server_assignor
        || a.classic
            .as_ref()
            .map(|c| (c.session_timeout_ms, &c.protocols))
            != b.classic
                .as_ref()
                .map(|c| (c.session_timeout_ms, &c.protocols))
}

fn assignment_differs(a: &ConsumerMember, b: &ConsumerMember) -> bool {
    a.epoch != b.epoch
        || a.previous_epoch != b.previous_epoch
        || a.state != b.state
        || a.assigned != b.assigned
        || a.revoking != b.revoking
}

/// The records that take a group from `before` (None: it did not exist as a consumer
/// group) to `after`, in Kafka's order: members and their subscriptions, the group epoch,
/// the target assignment, then the members' current assignments; tombstones for members
/// that left, and for the whole group when it is gone (`after` None).
pub fn changes(
    group: &str,
    before: Option<&ConsumerGroup>,
    after: Option<&ConsumerGroup>,
) -> Vec<Record> {
    let empty = ConsumerGroup::default();
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
    let none = Assignment::new();
    for (id, t) in &a.target {
        if b.target.get(id) != Some(t) {
            out.push(target_member(group, id, t));
        }
    }
    for id in b
        .target
        .keys()
        .filter(|id| !a.target.contains_key(*id) && a.members.contains_key(*id))
    {
        out.push(target_member(group, id, &none));
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

/// Consumer groups rebuilt from their records, in log order.
#[derive(Default)]
pub struct Replayed {
    pub groups: BTreeMap<String, ConsumerGroup>,
}

impl Replayed {
    /// Applies one record; false if it is not a consumer group record (or does not decode:
    /// Kafka's newer record types are skipped, not fatal).
    pub fn apply(&mut self, key_bytes: &[u8], value: Option<&[u8]>, now: Instant) -> bool {
        let mut k = Reader::new(key_bytes);
        let Some(kind) = k.i16() else { return false };
        if !matches!(
            kind,
            GROUP_METADATA | MEMBER_METADATA | TARGET_METADATA | TARGET_MEMBER | CURRENT_ASSIGNMENT
        ) {
            return false;
        }
        let Some(group) = k.string() else {
            return false;
        };
        let member = if matches!(kind, MEMBER_METADATA | TARGET_MEMBER | CURRENT_ASSIGNMENT) {
            let Some(m) = k.string() else { return false };
            Some(m)
        } else {
            None
        };
        let Some(value) = value else {
            self.tombstone(kind, &group, member.as_deref());
            return true;
        };
        let mut v = Reader::new(value);
        if v.i16() != Some(0) {
            return false;
        }
        let mut f = Fields(v);
        let existed = self.groups.contains_key(&group);
        let cg = self.groups.entry(group.clone()).or_default();
        let decoded = match (kind, member) {
            (GROUP_METADATA, _) => f.i32().and_then(|e| {
                cg.group_epoch = e;
                let hash = f
                    .tags()?
                    .and_then(|t| t.try_into().ok())
                    .map(i64::from_be_bytes);
                cg.metadata_hash = hash.unwrap_or(0);
                Some(())
            }),
            (TARGET_METADATA, _) => f.i32().map(|e| cg.assignment_epoch = e),
            (TARGET_MEMBER, Some(id)) => f.partitions().map(|p| {
                cg.target.insert(id, p);
            }),
            (MEMBER_METADATA, Some(id)) => read_member_metadata(&mut f).map(|read| {
                let m = cg
                    .members
                    .entry(id.clone())
                    .or_insert_with(|| ConsumerMember::new(id.clone(), now));
                read.apply(m);
                if let Some(instance) = &m.instance_id {
                    cg.static_members.insert(instance.clone(), id);
                }
            }),
            (CURRENT_ASSIGNMENT, Some(id)) => {
                read_current(&mut f).map(|(epoch, previous, state, assigned, revoking)| {
                    let m = cg
                        .members
                        .entry(id.clone())
                        .or_insert_with(|| ConsumerMember::new(id, now));
                    m.epoch = epoch;
                    m.previous_epoch = previous;
                    m.state = state;
                    m.assigned = assigned;
                    m.revoking = revoking;
                })
            }
            _ => None,
        };
        // A value that does not decode creates no group.
        if decoded.is_none() && !existed {
            self.groups.remove(&group);
        }
        decoded.is_some()
    }

    fn tombstone(&mut self, kind: i16, group: &str, member: Option<&str>) {
        let Some(cg) = self.groups.get_mut(group) else {
            return;
        };
        match (kind, member) {
            (MEMBER_METADATA, Some(id)) => {
                if let Some(m) = cg.members.remove(id) {
                    if let Some(instance) = m.instance_id {
                        cg.static_members.remove(&instance);
                    }
                }
            }
            (TARGET_MEMBER, Some(id)) => {
                cg.target.remove(id);
            }
            (GROUP_METADATA, _) => {
                self.groups.remove(group);
            }
            _ => {}
        }
    }
}

/// Record 5's fields.
struct MemberMetadata {
    instance_id: Option<String>,
    rack_id: Option<String>,
    client_id: String,
    client_host: String,
    names: Vec<String>,
    regex: Option<String>,
    rebalance_timeout_ms: i32,
    server_assignor: Option<String>,
    /// Tag 0: a classic member's.
    classic: Option<ClassicMetadata>,
}

impl MemberMetadata {
    fn apply(self, m: &mut ConsumerMember) {
        m.instance_id = self.instance_id;
        m.rack_id = self.rack_id;
        m.client_id = self.client_id;
        m.client_host = self.client_host;
        m.subscribed_topic_names = self.names;
        // Resolved already: it was before the restart.
        m.subscribed_topic_regex = self.regex.and_then(|r| {
            regex::Regex::new(&format!("^(?:{r})$"))
                .ok()
                .map(|re| (r, re))
        });
        m.regex_resolved = true;
        m.rebalance_timeout_ms = self.rebalance_timeout_ms;
        m.server_assignor = self.server_assignor;
        m.classic = self.classic.map(|(session_timeout_ms, protocols)| {
            ClassicMembership::new(session_timeout_ms, protocols)
        });
    }
}

/// Record 5's ClassicMemberMetadata: session timeout and (protocol name, metadata)s.
type ClassicMetadata = (i32, Vec<(String, bytes::Bytes)>);

/// Tag 0 of record 5: a classic member's metadata (None: null).
fn read_classic(tag: &[u8]) -> Option<Option<ClassicMetadata>> {
    let mut f = Fields(Reader::new(tag));
    if f.i8()? != 1 {
        return Some(None);
    }
    let session = f.i32()?;
    let mut protocols = Vec::new();
    for _ in 0..f.len()? {
        let name = f.string()?;
        let metadata = bytes::Bytes::copy_from_slice(f.bytes()?);
        f.tags()?;
        protocols.push((name, metadata));
    }
    Some(Some((session, protocols)))
}

fn read_member_metadata(f: &mut Fields<'_>) -> Option<MemberMetadata> {
    let instance_id = f.nullable()?;
    let rack_id = f.nullable()?;
    let client_id = f.string()?;
    let client_host = f.string()?;
    let mut names = Vec::new();
    for _ in 0..f.len()? {
        names.push(f.string()?);
    }
    Some(MemberMetadata {
        instance_id,
        rack_id,
        client_id,
        client_host,
        names,
        regex: f.nullable()?,
        rebalance_timeout_ms: f.i32()?,
        server_assignor: f.nullable()?,
        classic: match f.tags()? {
            Some(tag) => read_classic(tag)?,
            None => None,
        },
    })
}

type CurrentFields = (i32, i32, MemberState, Assignment, Assignment);

fn read_current(f: &mut Fields<'_>) -> Option<CurrentFields> {
    let epoch = f.i32()?;
    let previous = f.i32()?;
    let state = match f.i8()? {
        1 => MemberState::UnrevokedPartitions,
        2 => MemberState::UnreleasedPartitions,
        _ => MemberState::Stable,
    };
    Some((epoch, previous, state, f.partitions()?, f.partitions()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use uuid::Uuid;

    fn hex(b: &[u8]) -> String {
        use std::fmt::Write;
        b.iter().fold(String::new(), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
    }

    fn member() -> ConsumerMember {
        let mut m = ConsumerMember::new("m".into(), Instant::now());
        m.rack_id = Some("r".into());
        m.client_id = "c".into();
        m.client_host = "/h".into();
        m.subscribed_topic_names = vec!["t".into()];
        m.rebalance_timeout_ms = 300_000;
        m.server_assignor = Some("uniform".into());
        m
    }

    /// The bytes Kafka 4.1.1's GroupCoordinatorRecordSerde writes for the same records.
    #[test]
    fn records_are_kafkas_bytes() {
        let mut cg = ConsumerGroup {
            group_epoch: 5,
            assignment_epoch: 5,
            ..ConsumerGroup::default()
        };
        let (k, v) = group_metadata("g", &cg);
        assert_eq!(
            (hex(&k), hex(&v.unwrap())),
            ("0003000167".into(), "00000000000500".into())
        );
        let (k, v) = member_metadata("g", &member());
        assert_eq!(hex(&k), "000500016700016d");
        assert_eq!(
            hex(&v.unwrap()),
            "00000002720263032f6802027400000493e008756e69666f726d01000100"
        );
        let topic = Uuid::from_bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        let mut m = member();
        m.epoch = 5;
        m.previous_epoch = 4;
        m.state = MemberState::UnrevokedPartitions;
        m.assigned = Assignment::from([(topic, BTreeSet::from([2]))]);
        let (_, v) = current_assignment("g", &m);
        assert_eq!(
            hex(&v.unwrap()),
            [
                "00000000000500000004",
                "01",
                "02",
                &hex(topic.as_bytes()),
                "0200000002",
                "00",
                "01",
                "00"
            ]
            .concat()
        );
        let (_, v) = target_member(
            "g",
            "m",
            &Assignment::from([(topic, BTreeSet::from([0, 1]))]),
        );
        assert_eq!(
            hex(&v.unwrap()),
            [
                "0000",
                "02",
                &hex(topic.as_bytes()),
                "03",
                "0000000000000001",
                "00",
                "00"
            ]
            .concat()
        );
        cg.members.insert("m".into(), m);
        assert_eq!(
            changes("g", None, Some(&cg)).len(),
            4,
            "member, group, target epoch, assignment"
        );
    }

    /// A classic member's record 5 carries its session timeout and protocols in tag 0, as
    /// Kafka 4.1.1's generated ConsumerGroupMemberMetadataValue writes them (hex from
    /// `MessageUtil.toVersionPrefixedByteBuffer` on the same value); and reads back.
    #[test]
    fn a_classic_members_metadata_is_kafkas_bytes_and_replays() {
        let mut m = ConsumerMember::new("m".into(), Instant::now());
        m.client_id = "c".into();
        m.client_host = "/h".into();
        m.subscribed_topic_names = vec!["t".into()];
        m.rebalance_timeout_ms = 5000;
        m.classic = Some(ClassicMembership::new(
            10_000,
            vec![("range".into(), bytes::Bytes::from_static(&[0, 1, 2]))],
        ));
        let (k, v) = member_metadata("g", &m);
        let v = v.unwrap();
        assert_eq!(
            hex(&v),
            "000000000263032f680202740000001388000100120100002710020672616e6765040001020000"
        );
        let mut replayed = Replayed::default();
        assert!(replayed.apply(&k, Some(&v), Instant::now()));
        assert_eq!(replayed.groups["g"].members["m"].classic, m.classic);
    }

    #[test]
    fn a_group_replays_from_its_records() {
        let now = Instant::now();
        let topic = Uuid::from_u128(3);
        let mut cg = ConsumerGroup {
            group_epoch: 4,
            assignment_epoch: 4,
            ..ConsumerGroup::default()
        };
        let mut m = member();
        m.instance_id = Some("i".into());
        m.epoch = 4;
        m.previous_epoch = 3;
        m.assigned = Assignment::from([(topic, BTreeSet::from([0, 1]))]);
        m.revoking = Assignment::from([(topic, BTreeSet::from([2]))]);
        m.state = MemberState::UnrevokedPartitions;
        cg.members.insert("m".into(), m.clone());
        cg.target.insert("m".into(), m.assigned.clone());
        let mut replayed = Replayed::default();
        for (k, v) in changes("g", None, Some(&cg)) {
            assert!(replayed.apply(&k, v.as_deref(), now));
        }
        let back = &replayed.groups["g"];
        assert_eq!((back.group_epoch, back.assignment_epoch), (4, 4));
        let bm = &back.members["m"];
        assert_eq!(
            (bm.epoch, bm.previous_epoch, bm.state),
            (4, 3, MemberState::UnrevokedPartitions)
        );
        assert_eq!((&bm.assigned, &bm.revoking), (&m.assigned, &m.revoking));
        assert_eq!(bm.subscribed_topic_names, m.subscribed_topic_names);
        assert_eq!(back.static_members["i"], "m");
        assert_eq!(back.target["m"], m.assigned);
        // The member leaves: its records go; then the group is deleted.
        let mut after = cg.clone();
        after.remove_member("m");
        for (k, v) in changes("g", Some(&cg), Some(&after)) {
            replayed.apply(&k, v.as_deref(), now);
        }
        assert!(replayed.groups["g"].members.is_empty());
        assert_eq!(replayed.groups["g"].group_epoch, 5);
        for (k, v) in changes("g", Some(&after), None) {
            replayed.apply(&k, v.as_deref(), now);
        }
        assert!(!replayed.groups.contains_key("g"));
    }
}
