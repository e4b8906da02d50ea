//! DescribeTopicPartitions (key 75, KIP-966): topics and their partitions like Metadata,
//! sorted by name and paginated: at most `response_partition_limit` partitions (capped by
//! `max.request.partition.size.limit`) per answer, continued from a cursor. The Admin
//! client's `describeTopics` uses it. There are no eligible leader replicas on one node.

use std::sync::Arc;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::RequestContext;
use crate::broker::Broker;
use crate::log_manager::{validate_topic_name, Topic, INTERNAL_TOPICS};
use crate::security::acl::{Operation, ResourceType};

fn name(s: &str) -> Option<TopicName> {
    Some(TopicName(StrBytes::from_string(s.to_string())))
}

fn error_topic(topic: &str, error: ResponseError) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(error.code())
        .with_name(name(topic))
        .with_topic_id(Uuid::nil())
        .with_is_internal(INTERNAL_TOPICS.contains(&topic))
}

/// The partitions `from..` of `topic`, at most `max`; and the next partition if some remain.
fn partitions(
    broker: &Broker,
    topic: &Topic,
    from: usize,
    max: usize,
) -> (Vec<DescribeTopicPartitionsResponsePartition>, Option<i32>) {
    let node = BrokerId(broker.node_id());
    let count = topic.partitions.len();
    let upper = count.min(from.saturating_add(max));
    let described = (from..upper)
        .map(|p| {
            DescribeTopicPartitionsResponsePartition::default()
                .with_partition_index(p as i32)
                .with_leader_id(node)
                .with_leader_epoch(broker.leader_epoch())
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
                .with_eligible_leader_replicas(Some(Vec::new()))
                .with_last_known_elr(Some(Vec::new()))
        })
        .collect();
    (described, (upper < count).then_some(upper as i32))
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let all = request.topics.is_empty();
    let cursor_topic = request
        .cursor
        .as_ref()
        .map_or(String::new(), |c| c.topic_name.to_string());
    let mut names: Vec<String> = if all {
        broker
            .logs
            .topics()
            .iter()
            .map(|t| t.name.clone())
            // All topics: those the principal may not DESCRIBE are left out.
            .filter(|n| broker.allows(&ctx, Operation::Describe, ResourceType::Topic, n))
            .collect()
    } else {
        request.topics.iter().map(|t| t.name.to_string()).collect()
    };
    names.retain(|n| *n >= cursor_topic);
    names.sort();
    names.dedup();
    let cursor_invalid = request.cursor.as_ref().is_some_and(|c| {
        c.partition_index < 0 || (!all && !names.contains(&c.topic_name.to_string()))
    });
    if cursor_invalid {
        // Kafka refuses the whole request: every named topic gets INVALID_REQUEST.
        let topics = request
            .topics
            .iter()
            .map(|t| error_topic(t.name.as_str(), ResponseError::InvalidRequest))
            .collect();
        return DescribeTopicPartitionsResponse::default().with_topics(topics);
    }
    let limit = request
        .response_partition_limit
        .min(broker.config.max_request_partition_size_limit)
        .max(1) as usize;
    let mut remaining = limit;
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for topic_name in &names {
        if remaining == 0 {
            // Everything of the previous topics fitted: continue with this one.
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(TopicName(StrBytes::from_string(topic_name.clone())))
                    .with_partition_index(0),
            );
            break;
        }
        let topic_operations =
            || broker.authorized_operations(&ctx, ResourceType::Topic, topic_name);
        if !all && !broker.allows(&ctx, Operation::Describe, ResourceType::Topic, topic_name) {
            topics.push(
                error_topic(topic_name, ResponseError::TopicAuthorizationFailed)
                    .with_is_internal(false),
            );
            continue;
        }
        let Some(topic) = broker.logs.topic(topic_name) else {
            if !all {
                let error = match validate_topic_name(topic_name) {
                    Ok(()) => ResponseError::UnknownTopicOrPartition,
                    Err(_) => ResponseError::InvalidTopicException,
                };
                topics.push(
                    error_topic(topic_name, error)
                        .with_topic_authorized_operations(topic_operations()),
                );
            }
            continue;
        };
        let from = match &request.cursor {
            Some(c) if c.topic_name.as_str() == topic_name => c.partition_index as usize,
            _ => 0,
        };
        let (described, next) = partitions(&broker, &topic, from, remaining);
        remaining -= described.len();
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(name(topic_name))
                .with_topic_id(topic.id)
                .with_is_internal(topic.is_internal())
                .with_partitions(described)
                .with_topic_authorized_operations(topic_operations()),
        );
        if let Some(p) = next {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(TopicName(StrBytes::from_string(topic_name.clone())))
                    .with_partition_index(p),
            );
            break;
        }
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}
