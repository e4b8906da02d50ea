//! The batch coordinator (KIP-1150's name): one PostgreSQL transaction commits an uploaded
//! object's batches. It takes the next commit number (which serialises commits), gives each
//! batch its offsets after its partition's `next_offset`, checks idempotent producers'
//! sequences against their state (Kafka's rules, `ProducerStateManager::check`), and
//! records batches, producer state and the new log end offsets. Nothing is visible until
//! the transaction commits, and then all of it is.

use std::collections::HashMap;

use tokio_postgres::Client;
use uuid::Uuid;

use crate::log::producer_state::{
    BatchMetadata, Check, ProducerEntry, ProducerError, ProducerStateManager,
};
use crate::log::record_batch::BatchHeader;

/// One batch of an uploaded object, as the produce buffer hands it over.
#[derive(Debug, Clone, Copy)]
pub struct ObjectBatch {
    pub topic_id: Uuid,
    pub partition: i32,
    /// Where the batch starts in the object.
    pub byte_offset: i64,
    pub header: BatchHeader,
    /// A coordinator's record batch: committed only while PostgreSQL's membership epoch is
    /// still this one, under which the writer leads the partition (the coordinator lease).
    pub fence_epoch: Option<i32>,
}

/// What became of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Committed at these offsets (or, for a retried idempotent batch, found there).
    Committed {
        base_offset: i64,
        last_offset: i64,
        log_start_offset: i64,
        /// A retried batch: the original's max timestamp as stored, which Kafka answers as
        /// the log append time of a duplicate (-1 if unknown).
        found_timestamp: Option<i64>,
    },
    /// The partition does not exist (any more).
    UnknownPartition,
    /// An idempotent producer's batch out of sequence or from a stale epoch.
    Producer(ProducerError),
    /// A coordinator's batch written under an older membership epoch: the partition may
    /// have another leader now, which may already have loaded it.
    Fenced,
}

/// The commit number and each batch's outcome, in the order given.
#[derive(Debug)]
pub struct CommitResult {
    /// `None` when no batch was appended (all refused or retries): nothing was recorded.
    pub commit_id: Option<i64>,
    pub outcomes: Vec<BatchOutcome>,
}

type PartitionKey = (Uuid, i32);

