//! The admin client's transport over TCP: a connection per broker (opened on first use,
//! dropped when it breaks), one request at a time on each, versions from the bootstrap
//! broker's ApiVersions. PLAINTEXT listeners only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{AdminError, RoundTrip, Target, Transport};

/// Largest response frame read (a Fetch answer is bounded by the max_bytes asked for).
const MAX_RESPONSE_BYTES: usize = 256 << 20;

type Connection = Arc<tokio::sync::Mutex<TcpStream>>;

/// Connections to a cluster, found from its bootstrap servers.
#[derive(Debug)]
pub struct NetworkTransport {
    bootstrap: String,
    timeout: Duration,
    /// Highest version of each API key the bootstrap broker serves.
    versions: HashMap<i16, i16>,
    /// Brokers' `host:port` by node id, from Metadata answers.
    brokers: Mutex<HashMap<i32, String>>,
    connections: tokio::sync::Mutex<HashMap<Target, Connection>>,
}

impl NetworkTransport {
    /// Connects to the first reachable of `bootstrap` (`host:port`, comma-separated) and
    /// asks which API versions it serves. `timeout` bounds every connect and round trip.
    pub async fn connect(
        bootstrap: &str,
        timeout: Duration,
    ) -> Result<NetworkTransport, AdminError> {
        let mut last_error = AdminError::Invalid("no bootstrap server given".into());
        for server in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match Self::api_versions(server, timeout).await {
                Ok((stream, versions)) => {
                    let mut connections = HashMap::new();
                    connections.insert(Target::Any, Arc::new(tokio::sync::Mutex::new(stream)));
                    return Ok(NetworkTransport {
                        bootstrap: server.to_string(),
                        timeout,
                        versions,
                        brokers: Mutex::new(HashMap::new()),
                        connections: tokio::sync::Mutex::new(connections),
                    });
                }
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    async fn open(addr: &str, timeout: Duration) -> Result<TcpStream, AdminError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                AdminError::Connection(format!(
                    "{addr}: no connection within {} ms",
                    timeout.as_millis()
                ))
            })?
            .map_err(|e| AdminError::Connection(format!("{addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// ApiVersions v0, which every broker answers.
    async fn api_versions(
        addr: &str,
        timeout: Duration,
    ) -> Result<(TcpStream, HashMap<i16, i16>), AdminError> {
        let mut stream = Self::open(addr, timeout).await?;
        let mut frame = BytesMut::new();
        let header = kafka_protocol::messages::RequestHeader::default()
            .with_request_api_key(ApiKey::ApiVersions as i16)
            .with_request_api_version(0)
            .with_correlation_id(0);
        header
            .encode(&mut frame, 1)
            .and_then(|()| ApiVersionsRequest::default().encode(&mut frame, 0))
            .map_err(|e| AdminError::Protocol(format!("ApiVersions: {e}")))?;
        let mut answer = round_trip_on(&mut stream, &frame, timeout, addr).await?;
        // Response header v0: the correlation id.
        if answer.len() < 4 {
            return Err(AdminError::Protocol(format!(
                "{addr}: short ApiVersions answer"
            )));
        }
        let _ = answer.split_to(4);
        let response = ApiVersionsResponse::decode(&mut answer, 0)
            .map_err(|e| AdminError::Protocol(format!("{addr}: ApiVersions answer: {e}")))?;
        AdminError::check(response.error_code, None, || {
            format!("asking {addr} for its API versions")
        })?;
        let versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.max_version))
            .collect();
        Ok((stream, versions))
    }

    /// One round trip to `target` on its connection (opened if needed, dropped if broken).
    async fn exchange(&self, target: Target, frame: Bytes) -> Result<Bytes, AdminError> {
        let connection = self.connection(target).await?;
        let mut stream = connection.lock().await;
        let addr = stream
            .peer_addr()
            .map_or_else(|_| format!("{target:?}"), |a| a.to_string());
        let answer = round_trip_on(&mut stream, &frame, self.timeout, &addr).await;
        if answer.is_err() {
            // A broken or desynchronised connection is not reused.
            drop(stream);
            self.connections.lock().await.remove(&target);
        }
        answer
    }

    async fn connection(&self, target: Target) -> Result<Connection, AdminError> {
        let mut connections = self.connections.lock().await;
        if let Some(c) = connections.get(&target) {
            return Ok(c.clone());
        }
        let addr = match target {
            Target::Any => self.bootstrap.clone(),
            Target::Node(id) => self
                .brokers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&id)
                .cloned()
                .ok_or_else(|| {
                    AdminError::Connection(format!("no address known for broker {id}"))
                })?,
        };
        let stream = Self::open(&addr, self.timeout).await?;
        let c = Arc::new(tokio::sync::Mutex::new(stream));
        connections.insert(target, c.clone());
        Ok(c)
    }
}

/// Writes a frame with its size prefix and reads the answer's frame.
async fn round_trip_on(
    stream: &mut TcpStream,
    frame: &[u8],
    timeout: Duration,
    addr: &str,
) -> Result<Bytes, AdminError> {
    let exchange = async {
        let size =
            u32::try_from(frame.len()).map_err(|_| std::io::Error::other("request too large"))?;
        let mut out = Vec::with_capacity(4 + frame.len());
        out.extend_from_slice(&size.to_be_bytes());
        out.extend_from_slice(frame);
        stream.write_all(&out).await?;
        let mut size = [0u8; 4];
        stream.read_exact(&mut size).await?;
        let size = u32::from_be_bytes(size) as usize;
        if size > MAX_RESPONSE_BYTES {
            return Err(std::io::Error::other(format!("a response of {size} bytes")));
        }
        let mut body = vec![0u8; size];
        stream.read_exact(&mut body).await?;
        Ok(Bytes::from(body))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(AdminError::Connection(format!("{addr}: {e}"))),
        Err(_) => Err(AdminError::Connection(format!(
            "{addr}: no answer within {} ms",
            timeout.as_millis()
        ))),
    }
}

impl Transport for NetworkTransport {
    fn max_version(&self, api: ApiKey) -> Option<i16> {
        self.versions.get(&(api as i16)).copied()
    }

    fn round_trip(&self, target: Target, _api: ApiKey, frame: Bytes) -> RoundTrip<'_> {
        Box::pin(self.exchange(target, frame))
    }

    fn learn_brokers(&self, brokers: &[(i32, String, i32)]) {
        let mut known = self
            .brokers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (id, host, port) in brokers {
            known.insert(*id, format!("{host}:{port}"));
        }
    }
}
