//! ListTransactions (key 66): transactional ids, filtered by state, producer id, (v1+)
//! how long the transaction has been open and (v2+) a regular expression the whole id
//! must match, with Kafka's rules (a transaction that never started counts as open since
//! the epoch).

use std::sync::Arc;

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::broker::Broker;
use crate::log::now_ms;
use crate::security::acl::{Operation, ResourceType};

const KNOWN_STATES: &[&str] = &[
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "Dead",
    "PrepareEpochFence",
];

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let unknown: Vec<StrBytes> = request
        .state_filters
        .iter()
        .filter(|s| !KNOWN_STATES.contains(&s.as_str()))
        .cloned()
        .collect();
    let pattern = match request
        .transactional_id_pattern
        .as_ref()
        .filter(|p| ctx.version >= 2 && !p.is_empty())
    {
        None => None,
        Some(p) => match regex::Regex::new(&format!("^(?:{})$", p.as_str())) {
            Ok(r) => Some(r),
            Err(_) => {
                return ListTransactionsResponse::default()
                    .with_error_code(ResponseError::InvalidRegularExpression.code())
            }
        },
    };
    let now = now_ms();
    let states = broker
        .txns
        .list()
        .await
        .into_iter()
        .filter(|t| {
            request.state_filters.is_empty()
                || request
                    .state_filters
                    .iter()
                    .any(|s| s.as_str() == t.state.name())
        })
        .filter(|t| {
            request.producer_id_filters.is_empty()
                || request
                    .producer_id_filters
                    .iter()
                    .any(|p| **p == t.producer_id)
        })
        .filter(|t| {
            ctx.version < 1
                || request.duration_filter < 0
                || now - t.start_ms > request.duration_filter
        })
        .filter(|t| {
            pattern
                .as_ref()
                .is_none_or(|r| r.is_match(&t.transactional_id))
        })
        .filter(|t| {
            broker.allows(
                &ctx,
                Operation::Describe,
                ResourceType::TransactionalId,
                &t.transactional_id,
            )
        })
        .map(|t| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(t.transactional_id)))
                .with_producer_id(ProducerId(t.producer_id))
                .with_transaction_state(StrBytes::from_static_str(t.state.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(states)
}
