//! Listeners and their security, with Kafka's names: `listeners` (`NAME://HOST:PORT`, one or
//! more), `advertised.listeners` (per name), `listener.security.protocol.map` (name →
//! PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; Kafka's default maps each protocol's own name
//! to itself), the TLS settings (`ssl.*`) and SASL settings (`sasl.enabled.mechanisms`, the
//! JAAS PLAIN users), each overridable per listener as `listener.name.<name>.<setting>` (the
//! name lower-cased, as Kafka writes it).

use crate::security::principal_mapping::PrincipalMappingRules;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::raw::RawConfig;
use super::ConfigError;

/// How a listener's connections are secured (Kafka's `SecurityProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    fn parse(name: &str) -> Option<SecurityProtocol> {
        match name {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// A SASL mechanism Gregor serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    pub fn parse(name: &str) -> Option<SaslMechanism> {
        match name {
            "PLAIN" => Some(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Some(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(SaslMechanism::ScramSha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A PEM value: a file (re-read when it changes) or the text itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemSource {
    File(PathBuf),
    Inline(String),
}

/// Where a listener's private key and certificate chain come from (`ssl.keystore.type: PEM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keystore {
    /// `ssl.keystore.location`: one PEM file with the private key and the chain.
    File(PathBuf),
    /// `ssl.keystore.key` and `ssl.keystore.certificate.chain`.
    Inline { key: String, chain: String },
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// A TLS listener's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub keystore: Keystore,
    /// `ssl.truststore.location` or `ssl.truststore.certificates`: the CAs client
    /// certificates must chain to.
    pub truststore: Option<PemSource>,
    pub client_auth: ClientAuth,
    /// `ssl.enabled.protocols`: TLSv1.2 and/or TLSv1.3.
    pub enabled_protocols: Vec<String>,
    /// `ssl.cipher.suites` (IANA names; empty: rustls's defaults).
    pub cipher_suites: Vec<String>,
    /// `ssl.principal.mapping.rules`: a client certificate's subject to a principal name.
    pub principal_mapping: PrincipalMappingRules,
}

/// A SASL listener's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslSettings {
    /// `sasl.enabled.mechanisms`.
    pub mechanisms: Vec<SaslMechanism>,
    /// PLAIN's users and passwords, from the JAAS `user_<name>="<password>"` options of
    /// `listener.name.<name>.plain.sasl.jaas.config`.
    pub plain_users: BTreeMap<String, String>,
}

/// A listener: where it binds, how it is secured, and what it advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub protocol: SecurityProtocol,
    /// From `advertised.listeners` (same name), else the listener itself; an empty host is
    /// filled in with the machine's host name at start-up (Kafka's wildcard resolution), port
    /// 0 with the bound port. 0.0.0.0 is refused, as Kafka refuses it.
    pub advertised_host: String,
    pub advertised_port: u16,
    pub tls: Option<TlsSettings>,
    pub sasl: Option<SaslSettings>,
}

impl Listener {
    /// The address to bind: the host resolved (empty: every interface) with the port.
    pub fn socket_addr(&self) -> std::io::Result<SocketAddr> {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        use std::net::ToSocketAddrs;
        (host, self.port).to_socket_addrs()?.next().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("host `{}` has no address", self.host),
            )
        })
    }
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.name, self.host, self.port)
    }
}

/// Broker keys that may also be set per listener as `listener.name.<name>.<key>`.
pub const LISTENER_SCOPED: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.truststore.password",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.protocol",
    "ssl.cipher.suites",
    "ssl.principal.mapping.rules",
    "ssl.endpoint.identification.algorithm",
    "sasl.enabled.mechanisms",
];

