//! CreateAcls (key 30): adds ACL bindings, durably. Needs ALTER on the cluster; without an
//! authorizer every creation is SECURITY_DISABLED. Each creation is validated as Kafka's
//! controller does and answered on its own; the valid ones are stored together.

use std::sync::Arc;

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::authorization::acl_api_authorizer;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{
    AclBinding, Operation, PatternType, Permission, ResourceType, CLUSTER_NAME,
};
use crate::security::metadata_file::MetadataFileError;

fn failed(error: ResponseError, message: String) -> AclCreationResult {
    AclCreationResult::default()
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}

/// The binding `c` asks for, or Kafka's INVALID_REQUEST message.
fn binding(c: &AclCreation) -> Result<AclBinding, String> {
    let unknown = |field: &str, code: i8| format!("Invalid {field} {code}");
    let resource_type = ResourceType::from_code(c.resource_type)
        .ok_or_else(|| unknown("resourceType", c.resource_type))?;
    let pattern_type = PatternType::from_code(c.resource_pattern_type)
        .ok_or_else(|| unknown("patternType", c.resource_pattern_type))?;
    let operation =
        Operation::from_code(c.operation).ok_or_else(|| unknown("operation", c.operation))?;
    let permission = Permission::from_code(c.permission_type)
        .ok_or_else(|| unknown("permissionType", c.permission_type))?;
    let name = c.resource_name.to_string();
    if resource_type == ResourceType::Cluster && name != CLUSTER_NAME {
        return Err(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        ));
    }
    if name.is_empty() {
        return Err("Invalid empty resource name".into());
    }
    let principal = c.principal.to_string();
    if !principal.contains(':') {
        return Err(format!("Could not parse principal from `{principal}` (no colon is present separating the principal type from the principal name)"));
    }
    Ok(AclBinding {
        resource_type,
        resource_name: name,
        pattern_type,
        principal,
        host: c.host.to_string(),
        operation,
        permission,
    })
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: CreateAclsRequest,
) -> CreateAclsResponse {
    let every = |result: AclCreationResult| {
        CreateAclsResponse::default().with_results(vec![result; request.creations.len()])
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
    let parsed: Vec<Result<AclBinding, String>> = request.creations.iter().map(binding).collect();
    let valid: Vec<AclBinding> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .cloned()
        .collect();
    let path = authorizer.path();
    let stored = broker
        .change_metadata_file(
            path,
            || authorizer.create(&valid),
            || {
                let _ = authorizer.reload();
            },
            |e| MetadataFileError::new(path, e.to_string()),
        )
        .await;
    if let Err(e) = &stored {
        tracing::error!(error = %e, "storing ACLs failed");
    }
    let results = parsed
        .into_iter()
        .map(|p| match (p, &stored) {
            (Err(message), _) => failed(ResponseError::InvalidRequest, message),
            (Ok(_), Err(e)) => failed(ResponseError::KafkaStorageError, e.to_string()),
            (Ok(_), Ok(())) => AclCreationResult::default(),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}
