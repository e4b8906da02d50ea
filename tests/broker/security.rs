//! Listeners with security, driven by a real client (Debian's kcat, librdkafka with
//! OpenSSL and SASL) and by raw requests: TLS, mutual TLS, SASL PLAIN and SCRAM over
//! plaintext and TLS, wrong passwords and untrusted certificates refused, requests before
//! authentication closed, SCRAM credentials managed over the API and kept across a restart.
//! Certificates are made by `openssl` at test time; without kcat or openssl these tests say
//! SKIPPED.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::raw::{authenticate_plain, call, exchange};
use crate::support::{closed_by_broker, Broker};

fn tools_available(test: &str) -> bool {
    for tool in ["kcat", "openssl"] {
        let found = Command::new(tool)
            .arg(if tool == "kcat" { "-V" } else { "version" })
            .output()
            .is_ok();
        if !found {
            eprintln!("SKIPPED {test}: {tool} is not installed (`make deps` installs it)");
            return false;
        }
    }
    true
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 (with its key, as one PEM keystore), and a
/// client certificate for CN=alice; plus a second CA nobody trusts, with its own client.
fn make_certificates(dir: &Path) {
    for ca in ["ca", "rogue-ca"] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=gregor test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
            ],
        );
    }
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, ca, subject, ext) in [
        ("server", "ca", "/CN=localhost", "server.ext"),
        ("client", "ca", "/CN=alice/O=Gregor", "client.ext"),
        ("rogue", "rogue-ca", "/CN=mallory", "client.ext"),
    ] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                subject,
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                ext,
                "-out",
                &format!("{name}.crt"),
            ],
        );
    }
    let keystore = [
        std::fs::read_to_string(dir.join("server.key")).unwrap(),
        std::fs::read_to_string(dir.join("server.crt")).unwrap(),
    ]
    .concat();
    std::fs::write(dir.join("server.pem"), keystore).unwrap();
}

use crate::kcat::run_kcat as kcat;

/// Produces three messages through `security` settings, then reads them back.
fn round_trip(addr: &str, topic: &str, security: &[&str]) -> Result<Vec<String>, String> {
    fn with<'a>(mut args: Vec<&'a str>, security: &[&'a str]) -> Vec<&'a str> {
        for s in security {
            args.push("-X");
            args.push(s);
        }
        args
    }
    kcat(
        &with(vec!["-b", addr, "-P", "-t", topic, "-p", "0"], security),
        Some("one\ntwo\nthree\n"),
    )?;
    let out = kcat(
        &with(
            vec![
                "-b",
                addr,
                "-C",
                "-t",
                topic,
                "-p",
                "0",
                "-o",
                "beginning",
                "-e",
                "-q",
            ],
            security,
        ),
        None,
    )?;
    Ok(out.lines().map(str::to_string).collect())
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

#[test]
fn tls_and_mutual_tls_listeners_serve_trusted_clients_only() {
    if !tools_available("tls_and_mutual_tls_listeners_serve_trusted_clients_only") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let dir = tempfile::tempdir().unwrap();
    let keystore = format!("ssl.keystore.location={}", path(certs.path(), "server.pem"));
    let truststore = format!("ssl.truststore.location={}", path(certs.path(), "ca.pem"));
    let broker = Broker::start(
        dir.path(),
        &[
            "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,MTLS://127.0.0.1:0,STRICT://127.0.0.1:0",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,STRICT:SSL",
            &keystore,
            &truststore,
            "listener.name.mtls.ssl.client.auth=required",
            "listener.name.strict.ssl.client.auth=required",
            // No rule maps the test client's subject: it is refused there.
            "listener.name.strict.ssl.principal.mapping.rules=RULE:^CN=nobody$/nobody/",
        ],
    );
    let ca = format!("ssl.ca.location={}", path(certs.path(), "ca.pem"));
    let ssl = broker.listeners["SSL"].as_str();
    // Metadata must advertise the SSL listener itself, or kcat would reconnect in TLS to
    // the plaintext port and fail.
    assert_eq!(
        round_trip(ssl, "tls", &["security.protocol=SSL", &ca]).unwrap(),
        ["one", "two", "three"]
    );
    // A client that does not trust the broker's CA gives up; the broker carries on.
    let untrusted = round_trip(ssl, "tls", &["security.protocol=SSL"]);
    assert!(untrusted.is_err(), "{untrusted:?}");
    let rogue_ca = format!("ssl.ca.location={}", path(certs.path(), "rogue-ca.pem"));
    assert!(round_trip(ssl, "tls", &["security.protocol=SSL", &rogue_ca]).is_err());
    assert_eq!(
        round_trip(&broker.addr, "plain", &[]).unwrap(),
        ["one", "two", "three"]
    );

    let mtls = broker.listeners["MTLS"].as_str();
    let cert = format!(
        "ssl.certificate.location={}",
        path(certs.path(), "client.crt")
    );
    let key = format!("ssl.key.location={}", path(certs.path(), "client.key"));
    assert_eq!(
        round_trip(mtls, "mtls", &["security.protocol=SSL", &ca, &cert, &key]).unwrap(),
        ["one", "two", "three"]
    );
    let strict = broker.listeners["STRICT"].as_str();
    let unmapped = round_trip(strict, "mtls", &["security.protocol=SSL", &ca, &cert, &key]);
    assert!(
        unmapped.is_err(),
        "an unmapped subject is refused: {unmapped:?}"
    );
    let without_certificate = round_trip(mtls, "mtls", &["security.protocol=SSL", &ca]);
    assert!(without_certificate.is_err(), "{without_certificate:?}");
    let rogue_cert = format!(
        "ssl.certificate.location={}",
        path(certs.path(), "rogue.crt")
    );
    let rogue_key = format!("ssl.key.location={}", path(certs.path(), "rogue.key"));
    assert!(round_trip(
        mtls,
        "mtls",
        &["security.protocol=SSL", &ca, &rogue_cert, &rogue_key]
    )
    .is_err());
    // Plain TCP bytes to a TLS port close that connection only.
    let mut s = std::net::TcpStream::connect(ssl).unwrap();
    s.write_all(&[0, 0, 0, 10, 0, 18, 0, 3, 0, 0, 0, 1, 0, 0])
        .unwrap();
    assert!(closed_by_broker(&mut s));
    assert_eq!(
        round_trip(ssl, "tls", &["security.protocol=SSL", &ca])
            .unwrap()
            .len(),
        6
    );
}

const JAAS: &str = "listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\" user_admin=\"admin secret\";";

/// A SCRAM credential for `user` through AlterUserScramCredentials, as the Java admin
/// client computes it (salt and salted password sent, never the password).
fn add_scram_user(addr: &str, user: &str, password: &str, mechanism: i8) {
    let salt = b"some salt of 16b".to_vec();
    let m = if mechanism == 2 {
        gregor::config::listeners::SaslMechanism::ScramSha512
    } else {
        gregor::config::listeners::SaslMechanism::ScramSha256
    };
    let salted = gregor::security::scram::salted_password(m, password.as_bytes(), &salt, 4096);
    let response: AlterUserScramCredentialsResponse = call(
        addr,
        ApiKey::AlterUserScramCredentials,
        0,
        &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            ScramCredentialUpsertion::default()
                .with_name(StrBytes::from_string(user.to_string()))
                .with_mechanism(mechanism)
                .with_iterations(4096)
                .with_salt(salt.into())
                .with_salted_password(salted.into()),
        ]),
    );
    assert_eq!(response.results[0].error_code, 0, "{response:?}");
}

