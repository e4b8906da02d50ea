//! The Kafka APIs: one file per API, all registered in [`SUPPORTED_APIS`]. ApiVersions is
//! answered from that table, so an API is advertised exactly when it has a handler here.
//!
//! A request is decoded on the connection's read loop; a decode error closes the
//! connection, as Kafka does. Every request takes effect in the order it was read: the
//! read loop runs each handler to completion before reading the next request, except that
//! Produce returns once it has appended and leaves only the wait for the fsync to a future
//! that may overlap later requests (so pipelined produces share one fsync). Responses are
//! written in request order.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod alter_share_group_offsets;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod authorization;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_share_group_offsets;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_share_group_offsets;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod errors;
pub mod fetch;
pub mod fetch_response;
pub mod find_coordinator;
pub mod frame_parts;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod legacy;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod response_errors;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod share_acknowledge;
pub mod share_acknowledgements;
pub mod share_fetch;
pub mod share_group_describe;
pub mod share_group_heartbeat;
pub mod sync_group;
pub mod txn_offset_commit;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::broker::Broker;
pub use response_errors::ErrorCodes;

/// Counts the error codes of an answer to the request of `ctx`.
pub fn count_errors(ctx: &RequestContext, body: &dyn ErrorCodes) {
    let metrics = crate::metrics::global();
    let api = crate::metrics::api_name(ctx.api_key);
    body.error_codes(&mut |code| metrics.error(api, code));
}

/// How a request of one API is decoded and handed to its handler.
type Route = fn(&Arc<Broker>, RequestContext, &mut Bytes) -> Result<Dispatched, RequestError>;

/// An API, the versions Gregor serves, and its handler.
#[derive(Clone, Copy)]
pub struct SupportedApi {
    pub key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
    route: Route,
}

impl std::fmt::Debug for SupportedApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupportedApi")
            .field("key", &self.key)
            .field("min_version", &self.min_version)
            .field("max_version", &self.max_version)
            .finish()
    }
}

/// A table entry whose handler runs in request order: `api!(Key, min, max, module::handle)`.
macro_rules! api {
    ($key:ident, $min:expr, $max:expr, $handler:expr) => {
        SupportedApi {
            key: ApiKey::$key,
            min_version: $min,
            max_version: $max,
            route: |broker, ctx, body| {
                deferred(broker, ctx, body, $handler).map(Dispatched::in_order)
            },
        }
    };
}

/// A table entry whose handler does file-system work (creating, deleting or resizing
/// partitions, writing configs and checkpoints, creating internal topics): it runs in
/// request order like `api!`, but on tokio's blocking pool, so that a CreateTopics of
/// thousands of partitions does not hold an async worker that other connections need.
macro_rules! blocking_api {
    ($key:ident, $min:expr, $max:expr, $handler:path) => {
        api!($key, $min, $max, |broker, ctx, request| {
            run_blocking(move || {
                tokio::runtime::Handle::current().block_on($handler(broker, ctx, request))
            })
        })
    };
}

/// Runs `f` on tokio's blocking pool and waits for it. A panic in `f` resumes here, so it
/// ends the connection exactly as a panic in an async handler does.
pub async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let task = tokio::runtime::Handle::current().spawn_blocking(move || {
        // block_on needs the runtime's context, which blocking threads have.
        f()
    });
    match task.await {
        Ok(value) => value,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("a blocking handler task was cancelled: {e}"),
        },
    }
}

