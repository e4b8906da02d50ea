//! ShareGroupDescribe (key 77): a share group's state, epochs, assignor and members with
//! their subscriptions and current assignments.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::share_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{ShareGroupDescribeRequest, ShareGroupDescribeResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::errors::CoordinatorCode;
use super::RequestContext;
use crate::broker::Broker;
use crate::coordinator::consumer::Assignment as Partitions;
use crate::coordinator::share::assignor::SIMPLE;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: ShareGroupDescribeRequest,
) -> ShareGroupDescribeResponse {
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
    let enabled = broker.shares.config().enable;
    let groups = request
        .group_ids
        .into_iter()
        .map(|id| {
            let group = DescribedGroup::default().with_group_id(id.clone());
            if !enabled {
                return group.with_error_code(ResponseError::UnsupportedVersion.code());
            }
            if !broker.allows(&ctx, Operation::Describe, ResourceType::Group, &id) {
                return group.with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            if let Err(e) = broker.groups.check_coordinator(&id) {
                return group.with_error_code(e.code());
            }
            if id.is_empty() {
                return group.with_error_code(ResponseError::InvalidGroupId.code());
            }
            let Some(sg) = broker.groups.describe_share_group(id.as_str()) else {
                let message = if broker
                    .groups
                    .list_groups()
                    .iter()
                    .any(|g| g.0 == id.as_str())
                {
                    format!("Group {} is not a share group.", id.as_str())
                } else {
                    format!("Group {} not found.", id.as_str())
                };
                return group
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(StrBytes::from_string(message)));
            };
            let ops = if request.include_authorized_operations {
                broker.authorized_operations(&ctx, ResourceType::Group, &id)
            } else {
                i32::MIN
            };
            let members = sg
                .members
                .values()
                .map(|m| {
                    Member::default()
                        .with_member_id(StrBytes::from_string(m.member_id.clone()))
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
                        .with_assignment(assignment(&m.assigned))
                })
                .collect();
            group
                .with_group_state(StrBytes::from_static_str(sg.state()))
                .with_group_epoch(sg.group_epoch)
                .with_assignment_epoch(sg.assignment_epoch)
                .with_assignor_name(StrBytes::from_static_str(SIMPLE))
                .with_members(members)
                .with_authorized_operations(ops)
        })
        .collect();
    ShareGroupDescribeResponse::default().with_groups(groups)
}
