//! The transaction coordinator (Kafka's `TransactionCoordinator`): this broker coordinates
//! every transactional id. It hands out producer ids and epochs (fencing older producers),
//! records which partitions a transaction touched, and ends transactions by writing
//! commit/abort markers to every one of them. Its state lives durably in the internal
//! `__transaction_state` topic and is replayed at start-up.
//!
//! Synchronisation: one `tokio::sync::Mutex` over all transactional ids, held across the
//! writes (state record, markers, their fsyncs) of an operation so each transaction moves
//! through its states in order. These are control requests, not the data path. Produce
//! verifies transactional batches against a copy of each transaction's durable state
//! (`published`, a `std::sync::Mutex` held only to read or replace one entry), so the
//! data path never waits for a coordinator operation.

mod hand_over;
pub mod state;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::coordinator::CoordinatorError;
use tokio::sync::Mutex;

use crate::config::TransactionConfig;
use crate::coordinator::internal_topic::{
    append_durably, partition_for, partition_log, ReplayError,
};
use crate::coordinator::offsets::OFFSETS_TOPIC;
use crate::coordinator::GroupCoordinator;
use crate::log::records::decode_key_values;
use crate::log::{now_ms, Log, TopicPartition};
use crate::log_manager::LogManager;
use crate::producer_ids::ProducerIdManager;
use state::{TxnMetadata, TxnState};

pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

pub struct TransactionCoordinator {
    config: TransactionConfig,
    logs: Arc<LogManager>,
    groups: Arc<GroupCoordinator>,
    producer_ids: Arc<ProducerIdManager>,
    txns: Mutex<HashMap<String, TxnMetadata>>,
    /// Each transactional id's state as last written to `__transaction_state` (in cluster
    /// mode by any broker's coordinator, as this broker's replica applies it).
    published: std::sync::Mutex<HashMap<String, TxnMetadata>>,
    /// Cluster mode: where the records and markers are committed (`hand_over.rs`).
    cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
    /// Cluster mode: the `__transaction_state` partitions this broker leads.
    leadership: std::sync::Mutex<Option<crate::coordinator::leadership::Leadership>>,
}

/// A transaction as DescribeTransactions / ListTransactions report it.
pub type TxnSummary = TxnMetadata;

impl TransactionCoordinator {
    /// Replays `__transaction_state`, then finishes what a crash interrupted: Prepare
    /// states are completed, Ongoing transactions aborted with a bumped epoch. In cluster
    /// mode (`clustered`) the replayed state is only published: the transactions are the
    /// partition leaders' to load and finish (`hand_over.rs`), and this broker's logs are a
    /// replica that only the cluster writes.
    pub async fn load(
        config: TransactionConfig,
        logs: Arc<LogManager>,
        groups: Arc<GroupCoordinator>,
        producer_ids: Arc<ProducerIdManager>,
        clustered: bool,
    ) -> Result<TransactionCoordinator, ReplayError> {
        let txns = replay_state(&logs, |_| true)?;
        let coordinator = TransactionCoordinator {
            config,
            logs,
            groups,
            producer_ids,
            txns: Mutex::new(HashMap::new()),
            published: std::sync::Mutex::new(HashMap::new()),
            cluster: std::sync::OnceLock::new(),
            leadership: std::sync::Mutex::new(None),
        };
        if clustered {
            *coordinator
                .published
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = txns;
            return Ok(coordinator);
        }
        let mut recovered = HashMap::new();
        for (id, mut t) in txns {
            let outcome = match t.state {
                TxnState::PrepareCommit => coordinator.complete(&mut t, true).await,
                TxnState::PrepareAbort => coordinator.complete(&mut t, false).await,
                TxnState::Ongoing => {
                    tracing::info!(transactional_id = %id, "aborting a transaction interrupted by a restart");
                    coordinator.abort_with_bumped_epoch(&mut t).await
                }
                _ => Ok(()),
            };
            if let Err(e) = outcome {
                tracing::error!(transactional_id = %id, error = %e, "recovering a transaction failed");
            }
            recovered.insert(id, t);
        }
        if !recovered.is_empty() {
            tracing::info!(
                transactional_ids = recovered.len(),
                "loaded transaction state"
            );
        }
        *coordinator
            .published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = recovered.clone();
        *coordinator.txns.lock().await = recovered;
        Ok(coordinator)
    }

    fn state_log(&self, transactional_id: &str) -> Result<Arc<Log>, CoordinatorError> {
        partition_log(
            &self.logs,
            TRANSACTION_STATE_TOPIC,
            self.config.state_partitions,
            self.config.state_segment_bytes,
            transactional_id,
        )
    }

