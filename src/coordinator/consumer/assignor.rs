//! The server-side assignors of consumer groups (KIP-848, `group.consumer.assignors`):
//! `uniform` (the default) and `range`. Both are pure functions of the members'
//! subscriptions, the subscribed topics' partition counts and, for stickiness, the
//! previous target assignment.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// A member as an assignor sees it.
#[derive(Debug, Clone)]
pub struct AssignorMember<'a> {
    pub member_id: &'a str,
    /// Ids of the topics it subscribes to that exist.
    pub topics: BTreeSet<Uuid>,
    /// Its partitions in the previous target assignment.
    pub previous: &'a Assignment,
}

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The assignors a group may ask for, by name.
pub const ASSIGNORS: [&str; 2] = ["uniform", "range"];

/// Runs assignor `name` (one of [`ASSIGNORS`]); returns each member's partitions.
pub fn assign(
    name: &str,
    members: &[AssignorMember<'_>],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    match name {
        "range" => range(members, partitions),
        _ => uniform(members, partitions),
    }
}

/// Kafka's range assignor: per topic, its subscribers in member-id order get contiguous
/// ranges, the first `partitions % subscribers` one partition more.
fn range(
    members: &[AssignorMember<'_>],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.to_string(), Assignment::new()))
        .collect();
    for (&topic, &count) in partitions {
        let mut subscribers: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(&topic))
            .map(|m| m.member_id)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        subscribers.sort_unstable();
        let n = subscribers.len() as i32;
        let (each, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, member) in subscribers.iter().enumerate() {
            let take = each + i32::from((i as i32) < extra);
            if take > 0 {
                let set = out
                    .get_mut(*member)
                    .expect("every member has an entry")
                    .entry(topic)
                    .or_default();
                set.extend(next..next + take);
            }
            next += take;
        }
    }
    out
}

