//! Cluster mode (docs/cluster.md): which partitions of a coordinator's topic
//! (`__consumer_offsets`, `__transaction_state`) this broker leads, and the hand-over of
//! their state between brokers. The group coordinator (`hand_over.rs`) and the transaction
//! coordinator (`transaction/hand_over.rs`) implement [`Led`].
//!
//! A group or transactional id belongs to its partition of the topic, a cluster topic that
//! every broker replays, and the partition to its leader under the membership epoch
//! (`cluster/membership.rs`): that is the coordinator lease. When the live set changes, a
//! broker drops the state of the partitions it no longer leads and takes over the ones it
//! now leads, as a new coordinator loads a partition in Kafka: it waits until its replica
//! has applied every commit made before it saw the new epoch, then replays the partition
//! from its local replica. Meanwhile those keys are answered COORDINATOR_LOAD_IN_PROGRESS,
//! and the keys of other brokers NOT_COORDINATOR.
//!
//! Every record a coordinator writes carries the epoch its leadership was decided under.
//! PostgreSQL commits it only while that epoch is current (`cluster/batch_coordinator.rs`),
//! so a broker that lost a partition cannot write behind the back of the one that loaded it.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use uuid::Uuid;

use super::internal_topic::partition_for;
use super::CoordinatorError;
use crate::cluster::batch_coordinator::BatchOutcome;
use crate::cluster::leaders;
use crate::cluster::metadata::BrokerRecord;
use crate::cluster::{Cluster, ClusterError};
use crate::log::now_ms;
use crate::log::record_batch::check_batch;
use crate::log::records::{encode_batch, RawRecord, TxnProducer};
use crate::log::Log;

/// The partitions of a coordinator's topic this broker leads.
#[derive(Debug)]
pub struct Leadership {
    /// `__consumer_offsets` or `__transaction_state`.
    topic: &'static str,
    /// The membership epoch the partitions below were decided under; `None` before the
    /// first decision. Writes are fenced by it.
    epoch: Option<i32>,
    /// Partitions of the topic.
    pub partitions: i32,
    /// Loaded and served.
    led: HashSet<i32>,
    /// Taken over, being loaded.
    loading: HashSet<i32>,
    /// Led partitions with a write that did not commit: memory may be ahead of the log, so
    /// they are loaded again at the next epoch if still led.
    stale: HashSet<i32>,
}

/// The partitions to drop and to load under a new epoch.
#[derive(Debug)]
pub struct Change {
    epoch: i32,
    dropped: HashSet<i32>,
    gained: HashSet<i32>,
}

impl Leadership {
    /// Nothing decided yet: every partition is loading.
    pub fn new(topic: &'static str, partitions: i32) -> Leadership {
        Leadership {
            topic,
            epoch: None,
            partitions,
            led: HashSet::new(),
            loading: (0..partitions).collect(),
            stale: HashSet::new(),
        }
    }

    /// The partition of `key`.
    pub fn partition_of(&self, key: &str) -> i32 {
        partition_for(key, self.partitions)
    }

    /// Whether this broker coordinates `key` now.
    pub fn check(&self, key: &str) -> Result<(), CoordinatorError> {
        let p = self.partition_of(key);
        if self.led.contains(&p) {
            Ok(())
        } else if self.loading.contains(&p) {
            Err(CoordinatorError::CoordinatorLoadInProgress)
        } else {
            Err(CoordinatorError::NotCoordinator)
        }
    }

    /// Whether `partition` is being taken over (decided, not loaded yet).
    pub fn is_loading(&self, partition: i32) -> bool {
        self.loading.contains(&partition)
    }

    /// The epoch a write for `partition` is fenced by, if this broker leads it.
    pub fn fence(&self, partition: i32) -> Option<i32> {
        self.epoch.filter(|_| self.led.contains(&partition))
    }

