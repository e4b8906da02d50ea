//! Cluster mode (`gregor.storage: cluster`, docs/cluster.md): brokers that own no data.
//! Produced batches go to an object store in objects shared by all partitions
//! (`produce_buffer.rs`); PostgreSQL orders them, assigns their offsets and checks
//! idempotent producers (`batch_coordinator.rs`), and holds topics, brokers and producer id
//! blocks (`metadata.rs`, schema in `migrations/`). Each broker follows the commits into
//! its local logs (`replica.rs`, woken by `notifications.rs`), from which it serves fetches
//! as a single broker does, and heartbeats so that Metadata lists it (`membership.rs`).

pub mod batch_coordinator;
pub mod consolidation;
pub mod leaders;
pub mod membership;
pub mod metadata;
pub mod metadata_files;
pub mod notifications;
pub mod objects;
pub mod produce_buffer;
pub mod replica;
pub mod retention;
pub mod schema;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{oneshot, watch, Notify};
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

use crate::config::ClusterConfig;
use crate::log::record_batch::BatchHeader;
use crate::log_manager::{LogManager, Topic, TopicError};
use batch_coordinator::BatchOutcome;
use membership::Membership;
use metadata::{BrokerRecord, TopicRecord};
use objects::{ObjectCache, Objects};
use produce_buffer::{ProduceBuffer, Uploader};
use replica::Replica;

/// The longest a topic change waits for the other live brokers to apply it.
const OTHERS_WAIT: Duration = Duration::from_secs(5);

/// Bytes of recently uploaded or read objects kept in memory.
const OBJECT_CACHE_BYTES: usize = 64 << 20;

/// Opens a PostgreSQL connection and drives it on its own task.
pub async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
    Ok(client)
}

#[derive(Debug)]
pub enum ClusterError {
    Database(tokio_postgres::Error),
    ObjectStore(object_store::Error),
    Schema(schema::SchemaError),
    /// A local log or topic could not be changed.
    Local(String),
    /// An object does not hold what its coordinates say.
    Corrupt(String),
    /// A local log misses committed batches before the ones to append.
    Gap(String),
    /// A failure reported to each produce of an object (the cause was logged).
    Failed(String),
    /// The broker is stopping.
    Stopped,
}

impl ClusterError {
    /// The error as each produce of a failed object gets it.
    fn retriable_copy(&self) -> ClusterError {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        ClusterError::Failed(message)
    }
}

impl From<tokio_postgres::Error> for ClusterError {
    fn from(e: tokio_postgres::Error) -> ClusterError {
        ClusterError::Database(e)
    }
}

impl From<object_store::Error> for ClusterError {
    fn from(e: object_store::Error) -> ClusterError {
        ClusterError::ObjectStore(e)
    }
}

impl From<schema::SchemaError> for ClusterError {
    fn from(e: schema::SchemaError) -> ClusterError {
        ClusterError::Schema(e)
    }
}

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClusterError::Database(_) => f.write_str("PostgreSQL failed"),
            ClusterError::ObjectStore(_) => f.write_str("the object store failed"),
            ClusterError::Schema(e) => write!(f, "{e}"),
            ClusterError::Local(m)
            | ClusterError::Corrupt(m)
            | ClusterError::Gap(m)
            | ClusterError::Failed(m) => f.write_str(m),
            ClusterError::Stopped => f.write_str("the broker is stopping"),
        }
    }
}

impl std::error::Error for ClusterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClusterError::Database(e) => Some(e),
            ClusterError::ObjectStore(e) => Some(e),
            ClusterError::Schema(e) => e.source(),
            _ => None,
        }
    }
}

