//! A group's offsets: read (OffsetFetch; a share group's start offsets by
//! DescribeShareGroupOffsets), commit (OffsetCommit), and reset the way Kafka's
//! `kafka-consumer-groups.sh --reset-offsets` does: only while the group has no members,
//! every new offset clamped to the partition's log, a dry run unless told to execute.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_share_group_offsets_request::{
    AlterShareGroupOffsetsRequestPartition, AlterShareGroupOffsetsRequestTopic,
};
use kafka_protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, DescribeShareGroupOffsetsRequest, OffsetCommitRequest,
    OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use super::groups::group_id;
use super::offsets::OffsetSpec;
use super::{Admin, AdminError, Target};

/// Offsets by (topic, partition).
pub type Offsets = BTreeMap<(String, i32), i64>;

/// Where `reset_offsets` moves a group's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    Earliest,
    Latest,
    Offset(i64),
    /// The first offset at or after this time (ms since the epoch).
    Timestamp(i64),
    /// The committed offset moved by this much (negative: back).
    ShiftBy(i64),
}

/// One partition's reset.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OffsetReset {
    pub topic: String,
    pub partition: i32,
    pub previous: Option<i64>,
    pub new_offset: i64,
}

/// Who commits: a member of the group (its id and epoch or generation), or an admin
/// (epoch -1, no member id), which the coordinator accepts only while the group is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committer {
    pub member_id: String,
    pub epoch: i32,
}

impl Committer {
    pub fn admin() -> Committer {
        Committer {
            member_id: String::new(),
            epoch: -1,
        }
    }
}