/// Whether `key` is a per-listener form of a listener-scoped key, or a JAAS config
/// (`listener.name.<name>.<mechanism>.sasl.jaas.config`).
pub fn is_listener_scoped_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("listener.name.") else {
        return false;
    };
    let Some((_, setting)) = rest.split_once('.') else {
        return false;
    };
    if LISTENER_SCOPED.contains(&setting) {
        return true;
    }
    matches!(
        setting,
        "plain.sasl.jaas.config"
            | "scram-sha-256.sasl.jaas.config"
            | "scram-sha-512.sasl.jaas.config"
    )
}

/// A listener's value of `key`: `listener.name.<name>.<key>` if set, else `key`.
fn scoped(raw: &RawConfig, listener: &str, key: &str) -> (String, Option<String>) {
    let own = format!("listener.name.{}.{key}", listener.to_lowercase());
    if let Some(v) = raw.get(&own) {
        return (own, Some(v.to_string()));
    }
    (key.to_string(), raw.get(key).map(str::to_string))
}

/// `NAME://HOST:PORT, ...` (names not checked here).
fn parse_endpoints(key: &str, value: &str) -> Result<Vec<(String, String, u16)>, ConfigError> {
    let mut out: Vec<(String, String, u16)> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = item
            .split_once("://")
            .ok_or_else(|| ConfigError::new(key, format!("`{item}` is not NAME://HOST:PORT")))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| ConfigError::new(key, format!("`{item}` has no port")))?;
        let port: u16 = port
            .parse()
            .map_err(|_| ConfigError::new(key, format!("`{port}` is not a port number")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if out.iter().any(|(n, _, _)| n == name) {
            return Err(ConfigError::new(
                key,
                format!("listener name `{name}` appears twice"),
            ));
        }
        out.push((name.to_string(), host.to_string(), port));
    }
    if out.is_empty() {
        return Err(ConfigError::new(
            key,
            format!("`{value}` names no listener (expected NAME://HOST:PORT)"),
        ));
    }
    Ok(out)
}

/// `listener.security.protocol.map`: `NAME:PROTOCOL, ...`.
fn parse_protocol_map(value: &str) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    let key = "listener.security.protocol.map";
    let mut map = BTreeMap::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, protocol) = item
            .split_once(':')
            .ok_or_else(|| ConfigError::new(key, format!("`{item}` is not NAME:PROTOCOL")))?;
        let protocol = SecurityProtocol::parse(protocol.trim()).ok_or_else(|| {
            ConfigError::new(
                key,
                format!("`{protocol}` is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
            )
        })?;
        map.insert(name.trim().to_string(), protocol);
    }
    Ok(map)
}

/// Every listener with its security settings.
pub fn parse(raw: &RawConfig) -> Result<Vec<Listener>, ConfigError> {
    let endpoints = parse_endpoints(
        "listeners",
        &raw.string("listeners", "PLAINTEXT://127.0.0.1:9092"),
    )?;
    let advertised_raw = raw.string("advertised.listeners", "");
    let advertised = if advertised_raw.trim().is_empty() {
        Vec::new()
    } else {
        parse_endpoints("advertised.listeners", &advertised_raw)?
    };
    let map = parse_protocol_map(&raw.string(
        "listener.security.protocol.map",
        "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
    ))?;
    for (name, _, _) in &advertised {
        if !endpoints.iter().any(|(n, _, _)| n == name) {
            return Err(ConfigError::new(
                "advertised.listeners",
                format!("`{name}` is not a name in listeners"),
            ));
        }
    }
    let mut out = Vec::new();
    for (name, host, port) in endpoints {
        let protocol = *map.get(&name).ok_or_else(|| {
            ConfigError::new(
                "listener.security.protocol.map",
                format!("listener `{name}` has no security protocol in the map"),
            )
        })?;
        let (advertised_host, advertised_port) = advertised
            .iter()
            .find(|(n, _, _)| *n == name)
            .map_or((host.clone(), port), |(_, h, p)| (h.clone(), *p));
        // Kafka's KafkaConfig check: clients cannot connect to the wildcard address.
        if advertised_host == "0.0.0.0" {
            return Err(ConfigError::new(
                "advertised.listeners",
                "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. Use a routable IP address.",
            ));
        }
        let tls = protocol
            .uses_tls()
            .then(|| tls_settings(raw, &name))
            .transpose()?;
        let sasl = protocol
            .uses_sasl()
            .then(|| sasl_settings(raw, &name))
            .transpose()?;
        out.push(Listener {
            name,
            host,
            port,
            protocol,
            advertised_host,
            advertised_port,
            tls,
            sasl,
        });
    }
    Ok(out)
}