/// This broker's part in the cluster.
#[derive(Debug)]
pub struct Cluster {
    pub config: ClusterConfig,
    pub cluster_id: String,
    url: String,
    /// For topic changes and producer id blocks (the replica, the produce buffer and the
    /// heartbeat have their own connections).
    admin: tokio::sync::Mutex<Client>,
    buffer: ProduceBuffer,
    objects: Objects,
    membership: Arc<Membership>,
    applied: watch::Receiver<i64>,
    wake_replica: Arc<Notify>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica").finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects to both engines, migrates the schema, makes the local logs PostgreSQL's,
    /// and starts following commits. `me` is this broker as clients reach it; `observer`
    /// is told of what the replica applies to internal topics, from the catch-up on.
    pub async fn start(
        config: ClusterConfig,
        logs: Arc<LogManager>,
        me: BrokerRecord,
        observer: Option<Arc<dyn replica::Observer>>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let url = config.metadata_url.clone();
        let mut admin = connect(&url).await?;
        let cluster_id = schema::migrate(&mut admin, logs.cluster_id()).await?;
        let objects = Objects::open(&config)?;
        let cache = Arc::new(ObjectCache::new(OBJECT_CACHE_BYTES));
        let (applied_tx, applied) = watch::channel(0);
        let wake_replica = Arc::new(Notify::new());
        let membership = Arc::new(Membership::new(me.clone(), applied.clone()));
        let replica = Replica {
            node_id: me.node_id,
            logs,
            objects: objects.clone(),
            cache: cache.clone(),
            applied: applied_tx,
            wake: wake_replica.clone(),
            poll: Duration::from_millis(config.metadata_poll_ms),
            observer,
            membership: membership.clone(),
        };
        let mut replica_db = connect(&url).await?;
        // A long catch-up may outlive objects it was to read: merged or deleted by the
        // others meanwhile (a broker not yet registered does not hold the collector back).
        // Each try starts from a fresh snapshot and what the last one applied.
        let mut tries = 0;
        loop {
            match replica.catch_up(&mut replica_db).await {
                Err(ClusterError::ObjectStore(object_store::Error::NotFound { .. }))
                    if tries < 10 =>
                {
                    tries += 1;
                    tracing::info!("an object went while catching up; catching up again");
                }
                other => break other?,
            }
        }
        tokio::spawn(replica.run(url.clone(), replica_db, shutdown.clone()));
        tokio::spawn(notifications::listen(
            url.clone(),
            wake_replica.clone(),
            shutdown.clone(),
        ));
        let buffer = ProduceBuffer::start(
            Uploader {
                node_id: me.node_id,
                objects: objects.clone(),
                cache,
                url: url.clone(),
                buffer_ms: config.produce_buffer_ms,
                buffer_bytes: config.produce_buffer_bytes,
                applied: applied.clone(),
                wake_replica: wake_replica.clone(),
            },
            connect(&url).await?,
        );
        let mut heartbeat_db = connect(&url).await?;
        membership
            .join(&mut heartbeat_db, config.session_timeout_ms)
            .await?;
        tokio::spawn(membership.clone().run(
            url.clone(),
            heartbeat_db,
            Duration::from_millis(config.heartbeat_interval_ms),
            config.session_timeout_ms,
            shutdown,
        ));
        tracing::info!(
            cluster_id,
            node_id = membership.me.node_id,
            "joined the cluster"
        );
        Ok(Arc::new(Cluster {
            config,
            cluster_id,
            url,
            admin: tokio::sync::Mutex::new(admin),
            buffer,
            objects,
            membership,
            applied,
            wake_replica,
        }))
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Queues a validated batch for the next object; the receiver gets its offsets once
    /// the object is committed.
    pub fn produce(
        &self,
        topic_id: Uuid,
        partition: i32,
        records: Bytes,
        header: BatchHeader,
    ) -> oneshot::Receiver<Result<BatchOutcome, ClusterError>> {
        self.buffer
            .append(topic_id, partition, records, header, None)
    }

    /// As [`Cluster::produce`], for a coordinator's records: committed only while the
    /// membership epoch is still `epoch`, the one under which this broker leads the
    /// partition (else [`BatchOutcome::Fenced`]).
    pub fn produce_fenced(
        &self,
        topic_id: Uuid,
        partition: i32,
        records: Bytes,
        header: BatchHeader,
        epoch: i32,
    ) -> oneshot::Receiver<Result<BatchOutcome, ClusterError>> {
        self.buffer
            .append(topic_id, partition, records, header, Some(epoch))
    }

    /// Waits until this broker's replica has applied everything committed so far.
    pub async fn caught_up(&self) -> Result<i64, ClusterError> {
        let upto = metadata::last_commit(&*self.admin().await?).await?;
        self.wake_replica.notify_one();
        let mut applied = self.applied.clone();
        tokio::time::timeout(Duration::from_secs(30), applied.wait_for(|a| *a >= upto))
            .await
            .map_err(|_| ClusterError::Local("the local replica did not catch up in 30 s".into()))?
            .map_err(|_| ClusterError::Stopped)?;
        Ok(upto)
    }

    async fn admin(&self) -> Result<tokio::sync::MutexGuard<'_, Client>, ClusterError> {
        let mut admin = self.admin.lock().await;
        if admin.is_closed() {
            *admin = connect(&self.url).await?;
        }
        Ok(admin)
    }

