//! ConsumerGroupDescribe (key 69): a KIP-848 consumer group's epochs, assignor and members
//! with their current and target assignments.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::errors::CoordinatorCode;
use super::RequestContext;
use crate::broker::Broker;
use crate::coordinator::consumer::Assignment as Partitions;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let names: HashMap<Uuid, String> = broker
        .logs
        .topics()
        .into_iter()
        .map(|t| (t.id, t.name.clone()))
        .collect();
    // Topics unknown to the broker are left out, as Kafka does.
    let assignment = |a: &Partitions| {
        Assignment::default().with_topic_partitions(
            a.iter()
                .filter_map(|(id, parts)| {
                    let name = names.get(id)?;
                    Some(
                        TopicPartitions::default()
                            .with_topic_id(*id)
                            .with_topic_name(TopicName(StrBytes::from_string(name.clone())))
                            .with_partitions(parts.iter().copied().collect()),
                    )
                })
                .collect(),
        )
    };
    let groups = request
        .group_ids
        .into_iter()
        .map(|id| {
            let group = DescribedGroup::default().with_group_id(id.clone());
            if id.is_empty() {
                return group.with_error_code(ResponseError::InvalidGroupId.code());
            }
            if !broker.allows(&ctx, Operation::Describe, ResourceType::Group, &id) {
                return group.with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            if let Err(e) = broker.groups.check_coordinator(&id) {
                return group.with_error_code(e.code());
            }
            let Some(cg) = broker.groups.describe_consumer_group(id.as_str()) else {
                return group
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Group {} not found.",
                        id.as_str()
                    ))));
            };
            let ops = if request.include_authorized_operations {
                broker.authorized_operations(&ctx, ResourceType::Group, &id)
            } else {
                i32::MIN
            };
            let empty = Partitions::new();
            let members = cg
                .members
                .values()
                .map(|m| {
                    Member::default()
                        .with_member_id(StrBytes::from_string(m.member_id.clone()))
                        .with_instance_id(m.instance_id.clone().map(StrBytes::from_string))
                        .with_rack_id(m.rack_id.clone().map(StrBytes::from_string))
                        .with_member_epoch(m.epoch)
                        .with_client_id(StrBytes::from_string(m.client_id.clone()))
                        .with_client_host(StrBytes::from_string(m.client_host.clone()))
                        .with_subscribed_topic_names(
                            m.subscribed_topic_names
                                .iter()
                                .map(|t| TopicName(StrBytes::from_string(t.clone())))
                                .collect(),
                        )
                        .with_subscribed_topic_regex(
                            m.subscribed_topic_regex
                                .as_ref()
                                .map(|(r, _)| StrBytes::from_string(r.clone())),
                        )
                        .with_assignment(assignment(&m.assigned))
                        .with_target_assignment(assignment(
                            cg.target.get(&m.member_id).unwrap_or(&empty),
                        ))
                        // KIP-1099: 0 for a classic member, 1 for a consumer-protocol one.
                        .with_member_type(i8::from(m.classic.is_none()))
                })
                .collect();
            group
                .with_group_state(StrBytes::from_static_str(cg.state()))
                .with_group_epoch(cg.group_epoch)
                .with_assignment_epoch(cg.assignment_epoch)
                .with_assignor_name(StrBytes::from_string(cg.assignor.clone()))
                .with_members(members)
                .with_authorized_operations(ops)
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
