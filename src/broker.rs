//! The state every request handler shares: configuration, the log manager, and the address
//! this broker advertises. Immutable after start-up; shared as `Arc<Broker>`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::BrokerConfig;
use crate::coordinator::internal_topic::ReplayError;
use crate::coordinator::GroupCoordinator;
use crate::log_manager::{LogManager, TopicError};
use crate::producer_ids::ProducerIdManager;
use crate::storage::Storage;
use crate::transaction::TransactionCoordinator;

/// Why the broker could not start, with the cause kept for `main` to print.
#[derive(Debug)]
pub enum StartError {
    /// The data directories could not be opened or recovered.
    Storage(TopicError),
    /// The producer-id block file could not be read or reserved.
    ProducerIds {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A start-up task panicked (a bug; its message is in the log).
    Task(tokio::task::JoinError),
    /// `__consumer_offsets` or `__transaction_state` could not be replayed.
    Replay(ReplayError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Storage(_) => f.write_str("cannot open the data directories"),
            StartError::ProducerIds { path, .. } => {
                write!(f, "cannot use the producer id block {}", path.display())
            }
            StartError::Task(_) => f.write_str("a start-up task failed"),
            StartError::Replay(_) => {
                f.write_str("cannot load the coordinators' state from their internal topics")
            }
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Storage(e) => Some(e),
            StartError::ProducerIds { source, .. } => Some(source),
            StartError::Task(e) => Some(e),
            StartError::Replay(e) => Some(e),
        }
    }
}

#[derive(Clone)]
pub struct Broker {
    pub config: Arc<BrokerConfig>,
    pub logs: Arc<LogManager>,
    pub groups: Arc<GroupCoordinator>,
    pub producer_ids: Arc<ProducerIdManager>,
    pub txns: Arc<TransactionCoordinator>,
    /// Host and port given to clients in Metadata (the bound port when configured as 0).
    pub advertised_host: String,
    pub advertised_port: u16,
}

impl Broker {
    /// Opens the data directories on `storage` (recovering after a crash), then the rest
    /// (see [`Broker::load`]).
    #[cfg(any(test, fuzzing))]
    pub async fn open(
        config: Arc<BrokerConfig>,
        storage: Arc<dyn Storage>,
        local: SocketAddr,
    ) -> Result<Broker, StartError> {
        let logs = Self::open_logs(config.clone(), storage).await?;
        Self::load(config, logs, local).await
    }

    /// Opens the data directories on `storage`, recovering after a crash.
    pub async fn open_logs(
        config: Arc<BrokerConfig>,
        storage: Arc<dyn Storage>,
    ) -> Result<Arc<LogManager>, StartError> {
        tokio::task::spawn_blocking(move || LogManager::open(config, storage))
            .await
            .map_err(StartError::Task)?
            .map_err(StartError::Storage)
            .map(Arc::new)
    }

    /// Loads the group and transaction coordinators from their internal topics in `logs`.
    /// `local` is the address the listener is bound to. An error says which part failed.
    pub async fn load(
        config: Arc<BrokerConfig>,
        logs: Arc<LogManager>,
        local: SocketAddr,
    ) -> Result<Broker, StartError> {
        let groups = {
            let (coordinator_config, logs) = (config.coordinator.clone(), logs.clone());
            tokio::task::spawn_blocking(move || GroupCoordinator::load(coordinator_config, logs))
                .await
                .map_err(StartError::Task)?
                .map(Arc::new)
                .map_err(StartError::Replay)?
        };
        let path = logs.metadata_dir().join("producer-id-block");
        let producer_ids = ProducerIdManager::open(logs.storage().clone(), path.clone())
            .map(Arc::new)
            .map_err(|source| StartError::ProducerIds { path, source })?;
        let txns = Arc::new(
            TransactionCoordinator::load(
                config.transactions.clone(),
                logs.clone(),
                groups.clone(),
                producer_ids.clone(),
            )
            .await
            .map_err(StartError::Replay)?,
        );
        let advertised = config.advertised();
        Ok(Broker {
            producer_ids,
            txns,
            logs,
            groups,
            advertised_host: if advertised.host.is_empty() {
                local.ip().to_string()
            } else {
                advertised.host.clone()
            },
            advertised_port: if advertised.port == 0 {
                local.port()
            } else {
                advertised.port
            },
            config,
        })
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }
}
