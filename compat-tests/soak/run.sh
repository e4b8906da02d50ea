#!/usr/bin/env bash
# make soak: builds the release broker and, each on a fresh broker (free loopback port, new
# data directory): measures its RSS with 10,000 idle connections (IDLE_CONNECTIONS to
# change), then runs compat-tests/soak/soak.py for SOAK_SECONDS (default 600), leaving the
# CSV in compat-tests/.work/soak.csv. Stops only the brokers it started, by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=compat-tests/.work
mkdir -p "$work"
venv=$work/venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import confluent_kafka' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r compat-tests/python/requirements.txt
fi
cargo build --release --bin gregor

pid=
data=
stop_broker() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -n "$data" ]; then rm -rf "$data"; fi
  pid= data=
}
trap stop_broker EXIT
start_broker() {
  data=$(mktemp -d)
  log=$work/soak-broker.log
  target/release/gregor serve -o http.listen=127.0.0.1:0 --listen 127.0.0.1:0 --data-dir "$data" --log-level warn > "$log" 2>&1 &
  pid=$!
  addr=
  for _ in $(seq 1 200); do
    addr=$(sed -n 's/^gregor listening on //p' "$log")
    [ -n "$addr" ] && return 0
    sleep 0.05
  done
  echo "the broker did not start" >&2; cat "$log" >&2; exit 1
}

start_broker
python3 compat-tests/soak/idle_connections.py "$addr" "$pid"
stop_broker

start_broker
"$venv/bin/python" compat-tests/soak/soak.py "$addr" "$pid" "$work/soak.csv"
