//! Commit notifications: every commit raises a PostgreSQL NOTIFY on `gregor_commits`
//! (a trigger on `cluster.last_commit`, migration 0004), and each broker LISTENs on its
//! own connection and wakes its replica, which then applies the commit at once instead of
//! at its next `gregor.metadata.poll.ms`. The poll stays: a lost connection, or a
//! connection pooler that does not pass notifications on, only costs latency.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_postgres::{AsyncMessage, NoTls};

/// The channel the commit trigger notifies.
const CHANNEL: &str = "gregor_commits";

/// How long to wait before connecting again after the connection was lost.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Wakes `wake` on every notified commit until `shutdown`.
pub async fn listen(url: String, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = follow(&url, &wake) => {}
            _ = shutdown.changed() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(RECONNECT_AFTER) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One connection's life: LISTEN, then wake on each notification until the connection
/// ends. The connection is driven here (`poll_message`), which is how tokio-postgres hands
/// out notifications.
async fn follow(url: &str, wake: &Notify) {
    let (client, mut connection) = match tokio_postgres::connect(url, NoTls).await {
        Ok(connected) => connected,
        Err(e) => {
            tracing::warn!(error = %e, "cannot connect to PostgreSQL for commit notifications");
            return;
        }
    };
    let statement = format!("LISTEN {CHANNEL}");
    let mut listen = std::pin::pin!(client.batch_execute(&statement));
    let mut listening = false;
    loop {
        tokio::select! {
            done = &mut listen, if !listening => {
                if let Err(e) = done {
                    tracing::warn!(error = %e, "LISTEN {CHANNEL} failed");
                    return;
                }
                listening = true;
                // Whatever was committed while this connection was down.
                wake.notify_one();
            }
            message = std::future::poll_fn(|cx| connection.poll_message(cx)) => match message {
                Some(Ok(AsyncMessage::Notification(_))) => wake.notify_one(),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "the commit notification connection failed");
                    return;
                }
                None => return,
            },
        }
    }
}
