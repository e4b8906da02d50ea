//! The authorizer that `authorizer.class.name:
//! org.apache.kafka.metadata.authorizer.StandardAuthorizer` turns on: the durable ACLs
//! (`acl_store.rs`) and the settings (`super.users`, `allow.everyone.if.no.acl.found`)
//! that the decision in `acl.rs` reads. Without it every request is allowed, as in Kafka.
//!
//! Synchronisation: immutable but for the store, which synchronises itself.

use std::path::PathBuf;
use std::sync::Arc;

use super::acl::{self, AclBinding, AuthorizerSettings, Operation, ResourceType};
use super::acl_filter::AclBindingFilter;
use super::acl_store::{AclStore, AclStoreError};
use crate::storage::Storage;

/// The class name Kafka 4 brokers use, the one Gregor accepts.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// Who is asking: the principal (`User:alice`) and the client's address (`127.0.0.1`).
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub principal: &'a str,
    pub host: &'a str,
}

#[derive(Debug)]
pub struct Authorizer {
    settings: AuthorizerSettings,
    store: AclStore,
}

impl Authorizer {
    /// Opens the ACL file at `path`.
    pub fn open(
        settings: AuthorizerSettings,
        storage: Arc<dyn Storage>,
        path: PathBuf,
    ) -> Result<Authorizer, AclStoreError> {
        Ok(Authorizer {
            settings,
            store: AclStore::open(storage, path)?,
        })
    }

    pub fn authorize(
        &self,
        who: Requester<'_>,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        acl::authorize(
            &self.store.bindings(),
            &self.settings,
            who.principal,
            who.host,
            operation,
            resource_type,
            name,
        )
    }

    /// `operation` on some resource of `resource_type` (see `acl::authorize_by_resource_type`).
    pub fn authorize_by_resource_type(
        &self,
        who: Requester<'_>,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        acl::authorize_by_resource_type(
            &self.store.bindings(),
            &self.settings,
            who.principal,
            who.host,
            operation,
            resource_type,
        )
    }

    /// The `authorized_operations` bits of a resource: each supported operation allowed.
    pub fn authorized_operations(
        &self,
        who: Requester<'_>,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        let bindings = self.store.bindings();
        resource_type
            .supported_operations()
            .iter()
            .filter(|op| {
                acl::authorize(
                    &bindings,
                    &self.settings,
                    who.principal,
                    who.host,
                    **op,
                    resource_type,
                    name,
                )
            })
            .fold(0, |bits, op| bits | 1 << op.code())
    }

    pub fn create(&self, bindings: &[AclBinding]) -> Result<(), AclStoreError> {
        self.store.add(bindings)
    }

    /// The bindings `filter` selects, in the store's order.
    pub fn describe(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        self.store
            .bindings()
            .iter()
            .filter(|b| filter.matches(b))
            .cloned()
            .collect()
    }

    pub fn delete(
        &self,
        filters: &[AclBindingFilter],
    ) -> Result<Vec<Vec<AclBinding>>, AclStoreError> {
        self.store.remove(filters)
    }

    /// The ACL file again (cluster mode: another broker changed it).
    pub fn reload(&self) -> Result<(), AclStoreError> {
        self.store.reload()
    }

    /// The ACL file's path (cluster mode commits it for every broker).
    pub fn path(&self) -> &std::path::Path {
        self.store.path()
    }
}

/// Every operation a resource type supports, as `authorized_operations` bits: what Kafka
/// reports when no authorizer is configured.
pub fn all_operations(resource_type: ResourceType) -> i32 {
    resource_type
        .supported_operations()
        .iter()
        .fold(0, |bits, op| bits | 1 << op.code())
}
