//! One SASL exchange on a connection, after SaslHandshake picked the mechanism: PLAIN
//! (RFC 4616: `authzid NUL user NUL password`, checked against the listener's JAAS users)
//! or SCRAM (`scram.rs`, against the credential store). Kafka's principal for the result is
//! `User:<name>`.

use std::collections::BTreeMap;

use super::credentials::CredentialStore;
use super::scram::{constant_time_eq, ScramServer, ScramStep};
use crate::config::listeners::SaslMechanism;

/// What the exchange says after a client message.
#[derive(Debug, PartialEq, Eq)]
pub enum SaslStep {
    /// Send this challenge; more is to come.
    Continue(Vec<u8>),
    /// Authenticated as `user`; send `response` (may be empty).
    Authenticated { user: String, response: Vec<u8> },
    /// Refused: SASL_AUTHENTICATION_FAILED with this message, then the connection closes.
    Failed(String),
}

pub struct SaslExchange {
    mechanism: SaslMechanism,
    scram: Option<ScramServer>,
}

impl SaslExchange {
    pub fn new(mechanism: SaslMechanism) -> SaslExchange {
        SaslExchange {
            mechanism,
            scram: (mechanism != SaslMechanism::Plain).then(|| ScramServer::new(mechanism)),
        }
    }

    pub fn mechanism(&self) -> SaslMechanism {
        self.mechanism
    }

    /// Takes the client's next token.
    pub fn step(
        &mut self,
        token: &[u8],
        plain_users: &BTreeMap<String, String>,
        credentials: &CredentialStore,
    ) -> SaslStep {
        match &mut self.scram {
            None => plain(token, plain_users),
            Some(scram) => {
                let mechanism = self.mechanism;
                match scram.step(token, |user| credentials.get(user, mechanism)) {
                    Ok(ScramStep::Challenge(c)) => SaslStep::Continue(c),
                    Ok(ScramStep::Done { user, server_final }) => SaslStep::Authenticated {
                        user,
                        response: server_final,
                    },
                    Err(reason) => SaslStep::Failed(reason),
                }
            }
        }
    }
}

fn plain(token: &[u8], users: &BTreeMap<String, String>) -> SaslStep {
    let failed = || SaslStep::Failed("Authentication failed: Invalid username or password".into());
    let mut parts = token.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return SaslStep::Failed("Invalid SASL/PLAIN response: expected 3 tokens".into());
    };
    let (Ok(authzid), Ok(user)) = (std::str::from_utf8(authzid), std::str::from_utf8(user)) else {
        return failed();
    };
    if user.is_empty() {
        return SaslStep::Failed("Authentication failed: username not specified".into());
    }
    if !authzid.is_empty() && authzid != user {
        return SaslStep::Failed(
            "Authentication failed: Client requested an authorization id that is different from username".into(),
        );
    }
    match users.get(user) {
        Some(expected) if constant_time_eq(expected.as_bytes(), password) => {
            SaslStep::Authenticated {
                user: user.to_string(),
                response: Vec::new(),
            }
        }
        _ => failed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_checks_the_jaas_users() {
        let users = BTreeMap::from([("alice".to_string(), "alice-pw".to_string())]);
        assert_eq!(
            plain(b"\0alice\0alice-pw", &users),
            SaslStep::Authenticated {
                user: "alice".into(),
                response: Vec::new()
            }
        );
        assert!(matches!(
            plain(b"\0alice\0wrong", &users),
            SaslStep::Failed(_)
        ));
        assert!(matches!(
            plain(b"\0bob\0alice-pw", &users),
            SaslStep::Failed(_)
        ));
        assert!(matches!(
            plain(b"bob\0alice\0alice-pw", &users),
            SaslStep::Failed(_)
        ));
        assert!(matches!(plain(b"alice-pw", &users), SaslStep::Failed(_)));
    }
}