/// Every API Gregor answers, with its version range and handler: ApiVersions advertises
/// exactly this table and `dispatch` routes through it, so an API cannot be advertised
/// without a handler. These are Kafka 4's versions; with `legacy.protocol.enable` the
/// versions Kafka 4 removed are served too (api/legacy/). Produce v0-v2 are advertised
/// either way, as Kafka 4 advertises them (librdkafka needs them to negotiate, KAFKA-18659);
/// with the setting off a request of those versions closes the connection, as Kafka 4.1
/// and 4.2 do.
pub const SUPPORTED_APIS: &[SupportedApi] = &[
    SupportedApi {
        key: ApiKey::Produce,
        min_version: 0,
        max_version: 13,
        route: produce::route,
    },
    api!(Fetch, 4, 18, fetch::handle),
    api!(ListOffsets, 1, 10, list_offsets::handle),
    api!(Metadata, 0, 13, metadata::handle),
    api!(ApiVersions, 0, 4, api_versions::handle),
    blocking_api!(CreateTopics, 2, 7, create_topics::handle),
    blocking_api!(DeleteTopics, 1, 6, delete_topics::handle),
    api!(OffsetForLeaderEpoch, 2, 4, offset_for_leader_epoch::handle),
    blocking_api!(FindCoordinator, 0, 6, find_coordinator::handle),
    api!(JoinGroup, 0, 9, join_group::handle),
    api!(SyncGroup, 0, 5, sync_group::handle),
    api!(Heartbeat, 0, 4, heartbeat::handle),
    api!(LeaveGroup, 0, 5, leave_group::handle),
    api!(OffsetCommit, 2, 9, offset_commit::handle),
    api!(OffsetFetch, 1, 9, offset_fetch::handle),
    api!(ListGroups, 0, 5, list_groups::handle),
    api!(
        ConsumerGroupHeartbeat,
        0,
        1,
        consumer_group_heartbeat::handle
    ),
    api!(ConsumerGroupDescribe, 0, 1, consumer_group_describe::handle),
    api!(ShareGroupHeartbeat, 1, 1, share_group_heartbeat::handle),
    api!(ShareGroupDescribe, 1, 1, share_group_describe::handle),
    SupportedApi {
        key: ApiKey::ShareFetch,
        min_version: 1,
        max_version: 2,
        route: share_fetch::route,
    },
    SupportedApi {
        key: ApiKey::ShareAcknowledge,
        min_version: 1,
        max_version: 2,
        route: share_acknowledge::route,
    },
    SupportedApi {
        key: ApiKey::DescribeShareGroupOffsets,
        min_version: 0,
        max_version: 1,
        route: describe_share_group_offsets::route,
    },
    api!(
        AlterShareGroupOffsets,
        0,
        0,
        alter_share_group_offsets::handle
    ),
    api!(
        DeleteShareGroupOffsets,
        0,
        0,
        delete_share_group_offsets::handle
    ),
    api!(DescribeGroups, 0, 6, describe_groups::handle),
    api!(DeleteGroups, 0, 2, delete_groups::handle),
    api!(OffsetDelete, 0, 0, offset_delete::handle),
    api!(DescribeConfigs, 1, 4, describe_configs::handle),
    api!(DescribeAcls, 1, 3, describe_acls::handle),
    blocking_api!(CreateAcls, 1, 3, create_acls::handle),
    blocking_api!(DeleteAcls, 1, 3, delete_acls::handle),
    blocking_api!(AlterConfigs, 0, 2, alter_configs::handle),
    blocking_api!(
        IncrementalAlterConfigs,
        0,
        1,
        incremental_alter_configs::handle
    ),
    blocking_api!(CreatePartitions, 0, 3, create_partitions::handle),
    blocking_api!(DeleteRecords, 0, 2, delete_records::handle),
    api!(DescribeLogDirs, 1, 4, describe_log_dirs::handle),
    api!(DescribeCluster, 0, 2, describe_cluster::handle),
    api!(DescribeProducers, 0, 0, describe_producers::handle),
    api!(ElectLeaders, 0, 2, elect_leaders::handle),
    blocking_api!(InitProducerId, 0, 5, init_producer_id::handle),
    api!(AddPartitionsToTxn, 0, 5, add_partitions_to_txn::handle),
    api!(AddOffsetsToTxn, 0, 4, add_offsets_to_txn::handle),
    api!(TxnOffsetCommit, 0, 5, txn_offset_commit::handle),
    api!(EndTxn, 0, 4, end_txn::handle),
    api!(DescribeTransactions, 0, 0, describe_transactions::handle),
    api!(ListTransactions, 0, 2, list_transactions::handle),
    api!(
        DescribeTopicPartitions,
        0,
        0,
        describe_topic_partitions::handle
    ),
    api!(SaslHandshake, 0, 1, sasl_handshake::handle),
    api!(SaslAuthenticate, 0, 2, sasl_authenticate::handle),
    api!(
        DescribeUserScramCredentials,
        0,
        0,
        describe_user_scram_credentials::handle
    ),
    blocking_api!(
        AlterUserScramCredentials,
        0,
        0,
        alter_user_scram_credentials::handle
    ),
];

pub fn supported(key: ApiKey) -> Option<&'static SupportedApi> {
    SUPPORTED_APIS.iter().find(|a| a.key == key)
}