#[test]
fn sasl_plain_and_scram_authenticate_and_refuse_wrong_passwords() {
    if !tools_available("sasl_plain_and_scram_authenticate_and_refuse_wrong_passwords") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let keystore = format!("ssl.keystore.location={}", path(certs.path(), "server.pem"));
    let dir = tempfile::tempdir().unwrap();
    let settings = [
        "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
        "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        JAAS,
        &keystore,
        "connection.failed.authentication.delay.ms=10",
    ];
    let broker = Broker::start(dir.path(), &settings);
    let sasl = broker.listeners["SASL_PLAINTEXT"].clone();
    let plain = |user: &str, password: &str| {
        round_trip(
            &sasl,
            "plain",
            &[
                "security.protocol=SASL_PLAINTEXT",
                "sasl.mechanisms=PLAIN",
                &format!("sasl.username={user}"),
                &format!("sasl.password={password}"),
            ],
        )
    };
    assert_eq!(
        plain("alice", "alice-secret").unwrap(),
        ["one", "two", "three"]
    );
    let wrong = plain("alice", "guess").unwrap_err();
    assert!(wrong.contains("Authentication failed"), "{wrong}");
    assert!(plain("mallory", "alice-secret").is_err());

    add_scram_user(&broker.addr, "bob", "bob-secret", 1);
    add_scram_user(&broker.addr, "carol", "carol-secret", 2);
    let scram = |addr: &str, protocol: &str, mechanism: &str, user: &str, password: &str| {
        let ca = format!("ssl.ca.location={}", path(certs.path(), "ca.pem"));
        let mut security = vec![
            format!("security.protocol={protocol}"),
            format!("sasl.mechanisms={mechanism}"),
            format!("sasl.username={user}"),
            format!("sasl.password={password}"),
        ];
        if protocol == "SASL_SSL" {
            security.push(ca);
        }
        let security: Vec<&str> = security.iter().map(String::as_str).collect();
        round_trip(addr, "scram", &security)
    };
    assert_eq!(
        scram(
            &sasl,
            "SASL_PLAINTEXT",
            "SCRAM-SHA-256",
            "bob",
            "bob-secret"
        )
        .unwrap(),
        ["one", "two", "three"]
    );
    assert!(scram(&sasl, "SASL_PLAINTEXT", "SCRAM-SHA-256", "bob", "wrong").is_err());
    assert!(
        scram(
            &sasl,
            "SASL_PLAINTEXT",
            "SCRAM-SHA-512",
            "bob",
            "bob-secret"
        )
        .is_err(),
        "bob has no SCRAM-SHA-512 credential"
    );
    let sasl_ssl = broker.listeners["SASL_SSL"].clone();
    assert_eq!(
        scram(
            &sasl_ssl,
            "SASL_SSL",
            "SCRAM-SHA-512",
            "carol",
            "carol-secret"
        )
        .unwrap()
        .len(),
        6
    );
    // PLAIN is not enabled on SASL_SSL.
    let refused = round_trip(
        &sasl_ssl,
        "plain",
        &[
            "security.protocol=SASL_SSL",
            &format!("ssl.ca.location={}", path(certs.path(), "ca.pem")),
            "sasl.mechanisms=PLAIN",
            "sasl.username=alice",
            "sasl.password=alice-secret",
        ],
    );
    assert!(refused.is_err(), "{refused:?}");

    // Before authenticating, a SASL listener answers ApiVersions only; Metadata closes.
    let mut s = std::net::TcpStream::connect(&sasl).unwrap();
    s.write_all(&[0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0])
        .unwrap();
    assert!(closed_by_broker(&mut s));
    // On a plaintext listener SaslHandshake is an ILLEGAL_SASL_STATE, as from Kafka.
    let handshake: SaslHandshakeResponse = call(
        &broker.addr,
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
    );
    assert_eq!(handshake.error_code, 34);

    let described: DescribeUserScramCredentialsResponse = call(
        &broker.addr,
        ApiKey::DescribeUserScramCredentials,
        0,
        &DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
            UserName::default().with_name(StrBytes::from_static_str("bob")),
            UserName::default().with_name(StrBytes::from_static_str("nobody")),
        ])),
    );
    assert_eq!(described.results[0].credential_infos.len(), 1);
    assert_eq!(
        (
            described.results[0].credential_infos[0].mechanism,
            described.results[0].credential_infos[0].iterations
        ),
        (1, 4096)
    );
    assert_eq!(described.results[1].error_code, 91, "RESOURCE_NOT_FOUND");

    // Credentials are durable.
    let broker = broker.restart_after(Broker::stop, &settings);
    let sasl = broker.listeners["SASL_PLAINTEXT"].clone();
    assert_eq!(
        scram(
            &sasl,
            "SASL_PLAINTEXT",
            "SCRAM-SHA-256",
            "bob",
            "bob-secret"
        )
        .unwrap()
        .len(),
        9,
        "three rounds of three messages, the last after the restart"
    );
}

