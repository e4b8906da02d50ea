//! What a broker in cluster mode does with what its replica applies
//! (`cluster::replica::Observer`, docs/cluster.md): the transaction coordinator follows the
//! records other brokers' coordinators wrote (`transaction/hand_over.rs`), and a metadata
//! file another broker changed is reloaded by its store.

use std::sync::Arc;

use crate::cluster::replica::Observer;
use crate::coordinator::group_configs;
use crate::coordinator::GroupCoordinator;
use crate::security::acl_store;
use crate::security::authorizer::Authorizer;
use crate::security::credentials::{self, CredentialStore};
use crate::transaction::TransactionCoordinator;

pub struct Follower {
    pub txns: Arc<TransactionCoordinator>,
    pub groups: Arc<GroupCoordinator>,
    pub credentials: Arc<CredentialStore>,
    pub authorizer: Option<Arc<Authorizer>>,
}

impl Observer for Follower {
    fn applied(&self, topic: &str, partition: i32, batch: &[u8]) {
        self.txns.follow(topic, partition, batch);
    }

    fn file_changed(&self, name: &str) {
        let reloaded = match name {
            acl_store::FILE_NAME => match &self.authorizer {
                Some(authorizer) => authorizer.reload(),
                // Without an authorizer the ACLs are not used here; the file is kept.
                None => Ok(()),
            },
            credentials::FILE_NAME => self.credentials.reload(),
            group_configs::FILE_NAME => self.groups.group_configs.reload(),
            other => {
                tracing::warn!(
                    file = other,
                    "a metadata file this broker does not know changed"
                );
                Ok(())
            }
        };
        if let Err(e) = reloaded {
            // The store keeps what it had; the next change of the file loads it again.
            tracing::error!(file = name, error = %e, "reloading a metadata file failed");
        }
    }
}
