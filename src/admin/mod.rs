//! An admin client of the Kafka protocol, shared by the `gregor` command line (over TCP, to
//! any broker: Gregor or Apache Kafka) and the web console's JSON API (in process, through
//! the same request handlers a Kafka client reaches).
//!
//! [`Admin`] sends typed requests at the highest version both sides know, over a
//! [`Transport`]; the operations (`cluster`, `topics`, `offsets`, `messages`, `groups`) are
//! written once against it and return plain, serializable results.

pub mod cluster;
pub mod group_member;
pub mod group_offsets;
pub mod groups;
pub mod in_process;
pub mod messages;
pub mod murmur2;
pub mod network;
pub mod offsets;
pub mod topics;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, Ordering};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use kafka_protocol::ResponseError;

/// Which broker a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// Any broker (the bootstrap one).
    Any,
    /// The broker with this node id (a partition's leader, a group's coordinator).
    Node(i32),
}

/// A transport's answer to come.
pub type RoundTrip<'a> = Pin<Box<dyn Future<Output = Result<Bytes, AdminError>> + Send + 'a>>;

/// How requests reach a broker: a frame out (request header and body, no size prefix), a
/// frame back (response header and body). Used as `dyn Transport`, so that the operations
/// are compiled once for both transports.
pub trait Transport: Send + Sync {
    /// The highest version of `api` the broker serves, if it serves it.
    fn max_version(&self, api: ApiKey) -> Option<i16>;

    /// Sends one request frame to `target` and returns its response frame.
    fn round_trip(&self, target: Target, api: ApiKey, frame: Bytes) -> RoundTrip<'_>;

    /// Learns the brokers' addresses (node id, host, port) from a Metadata answer.
    fn learn_brokers(&self, _brokers: &[(i32, String, i32)]) {}
}

/// Why an admin operation failed, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminError {
    /// The broker could not be reached or the connection broke.
    Connection(String),
    /// The broker answered with a Kafka error code.
    Kafka {
        error: i16,
        message: Option<String>,
        /// What was being done (`creating topic t`).
        doing: String,
    },
    /// The broker does not serve an API this operation needs.
    Unsupported(String),
    /// What was asked for does not exist.
    NotFound(String),
    /// The request is not valid as given (a bad argument).
    Invalid(String),
    /// A frame that does not decode.
    Protocol(String),
}

impl AdminError {
    /// The error of a Kafka error code while `doing` something, or `Ok` for 0.
    pub fn check(
        code: i16,
        message: Option<&StrBytes>,
        doing: impl FnOnce() -> String,
    ) -> Result<(), AdminError> {
        if code == 0 {
            return Ok(());
        }
        Err(AdminError::Kafka {
            error: code,
            message: message.map(ToString::to_string).filter(|m| !m.is_empty()),
            doing: doing(),
        })
    }

    /// Kafka's name of the error code, when this is one (`UNKNOWN_TOPIC_OR_PARTITION`).
    pub fn kafka_name(&self) -> Option<String> {
        match self {
            AdminError::Kafka { error, .. } => Some(error_name(*error)),
            _ => None,
        }
    }
}

/// Kafka's name of an error code (`UNKNOWN_TOPIC_OR_PARTITION`).
pub fn error_name(code: i16) -> String {
    ResponseError::try_from_code(code).map_or_else(
        || format!("UNKNOWN_ERROR_{code}"),
        crate::metrics::error_name,
    )
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::Connection(m) => write!(f, "cannot reach the broker: {m}"),
            AdminError::Kafka {
                error,
                message,
                doing,
            } => {
                write!(f, "{doing}: {}", error_name(*error))?;
                if let Some(m) = message {
                    write!(f, " ({m})")?;
                }
                Ok(())
            }
            AdminError::Unsupported(m)
            | AdminError::NotFound(m)
            | AdminError::Invalid(m)
            | AdminError::Protocol(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for AdminError {}

/// The admin client: typed requests over a transport.
pub struct Admin {
    transport: Box<dyn Transport>,
    client_id: String,
    correlation_id: AtomicI32,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl Admin {
    pub fn new(transport: impl Transport + 'static, client_id: &str) -> Admin {
        Admin {
            transport: Box::new(transport),
            client_id: client_id.to_string(),
            correlation_id: AtomicI32::new(1),
        }
    }

    pub fn transport(&self) -> &dyn Transport {
        self.transport.as_ref()
    }

    /// The version `R` is sent at: the highest both this client and the broker know.
    pub fn version_of<R: Request>(&self) -> Result<i16, AdminError> {
        let api = ApiKey::try_from(R::KEY)
            .map_err(|()| AdminError::Unsupported(format!("API key {}", R::KEY)))?;
        let broker_max = self
            .transport
            .max_version(api)
            .ok_or_else(|| AdminError::Unsupported(format!("the broker does not serve {api:?}")))?;
        let version = broker_max.min(R::VERSIONS.max);
        if version < R::VERSIONS.min {
            return Err(AdminError::Unsupported(format!(
                "the broker serves {api:?} only up to v{broker_max}, older than this client knows"
            )));
        }
        Ok(version)
    }

    /// Whether the broker serves `api` at all.
    pub fn serves(&self, api: ApiKey) -> bool {
        self.transport.max_version(api).is_some()
    }

    /// Sends `request` to `target` at the negotiated version; `build` gets the version to
    /// fill fields that depend on it.
    pub async fn send<R: Request>(
        &self,
        target: Target,
        request: &R,
    ) -> Result<R::Response, AdminError> {
        let version = self.version_of::<R>()?;
        self.send_at(target, request, version).await
    }

    /// Sends `request` at `version`.
    pub async fn send_at<R: Request>(
        &self,
        target: Target,
        request: &R,
        version: i16,
    ) -> Result<R::Response, AdminError> {
        let api = ApiKey::try_from(R::KEY)
            .map_err(|()| AdminError::Unsupported(format!("API key {}", R::KEY)))?;
        let correlation_id = self.correlation_id.fetch_add(1, Ordering::Relaxed);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_string(self.client_id.clone())));
        let mut frame = BytesMut::new();
        let encoded = header
            .encode(&mut frame, api.request_header_version(version))
            .and_then(|()| request.encode(&mut frame, version));
        encoded.map_err(|e| AdminError::Invalid(format!("cannot encode {api:?}: {e}")))?;
        let mut answer = self
            .transport
            .round_trip(target, api, frame.freeze())
            .await?;
        let header = ResponseHeader::decode(&mut answer, api.response_header_version(version))
            .map_err(|e| AdminError::Protocol(format!("{api:?} response header: {e}")))?;
        if header.correlation_id != correlation_id {
            return Err(AdminError::Protocol(format!(
                "{api:?} answered correlation id {} for {correlation_id}",
                header.correlation_id
            )));
        }
        R::Response::decode(&mut answer, version)
            .map_err(|e| AdminError::Protocol(format!("{api:?} v{version} response: {e}")))
    }
}
