//! The SASL phase of a connection on a `SASL_PLAINTEXT` or `SASL_SSL` listener (Kafka's
//! `SaslServerAuthenticator`). Until the client has authenticated, only ApiVersions,
//! SaslHandshake and SaslAuthenticate are served; any other request closes the connection,
//! as Kafka does. SaslHandshake v1 picks the mechanism, then SaslAuthenticate carries the
//! tokens; after SaslHandshake v0 the tokens come as bare size-prefixed frames. A failed
//! authentication is answered with SASL_AUTHENTICATION_FAILED after
//! `connection.failed.authentication.delay.ms`, then the connection closes.
//!
//! Re-authentication (KIP-368): with `connections.max.reauth.ms`, a request after the
//! session's end closes the connection unless the client re-authenticated first
//! (SaslHandshake again, same mechanism and principal); SaslAuthenticate v1+ tells the
//! client how long its session lasts, and only such clients can re-authenticate.
//!
//! Not synchronised: owned by the connection's read loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;

use crate::api::{self, RequestContext, Response};
use crate::broker::Broker;
use crate::config::listeners::{SaslMechanism, SaslSettings};
use crate::security::sasl::{SaslExchange, SaslStep};

/// What the connection does with a frame.
pub enum Verdict {
    /// Not an authentication request, and allowed now: dispatch it as usual.
    Dispatch,
    /// Answered here.
    Answer(Response),
    /// Answer (after the failed-authentication delay), then close.
    AnswerAndClose(Response, Duration),
    /// Close without an answer (the reason is logged).
    Close(String),
}

enum State {
    AwaitingHandshake,
    /// After SaslHandshake v1: tokens come in SaslAuthenticate requests.
    AwaitingAuthenticate(SaslExchange),
    /// After SaslHandshake v0: the next frame is a bare token.
    AwaitingRawToken(SaslExchange),
    Authenticated,
}

pub struct Authentication {
    listener: usize,
    settings: Arc<SaslSettings>,
    state: State,
    principal: Option<String>,
    mechanism: Option<SaslMechanism>,
    expires: Option<Instant>,
    /// The client authenticated with SaslAuthenticate v1+, so it can re-authenticate.
    can_reauthenticate: bool,
}

impl Authentication {
    pub fn new(listener: usize, settings: Arc<SaslSettings>) -> Authentication {
        Authentication {
            listener,
            settings,
            state: State::AwaitingHandshake,
            principal: None,
            mechanism: None,
            expires: None,
            can_reauthenticate: false,
        }
    }

    /// `User:<name>` once authenticated.
    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    /// Decides what to do with `frame` (a whole request, or a bare token after v0).
    pub fn on_frame(&mut self, broker: &Broker, frame: &BytesMut, client_host: &str) -> Verdict {
        let delay = broker.config.failed_authentication_delay;
        if let State::AwaitingRawToken(_) = self.state {
            let State::AwaitingRawToken(mut exchange) =
                std::mem::replace(&mut self.state, State::AwaitingHandshake)
            else {
                unreachable!("matched above")
            };
            return match exchange.step(frame, &self.settings.plain_users, &broker.credentials) {
                SaslStep::Continue(challenge) => {
                    self.state = State::AwaitingRawToken(exchange);
                    Verdict::Answer(raw_token(&challenge))
                }
                SaslStep::Authenticated { user, response } => {
                    self.authenticated(broker, exchange.mechanism(), user, false);
                    Verdict::Answer(raw_token(&response))
                }
                SaslStep::Failed(reason) => Verdict::Close(reason),
            };
        }
        if frame.len() < 8 {
            return Verdict::Dispatch;
        }
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let api_key = ApiKey::try_from(key).ok();
        let authenticated = matches!(self.state, State::Authenticated);
        let expired = self.expires.is_some_and(|at| Instant::now() >= at);
        match api_key {
            Some(ApiKey::ApiVersions) => Verdict::Dispatch,
            Some(ApiKey::SaslHandshake) if !authenticated || self.can_reauthenticate => {
                self.handshake(frame, version, client_host, delay)
            }
            Some(ApiKey::SaslAuthenticate)
                if matches!(self.state, State::AwaitingAuthenticate(_)) =>
            {
                self.authenticate(broker, frame, version, client_host, delay)
            }
            _ if authenticated && expired => Verdict::Close(
                "the SASL session expired (connections.max.reauth.ms) without re-authentication"
                    .into(),
            ),
            _ if authenticated => Verdict::Dispatch,
            other => Verdict::Close(format!(
                "unexpected request {other:?} during SASL authentication"
            )),
        }
    }

    fn context(
        &self,
        frame: &BytesMut,
        version: i16,
        client_host: &str,
    ) -> Option<(RequestContext, Bytes)> {
        let mut body = frame.clone().freeze();
        let key = ApiKey::try_from(i16::from_be_bytes([body[0], body[1]])).ok()?;
        let header = RequestHeader::decode(&mut body, key.request_header_version(version)).ok()?;
        Some((
            RequestContext {
                api_key: key,
                version,
                correlation_id: header.correlation_id,
                client_id: header.client_id.map(|s| s.to_string()),
                client_host: client_host.to_string(),
                listener: self.listener,
                principal: self
                    .principal
                    .clone()
                    .unwrap_or_else(|| api::ANONYMOUS.to_string()),
                // SASL requests open no share sessions.
                connection: 0,
            },
            body,
        ))
    }

