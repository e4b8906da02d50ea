//! SCRAM credentials, durable (Kafka keeps them in its metadata log; Gregor in
//! `__gregor_metadata/scram-credentials.yaml`): per user and mechanism the salt, StoredKey,
//! ServerKey and iterations, never a password. Managed with AlterUserScramCredentials and
//! read with DescribeUserScramCredentials (KIP-554).
//!
//! Synchronisation: a `RwLock` over the table, read by every SCRAM authentication; writes
//! take it only after the new file is durable, so a failed write changes nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::metadata_file::{self, MetadataFileError};
use super::scram::ScramCredential;
use crate::config::listeners::SaslMechanism;
use crate::storage::Storage;

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    user: String,
    mechanism: String,
    iterations: i32,
    salt: String,
    stored_key: String,
    server_key: String,
}

/// Why the credentials file could not be read or written.
pub type CredentialError = MetadataFileError;

/// The file's name under `__gregor_metadata/`.
pub const FILE_NAME: &str = "scram-credentials.yaml";

type Table = BTreeMap<(String, SaslMechanism), ScramCredential>;

pub struct CredentialStore {
    storage: Arc<dyn Storage>,
    path: PathBuf,
    table: RwLock<Table>,
    /// One writer at a time: the file is rewritten whole.
    writer: Mutex<()>,
}

impl std::fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialStore")
            .field("path", &self.path)
            .finish()
    }
}

/// One change of AlterUserScramCredentials.
pub enum Change {
    Upsert {
        user: String,
        mechanism: SaslMechanism,
        credential: ScramCredential,
    },
    Delete {
        user: String,
        mechanism: SaslMechanism,
    },
}

impl CredentialStore {
    /// Loads `path` (missing: no credentials).
    pub fn open(
        storage: Arc<dyn Storage>,
        path: PathBuf,
    ) -> Result<CredentialStore, CredentialError> {
        let table = read_table(storage.as_ref(), &path)?;
        Ok(CredentialStore {
            storage,
            path,
            table: RwLock::new(table),
            writer: Mutex::new(()),
        })
    }

    /// Reads the file again (cluster mode: another broker changed it).
    pub fn reload(&self) -> Result<(), CredentialError> {
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let table = read_table(self.storage.as_ref(), &self.path)?;
        *self
            .table
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = table;
        Ok(())
    }

    /// The file's path, and the storage it is on (cluster mode commits it).
    pub fn file(&self) -> (&dyn Storage, &std::path::Path) {
        (self.storage.as_ref(), &self.path)
    }

    pub fn get(&self, user: &str, mechanism: SaslMechanism) -> Option<ScramCredential> {
        self.table
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(user.to_string(), mechanism))
            .cloned()
    }

    /// Every user with credentials: their mechanisms and iteration counts.
    pub fn describe(&self) -> BTreeMap<String, Vec<(SaslMechanism, i32)>> {
        let table = self
            .table
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: BTreeMap<String, Vec<(SaslMechanism, i32)>> = BTreeMap::new();
        for ((user, mechanism), c) in table.iter() {
            out.entry(user.clone())
                .or_default()
                .push((*mechanism, c.iterations));
        }
        out
    }

    /// Applies `changes` durably, all or nothing. A deletion of a credential that does not
    /// exist is reported by the caller before it gets here.
    pub fn apply(&self, changes: Vec<Change>) -> Result<(), CredentialError> {
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut next = self
            .table
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for change in changes {
            match change {
                Change::Upsert {
                    user,
                    mechanism,
                    credential,
                } => {
                    next.insert((user, mechanism), credential);
                }
                Change::Delete { user, mechanism } => {
                    next.remove(&(user, mechanism));
                }
            }
        }
        let entries: Vec<Entry> = next
            .iter()
            .map(|((user, mechanism), c)| Entry {
                user: user.clone(),
                mechanism: mechanism.name().to_string(),
                iterations: c.iterations,
                salt: BASE64.encode(&c.salt),
                stored_key: BASE64.encode(&c.stored_key),
                server_key: BASE64.encode(&c.server_key),
            })
            .collect();
        metadata_file::write(self.storage.as_ref(), &self.path, &entries)?;
        *self
            .table
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        Ok(())
    }
}

/// The credentials in `path` (missing: none).
fn read_table(storage: &dyn Storage, path: &std::path::Path) -> Result<Table, CredentialError> {
    let err = |message: String| MetadataFileError::new(path, message);
    let mut table = Table::new();
    for e in metadata_file::read::<Entry>(storage, path)? {
        let mechanism = SaslMechanism::parse(&e.mechanism)
            .ok_or_else(|| err(format!("unknown mechanism `{}`", e.mechanism)))?;
        let decode = |v: &str| BASE64.decode(v).map_err(|e| err(e.to_string()));
        table.insert(
            (e.user, mechanism),
            ScramCredential {
                salt: decode(&e.salt)?,
                stored_key: decode(&e.stored_key)?,
                server_key: decode(&e.server_key)?,
                iterations: e.iterations,
            },
        );
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::simulated::SimulatedStorage;

    #[test]
    fn credentials_survive_a_reopen_and_never_hold_the_password() {
        let sim = SimulatedStorage::new(1);
        sim.create_dir_all_durable(std::path::Path::new("/m"));
        let path = PathBuf::from("/m/scram-credentials.yaml");
        let store = CredentialStore::open(sim.shared(), path.clone()).unwrap();
        let credential =
            ScramCredential::from_password(SaslMechanism::ScramSha256, "secret-pw", b"salt", 4096);
        store
            .apply(vec![Change::Upsert {
                user: "alice".into(),
                mechanism: SaslMechanism::ScramSha256,
                credential: credential.clone(),
            }])
            .unwrap();
        sim.power_loss();
        let again = CredentialStore::open(sim.shared(), path.clone()).unwrap();
        assert_eq!(
            again.get("alice", SaslMechanism::ScramSha256),
            Some(credential)
        );
        assert_eq!(again.get("alice", SaslMechanism::ScramSha512), None);
        let text = sim.shared().read_to_string(&path).unwrap();
        assert!(!text.contains("secret-pw"));
        again
            .apply(vec![Change::Delete {
                user: "alice".into(),
                mechanism: SaslMechanism::ScramSha256,
            }])
            .unwrap();
        assert!(again.describe().is_empty());
    }
}
