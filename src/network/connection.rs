//! One client connection: a read loop that frames and handles requests one after the other,
//! and a write loop that sends responses strictly in request order. Only Produce's wait for
//! durability overlaps later requests; up to `MAX_IN_FLIGHT` responses may be pending, then
//! the read loop waits (backpressure instead of unbounded buffering).
//!
//! A malformed frame or request closes this connection only; a handler that panics ends this
//! connection's write task, and the read loop notices and stops.

use std::sync::Arc;
use std::task::Poll;

use bytes::BytesMut;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::{read_frame, FrameError};
use crate::api::{self, Response, ResponseFuture};
use crate::broker::Broker;

/// Requests read ahead of their responses, per connection (Kafka's clients send at most 5).
const MAX_IN_FLIGHT: usize = 32;

pub async fn serve(broker: Arc<Broker>, socket: TcpStream, mut shutdown: watch::Receiver<bool>) {
    let peer_addr = socket.peer_addr().ok();
    let peer = peer_addr.map(|a| a.to_string()).unwrap_or_default();
    let client_host = peer_addr
        .map(|a| format!("/{}", a.ip()))
        .unwrap_or_default();
    let _ = socket.set_nodelay(true);
    let (mut reader, writer) = socket.into_split();
    let (tx, rx) = mpsc::channel::<ResponseFuture>(MAX_IN_FLIGHT);
    let writer_task = tokio::spawn(write_responses(writer, rx));
    let mut buf = BytesMut::new();
    let max_request = broker.config.socket_request_max_bytes;
    loop {
        let frame = tokio::select! {
            frame = read_frame(&mut reader, &mut buf, max_request) => frame,
            _ = shutdown.changed() => break,
            () = tx.closed() => break,
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(FrameError::Closed) => break,
            Err(e) => {
                tracing::info!(peer = %peer, error = %e, "closing connection");
                break;
            }
        };
        match api::dispatch(&broker, frame, &client_host) {
            Ok(dispatched) => {
                let response = if dispatched.may_overlap {
                    dispatched.response
                } else {
                    // Finish this request before reading the next, so effects keep their
                    // order. A request parked for long (JoinGroup, a long-polling Fetch) is
                    // abandoned when the broker shuts down.
                    let done = tokio::select! {
                        done = dispatched.response => done,
                        _ = shutdown.changed() => break,
                    };
                    Box::pin(std::future::ready(done))
                };
                if tx.send(response).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                tracing::info!(peer = %peer, error = %e, "closing connection after a bad request");
                break;
            }
        }
    }
    // Answer what was read before closing.
    drop(tx);
    let _ = writer_task.await;
}

async fn write_responses(writer: OwnedWriteHalf, mut rx: mpsc::Receiver<ResponseFuture>) {
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    while let Some(mut pending) = rx.recv().await {
        // Responses already written must not wait in the buffer while this one waits
        // (e.g. for its fsync): flush first unless it is ready right away.
        let ready = std::future::poll_fn(|cx| Poll::Ready(pending.as_mut().poll(cx))).await;
        let response = match ready {
            Poll::Ready(response) => response,
            Poll::Pending => {
                if !writer.buffer().is_empty() && writer.flush().await.is_err() {
                    return;
                }
                pending.await
            }
        };
        match response {
            Response::Frame(bytes) => {
                if writer.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Response::None => {}
            Response::Close => break,
        }
        if rx.is_empty() && writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.flush().await;
    let _ = writer.shutdown().await;
}
