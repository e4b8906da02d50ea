//! The state every request handler shares: configuration, the log manager, the coordinators,
//! the share groups' records, the SCRAM credentials, the ACLs, and the address each
//! listener advertises. Immutable after start-up; shared as `Arc<Broker>`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::BrokerConfig;
use crate::coordinator::group_configs::GroupConfigs;
use crate::coordinator::internal_topic::ReplayError;
use crate::coordinator::GroupCoordinator;
use crate::log_manager::{LogManager, TopicError};
use crate::producer_ids::ProducerIdManager;
use crate::security::acl_store::AclStoreError;
use crate::security::authorizer::Authorizer;
use crate::security::credentials::{CredentialError, CredentialStore};
use crate::security::tls::TlsError;
use crate::share::state_store::ShareStateStore;
use crate::share::ShareManager;
use crate::storage::Storage;
use crate::transaction::TransactionCoordinator;

/// This machine's host name (a container's name in its network), for listeners bound to
/// every interface; `localhost` if the kernel does not say.
fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

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
    /// The SCRAM credentials file could not be read.
    Credentials(CredentialError),
    /// A TLS listener's keystore or truststore does not load.
    Tls(TlsError),
    /// The ACL file could not be read.
    Acls(AclStoreError),
    /// The group configs file could not be read.
    GroupConfigs(crate::security::metadata_file::MetadataFileError),
    /// Cluster mode: PostgreSQL or the object store cannot be used.
    Cluster(crate::cluster::ClusterError),
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
            StartError::Credentials(_) => f.write_str("cannot read the SCRAM credentials"),
            StartError::Tls(_) => f.write_str("cannot set up a TLS listener"),
            StartError::Acls(_) => f.write_str("cannot read the ACLs"),
            StartError::GroupConfigs(_) => f.write_str("cannot read the group configs"),
            StartError::Cluster(_) => f.write_str("cannot join the cluster"),
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
            StartError::Credentials(e) => Some(e),
            StartError::Tls(e) => Some(e),
            StartError::Acls(e) => Some(e),
            StartError::GroupConfigs(e) => Some(e),
            StartError::Cluster(e) => Some(e),
        }
    }
}

#[derive(Clone)]
pub struct Broker {
    pub config: Arc<BrokerConfig>,
    pub logs: Arc<LogManager>,
    pub groups: Arc<GroupCoordinator>,
    /// Share groups' share-partitions and sessions (ShareFetch, ShareAcknowledge).
    pub shares: Arc<ShareManager>,
    pub producer_ids: Arc<ProducerIdManager>,
    pub txns: Arc<TransactionCoordinator>,
    /// Each listener's advertised address, in `listeners` order (the bound address where
    /// configured with an empty host or port 0). Metadata, FindCoordinator and
    /// DescribeCluster answer with the endpoint of the listener the request came through.
    pub endpoints: Vec<Endpoint>,
    /// SCRAM credentials (AlterUserScramCredentials; checked by SCRAM listeners).
    pub credentials: Arc<CredentialStore>,
    /// The ACLs and their settings, when `authorizer.class.name` is set.
    pub authorizer: Option<Arc<Authorizer>>,
    /// Cluster mode (`gregor.storage: cluster`): the shared storage and the other brokers.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// A broker as Metadata and DescribeCluster list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

/// A listener as clients are told to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub listener: String,
    pub protocol: crate::config::SecurityProtocol,
    pub host: String,
    pub port: u16,
}

impl Broker {
    /// The cluster id clients see: PostgreSQL's in cluster mode, else `meta.properties`'.
    pub fn cluster_id(&self) -> &str {
        match &self.cluster {
            Some(cluster) => &cluster.cluster_id,
            None => self.logs.cluster_id(),
        }
    }

    /// Runs `change`, a store's update of its metadata file at `path` (ACLs, SCRAM
    /// credentials, group configs): here, or in cluster mode under the cluster's lock for
    /// that file and for every broker (`cluster/metadata_files.rs`). A failure of the
    /// cluster becomes `failed(error)`; `reload` puts the store back after one.
    pub async fn change_metadata_file<R, E>(
        &self,
        path: &std::path::Path,
        change: impl FnOnce() -> Result<R, E>,
        reload: impl FnOnce(),
        failed: impl FnOnce(crate::cluster::ClusterError) -> E,
    ) -> Result<R, E> {
        let Some(cluster) = &self.cluster else {
            return change();
        };
        match cluster
            .update_file(self.logs.storage().as_ref(), path, change, reload)
            .await
        {
            Ok(changed) => changed,
            Err(e) => Err(failed(e)),
        }
    }