    /// What changes when the live set is `live` under `epoch`. `previous` is the epoch
    /// decided before: if epochs were skipped, another broker may have led a partition in
    /// between and written to it, so every led partition is loaded again.
    fn decide(&mut self, epoch: i32, live: &[BrokerRecord], me: i32) -> Change {
        let wanted: HashSet<i32> = (0..self.partitions)
            .zip(leaders::assign(live, self.topic, self.partitions))
            .filter_map(|(p, leader)| (leader == me).then_some(p))
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

    /// The loads of `change` are done: its partitions are led.
    fn loaded(&mut self, change: &Change) {
        self.loading.retain(|p| !change.gained.contains(p));
        self.led.extend(&change.gained);
    }
}

/// Locks a coordinator's leadership (None: a single broker, which leads everything).
pub fn lock(leadership: &Mutex<Option<Leadership>>) -> MutexGuard<'_, Option<Leadership>> {
    leadership
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A coordinator whose state is partitioned over a cluster topic.
pub trait Led: Send + Sync + 'static {
    /// What a load produces, installed once the leadership is still the one it was for.
    type Loaded: Send;

    fn leadership(&self) -> &Mutex<Option<Leadership>>;

    /// Forgets the state of `partitions`.
    fn drop_partitions(&self, partitions: HashSet<i32>) -> impl Future<Output = ()> + Send;

    /// Replays `partitions` from the local replica (caught up by the caller).
    fn load(
        &self,
        partitions: HashSet<i32>,
    ) -> impl Future<Output = Result<Self::Loaded, ClusterError>> + Send;

    /// Makes loaded state current; its partitions are served right after.
    fn install(&self, loaded: Self::Loaded) -> impl Future<Output = ()> + Send;

    /// What to finish once `partitions` are led (a transaction's pending markers).
    fn after_load(&self, partitions: HashSet<i32>) -> impl Future<Output = ()> + Send;
}

