#!/usr/bin/env bash
# The differential runner: the same scripted client sessions against a fresh Apache Kafka
# (compat-tests/kafka) and a fresh Gregor, answers compared field by field
# (compat-tests/java: Differential.java, Sessions.java). Differences are either explained by
# known-differences.tsv or reported as UNEXPLAINED (exit 1). Writes results.tsv here.
# Then the secure run: both brokers again, with the StandardAuthorizer and a SASL_PLAINTEXT
# listener (SecureSessions.java: ACLs and what each API refuses), into results-secure.tsv.
#   run.sh [GREGOR_BINARY]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
gregor=${1:-$root/target/debug/gregor}
work=$root/compat-tests/.work
export KAFKA_STATE=$work/kafka/differential
dir=$(mktemp -d)
gpid=
cleanup() {
  if [ -n "$gpid" ]; then kill -TERM "$gpid" 2>/dev/null; wait "$gpid" 2>/dev/null || true; fi
  "$root/compat-tests/kafka/kafka.sh" stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

# Starts a fresh Gregor (extra -o settings as arguments) with the settings Kafka's
# server.properties sets (kafka.sh start), so that both report the same keys as set by the
# user; waits for its listeners (lines in $dir/out). legacy.protocol.enable=false: Kafka 4's
# protocol versions only, as the Kafka it is compared with (docs/compat.md, legacy clients).
start_gregor() {
  rm -rf "$dir/data"
  "$gregor" serve -o http.listen=127.0.0.1:0 --listen 127.0.0.1:0 --data-dir "$dir/data" --log-level warn "$@" \
    -o num.partitions=1 -o default.replication.factor=1 -o auto.create.topics.enable=true \
    -o group.initial.rebalance.delay.ms=0 -o legacy.protocol.enable=false > "$dir/out" 2> "$dir/err" &
  gpid=$!
  for _ in $(seq 1 100); do grep -q "^gregor listening on" "$dir/out" && break; sleep 0.1; done
  grep -q "^gregor listening on" "$dir/out" || { echo "differential: gregor did not start" >&2; cat "$dir/err" >&2; exit 1; }
}

kafka=$("$root/compat-tests/kafka/kafka.sh" start | sed -n 's/^kafka listening on //p')
start_gregor
gaddr=$(sed -n 's/^gregor listening on //p' "$dir/out")
echo "# differential: Apache Kafka on $kafka, Gregor on $gaddr" >&2
status=0
"$root/compat-tests/java/run.sh" differential "$kafka" "$gaddr" "$here/known-differences.tsv" "$here/results.tsv" || status=1
kill -TERM "$gpid"; wait "$gpid" 2>/dev/null || true; gpid=
"$root/compat-tests/kafka/kafka.sh" stop >/dev/null

# The secure run. The same settings on both; ANONYMOUS is super on the plaintext listeners
# (Kafka's controller talks to its broker part there).
jaas='org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-pw" user_alice="alice-pw";'
secure=(
  "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"
  "super.users=User:admin;User:ANONYMOUS"
  "sasl.enabled.mechanisms=PLAIN"
  "listener.name.sasl_plaintext.plain.sasl.jaas.config=$jaas"
  "connection.failed.authentication.delay.ms=0"
)
sasl_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
KAFKA_SASL_PORT=$sasl_port "$root/compat-tests/kafka/kafka.sh" start "${secure[@]}" >/dev/null
overrides=()
for kv in "${secure[@]}"; do overrides+=(-o "$kv"); done
start_gregor -o "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0" "${overrides[@]}"
gsasl=$(sed -n 's/^gregor listener SASL_PLAINTEXT listening on //p' "$dir/out")
echo "# differential (secure): Apache Kafka on 127.0.0.1:$sasl_port, Gregor on $gsasl" >&2
"$root/compat-tests/java/run.sh" differential-secure "127.0.0.1:$sasl_port" "$gsasl" "$here/known-differences.tsv" \
  "$here/results-secure.tsv" || status=1
exit $status
