//! CreateTopics (key 19): creates topics with a partition count (or `num.partitions`),
//! replication factor 1 (or -1 for the default) and topic configs; `validate_only` checks
//! everything and creates nothing.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::errors::topic_error_code;
use super::RequestContext;
use crate::broker::Broker;
use crate::config::topic::TOPIC_CONFIGS;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = request
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.to_string()))
        .map(|t| t.name.to_string())
        .collect();
    let may_create_any = broker.allows_on_cluster(&ctx, Operation::Create);
    let mut results = Vec::new();
    let mut answered_duplicates = HashSet::new();
    for topic in request.topics {
        let name = topic.name.to_string();
        let mut result = CreatableTopicResult::default().with_name(topic.name.clone());
        if duplicates.contains(&name) {
            // One answer per duplicated name, as Kafka gives.
            if !answered_duplicates.insert(name.clone()) {
                continue;
            }
            results.push(
                result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Create topics request from client `{}` contains multiple entries for the following topics: {name}",
                        ctx.client_id.clone().unwrap_or_default()
                    )))),
            );
            continue;
        }
        if !may_create_any && !broker.allows(&ctx, Operation::Create, ResourceType::Topic, &name) {
            results.push(
                result
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_error_message(Some(StrBytes::from_static_str("Authorization failed.")))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1),
            );
            continue;
        }
        // Without DESCRIBE_CONFIGS the configs and partitions of the new topic are not shown.
        let describable =
            broker.allows(&ctx, Operation::DescribeConfigs, ResourceType::Topic, &name);
        if !topic.assignments.is_empty() {
            let single_node = topic
                .assignments
                .iter()
                .all(|a| a.broker_ids.len() == 1 && *a.broker_ids[0] == broker.node_id());
            let contiguous = topic
                .assignments
                .iter()
                .enumerate()
                .all(|(i, a)| a.partition_index == i as i32);
            if topic.num_partitions != -1
                || topic.replication_factor != -1
                || !single_node
                || !contiguous
            {
                results.push(
                    result
                        .with_error_code(ResponseError::InvalidReplicaAssignment.code())
                        .with_error_message(Some(StrBytes::from_static_str(
                            "Replica assignments must name this broker once per partition, 0..n, with num_partitions and replication_factor -1",
                        ))),
                );
                continue;
            }
        }
        let num_partitions = if topic.assignments.is_empty() {
            topic.num_partitions
        } else {
            topic.assignments.len() as i32
        };
        let configs: BTreeMap<String, String> = topic
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect();
        let outcome = if request.validate_only {
            broker
                .logs
                .validate_new_topic(&name, num_partitions, topic.replication_factor, &configs)
                // Kafka answers with the id the topic would get.
                .map(|(partitions, _)| (partitions, uuid::Uuid::new_v4(), configs.clone()))
        } else {
            broker
                .create_topic(
                    &name,
                    num_partitions,
                    topic.replication_factor,
                    configs.clone(),
                )
                .await
                .map(|t| (t.partitions.len() as i32, t.id, t.configs.clone()))
        };
        match outcome {
            // Kafka's controller then leaves out the configs and the partition count.
            Ok((_, id, _)) if !describable => {
                result = result
                    .with_topic_id(id)
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
                    .with_topic_config_error_code(ResponseError::TopicAuthorizationFailed.code());
            }
            Ok((partitions, id, stored_configs)) => {
                let entries = TOPIC_CONFIGS
                    .iter()
                    .map(|d| {
                        let described = broker.config.describe_topic_config(d, &stored_configs);
                        CreatableTopicConfigs::default()
                            .with_name(StrBytes::from_string(d.name.to_string()))
                            .with_value(described.value.map(StrBytes::from_string))
                            .with_config_source(described.source as i8)
                    })
                    .collect();
                result = result
                    .with_topic_id(id)
                    .with_num_partitions(partitions)
                    .with_replication_factor(1)
                    .with_configs(Some(entries));
            }
            Err(e) => {
                result = result
                    .with_error_code(topic_error_code(&e).code())
                    .with_error_message(Some(StrBytes::from_string(e.to_string())))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1);
            }
        }
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}