fn tls_settings(raw: &RawConfig, listener: &str) -> Result<TlsSettings, ConfigError> {
    let get = |key: &str| scoped(raw, listener, key);
    for key in ["ssl.keystore.type", "ssl.truststore.type"] {
        let (name, value) = get(key);
        if let Some(v) = value.filter(|v| v.trim() != "PEM") {
            return Err(ConfigError::new(
                name,
                format!("`{v}`: only PEM keystores and truststores are supported (convert with `openssl pkcs12`)"),
            ));
        }
    }
    for key in ["ssl.key.password", "ssl.keystore.password"] {
        let (name, value) = get(key);
        if value.is_some_and(|v| !v.is_empty()) {
            return Err(ConfigError::new(
                name,
                "encrypted private keys are not supported: give the key unencrypted (PKCS#8 PEM)",
            ));
        }
    }
    let keystore = match (
        get("ssl.keystore.location"),
        get("ssl.keystore.key"),
        get("ssl.keystore.certificate.chain"),
    ) {
        ((_, Some(path)), _, _) => Keystore::File(PathBuf::from(path)),
        (_, (_, Some(key)), (_, Some(chain))) => Keystore::Inline { key, chain },
        ((name, None), _, _) => {
            return Err(ConfigError::new(
                name,
                format!("listener `{listener}` uses TLS and needs ssl.keystore.location (or ssl.keystore.key with ssl.keystore.certificate.chain)"),
            ))
        }
    };
    let truststore = match (
        get("ssl.truststore.location"),
        get("ssl.truststore.certificates"),
    ) {
        ((_, Some(path)), _) => Some(PemSource::File(PathBuf::from(path))),
        (_, (_, Some(text))) => Some(PemSource::Inline(text)),
        _ => None,
    };
    let (name, value) = get("ssl.client.auth");
    let client_auth = match value.as_deref().map_or("none", str::trim) {
        "none" => ClientAuth::None,
        "requested" => ClientAuth::Requested,
        "required" => ClientAuth::Required,
        other => {
            return Err(ConfigError::new(
                name,
                format!("`{other}` is not none, requested or required"),
            ))
        }
    };
    if client_auth != ClientAuth::None && truststore.is_none() {
        return Err(ConfigError::new(
            name,
            "client authentication needs a truststore (ssl.truststore.location or ssl.truststore.certificates)",
        ));
    }
    let list = |key: &str, default: &str| -> (String, Vec<String>) {
        let (name, value) = get(key);
        let value = value.unwrap_or_else(|| default.to_string());
        (
            name,
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        )
    };
    let (name, enabled_protocols) = list("ssl.enabled.protocols", "TLSv1.2,TLSv1.3");
    if enabled_protocols.is_empty()
        || enabled_protocols
            .iter()
            .any(|p| p != "TLSv1.2" && p != "TLSv1.3")
    {
        return Err(ConfigError::new(
            name,
            "only TLSv1.2 and TLSv1.3 are supported",
        ));
    }
    let (_, cipher_suites) = list("ssl.cipher.suites", "");
    let (name, rules) = get("ssl.principal.mapping.rules");
    let principal_mapping = match rules {
        None => PrincipalMappingRules::default(),
        Some(text) => PrincipalMappingRules::parse(&text).map_err(|e| ConfigError::new(name, e))?,
    };
    Ok(TlsSettings {
        keystore,
        truststore,
        client_auth,
        enabled_protocols,
        cipher_suites,
        principal_mapping,
    })
}

