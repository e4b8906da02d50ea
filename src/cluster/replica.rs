//! This broker's replica of the cluster: it follows PostgreSQL's commits in order (topic
//! creations and deletions, committed batches) and applies them to the local logs, which
//! are a cache of the object store. Fetch, ListOffsets and the rest then read local logs as
//! a single broker does (stored bytes, `sendfile`, long polls woken by the append).
//!
//! At start-up it makes the local topics those of PostgreSQL and, per partition, fetches
//! what was committed past the local log end offset; after that it asks for new commits
//! every `gregor.metadata.poll.ms`, or at once when a commit is announced (`wake`: this
//! broker committed, or `notifications.rs` heard another one).
//! `applied` is the last commit number applied: a produce is answered once its commit is.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{watch, Notify};
use tokio_postgres::{Client, IsolationLevel};
use uuid::Uuid;

use super::metadata::{self, BatchLocation, TopicEvent, TopicRecord};
use super::metadata_files::{self, FileEvent};
use super::objects::{ObjectCache, Objects};
use super::retention::{self, LogStartEvent};
use super::ClusterError;
use crate::log::record_batch::{assign_offset, BatchHeader, HEADER_SIZE};
use crate::log::{LogError, LEADER_EPOCH};
use crate::log_manager::{LogManager, Topic};

/// A read-only transaction that sees one state of the database throughout.
async fn snapshot(
    db: &mut Client,
) -> Result<tokio_postgres::Transaction<'_>, tokio_postgres::Error> {
    db.build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
}

/// Told of each batch the replica applies to an internal topic, in commit order: the
/// coordinators follow what other brokers' coordinators wrote this way.
pub trait Observer: Send + Sync {
    /// `batch` as the object holds it (its base offset not patched in).
    fn applied(&self, topic: &str, partition: i32, batch: &[u8]);

    /// The metadata file `name` (`__gregor_metadata/`) was rewritten: reload its store.
    fn file_changed(&self, name: &str);
}

pub struct Replica {
    /// This broker, whose applied commit is noted in PostgreSQL.
    pub node_id: i32,
    pub logs: Arc<LogManager>,
    pub objects: Objects,
    pub cache: Arc<ObjectCache>,
    pub applied: watch::Sender<i64>,
    pub wake: Arc<Notify>,
    pub poll: Duration,
    pub observer: Option<Arc<dyn Observer>>,
    /// Told of each topic deletion, to drop the topic's cached placement.
    pub membership: Arc<super::membership::Membership>,
}

/// A round's reads, from one snapshot of PostgreSQL.
struct Round {
    upto: i64,
    events: Vec<Event>,
    batches: Vec<BatchLocation>,
}

/// A commit other than batches, applied in commit order with them.
enum Event {
    Topic(TopicEvent),
    LogStart(LogStartEvent),
    File(FileEvent),
}

impl Event {
    fn commit_id(&self) -> i64 {
        match self {
            Event::Topic(e) => e.commit_id,
            Event::LogStart(e) => e.commit_id,
            Event::File(e) => e.commit_id,
        }
    }
}

/// Partitions whose next batch may start past their local end (`Log::append_replicated`).
type Jumps = HashSet<(Uuid, i32)>;

