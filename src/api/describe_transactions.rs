//! DescribeTransactions (key 65): state, producer, timeout and partitions of transactional ids.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::errors::coordinator_error;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut states = Vec::new();
    for id in request.transactional_ids {
        let state = TransactionState::default().with_transactional_id(id.clone());
        if !broker.allows(
            &ctx,
            Operation::Describe,
            ResourceType::TransactionalId,
            &id,
        ) {
            states.push(
                state.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code()),
            );
            continue;
        }
        if let Err(e) = broker.txns.check_coordinator(&id) {
            states.push(state.with_error_code(coordinator_error(e).code()));
            continue;
        }
        let state = match broker.txns.describe(id.as_str()).await {
            // Kafka leaves the other fields at their schema defaults (0).
            None => state.with_error_code(ResponseError::TransactionalIdNotFound.code()),
            Some(t) => {
                let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                // Only the topics the principal may DESCRIBE are shown.
                for tp in t.partitions.iter().filter(|tp| {
                    broker.allows(&ctx, Operation::Describe, ResourceType::Topic, &tp.topic)
                }) {
                    by_topic
                        .entry(tp.topic.clone())
                        .or_default()
                        .push(tp.partition);
                }
                state
                    .with_transaction_state(StrBytes::from_static_str(t.state.name()))
                    .with_transaction_timeout_ms(t.timeout_ms)
                    .with_transaction_start_time_ms(t.start_ms)
                    .with_producer_id(ProducerId(t.producer_id))
                    .with_producer_epoch(t.producer_epoch)
                    .with_topics(
                        by_topic
                            .into_iter()
                            .map(|(topic, partitions)| {
                                TopicData::default()
                                    .with_topic(TopicName(StrBytes::from_string(topic)))
                                    .with_partitions(partitions)
                            })
                            .collect(),
                    )
            }
        };
        states.push(state);
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