/// What the connection does with a request's outcome.
pub enum Response {
    /// A complete frame (size prefix, response header, body) to write.
    Frame(BytesMut),
    /// A complete frame in parts, some of them record ranges still in segment files
    /// (Fetch), and its length in bytes.
    Parts(Vec<frame_parts::Part>, usize),
    /// Nothing to send (Produce with acks=0).
    None,
    /// Close the connection (Produce with acks=0 that failed, as Kafka does).
    Close,
}

pub type ResponseFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

/// A dispatched request: its response, and whether later requests may be handled before
/// it resolves (true only for Produce's wait for durability: its effects already happened).
pub struct Dispatched {
    pub response: ResponseFuture,
    pub may_overlap: bool,
}

impl Dispatched {
    /// Counts the request and how long its answer took once it is ready
    /// (`kafka_network_requestmetrics_requests`, `..._totaltimems`).
    fn timed(self, api_key: ApiKey, version: i16) -> Dispatched {
        let started = std::time::Instant::now();
        let response = self.response;
        Dispatched {
            response: Box::pin(async move {
                let answer = response.await;
                let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
                crate::metrics::global().request(
                    api_key as i16,
                    crate::metrics::api_name(api_key),
                    version,
                    elapsed_ms,
                );
                answer
            }),
            may_overlap: self.may_overlap,
        }
    }

    fn in_order(response: ResponseFuture) -> Dispatched {
        Dispatched {
            response,
            may_overlap: false,
        }
    }
}

/// A request the connection must not answer: it is closed instead (as Kafka does).
#[derive(Debug)]
pub struct RequestError(pub String);

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a handler knows about the request besides its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub api_key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// The peer's address as Kafka reports it (`/127.0.0.1`).
    pub client_host: String,
    /// Index of the listener the request came through (`Broker::endpoint`).
    pub listener: usize,
    /// Who sent it, as Kafka's `KafkaPrincipal` prints (`User:alice`, `User:ANONYMOUS`).
    pub principal: String,
    /// The connection it came on (unique while the broker runs): share sessions belong to
    /// the connection that opened them.
    pub connection: u64,
}

/// The connection a request came on: what `RequestContext` takes from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// `/127.0.0.1`.
    pub client_host: String,
    pub listener: usize,
    pub principal: String,
    /// `RequestContext::connection`.
    pub connection: u64,
}

impl Peer {
    /// A client on the first listener, unauthenticated (tests, fuzzing).
    pub fn anonymous(client_host: &str) -> Peer {
        Peer {
            client_host: client_host.to_string(),
            listener: 0,
            principal: ANONYMOUS.to_string(),
            connection: 0,
        }
    }
}

/// Kafka's principal of a connection that did not authenticate.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// Encodes `body` as a complete response frame, counting its error codes
/// (`kafka_network_requestmetrics_errors`).
pub fn encode_response<R: Encodable + ErrorCodes>(ctx: &RequestContext, body: &R) -> Response {
    count_errors(ctx, body);
    let header_version = if ctx.api_key == ApiKey::ApiVersions {
        0
    } else {
        ctx.api_key.response_header_version(ctx.version)
    };
    let body_size = match body.compute_size(ctx.version) {
        Ok(size) => size,
        Err(e) => {
            tracing::error!(api = ?ctx.api_key, version = ctx.version, error = %e, "response too large to encode");
            return Response::Close;
        }
    };
    let header_size = if header_version >= 1 { 5 } else { 4 };
    let mut frame = BytesMut::with_capacity(4 + header_size + body_size);
    frame.put_i32((header_size + body_size) as i32);
    frame.put_i32(ctx.correlation_id);
    if header_version >= 1 {
        frame.put_u8(0); // no tagged fields
    }
    if let Err(e) = body.encode(&mut frame, ctx.version) {
        tracing::error!(api = ?ctx.api_key, version = ctx.version, error = %e, "encoding a response failed");
        return Response::Close;
    }
    Response::Frame(frame)
}

fn decode<T: Decodable>(ctx: &RequestContext, body: &mut Bytes) -> Result<T, RequestError> {
    T::decode(body, ctx.version).map_err(|e| {
        RequestError(format!(
            "malformed {:?} v{} request: {e}",
            ctx.api_key, ctx.version
        ))
    })
}

