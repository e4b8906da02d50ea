//! The cluster's metadata in PostgreSQL: topics (created and deleted as numbered commits
//! that every broker replays), brokers and their heartbeats, producer id blocks, and the
//! reads a broker's replica makes to follow what was committed.

use std::collections::BTreeMap;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, GenericClient};
use uuid::Uuid;

/// A topic as PostgreSQL has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRecord {
    pub topic_id: Uuid,
    pub name: String,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

/// A topic created or deleted by commit `commit_id`.
#[derive(Debug, Clone)]
pub struct TopicEvent {
    pub commit_id: i64,
    pub topic: TopicRecord,
    pub deleted: bool,
}

/// Where a committed batch is.
#[derive(Debug, Clone)]
pub struct BatchLocation {
    pub commit_id: i64,
    pub topic_id: Uuid,
    pub partition: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub object_key: String,
    pub byte_offset: i64,
    pub byte_length: i32,
}

/// A live broker: its id, listeners and rack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRecord {
    pub node_id: i32,
    /// (listener, host, port)
    pub endpoints: Vec<(String, String, u16)>,
    pub rack: Option<String>,
}

#[cfg(test)]
impl BrokerRecord {
    /// Live brokers with these node ids, no listeners and no rack: for placement tests.
    pub fn numbered(ids: &[i32]) -> Vec<BrokerRecord> {
        ids.iter()
            .map(|&node_id| BrokerRecord {
                node_id,
                endpoints: Vec::new(),
                rack: None,
            })
            .collect()
    }
}

fn configs_to_text(configs: &BTreeMap<String, String>) -> String {
    serde_json::to_string(configs).expect("a map of strings serialises")
}

fn configs_from_text(text: &str) -> BTreeMap<String, String> {
    serde_json::from_str(text).unwrap_or_default()
}

pub(super) async fn next_commit(txn: &impl GenericClient) -> Result<i64, tokio_postgres::Error> {
    Ok(txn
        .query_one(
            "UPDATE cluster SET last_commit = last_commit + 1 RETURNING last_commit",
            &[],
        )
        .await?
        .get(0))
}

/// Creates a topic with its partitions. `Ok(false)`: the name is taken.
pub async fn create_topic(
    client: &mut Client,
    topic: &TopicRecord,
) -> Result<bool, tokio_postgres::Error> {
    let txn = client.transaction().await?;
    let commit_id = next_commit(&txn).await?;
    let configs = configs_to_text(&topic.configs);
    let inserted = txn
        .execute(
            "INSERT INTO topics (topic_id, name, partitions, configs, commit_id)
             VALUES ($1, $2, $3, $4::text::jsonb, $5)",
            &[
                &topic.topic_id,
                &topic.name,
                &topic.partitions,
                &configs,
                &commit_id,
            ],
        )
        .await;
    match inserted {
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => return Ok(false),
        r => r?,
    };
    txn.execute(
        "INSERT INTO partitions (topic_id, partition)
         SELECT $1, p FROM generate_series(0, $2 - 1) AS p",
        &[&topic.topic_id, &topic.partitions],
    )
    .await?;
    insert_topic_event(&txn, commit_id, topic, &configs, false).await?;
    txn.commit().await?;
    Ok(true)
}

