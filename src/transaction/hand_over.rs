//! Cluster mode (docs/cluster.md): the transaction coordinator leads only the
//! transactional ids of the `__transaction_state` partitions this broker leads
//! (`coordinator/leadership.rs`), hands them over when the live set changes, and commits
//! its state records and markers through the cluster, fenced by its lease.
//!
//! Every broker follows every coordinator's records as its replica applies them
//! ([`TransactionCoordinator::follow`], through `crate::follower`): the state records keep `published` current (the produce path checks
//! transactional batches against it, whichever broker they reach), and a marker on a
//! `__consumer_offsets` partition completes the transaction's offsets at the group
//! coordinator that leads it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::state::{self, TxnMetadata, TxnState};
use super::{replay_state, TransactionCoordinator, TRANSACTION_STATE_TOPIC};
use crate::cluster::{Cluster, ClusterError};
use crate::coordinator::leadership::{self, commit_fenced, commit_records, Leadership, Led};
use crate::coordinator::offsets::OFFSETS_TOPIC;
use crate::coordinator::CoordinatorError;
use crate::log::record_batch::BatchHeader;
use crate::log::records::{control_marker, decode_key_values, encode_control_batch, RawRecord};
use crate::log::{now_ms, Log};

impl TransactionCoordinator {
    /// Cluster mode: this coordinator leads only its share of `__transaction_state` (the
    /// topic exists in the cluster) and commits through `cluster`.
    pub fn use_cluster(&self, cluster: Arc<Cluster>) {
        let partitions = self
            .logs
            .topic(TRANSACTION_STATE_TOPIC)
            .map_or(self.config.state_partitions, |t| t.partitions.len() as i32);
        *leadership::lock(&self.leadership) =
            Some(Leadership::new(TRANSACTION_STATE_TOPIC, partitions));
        let _ = self.cluster.set(cluster);
    }

    /// Whether this broker coordinates `transactional_id` now (always, on a single broker).
    pub fn check_coordinator(&self, transactional_id: &str) -> Result<(), CoordinatorError> {
        leadership::check(&self.leadership, transactional_id)
    }

    /// Cluster mode: follows the membership epoch until `shutdown`, handing transactions
    /// over.
    pub async fn follow_leadership(self: Arc<Self>, shutdown: tokio::sync::watch::Receiver<bool>) {
        if let Some(cluster) = self.cluster.get().cloned() {
            leadership::follow(self, cluster, "transactions", shutdown).await;
        }
    }

    /// The epoch this broker leads `transactional_id`'s partition by, and the partition.
    fn lease(&self, transactional_id: &str) -> Result<(i32, i32), CoordinatorError> {
        let leading = leadership::lock(&self.leadership);
        let l = leading.as_ref().ok_or(CoordinatorError::NotCoordinator)?;
        let partition = l.partition_of(transactional_id);
        let epoch = l.fence(partition).ok_or(CoordinatorError::NotCoordinator)?;
        Ok((epoch, partition))
    }

