//! The broker's life: open the logs, listen, accept connections (within `max.connections`
//! and `max.connections.per.ip`), and on a stop signal shut down in order: stop accepting, let
//! connections answer what they have read, then flush, checkpoint and close every log.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::broker::{Broker, StartError};
use crate::config::BrokerConfig;
use crate::log_manager::ShutdownError;
use crate::network::connection;
use crate::network::connection_quotas::ConnectionQuotas;
use crate::network::request_memory::RequestMemoryPool;
use crate::storage;

/// How long in-flight requests get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

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
    // Logs first, like Kafka: the port opens once the data is recovered.
    let logs = Broker::open_logs(config.clone(), storage::file_system())
        .await
        .map_err(ServerError::Start)?;
    let listener_config = &config.listeners[0];
    let listen_error = |source| ServerError::Listen {
        addr: listener_config.to_string(),
        source,
    };
    let addr = listener_config.socket_addr().map_err(listen_error)?;
    let listener = TcpListener::bind(addr).await.map_err(listen_error)?;
    let local = listener.local_addr().map_err(listen_error)?;
    let broker = Broker::load(config.clone(), logs, local)
        .await
        .map(Arc::new)
        .map_err(ServerError::Start)?;
    let (logs, groups, txns) = (
        broker.logs.clone(),
        broker.groups.clone(),
        broker.txns.clone(),
    );
    // Tests and scripts read this line to find the port.
    println!("gregor listening on {local}");
    tracing::info!(address = %local, topics = logs.topics().len(), cluster_id = logs.cluster_id(), "broker started");

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let background = tokio::spawn(logs.clone().run_background(shutdown_rx.clone()));
    let group_timers = tokio::spawn(groups.run_timers(shutdown_rx.clone()));
    let txn_timers = tokio::spawn(txns.run_timers(shutdown_rx.clone()));
    let quotas = ConnectionQuotas::new(config.socket_server.clone());
    let pool = Arc::new(RequestMemoryPool::new(
        config.socket_server.queued_max_request_bytes,
    ));
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // e.g. out of file descriptors: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
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
                connections.spawn(async move {
                    connection::serve(broker, socket, pool, shutdown).await;
                    drop(permit);
                });
                // Reap finished connections so the set does not grow.
                while connections.try_join_next().is_some() {}
            }
            () = &mut stop => break,
        }
    }
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    drop(listener);
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
        ("transaction timers", txn_timers.await),
    ] {
        if let Err(e) = result {
            tracing::error!(task, error = %e, "a background task failed");
        }
    }
    match tokio::task::spawn_blocking(move || logs.shutdown()).await {
        Ok(Ok(())) => {
            tracing::info!("shutdown complete");
            Ok(())
        }
        Ok(Err(e)) => Err(ServerError::Shutdown(e)),
        Err(e) => Err(ServerError::Start(StartError::Task(e))),
    }
}
