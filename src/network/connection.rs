//! One client connection: a read loop that frames and handles requests one after the other,
//! and a write loop that sends responses strictly in request order. Only Produce's wait for
//! durability overlaps later requests; up to `MAX_IN_FLIGHT` responses (`MAX_IN_FLIGHT_CLUSTER`
//! in cluster mode) may be pending, then
//! the read loop waits (backpressure instead of unbounded buffering).
//!
//! Bounds: a request's bytes stay reserved in the `queued.max.request.bytes` pool until its
//! answer is written; the read loop stops reading while `MAX_UNSENT_RESPONSE_BYTES` of answers
//! wait for a client that does not read them; and a connection that completes no request for
//! `connections.max.idle.ms` (silent, trickling bytes, or not reading its answers) is closed.
//!
//! A malformed frame or request closes this connection only; a handler that panics ends this
//! connection's write task, and the read loop notices and stops.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use std::net::SocketAddr;

use std::io;
use std::os::fd::AsFd;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter, Interest};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Notify};

use super::authentication::{Authentication, Verdict};
use super::request_memory::{RequestMemory, RequestMemoryPool};
use super::{read_frame, FrameError};
use crate::api::frame_parts::Part;
use crate::api::{self, Peer, Response, ResponseFuture};
use crate::broker::Broker;
use crate::log::{FileRecords, Records};

/// The next connection's number (`RequestContext::connection`); 0 is never handed out.
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// Requests read ahead of their responses, per connection (Kafka's clients send at most 5).
const MAX_IN_FLIGHT: usize = 32;

/// The same in cluster mode, where a produce waits for its object's upload and commit
/// (about `gregor.produce.buffer.ms`): requests read ahead meanwhile join the same object,
/// so a client that pipelines (librdkafka allows 1,000,000 in flight without idempotence)
/// is not held to 32 requests per buffer interval. Bytes stay bounded by
/// `queued.max.request.bytes`.
const MAX_IN_FLIGHT_CLUSTER: usize = 1024;

/// Bytes of ready answers a connection may hold for a client that has not read them yet
/// before it stops reading requests. One answer of any size still gets through, so a client
/// that never reads costs at most its largest answer plus this.
const MAX_UNSENT_RESPONSE_BYTES: usize = 16 << 20;

/// Ready answers not yet written to the socket, in bytes; the writer wakes the reader.
#[derive(Default)]
struct Unsent {
    bytes: AtomicUsize,
    drained: Notify,
}

impl Unsent {
    async fn wait_for_room(&self) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.bytes.load(Ordering::Acquire) < MAX_UNSENT_RESPONSE_BYTES {
                return;
            }
            drained.await;
        }
    }
}

/// An answer on its way to the writer, with what it holds until written.
struct Pending {
    response: ResponseFuture,
    /// The request's bytes in the `queued.max.request.bytes` pool.
    memory: RequestMemory,
    /// Bytes counted in `Unsent` (ready answers only).
    unsent: usize,
}

/// Where a connection came from: its peer, and the listener it was accepted on (with that
/// listener's SASL settings, if it authenticates with SASL).
pub struct Accepted {
    pub peer: Option<SocketAddr>,
    pub listener: usize,
    pub sasl: Option<Arc<crate::config::listeners::SaslSettings>>,
    /// The TLS client certificate's principal (`User:<subject>`), if one was presented.
    /// On a SASL_SSL listener the SASL principal is the connection's instead, as in Kafka.
    pub tls_principal: Option<String>,
}

/// Where a connection's responses go. Bytes are written through `AsyncWrite`; a plain TCP
/// socket also takes record ranges straight from their files (`sendfile`), while a TLS
/// stream has to see the bytes to encrypt them.
pub trait ResponseWriter: AsyncWrite + Unpin + Send + 'static {
    /// The socket, if what is written reaches it unchanged.
    fn plain_socket(&self) -> Option<&TcpStream> {
        None
    }
}

impl ResponseWriter for tokio::net::tcp::OwnedWriteHalf {
    fn plain_socket(&self) -> Option<&TcpStream> {
        Some(self.as_ref())
    }
}

impl<S: AsyncRead + AsyncWrite + Send + 'static> ResponseWriter for tokio::io::WriteHalf<S> {}