impl Admin {
    /// `group`'s committed offsets.
    pub async fn committed_offsets(&self, group: &str) -> Result<Offsets, AdminError> {
        let coordinator = self.coordinator(group).await?;
        let version = self.version_of::<OffsetFetchRequest>()?;
        let request = if version >= 8 {
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(group_id(group))
                .with_member_epoch(-1)
                .with_topics(None)])
        } else {
            OffsetFetchRequest::default()
                .with_group_id(group_id(group))
                .with_topics(None)
        };
        let response = self
            .send_at(Target::Node(coordinator), &request, version)
            .await?;
        let doing = || format!("reading the offsets of group {group}");
        let mut offsets = Offsets::new();
        if version >= 8 {
            for g in response.groups {
                AdminError::check(g.error_code, None, doing)?;
                for t in g.topics {
                    for p in t.partitions.iter().filter(|p| p.committed_offset >= 0) {
                        offsets.insert(
                            (t.name.0.to_string(), p.partition_index),
                            p.committed_offset,
                        );
                    }
                }
            }
        } else {
            AdminError::check(response.error_code, None, doing)?;
            for t in response.topics {
                for p in t.partitions.iter().filter(|p| p.committed_offset >= 0) {
                    offsets.insert(
                        (t.name.0.to_string(), p.partition_index),
                        p.committed_offset,
                    );
                }
            }
        }
        Ok(offsets)
    }

    /// A share group's start offsets (where its delivery begins), by partition.
    pub async fn share_group_start_offsets(&self, group: &str) -> Result<Offsets, AdminError> {
        let coordinator = self.coordinator(group).await?;
        let request = DescribeShareGroupOffsetsRequest::default().with_groups(vec![
            DescribeShareGroupOffsetsRequestGroup::default()
                .with_group_id(group_id(group))
                .with_topics(None),
        ]);
        let response = self.send(Target::Node(coordinator), &request).await?;
        let mut offsets = Offsets::new();
        for g in response.groups {
            AdminError::check(g.error_code, g.error_message.as_ref(), || {
                format!("reading the start offsets of share group {group}")
            })?;
            for t in g.topics {
                for p in t
                    .partitions
                    .iter()
                    .filter(|p| p.error_code == 0 && p.start_offset >= 0)
                {
                    offsets.insert(
                        (t.topic_name.0.to_string(), p.partition_index),
                        p.start_offset,
                    );
                }
            }
        }
        Ok(offsets)
    }

    /// Commits `offsets` for `group` as `committer`.
    pub async fn commit_offsets(
        &self,
        group: &str,
        committer: &Committer,
        offsets: &Offsets,
    ) -> Result<(), AdminError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let coordinator = self.coordinator(group).await?;
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for ((topic, partition), offset) in offsets {
            by_topic.entry(topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(*partition)
                    .with_committed_offset(*offset)
                    .with_committed_leader_epoch(-1),
            );
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id_or_member_epoch(committer.epoch)
            .with_member_id(StrBytes::from_string(committer.member_id.clone()))
            .with_retention_time_ms(-1)
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(topic, partitions)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let response = self.send(Target::Node(coordinator), &request).await?;
        for t in response.topics {
            for p in t.partitions {
                AdminError::check(p.error_code, None, || {
                    format!(
                        "committing the offset of {}-{} for group {group}",
                        t.name.0, p.partition_index
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Resets `group`'s offsets on `topic` (`partitions`, or all) to `to`. Refused while
    /// the group has members, as Kafka refuses it. Commits only with `execute`; either way
    /// returns the plan.
    pub async fn reset_offsets(
        &self,
        group: &str,
        topic: &str,
        partitions: Option<&[i32]>,
        to: ResetTo,
        execute: bool,
    ) -> Result<Vec<OffsetReset>, AdminError> {
        let (group_type, state, members) = match self.describe_group(group).await {
            Ok(d) => (d.group_type, d.state, d.members.len()),
            // A group that does not exist yet gets its first offsets.
            Err(AdminError::NotFound(_)) => ("classic".to_string(), "Dead".to_string(), 0),
            Err(e) => return Err(e),
        };
        if members > 0 || !matches!(state.as_str(), "Empty" | "Dead" | "EMPTY" | "DEAD") {
            return Err(AdminError::Invalid(format!(
                "group {group} is {state} with {members} member(s): offsets can only be reset while the group is inactive; stop its consumers first"
            )));
        }
        let layout = self.topic_layout(topic).await?;
        let earliest = self
            .list_offsets(&layout, partitions, OffsetSpec::Earliest)
            .await?;
        let latest = self
            .list_offsets(&layout, partitions, OffsetSpec::Latest)
            .await?;
        let committed = if group_type == "share" {
            self.share_group_start_offsets(group).await?
        } else {
            self.committed_offsets(group).await?
        };
        let target = match to {
            ResetTo::Timestamp(ms) => Some(
                self.list_offsets(&layout, partitions, OffsetSpec::Timestamp(ms))
                    .await?,
            ),
            _ => None,
        };
        let mut plan = Vec::new();
        for (partition, end) in &latest {
            let start = earliest.get(partition).copied().unwrap_or(0);
            let previous = committed.get(&(topic.to_string(), *partition)).copied();
            let wanted = match to {
                ResetTo::Earliest => start,
                ResetTo::Latest => *end,
                ResetTo::Offset(o) => o,
                ResetTo::Timestamp(_) => target
                    .as_ref()
                    .and_then(|t| t.get(partition).copied())
                    .unwrap_or(*end),
                ResetTo::ShiftBy(n) => previous.unwrap_or(*end).saturating_add(n),
            };
            plan.push(OffsetReset {
                topic: topic.to_string(),
                partition: *partition,
                previous,
                // Out of range: to the nearest end of the log, as Kafka's tool does.
                new_offset: wanted.clamp(start, *end),
            });
        }
        if execute {
            if group_type == "share" {
                self.alter_share_group_offsets(group, topic, &plan).await?;
            } else {
                let offsets: Offsets = plan
                    .iter()
                    .map(|r| ((r.topic.clone(), r.partition), r.new_offset))
                    .collect();
                self.commit_offsets(group, &Committer::admin(), &offsets)
                    .await?;
            }
        }
        Ok(plan)
    }

    async fn alter_share_group_offsets(
        &self,
        group: &str,
        topic: &str,
        plan: &[OffsetReset],
    ) -> Result<(), AdminError> {
        let coordinator = self.coordinator(group).await?;
        let request = AlterShareGroupOffsetsRequest::default()
            .with_group_id(group_id(group))
            .with_topics(vec![AlterShareGroupOffsetsRequestTopic::default()
                .with_topic_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(
                    plan.iter()
                        .map(|r| {
                            AlterShareGroupOffsetsRequestPartition::default()
                                .with_partition_index(r.partition)
                                .with_start_offset(r.new_offset)
                        })
                        .collect(),
                )]);
        let response = self.send(Target::Node(coordinator), &request).await?;
        let doing = || format!("resetting the start offsets of share group {group}");
        AdminError::check(response.error_code, response.error_message.as_ref(), doing)?;
        for t in response.responses {
            for p in t.partitions {
                AdminError::check(p.error_code, p.error_message.as_ref(), doing)?;
            }
        }
        Ok(())
    }
}
