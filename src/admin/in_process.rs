//! The admin client's transport inside the broker (the console's JSON API): request frames
//! go through `api::dispatch`, the route every Kafka client's requests take, so the console
//! gets the same validation, error codes and ACL checks as a client would.
//!
//! Requests run as `User:ANONYMOUS` from the HTTP client's address, on the first listener:
//! with an authorizer configured, the console can do what an unauthenticated client may.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;

use super::{AdminError, RoundTrip, Target, Transport};
use crate::api::{self, frame_parts, Peer, Response};
use crate::broker::Broker;

/// The connection id console requests carry (no Kafka connection has it).
const CONSOLE_CONNECTION: u64 = u64::MAX;

#[derive(Clone)]
pub struct InProcess {
    broker: Arc<Broker>,
    client_host: String,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("client_host", &self.client_host)
            .finish()
    }
}

impl InProcess {
    /// Requests as from `client_host` (`/127.0.0.1`, as Kafka prints hosts).
    pub fn new(broker: Arc<Broker>, client_host: String) -> InProcess {
        InProcess {
            broker,
            client_host,
        }
    }
}

impl Transport for InProcess {
    fn max_version(&self, api: ApiKey) -> Option<i16> {
        api::supported(api).map(|a| a.max_version)
    }

    fn round_trip(&self, _target: Target, api: ApiKey, frame: Bytes) -> RoundTrip<'_> {
        Box::pin(self.exchange(api, frame))
    }
}

impl InProcess {
    /// One request through the broker's dispatch.
    async fn exchange(&self, api: ApiKey, frame: Bytes) -> Result<Bytes, AdminError> {
        let peer = Peer {
            client_host: self.client_host.clone(),
            listener: 0,
            principal: api::ANONYMOUS.to_string(),
            connection: CONSOLE_CONNECTION,
        };
        let dispatched = api::dispatch(&self.broker, BytesMut::from(&frame[..]), peer)
            .map_err(|e| AdminError::Protocol(format!("{api:?}: {e}")))?;
        let mut answer = match dispatched.response.await {
            Response::Frame(bytes) => bytes,
            Response::Parts(parts, _) => frame_parts::into_frame(parts)
                .map_err(|e| AdminError::Connection(format!("reading records: {e}")))?,
            Response::None | Response::Close => {
                return Err(AdminError::Protocol(format!("{api:?} got no answer")))
            }
        };
        // The frame's size prefix.
        if answer.len() < 4 {
            return Err(AdminError::Protocol(format!("{api:?}: a short answer")));
        }
        let _ = answer.split_to(4);
        Ok(answer.freeze())
    }
}
