//! TLS for `SSL` and `SASL_SSL` listeners, with rustls: the server configuration is built
//! from the listener's PEM keystore (private key and certificate chain) and truststore (the
//! CAs client certificates must chain to, for `ssl.client.auth`), with its
//! `ssl.enabled.protocols` and `ssl.cipher.suites`. Files are re-read when their
//! modification time changes (checked at most once a second, on accept), so certificates
//! can be rotated without a restart; a rotation that fails to load keeps the previous
//! configuration and logs why.
//!
//! Synchronisation: one `TlsListener` per listener, shared by its accept loop; the current
//! configuration is an `Arc` behind a mutex, cloned per connection.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::listeners::{ClientAuth, Keystore, PemSource, TlsSettings};

/// Why a listener's TLS configuration could not be built; names the setting.
#[derive(Debug)]
pub struct TlsError {
    pub listener: String,
    pub message: String,
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS for listener {}: {}", self.listener, self.message)
    }
}

impl std::error::Error for TlsError {}

/// A listener's TLS: the settings, and the configuration built from them.
pub struct TlsListener {
    name: String,
    settings: TlsSettings,
    current: Mutex<Current>,
}

struct Current {
    config: Arc<ServerConfig>,
    /// The files read and their modification times when they were.
    files: Vec<(PathBuf, Option<SystemTime>)>,
    checked: Instant,
}

impl TlsListener {
    /// The principal of a client's certificate chain: `Ok(None)` without a certificate (or
    /// one whose subject does not parse), `Err(subject)` when no mapping rule applies to it.
    pub fn client_principal(&self, chain: Option<&[u8]>) -> Result<Option<String>, String> {
        let Some(subject) = chain.and_then(super::principal::certificate_subject) else {
            return Ok(None);
        };
        match self.settings.principal_mapping.name(&subject) {
            Some(name) => Ok(Some(format!("User:{name}"))),
            None => Err(subject),
        }
    }

    pub fn new(name: &str, settings: &TlsSettings) -> Result<TlsListener, TlsError> {
        let files = watched_files(settings);
        let config = build(settings).map_err(|message| TlsError {
            listener: name.to_string(),
            message,
        })?;
        Ok(TlsListener {
            name: name.to_string(),
            settings: settings.clone(),
            current: Mutex::new(Current {
                config: Arc::new(config),
                files: files.iter().map(|p| (p.clone(), modified(p))).collect(),
                checked: Instant::now(),
            }),
        })
    }

    /// The acceptor for the next connection, with certificates re-read if their files
    /// changed.
    pub fn acceptor(&self) -> TlsAcceptor {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.checked.elapsed().as_secs() >= 1 {
            current.checked = Instant::now();
            let changed = current.files.iter().any(|(p, m)| modified(p) != *m);
            if changed {
                let files: Vec<_> = current
                    .files
                    .iter()
                    .map(|(p, _)| (p.clone(), modified(p)))
                    .collect();
                match build(&self.settings) {
                    Ok(config) => {
                        tracing::info!(listener = %self.name, "reloaded the TLS keystore and truststore");
                        current.config = Arc::new(config);
                    }
                    Err(e) => {
                        tracing::error!(listener = %self.name, error = %e, "the changed TLS files do not load; keeping the previous ones");
                    }
                }
                current.files = files;
            }
        }
        TlsAcceptor::from(current.config.clone())
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn watched_files(settings: &TlsSettings) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Keystore::File(p) = &settings.keystore {
        files.push(p.clone());
    }
    if let Some(PemSource::File(p)) = &settings.truststore {
        files.push(p.clone());
    }
    files
}

fn read(source: &PemSource) -> Result<Vec<u8>, String> {
    match source {
        PemSource::File(path) => {
            std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
        }
        PemSource::Inline(text) => Ok(text.as_bytes().to_vec()),
    }
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what} holds no PEM certificate"));
    }
    Ok(certs)
}

/// The provider with only the configured cipher suites (all of rustls's when unset).
fn provider(settings: &TlsSettings) -> Result<CryptoProvider, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !settings.cipher_suites.is_empty() {
        let all = provider.cipher_suites.clone();
        provider.cipher_suites = settings
            .cipher_suites
            .iter()
            .map(|name| {
                all.iter()
                    .find(|s| format!("{:?}", s.suite()) == *name)
                    .copied()
                    .ok_or_else(|| {
                        format!("ssl.cipher.suites: `{name}` is not a cipher suite rustls offers")
                    })
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(provider)
}

/// Builds the server configuration; the error says which setting is wrong.
fn build(settings: &TlsSettings) -> Result<ServerConfig, String> {
    let (key_pem, chain_pem, what) = match &settings.keystore {
        Keystore::File(path) => {
            let bytes = read(&PemSource::File(path.clone()))?;
            (
                bytes.clone(),
                bytes,
                format!("ssl.keystore.location {}", path.display()),
            )
        }
        Keystore::Inline { key, chain } => (
            key.as_bytes().to_vec(),
            chain.as_bytes().to_vec(),
            "ssl.keystore.key / ssl.keystore.certificate.chain".to_string(),
        ),
    };
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("{what}: no usable private key ({e}); it must be unencrypted PEM"))?;
    let chain = certificates(&chain_pem, &what)?;
    let provider = Arc::new(provider(settings)?);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = settings
        .enabled_protocols
        .iter()
        .map(|p| match p.as_str() {
            "TLSv1.3" => &rustls::version::TLS13,
            _ => &rustls::version::TLS12,
        })
        .collect();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("ssl.enabled.protocols / ssl.cipher.suites: {e}"))?;
    let builder = match (settings.client_auth, &settings.truststore) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(truststore)) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(&read(truststore)?, "the truststore")? {
                roots
                    .add(cert)
                    .map_err(|e| format!("the truststore: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| format!("the truststore: {e}"))?,
            )
        }
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("{what}: {e}"))
}
