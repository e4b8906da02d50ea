"""confluent-kafka-python against a secured Gregor: SASL_SSL with SCRAM-SHA-512 and PLAIN,
mutual TLS, a SCRAM user created and described through the admin client, a wrong
password refused, and ACLs (the StandardAuthorizer) managed through the admin client and
enforced on a producer, a consumer group and the admin client of a user with few rights.
Starts its own broker (certificates made by openssl in a temp dir).

Usage: secure.py GREGOR_BINARY
Prints `PASS|FAIL|SKIP python-secure NAME seconds` per scenario and a closing
`N passed, N failed, N skipped`; exit 1 if any failed.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                  AdminClient, NewTopic, ResourcePatternType, ResourceType,
                                  ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion)

RUN = uuid.uuid4().hex[:8]


def openssl(cwd, *args):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def certificates(d):
    openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=py-ca",
            "-keyout", "ca.key", "-out", "ca.pem")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name, subject, ext in [("server", "/CN=localhost", "server.ext"),
                               ("client", "/CN=py-client", "client.ext")]:
        openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", f"{name}.key",
                "-out", f"{name}.csr")
        openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "1", "-extfile", ext, "-out", f"{name}.crt")
    with open(os.path.join(d, "server.pem"), "w") as out:
        for part in ("server.key", "server.crt"):
            with open(os.path.join(d, part)) as f:
                out.write(f.read())


def start(binary, d):
    jaas = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
            'user_py="py-plain-secret" user_limited="limited-secret";')
    args = [binary, "serve", "-o", "http.listen=127.0.0.1:0", "--data-dir", os.path.join(d, "data"), "--log-level", "warn",
            "-o", "listeners=PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0,MTLS://127.0.0.1:0",
            "-o", "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL",
            "-o", f"ssl.keystore.location={d}/server.pem",
            "-o", f"ssl.truststore.location={d}/ca.pem",
            "-o", "listener.name.mtls.ssl.client.auth=required",
            # The certificate's CN alone names the mTLS client: User:py-client.
            "-o", "listener.name.mtls.ssl.principal.mapping.rules=RULE:^CN=([^,]*)$/$1/,DEFAULT",
            "-o", "sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN",
            "-o", f"listener.name.sasl_ssl.plain.sasl.jaas.config={jaas}",
            "-o", "connection.failed.authentication.delay.ms=10",
            # ACLs on; the loopback PLAINTEXT listener's ANONYMOUS is the administrator.
            "-o", "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "-o", "super.users=User:ANONYMOUS"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    listeners = {}
    for line in proc.stdout:
        if line.startswith("gregor listener "):
            name, addr = line[len("gregor listener "):].split(" listening on ")
            listeners[name] = addr.strip()
        elif line.startswith("gregor listening on "):
            return proc, listeners
    raise RuntimeError("gregor did not start")


def round_trip(conf, name):
    topic = f"py-secure-{name}-{RUN}"
    p = Producer(conf)
    for i in range(10):
        p.produce(topic, key=f"k{i}", value=f"v{i}", partition=0)
    left = p.flush(30)
    assert left == 0, f"{left} messages not delivered"
    c = Consumer({**conf, "group.id": "py-secure", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + 30
    while len(got) < 10 and time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.close()
    assert got == [f"v{i}" for i in range(10)], got


def main():
    binary = sys.argv[1]
    if shutil.which("openssl") is None:
        print("SKIP python-secure all 0.0  # openssl is not installed")
        print("0 passed, 0 failed, 1 skipped")
        return 0
    d = tempfile.mkdtemp(prefix="gregor-secure-")
    proc = None
    results = []
    try:
        certificates(d)
        proc, listeners = start(binary, d)
        tls = {"ssl.ca.location": f"{d}/ca.pem"}
        scram = {"bootstrap.servers": listeners["SASL_SSL"], "security.protocol": "SASL_SSL",
                 "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "py-scram", **tls}
        admin = AdminClient({"bootstrap.servers": listeners["PLAINTEXT"]})

        def acls_created_for_the_clients():
            # Each client's principal may do everything on its topics and group.
            bindings = [AclBinding(rt, name, ResourcePatternType.PREFIXED, principal, "*",
                                   AclOperation.ALL, AclPermissionType.ALLOW)
                        for principal in ("User:py-scram", "User:py", "User:py-client")
                        for rt, name in ((ResourceType.TOPIC, "py-secure-"),
                                         (ResourceType.GROUP, "py-secure"))]
            for f in admin.create_acls(bindings).values():
                f.result(30)
            listed = admin.describe_acls(AclBindingFilter(
                ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                AclPermissionType.ANY)).result(30)
            assert sorted(str(b.principal) for b in listed) == sorted(
                [b.principal for b in bindings]), listed

        def acls_refuse_a_user_without_them():
            topic = f"py-acl-{RUN}"
            for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
                f.result(30)
            limited = {"bootstrap.servers": listeners["SASL_SSL"], "security.protocol": "SASL_SSL",
                       "sasl.mechanisms": "PLAIN", "sasl.username": "limited",
                       "sasl.password": "limited-secret", **tls}
            # READ (which implies DESCRIBE) but no WRITE: the producer is refused.
            for f in admin.create_acls([AclBinding(
                    ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:limited", "*",
                    AclOperation.READ, AclPermissionType.ALLOW)]).values():
                f.result(30)
            errors = []
            p = Producer({**limited, "message.timeout.ms": 10000})
            p.produce(topic, value=b"x", on_delivery=lambda err, msg: errors.append(err))
            p.flush(30)
            assert [e.code() for e in errors] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], errors
            # Its consumer group is not allowed either.
            c = Consumer({**limited, "group.id": f"py-acl-group-{RUN}"})
            c.subscribe([topic])
            seen = None
            deadline = time.time() + 30
            while seen is None and time.time() < deadline:
                m = c.poll(0.5)
                if m is not None and m.error():
                    seen = m.error().code()
            c.close()
            assert seen == KafkaError.GROUP_AUTHORIZATION_FAILED, seen
            # Nor may it manage ACLs.
            # (The client must outlive its futures.)
            limited_admin = AdminClient(limited)
            (grab,) = limited_admin.create_acls([AclBinding(
                ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:limited", "*",
                AclOperation.WRITE, AclPermissionType.ALLOW)]).values()
            try:
                grab.result(30)
                raise AssertionError("CreateAcls allowed without ALTER on the cluster")
            except KafkaException as e:
                assert e.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED, e
            # DescribeAcls is refused (CLUSTER_AUTHORIZATION_FAILED); this client reports a
            # refused DescribeAcls as an empty list, where the administrator sees the binding.
            everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None,
                                          None, AclOperation.ANY, AclPermissionType.ANY)
            assert limited_admin.describe_acls(everything).result(30) == []
            assert any(b.name == topic for b in admin.describe_acls(everything).result(30))
            # Once the ACL is deleted, its READ is gone too.
            deleted = admin.delete_acls([AclBindingFilter(
                ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:limited", None,
                AclOperation.ANY, AclPermissionType.ANY)])
            removed = [b for f in deleted.values() for b in f.result(30)]
            assert len(removed) == 1 and removed[0].operation == AclOperation.READ, removed
            md = limited_admin.list_topics(topic, timeout=10)
            assert md.topics[topic].error is not None and \
                md.topics[topic].error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, md.topics

        def scram_user_created_and_described():
            info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
            futures = admin.alter_user_scram_credentials(
                [UserScramCredentialUpsertion("py-scram", info, b"py-scram-secret")])
            for f in futures.values():
                f.result(30)
            described = admin.describe_user_scram_credentials(["py-scram"])
            creds = described["py-scram"].result(30)
            assert [(c.mechanism, c.iterations) for c in creds.scram_credential_infos] == \
                [(ScramMechanism.SCRAM_SHA_512, 8192)], creds

        def sasl_ssl_scram_produce_consume():
            round_trip({**scram, "sasl.password": "py-scram-secret"}, "scram")

        def sasl_ssl_plain_produce_consume():
            round_trip({"bootstrap.servers": listeners["SASL_SSL"], "security.protocol": "SASL_SSL",
                        "sasl.mechanisms": "PLAIN", "sasl.username": "py",
                        "sasl.password": "py-plain-secret", **tls}, "plain")

        def mtls_produce_consume():
            round_trip({"bootstrap.servers": listeners["MTLS"], "security.protocol": "SSL",
                        "ssl.certificate.location": f"{d}/client.crt",
                        "ssl.key.location": f"{d}/client.key", **tls}, "mtls")

        def scram_wrong_password_refused():
            # log_level 0: the client's retries would print a line every 50 ms.
            wrong = AdminClient({**scram, "sasl.password": "guess", "log_level": 0})
            try:
                wrong.list_topics(timeout=5)
            except KafkaException as e:
                assert "Authentication" in str(e) or "authentication" in str(e) or \
                    e.args[0].code() < 0, e
                return
            raise AssertionError("a wrong password was accepted")

        for scenario in [acls_created_for_the_clients, scram_user_created_and_described,
                         sasl_ssl_scram_produce_consume, sasl_ssl_plain_produce_consume,
                         mtls_produce_consume, scram_wrong_password_refused,
                         acls_refuse_a_user_without_them]:
            started = time.time()
            try:
                scenario()
                results.append(("PASS", scenario.__name__, time.time() - started, ""))
            except Exception:
                results.append(("FAIL", scenario.__name__, time.time() - started,
                                traceback.format_exc().strip().splitlines()[-1]))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(d, ignore_errors=True)
    for verdict, name, seconds, why in results:
        print(f"{verdict} python-secure {name} {seconds:.1f}" + (f"  # {why}" if why else ""))
    failed = sum(1 for r in results if r[0] == "FAIL")
    print(f"{len(results) - failed} passed, {failed} failed, 0 skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
