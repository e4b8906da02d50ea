//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the server side: credentials
//! (salt, StoredKey, ServerKey, iterations; never the password) and the two-round exchange
//! Kafka clients run inside SaslAuthenticate.
//!
//! ```text
//! client-first  n,,n=<user>,r=<client nonce>[,<extensions>]
//! server-first  r=<client nonce><server nonce>,s=<salt, base64>,i=<iterations>
//! client-final  c=<gs2 header, base64>,r=<nonce>,p=<ClientProof, base64>
//! server-final  v=<ServerSignature, base64>
//! ```

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use crate::config::listeners::SaslMechanism;

/// Kafka's bounds on a credential's iteration count (`ScramMechanism.minIterations`/
/// `maxIterations`).
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

/// A stored SCRAM credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

/// HMAC of the mechanism's hash. HMAC takes keys of any length, so the error branch is
/// unreachable; it yields no bytes (an authentication that fails) rather than a panic.
fn hmac(mechanism: SaslMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    fn with<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        <M as hmac::digest::KeyInit>::new_from_slice(key).map_or_else(
            |_| Vec::new(),
            |mut mac| {
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            },
        )
    }
    if mechanism == SaslMechanism::ScramSha512 {
        with::<Hmac<Sha512>>(key, data)
    } else {
        with::<Hmac<Sha256>>(key, data)
    }
}

fn hash(mechanism: SaslMechanism, data: &[u8]) -> Vec<u8> {
    if mechanism == SaslMechanism::ScramSha512 {
        Sha512::digest(data).to_vec()
    } else {
        Sha256::digest(data).to_vec()
    }
}

/// RFC 5802's Hi(): PBKDF2 with the mechanism's HMAC.
pub fn salted_password(
    mechanism: SaslMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    if mechanism == SaslMechanism::ScramSha512 {
        let mut out = vec![0u8; 64];
        pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
        out
    } else {
        let mut out = vec![0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
        out
    }
}

impl ScramCredential {
    /// The credential for a salted password (what AlterUserScramCredentials sends).
    pub fn from_salted_password(
        mechanism: SaslMechanism,
        salt: &[u8],
        salted: &[u8],
        iterations: i32,
    ) -> ScramCredential {
        let client_key = hmac(mechanism, salted, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            stored_key: hash(mechanism, &client_key),
            server_key: hmac(mechanism, salted, b"Server Key"),
            iterations,
        }
    }

    pub fn from_password(
        mechanism: SaslMechanism,
        password: &str,
        salt: &[u8],
        iterations: i32,
    ) -> ScramCredential {
        let salted = salted_password(
            mechanism,
            password.as_bytes(),
            salt,
            iterations.max(1) as u32,
        );
        Self::from_salted_password(mechanism, salt, &salted, iterations)
    }
}

/// Equal in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The server side of one exchange.
pub struct ScramServer {
    mechanism: SaslMechanism,
    state: State,
}

enum State {
    ClientFirst,
    ClientFinal {
        user: String,
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
        credential: ScramCredential,
    },
    Done,
}

/// What a step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum ScramStep {
    /// Send this and wait for the client's next message.
    Challenge(Vec<u8>),
    /// Authenticated as this user; send the server-final message.
    Done { user: String, server_final: Vec<u8> },
}

/// Kafka's text for every failure a client may see.
pub const INVALID_CREDENTIALS: &str =
    "Authentication failed during authentication due to invalid credentials with SASL mechanism";

