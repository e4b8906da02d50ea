//! AddPartitionsToTxn (key 24): partitions join a producer's transaction before it writes
//! to them. v0-v3 carry one transaction (clients); v4+ carry several and may only verify
//! (as brokers send them).

use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use kafka_protocol::ResponseError;

use super::errors::{coordinator_code, CoordinatorCode};
use super::RequestContext;
use crate::broker::Broker;
use crate::log::TopicPartition;
use crate::log_manager::INTERNAL_TOPICS;
use crate::security::acl::{Operation, ResourceType};

fn partitions_of(topics: &[AddPartitionsToTxnTopic]) -> Vec<TopicPartition> {
    topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|&p| TopicPartition {
                topic: t.name.to_string(),
                partition: p,
            })
        })
        .collect()
}

/// The codes of a v0-v3 request that fails authorization, as Kafka answers it: WRITE on
/// the transactional id, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED everywhere; WRITE on
/// every topic (never an internal one), else TOPIC_AUTHORIZATION_FAILED for the refused ones, with the unknown ones
/// UNKNOWN_TOPIC_OR_PARTITION and the rest OPERATION_NOT_ATTEMPTED. `None`: authorized.
fn refused(
    broker: &Broker,
    ctx: &RequestContext,
    request: &AddPartitionsToTxnRequest,
) -> Option<Vec<i16>> {
    let topics = &request.v3_and_below_topics;
    let count = topics.iter().map(|t| t.partitions.len()).sum();
    let transactional_id = request.v3_and_below_transactional_id.as_str();
    if !broker.allows(
        ctx,
        Operation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    ) {
        return Some(vec![
            ResponseError::TransactionalIdAuthorizationFailed.code();
            count
        ]);
    }
    // Internal topics are never added this way (AddOffsetsToTxn adds __consumer_offsets).
    let denied: Vec<bool> = topics
        .iter()
        .map(|t| {
            INTERNAL_TOPICS.contains(&t.name.as_str())
                || !broker.allows(ctx, Operation::Write, ResourceType::Topic, &t.name)
        })
        .collect();
    if !denied.contains(&true) {
        return None;
    }
    let mut codes = Vec::with_capacity(count);
    for (t, denied) in topics.iter().zip(denied) {
        let topic = broker.logs.topic(&t.name);
        for &p in &t.partitions {
            codes.push(if denied {
                ResponseError::TopicAuthorizationFailed.code()
            } else if topic.as_ref().and_then(|t| t.partition(p)).is_none() {
                ResponseError::UnknownTopicOrPartition.code()
            } else {
                ResponseError::OperationNotAttempted.code()
            });
        }
    }
    Some(codes)
}

fn results(
    topics: &[AddPartitionsToTxnTopic],
    codes: &[i16],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut codes = codes.iter().copied();
    topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|&p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(p)
                                .with_partition_error_code(codes.next().unwrap_or(0))
                        })
                        .collect(),
                )
        })
        .collect()
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if ctx.version <= 3 {
        let partitions = partitions_of(&request.v3_and_below_topics);
        if let Some(codes) = refused(&broker, &ctx, &request) {
            return AddPartitionsToTxnResponse::default()
                .with_results_by_topic_v3_and_below(results(&request.v3_and_below_topics, &codes));
        }
        let codes = broker
            .txns
            .add_partitions(
                request.v3_and_below_transactional_id.as_str(),
                *request.v3_and_below_producer_id,
                request.v3_and_below_producer_epoch,
                &partitions,
                false,
            )
            .await
            .map_or_else(
                |e| vec![e.code(); partitions.len()],
                |outcomes| outcomes.into_iter().map(coordinator_code).collect(),
            );
        return AddPartitionsToTxnResponse::default()
            .with_results_by_topic_v3_and_below(results(&request.v3_and_below_topics, &codes));
    }
    // v4+ is sent by brokers, verifying for their produce requests.
    if !broker.allows_on_cluster(&ctx, Operation::ClusterAction) {
        return AddPartitionsToTxnResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let mut out = Vec::new();
    for txn in &request.transactions {
        let partitions = partitions_of(&txn.topics);
        let codes = broker
            .txns
            .add_partitions(
                txn.transactional_id.as_str(),
                *txn.producer_id,
                txn.producer_epoch,
                &partitions,
                txn.verify_only,
            )
            .await
            .map_or_else(
                |e| vec![e.code(); partitions.len()],
                |outcomes| outcomes.into_iter().map(coordinator_code).collect(),
            );
        out.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(txn.transactional_id.clone())
                .with_topic_results(results(&txn.topics, &codes)),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(out)
}
