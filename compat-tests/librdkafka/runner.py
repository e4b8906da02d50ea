#!/usr/bin/env python3
"""Runs librdkafka's own integration test suite against Gregor.

1. Takes librdkafka's source from the `rdkafka-sys` crate that Cargo already fetched for
   the project's dev-dependencies (the version in Cargo.lock), extracted from the Cargo
   registry cache: no other download.
2. Builds librdkafka and its `test-runner` once into compat-tests/.work (rebuilt only when
   the version changes). Tests of the `cli` class get Kafka's command-line tools from the
   jars `compat-tests/kafka/kafka.sh fetch` brings (KAFKA_PATH, BROKERS).
3. For each selected test number: starts a fresh Gregor on a free loopback port with a temp
   data directory (topics auto-created with 4 partitions, Kafka's 3 s initial rebalance
   delay, and the StandardAuthorizer allowing what no ACL names, like the suite's upstream
   clusters), writes test.conf, runs `test-runner -L -p1 NNNN` under a per-test timeout,
   and stops the broker.
4. Prints `PASS|FAIL|SKIP id name seconds` per test and `N passed, N failed, N skipped`.

Environment: TEST_CONSUMER_GROUP_PROTOCOL=consumer runs the group tests under KIP-848 (results
in results-consumer.tsv instead of results.tsv);
GREGOR_LOG_LEVEL sets the broker's log filter and keeps its log (logs/NNNN.broker.log);
BROKER_VERSION_FALLBACK=0.9.0 (or 0.10.0, ...) runs librdkafka as an old client would: with
api.version.request=false and that broker.version.fallback, so it speaks the protocol versions
of that Kafka release (the ones legacy.protocol.enable serves); the suite is still told the
broker is 3.9 (it drives Kafka's CLI tools by that version);
GREGOR_CLUSTER=1 runs each test number against three brokers in cluster mode on fresh engines
(compat-tests/cluster/cluster.sh, docs/cluster.md) instead of one broker; results are printed
only.

Usage:
  runner.py --gregor PATH quick         the quick subset of expected-pass.txt (make test)
  runner.py --gregor PATH full          every applicable test; writes results.tsv
  runner.py --gregor PATH only 0001 ... the named test numbers
Exit status: 1 if a test listed in expected-pass.txt failed, else 0.
"""

import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_FILE = ("results-consumer.tsv" if os.environ.get("TEST_CONSUMER_GROUP_PROTOCOL") == "consumer"
                else "results.tsv")
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
WORK = os.path.join(ROOT, "compat-tests", ".work")
# The broker version the suite is told it talks to: recent enough that no test is
# skipped as "too new" (see CLASSIFICATION-NOTES.md), below the 4.0 behaviour changes.
CLAIMED_KAFKA_VERSION = "3.9.0"
# Classes whose tests say something about a single plaintext broker with Gregor's APIs.
# `cli` tests also run Kafka's command-line tools, taken from the fetched Kafka jars
# (compat-tests/kafka/kafka.sh fetch) under KAFKA_PATH, as the suite expects.
APPLICABLE = {"plaintext", "groups", "idempotence", "admin", "cli", "auth"}
# `auth` tests run against a SASL_PLAINTEXT listener (PLAIN and SCRAM, one JAAS user), their
# test.conf logging in as that user, sessions lasting connections.max.reauth.ms.
SASL_USER, SASL_PASSWORD = "testuser", "testpass"
SASL_REAUTH_MS = 10000
# `auth` tests about TLS run against an SSL listener requiring client certificates, with the
# certificate set trivup gives the suite (SSL_* variables): made by openssl per run.
SSL_TESTS = {"0097"}
SSL_PASSWORD = "use_strong_password"
# librdkafka's configure flags: OpenSSL for SCRAM and SSL (Debian's libssl-dev, `make deps`),
# no Cyrus SASL (GSSAPI), no curl (OIDC).
CONFIGURE = ["./configure", "--disable-gssapi", "--disable-curl", "--disable-sasl"]
# Test variants that run only in the suite's "noautocreate" scenario (a broker with topic
# auto-creation off); their numbers are run a second time in that scenario.
NOAUTOCREATE = {"0045_subscribe_update_topic_remove", "0045_subscribe_update_non_exist_and_partchange"}
# Test numbers whose many sub-tests take longer than any sensible default timeout (seconds):
# 0113 runs some 40 cooperative-rebalance scenarios, ~10 minutes against a real broker.
LONG_TESTS = {"0113": 1800}
KAFKA_TOOLS = os.path.join(ROOT, "compat-tests", "kafka", "kafka.sh")


