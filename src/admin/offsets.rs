//! Partition offsets by ListOffsets: earliest, latest (the high watermark) and by
//! timestamp, asked of each partition's leader.

use std::collections::BTreeMap;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::cluster::TopicLayout;
use super::{Admin, AdminError, Target};

/// Which offset of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    /// The high watermark: the next offset to be written that consumers can read up to.
    Latest,
    /// The first offset whose timestamp is at or after this (ms since the epoch); the
    /// latest offset when there is none.
    Timestamp(i64),
}

impl OffsetSpec {
    fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ms) => ms,
        }
    }
}

impl Admin {
    /// The offset `spec` names for each of `partitions` of `layout`'s topic (every
    /// partition for `None`), by partition.
    pub async fn list_offsets(
        &self,
        layout: &TopicLayout,
        partitions: Option<&[i32]>,
        spec: OffsetSpec,
    ) -> Result<BTreeMap<i32, i64>, AdminError> {
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for (partition, leader, ..) in &layout.partitions {
            if partitions.is_none_or(|wanted| wanted.contains(partition)) {
                by_leader.entry(*leader).or_default().push(*partition);
            }
        }
        if let Some(wanted) = partitions {
            if let Some(missing) = wanted
                .iter()
                .find(|p| !layout.partitions.iter().any(|(q, ..)| q == *p))
            {
                return Err(AdminError::NotFound(format!(
                    "topic {} has no partition {missing}",
                    layout.name
                )));
            }
        }
        let mut offsets = BTreeMap::new();
        let mut pending_latest = Vec::new();
        for (leader, partitions) in by_leader {
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(layout.name.clone())))
                    .with_partitions(
                        partitions
                            .iter()
                            .map(|p| {
                                ListOffsetsPartition::default()
                                    .with_partition_index(*p)
                                    .with_timestamp(spec.timestamp())
                                    .with_current_leader_epoch(-1)
                            })
                            .collect(),
                    )]);
            let target = if leader >= 0 {
                Target::Node(leader)
            } else {
                Target::Any
            };
            let response = self.send(target, &request).await?;
            for t in response.topics {
                for p in t.partitions {
                    AdminError::check(p.error_code, None, || {
                        format!("listing offsets of {}-{}", layout.name, p.partition_index)
                    })?;
                    if p.offset < 0 {
                        pending_latest.push(p.partition_index);
                    } else {
                        offsets.insert(p.partition_index, p.offset);
                    }
                }
            }
        }
        if !pending_latest.is_empty() && spec != OffsetSpec::Latest {
            // No record at or after the timestamp: the end, as Kafka's tools do.
            let latest =
                Box::pin(self.list_offsets(layout, Some(&pending_latest), OffsetSpec::Latest))
                    .await?;
            offsets.extend(latest);
        }
        Ok(offsets)
    }
}
