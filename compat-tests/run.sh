#!/usr/bin/env bash
# Compatibility suites against Gregor: librdkafka's own tests (compat-tests/librdkafka) and
# confluent-kafka-python scenarios (compat-tests/python).
#   run.sh quick   expected-pass quick subset + Python scenarios (make test)
#   run.sh full    every applicable upstream test + Python; regenerates docs/compat.md (make compat)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-quick}
work=compat-tests/.work
mkdir -p "$work"

cargo build --quiet --bin gregor
gregor=target/debug/gregor

# The Python client, in a venv of its own.
venv=$work/venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import confluent_kafka' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r compat-tests/python/requirements.txt
fi

python_scenarios() {
  local dir out rc=0
  dir=$(mktemp -d)
  "$gregor" serve --listen 127.0.0.1:0 --data-dir "$dir/data" --log-level warn > "$dir/out" 2> "$dir/err" &
  local pid=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$dir/out" && break; sleep 0.1; done
  local addr
  addr=$(sed -n 's/^gregor listening on //p' "$dir/out")
  timeout 300 "$venv/bin/python" compat-tests/python/scenarios.py "$addr" | tee "$work/python.txt" || rc=$?
  kill -TERM "$pid"; wait "$pid" || rc=1
  rm -rf "$dir"
  return $rc
}

rc=0
case "$mode" in
  quick)
    python3 compat-tests/librdkafka/runner.py --gregor "$gregor" --timeout 120 --total 900 quick \
      | tee "$work/librdkafka-quick.txt" || rc=1
    python_scenarios || rc=1
    ;;
  full)
    python3 compat-tests/librdkafka/runner.py --gregor "$gregor" --timeout 240 --total 5400 full \
      | tee "$work/librdkafka-full.txt" || rc=1
    python_scenarios || rc=1
    python3 compat-tests/report.py > docs/compat.md
    echo "docs/compat.md regenerated"
    ;;
  *) echo "usage: $0 quick|full" >&2; exit 2 ;;
esac
exit $rc