/// Deletes a topic and the coordinates of its batches (their objects become garbage).
/// `Ok(None)`: no such topic.
pub async fn delete_topic(
    client: &mut Client,
    name: &str,
) -> Result<Option<TopicRecord>, tokio_postgres::Error> {
    let txn = client.transaction().await?;
    let commit_id = next_commit(&txn).await?;
    let Some(row) = txn
        .query_opt(
            "DELETE FROM topics WHERE name = $1
             RETURNING topic_id, name, partitions, configs::text",
            &[&name],
        )
        .await?
    else {
        return Ok(None);
    };
    let topic = TopicRecord {
        topic_id: row.get(0),
        name: row.get(1),
        partitions: row.get(2),
        configs: configs_from_text(row.get(3)),
    };
    let unreferenced: Vec<String> = txn
        .query(
            "DELETE FROM batches WHERE topic_id = $1 RETURNING object_key",
            &[&topic.topic_id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    super::retention::mark_unreferenced(&txn, commit_id, unreferenced).await?;
    txn.execute(
        "DELETE FROM producer_states WHERE topic_id = $1",
        &[&topic.topic_id],
    )
    .await?;
    insert_topic_event(&txn, commit_id, &topic, "{}", true).await?;
    txn.commit().await?;
    Ok(Some(topic))
}

/// Notes the last commit broker `node_id`'s replica applied.
pub async fn record_applied(
    client: &impl GenericClient,
    node_id: i32,
    commit: i64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE brokers SET applied_commit = $2 WHERE node_id = $1 AND applied_commit < $2",
            &[&node_id, &commit],
        )
        .await?;
    Ok(())
}

/// How many live brokers have not applied commit `commit` yet.
pub async fn brokers_behind(
    client: &impl GenericClient,
    commit: i64,
) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT count(*) FROM brokers WHERE alive AND applied_commit < $1",
            &[&commit],
        )
        .await?
        .get(0))
}

/// Records a topic's new state (or its deletion) for every replica to apply in commit order.
async fn insert_topic_event(
    txn: &impl GenericClient,
    commit_id: i64,
    topic: &TopicRecord,
    configs_json: &str,
    deleted: bool,
) -> Result<(), tokio_postgres::Error> {
    txn.execute(
        "INSERT INTO topic_events (commit_id, topic_id, name, partitions, configs, deleted)
         VALUES ($1, $2, $3, $4, $5::text::jsonb, $6)",
        &[
            &commit_id,
            &topic.topic_id,
            &topic.name,
            &topic.partitions,
            &configs_json,
            &deleted,
        ],
    )
    .await?;
    Ok(())
}

/// What became of a topic change.
#[derive(Debug)]
pub enum TopicUpdate {
    /// Committed: the topic as it now is.
    Updated(TopicRecord),
    UnknownTopic,
    /// CreatePartitions to no more partitions than the topic has (it has this many).
    PartitionsNotIncreased(i32),
}

/// Changes a topic's partition count (only up) or its config overrides, as a commit that
/// every broker replays: the topic event carries the topic's whole new state.
pub async fn update_topic(
    client: &mut Client,
    name: &str,
    partitions: Option<i32>,
    configs: Option<&BTreeMap<String, String>>,
) -> Result<TopicUpdate, tokio_postgres::Error> {
    let txn = client.transaction().await?;
    let commit_id = next_commit(&txn).await?;
    let Some(row) = txn
        .query_opt(
            "SELECT topic_id, partitions, configs::text FROM topics WHERE name = $1 FOR UPDATE",
            &[&name],
        )
        .await?
    else {
        return Ok(TopicUpdate::UnknownTopic);
    };
    let current: i32 = row.get(1);
    let mut topic = TopicRecord {
        topic_id: row.get(0),
        name: name.to_string(),
        partitions: current,
        configs: configs_from_text(row.get(2)),
    };
    if let Some(count) = partitions {
        if count <= current {
            return Ok(TopicUpdate::PartitionsNotIncreased(current));
        }
        txn.execute(
            "INSERT INTO partitions (topic_id, partition)
             SELECT $1, p FROM generate_series($2, $3 - 1) AS p",
            &[&topic.topic_id, &current, &count],
        )
        .await?;
        topic.partitions = count;
    }
    if let Some(configs) = configs {
        topic.configs = configs.clone();
    }
    let text = configs_to_text(&topic.configs);
    txn.execute(
        "UPDATE topics SET partitions = $2, configs = $3::text::jsonb, commit_id = $4
          WHERE topic_id = $1",
        &[&topic.topic_id, &topic.partitions, &text, &commit_id],
    )
    .await?;
    insert_topic_event(&txn, commit_id, &topic, &text, false).await?;
    txn.commit().await?;
    Ok(TopicUpdate::Updated(topic))
}

