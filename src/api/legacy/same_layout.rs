//! The removed versions whose request and response layouts are those of the next version:
//! OffsetFetch v0 (v1's; v0 read ZooKeeper-stored offsets before Kafka 0.8.2, and since
//! KRaft both read the group coordinator's) and DescribeLogDirs v0 (v1 changed only what
//! its throttle time means). They run as that version, unchanged.

use std::sync::Arc;

use bytes::Bytes;

use super::{supported, Dispatched, RequestContext, RequestError};
use crate::broker::Broker;

pub fn route(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    mut body: Bytes,
    as_version: i16,
) -> Result<Dispatched, RequestError> {
    let api = supported(ctx.api_key)
        .ok_or_else(|| RequestError(format!("{:?} is not supported", ctx.api_key)))?;
    let modern = RequestContext {
        version: as_version,
        ..ctx.clone()
    };
    (api.route)(broker, modern, &mut body)
}