/// Kafka's uniform assignor: every partition of a subscribed topic goes to one of its
/// subscribers, as evenly as the subscriptions allow (no subscriber of a partition holds
/// two fewer than its owner), and a partition stays where the previous target had it
/// unless evening out needs it elsewhere.
fn uniform(
    members: &[AssignorMember<'_>],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let ids: Vec<&str> = members.iter().map(|m| m.member_id).collect();
    let mut owned: Vec<BTreeSet<(Uuid, i32)>> = vec![BTreeSet::new(); members.len()];
    // Who may take each partition.
    let mut eligible: BTreeMap<(Uuid, i32), Vec<usize>> = BTreeMap::new();
    for (&topic, &count) in partitions {
        let subscribers: Vec<usize> = (0..members.len())
            .filter(|&i| members[i].topics.contains(&topic))
            .collect();
        if !subscribers.is_empty() {
            for p in 0..count {
                eligible.insert((topic, p), subscribers.clone());
            }
        }
    }
    // Sticky first, then the rest to the subscriber holding the fewest (ties: id order).
    let mut unassigned = Vec::new();
    for (tp, subscribers) in &eligible {
        let previous = subscribers.iter().copied().find(|&i| {
            members[i]
                .previous
                .get(&tp.0)
                .is_some_and(|s| s.contains(&tp.1))
        });
        match previous {
            Some(i) => {
                owned[i].insert(*tp);
            }
            None => unassigned.push(*tp),
        }
    }
    for tp in unassigned {
        let i = *eligible[&tp]
            .iter()
            .min_by_key(|&&i| (owned[i].len(), ids[i]))
            .expect("a partition has subscribers");
        owned[i].insert(tp);
    }
    // Even out: move a partition from a member to a subscriber of it holding at least two
    // fewer, the most loaded member first, until none can move. Each move lowers the sum
    // of squares of the counts, so this ends; the bound is a backstop.
    for _ in 0..=eligible.len() * members.len() {
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(owned[i].len()), ids[i]));
        let step = order.iter().find_map(|&from| {
            owned[from].iter().rev().find_map(|tp| {
                eligible[tp]
                    .iter()
                    .copied()
                    .filter(|&to| owned[to].len() + 1 < owned[from].len())
                    .min_by_key(|&to| (owned[to].len(), ids[to]))
                    .map(|to| (from, to, *tp))
            })
        });
        let Some((from, to, tp)) = step else { break };
        owned[from].remove(&tp);
        owned[to].insert(tp);
    }
    ids.iter()
        .zip(owned)
        .map(|(id, parts)| {
            let mut a = Assignment::new();
            for (topic, p) in parts {
                a.entry(topic).or_default().insert(p);
            }
            (id.to_string(), a)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn counts(a: &BTreeMap<String, Assignment>) -> Vec<usize> {
        a.values()
            .map(|m| m.values().map(BTreeSet::len).sum())
            .collect()
    }

    #[test]
    fn range_gives_contiguous_ranges_per_topic_in_member_order() {
        let empty = Assignment::new();
        let both: BTreeSet<Uuid> = [topic(1), topic(2)].into();
        let members = [
            AssignorMember {
                member_id: "b",
                topics: both.clone(),
                previous: &empty,
            },
            AssignorMember {
                member_id: "a",
                topics: both,
                previous: &empty,
            },
        ];
        let partitions = BTreeMap::from([(topic(1), 3), (topic(2), 2)]);
        let out = assign("range", &members, &partitions);
        assert_eq!(out["a"][&topic(1)], BTreeSet::from([0, 1]));
        assert_eq!(out["b"][&topic(1)], BTreeSet::from([2]));
        assert_eq!(out["a"][&topic(2)], BTreeSet::from([0]));
        assert_eq!(out["b"][&topic(2)], BTreeSet::from([1]));
    }

    #[test]
    fn uniform_is_even_and_keeps_partitions_where_they_were() {
        let t: BTreeSet<Uuid> = [topic(1)].into();
        let partitions = BTreeMap::from([(topic(1), 6)]);
        let empty = Assignment::new();
        let first = assign(
            "uniform",
            &[AssignorMember {
                member_id: "a",
                topics: t.clone(),
                previous: &empty,
            }],
            &partitions,
        );
        assert_eq!(counts(&first), vec![6]);
        // Two members join: a keeps two of its six, each newcomer gets two.
        let members = [
            AssignorMember {
                member_id: "a",
                topics: t.clone(),
                previous: &first["a"],
            },
            AssignorMember {
                member_id: "b",
                topics: t.clone(),
                previous: &empty,
            },
            AssignorMember {
                member_id: "c",
                topics: t.clone(),
                previous: &empty,
            },
        ];
        let second = assign("uniform", &members, &partitions);
        assert_eq!(counts(&second), vec![2, 2, 2]);
        assert!(second["a"][&topic(1)].is_subset(&first["a"][&topic(1)]));
        // Nothing changes: nothing moves.
        let members = [
            AssignorMember {
                member_id: "a",
                topics: t.clone(),
                previous: &second["a"],
            },
            AssignorMember {
                member_id: "b",
                topics: t.clone(),
                previous: &second["b"],
            },
            AssignorMember {
                member_id: "c",
                topics: t,
                previous: &second["c"],
            },
        ];
        assert_eq!(assign("uniform", &members, &partitions), second);
    }

    #[test]
    fn uniform_respects_different_subscriptions() {
        let empty = Assignment::new();
        let members = [
            AssignorMember {
                member_id: "a",
                topics: [topic(1), topic(2)].into(),
                previous: &empty,
            },
            AssignorMember {
                member_id: "b",
                topics: [topic(2)].into(),
                previous: &empty,
            },
        ];
        let partitions = BTreeMap::from([(topic(1), 4), (topic(2), 4), (topic(3), 2)]);
        let out = assign("uniform", &members, &partitions);
        assert_eq!(out["a"][&topic(1)].len(), 4, "only a subscribes to topic 1");
        assert!(!out["b"].contains_key(&topic(1)));
        assert_eq!(counts(&out), vec![4, 4]);
        assert!(
            out.values().all(|m| !m.contains_key(&topic(3))),
            "no subscriber"
        );
    }
}
