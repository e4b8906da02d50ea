//! DescribeGroups (key 15): state, protocol and members (with metadata and assignment once
//! a rebalance has completed) of each group. An unknown group is reported Dead (v6+:
//! GROUP_ID_NOT_FOUND), as Kafka does.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::errors::CoordinatorCode;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let include_ops = request.include_authorized_operations && ctx.version >= 3;
    let groups = request
        .groups
        .into_iter()
        .map(|id| {
            if !broker.allows(&ctx, Operation::Describe, ResourceType::Group, &id) {
                return DescribedGroup::default()
                    .with_group_id(id)
                    .with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            if let Err(e) = broker.groups.check_coordinator(&id) {
                return DescribedGroup::default()
                    .with_group_id(id)
                    .with_error_code(e.code());
            }
            let ops = if include_ops {
                broker.authorized_operations(&ctx, ResourceType::Group, &id)
            } else {
                i32::MIN
            };
            match broker.groups.describe(id.as_str()) {
                None => {
                    let g = DescribedGroup::default()
                        .with_group_id(id)
                        .with_group_state(StrBytes::from_static_str("Dead"))
                        .with_authorized_operations(ops);
                    if ctx.version >= 6 {
                        g.with_error_code(ResponseError::GroupIdNotFound.code())
                    } else {
                        g
                    }
                }
                Some(d) => DescribedGroup::default()
                    .with_group_id(id)
                    .with_group_state(StrBytes::from_static_str(d.state.name()))
                    .with_protocol_type(StrBytes::from_string(d.protocol_type))
                    .with_protocol_data(StrBytes::from_string(d.protocol_name))
                    .with_authorized_operations(ops)
                    .with_members(
                        d.members
                            .into_iter()
                            .map(
                                |(member_id, instance, client_id, host, metadata, assignment)| {
                                    DescribedGroupMember::default()
                                        .with_member_id(StrBytes::from_string(member_id))
                                        .with_group_instance_id(instance.map(StrBytes::from_string))
                                        .with_client_id(StrBytes::from_string(client_id))
                                        .with_client_host(StrBytes::from_string(host))
                                        .with_member_metadata(metadata)
                                        .with_member_assignment(assignment)
                                },
                            )
                            .collect(),
                    ),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
