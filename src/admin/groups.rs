//! Groups of every type (classic, consumer, share): list, describe with members,
//! assignments and lag, delete. Requests go to the group's coordinator (FindCoordinator).
//! Offsets are in `group_offsets.rs`; a member of a consumer group in `group_member.rs`.

use std::collections::BTreeMap;

use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerProtocolAssignment, DeleteGroupsRequest,
    DescribeGroupsRequest, FindCoordinatorRequest, GroupId, ListGroupsRequest,
    ShareGroupDescribeRequest,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use serde::Serialize;

use super::offsets::OffsetSpec;
use super::{Admin, AdminError, Target};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    /// `classic`, `consumer` or `share` (`classic` from brokers before KIP-848).
    pub group_type: String,
    pub state: String,
    /// `consumer` for consumer clients' groups; empty for a group that only holds offsets.
    pub protocol_type: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TopicAssignment {
    pub topic: String,
    pub partitions: Vec<i32>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GroupMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub assignment: Vec<TopicAssignment>,
}

/// A partition's committed offset (for a share group: its start offset) and lag.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub committed: Option<i64>,
    pub log_end_offset: Option<i64>,
    pub lag: Option<i64>,
    /// The member the partition is assigned to, if any.
    pub member_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub group_type: String,
    pub state: String,
    pub protocol_type: String,
    /// The classic group's protocol (`range`) or the consumer group's assignor (`uniform`).
    pub assignor: String,
    pub coordinator: i32,
    pub members: Vec<GroupMember>,
    pub offsets: Vec<PartitionLag>,
}

impl GroupDescription {
    /// Total lag over the partitions with a committed offset.
    pub fn lag(&self) -> i64 {
        self.offsets.iter().filter_map(|o| o.lag).sum()
    }
}

pub(super) fn group_id(id: &str) -> GroupId {
    GroupId(StrBytes::from_string(id.to_string()))
}

