//! The authorization checks every API makes before acting, as Kafka's `AuthHelper` does:
//! `broker.allows(&ctx, operation, resource type, name)`. Without an authorizer every
//! request is allowed and `authorized_operations` reports everything a resource supports.

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};
use crate::security::authorizer::{all_operations, Requester};

impl RequestContext {
    /// The principal and client address that ACLs name (`127.0.0.1`, without Kafka's `/`).
    pub fn requester(&self) -> Requester<'_> {
        Requester {
            principal: &self.principal,
            host: self.client_host.trim_start_matches('/'),
        }
    }
}

impl Broker {
    pub fn allows(
        &self,
        ctx: &RequestContext,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.authorizer
            .as_ref()
            .is_none_or(|a| a.authorize(ctx.requester(), operation, resource_type, name))
    }

    pub fn allows_on_cluster(&self, ctx: &RequestContext, operation: Operation) -> bool {
        self.allows(ctx, operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// `operation` on some resource of the type (Kafka's `authorizeByResourceType`).
    pub fn allows_on_any(
        &self,
        ctx: &RequestContext,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        self.authorizer
            .as_ref()
            .is_none_or(|a| a.authorize_by_resource_type(ctx.requester(), operation, resource_type))
    }

    /// The `authorized_operations` bits of one resource for this request's principal.
    pub fn authorized_operations(
        &self,
        ctx: &RequestContext,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        match &self.authorizer {
            None => all_operations(resource_type),
            Some(a) => a.authorized_operations(ctx.requester(), resource_type, name),
        }
    }
}

/// `ConfigResource.Type` codes of DescribeConfigs and the AlterConfigs APIs.
const CONFIG_TOPIC: i8 = 2;
const CONFIG_BROKER: i8 = 4;
const CONFIG_BROKER_LOGGER: i8 = 8;
const CONFIG_CLIENT_METRICS: i8 = 16;
const CONFIG_GROUP: i8 = 32;

/// Whether the request may `operation` (DESCRIBE_CONFIGS or ALTER_CONFIGS) the configs of
/// a resource, and Kafka's error and message if not: broker-wide configs are checked on
/// the cluster, the others on the resource. Unknown resource types pass, for the handler
/// to refuse.
pub fn check_config_access(
    broker: &Broker,
    ctx: &RequestContext,
    operation: Operation,
    resource_type: i8,
    name: &str,
) -> Result<(), (kafka_protocol::ResponseError, &'static str)> {
    use kafka_protocol::ResponseError;
    let (allowed, error, message) = match resource_type {
        CONFIG_BROKER | CONFIG_BROKER_LOGGER | CONFIG_CLIENT_METRICS => (
            broker.allows_on_cluster(ctx, operation),
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.",
        ),
        CONFIG_TOPIC => (
            broker.allows(ctx, operation, ResourceType::Topic, name),
            ResponseError::TopicAuthorizationFailed,
            "Topic authorization failed.",
        ),
        CONFIG_GROUP => (
            broker.allows(ctx, operation, ResourceType::Group, name),
            ResponseError::GroupAuthorizationFailed,
            "Group authorization failed.",
        ),
        _ => return Ok(()),
    };
    if allowed {
        Ok(())
    } else {
        Err((error, message))
    }
}

/// The refusal of an offset commit inside a transaction (AddOffsetsToTxn, TxnOffsetCommit):
/// WRITE on the transactional id is checked first, then READ on the group.
pub fn refused_offsets_in_transaction(
    broker: &Broker,
    ctx: &RequestContext,
    transactional_id: &str,
    group: &str,
) -> Option<kafka_protocol::ResponseError> {
    use kafka_protocol::ResponseError;
    if !broker.allows(
        ctx,
        Operation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    ) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !broker.allows(ctx, Operation::Read, ResourceType::Group, group) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    }
}

/// The authorizer for an ACL API (CreateAcls, DeleteAcls: `operation` ALTER; DescribeAcls:
/// DESCRIBE on the cluster), or the error every result gets: SECURITY_DISABLED without an
/// authorizer, CLUSTER_AUTHORIZATION_FAILED without the permission.
pub fn acl_api_authorizer<'a>(
    broker: &'a Broker,
    ctx: &RequestContext,
    operation: Operation,
    no_authorizer: &'static str,
) -> Result<&'a crate::security::authorizer::Authorizer, (kafka_protocol::ResponseError, String)> {
    use kafka_protocol::ResponseError;
    let Some(authorizer) = &broker.authorizer else {
        return Err((ResponseError::SecurityDisabled, no_authorizer.to_string()));
    };
    if !broker.allows_on_cluster(ctx, operation) {
        return Err((
            ResponseError::ClusterAuthorizationFailed,
            format!("Request needs {} permission.", operation.name()),
        ));
    }
    Ok(authorizer)
}
