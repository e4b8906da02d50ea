//! The PostgreSQL schema, versioned in `migrations/` and applied at start-up: each file once,
//! in order, in one transaction under an advisory lock, so brokers starting together apply
//! it once. A database migrated by a newer Gregor is refused rather than misread.

use tokio_postgres::Client;

/// (version, SQL), in order. A released migration is never edited: a change is a new file.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_retention_and_files.sql")),
    (3, include_str!("migrations/0003_swept_objects.sql")),
    (4, include_str!("migrations/0004_commit_notifications.sql")),
    (5, include_str!("migrations/0005_batch_timestamps.sql")),
];

/// Any number that no other application using the database takes as its advisory lock.
const MIGRATION_LOCK: i64 = 0x6772_6567_6f72; // "gregor"

/// Applies the missing migrations and returns the cluster id (`candidate` when this call
/// created the cluster).
pub async fn migrate(client: &mut Client, candidate: &str) -> Result<String, SchemaError> {
    let txn = client.transaction().await?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    // Not a NOTICE per existing table in every broker's log.
    txn.batch_execute("SET LOCAL client_min_messages = warning")
        .await?;
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS gregor_migrations (
             version    integer     PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let applied: Vec<i32> = txn
        .query(
            "SELECT version FROM gregor_migrations ORDER BY version",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if let Some(&newest) = applied.iter().max() {
        if newest > known {
            return Err(SchemaError::Newer {
                found: newest,
                known,
            });
        }
    }
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        txn.batch_execute(sql).await?;
        txn.execute(
            "INSERT INTO gregor_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
        tracing::info!(version, "applied a cluster schema migration");
    }
    txn.execute(
        "INSERT INTO cluster (cluster_id) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&candidate],
    )
    .await?;
    let cluster_id: String = txn
        .query_one("SELECT cluster_id FROM cluster", &[])
        .await?
        .get(0);
    txn.commit().await?;
    Ok(cluster_id)
}

#[derive(Debug)]
pub enum SchemaError {
    Database(tokio_postgres::Error),
    /// The database was migrated by a newer Gregor.
    Newer {
        found: i32,
        known: i32,
    },
}

impl From<tokio_postgres::Error> for SchemaError {
    fn from(e: tokio_postgres::Error) -> SchemaError {
        SchemaError::Database(e)
    }
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchemaError::Database(_) => f.write_str("cannot migrate the cluster schema"),
            SchemaError::Newer { found, known } => write!(
                f,
                "the cluster schema is at version {found}, this Gregor knows up to {known}"
            ),
        }
    }
}

impl std::error::Error for SchemaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SchemaError::Database(e) => Some(e),
            SchemaError::Newer { .. } => None,
        }
    }
}