    /// Opens the data directories on `storage` (recovering after a crash), then the rest
    /// (see [`Broker::load`]).
    #[cfg(any(test, fuzzing))]
    pub async fn open(
        config: Arc<BrokerConfig>,
        storage: Arc<dyn Storage>,
        local: SocketAddr,
    ) -> Result<Broker, StartError> {
        let logs = Self::open_logs(config.clone(), storage).await?;
        Self::load(config, logs, &[local]).await
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
    /// `bound` are the addresses the listeners are bound to, in order. An error says which
    /// part failed.
    pub async fn load(
        config: Arc<BrokerConfig>,
        logs: Arc<LogManager>,
        bound: &[SocketAddr],
    ) -> Result<Broker, StartError> {
        let group_configs = GroupConfigs::open(
            logs.storage().clone(),
            logs.metadata_dir()
                .join(crate::coordinator::group_configs::FILE_NAME),
        )
        .map_err(StartError::GroupConfigs)?;
        let share_store = {
            let (share_config, logs) = (config.coordinator.share.clone(), logs.clone());
            tokio::task::spawn_blocking(move || ShareStateStore::load(logs, share_config))
                .await
                .map_err(StartError::Task)?
                .map(Arc::new)
                .map_err(StartError::Replay)?
        };
        let groups = {
            let (coordinator_config, logs) = (config.coordinator.clone(), logs.clone());
            let store = share_store.clone();
            tokio::task::spawn_blocking(move || GroupCoordinator::load(coordinator_config, logs))
                .await
                .map_err(StartError::Task)?
                .map(|g| Arc::new(g.with_group_configs(group_configs).with_share_store(store)))
                .map_err(StartError::Replay)?
        };
        let shares = Arc::new(ShareManager::new(
            config.coordinator.share.clone(),
            share_store,
        ));
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
                matches!(config.storage, crate::config::StorageMode::Cluster(_)),
            )
            .await
            .map_err(StartError::Replay)?,
        );
        let endpoints = config
            .listeners
            .iter()
            .zip(bound)
            .map(|(l, local)| Endpoint {
                listener: l.name.clone(),
                protocol: l.protocol,
                host: if l.advertised_host.is_empty() && l.host.is_empty() {
                    // Every interface: clients are told the machine's name, as Kafka does.
                    local_host_name()
                } else if l.advertised_host.is_empty() {
                    local.ip().to_string()
                } else {
                    l.advertised_host.clone()
                },
                port: if l.advertised_port == 0 {
                    local.port()
                } else {
                    l.advertised_port
                },
            })
            .collect();
        let path = logs
            .metadata_dir()
            .join(crate::security::credentials::FILE_NAME);
        let credentials = CredentialStore::open(logs.storage().clone(), path)
            .map(Arc::new)
            .map_err(StartError::Credentials)?;
        let authorizer = match &config.authorizer {
            None => None,
            Some(settings) => Some(Arc::new(
                Authorizer::open(
                    settings.clone(),
                    logs.storage().clone(),
                    logs.metadata_dir()
                        .join(crate::security::acl_store::FILE_NAME),
                )
                .map_err(StartError::Acls)?,
            )),
        };
        Ok(Broker {
            config,
            logs,
            groups,
            shares,
            producer_ids,
            txns,
            endpoints,
            credentials,
            authorizer,
            cluster: None,
        })
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    /// The brokers clients are told of, by node id, as reached through listener `index`:
    /// this one, or in cluster mode every live one (with its rack).
    pub fn brokers(&self, index: usize) -> Vec<ClusterNode> {
        let me = self.endpoint(index);
        let Some(cluster) = &self.cluster else {
            return vec![ClusterNode {
                node_id: self.node_id(),
                host: me.host.clone(),
                port: me.port,
                rack: None,
            }];
        };
        cluster
            .membership()
            .live()
            .iter()
            .filter_map(|b| {
                let (_, host, port) = b
                    .endpoints
                    .iter()
                    .find(|(listener, _, _)| *listener == me.listener)
                    .or(b.endpoints.first())?;
                Some(ClusterNode {
                    node_id: b.node_id,
                    host: host.clone(),
                    port: *port,
                    rack: b.rack.clone(),
                })
            })
            .collect()
    }