def log(msg):
    print(f"# {msg}", file=sys.stderr, flush=True)


def rdkafka_sys_version():
    with open(os.path.join(ROOT, "Cargo.lock")) as f:
        text = f.read()
    m = re.search(r'name = "rdkafka-sys"\nversion = "([^"]+)"', text)
    if not m:
        sys.exit("rdkafka-sys is not in Cargo.lock")
    return m.group(1)


def librdkafka_source(version):
    """The librdkafka directory of the extracted rdkafka-sys crate."""
    dest = os.path.join(WORK, f"rdkafka-sys-{version}")
    src = os.path.join(dest, "librdkafka")
    if os.path.isdir(os.path.join(src, "tests")):
        return src
    subprocess.run(["cargo", "fetch", "--quiet"], cwd=ROOT, check=True)
    cargo_home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    crates = glob.glob(os.path.join(cargo_home, "registry", "cache", "*", f"rdkafka-sys-{version}.crate"))
    if not crates:
        sys.exit(f"rdkafka-sys-{version}.crate is not in the Cargo registry cache")
    os.makedirs(WORK, exist_ok=True)
    log(f"extracting {crates[0]}")
    with tarfile.open(crates[0]) as tar:
        tar.extractall(WORK, filter="fully_trusted")
    return src


def build(src, version):
    """Builds librdkafka and tests/test-runner once per version."""
    stamp = os.path.join(WORK, "build-stamp")
    runner = os.path.join(src, "tests", "test-runner")
    wanted_stamp = f"{version} {' '.join(CONFIGURE[1:])}"
    if os.path.exists(runner) and os.path.exists(stamp) and open(stamp).read().strip() == wanted_stamp:
        return runner
    log(f"building librdkafka {version} and its test-runner (once; a few minutes)")
    for script in ["configure", "lds-gen.py", "packaging/tools/rdutcoverage.sh"]:
        path = os.path.join(src, script)
        if os.path.exists(path):
            os.chmod(path, 0o755)
    build_log = os.path.join(WORK, "build.log")
    with open(build_log, "w") as out:
        steps = [
            CONFIGURE,
            ["make", "clean"],
            ["make", "-j2", "libs"],
            ["make", "-C", "tests", "-j2", "build"],
        ]
        for step in steps:
            if subprocess.run(step, cwd=src, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                sys.exit(f"librdkafka build step {' '.join(step)} failed; see {build_log}")
    with open(stamp, "w") as f:
        f.write(wanted_stamp)
    return runner


def load_classification():
    tests = []
    with open(os.path.join(HERE, "classification.tsv")) as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3:
                tests.append({"id": parts[0], "name": parts[1], "class": parts[2],
                              "notes": parts[4] if len(parts) > 4 else ""})
    return tests


def load_expected():
    """expected-pass.txt: `name [quick]` per line; # comments."""
    expected, quick = set(), set()
    with open(os.path.join(HERE, "expected-pass.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            expected.add(line[0])
            if "quick" in line[1:]:
                quick.add(line[0])
    return expected, quick


def broker_settings(auto_create, sasl, ssl):
    """The -o settings of a broker for one test number's scenario."""
    return (["-o", "num.partitions=4",
             # Kafka's built-in default (the upstream suite's clusters run with it).
             "-o", "group.initial.rebalance.delay.ms=3000",
             "-o", f"auto.create.topics.enable={'true' if auto_create else 'false'}",
             # ACLs on, open where none are set: the suite's auth tests add deny ACLs
             # (kafka-acls.sh) and expect the authorization errors.
             "-o", "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
             "-o", "allow.everyone.if.no.acl.found=true"]
            + (Gregor.sasl_settings() if sasl else []) + (Gregor.ssl_settings(ssl) if ssl else []))


class GregorCluster:
    """Three fresh brokers in cluster mode on fresh engines (compat-tests/cluster/cluster.sh),
    for `--cluster`: the suite runs against a cluster as against one broker."""

    SCRIPT = os.path.join(HERE, "..", "cluster", "cluster.sh")

    def __init__(self, binary, auto_create=True, sasl=False, ssl=None):
        self.dir = tempfile.mkdtemp(prefix="gregor-cluster-")
        out = subprocess.run([self.SCRIPT, "up", self.dir, binary, "3"] + broker_settings(auto_create, sasl, ssl),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"the cluster did not start: {out.stderr.strip()}")
        listener = "SASL_PLAINTEXT" if sasl else "SSL" if ssl else "PLAINTEXT"
        addrs = []
        for i in (1, 2, 3):
            with open(os.path.join(self.dir, f"b{i}.out")) as f:
                for line in f:
                    if line.startswith(f"gregor listener {listener} listening on "):
                        addrs.append(line.split()[-1])
        self.addr = ",".join(addrs)
        self.pids = [int(open(os.path.join(self.dir, f"b{i}.pid")).read()) for i in (1, 2, 3)]

    def alive(self):
        return all(os.path.exists(f"/proc/{pid}") and "zombie" not in open(f"/proc/{pid}/status").read()
                   for pid in self.pids)

    def stop(self):
        was_alive = self.alive()
        subprocess.run([self.SCRIPT, "down", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return was_alive

    def cleanup(self, log_name):
        if os.environ.get("GREGOR_LOG_LEVEL"):
            for i in (1, 2, 3):
                shutil.copy(os.path.join(self.dir, f"b{i}.log"),
                            os.path.join(WORK, "logs", f"{log_name}.broker{i}.log"))
        shutil.rmtree(self.dir, ignore_errors=True)


class Gregor:
    """A fresh broker on a free port with a temp data dir."""

    def __init__(self, binary, auto_create=True, sasl=False, ssl=None):
        self.dir = tempfile.mkdtemp(prefix="gregor-compat-")
        self.stderr = open(os.path.join(self.dir, "broker.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "-o", "http.listen=127.0.0.1:0", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(self.dir, "data"),
             "--log-level", os.environ.get("GREGOR_LOG_LEVEL", "warn")] + broker_settings(auto_create, sasl, ssl),
            stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        # "gregor http listening on ADDR" first, then one "gregor listener NAME listening on
        # ADDR" line per listener, then the first listener's "gregor listening on ADDR", last.
        line = self.proc.stdout.readline()
        if line.startswith("gregor http listening on "):
            line = self.proc.stdout.readline()
        listeners = {}
        while line.startswith("gregor listener "):
            name, addr = line[len("gregor listener "):].split(" listening on ")
            listeners[name] = addr.strip()
            line = self.proc.stdout.readline()
        if not line.startswith("gregor listening on "):
            self.proc.kill()
            raise RuntimeError(f"gregor did not start: {line!r}")
        self.addr = listeners["SASL_PLAINTEXT"] if sasl else listeners["SSL"] if ssl else line.split()[-1]

    @staticmethod
    def sasl_settings():
        jaas = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'user_{SASL_USER}="{SASL_PASSWORD}";')
        return ["-o", "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
                "-o", "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
                "-o", f"listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas}",
                "-o", f"connections.max.reauth.ms={SASL_REAUTH_MS}"]

    @staticmethod
    def ssl_settings(certs):
        return ["-o", "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
                "-o", f"ssl.keystore.location={certs}/broker.pem",
                "-o", f"ssl.truststore.location={certs}/ca.pem",
                "-o", "ssl.client.auth=required"]

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM; returns False if the broker had died or did not stop in time."""
        was_alive = self.alive()
        if was_alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                was_alive = False
        self.stderr.close()
        return was_alive

    def cleanup(self, log_name):
        # GREGOR_LOG_LEVEL (e.g. "warn,gregor::api=debug") keeps the broker's log next to
        # the test's, as compat-tests/.work/logs/NNNN[-scenario].broker.log.
        if os.environ.get("GREGOR_LOG_LEVEL"):
            shutil.copy(os.path.join(self.dir, "broker.log"),
                        os.path.join(WORK, "logs", f"{log_name}.broker.log"))
        shutil.rmtree(self.dir, ignore_errors=True)


RESULT_LINE = re.compile(r"\|\s+(\d{4}_\S+)\s+\|\s+(PASSED|FAILED|SKIPPED)\s+\|\s+([\d.]+)s")
FAILED_LINE = re.compile(r'### Test "(\d{4}_[^" ]+|<MAIN>)[^"]*" failed at ([^ ]+)')
STARTED_LINE = re.compile(r"=+ Running test (\d{4}_\S+) =+")
BANNER_LINE = re.compile(r"=+ Test (\d{4}_\S+) (PASSED|SKIPPED) =+")


def kafka_path():
    """Kafka's jars and bin/ launchers (fetched once through Maven), or None if unavailable."""
    try:
        out = subprocess.run([KAFKA_TOOLS, "fetch"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, check=True, timeout=900)
        return out.stdout.strip().splitlines()[-1]
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, IndexError) as e:
        log(f"Kafka's CLI tools are not available ({e}); cli tests will fail for it")
        return None


def build_java_helpers(src, tools):
    """Compiles the suite's Java helpers (tests/java, e.g. 0113's IncrementalRebalanceCli) against
    Kafka's client jar; the tests start them through KAFKA_PATH's kafka-run-class.sh."""
    java_dir = os.path.join(src, "tests", "java")
    try:
        subprocess.run(["make", "-s", "-C", java_dir, f"KAFKA_PATH={tools}"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, check=True, timeout=300)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, FileNotFoundError) as e:
        log(f"the suite's Java helpers did not build ({e}); tests using them will fail")


def make_certificates(d):
    """A CA, the broker's certificate (127.0.0.1) and a client's in the encodings the suite's
    SSL tests read (trivup's SSL_* variables), in `d`; returns those variables."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=suite-ca",
            "-keyout", "ca.key", "-out", "ca.pem")
    with open(os.path.join(d, "broker.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name, ext in (("broker", "broker.ext"), ("client", "client.ext")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "1", "-extfile", ext, "-out", f"{name}.pem")
    with open(os.path.join(d, "broker-keystore.pem"), "w") as out:
        for part in ("broker.key", "broker.pem"):
            with open(os.path.join(d, part)) as f:
                out.write(f.read())
    os.replace(os.path.join(d, "broker-keystore.pem"), os.path.join(d, "broker.pem"))
    pw = f"pass:{SSL_PASSWORD}"
    openssl("pkcs8", "-topk8", "-in", "client.key", "-out", "client.enc.key", "-passout", pw)
    openssl("pkcs8", "-topk8", "-nocrypt", "-in", "client.key", "-outform", "DER", "-out", "client.key.der")
    openssl("x509", "-in", "client.pem", "-outform", "DER", "-out", "client.der")
    openssl("x509", "-in", "ca.pem", "-outform", "DER", "-out", "ca.der")
    openssl("pkcs12", "-export", "-in", "client.pem", "-inkey", "client.key", "-certfile", "ca.pem",
            "-passout", pw, "-out", "client.p12")
    j = lambda name: os.path.join(d, name)  # noqa: E731
    return {"SSL_pkcs": j("client.p12"), "SSL_pub_der": j("client.der"), "SSL_pub_pem": j("client.pem"),
            "SSL_priv_der": j("client.key.der"), "SSL_priv_pem": j("client.enc.key"),
            "SSL_ca_der": j("ca.der"), "SSL_all_cas_pem": j("ca.pem"), "SSL_password": SSL_PASSWORD,
            "SSL_client_auth": "required"}


def run_test_number(runner, binary, number, timeout, tools=None, scenario="default"):
    """Runs every non-local variant of `number` in `scenario`; returns {name: (status, seconds, reason)}."""
    workdir = tempfile.mkdtemp(prefix="rdkafka-test-")
    ssl_env = make_certificates(workdir) if scenario == "ssl" else {}
    target = GregorCluster if os.environ.get("GREGOR_CLUSTER") else Gregor
    broker = target(binary, auto_create=scenario != "noautocreate", sasl=scenario == "sasl",
                    ssl=workdir if scenario == "ssl" else None)
    conf = os.path.join(workdir, "test.conf")
    with open(conf, "w") as f:
        f.write(f"bootstrap.servers={broker.addr}\n")
        if scenario == "ssl":
            f.write(f"security.protocol=ssl\nssl.key.location={ssl_env['SSL_priv_pem']}\n"
                    f"ssl.key.password={SSL_PASSWORD}\nssl.certificate.location={ssl_env['SSL_pub_pem']}\n"
                    f"ssl.ca.location={ssl_env['SSL_all_cas_pem']}\n")
        if scenario == "sasl":
            f.write("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                    f"sasl.username={SASL_USER}\nsasl.password={SASL_PASSWORD}\n")
        if os.environ.get("BROKER_VERSION_FALLBACK"):
            f.write("api.version.request=false\n"
                    f"broker.version.fallback={os.environ['BROKER_VERSION_FALLBACK']}\n")
        if tools:
            # Each of Kafka's tools is a JVM start (1-2 s here); upstream CI runs the suite
            # with the multiplier at 3 (CI=true adds 2), this gives the cli tests 2.
            f.write("test.timeout.multiplier=2\n")
    tests_dir = os.path.dirname(runner)
    src = os.path.dirname(tests_dir)
    # The freshly built librdkafka, not a system one (Debian's kcat pulls in 2.0.2).
    libs = f"{os.path.join(src, 'src')}:{os.path.join(src, 'src-cpp')}"
    env = dict(os.environ, TEST_KAFKA_VERSION=CLAIMED_KAFKA_VERSION, RDKAFKA_TEST_CONF=conf,
               TEST_SCENARIO="noautocreate" if scenario == "noautocreate" else "default", BROKERS=broker.addr,
               LD_LIBRARY_PATH=libs + (":" + os.environ["LD_LIBRARY_PATH"] if os.environ.get("LD_LIBRARY_PATH") else ""),
               **ssl_env)
    if tools:
        env["KAFKA_PATH"] = tools
    start = time.time()
    try:
        proc = subprocess.run([runner, "-L", "-p1", number], cwd=tests_dir, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", timeout=timeout)
        output, timed_out = proc.stdout, False
    except subprocess.TimeoutExpired as e:
        output = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        timed_out = True
    elapsed = time.time() - start
    broker_ok = broker.stop()
    log_name = number if scenario == "default" else f"{number}-{scenario}"
    with open(os.path.join(WORK, "logs", f"{log_name}.log"), "w") as f:
        f.write(output)
        f.write(f"\n# broker {'ok' if broker_ok else 'DIED OR HUNG'}; log in {broker.dir}\n")
    results = {}
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)
    for name, status, secs in RESULT_LINE.findall(plain):
        results[name] = (status, float(secs), "")
    # A failing test aborts the runner before its summary table: take the failure banner.
    for name, where in FAILED_LINE.findall(plain):
        if name != "<MAIN>" and name not in results:
            results[name] = ("FAILED", elapsed, f"failed at {where}")
    for name, status in BANNER_LINE.findall(plain):
        results.setdefault(name, (status, 0.0, ""))
    for name in STARTED_LINE.findall(plain):
        if name not in results:
            results[name] = ("FAILED", elapsed, "did not finish (timeout or crash)")
    if timed_out:
        results.setdefault(f"{number}_*", ("FAILED", elapsed, f"timeout after {timeout}s"))
    if not broker_ok:
        results = {n: ("FAILED", s, "broker died") for n, (_, s, _) in results.items()} or \
            {f"{number}_*": ("FAILED", elapsed, "broker died")}
    if not results:
        results[f"{number}_*"] = ("FAILED", elapsed, "no result lines (see log)")
    if broker_ok:
        broker.cleanup(log_name)
    shutil.rmtree(workdir, ignore_errors=True)
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gregor", default="")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per test number")
    ap.add_argument("--total", type=int, default=3600, help="seconds for the whole run")
    ap.add_argument("mode", choices=["quick", "full", "only", "build"])
    ap.add_argument("numbers", nargs="*")
    args = ap.parse_args()

    version = rdkafka_sys_version()
    src = librdkafka_source(version)
    runner = build(src, version)
    if args.mode == "build":
        print(src)
        return 0
    os.makedirs(os.path.join(WORK, "logs"), exist_ok=True)
    tests = load_classification()
    expected, quick = load_expected()
    by_id = {}
    for t in tests:
        by_id.setdefault(t["id"], []).append(t)

    if args.mode == "quick":
        numbers = sorted({n[:4] for n in quick})
    elif args.mode == "full":
        numbers = sorted({t["id"] for t in tests if t["class"] in APPLICABLE})
    else:
        numbers = args.numbers
    deadline = time.time() + args.total
    all_results = {}
    local = {t["name"] for t in tests if t["class"] == "local"}
    wanted = {t["name"] for t in tests if t["class"] in APPLICABLE} if args.mode == "full" else None
    needs_tools = any(t["class"] == "cli" and t["id"] in numbers for t in tests)
    tools = kafka_path() if needs_tools else None
    if tools:
        build_java_helpers(src, tools)
    runs = []
    auth = {t["id"] for t in tests if t["class"] == "auth"}
    for number in numbers:
        runs.append((number, "ssl" if number in SSL_TESTS else "sasl" if number in auth else "default"))
        if any(n[:4] == number and (wanted is None or n in wanted) for n in NOAUTOCREATE):
            runs.append((number, "noautocreate"))
    for number, scenario in runs:
        if time.time() > deadline:
            log(f"total time bound reached; not running {number} and later")
            break
        timeout = max(args.timeout, LONG_TESTS.get(number, 0))
        results = run_test_number(runner, os.path.abspath(args.gregor), number, timeout, tools, scenario)
        for name, (status, secs, reason) in sorted(results.items()):
            if name in local:
                continue  # mock/unit variants sharing the number say nothing about a broker
            if (scenario == "noautocreate") != (name in NOAUTOCREATE) and status == "SKIPPED":
                continue  # the variant belongs to the other scenario's run
            word = {"PASSED": "PASS", "FAILED": "FAIL", "SKIPPED": "SKIP"}[status]
            all_results[name] = (word, secs, reason)
            suffix = f"  # {reason}" if reason else ""
            print(f"{word} {number} {name} {secs:.1f}{suffix}", flush=True)

    passed = sum(1 for w, _, _ in all_results.values() if w == "PASS")
    failed = sum(1 for w, _, _ in all_results.values() if w == "FAIL")
    skipped = sum(1 for w, _, _ in all_results.values() if w == "SKIP")
    if args.mode in ("full", "only") and not os.environ.get("BROKER_VERSION_FALLBACK") \
            and not os.environ.get("GREGOR_CLUSTER"):
        # A full run replaces results.tsv; a run of named tests updates their rows. Runs
        # under the KIP-848 protocol keep their own file (docs/compat.md's second column);
        # runs as an old client (BROKER_VERSION_FALLBACK) are printed only, and run.sh keeps
        # their output for docs/compat.md.
        path = os.path.join(HERE, RESULTS_FILE)
        merged = {}
        if args.mode == "only" and os.path.exists(path):
            with open(path) as f:
                next(f, None)
                for line in f:
                    parts = line.rstrip("\n").split("\t")
                    if len(parts) == 4 and parts[0][:4] not in numbers:
                        merged[parts[0]] = (parts[1], float(parts[2]), parts[3])
        merged.update(all_results)
        with open(path, "w") as f:
            f.write("name\tresult\tseconds\treason\n")
            for name, (word, secs, reason) in sorted(merged.items()):
                f.write(f"{name}\t{word}\t{secs:.1f}\t{reason}\n")
    regressions = sorted(n for n in expected if n[:4] in numbers and all_results.get(n, ("FAIL",))[0] != "PASS")
    for name in regressions:
        print(f"# expected to pass but did not: {name}", flush=True)
    print(f"{passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
