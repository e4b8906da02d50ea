//! Cluster mode: the group coordinator leads only the groups of the `__consumer_offsets`
//! partitions this broker leads (`leadership.rs`), hands them over when the live set
//! changes, and commits its records through the cluster, fenced by its lease.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::group::Group;
use super::leadership::{self, commit_records, Leadership, Led};
use super::loading::{fresh_sessions, replay_groups};
use super::offsets::OFFSETS_TOPIC;
use super::{CoordinatorError, GroupCoordinator};
use crate::cluster::{Cluster, ClusterError};
use crate::log::records::{RawRecord, TxnProducer};
use crate::log::Log;

impl GroupCoordinator {
    /// Cluster mode: this coordinator leads only its share of `__consumer_offsets` and
    /// commits its records through `cluster`. Until [`leadership::follow`] has decided,
    /// every group is loading.
    pub fn use_cluster(&self, cluster: Arc<Cluster>) {
        let partitions = self
            .logs
            .topic(OFFSETS_TOPIC)
            .map_or(self.config.offsets_topic_partitions, |t| {
                t.partitions.len() as i32
            });
        *leadership::lock(&self.leadership) = Some(Leadership::new(OFFSETS_TOPIC, partitions));
        let _ = self.cluster.set(cluster);
    }

    /// Whether this broker coordinates `group_id` now (always, on a single broker).
    pub fn check_coordinator(&self, group_id: &str) -> Result<(), CoordinatorError> {
        leadership::check(&self.leadership, group_id)
    }

    /// Why a parked JoinGroup or SyncGroup got no answer: the group was dropped, handed over
    /// to another broker (NOT_COORDINATOR) or gone (REBALANCE_IN_PROGRESS: join again).
    pub fn abandoned(&self, group_id: &str) -> CoordinatorError {
        self.check_coordinator(group_id)
            .err()
            .unwrap_or(CoordinatorError::RebalanceInProgress)
    }

    /// Cluster mode: follows the membership epoch until `shutdown`, handing groups over.
    pub async fn follow_leadership(self: Arc<Self>, shutdown: tokio::sync::watch::Receiver<bool>) {
        if let Some(cluster) = self.cluster.get().cloned() {
            leadership::follow(self, cluster, "groups", shutdown).await;
        }
    }

    /// Cluster mode: a transaction marker this broker's replica applied to partition
    /// `partition` of `__consumer_offsets`: the producer's pending offsets take effect or go
    /// (where the groups are loaded). Markers on a partition being loaded are kept, and
    /// settled once its groups are installed: the load may have read the log before them.
    pub fn marker_applied(&self, partition: i32, producer_id: i64, commit: bool) {
        if leadership::lock(&self.leadership)
            .as_ref()
            .is_some_and(|l| l.is_loading(partition))
        {
            self.loading_markers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((partition, producer_id, commit));
        }
        self.complete_transaction(producer_id, commit);
    }

    /// Cluster mode: commits `records` to the group's partition `log` under the epoch this
    /// broker leads it by. `None` on a single broker (the caller appends locally).
    pub(super) async fn append_shared(
        &self,
        log: &Arc<Log>,
        records: &[RawRecord<'_>],
        txn: Option<TxnProducer>,
    ) -> Option<Result<(), CoordinatorError>> {
        let cluster = self.cluster.get()?;
        let topic_id = self.logs.topic(OFFSETS_TOPIC).map(|t| t.id);
        Some(commit_records(cluster, &self.leadership, log, topic_id, records, txn).await)
    }
}

impl Led for GroupCoordinator {
    /// The partitions loaded, and their groups.
    type Loaded = (HashSet<i32>, HashMap<String, Group>);

    fn leadership(&self) -> &Mutex<Option<Leadership>> {
        &self.leadership
    }

    /// Forgets the groups of `partitions` (and their records waiting for the timers).
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
        let ours =
            |group: &str| !partitions.contains(&super::internal_topic::partition_for(group, n));
        self.lock().retain(|id, _| ours(id));
        self.loading_markers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|m| !partitions.contains(&m.0));
        self.timer_records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|r| ours(&r.group));
    }

    async fn load(&self, partitions: HashSet<i32>) -> Result<Self::Loaded, ClusterError> {
        let (config, logs, wanted) = (self.config.clone(), self.logs.clone(), partitions.clone());
        let mut groups = tokio::task::spawn_blocking(move || {
            replay_groups(&config, &logs, |p| wanted.contains(&p))
        })
        .await
        .map_err(|e| ClusterError::Local(e.to_string()))?
        .map_err(|e| ClusterError::Local(e.to_string()))?;
        fresh_sessions(&self.group_configs, &self.config, groups.iter_mut());
        tracing::info!(groups = groups.len(), "loaded groups");
        Ok((partitions, groups))
    }

    async fn install(&self, (partitions, groups): Self::Loaded) {
        self.lock().extend(groups);
        // Markers applied while loading; one the load had read already finds nothing left
        // pending for its producer.
        let markers: Vec<(i64, bool)> = {
            let mut kept = self
                .loading_markers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (settle, keep) = kept.drain(..).partition(|m| partitions.contains(&m.0));
            *kept = keep;
            settle
                .into_iter()
                .map(|(_, pid, commit)| (pid, commit))
                .collect()
        };
        for (producer_id, commit) in markers {
            self.complete_transaction(producer_id, commit);
        }
    }

    async fn after_load(&self, _partitions: HashSet<i32>) {}
}
