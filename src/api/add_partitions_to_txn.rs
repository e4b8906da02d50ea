//! AddPartitionsToTxn (key 24): partitions join a producer's transaction before it writes
//! to them. v0-v3 carry one transaction (clients); v4+ carry several and may only verify
//! (as brokers send them).

use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use super::errors::{coordinator_code, CoordinatorCode};
use super::RequestContext;
use crate::broker::Broker;
use crate::log::TopicPartition;

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