impl Replica {
    /// Makes the local logs those of PostgreSQL as of now (start-up, or after a gap).
    pub async fn catch_up(&self, db: &mut Client) -> Result<(), ClusterError> {
        let txn = snapshot(db).await?;
        let upto = metadata::last_commit(&txn).await?;
        let topics = metadata::topics(&txn).await?;
        let wanted: HashMap<Uuid, &TopicRecord> = topics.iter().map(|t| (t.topic_id, t)).collect();
        for local in self.logs.topics() {
            if !local.is_internal() && !wanted.contains_key(&local.id) {
                self.delete_local(&local.name, local.id).await?;
            }
        }
        for topic in &topics {
            self.create_local(topic).await?;
        }
        let mut ends = Vec::new();
        for topic in &topics {
            if let Some(local) = self.logs.topic_by_id(topic.topic_id) {
                for log in &local.partitions {
                    ends.push((
                        topic.topic_id,
                        log.topic_partition().partition,
                        log.log_end_offset(),
                    ));
                }
            }
        }
        let batches = metadata::batches_after(&txn, &ends, upto).await?;
        let starts = retention::log_starts(&txn).await?;
        let files = metadata_files::latest_files(&txn, upto).await?;
        txn.commit().await?;
        for file in &files {
            self.write_file(file).await?;
        }
        // Where the cluster deleted records past a local end while this broker was away,
        // the next batch starts after a hole.
        let jumps: Jumps = ends
            .iter()
            .filter(|(t, p, end)| starts.get(&(*t, *p)).is_some_and(|s| s > end))
            .map(|(t, p, _)| (*t, *p))
            .collect();
        self.apply_batches(&batches, &jumps).await?;
        for ((topic_id, partition), start) in starts {
            match self.move_log_start(topic_id, partition, start) {
                // Everything this replica has is below the start and nothing was committed
                // after it: the next batch jumps there (a Gap, then this catch-up again).
                Err(ClusterError::Gap(_)) => {}
                other => other?,
            }
        }
        self.applied.send_replace(upto);
        self.record_applied(db, upto).await;
        Ok(())
    }