fn sasl_settings(raw: &RawConfig, listener: &str) -> Result<SaslSettings, ConfigError> {
    let (name, value) = scoped(raw, listener, "sasl.enabled.mechanisms");
    let value = value.unwrap_or_else(|| "GSSAPI".to_string());
    let mut mechanisms = Vec::new();
    for m in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let mechanism = SaslMechanism::parse(m).ok_or_else(|| {
            ConfigError::new(
                name.clone(),
                format!("`{m}` is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); Kafka's default is GSSAPI, so a SASL listener must set this"),
            )
        })?;
        mechanisms.push(mechanism);
    }
    if mechanisms.is_empty() {
        return Err(ConfigError::new(name, "names no mechanism"));
    }
    let mut plain_users = BTreeMap::new();
    if mechanisms.contains(&SaslMechanism::Plain) {
        let key = format!(
            "listener.name.{}.plain.sasl.jaas.config",
            listener.to_lowercase()
        );
        let jaas = raw.get(&key).ok_or_else(|| {
            ConfigError::new(
                key.clone(),
                "PLAIN needs its users: org.apache.kafka.common.security.plain.PlainLoginModule required user_<name>=\"<password>\";",
            )
        })?;
        plain_users = jaas_plain_users(&key, jaas)?;
    }
    Ok(SaslSettings {
        mechanisms,
        plain_users,
    })
}

