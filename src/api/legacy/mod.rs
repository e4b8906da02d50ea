//! The protocol versions Kafka 4 removed (KIP-896), served again when
//! `legacy.protocol.enable` is on, with Kafka 3.9's semantics: Produce v0-v2, Fetch v0-v3,
//! ListOffsets v0, OffsetCommit v0-v1, OffsetFetch v0, CreateTopics v0-v1, DeleteTopics v0,
//! OffsetForLeaderEpoch v0-v1, DescribeConfigs v0, DescribeLogDirs v0, and DescribeAcls,
//! CreateAcls and DeleteAcls v0: every version Kafka 3.9 served of the APIs Gregor has.
//!
//! None of them has a handler of its own. Each file here reads its old request into the
//! request of the oldest version Kafka 4 still serves (its *floor*), converting message
//! formats v0/v1 where records travel; [`bridge`] runs that request through the API's
//! normal route (authorization, metrics, the same code as every client) and writes the
//! floor's answer back in the old layout. Off, Gregor advertises and accepts exactly
//! Kafka 4's versions: a removed version closes the connection, Produce v0-v2 included
//! (Kafka 4 advertises them, for librdkafka's negotiation, and closes on use).

mod acls;
mod create_topics;
mod delete_topics;
mod describe_configs;
mod fetch;
mod list_offsets;
mod offset_commit;
mod offset_for_leader_epoch;
mod produce;
mod same_layout;
pub mod wire;

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable};

use super::{supported, Dispatched, RequestContext, RequestError, Response, SupportedApi};
use crate::broker::Broker;

/// The oldest version of each API served when `legacy.protocol.enable` is on (Kafka 3.9's).
const LEGACY_MIN_VERSIONS: &[(ApiKey, i16)] = &[
    (ApiKey::Produce, 0),
    (ApiKey::Fetch, 0),
    (ApiKey::ListOffsets, 0),
    (ApiKey::OffsetCommit, 0),
    (ApiKey::OffsetFetch, 0),
    (ApiKey::CreateTopics, 0),
    (ApiKey::DeleteTopics, 0),
    (ApiKey::OffsetForLeaderEpoch, 0),
    (ApiKey::DescribeConfigs, 0),
    (ApiKey::DescribeLogDirs, 0),
    (ApiKey::DescribeAcls, 0),
    (ApiKey::CreateAcls, 0),
    (ApiKey::DeleteAcls, 0),
];

/// The oldest version of `key` served to legacy clients, if Kafka 4 removed some of its
/// versions.
pub fn min_version(key: ApiKey) -> Option<i16> {
    LEGACY_MIN_VERSIONS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
}

/// The oldest version of `api` Kafka 4 serves: its advertised minimum, except Produce,
/// which Kafka 4 advertises from v0 (KAFKA-18659) and serves from v3.
pub fn served_min_version(api: &SupportedApi) -> i16 {
    if api.key == ApiKey::Produce {
        3
    } else {
        api.min_version
    }
}

/// Whether `version` of `key` is one of the removed versions this module serves.
pub fn serves(key: ApiKey, version: i16) -> bool {
    let Some(api) = supported(key) else {
        return false;
    };
    min_version(key).is_some_and(|min| version >= min && version < served_min_version(api))
}

/// Routes a request of a removed version (`serves` said yes) to its converter.
pub fn route(
    broker: &Arc<Broker>,
    ctx: RequestContext,
    body: &mut Bytes,
) -> Result<Dispatched, RequestError> {
    let body = std::mem::take(body);
    match ctx.api_key {
        ApiKey::Produce => produce::route(broker, &ctx, body),
        ApiKey::Fetch => fetch::route(broker, &ctx, body),
        ApiKey::ListOffsets => list_offsets::route(broker, &ctx, body),
        ApiKey::OffsetCommit => offset_commit::route(broker, &ctx, body),
        ApiKey::OffsetFetch => same_layout::route(broker, &ctx, body, 1),
        ApiKey::DescribeLogDirs => same_layout::route(broker, &ctx, body, 1),
        ApiKey::OffsetForLeaderEpoch => offset_for_leader_epoch::route(broker, &ctx, body),
        ApiKey::DescribeConfigs => describe_configs::route(broker, &ctx, body),
        ApiKey::DescribeAcls => acls::describe(broker, &ctx, body),
        ApiKey::CreateAcls => acls::create(broker, &ctx, body),
        ApiKey::DeleteAcls => acls::delete(broker, &ctx, body),
        ApiKey::CreateTopics => create_topics::route(broker, &ctx, body),
        ApiKey::DeleteTopics => delete_topics::route(broker, &ctx, body),
        other => Err(RequestError(format!(
            "{other:?} v{} is not served",
            ctx.version
        ))),
    }
}

/// Runs `request` as version `floor` of the same API through its normal route, then
/// `answer` writes the floor's response as the old version's body. Produce keeps its
/// overlap with later requests; acks=0 answers nothing and a closing answer closes.
fn bridge<Req, Resp, F>(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    floor: i16,
    request: &Req,
    answer: F,
) -> Result<Dispatched, RequestError>
where
    Req: Encodable,
    Resp: Decodable + Send + 'static,
    F: FnOnce(Resp) -> BytesMut + Send + 'static,
{
    let mut encoded = BytesMut::new();
    request.encode(&mut encoded, floor).map_err(|e| {
        RequestError(format!(
            "{:?} v{} does not convert to v{floor}: {e}",
            ctx.api_key, ctx.version
        ))
    })?;
    let api = supported(ctx.api_key)
        .ok_or_else(|| RequestError(format!("{:?} is not supported", ctx.api_key)))?;
    let modern = RequestContext {
        version: floor,
        ..ctx.clone()
    };
    let dispatched = (api.route)(broker, modern, &mut encoded.freeze())?;
    let (api_key, version, correlation_id) = (ctx.api_key, ctx.version, ctx.correlation_id);
    let response = dispatched.response;
    Ok(Dispatched {
        may_overlap: dispatched.may_overlap,
        response: Box::pin(async move {
            let frame = match response.await {
                Response::Frame(frame) => frame,
                Response::Parts(parts, _) => match super::frame_parts::into_frame(parts) {
                    Ok(frame) => frame,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading records for a legacy fetch failed");
                        return Response::Close;
                    }
                },
                other => return other,
            };
            // Size and correlation id; the floors all use response header v0.
            let mut body = frame.freeze().slice(8..);
            let modern = match Resp::decode(&mut body, floor) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(?api_key, floor, error = %e, "a floor response does not decode");
                    return Response::Close;
                }
            };
            let body = answer(modern);
            let mut out = BytesMut::with_capacity(8 + body.len());
            out.put_i32(4 + body.len() as i32);
            out.put_i32(correlation_id);
            out.put_slice(&body);
            tracing::trace!(?api_key, version, "answered a legacy request");
            Response::Frame(out)
        }),
    })
}