    /// Follows commits until `shutdown`; reconnects after a database error.
    pub async fn run(self, url: String, mut db: Client, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.poll) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            let result = match self.round(&mut db).await {
                Err(ClusterError::Gap(e)) => {
                    tracing::warn!(error = %e, "a local log missed committed batches; catching up");
                    self.catch_up(&mut db).await
                }
                other => other,
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "replica round failed; retrying");
                tokio::time::sleep(self.poll.max(Duration::from_millis(200))).await;
                if db.is_closed() {
                    match super::connect(&url).await {
                        Ok(fresh) => db = fresh,
                        Err(e) => tracing::warn!(error = %e, "cannot reconnect to PostgreSQL"),
                    }
                }
            }
        }
    }

    async fn read_round(&self, db: &mut Client, after: i64) -> Result<Option<Round>, ClusterError> {
        let upto = metadata::last_commit(&*db).await?;
        if upto <= after {
            return Ok(None);
        }
        let txn = snapshot(db).await?;
        let mut events: Vec<Event> = metadata::topic_events(&txn, after, upto)
            .await?
            .into_iter()
            .map(Event::Topic)
            .chain(
                retention::log_start_events(&txn, after, upto)
                    .await?
                    .into_iter()
                    .map(Event::LogStart),
            )
            .chain(
                metadata_files::file_events(&txn, after, upto)
                    .await?
                    .into_iter()
                    .map(Event::File),
            )
            .collect();
        events.sort_by_key(Event::commit_id);
        let batches = metadata::batches_committed(&txn, after, upto).await?;
        txn.commit().await?;
        Ok(Some(Round {
            upto,
            events,
            batches,
        }))
    }

    /// Applies the commits after `applied`, in order.
    async fn round(&self, db: &mut Client) -> Result<(), ClusterError> {
        let after = *self.applied.borrow();
        let Some(round) = self.read_round(db, after).await? else {
            return Ok(());
        };
        // Events and batches interleave by commit number: apply the batches committed
        // before each event, then the event.
        let mut at = 0;
        let no_jumps = Jumps::new();
        for event in &round.events {
            let end = at
                + round.batches[at..]
                    .iter()
                    .take_while(|b| b.commit_id < event.commit_id())
                    .count();
            self.apply_batches(&round.batches[at..end], &no_jumps)
                .await?;
            at = end;
            match event {
                Event::Topic(e) if e.deleted => {
                    self.delete_local(&e.topic.name, e.topic.topic_id).await?;
                }
                Event::Topic(e) => self.create_local(&e.topic).await?,
                Event::LogStart(e) => {
                    self.move_log_start(e.topic_id, e.partition, e.log_start_offset)?;
                }
                Event::File(e) => self.write_file(e).await?,
            }
        }
        self.apply_batches(&round.batches[at..], &no_jumps).await?;
        self.applied.send_replace(round.upto);
        self.record_applied(db, round.upto).await;
        Ok(())
    }

    /// Tells the other brokers how far this one is (topic changes wait for every broker).
    /// Only a wait depends on it, so a failure is logged, and the next round tries again.
    async fn record_applied(&self, db: &Client, upto: i64) {
        if let Err(e) = metadata::record_applied(db, self.node_id, upto).await {
            tracing::warn!(error = %e, "could not record the applied commit");
        }
    }

    /// Makes the local topic what `topic` says: created with its id, or with more
    /// partitions or other config overrides than the local one has.
    async fn create_local(&self, topic: &TopicRecord) -> Result<(), ClusterError> {
        if let Some(local) = self.logs.topic(&topic.name) {
            if local.id == topic.topic_id {
                return self.update_local(&local, topic).await;
            }
            self.delete_local(&local.name, local.id).await?;
        }
        let (logs, topic) = (self.logs.clone(), topic.clone());
        tokio::task::spawn_blocking(move || {
            logs.create_topic_with_id(
                &topic.name,
                topic.partitions,
                1,
                topic.configs.clone(),
                Some(topic.topic_id),
            )
        })
        .await
        .map_err(|e| ClusterError::Local(e.to_string()))?
        .map_err(|e| ClusterError::Local(e.to_string()))?;
        Ok(())
    }

    async fn update_local(&self, local: &Topic, topic: &TopicRecord) -> Result<(), ClusterError> {
        let grow = local.partitions.len() < topic.partitions as usize;
        let reconfigure = local.configs != topic.configs;
        if !grow && !reconfigure {
            return Ok(());
        }
        let (logs, topic) = (self.logs.clone(), topic.clone());
        tokio::task::spawn_blocking(move || {
            if grow {
                logs.create_partitions(&topic.name, topic.partitions, false)?;
            }
            if reconfigure {
                logs.alter_topic_configs(&topic.name, topic.configs.clone(), false)?;
            }
            Ok::<(), crate::log_manager::TopicError>(())
        })
        .await
        .map_err(|e| ClusterError::Local(e.to_string()))?
        .map_err(|e| ClusterError::Local(e.to_string()))
    }

    async fn delete_local(&self, name: &str, id: Uuid) -> Result<(), ClusterError> {
        self.membership.forget(name);
        if self.logs.topic(name).is_none_or(|t| t.id != id) {
            return Ok(());
        }
        let (logs, name) = (self.logs.clone(), name.to_string());
        tokio::task::spawn_blocking(move || logs.delete_topic(&name))
            .await
            .map_err(|e| ClusterError::Local(e.to_string()))?
            .map_err(|e| ClusterError::Local(e.to_string()))?;
        Ok(())
    }

    /// Writes a metadata file's committed text locally (unless it is that already) and has
    /// its store reload it.
    async fn write_file(&self, file: &FileEvent) -> Result<(), ClusterError> {
        let storage = self.logs.storage().clone();
        let path = self.logs.metadata_dir().join(&file.name);
        let body = file.body.clone();
        let written = tokio::task::spawn_blocking(move || {
            if storage.exists(&path) && storage.read_to_string(&path).ok().as_deref() == Some(&body)
            {
                return Ok(false);
            }
            storage
                .write_atomically(&path, body.as_bytes())
                .map(|()| true)
        })
        .await
        .map_err(|e| ClusterError::Local(e.to_string()))?
        .map_err(|e| ClusterError::Local(format!("{}: {e}", file.name)))?;
        if written {
            if let Some(observer) = &self.observer {
                observer.file_changed(&file.name);
            }
        }
        Ok(())
    }

    /// Moves a local log's start offset to the cluster's (retention or DeleteRecords),
    /// deleting the local data below it.
    fn move_log_start(
        &self,
        topic_id: Uuid,
        partition: i32,
        start: i64,
    ) -> Result<(), ClusterError> {
        let Some(log) = self
            .logs
            .topic_by_id(topic_id)
            .and_then(|t| t.partition(partition).cloned())
        else {
            return Ok(()); // deleted since
        };
        if start <= log.log_start_offset() {
            return Ok(());
        }
        log.delete_records_before(start)
            .map_or_else(|e| local_failure(&log, e), |_| Ok(()))
    }

    /// Reads each object once for the batches it holds (or takes them from the cache) and
    /// appends them to their local logs with their committed offsets.
    async fn apply_batches(
        &self,
        batches: &[BatchLocation],
        jumps: &Jumps,
    ) -> Result<(), ClusterError> {
        // In slices that fit the cache together (a long catch-up would not).
        let limit = (self.cache.budget() / 4).max(1) as i64;
        let mut start = 0;
        while start < batches.len() {
            let mut bytes = 0i64;
            let end = start
                + batches[start..]
                    .iter()
                    .take_while(|b| {
                        bytes += i64::from(b.byte_length);
                        bytes <= limit
                    })
                    .count()
                    .max(1);
            self.apply_slice(&batches[start..end], jumps).await?;
            start = end;
        }
        Ok(())
    }

    async fn apply_slice(
        &self,
        batches: &[BatchLocation],
        jumps: &Jumps,
    ) -> Result<(), ClusterError> {
        // The span of each object that this round needs and the cache lacks.
        let mut spans: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for b in batches {
            let start = b.byte_offset as u64;
            let len = b.byte_length as usize;
            if self.cache.get(&b.object_key, start, len).is_none() {
                let span = spans.entry(&b.object_key).or_insert((start, start));
                span.0 = span.0.min(start);
                span.1 = span.1.max(start + len as u64);
            }
        }
        for (key, (start, end)) in spans {
            let bytes = self
                .objects
                .store
                .get_range(&Objects::path(key), start..end)
                .await?;
            if bytes.len() as u64 != end - start {
                return Err(ClusterError::Corrupt(format!(
                    "object {key}: asked for {} bytes at {start}, got {}",
                    end - start,
                    bytes.len()
                )));
            }
            self.cache.insert(key, start, bytes);
        }
        for b in batches {
            let len = b.byte_length as usize;
            let Some(bytes) = self.cache.get(&b.object_key, b.byte_offset as u64, len) else {
                return Err(ClusterError::Corrupt(format!(
                    "object {} lost its range {}+{len} from the cache (raise the cache budget)",
                    b.object_key, b.byte_offset
                )));
            };
            self.append(b, &bytes, jumps.contains(&(b.topic_id, b.partition)))?;
        }
        Ok(())
    }

    fn append(&self, b: &BatchLocation, bytes: &Bytes, jump: bool) -> Result<(), ClusterError> {
        let Some(log) = self
            .logs
            .topic_by_id(b.topic_id)
            .and_then(|t| t.partition(b.partition).cloned())
        else {
            // Deleted since (its deletion is a later commit); nothing to keep.
            return Ok(());
        };
        let Some(mut header) = BatchHeader::parse(bytes) else {
            return Err(ClusterError::Corrupt(format!(
                "object {} holds no batch header at {}",
                b.object_key, b.byte_offset
            )));
        };
        if header.size() != bytes.len()
            || header.next_offset() - header.base_offset != b.last_offset - b.base_offset + 1
        {
            return Err(ClusterError::Corrupt(format!(
                "object {} at {}: the batch does not match its coordinates",
                b.object_key, b.byte_offset
            )));
        }
        header.base_offset = b.base_offset;
        let mut head = [0u8; HEADER_SIZE];
        head.copy_from_slice(&bytes[..HEADER_SIZE]);
        assign_offset(&mut head, b.base_offset, LEADER_EPOCH);
        match log.append_replicated(&[&head, &bytes[HEADER_SIZE..]], &header, jump) {
            Ok(appended) => {
                let tp = log.topic_partition();
                if let Some(observer) = self.observer.as_ref().filter(|_| appended) {
                    if tp.topic.starts_with("__") {
                        observer.applied(&tp.topic, tp.partition, bytes);
                    }
                }
                Ok(())
            }
            Err(e) => local_failure(&log, e),
        }
    }
}

/// What a failed change of a local log means for the replica: a gap (it catches up from
/// PostgreSQL), nothing (a deleted or closing log: its deletion or the shutdown follows), or
/// an error.
fn local_failure(log: &crate::log::Log, e: LogError) -> Result<(), ClusterError> {
    match e {
        LogError::OffsetOutOfRange { .. } => {
            Err(ClusterError::Gap(format!("{}: {e}", log.topic_partition())))
        }
        LogError::Closed => Ok(()),
        e => Err(ClusterError::Local(format!(
            "{}: {e}",
            log.topic_partition()
        ))),
    }
}