/// What a handler returns: a response of the protocol crate (encoded by `deferred`), or one
/// that encodes itself (Fetch, around records still in their files).
pub trait IntoResponse {
    fn into_response(self, ctx: &RequestContext) -> Response;
}

impl<T: Encodable + ErrorCodes> IntoResponse for T {
    fn into_response(self, ctx: &RequestContext) -> Response {
        encode_response(ctx, &self)
    }
}

/// Decodes now, runs `handler` later (when the connection awaits the response).
fn deferred<Req, Resp, F, Fut>(
    broker: &Arc<Broker>,
    ctx: RequestContext,
    body: &mut Bytes,
    handler: F,
) -> Result<ResponseFuture, RequestError>
where
    Req: Decodable + Send + 'static,
    Resp: IntoResponse,
    F: FnOnce(Arc<Broker>, RequestContext, Req) -> Fut + Send + 'static,
    Fut: Future<Output = Resp> + Send + 'static,
{
    let request: Req = decode(&ctx, body)?;
    let broker = broker.clone();
    Ok(Box::pin(async move {
        let response = handler(broker, ctx.clone(), request).await;
        response.into_response(&ctx)
    }))
}

/// Parses the request header of `frame` and routes the request to its API.
pub fn dispatch(
    broker: &Arc<Broker>,
    frame: BytesMut,
    peer: Peer,
) -> Result<Dispatched, RequestError> {
    let mut body = frame.freeze();
    if body.len() < 8 {
        return Err(RequestError(format!(
            "request of {} bytes is too short for a request header",
            body.len()
        )));
    }
    let key = i16::from_be_bytes([body[0], body[1]]);
    let version = i16::from_be_bytes([body[2], body[3]]);
    let correlation_id = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
    let api_key =
        ApiKey::try_from(key).map_err(|()| RequestError(format!("unknown API key {key}")))?;
    let Some(api) = supported(api_key) else {
        return Err(RequestError(format!("API {api_key:?} is not supported")));
    };
    // A version Kafka 4 removed, served again with legacy.protocol.enable (api/legacy/).
    let legacy = broker.config.legacy_protocol_enable && legacy::serves(api_key, version);
    if (version < legacy::served_min_version(api) && !legacy) || version > api.max_version {
        if api_key == ApiKey::ApiVersions {
            // KIP-511: answer in v0 so that any client can read which versions exist.
            let ctx = RequestContext {
                api_key,
                version: 0,
                correlation_id,
                client_id: None,
                client_host: peer.client_host,
                listener: peer.listener,
                principal: peer.principal,
                connection: peer.connection,
            };
            let response = api_versions::unsupported_version_response();
            return Ok(Dispatched::in_order(Box::pin(async move {
                encode_response(&ctx, &response)
            })));
        }
        return Err(RequestError(format!(
            "{api_key:?} v{version} is not supported (v{}-v{})",
            api.min_version, api.max_version
        )));
    }
    let header_version = api_key.request_header_version(version);
    let header = RequestHeader::decode(&mut body, header_version)
        .map_err(|e| RequestError(format!("malformed request header: {e}")))?;
    let ctx = RequestContext {
        api_key,
        version,
        correlation_id,
        client_id: header.client_id.map(|s| s.to_string()),
        client_host: peer.client_host,
        listener: peer.listener,
        principal: peer.principal,
        connection: peer.connection,
    };
    let dispatched = if legacy {
        legacy::route(broker, ctx, &mut body)?
    } else {
        (api.route)(broker, ctx, &mut body)?
    };
    Ok(dispatched.timed(api_key, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_api_is_listed_once_and_within_the_protocol_crate() {
        for (i, a) in SUPPORTED_APIS.iter().enumerate() {
            assert!(
                SUPPORTED_APIS[i + 1..].iter().all(|b| b.key != a.key),
                "{:?} listed twice",
                a.key
            );
            let crate_range = a.key.valid_versions();
            // v2 of the share APIs is Kafka 4.2's, bridged by hand (share_acknowledgements.rs).
            let bridged = matches!(
                a.key,
                ApiKey::ShareFetch | ApiKey::ShareAcknowledge | ApiKey::DescribeShareGroupOffsets
            );
            assert!(
                a.max_version <= crate_range.max + i16::from(bridged),
                "{:?}",
                a.key
            );
            if a.key != ApiKey::Produce {
                assert!(a.min_version >= crate_range.min, "{:?}", a.key);
            }
        }
    }
}
