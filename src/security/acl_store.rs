//! The ACL bindings, durable (Kafka keeps them in its metadata log; Gregor in
//! `__gregor_metadata/acls.yaml`, one entry per binding with Kafka's names for the enums).
//! CreateAcls adds to it and DeleteAcls removes from it; every authorization reads it.
//!
//! Synchronisation: readers take a cheap clone of an `Arc` snapshot under a `RwLock`;
//! writers (one at a time, `writer`) build the next snapshot, make the file durable, and
//! only then publish it, so a failed write changes nothing.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde::{Deserialize, Serialize};

use super::acl::{AclBinding, Operation, PatternType, Permission, ResourceType};
use super::acl_filter::AclBindingFilter;
use super::metadata_file::{self, MetadataFileError};
use crate::storage::Storage;

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    resource_type: String,
    resource_name: String,
    pattern_type: String,
    principal: String,
    host: String,
    operation: String,
    permission: String,
}

/// Why the ACL file could not be read or written.
pub type AclStoreError = MetadataFileError;

/// The file's name under `__gregor_metadata/`.
pub const FILE_NAME: &str = "acls.yaml";

pub struct AclStore {
    storage: Arc<dyn Storage>,
    path: PathBuf,
    bindings: RwLock<Arc<Vec<AclBinding>>>,
    writer: Mutex<()>,
}

impl std::fmt::Debug for AclStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AclStore")
            .field("path", &self.path)
            .finish()
    }
}

impl AclStore {
    /// Loads `path` (missing: no ACLs).
    pub fn open(storage: Arc<dyn Storage>, path: PathBuf) -> Result<AclStore, AclStoreError> {
        let bindings = read_bindings(storage.as_ref(), &path)?;
        Ok(AclStore {
            storage,
            path,
            bindings: RwLock::new(Arc::new(bindings)),
            writer: Mutex::new(()),
        })
    }

    /// Reads the file again (cluster mode: another broker changed it).
    pub fn reload(&self) -> Result<(), AclStoreError> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let bindings = read_bindings(self.storage.as_ref(), &self.path)?;
        *self
            .bindings
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(bindings);
        Ok(())
    }

    /// The file's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The bindings now (a snapshot: later changes do not show in it).
    pub fn bindings(&self) -> Arc<Vec<AclBinding>> {
        self.bindings
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Adds `new` durably (bindings already present are left as they are).
    pub fn add(&self, new: &[AclBinding]) -> Result<(), AclStoreError> {
        self.update(|bindings| {
            for b in new {
                if !bindings.contains(b) {
                    bindings.push(b.clone());
                }
            }
            Vec::<()>::new()
        })
        .map(|_| ())
    }

    /// Removes, durably, every binding any of `filters` selects; returns per filter the
    /// bindings it selected (a binding selected by several filters is listed for each).
    pub fn remove(
        &self,
        filters: &[AclBindingFilter],
    ) -> Result<Vec<Vec<AclBinding>>, AclStoreError> {
        self.update(|bindings| {
            let selected = filters
                .iter()
                .map(|f| bindings.iter().filter(|b| f.matches(b)).cloned().collect())
                .collect();
            bindings.retain(|b| !filters.iter().any(|f| f.matches(b)));
            selected
        })
    }

    fn update<T>(
        &self,
        change: impl FnOnce(&mut Vec<AclBinding>) -> Vec<T>,
    ) -> Result<Vec<T>, AclStoreError> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = self.bindings().as_ref().clone();
        let out = change(&mut next);
        if next == *self.bindings() {
            return Ok(out);
        }
        let entries: Vec<Entry> = next
            .iter()
            .map(|b| Entry {
                resource_type: b.resource_type.name().to_string(),
                resource_name: b.resource_name.clone(),
                pattern_type: b.pattern_type.name().to_string(),
                principal: b.principal.clone(),
                host: b.host.clone(),
                operation: b.operation.name().to_string(),
                permission: b.permission.name().to_string(),
            })
            .collect();
        metadata_file::write(self.storage.as_ref(), &self.path, &entries)?;
        *self
            .bindings
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        Ok(out)
    }
}

/// The bindings in `path` (missing: none).
fn read_bindings(
    storage: &dyn Storage,
    path: &std::path::Path,
) -> Result<Vec<AclBinding>, AclStoreError> {
    let mut bindings = Vec::new();
    for e in metadata_file::read::<Entry>(storage, path)? {
        fn named<T>(value: &str, field: &str, parse: fn(&str) -> Option<T>) -> Result<T, String> {
            parse(value).ok_or_else(|| format!("unknown {field} `{value}`"))
        }
        let binding = (|| {
            Ok::<_, String>(AclBinding {
                resource_type: named(&e.resource_type, "resource_type", ResourceType::from_name)?,
                resource_name: e.resource_name,
                pattern_type: named(&e.pattern_type, "pattern_type", PatternType::from_name)?,
                principal: e.principal,
                host: e.host,
                operation: named(&e.operation, "operation", Operation::from_name)?,
                permission: named(&e.permission, "permission", Permission::from_name)?,
            })
        })()
        .map_err(|message| MetadataFileError::new(path, message))?;
        bindings.push(binding);
    }
    Ok(bindings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::acl_filter::{PatternFilter, WireFilter};
    use crate::storage::simulated::SimulatedStorage;

    fn read_orders(principal: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "orders".into(),
            pattern_type: PatternType::Literal,
            principal: principal.into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn acls_survive_a_power_loss_and_deletes_report_what_each_filter_took() {
        let sim = SimulatedStorage::new(7);
        sim.create_dir_all_durable(std::path::Path::new("/m"));
        let path = PathBuf::from("/m/acls.yaml");
        let store = AclStore::open(sim.shared(), path.clone()).unwrap();
        let (alice, bob) = (read_orders("User:alice"), read_orders("User:bob"));
        store
            .add(&[alice.clone(), bob.clone(), alice.clone()])
            .unwrap();
        assert_eq!(store.bindings().len(), 2, "a duplicate is stored once");
        sim.power_loss();
        let store = AclStore::open(sim.shared(), path.clone()).unwrap();
        assert_eq!(*store.bindings(), vec![alice.clone(), bob.clone()]);
        let by_alice = AclBindingFilter::parse(WireFilter {
            resource_type: 1,
            resource_name: None,
            pattern_type: 1,
            principal: Some("User:alice".into()),
            host: None,
            operation: 1,
            permission: 1,
        })
        .unwrap();
        let everything = AclBindingFilter {
            principal: None,
            pattern: PatternFilter::Any,
            ..by_alice.clone()
        };
        let removed = store.remove(&[by_alice, everything]).unwrap();
        assert_eq!(removed, vec![vec![alice.clone()], vec![alice, bob]]);
        sim.power_loss();
        let store = AclStore::open(sim.shared(), path).unwrap();
        assert!(store.bindings().is_empty());
    }
}
