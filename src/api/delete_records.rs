//! DeleteRecords (key 21): moves partitions' log_start_offset forward (-1: to the high
//! watermark), durably; whole segments before it are deleted. Fetch and ListOffsets honour
//! the new start. In cluster mode the new starts are committed in PostgreSQL for every
//! broker (`cluster/retention.rs`).

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;

use super::errors::log_error_code;
use super::RequestContext;
use crate::broker::Broker;
use crate::cluster::retention::Deletion;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    // In cluster mode the partitions that may be deleted from go to PostgreSQL together:
    // (topic index, partition index, topic id, partition, offset).
    let mut shared = Vec::new();
    let mut topics: Vec<DeleteRecordsTopicResult> = request
        .topics
        .into_iter()
        .enumerate()
        .map(|(ti, t)| {
            let topic = broker.logs.topic(t.name.as_str());
            let denied = !broker.allows(&ctx, Operation::Delete, ResourceType::Topic, &t.name);
            let partitions =
                t.partitions
                    .iter()
                    .enumerate()
                    .map(|(pi, p)| {
                        let result = DeleteRecordsPartitionResult::default()
                            .with_partition_index(p.partition_index)
                            .with_low_watermark(-1);
                        match topic.as_ref().and_then(|t| t.partition(p.partition_index)) {
                            _ if denied => result
                                .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
                            None => result
                                .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                            // As Kafka: the coordinators' state is not a client's to delete.
                            Some(_) if topic.as_ref().is_some_and(|t| t.is_internal()) => {
                                result.with_error_code(ResponseError::InvalidTopicException.code())
                            }
                            Some(_) if broker.cluster.is_some() => {
                                let id = topic.as_ref().map_or(uuid::Uuid::nil(), |t| t.id);
                                shared.push((ti, pi, (id, p.partition_index, p.offset)));
                                result
                            }
                            Some(log) => match broker.logs.delete_records(log, p.offset) {
                                Ok(low) => result.with_low_watermark(low),
                                Err(e) => result.with_error_code(log_error_code(&e).code()),
                            },
                        }
                    })
                    .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    if let (Some(cluster), false) = (&broker.cluster, shared.is_empty()) {
        let requests: Vec<_> = shared.iter().map(|s| s.2).collect();
        let outcomes = cluster.delete_records(&requests).await;
        for (i, &(ti, pi, _)) in shared.iter().enumerate() {
            let result = &mut topics[ti].partitions[pi];
            match outcomes.as_ref().map(|o| o[i]) {
                Ok(Deletion::Moved(low)) => result.low_watermark = low,
                Ok(Deletion::OutOfRange) => {
                    result.error_code = ResponseError::OffsetOutOfRange.code();
                }
                Ok(Deletion::UnknownPartition) => {
                    result.error_code = ResponseError::UnknownTopicOrPartition.code();
                }
                // Retriable: nothing was deleted.
                Err(_) => result.error_code = ResponseError::KafkaStorageError.code(),
            }
        }
        if let Err(e) = outcomes {
            tracing::warn!(error = %e, "DeleteRecords did not commit");
        }
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
