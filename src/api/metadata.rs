//! Metadata (key 3): brokers (this one, or the live ones in cluster mode), the cluster id,
//! and topics with their partitions and leaders. Unknown topics are created here when
//! `auto.create.topics.enable` and the request allow it, as Kafka does. Topics the
//! principal may not DESCRIBE are left out of an all-topics answer and fail when named.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::errors::topic_error_code;
use super::RequestContext;
use crate::broker::Broker;
use crate::log_manager::{validate_topic_name, Topic, INTERNAL_TOPICS};
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};

/// Kafka's "not requested" value of the `authorized_operations` fields.
const NOT_REQUESTED: i32 = i32::MIN;

fn describe_topic(
    broker: &Broker,
    ctx: &RequestContext,
    topic: &Topic,
    include_ops: bool,
) -> MetadataResponseTopic {
    let count = topic.partitions.len() as i32;
    let partitions = (0..count)
        .map(|p| {
            let node = BrokerId(broker.leader(&topic.name, count, p));
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(node)
                .with_leader_epoch(broker.leader_epoch())
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_is_internal(topic.is_internal())
        .with_partitions(partitions)
        .with_topic_authorized_operations(if include_ops {
            broker.authorized_operations(ctx, ResourceType::Topic, &topic.name)
        } else {
            NOT_REQUESTED
        })
}

fn error_topic(name: Option<&str>, id: Uuid, error: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(error.code())
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n.to_string()))))
        .with_topic_id(id)
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: MetadataRequest,
) -> MetadataResponse {
    let include_ops = request.include_topic_authorized_operations;
    // v0: an empty list means all topics; v1+: a null list does.
    let wanted = match request.topics {
        None => None,
        Some(list) if list.is_empty() && ctx.version == 0 => None,
        Some(list) => Some(list),
    };
    let allow_auto_create = broker.config.auto_create_topics_enable
        && (ctx.version < 4 || request.allow_auto_topic_creation);
    let topics = match wanted {
        // All topics: those the principal may not DESCRIBE are left out.
        None => broker
            .logs
            .topics()
            .iter()
            .filter(|t| broker.allows(&ctx, Operation::Describe, ResourceType::Topic, &t.name))
            .map(|t| describe_topic(&broker, &ctx, t, include_ops))
            .collect(),
        // Auto-creation writes partitions to disk: then the lookups run off the async
        // workers (see `run_blocking`).
        Some(list)
            if allow_auto_create
                && list.iter().any(|t| {
                    t.name
                        .as_ref()
                        .is_some_and(|n| broker.logs.topic(n).is_none())
                }) =>
        {
            let (broker, ctx) = (broker.clone(), ctx.clone());
            super::run_blocking(move || describe_or_create(&broker, &ctx, list, true, include_ops))
                .await
        }
        Some(list) => describe_or_create(&broker, &ctx, list, allow_auto_create, include_ops),
    };
    MetadataResponse::default()
        .with_brokers(
            broker
                .brokers(ctx.listener)
                .into_iter()
                .map(|b| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(b.node_id))
                        .with_host(StrBytes::from_string(b.host))
                        .with_port(i32::from(b.port))
                        .with_rack(b.rack.map(StrBytes::from_string))
                })
                .collect(),
        )
        .with_cluster_id(Some(StrBytes::from_string(broker.cluster_id().to_string())))
        .with_controller_id(BrokerId(broker.controller_id()))
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            cluster_authorized_operations(&broker, &ctx)
        } else {
            NOT_REQUESTED
        })
        .with_topics(topics)
}

/// The cluster's `authorized_operations` bits: 0 without DESCRIBE on it, as in Kafka.
pub fn cluster_authorized_operations(broker: &Broker, ctx: &RequestContext) -> i32 {
    if broker.allows_on_cluster(ctx, Operation::Describe) {
        broker.authorized_operations(ctx, ResourceType::Cluster, CLUSTER_NAME)
    } else {
        0
    }
}

/// The topics `list` names (by name or id), each auto-created when allowed and missing.
/// A topic the principal may not DESCRIBE is TOPIC_AUTHORIZATION_FAILED whether or not it
/// exists, and a missing one it may not CREATE (on the cluster or the topic) too.
fn describe_or_create(
    broker: &Broker,
    ctx: &RequestContext,
    list: Vec<MetadataRequestTopic>,
    allow_auto_create: bool,
    include_ops: bool,
) -> Vec<MetadataResponseTopic> {
    list.into_iter()
        .map(
            |t| match t.name.filter(|n| !n.is_empty() || t.topic_id.is_nil()) {
                Some(name)
                    if !broker.allows(ctx, Operation::Describe, ResourceType::Topic, &name) =>
                {
                    error_topic(
                        Some(&name),
                        Uuid::nil(),
                        ResponseError::TopicAuthorizationFailed,
                    )
                }
                Some(name) => {
                    lookup_or_create(broker, ctx, name.as_str(), allow_auto_create, include_ops)
                }
                // By topic id (v10+): the name is null, or empty as the Java client sends it.
                None => match broker.logs.topic_by_id(t.topic_id) {
                    Some(topic)
                        if !broker.allows(
                            ctx,
                            Operation::Describe,
                            ResourceType::Topic,
                            &topic.name,
                        ) =>
                    {
                        error_topic(None, t.topic_id, ResponseError::TopicAuthorizationFailed)
                    }
                    Some(topic) => describe_topic(broker, ctx, &topic, include_ops),
                    None => error_topic(None, t.topic_id, ResponseError::UnknownTopicId),
                },
            },
        )
        .collect()
}

fn lookup_or_create(
    broker: &Broker,
    ctx: &RequestContext,
    name: &str,
    auto_create: bool,
    include_ops: bool,
) -> MetadataResponseTopic {
    if let Some(topic) = broker.logs.topic(name) {
        return describe_topic(broker, ctx, &topic, include_ops);
    }
    // With auto-creation, CREATE (on the cluster or the topic) is checked first, as Kafka
    // does, whatever the name.
    if auto_create
        && !broker.allows_on_cluster(ctx, Operation::Create)
        && !broker.allows(ctx, Operation::Create, ResourceType::Topic, name)
    {
        return error_topic(
            Some(name),
            Uuid::nil(),
            ResponseError::TopicAuthorizationFailed,
        )
        .with_is_internal(INTERNAL_TOPICS.contains(&name));
    }
    if let Err(e) = validate_topic_name(name) {
        return error_topic(Some(name), Uuid::nil(), topic_error_code(&e));
    }
    // The internal topics are created by their coordinators, with their own settings.
    if !auto_create || INTERNAL_TOPICS.contains(&name) {
        return error_topic(
            Some(name),
            Uuid::nil(),
            ResponseError::UnknownTopicOrPartition,
        );
    }
    // Called on the blocking pool (see `handle`).
    let created = tokio::runtime::Handle::current().block_on(broker.create_topic(
        name,
        -1,
        -1,
        BTreeMap::new(),
    ));
    match created {
        Ok(topic) => describe_topic(broker, ctx, &topic, include_ops),
        // Another request created it first.
        Err(crate::log_manager::TopicError::AlreadyExists(_)) => match broker.logs.topic(name) {
            Some(topic) => describe_topic(broker, ctx, &topic, include_ops),
            None => error_topic(Some(name), Uuid::nil(), ResponseError::LeaderNotAvailable),
        },
        Err(e) => {
            tracing::warn!(topic = name, error = %e, "auto-creating a topic failed");
            error_topic(Some(name), Uuid::nil(), topic_error_code(&e))
        }
    }
}
