#!/usr/bin/env bash
# make bench-cleaner-compare: the log cleaner of Apache Kafka (compat-tests/kafka) and of a
# release Gregor, on the same compacted topic and the same 1 M records over 10 k keys,
# produced with confluent-kafka; each broker's own report of its first cleaning
# (compat-tests/cleaner_compare.py). Both run with log.cleaner.backoff.ms=1000.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$root/compat-tests/.work
venv=$work/venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import confluent_kafka' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r compat-tests/python/requirements.txt
fi
cargo build --release --quiet --bin gregor
export KAFKA_STATE=$work/kafka/cleaner-compare
dir=$(mktemp -d)
gpid=
cleanup() {
  if [ -n "$gpid" ]; then kill -TERM "$gpid" 2>/dev/null; wait "$gpid" 2>/dev/null || true; fi
  compat-tests/kafka/kafka.sh stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
kafka=$(compat-tests/kafka/kafka.sh start log.cleaner.backoff.ms=1000 | sed -n 's/^kafka listening on //p')
target/release/gregor serve -o http.listen=127.0.0.1:0 --listen 127.0.0.1:0 --data-dir "$dir/data" --log-level info \
  -o log.cleaner.backoff.ms=1000 > "$dir/out" 2> "$dir/err" &
gpid=$!
for _ in $(seq 1 100); do grep -q "^gregor listening on" "$dir/out" && break; sleep 0.1; done
gregor=$(sed -n 's/^gregor listening on //p' "$dir/out")
"$venv/bin/python" compat-tests/cleaner_compare.py \
  kafka "$kafka" "$KAFKA_STATE/server.log" gregor "$gregor" "$dir/err"