/// Reads a classic consumer's assignment (ConsumerProtocolAssignment); none if it is not
/// one (another protocol type, or not yet synced).
fn consumer_assignment(bytes: &[u8]) -> Vec<TopicAssignment> {
    if bytes.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    let mut body = bytes::Bytes::copy_from_slice(&bytes[2..]);
    ConsumerProtocolAssignment::decode(&mut body, version.clamp(0, 3))
        .map(|a| {
            a.assigned_partitions
                .into_iter()
                .map(|tp| TopicAssignment {
                    topic: tp.topic.to_string(),
                    partitions: tp.partitions,
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Admin {
    /// The node id of `group`'s coordinator.
    pub async fn coordinator(&self, group: &str) -> Result<i32, AdminError> {
        let version = self.version_of::<FindCoordinatorRequest>()?;
        let request = if version >= 4 {
            FindCoordinatorRequest::default()
                .with_coordinator_keys(vec![StrBytes::from_string(group.to_string())])
        } else {
            FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_string()))
        };
        let response = self.send_at(Target::Any, &request, version).await?;
        let doing = || format!("finding the coordinator of group {group}");
        let (node, host, port) = if version >= 4 {
            let c = response
                .coordinators
                .first()
                .ok_or_else(|| AdminError::Protocol("FindCoordinator answered nothing".into()))?;
            AdminError::check(c.error_code, c.error_message.as_ref(), doing)?;
            (c.node_id.0, c.host.to_string(), c.port)
        } else {
            AdminError::check(response.error_code, response.error_message.as_ref(), doing)?;
            (response.node_id.0, response.host.to_string(), response.port)
        };
        self.transport().learn_brokers(&[(node, host, port)]);
        Ok(node)
    }

    /// Every group on every broker, by id.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>, AdminError> {
        let metadata = self.metadata(Some(&[])).await?;
        let mut nodes: Vec<i32> = metadata.brokers.iter().map(|b| b.node_id.0).collect();
        if nodes.is_empty() {
            nodes.push(-1);
        }
        let version = self.version_of::<ListGroupsRequest>()?;
        let mut groups = BTreeMap::new();
        for node in nodes {
            let target = if node >= 0 {
                Target::Node(node)
            } else {
                Target::Any
            };
            let response = self
                .send_at(target, &ListGroupsRequest::default(), version)
                .await?;
            AdminError::check(response.error_code, None, || "listing groups".into())?;
            for g in response.groups {
                let group_type = if version >= 5 && !g.group_type.is_empty() {
                    g.group_type.to_lowercase()
                } else {
                    "classic".to_string()
                };
                groups.insert(
                    g.group_id.0.to_string(),
                    GroupListing {
                        group_id: g.group_id.0.to_string(),
                        group_type,
                        state: g.group_state.to_string(),
                        protocol_type: g.protocol_type.to_string(),
                    },
                );
            }
        }
        Ok(groups.into_values().collect())
    }

    /// The type of `group` (`classic` when the broker does not say); NotFound if no
    /// broker lists it.
    pub async fn group_type(&self, group: &str) -> Result<String, AdminError> {
        self.list_groups()
            .await?
            .into_iter()
            .find(|g| g.group_id == group)
            .map(|g| g.group_type)
            .ok_or_else(|| AdminError::NotFound(format!("group {group} does not exist")))
    }

    /// A group's state, members with their assignments, and its offsets with lag.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription, AdminError> {
        let group_type = self.group_type(group).await?;
        let coordinator = self.coordinator(group).await?;
        let target = Target::Node(coordinator);
        let ids = vec![group_id(group)];
        let doing = || format!("describing group {group}");
        let mut description = match group_type.as_str() {
            "consumer" => {
                let response = self
                    .send(
                        target,
                        &ConsumerGroupDescribeRequest::default().with_group_ids(ids),
                    )
                    .await?;
                let g = response.groups.into_iter().next().ok_or_else(|| {
                    AdminError::Protocol("ConsumerGroupDescribe answered nothing".into())
                })?;
                AdminError::check(g.error_code, g.error_message.as_ref(), doing)?;
                GroupDescription {
                    group_id: group.to_string(),
                    group_type,
                    state: g.group_state.to_string(),
                    protocol_type: "consumer".into(),
                    assignor: g.assignor_name.to_string(),
                    coordinator,
                    members: g
                        .members
                        .into_iter()
                        .map(|m| GroupMember {
                            member_id: m.member_id.to_string(),
                            instance_id: m.instance_id.map(|i| i.to_string()),
                            client_id: m.client_id.to_string(),
                            host: m.client_host.to_string(),
                            assignment: m
                                .assignment
                                .topic_partitions
                                .into_iter()
                                .map(|tp| TopicAssignment {
                                    topic: tp.topic_name.0.to_string(),
                                    partitions: tp.partitions,
                                })
                                .collect(),
                        })
                        .collect(),
                    offsets: Vec::new(),
                }
            }
            "share" => {
                let response = self
                    .send(
                        target,
                        &ShareGroupDescribeRequest::default().with_group_ids(ids),
                    )
                    .await?;
                let g = response.groups.into_iter().next().ok_or_else(|| {
                    AdminError::Protocol("ShareGroupDescribe answered nothing".into())
                })?;
                AdminError::check(g.error_code, g.error_message.as_ref(), doing)?;
                GroupDescription {
                    group_id: group.to_string(),
                    group_type,
                    state: g.group_state.to_string(),
                    protocol_type: "share".into(),
                    assignor: g.assignor_name.to_string(),
                    coordinator,
                    members: g
                        .members
                        .into_iter()
                        .map(|m| GroupMember {
                            member_id: m.member_id.to_string(),
                            instance_id: None,
                            client_id: m.client_id.to_string(),
                            host: m.client_host.to_string(),
                            assignment: m
                                .assignment
                                .topic_partitions
                                .into_iter()
                                .map(|tp| TopicAssignment {
                                    topic: tp.topic_name.0.to_string(),
                                    partitions: tp.partitions,
                                })
                                .collect(),
                        })
                        .collect(),
                    offsets: Vec::new(),
                }
            }
            _ => {
                let response = self
                    .send(target, &DescribeGroupsRequest::default().with_groups(ids))
                    .await?;
                let g = response.groups.into_iter().next().ok_or_else(|| {
                    AdminError::Protocol("DescribeGroups answered nothing".into())
                })?;
                AdminError::check(g.error_code, g.error_message.as_ref(), doing)?;
                let is_consumer = g.protocol_type.as_str() == "consumer";
                GroupDescription {
                    group_id: group.to_string(),
                    group_type,
                    state: g.group_state.to_string(),
                    protocol_type: g.protocol_type.to_string(),
                    assignor: g.protocol_data.to_string(),
                    coordinator,
                    members: g
                        .members
                        .into_iter()
                        .map(|m| GroupMember {
                            member_id: m.member_id.to_string(),
                            instance_id: m.group_instance_id.map(|i| i.to_string()),
                            client_id: m.client_id.to_string(),
                            host: m.client_host.to_string(),
                            assignment: if is_consumer {
                                consumer_assignment(&m.member_assignment)
                            } else {
                                Vec::new()
                            },
                        })
                        .collect(),
                    offsets: Vec::new(),
                }
            }
        };
        description.offsets = self.group_lag(&description).await?;
        Ok(description)
    }

    /// The committed offsets (share groups: start offsets) of `group`, with each
    /// partition's log end offset and lag; assigned partitions without a commit are listed
    /// too, as Kafka's tool lists them.
    async fn group_lag(&self, group: &GroupDescription) -> Result<Vec<PartitionLag>, AdminError> {
        let mut rows: BTreeMap<(String, i32), PartitionLag> = BTreeMap::new();
        let committed = if group.group_type == "share" {
            self.share_group_start_offsets(&group.group_id).await?
        } else {
            self.committed_offsets(&group.group_id).await?
        };
        for ((topic, partition), offset) in committed {
            rows.insert(
                (topic.clone(), partition),
                PartitionLag {
                    topic,
                    partition,
                    committed: Some(offset),
                    log_end_offset: None,
                    lag: None,
                    member_id: None,
                },
            );
        }
        for m in &group.members {
            for a in &m.assignment {
                for p in &a.partitions {
                    rows.entry((a.topic.clone(), *p))
                        .or_insert_with(|| PartitionLag {
                            topic: a.topic.clone(),
                            partition: *p,
                            committed: None,
                            log_end_offset: None,
                            lag: None,
                            member_id: None,
                        })
                        .member_id = Some(m.member_id.clone());
                }
            }
        }
        let topics: std::collections::BTreeSet<String> =
            rows.keys().map(|(t, _)| t.clone()).collect();
        for topic in topics {
            // A topic deleted since the commit has no end offset.
            let Ok(layout) = self.topic_layout(&topic).await else {
                continue;
            };
            let ends = self.list_offsets(&layout, None, OffsetSpec::Latest).await?;
            for ((t, p), row) in &mut rows {
                if *t == topic {
                    row.log_end_offset = ends.get(p).copied();
                    row.lag = match (row.committed, row.log_end_offset) {
                        (Some(c), Some(end)) => Some((end - c).max(0)),
                        _ => None,
                    };
                }
            }
        }
        Ok(rows.into_values().collect())
    }

    /// Deletes an empty group (its committed offsets with it).
    pub async fn delete_group(&self, group: &str) -> Result<(), AdminError> {
        let coordinator = self.coordinator(group).await?;
        let response = self
            .send(
                Target::Node(coordinator),
                &DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]),
            )
            .await?;
        for r in response.results {
            AdminError::check(r.error_code, None, || format!("deleting group {group}"))?;
        }
        Ok(())
    }
}