/// SCRAM's `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=` is invalid.
fn decode_saslname(name: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i + 1..i + 3) {
            Some("2C") => out.push(','),
            Some("3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

impl ScramServer {
    pub fn new(mechanism: SaslMechanism) -> ScramServer {
        ScramServer {
            mechanism,
            state: State::ClientFirst,
        }
    }

    /// Takes the client's next message. `lookup` finds a user's credential for this
    /// mechanism. An error is the reason to give (the exchange is over).
    pub fn step(
        &mut self,
        message: &[u8],
        lookup: impl Fn(&str) -> Option<ScramCredential>,
    ) -> Result<ScramStep, String> {
        let failed = || format!("{INVALID_CREDENTIALS} {}", self.mechanism.name());
        let text =
            std::str::from_utf8(message).map_err(|_| "SCRAM messages are UTF-8".to_string())?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::ClientFirst => {
                // gs2-header: no channel binding ("n" or "y"), optional authzid.
                let mut parts = text.splitn(3, ',');
                let cbind = parts.next().unwrap_or_default();
                let authzid = parts.next().unwrap_or_default();
                let bare = parts
                    .next()
                    .ok_or("a SCRAM client-first message has three parts")?;
                if cbind != "n" && cbind != "y" {
                    return Err("channel binding is not supported".into());
                }
                let mut user = None;
                let mut client_nonce = None;
                for attr in bare.split(',') {
                    if let Some(v) = attr.strip_prefix("n=") {
                        user = decode_saslname(v);
                    } else if let Some(v) = attr.strip_prefix("r=") {
                        client_nonce = Some(v.to_string());
                    } else if attr.starts_with("m=") {
                        return Err("SCRAM mandatory extensions are not supported".into());
                    }
                }
                let (Some(user), Some(client_nonce)) = (user, client_nonce) else {
                    return Err("a SCRAM client-first message needs n= and r=".into());
                };
                if let Some(authz) = authzid.strip_prefix("a=") {
                    if decode_saslname(authz).as_deref() != Some(user.as_str()) {
                        return Err("Authentication failed: Client requested an authorization id that is different from username".into());
                    }
                }
                let credential = lookup(&user).ok_or_else(failed)?;
                let mut random = [0u8; 24];
                getrandom::fill(&mut random)
                    .map_err(|e| format!("no randomness for a nonce: {e}"))?;
                let nonce = format!(
                    "{client_nonce}{}",
                    BASE64.encode(random).replace(['+', '/', '='], "x")
                );
                let server_first = format!(
                    "r={nonce},s={},i={}",
                    BASE64.encode(&credential.salt),
                    credential.iterations
                );
                self.state = State::ClientFinal {
                    user,
                    gs2_header: format!("{cbind},{authzid},"),
                    client_first_bare: bare.to_string(),
                    server_first: server_first.clone(),
                    nonce,
                    credential,
                };
                Ok(ScramStep::Challenge(server_first.into_bytes()))
            }
            State::ClientFinal {
                user,
                gs2_header,
                client_first_bare,
                server_first,
                nonce,
                credential,
            } => {
                let (without_proof, proof) = text
                    .rsplit_once(",p=")
                    .ok_or("a SCRAM client-final message ends with p=")?;
                let mut channel = None;
                let mut final_nonce = None;
                for attr in without_proof.split(',') {
                    if let Some(v) = attr.strip_prefix("c=") {
                        channel = Some(v);
                    } else if let Some(v) = attr.strip_prefix("r=") {
                        final_nonce = Some(v);
                    }
                }
                if channel != Some(BASE64.encode(gs2_header.as_bytes()).as_str()) {
                    return Err("the SCRAM channel binding does not match".into());
                }
                // Kafka checks only that the client's nonce ends with the server's: older
                // librdkafka (2.0, Debian's kcat) sends its own nonce in front of it again.
                if !final_nonce.is_some_and(|n| n.ends_with(nonce.as_str())) {
                    return Err("Invalid client nonce in the final client message.".into());
                }
                let proof = BASE64.decode(proof).map_err(|_| failed())?;
                let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
                let signature = hmac(
                    self.mechanism,
                    &credential.stored_key,
                    auth_message.as_bytes(),
                );
                if proof.len() != signature.len() {
                    return Err(failed());
                }
                let client_key: Vec<u8> =
                    proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
                if !constant_time_eq(&hash(self.mechanism, &client_key), &credential.stored_key) {
                    return Err(failed());
                }
                let server_signature = hmac(
                    self.mechanism,
                    &credential.server_key,
                    auth_message.as_bytes(),
                );
                Ok(ScramStep::Done {
                    user,
                    server_final: format!("v={}", BASE64.encode(server_signature)).into_bytes(),
                })
            }
            State::Done => Err("the SCRAM exchange is already over".into()),
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The client side, for tests: RFC 5802's computations from the password.
    pub fn client_final(
        mechanism: SaslMechanism,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> String {
        let attr = |name: &str| {
            server_first
                .split(',')
                .find_map(|a| a.strip_prefix(name))
                .unwrap()
                .to_string()
        };
        let salt = BASE64.decode(attr("s=")).unwrap();
        let iterations: u32 = attr("i=").parse().unwrap();
        let salted = salted_password(mechanism, password.as_bytes(), &salt, iterations);
        let client_key = hmac(mechanism, &salted, b"Client Key");
        let stored_key = hash(mechanism, &client_key);
        let without_proof = format!("c=biws,r={}", attr("r="));
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac(mechanism, &stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        format!("{without_proof},p={}", BASE64.encode(proof))
    }

    /// RFC 7677's SCRAM-SHA-256 example: user "user", password "pencil".
    #[test]
    fn the_rfc_7677_exchange_authenticates() {
        let mechanism = SaslMechanism::ScramSha256;
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credential = ScramCredential::from_password(mechanism, "pencil", &salt, 4096);
        let mut server = ScramServer::new(mechanism);
        let first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
        let ScramStep::Challenge(server_first) = server
            .step(first.as_bytes(), |u| {
                (u == "user").then(|| credential.clone())
            })
            .unwrap()
        else {
            panic!("a challenge")
        };
        let server_first = String::from_utf8(server_first).unwrap();
        assert!(server_first.starts_with("r=rOprNGfwEbeRWgbNEkqO"));
        assert!(server_first.ends_with(",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
        let last = client_final(
            mechanism,
            "pencil",
            "n=user,r=rOprNGfwEbeRWgbNEkqO",
            &server_first,
        );
        match server.step(last.as_bytes(), |_| None).unwrap() {
            ScramStep::Done { user, server_final } => {
                assert_eq!(user, "user");
                assert!(server_final.starts_with(b"v="));
            }
            other @ ScramStep::Challenge(_) => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_wrong_password_or_unknown_user_fails() {
        for mechanism in [SaslMechanism::ScramSha256, SaslMechanism::ScramSha512] {
            let credential = ScramCredential::from_password(mechanism, "right", b"salt", 4096);
            let mut server = ScramServer::new(mechanism);
            let ScramStep::Challenge(sf) = server
                .step(b"n,,n=alice,r=abc", |_| Some(credential.clone()))
                .unwrap()
            else {
                panic!()
            };
            let last = client_final(
                mechanism,
                "wrong",
                "n=alice,r=abc",
                std::str::from_utf8(&sf).unwrap(),
            );
            assert!(server
                .step(last.as_bytes(), |_| None)
                .unwrap_err()
                .contains("invalid credentials"));
            let mut unknown = ScramServer::new(mechanism);
            assert!(unknown.step(b"n,,n=bob,r=abc", |_| None).is_err());
        }
        assert_eq!(decode_saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(decode_saslname("a=XY"), None);
    }
}
