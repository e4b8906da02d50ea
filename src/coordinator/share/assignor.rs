//! The `simple` share group assignor (Kafka's `SimpleAssignor`): every member gets
//! partitions, and when members outnumber partitions, partitions are shared, each by
//! `ceil(members / partitions)` members, so that every member has something to fetch.
//! Balanced first (member counts differ by at most one), then sticky (a member keeps what
//! it had where balance allows). With one subscription for the whole group the partitions
//! of all its topics are spread together; otherwise topic by topic, over the members
//! subscribed to each.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

use crate::coordinator::consumer::Assignment;

pub const SIMPLE: &str = "simple";

/// The target assignment. `subscriptions`: member -> topic names; `partitions`: topic name
/// -> (topic id, its assignable partitions); `previous`: the last target.
pub fn assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partitions: &BTreeMap<String, (Uuid, Vec<i32>)>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let mut target: BTreeMap<String, Assignment> = subscriptions
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    let first = subscriptions.values().next();
    let homogeneous = subscriptions.values().all(|s| Some(s) == first);
    let mut spread = |members: Vec<&str>, tps: Vec<(Uuid, i32)>| {
        for (member, got) in share_out(&members, &tps, previous) {
            let a = target.entry(member.to_string()).or_default();
            for (topic, p) in got {
                a.entry(topic).or_default().insert(p);
            }
        }
    };
    if homogeneous {
        let Some(topics) = first else {
            return target;
        };
        let tps: Vec<(Uuid, i32)> = topics
            .iter()
            .filter_map(|t| partitions.get(t))
            .flat_map(|(id, ps)| ps.iter().map(|p| (*id, *p)))
            .collect();
        spread(subscriptions.keys().map(String::as_str).collect(), tps);
    } else {
        for (name, (id, ps)) in partitions {
            let members: Vec<&str> = subscriptions
                .iter()
                .filter(|(_, s)| s.contains(name))
                .map(|(m, _)| m.as_str())
                .collect();
            if !members.is_empty() {
                spread(members, ps.iter().map(|p| (*id, *p)).collect());
            }
        }
    }
    target
}

/// Shares `tps` out over `members` (sorted), each partition to `ceil(M/P)` of them.
fn share_out<'a>(
    members: &[&'a str],
    tps: &[(Uuid, i32)],
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<&'a str, BTreeSet<(Uuid, i32)>> {
    let mut out: BTreeMap<&str, BTreeSet<(Uuid, i32)>> = BTreeMap::new();
    if members.is_empty() || tps.is_empty() {
        return out;
    }
    let (m, p) = (members.len(), tps.len());
    let sharing = m.div_ceil(p).max(1);
    let wanted: BTreeSet<(Uuid, i32)> = tps.iter().copied().collect();
    let had = |member: &str| -> Vec<(Uuid, i32)> {
        previous.get(member).map_or_else(Vec::new, |a| {
            a.iter()
                .flat_map(|(t, ps)| ps.iter().map(|p| (*t, *p)))
                .filter(|tp| wanted.contains(tp))
                .collect()
        })
    };
    // Each member's share of the `sharing * p` slots; the members that had the most get
    // the one left over, so that as much as possible stays where it was.
    let slots = sharing * p;
    let mut by_had: Vec<&str> = members.to_vec();
    by_had.sort_by_key(|m| (std::cmp::Reverse(had(m).len()), *m));
    let quota: HashMap<&str, usize> = by_had
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (
                *m,
                slots / members.len() + usize::from(i < slots % members.len()),
            )
        })
        .collect();
    let mut holders: HashMap<(Uuid, i32), usize> = HashMap::new();
    // Sticky: what each member had, as far as its quota and the sharing allow.
    for &member in members {
        for tp in had(member) {
            let mine = out.entry(member).or_default();
            if mine.len() < quota[member] && holders.get(&tp).copied().unwrap_or(0) < sharing {
                mine.insert(tp);
                *holders.entry(tp).or_default() += 1;
            }
        }
    }
    // Then each partition to the least loaded members that do not hold it yet.
    for round in 1..=sharing {
        for tp in tps {
            if holders.get(tp).copied().unwrap_or(0) >= round {
                continue;
            }
            let load = |m: &str| out.get(m).map_or(0, BTreeSet::len);
            let pick = members
                .iter()
                .filter(|m| !out.get(*m).is_some_and(|s| s.contains(tp)))
                .filter(|m| load(m) < quota[**m])
                .min_by_key(|m| (load(m), **m))
                .or_else(|| {
                    members
                        .iter()
                        .filter(|m| !out.get(*m).is_some_and(|s| s.contains(tp)))
                        .min_by_key(|m| (load(m), **m))
                });
            if let Some(&member) = pick {
                out.entry(member).or_default().insert(*tp);
                *holders.entry(*tp).or_default() += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(members: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        members
            .iter()
            .map(|(m, ts)| (m.to_string(), ts.iter().map(ToString::to_string).collect()))
            .collect()
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(BTreeSet::len).sum()
    }

    #[test]
    fn partitions_are_spread_then_shared_when_members_outnumber_them() {
        let t = Uuid::from_u128(1);
        let parts = BTreeMap::from([("t".to_string(), (t, vec![0, 1, 2, 3]))]);
        let two = assign(
            &subs(&[("a", &["t"]), ("b", &["t"])]),
            &parts,
            &BTreeMap::new(),
        );
        assert_eq!(count(&two["a"]), 2);
        assert_eq!(count(&two["b"]), 2);
        // Six members, four partitions: each partition shared by two, everyone fetches.
        let six: Vec<(&str, &[&str])> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|m| (*m, &["t"][..]))
            .collect();
        let shared = assign(&subs(&six), &parts, &BTreeMap::new());
        assert!(shared.values().all(|a| count(a) >= 1));
        let mut per_partition: HashMap<i32, usize> = HashMap::new();
        for a in shared.values() {
            for p in &a[&t] {
                *per_partition.entry(*p).or_default() += 1;
            }
        }
        assert!(per_partition.values().all(|n| *n == 2), "{per_partition:?}");
        // Sticky: a third member takes from the others without shuffling what stays.
        let three = assign(
            &subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]),
            &parts,
            &two,
        );
        assert!(three["a"][&t].is_subset(&two["a"][&t]));
        assert!(three["b"][&t].is_subset(&two["b"][&t]));
        assert_eq!(count(&three["c"]), 1);
    }

    #[test]
    fn different_subscriptions_are_assigned_topic_by_topic() {
        let (t, u) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let parts = BTreeMap::from([
            ("t".to_string(), (t, vec![0, 1])),
            ("u".to_string(), (u, vec![0])),
        ]);
        let got = assign(
            &subs(&[("a", &["t", "u"]), ("b", &["t"])]),
            &parts,
            &BTreeMap::new(),
        );
        assert_eq!(got["a"][&u].len(), 1);
        assert!(!got["b"].contains_key(&u));
        assert_eq!(got["a"][&t].len() + got["b"][&t].len(), 2);
    }
}