/// KIP-368: the session lasts `connections.max.reauth.ms`; re-authenticating renews it,
/// a request after it closes the connection. And a mechanism the listener does not enable
/// is refused with the ones it does.
#[test]
fn sasl_sessions_expire_unless_renewed_and_unknown_mechanisms_are_refused() {
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        dir.path(),
        &[
            "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
            JAAS,
            "connections.max.reauth.ms=5000",
            "connection.failed.authentication.delay.ms=0",
        ],
    );
    let sasl = broker.listeners["SASL_PLAINTEXT"].clone();
    let mut s = std::net::TcpStream::connect(&sasl).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let auth = authenticate_plain(&mut s, "alice", "alice-secret");
    assert_eq!((auth.error_code, auth.session_lifetime_ms), (0, 5000));
    let metadata: MetadataResponse =
        exchange(&mut s, ApiKey::Metadata, 12, &MetadataRequest::default());
    assert_eq!(metadata.brokers.len(), 1);
    // Renewed before it ends, then let it run out.
    let again = authenticate_plain(&mut s, "alice", "alice-secret");
    assert_eq!((again.error_code, again.session_lifetime_ms), (0, 5000));
    std::thread::sleep(std::time::Duration::from_millis(5200));
    s.write_all(&crate::raw::frame(
        ApiKey::Metadata,
        12,
        10,
        &MetadataRequest::default(),
    ))
    .unwrap();
    assert!(
        closed_by_broker(&mut s),
        "a request after the session's end closes it"
    );

    // A wrong password: SASL_AUTHENTICATION_FAILED with Kafka's text, then closed.
    let mut s = std::net::TcpStream::connect(&sasl).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let refused = authenticate_plain(&mut s, "alice", "guess");
    assert_eq!(refused.error_code, 58);
    assert_eq!(
        refused.error_message.as_deref(),
        Some("Authentication failed: Invalid username or password")
    );
    assert!(closed_by_broker(&mut s));

    let mut s = std::net::TcpStream::connect(&sasl).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let handshake: SaslHandshakeResponse = exchange(
        &mut s,
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("SCRAM-SHA-256")),
    );
    assert_eq!(handshake.error_code, 33, "UNSUPPORTED_SASL_MECHANISM");
    assert_eq!(handshake.mechanisms, [StrBytes::from_static_str("PLAIN")]);
    assert!(closed_by_broker(&mut s));
}
