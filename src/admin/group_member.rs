//! A member of a consumer group by KIP-848's ConsumerGroupHeartbeat, for `gregor consume
//! --group`: the coordinator assigns the partitions, the member acknowledges them in its
//! next heartbeat, commits with its member epoch and leaves with epoch -1.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::groups::group_id;
use super::{Admin, AdminError, Target};

/// The member's state between heartbeats.
#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub group: String,
    pub member_id: String,
    pub epoch: i32,
    pub topics: Vec<String>,
    /// How often the coordinator wants a heartbeat.
    pub interval: Duration,
    /// Assigned partitions by topic name.
    pub assignment: BTreeMap<String, Vec<i32>>,
    coordinator: i32,
    /// Topic ids of the subscribed topics (the coordinator assigns by id).
    topic_ids: BTreeMap<uuid::Uuid, String>,
}

impl Admin {
    /// Joins `group` subscribed to `topics` (which must exist).
    pub async fn join_consumer_group(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<ConsumerMember, AdminError> {
        let metadata = self.metadata(Some(topics)).await?;
        let mut topic_ids = BTreeMap::new();
        for t in &metadata.topics {
            let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            if t.error_code != 0 {
                return Err(AdminError::NotFound(format!("topic {name} does not exist")));
            }
            topic_ids.insert(t.topic_id, name);
        }
        let mut member = ConsumerMember {
            group: group.to_string(),
            member_id: uuid::Uuid::new_v4().simple().to_string(),
            epoch: 0,
            topics: topics.to_vec(),
            interval: Duration::from_secs(5),
            assignment: BTreeMap::new(),
            coordinator: self.coordinator(group).await?,
            topic_ids,
        };
        self.heartbeat(&mut member).await?;
        Ok(member)
    }

    /// One heartbeat: acknowledges the assignment held, takes a new one if the coordinator
    /// sends it. A fenced member rejoins at epoch 0.
    pub async fn heartbeat(&self, member: &mut ConsumerMember) -> Result<(), AdminError> {
        let owned: Vec<TopicPartitions> = member
            .assignment
            .iter()
            .filter_map(|(topic, partitions)| {
                let id = member.topic_ids.iter().find(|(_, n)| *n == topic)?.0;
                Some(
                    TopicPartitions::default()
                        .with_topic_id(*id)
                        .with_partitions(partitions.clone()),
                )
            })
            .collect();
        let request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(group_id(&member.group))
            .with_member_id(StrBytes::from_string(member.member_id.clone()))
            .with_member_epoch(member.epoch)
            .with_rebalance_timeout_ms(60_000)
            .with_subscribed_topic_names(Some(
                member
                    .topics
                    .iter()
                    .map(|t| TopicName(StrBytes::from_string(t.clone())))
                    .collect(),
            ))
            .with_topic_partitions(Some(owned));
        let response = self
            .send(Target::Node(member.coordinator), &request)
            .await?;
        let code = response.error_code;
        if code == ResponseError::FencedMemberEpoch.code()
            || code == ResponseError::UnknownMemberId.code()
        {
            member.epoch = 0;
            member.assignment.clear();
            return Ok(());
        }
        AdminError::check(code, response.error_message.as_ref(), || {
            format!("heartbeat to group {}", member.group)
        })?;
        if let Some(id) = response.member_id {
            member.member_id = id.to_string();
        }
        member.epoch = response.member_epoch;
        member.interval = Duration::from_millis(response.heartbeat_interval_ms.max(100) as u64);
        if let Some(assignment) = response.assignment {
            member.assignment = assignment
                .topic_partitions
                .into_iter()
                .filter_map(|tp| {
                    let name = member.topic_ids.get(&tp.topic_id)?.clone();
                    Some((name, tp.partitions))
                })
                .collect();
        }
        Ok(())
    }

    /// Leaves the group (epoch -1): its partitions go to the other members at once.
    pub async fn leave_consumer_group(&self, member: &ConsumerMember) -> Result<(), AdminError> {
        let request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(group_id(&member.group))
            .with_member_id(StrBytes::from_string(member.member_id.clone()))
            .with_member_epoch(-1);
        let response = self
            .send(Target::Node(member.coordinator), &request)
            .await?;
        AdminError::check(response.error_code, response.error_message.as_ref(), || {
            format!("leaving group {}", member.group)
        })
    }
}
