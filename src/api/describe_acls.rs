//! DescribeAcls (key 29): the ACL bindings a filter selects, grouped by resource pattern.
//! Needs DESCRIBE on the cluster; without an authorizer the answer is SECURITY_DISABLED.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::authorization::acl_api_authorizer;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::Operation;
use crate::security::acl_filter::{AclBindingFilter, FilterError, WireFilter};

fn failed(error: ResponseError, message: String) -> DescribeAclsResponse {
    DescribeAclsResponse::default()
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let authorizer = match acl_api_authorizer(
        &broker,
        &ctx,
        Operation::Describe,
        "No Authorizer is configured on the broker",
    ) {
        Ok(authorizer) => authorizer,
        Err((e, message)) => return failed(e, message),
    };
    let filter = match AclBindingFilter::parse(WireFilter {
        resource_type: request.resource_type_filter,
        resource_name: request.resource_name_filter.map(|s| s.to_string()),
        pattern_type: request.pattern_type_filter,
        principal: request.principal_filter.map(|s| s.to_string()),
        host: request.host_filter.map(|s| s.to_string()),
        operation: request.operation,
        permission: request.permission_type,
    }) {
        Ok(filter) => filter,
        // An unassigned code selects nothing, as in Kafka.
        Err(FilterError::Unassigned { .. }) => return DescribeAclsResponse::default(),
        Err(e) => return failed(ResponseError::InvalidRequest, e.message()),
    };
    // One resource per (type, name, pattern type), in that order.
    let mut resources: BTreeMap<_, Vec<AclDescription>> = BTreeMap::new();
    for b in authorizer.describe(&filter) {
        resources
            .entry((b.resource_type, b.resource_name.clone(), b.pattern_type))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(StrBytes::from_string(b.principal))
                    .with_host(StrBytes::from_string(b.host))
                    .with_operation(b.operation.code())
                    .with_permission_type(b.permission.code()),
            );
    }
    DescribeAclsResponse::default().with_resources(
        resources
            .into_iter()
            .map(|((resource_type, name, pattern_type), acls)| {
                DescribeAclsResource::default()
                    .with_resource_type(resource_type.code())
                    .with_resource_name(StrBytes::from_string(name))
                    .with_pattern_type(pattern_type.code())
                    .with_acls(acls)
            })
            .collect(),
    )
}
