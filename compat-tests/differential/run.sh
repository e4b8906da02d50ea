#!/usr/bin/env bash
# The differential runner: the same scripted client sessions against a fresh Apache Kafka
# (compat-tests/kafka) and a fresh Gregor, answers compared field by field
# (compat-tests/java: Differential.java, Sessions.java). Differences are either explained by
# known-differences.tsv or reported as UNEXPLAINED (exit 1). Writes results.tsv here.
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

kafka=$("$root/compat-tests/kafka/kafka.sh" start | sed -n 's/^kafka listening on //p')
# Gregor with the settings Kafka's server.properties sets (kafka.sh start), so that both
# report the same keys as set by the user.
"$gregor" serve --listen 127.0.0.1:0 --data-dir "$dir/data" --log-level warn \
  -o num.partitions=1 -o default.replication.factor=1 -o auto.create.topics.enable=true \
  -o group.initial.rebalance.delay.ms=0 > "$dir/out" 2> "$dir/err" &
gpid=$!
for _ in $(seq 1 100); do grep -q "^gregor listening on" "$dir/out" && break; sleep 0.1; done
gaddr=$(sed -n 's/^gregor listening on //p' "$dir/out")
[ -n "$gaddr" ] || { echo "differential: gregor did not start" >&2; cat "$dir/err" >&2; exit 1; }
echo "# differential: Apache Kafka on $kafka, Gregor on $gaddr" >&2
"$root/compat-tests/java/run.sh" differential "$kafka" "$gaddr" "$here/known-differences.tsv" "$here/results.tsv"
