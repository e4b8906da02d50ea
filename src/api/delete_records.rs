//! DeleteRecords (key 21): moves partitions' log_start_offset forward (-1: to the high
//! watermark), durably; whole segments before it are deleted. Fetch and ListOffsets honour
//! the new start.

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;

use super::errors::log_error_code;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.logs.topic(t.name.as_str());
            let denied = !broker.allows(&ctx, Operation::Delete, ResourceType::Topic, &t.name);
            let partitions =
                t.partitions
                    .iter()
                    .map(|p| {
                        let result = DeleteRecordsPartitionResult::default()
                            .with_partition_index(p.partition_index)
                            .with_low_watermark(-1);
                        match topic.as_ref().and_then(|t| t.partition(p.partition_index)) {
                            _ if denied => result
                                .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
                            None => result
                                .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                            Some(_) if broker.cluster.is_some() => {
                                result.with_error_code(ResponseError::PolicyViolation.code())
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
    DeleteRecordsResponse::default().with_topics(topics)
}
