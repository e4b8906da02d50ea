//! The broker's life: open the logs, listen on every listener, accept connections (within
//! `max.connections` and `max.connections.per.ip`; TLS listeners complete a handshake first), and on a stop signal shut down in order: stop accepting, let
//! connections answer what they have read, then flush, checkpoint and close every log.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::broker::{Broker, StartError};
use crate::broker_state::{BrokerState, Lifecycle};
use crate::cluster::metadata::BrokerRecord;
use crate::cluster::Cluster;
use crate::config::{BrokerConfig, StorageMode};
use crate::coordinator::internal_topic::compacted;
use crate::coordinator::offsets::OFFSETS_TOPIC;
use crate::log_manager::ShutdownError;
use crate::network::connection::{self, Accepted};
use crate::network::connection_quotas::ConnectionQuotas;
use crate::network::request_memory::RequestMemoryPool;
use crate::security::tls::TlsListener;
use crate::storage;
use crate::transaction::TRANSACTION_STATE_TOPIC;

/// How long in-flight requests get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client gets to complete its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub enum ServerError {
    /// Opening the store or loading the coordinators failed.
    Start(StartError),
    /// The broker stopped, but not cleanly: the next start recovers.
    Shutdown(ShutdownError),
    /// The listener address could not be resolved or bound.
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::Start(e) => write!(f, "{e}"),
            ServerError::Shutdown(e) => write!(f, "unclean shutdown: {e}"),
            ServerError::Listen { addr, .. } => write!(f, "cannot listen on {addr}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Start(e) => e.source(),
            ServerError::Shutdown(e) => e.source(),
            ServerError::Listen { source, .. } => Some(source),
        }
    }
}