    /// The controller clients are told of: in cluster mode the live broker with the lowest
    /// node id, the same answer from every broker (any of them handles admin requests).
    pub fn controller_id(&self) -> i32 {
        self.cluster
            .as_ref()
            .and_then(|c| c.membership().live().iter().map(|b| b.node_id).min())
            .unwrap_or(self.node_id())
    }

    /// The leader epoch of every partition as clients are told it: in cluster mode the
    /// membership epoch (leaders move when the live brokers change), else the one epoch of
    /// a single broker.
    pub fn leader_epoch(&self) -> i32 {
        match &self.cluster {
            Some(cluster) => cluster.membership().epoch(),
            None => crate::log::LEADER_EPOCH,
        }
    }

    /// The broker clients are sent to for `partition` of `topic`, which has `partitions`
    /// (any broker serves any partition in cluster mode; leaders only spread the clients).
    pub fn leader(&self, topic: &str, partitions: i32, partition: i32) -> i32 {
        match &self.cluster {
            Some(cluster) => cluster.membership().leader(topic, partitions, partition),
            None => self.node_id(),
        }
    }

    /// Cluster mode with Kafka's RackAwareReplicaSelector (`replica.selector.class`): for a
    /// client in rack `client_rack` that is not this broker's, a live broker in that rack to
    /// read `topic`'s `partition` from (each partition to one of them, spread as leaders
    /// are). Every broker holds every partition, so any of them can serve the read.
    pub fn preferred_read_replica(
        &self,
        client_rack: &str,
        topic: &str,
        partition: i32,
    ) -> Option<i32> {
        let cluster = self.cluster.as_ref()?;
        let membership = cluster.membership();
        if !self.config.rack_aware_fetch
            || client_rack.is_empty()
            || membership.me.rack.as_deref() == Some(client_rack)
        {
            return None;
        }
        let same: Vec<_> = membership
            .live()
            .iter()
            .filter(|b| b.rack.as_deref() == Some(client_rack))
            .cloned()
            .collect();
        (!same.is_empty())
            .then(|| crate::cluster::membership::spread_among(&same, topic, partition))
    }

    /// Creates a topic: in this broker's logs, or in cluster mode in PostgreSQL first.
    /// Blocks on file creation: await it off the async workers.
    pub async fn create_topic(
        &self,
        name: &str,
        num_partitions: i32,
        replication_factor: i16,
        configs: std::collections::BTreeMap<String, String>,
    ) -> Result<Arc<crate::log_manager::Topic>, TopicError> {
        match &self.cluster {
            Some(cluster) => {
                cluster
                    .create_topic(
                        &self.logs,
                        name,
                        num_partitions,
                        replication_factor,
                        configs,
                    )
                    .await
            }
            None => self
                .logs
                .create_topic(name, num_partitions, replication_factor, configs),
        }
    }

    /// Deletes a topic (everywhere, in cluster mode). Blocks on file deletion: await it
    /// off the async workers.
    pub async fn delete_topic(
        &self,
        name: &str,
    ) -> Result<Arc<crate::log_manager::Topic>, TopicError> {
        match &self.cluster {
            Some(cluster) => cluster.delete_topic(&self.logs, name).await,
            None => self.logs.delete_topic(name),
        }
    }

    /// Replaces a topic's config overrides (everywhere, in cluster mode). Blocks on file
    /// writes: await it off the async workers.
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        configs: std::collections::BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        match &self.cluster {
            Some(cluster) if !validate_only => {
                cluster.alter_topic_configs(&self.logs, name, configs).await
            }
            _ => self.logs.alter_topic_configs(name, configs, validate_only),
        }
    }

    /// Grows a topic to `count` partitions (everywhere, in cluster mode). Blocks on file
    /// creation: await it off the async workers.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        match &self.cluster {
            Some(cluster) if !validate_only => {
                cluster.create_partitions(&self.logs, name, count).await
            }
            _ => self.logs.create_partitions(name, count, validate_only),
        }
    }

    /// The advertised endpoint of listener `index` (the first if out of range).
    pub fn endpoint(&self, index: usize) -> &Endpoint {
        self.endpoints
            .get(index)
            .or(self.endpoints.first())
            .expect("a broker has at least one listener")
    }
}
