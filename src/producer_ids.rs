//! Producer ids for idempotent producers (Kafka's `ProducerIdManager`): handed out from
//! blocks whose upper bound is written durably before the first id of the block is used,
//! so an id is never handed out twice, also across crashes.
//!
//! File `__gregor_metadata/producer-id-block`: the first id of the next block, as text.
//!
//! Synchronisation: a `Mutex` around the current block; allocation is rare (one per
//! producer start).

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use crate::cluster::Cluster;
use crate::storage::Storage;

const BLOCK_SIZE: i64 = 1000;

pub struct ProducerIdManager {
    storage: Arc<dyn Storage>,
    path: PathBuf,
    /// (next id to hand out, end of the block reserved on disk)
    block: Mutex<(i64, i64)>,
    /// Cluster mode: blocks come from PostgreSQL, shared by every broker.
    cluster: OnceLock<(Arc<Cluster>, tokio::runtime::Handle)>,
}

impl ProducerIdManager {
    pub fn open(storage: Arc<dyn Storage>, path: PathBuf) -> io::Result<ProducerIdManager> {
        let reserved = match storage.read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse::<i64>()
                .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(ProducerIdManager {
            storage,
            path,
            block: Mutex::new((reserved, reserved)),
            cluster: OnceLock::new(),
        })
    }

    /// From now on, blocks are reserved in the cluster's PostgreSQL (called at start-up in
    /// cluster mode, from the runtime, before any request).
    pub fn use_cluster(&self, cluster: Arc<Cluster>) {
        let _ = self
            .cluster
            .set((cluster, tokio::runtime::Handle::current()));
        *self
            .block
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (0, 0);
    }

    /// The first id of a block no other broker has (cluster mode): PostgreSQL is asked from
    /// a thread of its own, as this may be called on a runtime thread.
    fn reserve_in_cluster(
        cluster: &Arc<Cluster>,
        handle: &tokio::runtime::Handle,
    ) -> io::Result<i64> {
        std::thread::scope(|s| {
            s.spawn(|| handle.block_on(cluster.producer_id_block(BLOCK_SIZE)))
                .join()
                .map_err(|_| io::Error::other("reserving a producer id block panicked"))?
                .map_err(io::Error::other)
        })
    }

    /// A producer id never handed out before.
    pub fn next_id(&self) -> io::Result<i64> {
        let mut block = self
            .block
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if block.0 >= block.1 {
            if let Some((cluster, handle)) = self.cluster.get() {
                let start = Self::reserve_in_cluster(cluster, handle)?;
                *block = (start, start + BLOCK_SIZE);
                let id = block.0;
                block.0 += 1;
                return Ok(id);
            }
            let end = block.1 + BLOCK_SIZE;
            self.storage
                .write_atomically(&self.path, end.to_string().as_bytes())?;
            *block = (block.1, end);
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("producer-id-block");
        let fs = crate::storage::file_system();
        let m = ProducerIdManager::open(fs.clone(), path.clone()).unwrap();
        assert_eq!(m.next_id().unwrap(), 0);
        assert_eq!(m.next_id().unwrap(), 1);
        drop(m);
        let m = ProducerIdManager::open(fs, path).unwrap();
        assert_eq!(m.next_id().unwrap(), BLOCK_SIZE);
    }
}
