# Gregor's entry points. `make run` and `make test` are the README's two commands; both
# install what they need on a fresh Debian machine with only the Rust toolchain.

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-cluster bench-cluster compat-cluster test-console image build release lint fmt deps compat compat-legacy compat-quick bench bench-cleaner bench-cleaner-compare bench-tls bench-startup bench-compare bench-peers kafka kafka-stop fuzz fuzz-corpus soak clean

## Build (release) and run the broker on the embedded default config: 127.0.0.1:9092, data in ./data.
run:
	$(CARGO) run --release --bin gregor -- serve

build:
	$(CARGO) build

release:
	$(CARGO) build --release

## Everything CI proves: formatting, lints, unit and integration tests, quick compat subset.
test: deps lint
	$(CARGO) test --all-targets
	@# The container test reports itself skipped without Docker: show that line.
	@$(CARGO) test --quiet --test broker container:: -- --nocapture 2>/dev/null | grep -E "^SKIPPED" || true
	@# So do the cluster-mode tests when their engines are missing.
	@compat-tests/cluster/engines.sh check 2>&1 | sed 's/^/SKIPPED cluster:: tests: /' || true
	$(MAKE) test-console
	$(MAKE) compat-quick

## The container image gregor:dev (static musl binary in scratch; docs/container.md). Needs Docker.
image:
	@command -v docker >/dev/null 2>&1 || { echo "make image: docker is not installed here" >&2; exit 1; }
	docker build -t gregor:dev .

## The web console in headless Chromium (installs Debian's chromium and a venv with Playwright).
test-console:
	tests/console/run.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

## Cluster mode against PostgreSQL and an S3 server, three brokers (part of `cargo test`;
## this runs them alone). The engines come from `make deps`.
test-cluster: deps
	$(CARGO) test --test broker cluster:: -- --nocapture

## System packages the tests use: Debian's kcat (an older librdkafka client) and libssl-dev
## (to build librdkafka's suite with TLS and SCRAM); PostgreSQL (Debian) and moto's S3
## server (PyPI) for the cluster-mode tests; Java 17 with
## Maven and Go are checked (the Java and Go scenarios fetch their libraries themselves).
deps:
	@command -v kcat >/dev/null 2>&1 || { \
	  echo "installing kcat (Debian package)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq kcat; }
	@[ -f /usr/include/openssl/ssl.h ] || { \
	  echo "installing libssl-dev (Debian package; librdkafka's test suite is built with SSL and SCRAM)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libssl-dev; }
	@compat-tests/cluster/engines.sh install
	@for tool in java mvn go; do command -v $$tool >/dev/null 2>&1 || { \
	  echo "make deps: $$tool is needed by the Java/Go compat scenarios and is not installed" >&2; exit 1; }; done

## Cluster mode with 1 and 3 brokers on PostgreSQL and moto's S3 server (docs/cluster.md).
bench-cluster: deps
	compat-tests/cluster/bench.sh

## librdkafka's own test suite and the Python client against Gregor (slow; see docs/compat.md).
compat: deps
	compat-tests/run.sh full

## Old clients on the protocol versions Kafka 4 removed (legacy.protocol.enable): kafka-node 5.0.0
## against Gregor on and off and Apache Kafka 4, librdkafka as a Kafka 0.9 client.
compat-legacy: deps
	compat-tests/run.sh legacy

## The librdkafka quick subset and the client scenarios against three brokers in cluster mode
## (docs/cluster.md): fresh PostgreSQL and S3 engines per suite.
compat-cluster: deps
	compat-tests/run.sh cluster

## The expected-pass subset that `make test` guards.
compat-quick: deps
	compat-tests/run.sh quick

## Throughput, latency, CPU and memory with librdkafka's rdkafka_performance (see docs/benchmarks.md).
bench:
	compat-tests/bench.sh
	cargo run --release --quiet --example cleaner_bench

## The log cleaner alone: MB/s of dirty log cleaned and space reclaimed for 1 M records over
## 10 k keys (RECORDS=, KEYS=, COMPRESSION=, SEGMENT_BYTES= to change).
bench-cleaner:
	cargo run --release --quiet --example cleaner_bench

## TLS against plaintext: one Gregor with both listeners, confluent-kafka through each.
bench-tls:
	compat-tests/tls-bench.sh

## The log cleaners of Apache Kafka and Gregor on the same produced topic (about 3 minutes).
bench-cleaner-compare:
	compat-tests/cleaner-compare.sh

## The same harness against Gregor and Apache Kafka (defaults, and flush.messages=1) in one
## run: one table with the ratios (see docs/benchmarks.md). RUNS=, N_1K=, ... to change.
bench-compare:
	compat-tests/bench-compare.sh

## bench-peers: the same against every peer this machine can run, alternating, two rounds:
## Apache Kafka (defaults and flush.messages=1) and, with PEER_CMD='...', any other broker
## (see compat-tests/bench-compare.sh). Prints the ratio table docs/benchmarks.md carries.
bench-peers:
	RUNS=$${RUNS:-2} compat-tests/bench-compare.sh

## Apache Kafka (pinned in compat-tests/kafka/pom.xml) as a reference broker: fetched through
## Maven once, started on a free loopback port with Gregor's defaults; prints its address.
kafka:
	@compat-tests/kafka/kafka.sh start
	@echo "stop it with: make kafka-stop"

## Stops the broker `make kafka` started and removes its data.
kafka-stop:
	compat-tests/kafka/kafka.sh stop

## Start-up time, empty and with 1,000 partitions / 10 GB (GB=, PARTITIONS=, RUNS= to change).
bench-startup:
	compat-tests/startup-bench.sh

## Every fuzz target (cargo-fuzz, nightly Rust) for FUZZ_SECONDS each (default 60): prints
## executions and crashes per target (see docs/reliability.md). TARGETS= for a subset.
fuzz:
	fuzz/run.sh

## A bounded soak (SOAK_SECONDS, default 600): mixed produce/consume/group churn/admin against
## one release broker, sampling RSS, open fds and p99 latency every 10 s (docs/reliability.md).
soak:
	compat-tests/soak/run.sh

## Re-minimizes fuzz/.work/corpus into the committed seeds, fuzz/corpus (after `make fuzz`).
fuzz-corpus:
	fuzz/corpus.sh

clean:
	$(CARGO) clean
	rm -rf compat-tests/.work
