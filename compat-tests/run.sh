#!/usr/bin/env bash
# Compatibility suites against Gregor: librdkafka's own tests (compat-tests/librdkafka),
# confluent-kafka-python, kafka-python and aiokafka (compat-tests/python), kafkajs
# (compat-tests/kafkajs), the Java client and Kafka Streams
# (compat-tests/java), franz-go and sarama (compat-tests/go), and the differential runner
# against Apache Kafka (compat-tests/differential), and old clients on the versions
# legacy.protocol.enable serves (compat-tests/kafka-node, librdkafka as a 0.9 client).
#   run.sh quick   librdkafka's quick subset, the Python scenarios, the Java and Go quick
#                  subsets (make test)
#   run.sh full    every applicable upstream test (the cli class with Kafka's tools), every
#                  client scenario, the differential runner; regenerates docs/compat.md (make compat)
#   run.sh clients as full without the librdkafka suite (its committed results.tsv is reused)
#   run.sh legacy  the old clients only (make compat-legacy)
#   run.sh cluster the quick subsets against three brokers in cluster mode (docs/cluster.md;
#                  make compat-cluster)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-quick}
work=compat-tests/.work
mkdir -p "$work"

cargo build --quiet --bin gregor
gregor=target/debug/gregor

# The Python clients (confluent-kafka, kafka-python, aiokafka), in a venv of their own,
# reinstalled when requirements.txt changes.
venv=$work/venv
if [ ! -x "$venv/bin/python" ] || ! cmp -s compat-tests/python/requirements.txt "$venv/requirements.txt"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r compat-tests/python/requirements.txt
  cp compat-tests/python/requirements.txt "$venv/requirements.txt"
fi