    /// Cluster mode: commits a state record to `log` (the id's partition) and waits until
    /// every live broker has applied it. `None` on a single broker.
    pub(super) async fn commit_state(
        &self,
        log: &Arc<Log>,
        records: &[RawRecord<'_>],
    ) -> Option<Result<(), CoordinatorError>> {
        let cluster = self.cluster.get()?;
        let topic_id = self.logs.topic(TRANSACTION_STATE_TOPIC).map(|t| t.id);
        Some(
            async {
                commit_records(cluster, &self.leadership, log, topic_id, records, None).await?;
                // Produce requests reach any broker and check this state there.
                cluster.sync_replica().await.map_err(|e| {
                    tracing::warn!(error = %e, "waiting for the brokers to apply a transaction state failed");
                    CoordinatorError::KafkaStorageError
                })
            }
            .await,
        )
    }

    /// Cluster mode: commits the markers of `t` to all its partitions in one object.
    /// `None` on a single broker.
    pub(super) async fn commit_markers(
        &self,
        t: &TxnMetadata,
        commit: bool,
    ) -> Option<Result<(), CoordinatorError>> {
        let cluster = self.cluster.get()?;
        Some(
            async {
                let (epoch, partition) = self.lease(&t.transactional_id)?;
                let mut batches = Vec::with_capacity(t.partitions.len());
                for tp in &t.partitions {
                    let Some(topic) = self.logs.topic(&tp.topic) else {
                        continue; // the topic was deleted: nothing to mark
                    };
                    let marker =
                        encode_control_batch(t.producer_id, t.producer_epoch, commit, 0, now_ms());
                    batches.push(((topic.id, tp.partition), marker));
                }
                commit_fenced(cluster, &self.leadership, partition, epoch, batches).await
            }
            .await,
        )
    }

    /// Applies a state record committed by any broker's coordinator to `published`.
    fn publish(&self, batch: &[u8]) {
        let Some(records) = decode_key_values(batch) else {
            return;
        };
        let mut published = self
            .published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for kv in records {
            let Some(key) = kv.key else { continue };
            match state::decode(&key, kv.value.as_deref()) {
                Some((id, Some(t))) => {
                    published.insert(id, t);
                }
                Some((id, None)) => {
                    published.remove(&id);
                }
                None => {}
            }
        }
    }
}

impl TransactionCoordinator {
    /// A batch this broker's replica applied to an internal topic (`crate::follower`).
    pub fn follow(&self, topic: &str, partition: i32, batch: &[u8]) {
        if topic == TRANSACTION_STATE_TOPIC {
            self.publish(batch);
        } else if topic == OFFSETS_TOPIC {
            if let (Some(h), Some(commit)) = (BatchHeader::parse(batch), control_marker(batch)) {
                // A no-op where the group is not loaded (another broker coordinates it).
                self.groups.marker_applied(partition, h.producer_id, commit);
            }
        }
    }
}

impl Led for TransactionCoordinator {
    type Loaded = HashMap<String, TxnMetadata>;

    fn leadership(&self) -> &Mutex<Option<Leadership>> {
        &self.leadership
    }

    async fn drop_partitions(&self, partitions: HashSet<i32>) {
        if partitions.is_empty() {
            return;
        }
        let Some(n) = leadership::lock(&self.leadership)
            .as_ref()
            .map(|l| l.partitions)
        else {
            return;
        };
        self.txns.lock().await.retain(|id, _| {
            !partitions.contains(&crate::coordinator::internal_topic::partition_for(id, n))
        });
    }

    async fn load(&self, partitions: HashSet<i32>) -> Result<Self::Loaded, ClusterError> {
        let logs = self.logs.clone();
        let txns =
            tokio::task::spawn_blocking(move || replay_state(&logs, |p| partitions.contains(&p)))
                .await
                .map_err(|e| ClusterError::Local(e.to_string()))?
                .map_err(|e| ClusterError::Local(e.to_string()))?;
        tracing::info!(transactional_ids = txns.len(), "loaded transactions");
        Ok(txns)
    }

    async fn install(&self, loaded: Self::Loaded) {
        self.txns.lock().await.extend(loaded);
    }

    /// Completes the transactions whose outcome was decided but whose markers may not all
    /// be written (Kafka's new coordinator does the same). Open ones run until their
    /// timeout, or until their producer starts again.
    async fn after_load(&self, partitions: HashSet<i32>) {
        let Some(n) = leadership::lock(&self.leadership)
            .as_ref()
            .map(|l| l.partitions)
        else {
            return;
        };
        let mut txns = self.txns.lock().await;
        for t in txns.values_mut().filter(|t| {
            partitions.contains(&crate::coordinator::internal_topic::partition_for(
                &t.transactional_id,
                n,
            ))
        }) {
            let outcome = match t.state {
                TxnState::PrepareCommit => self.complete(t, true).await,
                TxnState::PrepareAbort => self.complete(t, false).await,
                _ => Ok(()),
            };
            if let Err(e) = outcome {
                tracing::error!(transactional_id = %t.transactional_id, error = %e, "completing a transaction taken over failed");
            }
        }
    }
}
