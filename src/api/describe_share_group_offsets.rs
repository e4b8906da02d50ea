//! DescribeShareGroupOffsets (key 90): each share-partition's start offset as last written
//! (the offset from which records are not yet all delivered), for the topics asked, or for
//! every share-partition the group has.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup, DescribeShareGroupOffsetsResponsePartition,
    DescribeShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::{
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::share::state_store::SharePartitionKey;

fn partition(index: i32, start_offset: i64) -> DescribeShareGroupOffsetsResponsePartition {
    DescribeShareGroupOffsetsResponsePartition::default()
        .with_partition_index(index)
        .with_start_offset(start_offset)
        .with_leader_epoch(0)
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: DescribeShareGroupOffsetsRequest,
) -> DescribeShareGroupOffsetsResponse {
    let store = &broker.shares.store;
    let mut groups = Vec::with_capacity(request.groups.len());
    for g in request.groups {
        let group =
            DescribeShareGroupOffsetsResponseGroup::default().with_group_id(g.group_id.clone());
        if !broker.shares.config().enable {
            groups.push(group.with_error_code(ResponseError::UnsupportedVersion.code()));
            continue;
        }
        if !broker.allows(&ctx, Operation::Describe, ResourceType::Group, &g.group_id) {
            groups.push(group.with_error_code(ResponseError::GroupAuthorizationFailed.code()));
            continue;
        }
        let topics = match g.topics {
            None => {
                // Every share-partition the group has, of topics the caller may describe.
                let mut by_topic: BTreeMap<Uuid, Vec<(i32, i64)>> = BTreeMap::new();
                for (key, state) in store.group_states(&g.group_id).await {
                    by_topic
                        .entry(key.topic_id)
                        .or_default()
                        .push((key.partition, state.start_offset));
                }
                by_topic
                    .into_iter()
                    .filter_map(|(id, parts)| {
                        let topic = broker.logs.topic_by_id(id)?;
                        broker
                            .allows(&ctx, Operation::Describe, ResourceType::Topic, &topic.name)
                            .then(|| {
                                DescribeShareGroupOffsetsResponseTopic::default()
                                    .with_topic_name(TopicName(StrBytes::from_string(
                                        topic.name.clone(),
                                    )))
                                    .with_topic_id(id)
                                    .with_partitions(
                                        parts.into_iter().map(|(p, o)| partition(p, o)).collect(),
                                    )
                            })
                    })
                    .collect()
            }
            Some(asked) => {
                let mut out = Vec::with_capacity(asked.len());
                for t in asked {
                    let reply = DescribeShareGroupOffsetsResponseTopic::default()
                        .with_topic_name(t.topic_name.clone());
                    if !broker.allows(
                        &ctx,
                        Operation::Describe,
                        ResourceType::Topic,
                        &t.topic_name,
                    ) {
                        out.push(
                            reply.with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        partition(*p, -1).with_error_code(
                                            ResponseError::TopicAuthorizationFailed.code(),
                                        )
                                    })
                                    .collect(),
                            ),
                        );
                        continue;
                    }
                    let Some(topic) = broker.logs.topic(&t.topic_name) else {
                        out.push(reply.with_partitions(
                            t.partitions.iter().map(|p| partition(*p, -1)).collect(),
                        ));
                        continue;
                    };
                    let mut parts = Vec::with_capacity(t.partitions.len());
                    for p in &t.partitions {
                        let key = SharePartitionKey {
                            group: g.group_id.to_string(),
                            topic_id: topic.id,
                            partition: *p,
                        };
                        let start = store.read(&key).await.map_or(-1, |s| s.start_offset);
                        parts.push(partition(*p, start));
                    }
                    out.push(reply.with_topic_id(topic.id).with_partitions(parts));
                }
                out
            }
        };
        groups.push(group.with_topics(topics));
    }
    DescribeShareGroupOffsetsResponse::default().with_groups(groups)
}
