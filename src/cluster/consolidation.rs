//! Consolidation (Inkless's name): small objects merged into larger ones in the background,
//! so that old data is read in large ranges. A broker uploads an object per buffer
//! interval, shared by every partition it produced to; merged, each partition's batches sit
//! together in order.
//!
//! The controller picks the oldest objects under half of `gregor.object.consolidation.bytes`
//! (up to that many bytes together), reads them, uploads one object with their batches
//! grouped by partition, and in one commit points the batches' coordinates at it. The old
//! objects are then unreferenced, and the collector (`retention.rs`) deletes them once every
//! live broker is past that commit. Replicas have nothing to do: they hold the batches
//! already, and a broker that catches up later reads them from the new object.

use std::collections::HashMap;

use bytes::Bytes;
use object_store::PutPayload;
use tokio_postgres::Client;
use uuid::Uuid;

use super::metadata::next_commit;
use super::objects::Objects;
use super::retention::mark_unreferenced;
use super::ClusterError;

/// At most this many objects are merged in one round.
const MAX_OBJECTS: i64 = 256;

/// One batch's coordinates, before and after.
struct Moved {
    topic_id: Uuid,
    partition: i32,
    base_offset: i64,
    old_key: String,
    new_offset: i64,
}

/// Merges the oldest small objects into one (of up to `target` bytes), if there are at least
/// two. Returns how many were merged.
pub async fn consolidate(
    db: &mut Client,
    objects: &Objects,
    node_id: i32,
    target: u64,
) -> Result<usize, ClusterError> {
    if target == 0 {
        return Ok(0);
    }
    let small = (target / 2) as i64;
    let candidates: Vec<(String, i64)> = db
        .query(
            "SELECT object_key, size FROM objects
              WHERE unreferenced_commit IS NULL AND swept_at IS NULL AND size < $1
              ORDER BY commit_id LIMIT $2",
            &[&small, &MAX_OBJECTS],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut chosen = Vec::new();
    let mut total = 0i64;
    for (key, size) in candidates {
        if total + size > target as i64 && chosen.len() >= 2 {
            break;
        }
        total += size;
        chosen.push(key);
    }
    if chosen.len() < 2 {
        return Ok(0);
    }
    // The batches still pointing at them, each partition's together and in order.
    let batches: Vec<(Uuid, i32, i64, String, i64, i32)> = db
        .query(
            "SELECT topic_id, partition, base_offset, object_key, byte_offset, byte_length
               FROM batches WHERE object_key = ANY($1)
              ORDER BY topic_id, partition, base_offset",
            &[&chosen],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    let mut contents: HashMap<&str, Bytes> = HashMap::new();
    for key in &chosen {
        let bytes = objects
            .store
            .get(&Objects::path(key))
            .await?
            .bytes()
            .await?;
        contents.insert(key.as_str(), bytes);
    }
    let mut parts = Vec::with_capacity(batches.len());
    let mut moved = Vec::with_capacity(batches.len());
    let mut at = 0i64;
    for (topic_id, partition, base_offset, key, byte_offset, byte_length) in &batches {
        let object = &contents[key.as_str()];
        let (start, end) = (
            *byte_offset as usize,
            (*byte_offset + i64::from(*byte_length)) as usize,
        );
        let Some(bytes) = (end <= object.len()).then(|| object.slice(start..end)) else {
            return Err(ClusterError::Corrupt(format!(
                "object {key} has {} bytes, a batch ends at {end}",
                object.len()
            )));
        };
        parts.push(bytes);
        moved.push(Moved {
            topic_id: *topic_id,
            partition: *partition,
            base_offset: *base_offset,
            old_key: key.clone(),
            new_offset: at,
        });
        at += i64::from(*byte_length);
    }
    let new_key = objects.new_object_key();
    if !parts.is_empty() {
        let payload: PutPayload = parts.into_iter().collect();
        objects.store.put(&Objects::path(&new_key), payload).await?;
    }

    let txn = db.transaction().await?;
    let commit_id = next_commit(&txn).await?;
    if !moved.is_empty() {
        txn.execute(
            "INSERT INTO objects (object_key, size, node_id, commit_id) VALUES ($1, $2, $3, $4)",
            &[&new_key, &at, &node_id, &commit_id],
        )
        .await?;
        let t: Vec<Uuid> = moved.iter().map(|m| m.topic_id).collect();
        let p: Vec<i32> = moved.iter().map(|m| m.partition).collect();
        let base: Vec<i64> = moved.iter().map(|m| m.base_offset).collect();
        let old: Vec<&str> = moved.iter().map(|m| m.old_key.as_str()).collect();
        let offset: Vec<i64> = moved.iter().map(|m| m.new_offset).collect();
        // A batch deleted (or moved) since it was read is left alone.
        txn.execute(
            "UPDATE batches b SET object_key = $6, byte_offset = u.o
               FROM unnest($1::uuid[], $2::int4[], $3::int8[], $4::text[], $5::int8[])
                    AS u(t, p, base, old, o)
              WHERE b.topic_id = u.t AND b.partition = u.p AND b.base_offset = u.base
                AND b.object_key = u.old",
            &[&t, &p, &base, &old, &offset, &new_key],
        )
        .await?;
    }
    let mut released = chosen.clone();
    released.push(new_key);
    mark_unreferenced(&txn, commit_id, released).await?;
    txn.commit().await?;
    Ok(chosen.len())
}