# kafkajs, from npm, into .work/kafkajs (reinstalled when package.json changes).
kafkajs_install() {
  local dir=$work/kafkajs
  mkdir -p "$dir"
  if [ ! -d "$dir/node_modules/kafkajs" ] || ! cmp -s compat-tests/kafkajs/package.json "$dir/package.json"; then
    cp compat-tests/kafkajs/package.json "$dir/"
    (cd "$dir" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
  fi
  cp compat-tests/kafkajs/scenarios.js "$dir/"
}

# A client scenario suite against a fresh Gregor: scenarios NAME COMMAND... (the address is
# appended to COMMAND's arguments by the ADDR placeholder); output in .work/NAME.txt.
# In cluster mode (run.sh cluster), against three brokers on fresh engines instead, with the
# bootstrap list of all three as ADDR.
scenarios() {
  local name=$1 dir out rc=0 pid addr args=()
  shift
  dir=$(mktemp -d)
  if [ "$mode" = cluster ]; then
    chmod 755 "$dir"
    # A 5 ms produce buffer: some scenarios send one message per acknowledgement (sarama's
    # SyncProducer, 2,000 of them), which the default 250 ms would make a ten-minute wait.
    addr=$(compat-tests/cluster/cluster.sh up "$dir/cluster" "$gregor" 3 -o num.partitions=4 \
      -o gregor.produce.buffer.ms=5) || {
      rm -rf "$dir"; return 1; }
  else
    "$gregor" serve -o http.listen=127.0.0.1:0 --listen 127.0.0.1:0 --data-dir "$dir/data" --log-level warn > "$dir/out" 2> "$dir/err" &
    pid=$!
    for _ in $(seq 1 100); do grep -q "^gregor listening on" "$dir/out" && break; sleep 0.1; done
    addr=$(sed -n 's/^gregor listening on //p' "$dir/out")
  fi
  for a in "$@"; do args+=("${a//ADDR/$addr}"); done
  # The scenarios that count brokers expect this many.
  EXPECTED_BROKERS=$([ "$mode" = cluster ] && echo 3 || echo 1) timeout 900 "${args[@]}" \
    | tee "$work/$name.txt" || rc=$?
  if [ "$mode" = cluster ]; then
    compat-tests/cluster/cluster.sh down "$dir/cluster" || rc=1
  else
    kill -TERM "$pid"; wait "$pid" || rc=1
  fi
  rm -rf "$dir"
  return $rc
}

python_scenarios() {
  local rc=0
  scenarios python "$venv/bin/python" compat-tests/python/scenarios.py ADDR || rc=1
  scenarios kafka-python "$venv/bin/python" compat-tests/python/kafka_python_scenarios.py ADDR || rc=1
  scenarios aiokafka "$venv/bin/python" compat-tests/python/aiokafka_scenarios.py ADDR || rc=1
  # The secured listeners (TLS, mTLS, SASL PLAIN and SCRAM): secure.py starts its own broker.
  timeout 300 "$venv/bin/python" compat-tests/python/secure.py "$gregor" | tee "$work/python-secure.txt" || rc=1
  return $rc
}

# Old clients on the versions legacy.protocol.enable serves: kafka-node 5.0.0 (against Gregor
# with the setting on and off, and Apache Kafka 4), and librdkafka as a Kafka 0.9 client.
# 0075 creates its topic with the Admin API, which librdkafka will not send to a broker it
# takes for 0.9 (CreateTopics came with 0.10.1), so it is run and reported, not required.
legacy_clients() {
  local rc=0
  compat-tests/kafka-node/run.sh "$gregor" | tee "$work/kafka-node.txt" || rc=1
  BROKER_VERSION_FALLBACK=0.9.0 python3 compat-tests/librdkafka/runner.py --gregor "$gregor" --timeout 120 \
    only 0063 0070 | tee "$work/librdkafka-legacy.txt" || rc=1
  BROKER_VERSION_FALLBACK=0.9.0 python3 compat-tests/librdkafka/runner.py --gregor "$gregor" --timeout 120 \
    only 0075 | tee -a "$work/librdkafka-legacy.txt" || true
  return $rc
}

rc=0
case "$mode" in
  quick)
    python3 compat-tests/librdkafka/runner.py --gregor "$gregor" --timeout 120 --total 900 quick \
      | tee "$work/librdkafka-quick.txt" || rc=1
    python_scenarios || rc=1
    scenarios java-quick compat-tests/java/run.sh scenarios ADDR quick || rc=1
    scenarios go-quick compat-tests/go/run.sh ADDR quick || rc=1
    kafkajs_install && scenarios kafkajs node "$work/kafkajs/scenarios.js" ADDR || rc=1
    ;;
  full|clients)
    if [ "$mode" = full ]; then
      python3 compat-tests/librdkafka/runner.py --gregor "$gregor" --timeout 240 --total 5400 full \
        | tee "$work/librdkafka-full.txt" || rc=1
    fi
    python_scenarios || rc=1
    scenarios java compat-tests/java/run.sh scenarios ADDR full || rc=1
    scenarios go compat-tests/go/run.sh ADDR full || rc=1
    kafkajs_install && scenarios kafkajs node "$work/kafkajs/scenarios.js" ADDR || rc=1
    compat-tests/differential/run.sh "$gregor" | tee "$work/differential.txt" || rc=1
    legacy_clients || rc=1
    python3 compat-tests/report.py > docs/compat.md
    echo "docs/compat.md regenerated"
    ;;
  legacy) legacy_clients || rc=1 ;;
  cluster)
    # The secured listeners' script starts a broker of its own, so it is not run here.
    compat-tests/cluster/engines.sh check
    GREGOR_CLUSTER=1 python3 compat-tests/librdkafka/runner.py --gregor "$gregor" --timeout 120 --total 1500 quick \
      | tee "$work/cluster-librdkafka-quick.txt" || rc=1
    scenarios cluster-python "$venv/bin/python" compat-tests/python/scenarios.py ADDR || rc=1
    scenarios cluster-kafka-python "$venv/bin/python" compat-tests/python/kafka_python_scenarios.py ADDR || rc=1
    scenarios cluster-aiokafka "$venv/bin/python" compat-tests/python/aiokafka_scenarios.py ADDR || rc=1
    scenarios cluster-java-quick compat-tests/java/run.sh scenarios ADDR quick || rc=1
    scenarios cluster-go-quick compat-tests/go/run.sh ADDR quick || rc=1
    kafkajs_install && scenarios cluster-kafkajs node "$work/kafkajs/scenarios.js" ADDR || rc=1
    ;;
  *) echo "usage: $0 quick|full|clients|legacy|cluster" >&2; exit 2 ;;
esac
exit $rc
