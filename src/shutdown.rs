//! Waiting for the signals that stop the broker: SIGINT (Ctrl-C) and SIGTERM.

use std::future::Future;

/// Installs the handlers for SIGINT and SIGTERM now, and returns a future that resolves
/// when either arrives.
///
/// The handlers must be in place before the broker announces its port: a signal that
/// arrives before them gets the default action, which ends the process without the
/// clean shutdown (flush, checkpoints, exit status 0) that a supervisor expects.
/// Must be called inside the Tokio runtime.
pub fn listen() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            let terminated = async {
                match terminate {
                    Ok(mut terminate) => {
                        terminate.recv().await;
                    }
                    Err(_) => std::future::pending().await,
                }
            };
            let interrupted = async {
                match interrupt {
                    Ok(mut interrupt) => {
                        interrupt.recv().await;
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            };
            tokio::select! {
                () = terminated => {}
                () = interrupted => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
