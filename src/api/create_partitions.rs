//! CreatePartitions (key 37): grows a topic's partition count (never shrinks it:
//! INVALID_PARTITIONS). Manual assignments may only name this broker.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::errors::topic_error_code;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = request
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.to_string()))
        .map(|t| t.name.to_string())
        .collect();
    // Each new partition's one replica must be a broker clients can reach: this one, or in
    // cluster mode any live one.
    let brokers: HashSet<i32> = broker
        .brokers(ctx.listener)
        .iter()
        .map(|b| b.node_id)
        .collect();
    let mut results = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let name = t.name.to_string();
        let outcome = if duplicates.contains(&name) {
            Err((
                ResponseError::InvalidRequest,
                format!("Duplicate topic in request: {name}"),
            ))
        } else if !broker.allows(&ctx, Operation::Alter, ResourceType::Topic, &name) {
            Err((
                ResponseError::TopicAuthorizationFailed,
                "Topic authorization failed.".to_string(),
            ))
        } else if let Some(assignments) = &t.assignments {
            let current = broker
                .logs
                .topic(&name)
                .map_or(0, |t| t.partitions.len() as i32);
            let ok = assignments.len() as i32 == t.count - current
                && assignments
                    .iter()
                    .all(|a| a.broker_ids.len() == 1 && brokers.contains(&*a.broker_ids[0]));
            if ok {
                Ok(())
            } else {
                Err((
                    ResponseError::InvalidReplicaAssignment,
                    "Each new partition must be assigned to one live broker".to_string(),
                ))
            }
        } else {
            Ok(())
        };
        let outcome = match outcome {
            Ok(()) => broker
                .create_partitions(&name, t.count, request.validate_only)
                .await
                .map_err(|e| (topic_error_code(&e), e.to_string())),
            Err(e) => Err(e),
        };
        let result = CreatePartitionsTopicResult::default().with_name(t.name);
        results.push(match outcome {
            Ok(()) => result,
            Err((e, message)) => result
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}
