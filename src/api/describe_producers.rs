//! DescribeProducers (key 61): the active idempotent producers of each partition, with
//! their epoch, last sequence, last timestamp and the first offset of their open
//! transaction on the partition (the coordinator epoch is not tracked: -1).

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.logs.topic(t.name.as_str());
            let denied = !broker.allows(&ctx, Operation::Read, ResourceType::Topic, &t.name);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&p| {
                    let r = PartitionResponse::default().with_partition_index(p);
                    if denied {
                        r.with_error_code(ResponseError::TopicAuthorizationFailed.code())
                            .with_error_message(Some(StrBytes::from_static_str(
                                "Topic authorization failed.",
                            )))
                    } else if let Some(log) = topic.as_ref().and_then(|t| t.partition(p)) {
                        r.with_active_producers(
                            log.producers()
                                .into_iter()
                                .map(|(id, e)| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(id))
                                        .with_producer_epoch(e.epoch as i32)
                                        .with_last_sequence(e.last_seq().unwrap_or(-1))
                                        .with_last_timestamp(e.last_timestamp)
                                        .with_coordinator_epoch(-1)
                                        .with_current_txn_start_offset(
                                            e.current_txn_first_offset.unwrap_or(-1),
                                        )
                                })
                                .collect(),
                        )
                    } else {
                        r.with_error_code(ResponseError::UnknownTopicOrPartition.code())
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
