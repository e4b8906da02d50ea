//! DeleteGroups (key 42): deletes groups without members, with their committed offsets.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::ResponseError;

use super::errors::CoordinatorCode;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for id in request.groups_names {
        if !broker.allows(&ctx, Operation::Delete, ResourceType::Group, &id) {
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(id)
                    .with_error_code(ResponseError::GroupAuthorizationFailed.code()),
            );
            continue;
        }
        let deleted = match broker.groups.check_coordinator(&id) {
            Ok(()) => broker.groups.delete_group(id.as_str()).await,
            Err(e) => Err(e),
        };
        if deleted.is_ok() {
            // A share group's share-partitions loaded in memory go with it.
            broker.shares.forget(|k| k.group == id.as_str());
        }
        let code = deleted.err().map_or(0, CoordinatorCode::code);
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(code),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
