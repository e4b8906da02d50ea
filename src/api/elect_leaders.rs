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
use crate::security::acl::Operation;

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    if !broker.allows_on_cluster(&ctx, Operation::Alter) {
        // Every named partition fails, and (v1+) the whole request.
        let denied = ResponseError::ClusterAuthorizationFailed.code();
        let results = request
            .topic_partitions
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|&p| {
                        PartitionResult::default()
                            .with_partition_id(p)
                            .with_error_code(denied)
                    })
                    .collect();
                ReplicaElectionResult::default()
                    .with_topic(t.topic)
                    .with_partition_result(partitions)
            })
            .collect();
        return ElectLeadersResponse::default()
            .with_error_code(denied)
            .with_replica_election_results(results);
    }
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