/// Commits `batches` of the object `object_key` (`size` bytes, uploaded by `node_id`).
pub async fn commit(
    client: &mut Client,
    object_key: &str,
    size: i64,
    node_id: i32,
    batches: &[ObjectBatch],
) -> Result<CommitResult, tokio_postgres::Error> {
    let txn = client.transaction().await?;
    let commit_id: i64 = txn
        .query_one(
            "UPDATE cluster SET last_commit = last_commit + 1 RETURNING last_commit",
            &[],
        )
        .await?
        .get(0);

    let mut keys: Vec<PartitionKey> = batches.iter().map(|b| (b.topic_id, b.partition)).collect();
    keys.sort_unstable();
    keys.dedup();
    let (topic_ids, partitions): (Vec<Uuid>, Vec<i32>) = keys.iter().copied().unzip();
    // Locked: a DeleteRecords or topic deletion in flight waits for this commit.
    let mut ends: HashMap<PartitionKey, (i64, i64)> = txn
        .query(
            "SELECT p.topic_id, p.partition, p.next_offset, p.log_start_offset
               FROM partitions p
               JOIN unnest($1::uuid[], $2::int4[]) AS k(topic_id, partition)
                 ON p.topic_id = k.topic_id AND p.partition = k.partition
                FOR UPDATE OF p",
            &[&topic_ids, &partitions],
        )
        .await?
        .iter()
        .map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3))))
        .collect();

    let mut producer_keys: Vec<(Uuid, i32, i64)> = batches
        .iter()
        .filter(|b| b.header.producer_id >= 0)
        .map(|b| (b.topic_id, b.partition, b.header.producer_id))
        .collect();
    producer_keys.sort_unstable();
    producer_keys.dedup();
    let mut producers: HashMap<PartitionKey, ProducerStateManager> = HashMap::new();
    if !producer_keys.is_empty() {
        let t: Vec<Uuid> = producer_keys.iter().map(|k| k.0).collect();
        let p: Vec<i32> = producer_keys.iter().map(|k| k.1).collect();
        let id: Vec<i64> = producer_keys.iter().map(|k| k.2).collect();
        let rows = txn
            .query(
                "SELECT s.topic_id, s.partition, s.producer_id, s.producer_epoch,
                        s.last_timestamp, s.batches, s.batch_timestamps
                   FROM producer_states s
                   JOIN unnest($1::uuid[], $2::int4[], $3::int8[]) AS k(t, p, id)
                     ON s.topic_id = k.t AND s.partition = k.p AND s.producer_id = k.id",
                &[&t, &p, &id],
            )
            .await?;
        let mut found: HashMap<PartitionKey, HashMap<i64, ProducerEntry>> = HashMap::new();
        for r in rows {
            let flat: Vec<i64> = r.get(5);
            let timestamps: Vec<i64> = r.get(6);
            let entry = ProducerEntry {
                epoch: r.get(3),
                last_timestamp: r.get(4),
                batches: flat
                    .chunks_exact(4)
                    .enumerate()
                    .map(|(i, c)| BatchMetadata {
                        first_seq: c[0] as i32,
                        last_seq: c[1] as i32,
                        first_offset: c[2],
                        last_offset: c[3],
                        timestamp: timestamps.get(i).copied().unwrap_or(-1),
                    })
                    .collect(),
                current_txn_first_offset: None,
            };
            found
                .entry((r.get(0), r.get(1)))
                .or_default()
                .insert(r.get(2), entry);
        }
        for (key, entries) in found {
            producers.insert(key, ProducerStateManager::from_producers(entries));
        }
    }

    // Shared, so a heartbeat that changes the live set (FOR UPDATE) waits for this commit or
    // this commit sees the new epoch: a new leader that waits for the commits made before
    // it saw the new epoch has every record the old leader was acknowledged for.
    let epoch: Option<i32> = if batches.iter().any(|b| b.fence_epoch.is_some()) {
        Some(
            txn.query_one("SELECT epoch FROM membership FOR SHARE", &[])
                .await?
                .get(0),
        )
    } else {
        None
    };

    let mut outcomes = Vec::with_capacity(batches.len());
    let mut appended: Vec<(usize, i64)> = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        if b.fence_epoch.is_some() && b.fence_epoch != epoch {
            outcomes.push(BatchOutcome::Fenced);
            continue;
        }
        let key = (b.topic_id, b.partition);
        let Some((next, start)) = ends.get_mut(&key) else {
            outcomes.push(BatchOutcome::UnknownPartition);
            continue;
        };
        let state = producers.entry(key).or_default();
        match state.check(&b.header) {
            Err(e) => outcomes.push(BatchOutcome::Producer(e)),
            Ok(Check::Duplicate {
                first_offset,
                last_offset,
                timestamp,
            }) => outcomes.push(BatchOutcome::Committed {
                base_offset: first_offset,
                last_offset,
                log_start_offset: *start,
                found_timestamp: Some(timestamp),
            }),
            Ok(Check::Append) => {
                let mut stored = b.header;
                stored.base_offset = *next;
                if stored.is_control() {
                    // A marker ends the transaction and carries the coordinator's epoch: a
                    // zombie's batch of an older epoch, verified before a fencing abort but
                    // committed after it, is refused (StaleEpoch) rather than reopening it.
                    state.end_txn(&stored, true);
                } else {
                    state.update(&stored);
                }
                *next = stored.next_offset();
                appended.push((i, stored.base_offset));
                outcomes.push(BatchOutcome::Committed {
                    base_offset: stored.base_offset,
                    last_offset: stored.last_offset(),
                    log_start_offset: *start,
                    found_timestamp: None,
                });
            }
        }
    }
    if appended.is_empty() {
        // Nothing to record; the object is left for the garbage collector.
        txn.rollback().await?;
        return Ok(CommitResult {
            commit_id: None,
            outcomes,
        });
    }

    txn.execute(
        "INSERT INTO objects (object_key, size, node_id, commit_id) VALUES ($1, $2, $3, $4)",
        &[&object_key, &size, &node_id, &commit_id],
    )
    .await?;
    let mut cols = BatchColumns::default();
    for &(i, base_offset) in &appended {
        let b = &batches[i];
        cols.topic_id.push(b.topic_id);
        cols.partition.push(b.partition);
        cols.base_offset.push(base_offset);
        cols.last_offset
            .push(base_offset + i64::from(b.header.last_offset_delta));
        cols.byte_offset.push(b.byte_offset);
        cols.byte_length.push(b.header.size() as i32);
        cols.max_timestamp.push(b.header.max_timestamp);
        cols.producer_id.push(b.header.producer_id);
    }
    txn.execute(
        "INSERT INTO batches (topic_id, partition, base_offset, last_offset, byte_offset,
                              byte_length, max_timestamp, producer_id, commit_id, object_key)
         SELECT *, $9::int8, $10::text
           FROM unnest($1::uuid[], $2::int4[], $3::int8[], $4::int8[], $5::int8[],
                       $6::int4[], $7::int8[], $8::int8[])",
        &[
            &cols.topic_id,
            &cols.partition,
            &cols.base_offset,
            &cols.last_offset,
            &cols.byte_offset,
            &cols.byte_length,
            &cols.max_timestamp,
            &cols.producer_id,
            &commit_id,
            &object_key,
        ],
    )
    .await?;

    let mut s = ProducerColumns::default();
    for &(topic_id, partition, producer_id) in &producer_keys {
        let Some(entry) = producers
            .get(&(topic_id, partition))
            .and_then(|m| m.producers().get(&producer_id))
        else {
            continue;
        };
        s.topic_id.push(topic_id);
        s.partition.push(partition);
        s.producer_id.push(producer_id);
        s.epoch.push(entry.epoch);
        s.last_timestamp.push(entry.last_timestamp);
        let flat: Vec<String> = entry
            .batches
            .iter()
            .flat_map(|b| {
                [
                    i64::from(b.first_seq),
                    i64::from(b.last_seq),
                    b.first_offset,
                    b.last_offset,
                ]
            })
            .map(|n| n.to_string())
            .collect();
        // One text per producer (`{1,2,...}`): a two-dimensional array cannot be unnested
        // row by row.
        s.batches.push(format!("{{{}}}", flat.join(",")));
        let timestamps: Vec<String> = entry
            .batches
            .iter()
            .map(|b| b.timestamp.to_string())
            .collect();
        s.batch_timestamps
            .push(format!("{{{}}}", timestamps.join(",")));
    }
    if !s.topic_id.is_empty() {
        txn.execute(
            "INSERT INTO producer_states
                 (topic_id, partition, producer_id, producer_epoch, last_timestamp, batches,
                  batch_timestamps)
             SELECT t, p, id, e, ts, b::int8[], bt::int8[]
               FROM unnest($1::uuid[], $2::int4[], $3::int8[], $4::int2[], $5::int8[],
                           $6::text[], $7::text[]) AS u(t, p, id, e, ts, b, bt)
             ON CONFLICT (topic_id, partition, producer_id) DO UPDATE
                SET producer_epoch = EXCLUDED.producer_epoch,
                    last_timestamp = EXCLUDED.last_timestamp,
                    batches = EXCLUDED.batches,
                    batch_timestamps = EXCLUDED.batch_timestamps",
            &[
                &s.topic_id,
                &s.partition,
                &s.producer_id,
                &s.epoch,
                &s.last_timestamp,
                &s.batches,
                &s.batch_timestamps,
            ],
        )
        .await?;
    }

    let (t, rest): (Vec<Uuid>, Vec<(i32, i64)>) = ends
        .drain()
        .map(|((t, p), (next, _))| (t, (p, next)))
        .unzip();
    let (p, next): (Vec<i32>, Vec<i64>) = rest.into_iter().unzip();
    txn.execute(
        "UPDATE partitions AS x SET next_offset = u.next
           FROM unnest($1::uuid[], $2::int4[], $3::int8[]) AS u(t, p, next)
          WHERE x.topic_id = u.t AND x.partition = u.p AND x.next_offset <> u.next",
        &[&t, &p, &next],
    )
    .await?;
    txn.commit().await?;
    Ok(CommitResult {
        commit_id: Some(commit_id),
        outcomes,
    })
}

#[derive(Default)]
struct BatchColumns {
    topic_id: Vec<Uuid>,
    partition: Vec<i32>,
    base_offset: Vec<i64>,
    last_offset: Vec<i64>,
    byte_offset: Vec<i64>,
    byte_length: Vec<i32>,
    max_timestamp: Vec<i64>,
    producer_id: Vec<i64>,
}

#[derive(Default)]
struct ProducerColumns {
    topic_id: Vec<Uuid>,
    partition: Vec<i32>,
    producer_id: Vec<i64>,
    epoch: Vec<i16>,
    last_timestamp: Vec<i64>,
    batches: Vec<String>,
    batch_timestamps: Vec<String>,
}
