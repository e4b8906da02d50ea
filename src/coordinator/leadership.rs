//! Cluster mode (docs/cluster.md): which groups this broker coordinates, and the hand-over
//! of groups between brokers.
//!
//! A group belongs to its partition of `__consumer_offsets`, a cluster topic that every
//! broker replays, and the partition to its leader under the membership epoch
//! (`cluster/membership.rs`): that is the coordinator lease. When the live set changes, a
//! broker drops the groups of the partitions it no longer leads and takes over the ones it
//! now leads, as a new coordinator loads a partition of `__consumer_offsets` in Kafka: it
//! waits until its replica has applied every commit made before it saw the new epoch, then
//! replays the partition from its local replica. Meanwhile its groups are answered
//! COORDINATOR_LOAD_IN_PROGRESS, and groups of other brokers NOT_COORDINATOR.
//!
//! Every record the coordinator writes carries the epoch its leadership was decided under.
//! PostgreSQL commits it only while that epoch is current (`cluster/batch_coordinator.rs`),
//! so a broker that lost a partition cannot write behind the back of the one that loaded it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use super::internal_topic::partition_for;
use super::offsets::OFFSETS_TOPIC;
use super::{fresh_sessions, replay_groups, CoordinatorError, GroupCoordinator};
use crate::cluster::batch_coordinator::BatchOutcome;
use crate::cluster::membership::leader_among;
use crate::cluster::{Cluster, ClusterError};
use crate::log::now_ms;
use crate::log::record_batch::check_batch;
use crate::log::records::{encode_batch, RawRecord, TxnProducer};
use crate::log::Log;

/// The `__consumer_offsets` partitions this broker leads.
#[derive(Debug)]
pub struct Leadership {
    /// The membership epoch the partitions below were decided under; `None` before the
    /// first decision. Writes are fenced by it.
    epoch: Option<i32>,
    /// Partitions of `__consumer_offsets`.
    partitions: i32,
    /// Loaded and served.
    led: HashSet<i32>,
    /// Taken over, being loaded.
    loading: HashSet<i32>,
    /// Led partitions with a write that did not commit: memory may be ahead of the log, so
    /// they are loaded again at the next epoch if still led.
    stale: HashSet<i32>,
}

/// The partitions to drop and to load under a new epoch.
struct Change {
    epoch: i32,
    dropped: HashSet<i32>,
    gained: HashSet<i32>,
}

impl Leadership {
    /// What changes when the live set is `live` under `epoch`. `previous` is the epoch
    /// decided before: if epochs were skipped, another broker may have led a partition in
    /// between and written to it, so every led partition is loaded again.
    fn decide(
        &mut self,
        epoch: i32,
        live: &[crate::cluster::metadata::BrokerRecord],
        me: i32,
    ) -> Change {
        let wanted: HashSet<i32> = (0..self.partitions)
            .filter(|&p| leader_among(live, OFFSETS_TOPIC, p) == me)
            .collect();
        let continuous = self.epoch.is_some_and(|e| e + 1 == epoch);
        let gained: HashSet<i32> = wanted
            .iter()
            .copied()
            .filter(|p| !continuous || !self.led.contains(p) || self.stale.contains(p))
            .collect();
        let dropped: HashSet<i32> = self
            .led
            .iter()
            .chain(&self.loading)
            .copied()
            .filter(|p| !wanted.contains(p) || gained.contains(p))
            .collect();
        self.led
            .retain(|p| wanted.contains(p) && !gained.contains(p));
        self.loading = gained.clone();
        self.stale.clear();
        self.epoch = Some(epoch);
        Change {
            epoch,
            dropped,
            gained,
        }
    }
}

impl GroupCoordinator {
    /// Cluster mode: this coordinator leads only its share of `__consumer_offsets` and
    /// commits its records through `cluster`. Until [`GroupCoordinator::follow_leadership`]
    /// has decided, every group is loading.
    pub fn use_cluster(&self, cluster: Arc<Cluster>) {
        let partitions = self
            .logs
            .topic(OFFSETS_TOPIC)
            .map_or(self.config.offsets_topic_partitions, |t| {
                t.partitions.len() as i32
            });
        *self.leading() = Some(Leadership {
            epoch: None,
            partitions,
            led: HashSet::new(),
            loading: (0..partitions).collect(),
            stale: HashSet::new(),
        });
        let _ = self.cluster.set(cluster);
    }