pub async fn topics(
    client: &impl GenericClient,
) -> Result<Vec<TopicRecord>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT topic_id, name, partitions, configs::text FROM topics ORDER BY name",
            &[],
        )
        .await?
        .iter()
        .map(|r| TopicRecord {
            topic_id: r.get(0),
            name: r.get(1),
            partitions: r.get(2),
            configs: configs_from_text(r.get(3)),
        })
        .collect())
}

pub async fn last_commit(client: &impl GenericClient) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT last_commit FROM cluster", &[])
        .await?
        .get(0))
}

/// Topic events numbered in `(after, upto]`, in order.
pub async fn topic_events(
    client: &impl GenericClient,
    after: i64,
    upto: i64,
) -> Result<Vec<TopicEvent>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT commit_id, topic_id, name, partitions, configs::text, deleted
               FROM topic_events WHERE commit_id > $1 AND commit_id <= $2
              ORDER BY commit_id",
            &[&after, &upto],
        )
        .await?
        .iter()
        .map(|r| TopicEvent {
            commit_id: r.get(0),
            topic: TopicRecord {
                topic_id: r.get(1),
                name: r.get(2),
                partitions: r.get(3),
                configs: configs_from_text(r.get(4)),
            },
            deleted: r.get(5),
        })
        .collect())
}

fn location(r: &tokio_postgres::Row) -> BatchLocation {
    BatchLocation {
        commit_id: r.get(0),
        topic_id: r.get(1),
        partition: r.get(2),
        base_offset: r.get(3),
        last_offset: r.get(4),
        object_key: r.get(5),
        byte_offset: r.get(6),
        byte_length: r.get(7),
    }
}

const LOCATION_COLUMNS: &str =
    "b.commit_id, b.topic_id, b.partition, b.base_offset, b.last_offset, b.object_key, b.byte_offset, b.byte_length";

/// Batches committed in `(after, upto]`, in commit and offset order.
pub async fn batches_committed(
    client: &impl GenericClient,
    after: i64,
    upto: i64,
) -> Result<Vec<BatchLocation>, tokio_postgres::Error> {
    Ok(client
        .query(
            &format!(
                "SELECT {LOCATION_COLUMNS} FROM batches b
                  WHERE b.commit_id > $1 AND b.commit_id <= $2
                  ORDER BY b.commit_id, b.topic_id, b.partition, b.base_offset"
            ),
            &[&after, &upto],
        )
        .await?
        .iter()
        .map(location)
        .collect())
}

/// The batches of each partition from its local end offset on, committed up to `upto`
/// (a replica catching up at start-up), in commit and offset order.
pub async fn batches_after(
    client: &impl GenericClient,
    ends: &[(Uuid, i32, i64)],
    upto: i64,
) -> Result<Vec<BatchLocation>, tokio_postgres::Error> {
    let t: Vec<Uuid> = ends.iter().map(|e| e.0).collect();
    let p: Vec<i32> = ends.iter().map(|e| e.1).collect();
    let end: Vec<i64> = ends.iter().map(|e| e.2).collect();
    Ok(client
        .query(
            &format!(
                "SELECT {LOCATION_COLUMNS} FROM batches b
                   JOIN unnest($1::uuid[], $2::int4[], $3::int8[]) AS k(t, p, e)
                     ON b.topic_id = k.t AND b.partition = k.p AND b.last_offset >= k.e
                  WHERE b.commit_id <= $4
                  ORDER BY b.commit_id, b.topic_id, b.partition, b.base_offset"
            ),
            &[&t, &p, &end, &upto],
        )
        .await?
        .iter()
        .map(location)
        .collect())
}

