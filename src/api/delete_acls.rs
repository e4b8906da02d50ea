//! DeleteAcls (key 31): removes, durably, the ACL bindings each filter selects and lists
//! them per filter. Needs ALTER on the cluster; without an authorizer every filter is
//! SECURITY_DISABLED. A filter with an unknown code fails alone.

use std::sync::Arc;

use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::authorization::acl_api_authorizer;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::Operation;
use crate::security::acl_filter::{AclBindingFilter, FilterError, WireFilter};
use crate::security::metadata_file::MetadataFileError;

fn failed(error: ResponseError, message: String) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult::default()
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let every = |result: DeleteAclsFilterResult| {
        DeleteAclsResponse::default().with_filter_results(vec![result; request.filters.len()])
    };
    let authorizer = match acl_api_authorizer(
        &broker,
        &ctx,
        Operation::Alter,
        "No Authorizer is configured.",
    ) {
        Ok(authorizer) => authorizer,
        Err((e, message)) => return every(failed(e, message)),
    };
    let parsed: Vec<Result<AclBindingFilter, FilterError>> = request
        .filters
        .into_iter()
        .map(|f| {
            AclBindingFilter::parse(WireFilter {
                resource_type: f.resource_type_filter,
                resource_name: f.resource_name_filter.map(|s| s.to_string()),
                pattern_type: f.pattern_type_filter,
                principal: f.principal_filter.map(|s| s.to_string()),
                host: f.host_filter.map(|s| s.to_string()),
                operation: f.operation,
                permission: f.permission_type,
            })
        })
        .collect();
    let valid: Vec<AclBindingFilter> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .cloned()
        .collect();
    let path = authorizer.path();
    let removed = broker
        .change_metadata_file(
            path,
            || authorizer.delete(&valid),
            || {
                let _ = authorizer.reload();
            },
            |e| MetadataFileError::new(path, e.to_string()),
        )
        .await;
    if let Err(e) = &removed {
        tracing::error!(error = %e, "storing ACLs failed");
    }
    let mut removed_per_filter = match &removed {
        Ok(lists) => lists.clone().into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    let results = parsed
        .into_iter()
        .map(|p| match (p, &removed) {
            (Err(e), _) => failed(ResponseError::InvalidRequest, e.message()),
            (Ok(_), Err(e)) => failed(ResponseError::KafkaStorageError, e.to_string()),
            (Ok(_), Ok(_)) => DeleteAclsFilterResult::default().with_matching_acls(
                removed_per_filter
                    .next()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|b| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(b.resource_type.code())
                            .with_resource_name(StrBytes::from_string(b.resource_name))
                            .with_pattern_type(b.pattern_type.code())
                            .with_principal(StrBytes::from_string(b.principal))
                            .with_host(StrBytes::from_string(b.host))
                            .with_operation(b.operation.code())
                            .with_permission_type(b.permission.code())
                    })
                    .collect(),
            ),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