    fn leading(&self) -> std::sync::MutexGuard<'_, Option<Leadership>> {
        self.leadership
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether this broker coordinates `group_id` now (always, on a single broker).
    pub fn check_coordinator(&self, group_id: &str) -> Result<(), CoordinatorError> {
        let leading = self.leading();
        let Some(l) = leading.as_ref() else {
            return Ok(());
        };
        let p = partition_for(group_id, l.partitions);
        if l.led.contains(&p) {
            Ok(())
        } else if l.loading.contains(&p) {
            Err(CoordinatorError::CoordinatorLoadInProgress)
        } else {
            Err(CoordinatorError::NotCoordinator)
        }
    }

    /// Cluster mode: follows the membership epoch until `shutdown`, handing groups over.
    pub async fn follow_leadership(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(cluster) = self.cluster.get().cloned() else {
            return;
        };
        let mut epochs = cluster.membership().subscribe();
        loop {
            epochs.borrow_and_update();
            if let Err(e) = self.lead(&cluster).await {
                tracing::warn!(error = %e, "taking over group coordination failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    _ = shutdown.changed() => return,
                }
            }
            tokio::select! {
                changed = epochs.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Decides this broker's partitions under the current epoch and loads the new ones.
    async fn lead(&self, cluster: &Cluster) -> Result<(), ClusterError> {
        let (epoch, live) = cluster.membership().view();
        let me = cluster.membership().me.node_id;
        let change = {
            let mut leading = self.leading();
            let Some(l) = leading.as_mut() else {
                return Ok(());
            };
            if l.epoch == Some(epoch) && l.loading.is_empty() {
                return Ok(());
            }
            if l.epoch == Some(epoch) {
                // A failed load retried: load the same partitions.
                Change {
                    epoch,
                    dropped: l.loading.clone(),
                    gained: l.loading.clone(),
                }
            } else {
                l.decide(epoch, &live, me)
            }
        };
        self.drop_partitions(&change.dropped);
        if change.gained.is_empty() {
            return Ok(());
        }
        // Every commit made before this broker saw the epoch, among them the last records
        // of the partition's previous leader (later ones are fenced).
        cluster.caught_up().await?;
        let (config, logs, gained) = (
            self.config.clone(),
            self.logs.clone(),
            change.gained.clone(),
        );
        let mut groups = tokio::task::spawn_blocking(move || {
            replay_groups(&config, &logs, |p| gained.contains(&p))
        })
        .await
        .map_err(|e| ClusterError::Local(e.to_string()))?
        .map_err(|e| ClusterError::Local(e.to_string()))?;
        fresh_sessions(&self.group_configs, &self.config, groups.iter_mut());
        let count = groups.len();
        {
            let mut leading = self.leading();
            let Some(l) = leading.as_mut().filter(|l| l.epoch == Some(change.epoch)) else {
                // Decided again meanwhile; that decision loads what it needs.
                return Ok(());
            };
            self.lock().extend(groups);
            l.loading.retain(|p| !change.gained.contains(p));
            l.led.extend(&change.gained);
        }
        tracing::info!(
            epoch = change.epoch,
            partitions = change.gained.len(),
            groups = count,
            "took over group coordination"
        );
        Ok(())
    }

    /// Forgets the groups of `partitions` (and their records waiting for the timers).
    fn drop_partitions(&self, partitions: &HashSet<i32>) {
        if partitions.is_empty() {
            return;
        }
        let Some(n) = self.leading().as_ref().map(|l| l.partitions) else {
            return;
        };
        let ours = |group: &str| !partitions.contains(&partition_for(group, n));
        self.lock().retain(|id, _| ours(id));
        self.timer_records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|r| ours(&r.group));
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
        let partition = log.topic_partition().partition;
        Some(self.commit_fenced(cluster, partition, records, txn).await)
    }

    async fn commit_fenced(
        &self,
        cluster: &Cluster,
        partition: i32,
        records: &[RawRecord<'_>],
        txn: Option<TxnProducer>,
    ) -> Result<(), CoordinatorError> {
        let epoch = {
            let leading = self.leading();
            match leading.as_ref() {
                Some(l) if l.led.contains(&partition) => l.epoch,
                _ => None,
            }
        }
        .ok_or(CoordinatorError::NotCoordinator)?;
        let topic_id = self
            .logs
            .topic(OFFSETS_TOPIC)
            .map(|t| t.id)
            .ok_or(CoordinatorError::CoordinatorNotAvailable)?;
        let batch = encode_batch(records, now_ms(), txn);
        let header = check_batch(&batch).map_err(|_| CoordinatorError::UnknownServerError)?;
        let outcome = cluster
            .produce_fenced(topic_id, partition, Bytes::from(batch), header, epoch)
            .await;
        let error = match outcome {
            Ok(Ok(BatchOutcome::Committed { .. })) => return Ok(()),
            Ok(Ok(BatchOutcome::Fenced)) => {
                tracing::info!(
                    partition,
                    epoch,
                    "a group record was fenced by a newer membership epoch"
                );
                cluster.membership().refresh();
                CoordinatorError::NotCoordinator
            }
            Ok(Ok(other)) => {
                tracing::error!(partition, outcome = ?other, "a group record was refused");
                CoordinatorError::KafkaStorageError
            }
            Ok(Err(e)) => {
                tracing::warn!(partition, error = %e, "a group record did not commit");
                CoordinatorError::KafkaStorageError
            }
            Err(_) => CoordinatorError::KafkaStorageError,
        };
        if let Some(l) = self.leading().as_mut() {
            l.stale.insert(partition);
        }
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::metadata::BrokerRecord;

    fn live(ids: &[i32]) -> Vec<BrokerRecord> {
        ids.iter()
            .map(|&node_id| BrokerRecord {
                node_id,
                endpoints: Vec::new(),
                rack: None,
            })
            .collect()
    }

    fn leading(partitions: i32) -> Leadership {
        Leadership {
            epoch: None,
            partitions,
            led: HashSet::new(),
            loading: (0..partitions).collect(),
            stale: HashSet::new(),
        }
    }

    /// Finishes the loads of a change, as `lead` does.
    fn loaded(l: &mut Leadership, change: &Change) {
        l.loading.retain(|p| !change.gained.contains(p));
        l.led.extend(&change.gained);
    }

    #[test]
    fn a_broker_loads_what_it_gains_and_drops_what_it_loses() {
        let mut l = leading(12);
        let three = live(&[1, 2, 3]);
        let first = l.decide(5, &three, 1);
        let mine: HashSet<i32> = (0..12)
            .filter(|&p| leader_among(&three, OFFSETS_TOPIC, p) == 1)
            .collect();
        assert_eq!(first.gained, mine);
        assert_eq!(first.dropped.len(), 12, "every partition was loading");
        loaded(&mut l, &first);

        // Broker 3 leaves: broker 1 now leads its share among two, keeping what it
        // led of that share (loaded already) and loading only the rest.
        let two = live(&[1, 2]);
        let now_mine: HashSet<i32> = (0..12)
            .filter(|&p| leader_among(&two, OFFSETS_TOPIC, p) == 1)
            .collect();
        let next = l.decide(6, &two, 1);
        assert_eq!(next.dropped, &mine - &now_mine);
        assert_eq!(next.gained, &now_mine - &mine);
        assert!(!next.gained.is_empty());
        assert_eq!(l.led, &mine & &now_mine, "kept without a reload");
        loaded(&mut l, &next);
        assert_eq!(l.led, now_mine);

        // Broker 3 is back: the same again the other way.
        let back = l.decide(7, &three, 1);
        assert_eq!(back.dropped, &now_mine - &mine);
        assert_eq!(back.gained, &mine - &now_mine);
    }

    #[test]
    fn skipped_epochs_and_failed_writes_load_the_partitions_again() {
        let mut l = leading(12);
        let three = live(&[1, 2, 3]);
        let first = l.decide(1, &three, 2);
        loaded(&mut l, &first);
        let mine = l.led.clone();

        // Epoch 2 was never seen: another broker may have led these partitions meanwhile.
        let skipped = l.decide(3, &three, 2);
        assert_eq!(skipped.gained, mine);
        assert_eq!(skipped.dropped, mine);
        assert!(l.led.is_empty() && l.loading == mine);
        loaded(&mut l, &skipped);

        // A write that did not commit: that partition alone is loaded again.
        let p = *mine.iter().next().unwrap();
        l.stale.insert(p);
        let next = l.decide(4, &three, 2);
        assert_eq!(next.gained, HashSet::from([p]));
        assert_eq!(next.dropped, HashSet::from([p]));
    }
}