/// Runs the broker until `stop` resolves.
pub async fn run<F>(config: Arc<BrokerConfig>, stop: F) -> Result<(), ServerError>
where
    F: std::future::Future<Output = ()>,
{
    // The uptime counts from here.
    let _ = crate::metrics::global();
    let lifecycle = Arc::new(Lifecycle::new());
    // The HTTP listener first, so that /health says RECOVERY while the logs load.
    let http = match config.http.listen {
        None => None,
        Some(addr) => {
            let listen_error = |source| ServerError::Listen {
                addr: format!("http.listen {addr}"),
                source,
            };
            let socket = TcpListener::bind(addr).await.map_err(listen_error)?;
            let bound = socket.local_addr().map_err(listen_error)?;
            println!("gregor http listening on {bound}");
            let state = Arc::new(crate::http::HttpState {
                lifecycle: lifecycle.clone(),
                console: config.http.console,
                loopback_only: bound.ip().is_loopback(),
            });
            Some(tokio::spawn(crate::http::serve(socket, state)))
        }
    };
    lifecycle.set(BrokerState::Recovery);
    // Logs first, like Kafka: the port opens once the data is recovered.
    let logs = Broker::open_logs(config.clone(), storage::file_system())
        .await
        .map_err(ServerError::Start)?;
    let mut sockets = Vec::new();
    let mut bound = Vec::new();
    for listener_config in &config.listeners {
        let listen_error = |source| ServerError::Listen {
            addr: listener_config.to_string(),
            source,
        };
        let addr = listener_config.socket_addr().map_err(listen_error)?;
        let socket = TcpListener::bind(addr).await.map_err(listen_error)?;
        bound.push(socket.local_addr().map_err(listen_error)?);
        sockets.push(socket);
    }
    // Each listener's TLS and SASL, built once (TLS files are re-read when they change).
    let mut tls = Vec::new();
    for l in &config.listeners {
        tls.push(match &l.tls {
            Some(settings) => Some(Arc::new(
                TlsListener::new(&l.name, settings)
                    .map_err(|e| ServerError::Start(StartError::Tls(e)))?,
            )),
            None => None,
        });
    }
    let sasl: Vec<_> = config
        .listeners
        .iter()
        .map(|l| l.sasl.clone().map(Arc::new))
        .collect();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut broker = Broker::load(config.clone(), logs, &bound)
        .await
        .map_err(ServerError::Start)?;
    if let StorageMode::Cluster(cluster_config) = &config.storage {
        let me = BrokerRecord {
            node_id: config.node_id,
            endpoints: broker
                .endpoints
                .iter()
                .map(|e| (e.listener.clone(), e.host.clone(), e.port))
                .collect(),
            rack: cluster_config.rack.clone(),
        };
        let cluster = Cluster::start(
            (**cluster_config).clone(),
            broker.logs.clone(),
            me,
            // Every broker follows the coordinators' records (transactions' state, markers
            // completing transactional offsets) and the metadata files.
            Some(Arc::new(crate::follower::Follower {
                txns: broker.txns.clone(),
                groups: broker.groups.clone(),
                credentials: broker.credentials.clone(),
                authorizer: broker.authorizer.clone(),
            })),
            shutdown_rx.clone(),
        )
        .await
        .map_err(|e| ServerError::Start(StartError::Cluster(e)))?;
        broker.producer_ids.use_cluster(cluster.clone());
        // Groups and transactions are coordinated by the leaders of these cluster topics'
        // partitions.
        let coordinators = &config.coordinator;
        for (topic, partitions, segment_bytes) in [
            (
                OFFSETS_TOPIC,
                coordinators.offsets_topic_partitions,
                coordinators.offsets_topic_segment_bytes,
            ),
            (
                TRANSACTION_STATE_TOPIC,
                config.transactions.state_partitions,
                config.transactions.state_segment_bytes,
            ),
        ] {
            cluster
                .ensure_internal_topic(topic, partitions, compacted(segment_bytes))
                .await
                .map_err(|e| ServerError::Start(StartError::Cluster(e)))?;
        }
        broker.groups.use_cluster(cluster.clone());
        broker.txns.use_cluster(cluster.clone());
        broker.cluster = Some(cluster);
    }
    let broker = Arc::new(broker);
    let (logs, groups, txns) = (
        broker.logs.clone(),
        broker.groups.clone(),
        broker.txns.clone(),
    );
    // Tests and scripts read these lines to find the ports: one per listener, then the
    // first listener's alone, last.
    for (l, addr) in config.listeners.iter().zip(&bound) {
        println!("gregor listener {} listening on {addr}", l.name);
    }
    lifecycle.set_broker(broker.clone());
    lifecycle.set(BrokerState::Running);
    println!("gregor listening on {}", bound[0]);
    tracing::info!(addresses = ?bound, topics = logs.topics().len(), cluster_id = broker.cluster_id(), "broker started");

    let background = tokio::spawn(logs.clone().run_background(shutdown_rx.clone()));
    let group_timers = tokio::spawn(groups.clone().run_timers(shutdown_rx.clone()));
    let group_leadership = tokio::spawn(groups.follow_leadership(shutdown_rx.clone()));
    let txn_leadership = tokio::spawn(txns.clone().follow_leadership(shutdown_rx.clone()));
    let cluster_cleanup = broker.cluster.clone().map(|cluster| {
        tokio::spawn(cluster.run_cleanup(
            logs.clone(),
            config.log_retention_check_interval,
            shutdown_rx.clone(),
        ))
    });
    let txn_timers = tokio::spawn(txns.run_timers(shutdown_rx.clone()));
    let share_timers = tokio::spawn(broker.shares.clone().run_timers(shutdown_rx.clone()));
    let quotas = ConnectionQuotas::new(config.socket_server.clone());
    let pool = Arc::new(RequestMemoryPool::new(
        config.socket_server.queued_max_request_bytes,
    ));
    // One accept loop per listener, all feeding this one.
    let (accepted_tx, mut accepted_rx) = tokio::sync::mpsc::channel(64);
    let mut acceptors = JoinSet::new();
    for (index, socket) in sockets.into_iter().enumerate() {
        let accepted_tx = accepted_tx.clone();
        acceptors.spawn(async move {
            loop {
                match socket.accept().await {
                    Ok((stream, peer)) => {
                        if accepted_tx.send((stream, peer, index)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        // e.g. out of file descriptors: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }
    drop(accepted_tx);
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = accepted_rx.recv() => {
                let Some((socket, peer, index)) = accepted else { break };
                let permit = match quotas.try_acquire(peer.ip()) {
                    Ok(permit) => permit,
                    Err(refused) => {
                        tracing::warn!(peer = %peer, "{refused}; closing the new connection");
                        drop(socket);
                        continue;
                    }
                };
                let (broker, pool) = (broker.clone(), pool.clone());
                let shutdown = shutdown_rx.clone();
                let tls = tls[index].clone();
                let accepted = Accepted {
                    peer: Some(peer),
                    listener: index,
                    sasl: sasl[index].clone(),
                    tls_principal: None,
                };
                connections.spawn(async move {
                    let _ = socket.set_nodelay(true);
                    match tls {
                        None => {
                            let (reader, writer) = socket.into_split();
                            connection::serve(broker, reader, writer, accepted, pool, shutdown).await;
                        }
                        Some(tls) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.acceptor().accept(socket)).await {
                            Ok(Ok(stream)) => {
                                let certificate = stream
                                    .get_ref()
                                    .1
                                    .peer_certificates()
                                    .and_then(|certs| certs.first())
                                    .map(|cert| cert.as_ref().to_vec());
                                // A subject no ssl.principal.mapping.rules rule maps is refused,
                                // as Kafka fails the authentication.
                                let tls_principal = match tls.client_principal(certificate.as_deref()) {
                                    Ok(principal) => principal,
                                    Err(subject) => {
                                        tracing::info!(peer = %peer, subject, "no ssl.principal.mapping.rules rule applies to the client certificate; closing the connection");
                                        drop(permit);
                                        return;
                                    }
                                };
                                let accepted = Accepted { tls_principal, ..accepted };
                                let (reader, writer) = tokio::io::split(stream);
                                connection::serve(broker, reader, writer, accepted, pool, shutdown).await;
                            }
                            Ok(Err(e)) => tracing::info!(peer = %peer, error = %e, "TLS handshake failed; closing the connection"),
                            Err(_) => tracing::info!(peer = %peer, "TLS handshake timed out; closing the connection"),
                        },
                    }
                    drop(permit);
                });
                // Reap finished connections so the set does not grow.
                while connections.try_join_next().is_some() {}
            }
            () = &mut stop => break,
        }
    }
    lifecycle.set(BrokerState::ShuttingDown);
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    acceptors.abort_all();
    drop(accepted_rx);
    let _ = shutdown_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("some connections did not finish in time");
        connections.abort_all();
    }
    for (task, result) in [
        ("background", background.await),
        ("group timers", group_timers.await),
        ("group leadership", group_leadership.await),
        ("transaction leadership", txn_leadership.await),
        ("transaction timers", txn_timers.await),
        ("share timers", share_timers.await),
    ] {
        if let Err(e) = result {
            tracing::error!(task, error = %e, "a background task failed");
        }
    }
    if let Some(task) = cluster_cleanup {
        if let Err(e) = task.await {
            tracing::error!(task = "cluster cleanup", error = %e, "a background task failed");
        }
    }
    let shutdown = tokio::task::spawn_blocking(move || logs.shutdown()).await;
    lifecycle.set(BrokerState::NotRunning);
    if let Some(http) = http {
        http.abort();
    }
    match shutdown {
        Ok(Ok(())) => {
            tracing::info!("shutdown complete");
            Ok(())
        }
        Ok(Err(e)) => Err(ServerError::Shutdown(e)),
        Err(e) => Err(ServerError::Start(StartError::Task(e))),
    }
}
