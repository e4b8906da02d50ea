//! The HTTP listener (`http.listen`, Gregor only): `/health` for orchestration, `/metrics`
//! for Prometheus, and with `console.enable` the web console at `/` and its JSON API under
//! `/api/` (docs/http-api.md). It starts before the logs load, so `/health` answers 503
//! during recovery, and stays up through shutdown.
//!
//! HTTP/1.1 is written here rather than taken from a framework: the listener needs
//! `Content-Length` bodies, keep-alive and a few routes, and a framework would cost more
//! binary than all of it. Limits: 64 connections at once, 16 KiB request heads, 1 MiB
//! bodies, 30 s idle.

mod console;
mod console_api;
pub mod request;
pub mod response;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::BufWriter;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::broker_state::{BrokerState, Lifecycle};
use request::{read_request, ReadError, Request};
use response::{write_response, Response};

/// Most HTTP connections served at once; more are answered 503 and closed.
const MAX_CONNECTIONS: usize = 64;
/// A connection that sends no complete request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// What every HTTP connection shares.
#[derive(Debug)]
pub struct HttpState {
    pub lifecycle: Arc<Lifecycle>,
    /// `console.enable`.
    pub console: bool,
    /// Bound to a loopback address: API requests must name a loopback host (DNS
    /// rebinding cannot reach the console from a web page).
    pub loopback_only: bool,
}

/// Serves HTTP on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, state: Arc<HttpState>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    serve_connection(socket, peer, &state).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let mut socket = socket;
                    let busy = Response::error(503, "too many HTTP connections");
                    let _ = write_response(&mut socket, &busy, false, false).await;
                });
            }
        }
    }
}

async fn serve_connection(socket: TcpStream, peer: SocketAddr, state: &HttpState) {
    let _ = socket.set_nodelay(true);
    let (mut reader, writer) = socket.into_split();
    let mut writer = BufWriter::new(writer);
    let mut buf = Vec::new();
    loop {
        let request = match tokio::time::timeout(IDLE_TIMEOUT, read_request(&mut reader, &mut buf))
            .await
        {
            Err(_) | Ok(Err(ReadError::Closed | ReadError::Io(_))) => return,
            Ok(Err(ReadError::Status(status, message))) => {
                let _ =
                    write_response(&mut writer, &Response::error(status, message), false, false)
                        .await;
                return;
            }
            Ok(Ok(request)) => request,
        };
        let response = route(&request, peer, state).await;
        let head_only = request.method == "HEAD";
        if write_response(&mut writer, &response, request.keep_alive, head_only)
            .await
            .is_err()
            || !request.keep_alive
        {
            return;
        }
    }
}

/// Whether `host` (a Host header) names this machine by a loopback name or address.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

async fn route(request: &Request, peer: SocketAddr, state: &HttpState) -> Response {
    let read = matches!(request.method.as_str(), "GET" | "HEAD");
    match request.path.as_str() {
        "/health" if read => health(&state.lifecycle),
        "/metrics" if read => Response::new(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            crate::metrics::encode(&state.lifecycle),
        ),
        "/health" | "/metrics" => Response::method_not_allowed("GET, HEAD"),
        path if state.console && path.starts_with("/api/") => {
            if state.loopback_only && !request.header("host").is_some_and(is_loopback_host) {
                return Response::error(403, "the console answers requests to localhost only");
            }
            if let Some(refusal) = console_api::refuse_cross_site(request) {
                return refusal;
            }
            let Some(broker) = state.lifecycle.running() else {
                return Response::error(
                    503,
                    &format!("the broker is {}", state.lifecycle.state().name()),
                );
            };
            console_api::handle(request, broker, peer).await
        }
        path if state.console => console::asset(path, read),
        _ => Response::not_found(),
    }
}

/// 200 while RUNNING, else 503; the body names the state.
fn health(lifecycle: &Lifecycle) -> Response {
    let state = lifecycle.state();
    let status = if state == BrokerState::Running {
        200
    } else {
        503
    };
    Response::json(status, &serde_json::json!({ "status": state.name() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "localhost:9644",
            "127.0.0.1:9644",
            "[::1]:9644",
            "LOCALHOST",
            "127.0.0.1",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["evil.example:9644", "10.0.0.1:9644", ""] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn health_follows_the_broker_state() {
        let l = Lifecycle::new();
        assert_eq!(health(&l).status, 503);
        l.set(BrokerState::Running);
        let ok = health(&l);
        assert_eq!(ok.status, 200);
        assert_eq!(ok.body, br#"{"status":"RUNNING"}"#);
    }
}