    /// Makes sure `__transaction_state` exists (FindCoordinator does this).
    pub fn ensure_state_topic(&self, transactional_id: &str) -> Result<(), CoordinatorError> {
        self.state_log(transactional_id).map(|_| ())
    }

    /// Writes a transaction's state durably (in cluster mode: committed, and applied by
    /// every live broker, whose produce checks it).
    async fn persist(&self, t: &TxnMetadata) -> Result<(), CoordinatorError> {
        let log = self.state_log(&t.transactional_id)?;
        let key = state::encode_key(&t.transactional_id);
        let value = state::encode_value(t);
        let records = [(Some(key.as_slice()), Some(value.as_slice()))];
        match self.commit_state(&log, &records).await {
            Some(committed) => committed?,
            None => append_durably(&log, &records, None).await?,
        }
        self.published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(t.transactional_id.clone(), t.clone());
        Ok(())
    }

    /// Produce's check of a transactional batch (Kafka's partition verification, KIP-890
    /// part 1): the batch's producer must have an ongoing transaction, under
    /// `transactional_id`, that already added `partition`.
    pub fn verify_partition(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partition: &TopicPartition,
    ) -> Result<(), CoordinatorError> {
        let published = self
            .published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let t = published
            .get(transactional_id)
            .filter(|t| t.producer_id == producer_id)
            .ok_or(CoordinatorError::InvalidProducerIdMapping)?;
        if t.producer_epoch != producer_epoch {
            return Err(CoordinatorError::InvalidProducerEpoch);
        }
        match t.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                Err(CoordinatorError::ConcurrentTransactions)
            }
            TxnState::Ongoing if t.partitions.contains(partition) => Ok(()),
            _ => Err(CoordinatorError::InvalidTxnState),
        }
    }

    /// Writes the markers of a decided transaction to all its partitions and completes it.
    /// If the Prepare state cannot be written, `t` is left as it was; once it is written,
    /// a failure leaves `t` in it, durable, and the timer completes it (`abort_timed_out`).
    async fn complete(&self, t: &mut TxnMetadata, commit: bool) -> Result<(), CoordinatorError> {
        let before = t.clone();
        t.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        t.last_update_ms = now_ms();
        if let Err(e) = self.persist(t).await {
            *t = before;
            return Err(e);
        }
        if let Some(committed) = self.commit_markers(t, commit).await {
            // Each group coordinator completes the offsets as its replica applies the
            // marker (`hand_over.rs`).
            committed?;
            return self.completed(t, commit).await;
        }
        // Every marker is appended first, each append asking its log for a flush, so the
        // fsyncs of all partitions run at once; then each is waited for.
        let mut written = Vec::with_capacity(t.partitions.len());
        for tp in &t.partitions {
            let Some(log) = self
                .logs
                .topic(&tp.topic)
                .and_then(|topic| topic.partition(tp.partition).cloned())
            else {
                continue; // the topic was deleted: nothing to mark
            };
            let info = log
                .append_marker(t.producer_id, t.producer_epoch, commit)
                .map_err(|e| {
                    tracing::error!(partition = %tp, error = %e, "writing a transaction marker failed");
                    CoordinatorError::KafkaStorageError
                })?;
            written.push((tp, log, info));
        }
        for (tp, log, info) in written {
            crate::coordinator::internal_topic::await_durable(&log, &info).await?;
            if tp.topic == OFFSETS_TOPIC {
                self.groups.complete_transaction(t.producer_id, commit);
            }
        }
        self.completed(t, commit).await
    }

    /// The markers are written: the transaction is complete.
    async fn completed(&self, t: &mut TxnMetadata, commit: bool) -> Result<(), CoordinatorError> {
        t.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        t.partitions.clear();
        t.last_update_ms = now_ms();
        self.persist(t).await
    }

    /// Aborts an open transaction after bumping the epoch, so its producer is fenced.
    async fn abort_with_bumped_epoch(&self, t: &mut TxnMetadata) -> Result<(), CoordinatorError> {
        let before = t.clone();
        self.bump_epoch(t)?;
        let aborted = self.complete(t, false).await;
        if aborted.is_err() && t.state != TxnState::PrepareAbort {
            // Nothing was written: the epoch stays what the producer and the log know.
            *t = before;
        }
        aborted
    }

    fn bump_epoch(&self, t: &mut TxnMetadata) -> Result<(), CoordinatorError> {
        if t.producer_epoch >= i16::MAX - 1 {
            t.producer_id = self
                .producer_ids
                .next_id()
                .map_err(|_| CoordinatorError::KafkaStorageError)?;
            t.producer_epoch = 0;
        } else {
            t.producer_epoch += 1;
        }
        Ok(())
    }

    /// InitProducerId with a transactional id.
    pub async fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), CoordinatorError> {
        if transactional_id.is_empty() {
            return Err(CoordinatorError::InvalidRequest);
        }
        self.check_coordinator(transactional_id)?;
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(CoordinatorError::InvalidTransactionTimeout);
        }
        let mut txns = self.txns.lock().await;
        let now = now_ms();
        let Some(t) = txns.get_mut(transactional_id) else {
            let producer_id = self
                .producer_ids
                .next_id()
                .map_err(|_| CoordinatorError::KafkaStorageError)?;
            let t = TxnMetadata {
                transactional_id: transactional_id.to_string(),
                producer_id,
                producer_epoch: 0,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                start_ms: -1,
                last_update_ms: now,
            };
            self.persist(&t).await?;
            let out = (t.producer_id, t.producer_epoch);
            txns.insert(transactional_id.to_string(), t);
            return Ok(out);
        };
        if let Some((pid, epoch)) = expected {
            // KIP-360: the producer says who it is; only the current incarnation may bump.
            if pid != t.producer_id || epoch != t.producer_epoch {
                return Err(CoordinatorError::ProducerFenced);
            }
        }
        if t.state == TxnState::Ongoing {
            // A new incarnation fences the old one: its transaction is aborted.
            self.abort_with_bumped_epoch(t).await?;
        } else {
            self.bump_epoch(t)?;
        }
        t.timeout_ms = timeout_ms;
        t.state = TxnState::Empty;
        t.last_update_ms = now;
        self.persist(t).await?;
        Ok((t.producer_id, t.producer_epoch))
    }

    /// Checks the producer id and epoch of a request against the transaction.
    fn check<'a>(
        txns: &'a mut HashMap<String, TxnMetadata>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<&'a mut TxnMetadata, CoordinatorError> {
        let t = txns
            .get_mut(transactional_id)
            .ok_or(CoordinatorError::InvalidProducerIdMapping)?;
        if t.producer_id != producer_id {
            return Err(CoordinatorError::InvalidProducerIdMapping);
        }
        if producer_epoch != t.producer_epoch {
            return Err(CoordinatorError::ProducerFenced);
        }
        Ok(t)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the partitions join the (possibly new)
    /// transaction. With `verify_only`, only checks that they are already in it.
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
        verify_only: bool,
    ) -> Result<Vec<Result<(), CoordinatorError>>, CoordinatorError> {
        self.check_coordinator(transactional_id)?;
        let mut txns = self.txns.lock().await;
        let t = Self::check(&mut txns, transactional_id, producer_id, producer_epoch)?;
        if matches!(t.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(CoordinatorError::ConcurrentTransactions);
        }
        if verify_only {
            return Ok(partitions
                .iter()
                .map(|tp| {
                    if t.state == TxnState::Ongoing && t.partitions.contains(tp) {
                        Ok(())
                    } else {
                        Err(CoordinatorError::InvalidTxnState)
                    }
                })
                .collect());
        }
        let unknown: Vec<bool> = partitions
            .iter()
            .map(|tp| {
                self.logs
                    .topic(&tp.topic)
                    .and_then(|t| t.partition(tp.partition).cloned())
                    .is_none()
            })
            .collect();
        if unknown.iter().any(|u| *u) {
            // Nothing is added when any partition is unknown, as in Kafka.
            return Ok(unknown
                .iter()
                .map(|u| {
                    Err(if *u {
                        CoordinatorError::UnknownTopicOrPartition
                    } else {
                        CoordinatorError::OperationNotAttempted
                    })
                })
                .collect());
        }
        let mut updated = t.clone();
        if updated.state != TxnState::Ongoing {
            updated.state = TxnState::Ongoing;
            updated.start_ms = now_ms();
        }
        updated.partitions.extend(partitions.iter().cloned());
        updated.last_update_ms = now_ms();
        if updated != *t {
            self.persist(&updated).await?;
            *t = updated;
        }
        Ok(vec![Ok(()); partitions.len()])
    }

    /// AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction.
    pub async fn add_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
    ) -> Result<(), CoordinatorError> {
        self.groups.ensure_offsets_topic(group_id)?;
        let partitions = self
            .logs
            .topic(OFFSETS_TOPIC)
            .map_or(1, |t| t.partitions.len() as i32);
        let tp = TopicPartition {
            topic: OFFSETS_TOPIC.to_string(),
            partition: partition_for(group_id, partitions),
        };
        let codes = self
            .add_partitions(transactional_id, producer_id, producer_epoch, &[tp], false)
            .await?;
        match codes.first() {
            Some(Ok(())) => Ok(()),
            _ => Err(CoordinatorError::CoordinatorNotAvailable),
        }
    }

    /// EndTxn: commits or aborts the transaction (markers on every partition).
    pub async fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), CoordinatorError> {
        self.check_coordinator(transactional_id)?;
        let mut txns = self.txns.lock().await;
        let t = Self::check(&mut txns, transactional_id, producer_id, producer_epoch)?;
        match (t.state, commit) {
            (TxnState::Ongoing, _) => self.complete(t, commit).await,
            // A retried EndTxn whose first attempt completed.
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(()),
            (TxnState::PrepareCommit | TxnState::PrepareAbort, _) => {
                Err(CoordinatorError::ConcurrentTransactions)
            }
            _ => Err(CoordinatorError::InvalidTxnState),
        }
    }

    /// Checks that a TxnOffsetCommit comes from the producer of a transaction that added
    /// the group's offsets partition.
    pub async fn check_offset_commit(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<(), CoordinatorError> {
        let offsets_added = |t: &TxnMetadata| {
            if t.state == TxnState::Ongoing
                && t.partitions.iter().any(|tp| tp.topic == OFFSETS_TOPIC)
            {
                Ok(())
            } else {
                Err(CoordinatorError::InvalidTxnState)
            }
        };
        if self.cluster.get().is_some() {
            // Another broker may coordinate the transaction: its published state is what
            // this broker knows.
            let mut published = self
                .published
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            return offsets_added(Self::check(
                &mut published,
                transactional_id,
                producer_id,
                producer_epoch,
            )?);
        }
        let mut txns = self.txns.lock().await;
        offsets_added(Self::check(
            &mut txns,
            transactional_id,
            producer_id,
            producer_epoch,
        )?)
    }

    /// Aborts transactions open for longer than their timeout (`transaction.timeout.ms`).
    /// Also completes transactions whose outcome is decided (PrepareCommit, PrepareAbort)
    /// but whose markers or final state could not be written: their partitions' last stable
    /// offset waits for them, as Kafka's coordinator retries its markers.
    pub async fn abort_timed_out(&self) {
        let now = now_ms();
        let mut txns = self.txns.lock().await;
        for t in txns.values_mut() {
            let outcome = match t.state {
                TxnState::Ongoing if now - t.start_ms > t.timeout_ms as i64 => {
                    tracing::info!(transactional_id = %t.transactional_id, "aborting a timed-out transaction");
                    self.abort_with_bumped_epoch(t).await
                }
                TxnState::PrepareCommit => self.complete(t, true).await,
                TxnState::PrepareAbort => self.complete(t, false).await,
                _ => Ok(()),
            };
            if let Err(e) = outcome {
                tracing::error!(transactional_id = %t.transactional_id, error = %e, "ending a transaction failed; retried in a second");
            }
        }
    }

    pub async fn describe(&self, transactional_id: &str) -> Option<TxnSummary> {
        self.txns.lock().await.get(transactional_id).cloned()
    }

    pub async fn list(&self) -> Vec<TxnSummary> {
        let mut all: Vec<TxnSummary> = self.txns.lock().await.values().cloned().collect();
        all.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        all
    }

    /// Checks transaction timeouts every second until shutdown.
    pub async fn run_timers(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = interval.tick() => self.abort_timed_out().await,
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// The transactions recorded in the `__transaction_state` partitions `wanted` accepts.
fn replay_state(
    logs: &LogManager,
    wanted: impl Fn(i32) -> bool,
) -> Result<HashMap<String, TxnMetadata>, ReplayError> {
    let mut txns = HashMap::new();
    if let Some(topic) = logs.topic(TRANSACTION_STATE_TOPIC) {
        for log in topic
            .partitions
            .iter()
            .filter(|l| wanted(l.topic_partition().partition))
        {
            for (key, value) in replay(log)? {
                if let Some((id, meta)) = state::decode(&key, value.as_deref()) {
                    match meta {
                        Some(m) => {
                            txns.insert(id, m);
                        }
                        None => {
                            txns.remove(&id);
                        }
                    }
                }
            }
        }
    }
    Ok(txns)
}

/// Every key/value of an internal topic partition, in log order.
/// A key and its value (`None`: a tombstone).
type KeyValue = (Vec<u8>, Option<Vec<u8>>);

fn replay(log: &Log) -> Result<Vec<KeyValue>, ReplayError> {
    let mut out = Vec::new();
    crate::coordinator::internal_topic::for_each_batch(log, |_, batch| {
        for kv in decode_key_values(batch).ok_or("a batch's records do not decode")? {
            if let Some(key) = kv.key {
                out.push((key, kv.value));
            }
        }
        Ok(())
    })?;
    Ok(out)
}
