//! Deleting data in cluster mode (docs/cluster.md). DeleteRecords and retention
//! (`retention.ms`, `retention.bytes`) move a partition's log start offset in PostgreSQL
//! and delete the coordinates of the batches wholly below it, in one commit that every
//! replica replays (`log_start_events`: each deletes its local data below the new start).
//! An object whose last batch went (here, or with its topic) is marked with that commit;
//! once every live broker has applied it no replica reads the object again, and the
//! collector deletes it: from the store first, then its row. An object a committed
//! coordinate points to is never deleted.
//!
//! An object no commit names (its upload succeeded, its commit failed) is swept once it is
//! `gregor.object.orphan.age.ms` old: its row is inserted as a tombstone first, so that a
//! commit still in flight fails on the key rather than point at deleted bytes.

use std::collections::HashMap;

use tokio_postgres::{Client, GenericClient};
use uuid::Uuid;

use super::metadata::next_commit;

/// A partition's log start offset moved (in commit `commit_id`).
#[derive(Debug, Clone)]
pub struct LogStartEvent {
    pub commit_id: i64,
    pub topic_id: Uuid,
    pub partition: i32,
    pub log_start_offset: i64,
}

/// What became of one partition's deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// The log start offset (the low watermark) is now this.
    Moved(i64),
    /// The offset is past the high watermark (or negative).
    OutOfRange,
    UnknownPartition,
}

/// Moves the log start offset of each (topic id, partition) to its offset (-1: the high
/// watermark), in one commit; answers in the order given.
pub async fn delete_records(
    client: &mut Client,
    requests: &[(Uuid, i32, i64)],
) -> Result<Vec<Deletion>, tokio_postgres::Error> {
    let txn = client.transaction().await?;
    let commit_id = next_commit(&txn).await?;
    let t: Vec<Uuid> = requests.iter().map(|r| r.0).collect();
    let p: Vec<i32> = requests.iter().map(|r| r.1).collect();
    // Locked: a batch commit in flight on these partitions waits, or goes first.
    let bounds: HashMap<(Uuid, i32), (i64, i64)> = txn
        .query(
            "SELECT x.topic_id, x.partition, x.next_offset, x.log_start_offset
               FROM partitions x
               JOIN unnest($1::uuid[], $2::int4[]) AS k(t, p)
                 ON x.topic_id = k.t AND x.partition = k.p
                FOR UPDATE OF x",
            &[&t, &p],
        )
        .await?
        .iter()
        .map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3))))
        .collect();
    let mut moves: HashMap<(Uuid, i32), i64> = HashMap::new();
    let outcomes = requests
        .iter()
        .map(|&(topic_id, partition, offset)| {
            let Some(&(next, start)) = bounds.get(&(topic_id, partition)) else {
                return Deletion::UnknownPartition;
            };
            let target = if offset == -1 { next } else { offset };
            if target < 0 || target > next {
                return Deletion::OutOfRange;
            }
            let moved = moves.entry((topic_id, partition)).or_insert(start);
            *moved = (*moved).max(target);
            Deletion::Moved(start.max(target))
        })
        .collect();
    moves.retain(|k, target| bounds.get(k).is_some_and(|b| *target > b.1));
    if moves.is_empty() {
        txn.rollback().await?;
        return Ok(outcomes);
    }
    let mut t = Vec::new();
    let mut p = Vec::new();
    let mut start = Vec::new();
    for ((topic_id, partition), target) in moves {
        t.push(topic_id);
        p.push(partition);
        start.push(target);
    }
    txn.execute(
        "UPDATE partitions AS x SET log_start_offset = u.s
           FROM unnest($1::uuid[], $2::int4[], $3::int8[]) AS u(t, p, s)
          WHERE x.topic_id = u.t AND x.partition = u.p",
        &[&t, &p, &start],
    )
    .await?;
    let unreferenced: Vec<String> = txn
        .query(
            "DELETE FROM batches b
               USING unnest($1::uuid[], $2::int4[], $3::int8[]) AS u(t, p, s)
              WHERE b.topic_id = u.t AND b.partition = u.p AND b.last_offset < u.s
          RETURNING b.object_key",
            &[&t, &p, &start],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    mark_unreferenced(&txn, commit_id, unreferenced).await?;
    txn.execute(
        "INSERT INTO log_start_events (commit_id, topic_id, partition, log_start_offset)
         SELECT $1, t, p, s FROM unnest($2::uuid[], $3::int4[], $4::int8[]) AS u(t, p, s)",
        &[&commit_id, &t, &p, &start],
    )
    .await?;
    txn.commit().await?;
    Ok(outcomes)
}

/// Notes commit `commit_id` on the objects among `keys` that no batch points to any more.
pub async fn mark_unreferenced(
    txn: &impl GenericClient,
    commit_id: i64,
    mut keys: Vec<String>,
) -> Result<(), tokio_postgres::Error> {
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(());
    }
    txn.execute(
        "UPDATE objects o SET unreferenced_commit = $1
          WHERE o.object_key = ANY($2) AND o.unreferenced_commit IS NULL
            AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.object_key = o.object_key)",
        &[&commit_id, &keys],
    )
    .await?;
    Ok(())
}

