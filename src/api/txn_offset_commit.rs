//! TxnOffsetCommit (key 28): offsets committed inside a transaction; OffsetFetch shows
//! them only after the transaction commits (and never if it aborts).

use std::sync::Arc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::ResponseError;

use super::authorization::refused_offsets_in_transaction;
use super::errors::{coordinator_code, coordinator_error, CoordinatorCode};
use super::RequestContext;
use crate::broker::Broker;
use crate::coordinator::OffsetCommitEntry;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    // WRITE on the transactional id, then READ on the group, fail every partition; READ on
    // a topic fails just its partitions.
    let refused =
        refused_offsets_in_transaction(&broker, &ctx, &request.transactional_id, &request.group_id)
            .or_else(|| {
                // Sent to the group's coordinator, which may have moved (cluster mode).
                broker
                    .groups
                    .check_coordinator(&request.group_id)
                    .err()
                    .map(coordinator_error)
            });
    let denied: Vec<bool> = request
        .topics
        .iter()
        .map(|t| !broker.allows(&ctx, Operation::Read, ResourceType::Topic, &t.name))
        .collect();
    let entries: Vec<OffsetCommitEntry> = request
        .topics
        .iter()
        .zip(&denied)
        .filter(|(_, denied)| !**denied && refused.is_none())
        .flat_map(|(t, _)| {
            t.partitions.iter().map(|p| OffsetCommitEntry {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if ctx.version >= 2 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p
                    .committed_metadata
                    .as_ref()
                    .map(std::string::ToString::to_string),
            })
        })
        .collect();
    // Refused, or every topic refused: Kafka answers without the coordinators.
    let skip = refused.is_some() || (entries.is_empty() && denied.contains(&true));
    let check = if skip {
        Ok(())
    } else {
        broker
            .txns
            .check_offset_commit(
                request.transactional_id.as_str(),
                *request.producer_id,
                request.producer_epoch,
            )
            .await
    };
    let codes: Vec<i16> = if skip {
        Vec::new()
    } else if let Err(e) = check {
        vec![e.code(); entries.len()]
    } else {
        let member = (ctx.version >= 3 && request.generation_id >= 0).then(|| {
            (
                request.member_id.as_str(),
                request
                    .group_instance_id
                    .as_ref()
                    .map(kafka_protocol::protocol::StrBytes::as_str),
                request.generation_id,
            )
        });
        broker
            .groups
            .txn_commit(
                request.group_id.as_str(),
                *request.producer_id,
                request.producer_epoch,
                member,
                entries,
            )
            .await
            .into_iter()
            .map(coordinator_code)
            .collect()
    };
    let mut codes = codes.into_iter();
    let topics = request
        .topics
        .into_iter()
        .zip(denied)
        .map(|(t, denied)| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(match refused {
                            Some(e) => e.code(),
                            None if denied => ResponseError::TopicAuthorizationFailed.code(),
                            None => codes.next().unwrap_or(0),
                        })
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