/// Serves one connection, read and written through `reader` and `writer` (a TCP socket's
/// halves, or a TLS stream's).
pub async fn serve<R, W>(
    broker: Arc<Broker>,
    mut reader: R,
    writer: W,
    accepted: Accepted,
    pool: Arc<RequestMemoryPool>,
    mut shutdown: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin + Send,
    W: ResponseWriter,
{
    let connection = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
    let listener_name = broker
        .config
        .listeners
        .get(accepted.listener)
        .map_or_else(String::new, |l| l.name.clone());
    let open = crate::metrics::global()
        .connections
        .get_or_create(&[("listener", listener_name)])
        .clone();
    open.inc();
    let peer = accepted.peer.map(|a| a.to_string()).unwrap_or_default();
    let client_host = accepted
        .peer
        .map(|a| format!("/{}", java_host_address(a.ip())))
        .unwrap_or_default();
    let mut authentication = accepted
        .sasl
        .map(|settings| Authentication::new(accepted.listener, settings));
    let in_flight = if broker.cluster.is_some() {
        MAX_IN_FLIGHT_CLUSTER
    } else {
        MAX_IN_FLIGHT
    };
    let (tx, rx) = mpsc::channel::<Pending>(in_flight);
    let unsent = Arc::new(Unsent::default());
    let writer_task = tokio::spawn(write_responses(
        writer,
        rx,
        unsent.clone(),
        broker.config.socket_server.sendfile,
    ));
    let mut buf = BytesMut::new();
    let limits = &broker.config.socket_server;
    let max_request = limits.socket_request_max_bytes;
    loop {
        let next = async {
            unsent.wait_for_room().await;
            read_frame(&mut reader, &mut buf, max_request, &pool).await
        };
        let frame = tokio::select! {
            frame = tokio::time::timeout(limits.connections_max_idle, next) => frame,
            _ = shutdown.changed() => break,
            () = tx.closed() => break,
        };
        let Ok(frame) = frame else {
            tracing::info!(peer = %peer, idle_ms = limits.connections_max_idle.as_millis() as u64, "closing a connection that completed no request within connections.max.idle.ms");
            break;
        };
        let (frame, memory) = match frame {
            Ok(frame) => frame,
            Err(FrameError::Closed) => break,
            Err(e) => {
                tracing::info!(peer = %peer, error = %e, "closing connection");
                break;
            }
        };
        if let Some(auth) = authentication.as_mut() {
            let answer = match auth.on_frame(&broker, &frame, &client_host) {
                Verdict::Dispatch => None,
                Verdict::Answer(response) => Some((response, None)),
                Verdict::AnswerAndClose(response, delay) => Some((response, Some(delay))),
                Verdict::Close(reason) => {
                    tracing::info!(peer = %peer, reason, "closing connection");
                    break;
                }
            };
            if let Some((response, close_after)) = answer {
                if let Some(delay) = close_after {
                    tracing::info!(peer = %peer, "authentication failed; closing the connection");
                    tokio::time::sleep(delay).await;
                }
                let pending = Pending {
                    response: Box::pin(std::future::ready(response)),
                    memory,
                    unsent: 0,
                };
                if tx.send(pending).await.is_err() || close_after.is_some() {
                    break;
                }
                continue;
            }
        }
        let from = Peer {
            client_host: client_host.clone(),
            listener: accepted.listener,
            connection,
            principal: match &authentication {
                Some(auth) => auth.principal().unwrap_or(api::ANONYMOUS),
                None => accepted.tls_principal.as_deref().unwrap_or(api::ANONYMOUS),
            }
            .to_string(),
        };
        match api::dispatch(&broker, frame, from) {
            Ok(dispatched) => {
                let pending = if dispatched.may_overlap {
                    Pending {
                        response: dispatched.response,
                        memory,
                        unsent: 0,
                    }
                } else {
                    // Finish this request before reading the next, so effects keep their
                    // order. A request parked for long (JoinGroup, a long-polling Fetch) is
                    // abandoned when the broker shuts down.
                    let done = tokio::select! {
                        done = dispatched.response => done,
                        _ = shutdown.changed() => break,
                    };
                    let size = match &done {
                        Response::Frame(bytes) => bytes.len(),
                        Response::Parts(_, len) => *len,
                        _ => 0,
                    };
                    unsent.bytes.fetch_add(size, Ordering::AcqRel);
                    Pending {
                        response: Box::pin(std::future::ready(done)),
                        memory,
                        unsent: size,
                    }
                };
                if tx.send(pending).await.is_err() {
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
    // Its share sessions end with it: their members' records are released.
    broker.shares.connection_closed(connection).await;
    open.dec();
}

async fn write_responses<W: ResponseWriter>(
    writer: W,
    mut rx: mpsc::Receiver<Pending>,
    unsent: Arc<Unsent>,
    sendfile: bool,
) {
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    while let Some(Pending {
        response: mut pending,
        memory,
        unsent: counted,
    }) = rx.recv().await
    {
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
        let written = match response {
            Response::Frame(bytes) => writer.write_all(&bytes).await.is_ok(),
            Response::Parts(parts, _) => match write_parts(&mut writer, parts, sendfile).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::info!(error = %e, "writing a response failed; closing the connection");
                    false
                }
            },
            Response::None => true,
            Response::Close => false,
        };
        // Answered (or given up on): its bytes and its request's memory go back.
        unsent.bytes.fetch_sub(counted, Ordering::AcqRel);
        unsent.drained.notify_waiters();
        drop(memory);
        if !written {
            break;
        }
        if rx.is_empty() && writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.flush().await;
    let _ = writer.shutdown().await;
}

/// Writes a frame's parts in order. With `sendfile` (`socket.sendfile.enable`) and a plain
/// socket, record ranges go from their files to the socket; otherwise the records were read
/// into buffers of their own (one copy; a range still in its file is read now) and the whole
/// frame goes out in vectored writes.
///
/// Measured on loopback with the consumer on the same two cores (docs/benchmarks.md):
/// `sendfile` saved no broker CPU against the one read (a loopback receiver copies anyway),
/// and the consumer, receiving the records in smaller pieces, read up to half as fast;
/// writing in 256 KiB chunks cost a reader wake-up per chunk. One read and one vectored
/// write per response was the fastest.
async fn write_parts<W: ResponseWriter>(
    writer: &mut BufWriter<W>,
    parts: Vec<Part>,
    sendfile: bool,
) -> io::Result<()> {
    if sendfile && writer.get_ref().plain_socket().is_some() {
        for part in parts {
            match part {
                Part::Bytes(bytes) => writer.write_all(&bytes).await?,
                Part::Records(Records::Bytes(bytes)) => writer.write_all(&bytes).await?,
                Part::Records(Records::File(records)) => {
                    send_records(writer, &records).await?;
                    records.sent();
                }
            }
        }
        return Ok(());
    }
    let mut buffers = Vec::with_capacity(parts.len());
    let mut sent = Vec::new();
    for part in parts {
        match part {
            Part::Bytes(bytes) | Part::Records(Records::Bytes(bytes)) => buffers.push(bytes),
            Part::Records(Records::File(records)) => {
                buffers.push(read_records(&records)?);
                sent.push(records);
            }
        }
    }
    writer.flush().await?;
    let mut slices: Vec<io::IoSlice<'_>> = buffers.iter().map(|b| io::IoSlice::new(b)).collect();
    let mut slices = slices.as_mut_slice();
    while !slices.is_empty() {
        let n = writer.get_mut().write_vectored(slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        io::IoSlice::advance_slices(&mut slices, n);
    }
    for records in sent {
        records.sent();
    }
    Ok(())
}

/// A record range's bytes, read from its file.
fn read_records(records: &FileRecords) -> io::Result<bytes::Bytes> {
    let Some(file) = &records.file else {
        return Ok(bytes::Bytes::new());
    };
    match file.read_vec_at(records.position, records.len) {
        Ok(bytes) => Ok(bytes.into()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(cut_short(records)),
        Err(e) => Err(e),
    }
}

/// Sends a record range from its file straight to the (plain TCP) socket, after what is
/// buffered; read and written instead if the file can't be sent from.
async fn send_records<W: ResponseWriter>(
    writer: &mut BufWriter<W>,
    records: &FileRecords,
) -> io::Result<()> {
    let Some(file) = &records.file else {
        return Ok(());
    };
    let mut pos = records.position;
    let end = pos + records.len as u64;
    writer.flush().await?;
    let socket = writer
        .get_ref()
        .plain_socket()
        .expect("checked by the caller");
    while pos < end {
        socket.writable().await?;
        let sent = socket.try_io(Interest::WRITABLE, || {
            file.send_to(socket.as_fd(), pos, (end - pos) as usize)
                .unwrap_or_else(|| Err(io::ErrorKind::Unsupported.into()))
        });
        match sent {
            Ok(0) => return Err(cut_short(records)),
            Ok(n) => pos += n as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                let rest = FileRecords {
                    position: pos,
                    len: (end - pos) as usize,
                    ..records.clone()
                };
                return writer.write_all(&read_records(&rest)?).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A segment file that ended before the records a response promised (cut back after a
/// failed fsync while the response was on its way): the frame can't be completed.
fn cut_short(records: &FileRecords) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "{} ended before the {} bytes at {} a Fetch response promised",
            records.path.display(),
            records.len,
            records.position
        ),
    )
}

/// The client address as Java's `InetAddress.getHostAddress()` prints it, which is what
/// Kafka reports (`/10.0.0.5`) and matches ACL hosts against: an IPv4-mapped IPv6 address as
/// IPv4, other IPv6 addresses in full (`0:0:0:0:0:0:0:1`), without `::` compression.
pub fn java_host_address(ip: std::net::IpAddr) -> String {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => v6
            .segments()
            .iter()
            .map(|s| format!("{s:x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

#[cfg(test)]
mod tests {
    use super::java_host_address;

    #[test]
    fn client_addresses_print_as_java_does_so_acl_hosts_match() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(java_host_address(ip("10.0.0.5")), "10.0.0.5");
        assert_eq!(java_host_address(ip("::ffff:10.0.0.5")), "10.0.0.5");
        assert_eq!(java_host_address(ip("::1")), "0:0:0:0:0:0:0:1");
        assert_eq!(
            java_host_address(ip("fe80::1:abcd")),
            "fe80:0:0:0:0:0:1:abcd"
        );
    }
}