/// The `user_<name>="<password>"` options of a PlainLoginModule JAAS entry.
fn jaas_plain_users(key: &str, jaas: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = jaas.trim();
    let rest = text
        .strip_prefix("org.apache.kafka.common.security.plain.PlainLoginModule")
        .ok_or_else(|| {
            ConfigError::new(
                key,
                "expected org.apache.kafka.common.security.plain.PlainLoginModule",
            )
        })?;
    let rest = rest.trim_start();
    let rest = ["required", "requisite", "sufficient", "optional"]
        .iter()
        .find_map(|flag| rest.strip_prefix(flag))
        .ok_or_else(|| {
            ConfigError::new(
                key,
                "expected a control flag (required) after the login module",
            )
        })?;
    let rest = rest
        .trim()
        .strip_suffix(';')
        .ok_or_else(|| ConfigError::new(key, "a JAAS entry ends with `;`"))?;
    let mut users = BTreeMap::new();
    let mut chars = rest.trim();
    while !chars.is_empty() {
        let (name, after) = chars
            .split_once('=')
            .ok_or_else(|| ConfigError::new(key, format!("`{chars}` is not option=\"value\"")))?;
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| ConfigError::new(key, "an option value has no closing quote"))?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            after.split_once(char::is_whitespace).unwrap_or((after, ""))
        };
        if let Some(user) = name.trim().strip_prefix("user_") {
            users.insert(user.to_string(), value.to_string());
        }
        chars = remaining.trim();
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(yaml: &str) -> RawConfig {
        RawConfig::from_yaml(yaml).unwrap()
    }

    #[test]
    fn listeners_take_their_protocol_from_the_map_and_their_settings_per_name() {
        let r = raw(r#"
listeners: PLAINTEXT://127.0.0.1:9092,SECURE://127.0.0.1:9093,SASL_PLAINTEXT://127.0.0.1:9094
advertised.listeners: SECURE://broker.example:19093
listener.security.protocol.map: PLAINTEXT:PLAINTEXT,SECURE:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT
ssl.keystore.location: /etc/gregor/broker.pem
listener.name.secure.ssl.client.auth: requested
ssl.truststore.location: /etc/gregor/ca.pem
sasl.enabled.mechanisms: SCRAM-SHA-512
listener.name.sasl_plaintext.sasl.enabled.mechanisms: PLAIN,SCRAM-SHA-256
listener.name.sasl_plaintext.plain.sasl.jaas.config: 'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice pw";'
"#);
        let ls = parse(&r).unwrap();
        assert_eq!(ls.len(), 3);
        assert_eq!(ls[0].protocol, SecurityProtocol::Plaintext);
        assert!(ls[0].tls.is_none() && ls[0].sasl.is_none());
        let secure = &ls[1];
        assert_eq!(secure.protocol, SecurityProtocol::SaslSsl);
        assert_eq!(
            (secure.advertised_host.as_str(), secure.advertised_port),
            ("broker.example", 19093)
        );
        let tls = secure.tls.as_ref().unwrap();
        assert_eq!(tls.client_auth, ClientAuth::Requested);
        assert_eq!(
            tls.keystore,
            Keystore::File("/etc/gregor/broker.pem".into())
        );
        assert_eq!(
            secure.sasl.as_ref().unwrap().mechanisms,
            vec![SaslMechanism::ScramSha512]
        );
        let sasl = ls[2].sasl.as_ref().unwrap();
        assert_eq!(
            sasl.mechanisms,
            vec![SaslMechanism::Plain, SaslMechanism::ScramSha256]
        );
        assert_eq!(
            sasl.plain_users.get("alice").map(String::as_str),
            Some("alice pw")
        );
        assert_eq!(sasl.plain_users.len(), 2);
        assert!(is_listener_scoped_key(
            "listener.name.secure.ssl.client.auth"
        ));
        assert!(is_listener_scoped_key(
            "listener.name.x.scram-sha-256.sasl.jaas.config"
        ));
        assert!(!is_listener_scoped_key("listener.name.x.num.partitions"));
    }

    #[test]
    fn bad_security_settings_name_their_key() {
        let err = |yaml: &str| parse(&raw(yaml)).unwrap_err().key;
        assert_eq!(err("listeners: SSL://h:1\n"), "ssl.keystore.location");
        assert_eq!(
            err("listeners: SSL://h:1\nssl.keystore.location: k\nssl.keystore.type: JKS\n"),
            "ssl.keystore.type"
        );
        assert_eq!(
            err("listeners: SSL://h:1\nssl.keystore.location: k\nlistener.name.ssl.ssl.client.auth: required\n"),
            "listener.name.ssl.ssl.client.auth"
        );
        assert_eq!(
            err("listeners: SASL_PLAINTEXT://h:1\n"),
            "sasl.enabled.mechanisms"
        );
        assert_eq!(
            err("listeners: SASL_PLAINTEXT://h:1\nsasl.enabled.mechanisms: PLAIN\n"),
            "listener.name.sasl_plaintext.plain.sasl.jaas.config"
        );
        assert_eq!(
            err("listeners: FOO://h:1\n"),
            "listener.security.protocol.map"
        );
        assert_eq!(
            err("listeners: PLAINTEXT://h:1\nadvertised.listeners: OTHER://h:2\n"),
            "advertised.listeners"
        );
        assert_eq!(
            err("listeners: PLAINTEXT://h:1,PLAINTEXT://h:2\n"),
            "listeners"
        );
    }

    #[test]
    fn the_wildcard_address_is_not_advertised() {
        let err = parse(&raw("listeners: PLAINTEXT://0.0.0.0:9092\n")).unwrap_err();
        assert_eq!(err.key, "advertised.listeners");
        assert!(err.message.contains("nonroutable meta-address 0.0.0.0"));
        let ok = parse(&raw(
            "listeners: PLAINTEXT://0.0.0.0:9092\nadvertised.listeners: PLAINTEXT://broker:9092\n",
        ))
        .unwrap();
        assert_eq!(ok[0].advertised_host, "broker");
        // An empty host binds every interface and advertises the host name at start-up.
        assert_eq!(
            parse(&raw("listeners: PLAINTEXT://:9092\n")).unwrap()[0].advertised_host,
            ""
        );
    }
}