    /// The request's context and body; `None` if either does not decode.
    fn decode<R: Decodable>(
        &self,
        frame: &BytesMut,
        version: i16,
        client_host: &str,
    ) -> Option<(RequestContext, R)> {
        let (ctx, mut body) = self.context(frame, version, client_host)?;
        let request = R::decode(&mut body, version).ok()?;
        Some((ctx, request))
    }

    fn handshake(
        &mut self,
        frame: &BytesMut,
        version: i16,
        client_host: &str,
        delay: Duration,
    ) -> Verdict {
        let Some((ctx, request)) = self.decode::<SaslHandshakeRequest>(frame, version, client_host)
        else {
            return Verdict::Close("a malformed SaslHandshake request".into());
        };
        let enabled: Vec<StrBytes> = self
            .settings
            .mechanisms
            .iter()
            .map(|m| StrBytes::from_static_str(m.name()))
            .collect();
        let wanted = SaslMechanism::parse(request.mechanism.as_str())
            .filter(|m| self.settings.mechanisms.contains(m));
        let reauthenticating = matches!(self.state, State::Authenticated);
        let Some(mechanism) = wanted.filter(|m| !reauthenticating || Some(*m) == self.mechanism)
        else {
            let response = SaslHandshakeResponse::default()
                .with_error_code(ResponseError::UnsupportedSaslMechanism.code())
                .with_mechanisms(enabled);
            return Verdict::AnswerAndClose(api::encode_response(&ctx, &response), delay);
        };
        let exchange = SaslExchange::new(mechanism);
        self.state = if version == 0 {
            State::AwaitingRawToken(exchange)
        } else {
            State::AwaitingAuthenticate(exchange)
        };
        let response = SaslHandshakeResponse::default().with_mechanisms(enabled);
        Verdict::Answer(api::encode_response(&ctx, &response))
    }

    fn authenticate(
        &mut self,
        broker: &Broker,
        frame: &BytesMut,
        version: i16,
        client_host: &str,
        delay: Duration,
    ) -> Verdict {
        let Some((ctx, request)) =
            self.decode::<SaslAuthenticateRequest>(frame, version, client_host)
        else {
            return Verdict::Close("a malformed SaslAuthenticate request".into());
        };
        let State::AwaitingAuthenticate(mut exchange) =
            std::mem::replace(&mut self.state, State::AwaitingHandshake)
        else {
            return Verdict::Close("SaslAuthenticate before SaslHandshake".into());
        };
        let failed = |message: String| {
            let response = SaslAuthenticateResponse::default()
                .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                .with_error_message(Some(StrBytes::from_string(message)));
            Verdict::AnswerAndClose(api::encode_response(&ctx, &response), delay)
        };
        match exchange.step(
            &request.auth_bytes,
            &self.settings.plain_users,
            &broker.credentials,
        ) {
            SaslStep::Continue(challenge) => {
                self.state = State::AwaitingAuthenticate(exchange);
                let response =
                    SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(challenge));
                Verdict::Answer(api::encode_response(&ctx, &response))
            }
            SaslStep::Authenticated { user, response } => {
                let principal = format!("User:{user}");
                if self.principal.as_ref().is_some_and(|p| *p != principal) {
                    return failed("Cannot change principals during re-authentication".into());
                }
                let lifetime = self.authenticated(broker, exchange.mechanism(), user, version >= 1);
                let response = SaslAuthenticateResponse::default()
                    .with_auth_bytes(Bytes::from(response))
                    .with_session_lifetime_ms(lifetime);
                Verdict::Answer(api::encode_response(&ctx, &response))
            }
            SaslStep::Failed(message) => failed(message),
        }
    }

    /// Records the authentication; returns the session lifetime to announce (0: none).
    fn authenticated(
        &mut self,
        broker: &Broker,
        mechanism: SaslMechanism,
        user: String,
        can_reauthenticate: bool,
    ) -> i64 {
        self.state = State::Authenticated;
        self.principal = Some(format!("User:{user}"));
        self.mechanism = Some(mechanism);
        self.can_reauthenticate = can_reauthenticate;
        let lifetime = broker.config.connections_max_reauth_ms;
        // Enforced for every client; only v1+ clients are told, and can re-authenticate.
        self.expires =
            (lifetime > 0).then(|| Instant::now() + Duration::from_millis(lifetime as u64));
        lifetime
    }
}

/// A bare SASL token frame (after SaslHandshake v0).
fn raw_token(token: &[u8]) -> Response {
    let mut out = BytesMut::with_capacity(4 + token.len());
    out.extend_from_slice(&(token.len() as i32).to_be_bytes());
    out.extend_from_slice(token);
    Response::Frame(out)
}