    /// Waits until this broker's replica has applied everything committed so far, then
    /// (for up to `OTHERS_WAIT`) until every live broker has: a client that changed a topic
    /// through one broker and asks another next finds the change there.
    pub async fn sync_replica(&self) -> Result<(), ClusterError> {
        let upto = self.caught_up().await?;
        let deadline = tokio::time::Instant::now() + OTHERS_WAIT;
        while metadata::brokers_behind(&*self.admin().await?, upto).await? > 0 {
            if tokio::time::Instant::now() >= deadline {
                // Committed all the same; a broker that is slow or dead catches up later.
                tracing::debug!(
                    commit = upto,
                    "not every broker applied a topic change in time"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// CreateTopics in cluster mode: validated locally, created in PostgreSQL, then present
    /// here once the replica has applied it.
    pub async fn create_topic(
        &self,
        logs: &LogManager,
        name: &str,
        num_partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, TopicError> {
        let (partitions, _) =
            logs.validate_new_topic(name, num_partitions, replication_factor, &configs)?;
        let record = TopicRecord {
            topic_id: Uuid::new_v4(),
            name: name.to_string(),
            partitions,
            configs,
        };
        let created = async {
            let created = metadata::create_topic(&mut *self.admin().await?, &record).await?;
            self.sync_replica().await?;
            Ok::<bool, ClusterError>(created)
        }
        .await
        .map_err(|e| TopicError::Cluster(e.retriable_copy().to_string()))?;
        if !created {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        logs.topic_by_id(record.topic_id).ok_or_else(|| {
            TopicError::Cluster("the topic was deleted right after its creation".into())
        })
    }

    /// Creates an internal topic (`__consumer_offsets`) in PostgreSQL unless it is there,
    /// and waits until the local replica has it. A local topic of that name from before
    /// (another id) is replaced by the replica.
    pub async fn ensure_internal_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<(), ClusterError> {
        let record = TopicRecord {
            topic_id: Uuid::new_v4(),
            name: name.to_string(),
            partitions,
            configs,
        };
        if metadata::create_topic(&mut *self.admin().await?, &record).await? {
            tracing::info!(topic = name, partitions, "created an internal topic");
        }
        self.caught_up().await.map(|_| ())
    }

    /// DeleteTopics in cluster mode.
    pub async fn delete_topic(
        &self,
        logs: &LogManager,
        name: &str,
    ) -> Result<Arc<Topic>, TopicError> {
        let local = logs.topic(name);
        let deleted = async {
            let deleted = metadata::delete_topic(&mut *self.admin().await?, name).await?;
            self.sync_replica().await?;
            Ok::<_, ClusterError>(deleted)
        }
        .await
        .map_err(|e| TopicError::Cluster(e.retriable_copy().to_string()))?;
        match (deleted, local) {
            (None, _) => Err(TopicError::UnknownTopic),
            (Some(_), Some(local)) => Ok(local),
            (Some(_), None) => Err(TopicError::UnknownTopic),
        }
    }

    /// AlterConfigs and IncrementalAlterConfigs on a topic in cluster mode: validated
    /// locally, committed in PostgreSQL, applied by every broker's replica.
    pub async fn alter_topic_configs(
        &self,
        logs: &LogManager,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        logs.alter_topic_configs(name, configs.clone(), true)?;
        self.update_topic(name, None, Some(&configs)).await
    }

    /// CreatePartitions in cluster mode.
    pub async fn create_partitions(
        &self,
        logs: &LogManager,
        name: &str,
        count: i32,
    ) -> Result<(), TopicError> {
        logs.create_partitions(name, count, true)?;
        self.update_topic(name, Some(count), None).await
    }

    async fn update_topic(
        &self,
        name: &str,
        partitions: Option<i32>,
        configs: Option<&BTreeMap<String, String>>,
    ) -> Result<(), TopicError> {
        let update = async {
            let update =
                metadata::update_topic(&mut *self.admin().await?, name, partitions, configs)
                    .await?;
            self.sync_replica().await?;
            Ok::<_, ClusterError>(update)
        }
        .await
        .map_err(|e| TopicError::Cluster(e.retriable_copy().to_string()))?;
        match update {
            metadata::TopicUpdate::Updated(_) => Ok(()),
            metadata::TopicUpdate::UnknownTopic => Err(TopicError::UnknownTopic),
            metadata::TopicUpdate::PartitionsNotIncreased(current) => Err(
                TopicError::InvalidPartitions(format!("Topic already has {current} partitions.")),
            ),
        }
    }

    /// DeleteRecords in cluster mode: committed in PostgreSQL, answered in the order given
    /// once this broker's replica has applied it (and, for up to 5 s, every live broker).
    pub async fn delete_records(
        &self,
        requests: &[(Uuid, i32, i64)],
    ) -> Result<Vec<retention::Deletion>, ClusterError> {
        let outcomes = retention::delete_records(&mut *self.admin().await?, requests).await?;
        self.sync_replica().await?;
        Ok(outcomes)
    }

    /// Retention, the object collector and consolidation, every `interval` until `shutdown`, on the
    /// controller only (the live broker with the lowest node id): one broker's work, and
    /// another one's as soon as it is gone.
    pub async fn run_cleanup(
        self: Arc<Self>,
        logs: Arc<LogManager>,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(interval);
        // Listing the whole store is the costly part: at most twice per orphan age.
        let sweep_every = Duration::from_millis(self.config.orphan_age_ms / 2);
        let mut last_sweep: Option<tokio::time::Instant> = None;
        let mut db = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let me = self.membership.me.node_id;
            if self.membership.live().iter().map(|b| b.node_id).min() != Some(me) {
                continue;
            }
            let db = match self.controller_connection(&mut db).await {
                Ok(db) => db,
                Err(e) => {
                    tracing::warn!(error = %e, "the controller cannot reach PostgreSQL");
                    continue;
                }
            };
            // Logged; the next tick tries again.
            if last_sweep.is_none_or(|at| at.elapsed() >= sweep_every) {
                last_sweep = Some(tokio::time::Instant::now());
                if let Err(e) = self.sweep_orphans(db).await {
                    tracing::warn!(error = %e, "sweeping objects no commit names failed");
                }
            }
            if let Err(e) = self.apply_retention(&logs, db).await {
                tracing::warn!(error = %e, "cluster retention failed");
            }
            if let Err(e) = self.collect_objects(db).await {
                tracing::warn!(error = %e, "collecting unreferenced objects failed");
            }
            if let Err(e) = self.consolidate(db).await {
                tracing::warn!(error = %e, "consolidating objects failed");
            }
        }
    }

    /// The controller's own connection, opened again when it has closed: its rounds (a
    /// query per partition for retention) do not hold the admin connection that topic
    /// changes and producer id blocks wait for.
    async fn controller_connection<'a>(
        &self,
        db: &'a mut Option<Client>,
    ) -> Result<&'a mut Client, ClusterError> {
        let open = match db.take() {
            Some(client) if !client.is_closed() => client,
            _ => connect(&self.url).await?,
        };
        Ok(db.insert(open))
    }

    /// Moves the log start offset of every partition whose `retention.ms` or
    /// `retention.bytes` (`cleanup.policy=delete`) says so.
    async fn apply_retention(
        &self,
        logs: &LogManager,
        db: &mut Client,
    ) -> Result<(), ClusterError> {
        let now = crate::log::now_ms();
        let mut moves = Vec::new();
        for topic in logs.topics().iter().filter(|t| !t.is_internal()) {
            for log in &topic.partitions {
                let config = log.config();
                let cutoff = (config.retention_ms >= 0).then(|| now - config.retention_ms);
                let bytes = (config.retention_bytes >= 0).then_some(config.retention_bytes);
                if !config.cleanup_delete || (cutoff.is_none() && bytes.is_none()) {
                    continue;
                }
                let partition = log.topic_partition().partition;
                if let Some(target) =
                    retention::retention_target(&*db, topic.id, partition, cutoff, bytes).await?
                {
                    moves.push((topic.id, partition, target));
                }
            }
        }
        if moves.is_empty() {
            return Ok(());
        }
        retention::delete_records(db, &moves).await?;
        self.wake_replica.notify_one();
        tracing::info!(
            partitions = moves.len(),
            "retention moved log start offsets"
        );
        Ok(())
    }

    /// Deletes the objects no batch points to once every live broker is past the commit
    /// that made them so: from the store, then their rows.
    async fn collect_objects(&self, db: &mut Client) -> Result<(), ClusterError> {
        let keys = retention::collectable_objects(&*db, 1000).await?;
        let mut deleted = Vec::with_capacity(keys.len());
        for key in keys {
            match self.objects.store.delete(&Objects::path(&key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted.push(key),
                Err(e) => tracing::warn!(object = key, error = %e, "deleting an object failed"),
            }
        }
        if !deleted.is_empty() {
            retention::forget_objects(&*db, &deleted).await?;
            tracing::info!(objects = deleted.len(), "collected unreferenced objects");
        }
        Ok(())
    }

    /// Deletes the objects in the store that no commit names and that are older than
    /// `gregor.object.orphan.age.ms`: uploads whose commit failed (`retention.rs`).
    async fn sweep_orphans(&self, db: &mut Client) -> Result<(), ClusterError> {
        let dir = Objects::path(&self.objects.objects_dir());
        let listed = self.objects.store.list_with_delimiter(Some(&dir)).await?;
        let cutoff = crate::log::now_ms().saturating_sub(self.config.orphan_age_ms as i64);
        let old: Vec<String> = listed
            .objects
            .iter()
            .filter(|o| o.last_modified.timestamp_millis() < cutoff)
            .map(|o| o.location.to_string())
            .collect();
        let mut swept = 0;
        for chunk in old.chunks(1000) {
            let keys = retention::sweep_orphans(&*db, chunk).await?;
            for key in keys {
                match self.objects.store.delete(&Objects::path(&key)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => swept += 1,
                    Err(e) => tracing::warn!(object = key, error = %e, "deleting an object failed"),
                }
            }
        }
        if swept > 0 {
            tracing::info!(objects = swept, "swept objects no commit names");
        }
        Ok(())
    }

    /// Merges small objects (`consolidation.rs`), a round at a time.
    async fn consolidate(&self, db: &mut Client) -> Result<(), ClusterError> {
        let merged = consolidation::consolidate(
            db,
            &self.objects,
            self.membership.me.node_id,
            self.config.consolidation_bytes,
        )
        .await?;
        if merged > 0 {
            tracing::info!(objects = merged, "consolidated small objects");
        }
        Ok(())
    }

    /// The first id of a fresh block of `size` producer ids.
    pub async fn producer_id_block(&self, size: i64) -> Result<i64, ClusterError> {
        Ok(metadata::producer_id_block(&*self.admin().await?, size).await?)
    }
}
