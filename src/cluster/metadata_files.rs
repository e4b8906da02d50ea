//! The broker's metadata files in cluster mode (`__gregor_metadata/`: ACLs, SCRAM
//! credentials, group configs; `security/metadata_file.rs`). Each is the cluster's: a change
//! made through any broker is committed as the file's whole new text
//! (`metadata_file_events`), and every replica writes that text to its own file and has the
//! store reload it (`replica::Observer::file_changed`).
//!
//! A change runs under a PostgreSQL advisory lock per file. Holding it, the broker first
//! waits until its replica has applied every commit (so its file is the cluster's latest),
//! then lets the store make its change as on a single broker (the store writes the local
//! file), and commits the file's new text. A commit that fails puts the old text back.

use std::path::Path;

use tokio_postgres::GenericClient;

use super::metadata::next_commit;
use super::{connect, Cluster, ClusterError};
use crate::storage::Storage;

/// The advisory lock of file `name` (the lock space's second key is the name's hash).
fn lock_key(name: &str) -> i64 {
    i64::from(crc32c::crc32c(name.as_bytes())) | (0x6d65_7461 << 32) // "meta"
}

impl Cluster {
    /// Changes the metadata file at `path` through `change` (the store's own update, which
    /// writes the file and returns `Err` having changed nothing), for every broker. On a
    /// failed commit the file's old text is written back and `reload` puts the store back.
    pub async fn update_file<R, E>(
        &self,
        storage: &dyn Storage,
        path: &Path,
        change: impl FnOnce() -> Result<R, E>,
        reload: impl FnOnce(),
    ) -> Result<Result<R, E>, ClusterError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| ClusterError::Local(format!("{} names no file", path.display())))?;
        let mut db = connect(&self.url).await?;
        let txn = db.transaction().await?;
        txn.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(&name)])
            .await?;
        self.caught_up().await?;
        let read = |path: &Path| {
            storage
                .exists(path)
                .then(|| storage.read_to_string(path))
                .transpose()
                .map_err(|e| ClusterError::Local(format!("{}: {e}", path.display())))
        };
        let before = read(path)?;
        let out = match change() {
            Ok(out) => out,
            Err(e) => return Ok(Err(e)),
        };
        let after = read(path)?.unwrap_or_default();
        if before.as_deref() == Some(after.as_str()) {
            return Ok(Ok(out));
        }
        let committed = async {
            let commit_id = next_commit(&txn).await?;
            txn.execute(
                "INSERT INTO metadata_file_events (commit_id, name, body) VALUES ($1, $2, $3)",
                &[&commit_id, &name, &after],
            )
            .await?;
            txn.commit().await
        }
        .await;
        if let Err(e) = committed {
            if let Some(text) = before {
                if let Err(undo) = storage.write_atomically(path, text.as_bytes()) {
                    tracing::error!(file = %path.display(), error = %undo, "putting a metadata file back failed");
                }
            }
            reload();
            return Err(e.into());
        }
        self.sync_replica().await?;
        Ok(Ok(out))
    }
}

/// A metadata file's text as of a commit.
#[derive(Debug, Clone)]
pub struct FileEvent {
    pub commit_id: i64,
    pub name: String,
    pub body: String,
}

/// A `(commit_id, name, body)` row.
fn file_event(r: &tokio_postgres::Row) -> FileEvent {
    FileEvent {
        commit_id: r.get(0),
        name: r.get(1),
        body: r.get(2),
    }
}

/// File changes committed in `(after, upto]`, in order.
pub async fn file_events(
    client: &impl GenericClient,
    after: i64,
    upto: i64,
) -> Result<Vec<FileEvent>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT commit_id, name, body FROM metadata_file_events
              WHERE commit_id > $1 AND commit_id <= $2 ORDER BY commit_id",
            &[&after, &upto],
        )
        .await?
        .iter()
        .map(file_event)
        .collect())
}

/// Each file's latest text up to `upto` (a replica catching up).
pub async fn latest_files(
    client: &impl GenericClient,
    upto: i64,
) -> Result<Vec<FileEvent>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT DISTINCT ON (name) commit_id, name, body FROM metadata_file_events
              WHERE commit_id <= $1 ORDER BY name, commit_id DESC",
            &[&upto],
        )
        .await?
        .iter()
        .map(file_event)
        .collect())
}