/// The log start offset retention gives a partition (None: nothing to delete): past the
/// oldest batches whose newest record is older than `cutoff_ms` (up to the first newer
/// one; batches without timestamps stay), and past the oldest batches while the rest
/// holds more than `retention_bytes`, keeping at least the newest batch.
pub async fn retention_target(
    client: &impl GenericClient,
    topic_id: Uuid,
    partition: i32,
    cutoff_ms: Option<i64>,
    retention_bytes: Option<i64>,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let Some(row) = client
        .query_opt(
            "SELECT next_offset, log_start_offset FROM partitions
              WHERE topic_id = $1 AND partition = $2",
            &[&topic_id, &partition],
        )
        .await?
    else {
        return Ok(None);
    };
    let (next, start): (i64, i64) = (row.get(0), row.get(1));
    let mut target = start;
    if let Some(cutoff) = cutoff_ms {
        let first_kept: Option<i64> = client
            .query_one(
                "SELECT min(base_offset) FROM batches
                  WHERE topic_id = $1 AND partition = $2
                    AND (max_timestamp >= $3 OR max_timestamp < 0)",
                &[&topic_id, &partition, &cutoff],
            )
            .await?
            .get(0);
        target = target.max(first_kept.unwrap_or(next));
    }
    if let Some(bytes) = retention_bytes {
        let first_kept: Option<i64> = client
            .query_opt(
                "SELECT base_offset FROM (
                     SELECT base_offset,
                            sum(byte_length) OVER (ORDER BY base_offset DESC) AS tail,
                            row_number() OVER (ORDER BY base_offset DESC) AS n
                       FROM batches WHERE topic_id = $1 AND partition = $2) s
                  WHERE s.tail <= $3 OR s.n = 1
                  ORDER BY base_offset LIMIT 1",
                &[&topic_id, &partition, &bytes],
            )
            .await?
            .map(|r| r.get(0));
        if let Some(kept) = first_kept {
            target = target.max(kept);
        }
    }
    Ok((target > start).then_some(target))
}

/// Log start offsets moved in `(after, upto]`, in commit order.
pub async fn log_start_events(
    client: &impl GenericClient,
    after: i64,
    upto: i64,
) -> Result<Vec<LogStartEvent>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT commit_id, topic_id, partition, log_start_offset FROM log_start_events
              WHERE commit_id > $1 AND commit_id <= $2
              ORDER BY commit_id, topic_id, partition",
            &[&after, &upto],
        )
        .await?
        .iter()
        .map(|r| LogStartEvent {
            commit_id: r.get(0),
            topic_id: r.get(1),
            partition: r.get(2),
            log_start_offset: r.get(3),
        })
        .collect())
}

/// Every partition's log start offset (a replica catching up).
pub async fn log_starts(
    client: &impl GenericClient,
) -> Result<HashMap<(Uuid, i32), i64>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT topic_id, partition, log_start_offset FROM partitions",
            &[],
        )
        .await?
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect())
}

/// Up to `limit` objects no batch points to, unreferenced by a commit every live broker
/// has applied.
pub async fn collectable_objects(
    client: &impl GenericClient,
    limit: i64,
) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT object_key FROM objects
              WHERE unreferenced_commit <=
                    (SELECT coalesce(min(applied_commit), 0) FROM brokers WHERE alive)
              ORDER BY unreferenced_commit LIMIT $1",
            &[&limit],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Forgets collected objects (deleted from the store already).
pub async fn forget_objects(
    client: &impl GenericClient,
    keys: &[String],
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "DELETE FROM objects o WHERE o.object_key = ANY($1)
                AND o.unreferenced_commit IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.object_key = o.object_key)",
            &[&keys],
        )
        .await
}

/// Of `keys` (objects found in the store, old enough), claims those that no commit names
/// as swept, and returns every one of them that is swept, now or by an earlier sweep: the
/// caller deletes those from the store. The claim is committed before it returns, and it
/// contends with a commit of the same key on the primary key, so exactly one of the two
/// wins: a committed object is never swept, and a swept key is never committed.
pub async fn sweep_orphans(
    client: &impl GenericClient,
    keys: &[String],
) -> Result<Vec<String>, tokio_postgres::Error> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    client
        .execute(
            "INSERT INTO objects (object_key, size, node_id, commit_id, swept_at)
             SELECT k, 0, -1, 0, now() FROM unnest($1::text[]) AS k
             ON CONFLICT (object_key) DO NOTHING",
            &[&keys],
        )
        .await?;
    Ok(client
        .query(
            "SELECT object_key FROM objects
              WHERE object_key = ANY($1) AND swept_at IS NOT NULL",
            &[&keys],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