/// One heartbeat, in one transaction serialised on the membership row: records this broker
/// and the last commit its replica applied (a new incarnation, a broker back from the dead
/// or new endpoints changes the live set), marks the brokers silent for
/// `session_timeout_ms` dead, bumps the membership epoch if the live set changed, and
/// returns the epoch with the live brokers by node id.
pub async fn heartbeat(
    client: &mut Client,
    broker: &BrokerRecord,
    incarnation: Uuid,
    applied_commit: i64,
    session_timeout_ms: u64,
) -> Result<(i32, Vec<BrokerRecord>), tokio_postgres::Error> {
    let endpoints: Vec<serde_json::Value> = broker
        .endpoints
        .iter()
        .map(|(l, h, p)| serde_json::json!({"listener": l, "host": h, "port": p}))
        .collect();
    let endpoints = serde_json::Value::Array(endpoints).to_string();
    let timeout = session_timeout_ms as f64 / 1000.0;
    let txn = client.transaction().await?;
    let mut epoch: i32 = txn
        .query_one("SELECT epoch FROM membership FOR UPDATE", &[])
        .await?
        .get(0);
    let unchanged = txn
        .query_opt(
            "SELECT 1 FROM brokers
              WHERE node_id = $1 AND incarnation = $2 AND alive
                AND endpoints = $3::text::jsonb AND rack IS NOT DISTINCT FROM $4",
            &[&broker.node_id, &incarnation, &endpoints, &broker.rack],
        )
        .await?
        .is_some();
    txn.execute(
        "INSERT INTO brokers (node_id, endpoints, rack, incarnation, heartbeat_at, alive,
                              applied_commit)
         VALUES ($1, $2::text::jsonb, $3, $4, now(), true, $5)
         ON CONFLICT (node_id) DO UPDATE
            SET endpoints = EXCLUDED.endpoints, rack = EXCLUDED.rack,
                incarnation = EXCLUDED.incarnation, heartbeat_at = now(), alive = true,
                applied_commit = CASE WHEN brokers.incarnation = EXCLUDED.incarnation
                                      THEN greatest(brokers.applied_commit, EXCLUDED.applied_commit)
                                      ELSE EXCLUDED.applied_commit END",
        &[
            &broker.node_id,
            &endpoints,
            &broker.rack,
            &incarnation,
            &applied_commit,
        ],
    )
    .await?;
    let expired = txn
        .execute(
            "UPDATE brokers SET alive = false
              WHERE alive AND heartbeat_at <= now() - make_interval(secs => $1)",
            &[&timeout],
        )
        .await?;
    if !unchanged || expired > 0 {
        epoch = txn
            .query_one(
                "UPDATE membership SET epoch = epoch + 1 RETURNING epoch",
                &[],
            )
            .await?
            .get(0);
    }
    let rows = txn
        .query(
            "SELECT node_id, endpoints::text, rack FROM brokers WHERE alive ORDER BY node_id",
            &[],
        )
        .await?;
    txn.commit().await?;
    Ok((epoch, rows.iter().map(broker_record).collect()))
}

/// Leaves the cluster at a clean shutdown (others stop naming this broker at once).
pub async fn unregister(
    client: &mut Client,
    node_id: i32,
    incarnation: Uuid,
) -> Result<(), tokio_postgres::Error> {
    let txn = client.transaction().await?;
    txn.execute("SELECT epoch FROM membership FOR UPDATE", &[])
        .await?;
    let removed = txn
        .execute(
            "DELETE FROM brokers WHERE node_id = $1 AND incarnation = $2 AND alive",
            &[&node_id, &incarnation],
        )
        .await?;
    if removed > 0 {
        txn.execute("UPDATE membership SET epoch = epoch + 1", &[])
            .await?;
    }
    txn.commit().await
}

/// A `brokers` row (node_id, endpoints as text, rack) as a record.
fn broker_record(r: &tokio_postgres::Row) -> BrokerRecord {
    let text: String = r.get(1);
    let endpoints = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| {
            Some((
                e.get("listener")?.as_str()?.to_string(),
                e.get("host")?.as_str()?.to_string(),
                u16::try_from(e.get("port")?.as_u64()?).ok()?,
            ))
        })
        .collect();
    BrokerRecord {
        node_id: r.get(0),
        endpoints,
        rack: r.get(2),
    }
}

/// The first id of a block of producer ids no broker has had.
pub async fn producer_id_block(
    client: &impl GenericClient,
    block_size: i64,
) -> Result<i64, tokio_postgres::Error> {
    let block: i64 = client
        .query_one("SELECT nextval('producer_id_blocks')", &[])
        .await?
        .get(0);
    Ok(block * block_size)
}
