//! ListGroups (key 16): every group with its protocol type and state (v4+: filtered by
//! state, v5+: by type, "classic" or "consumer").

use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let types: Vec<String> = request
        .types_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    // DESCRIBE on the cluster lists every group; else those the principal may DESCRIBE.
    let all = broker.allows_on_cluster(&ctx, Operation::Describe);
    let groups = broker
        .groups
        .list_groups()
        .into_iter()
        .filter(|(id, _, _, _)| {
            all || broker.allows(&ctx, Operation::Describe, ResourceType::Group, id)
        })
        .filter(|(_, _, state, _)| {
            states.is_empty() || states.contains(&state.to_ascii_lowercase())
        })
        .filter(|(_, _, _, kind)| types.is_empty() || types.iter().any(|t| t == kind))
        .map(|(id, protocol_type, state, kind)| {
            let g = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(id)))
                .with_protocol_type(StrBytes::from_string(protocol_type));
            let g = if ctx.version >= 4 {
                g.with_group_state(StrBytes::from_static_str(state))
            } else {
                g
            };
            if ctx.version >= 5 {
                g.with_group_type(StrBytes::from_static_str(kind))
            } else {
                g
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
