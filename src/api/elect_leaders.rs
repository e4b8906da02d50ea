//! ElectLeaders (key 43): every partition's only replica is already its leader, so each
//! named partition answers ELECTION_NOT_NEEDED, as Kafka does when the preferred leader
//! leads; a null list (all partitions) lists every topic with no election needed.

use std::sync::Arc;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    broker: Arc<Broker>,
    _ctx: RequestContext,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let Some(wanted) = request.topic_partitions else {
        // All partitions: Kafka lists every topic, each with no partition needing an election.
        let results = broker
            .logs
            .topics()
            .iter()
            .map(|t| {
                ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from_string(t.name.clone())))
            })
            .collect();
        return ElectLeadersResponse::default().with_replica_election_results(results);
    };
    let results = wanted
        .into_iter()
        .map(|t| {
            let topic = broker.logs.topic(t.topic.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|&p| {
                    let r = PartitionResult::default().with_partition_id(p);
                    if topic.as_ref().and_then(|t| t.partition(p)).is_some() {
                        r.with_error_code(ResponseError::ElectionNotNeeded.code())
                            .with_error_message(Some(StrBytes::from_static_str(
                                "Leader election not needed for topic partition",
                            )))
                    } else {
                        r.with_error_code(ResponseError::UnknownTopicOrPartition.code())
                    }
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(t.topic)
                .with_partition_result(partitions)
        })
        .collect();
    ElectLeadersResponse::default().with_replica_election_results(results)
}