/// Follows the membership epoch until `shutdown`, handing `coordinator`'s state over.
pub async fn follow<C: Led>(
    coordinator: Arc<C>,
    cluster: Arc<Cluster>,
    what: &'static str,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut epochs = cluster.membership().subscribe();
    loop {
        epochs.borrow_and_update();
        if let Err(e) = lead(&*coordinator, &cluster, what).await {
            tracing::warn!(error = %e, what, "taking over coordination failed; retrying");
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
async fn lead<C: Led>(coordinator: &C, cluster: &Cluster, what: &str) -> Result<(), ClusterError> {
    let (epoch, live) = cluster.membership().view();
    let me = cluster.membership().me.node_id;
    let change = {
        let mut leading = lock(coordinator.leadership());
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
    coordinator.drop_partitions(change.dropped.clone()).await;
    if change.gained.is_empty() {
        return Ok(());
    }
    // Every commit made before this broker saw the epoch, among them the last records of
    // the partition's previous leader (later ones are fenced).
    cluster.caught_up().await?;
    let loaded = coordinator.load(change.gained.clone()).await?;
    // Only this task decides, so the leadership is still `change`'s.
    coordinator.install(loaded).await;
    if let Some(l) = lock(coordinator.leadership()).as_mut() {
        l.loaded(&change);
    }
    tracing::info!(
        epoch = change.epoch,
        partitions = change.gained.len(),
        what,
        "took over coordination"
    );
    coordinator.after_load(change.gained).await;
    Ok(())
}

/// Whether this broker coordinates `key` now (always, on a single broker: `None`).
pub fn check(leadership: &Mutex<Option<Leadership>>, key: &str) -> Result<(), CoordinatorError> {
    lock(leadership).as_ref().map_or(Ok(()), |l| l.check(key))
}

/// Commits `records` as one batch to the coordinator's own `partition` of `topic` (its
/// `log`), under the epoch this broker leads that partition by.
pub async fn commit_records(
    cluster: &Cluster,
    leadership: &Mutex<Option<Leadership>>,
    log: &Log,
    topic_id: Option<Uuid>,
    records: &[RawRecord<'_>],
    txn: Option<TxnProducer>,
) -> Result<(), CoordinatorError> {
    let partition = log.topic_partition().partition;
    let epoch = lock(leadership)
        .as_ref()
        .and_then(|l| l.fence(partition))
        .ok_or(CoordinatorError::NotCoordinator)?;
    let topic_id = topic_id.ok_or(CoordinatorError::CoordinatorNotAvailable)?;
    let batch = encode_batch(records, now_ms(), txn);
    commit_fenced(
        cluster,
        leadership,
        partition,
        epoch,
        vec![((topic_id, partition), batch)],
    )
    .await
}

/// Commits a coordinator's batches, each to its (topic id, partition), under `epoch` (from
/// [`Leadership::fence`] of `led_partition`), all in the same object. A fenced or failed
/// write marks `led_partition` stale; the first failure is returned.
pub async fn commit_fenced(
    cluster: &Cluster,
    leadership: &Mutex<Option<Leadership>>,
    led_partition: i32,
    epoch: i32,
    batches: Vec<((Uuid, i32), Vec<u8>)>,
) -> Result<(), CoordinatorError> {
    let mut pending = Vec::with_capacity(batches.len());
    for ((topic_id, partition), batch) in batches {
        let header = check_batch(&batch).map_err(|_| CoordinatorError::UnknownServerError)?;
        let rx = cluster.produce_fenced(topic_id, partition, Bytes::from(batch), header, epoch);
        pending.push((partition, rx));
    }
    let mut result = Ok(());
    for (partition, rx) in pending {
        let error = match rx.await {
            Ok(Ok(BatchOutcome::Committed { .. })) => continue,
            Ok(Ok(BatchOutcome::Fenced)) => {
                tracing::info!(
                    partition,
                    epoch,
                    "a coordinator record was fenced by a newer membership epoch"
                );
                cluster.membership().refresh();
                CoordinatorError::NotCoordinator
            }
            Ok(Ok(other)) => {
                tracing::error!(partition, outcome = ?other, "a coordinator record was refused");
                CoordinatorError::KafkaStorageError
            }
            Ok(Err(e)) => {
                tracing::warn!(partition, error = %e, "a coordinator record did not commit");
                CoordinatorError::KafkaStorageError
            }
            Err(_) => CoordinatorError::KafkaStorageError,
        };
        if result.is_ok() {
            result = Err(error);
        }
    }
    if result.is_err() {
        if let Some(l) = lock(leadership).as_mut() {
            l.stale.insert(led_partition);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::offsets::OFFSETS_TOPIC;

    fn live(ids: &[i32]) -> Vec<BrokerRecord> {
        BrokerRecord::numbered(ids)
    }

    fn led_by(live: &[BrokerRecord], partitions: i32, node: i32) -> HashSet<i32> {
        (0..partitions)
            .zip(leaders::assign(live, OFFSETS_TOPIC, partitions))
            .filter_map(|(p, leader)| (leader == node).then_some(p))
            .collect()
    }

    fn leading(partitions: i32) -> Leadership {
        Leadership::new(OFFSETS_TOPIC, partitions)
    }

    fn loaded(l: &mut Leadership, change: &Change) {
        l.loaded(change);
    }

    #[test]
    fn a_broker_loads_what_it_gains_and_drops_what_it_loses() {
        let mut l = leading(12);
        let three = live(&[1, 2, 3]);
        let first = l.decide(5, &three, 1);
        let mine = led_by(&three, 12, 1);
        assert_eq!(first.gained, mine);
        assert_eq!(first.dropped.len(), 12, "every partition was loading");
        loaded(&mut l, &first);

        // Broker 3 leaves: broker 1 now leads its share among two, keeping what it
        // led of that share (loaded already) and loading only the rest.
        let two = live(&[1, 2]);
        let now_mine = led_by(&two, 12, 1);
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
