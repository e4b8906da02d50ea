#!/usr/bin/env bash
# The two engines cluster mode runs on (docs/cluster.md), for the tests and the benchmark:
# PostgreSQL (Debian's postgresql package; initdb in DIR, run as `nobody` when started by
# root) and an S3-API server (moto's server mode, from PyPI into compat-tests/.work), both on
# free loopback ports.
#   engines.sh install   installs what is missing
#   engines.sh up DIR    starts both; writes DIR/env: GREGOR_METADATA_URL, GREGOR_S3_ENDPOINT
#                        and GREGOR_S3_BUCKET (a fresh bucket)
#   engines.sh down DIR  stops what `up` started, by the PIDs it wrote
#   engines.sh check     exits 3 with the reason when `up` could not start them
# `up` exits 3 with the reason on stderr when an engine can't be found or started, so that a
# test can report itself skipped.
# With GREGOR_ENGINES_NO_FSYNC=1 (the cluster tests), PostgreSQL runs with fsync and
# synchronous_commit off: the tests kill brokers, never PostgreSQL, and a heartbeat's commit
# stuck behind other tests' fsyncs must not make a broker look dead. The benchmark and the
# compat runs keep PostgreSQL's durable defaults.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=$root/compat-tests/.work/moto-venv
requirements=$root/compat-tests/cluster/requirements.txt
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  return 1
}

install() {
  if ! pg_bin >/dev/null; then
    echo "installing postgresql (Debian package; the cluster tests' metadata database)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  fi
  if [ ! -x "$venv/bin/moto_server" ] || ! cmp -s "$requirements" "$venv/requirements.txt"; then
    echo "installing moto's S3 server (PyPI, into $venv)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
  fi
}

skip() { echo "$1" >&2; exit 3; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits up to 30 s for a command to succeed.
wait_for() {
  local i
  for i in $(seq 300); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

check() {
  pg_bin >/dev/null || skip "PostgreSQL is not installed (make deps installs it)"
  [ -x "$venv/bin/moto_server" ] || skip "moto's S3 server is not installed (make deps installs it)"
}

up() {
  local dir=$1 bin as=() pg_port s3_port
  check
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  bin=$(pg_bin)
  if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root.
    as=(setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups)
    chmod 755 "$dir"
  fi
  mkdir -p "$dir/pg" "$dir/pgsock"
  [ "$(id -u)" = 0 ] && chown nobody "$dir/pg" "$dir/pgsock"
  "${as[@]}" "$bin/initdb" -D "$dir/pg" -U postgres --auth=trust --no-sync -E UTF8 \
    >"$dir/initdb.log" 2>&1 || skip "initdb failed: $(tail -3 "$dir/initdb.log")"
  pg_port=$(free_port)
  local durability=()
  [ "${GREGOR_ENGINES_NO_FSYNC:-0}" = 1 ] && durability=(-c fsync=off -c synchronous_commit=off)
  "${as[@]}" "$bin/postgres" -D "$dir/pg" -p "$pg_port" -k "$dir/pgsock" \
    -c listen_addresses=127.0.0.1 -c max_connections=200 "${durability[@]}" \
    >"$dir/postgres.log" 2>&1 &
  echo $! >"$dir/postgres.pid"
  wait_for "$bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" ||
    skip "PostgreSQL did not start: $(tail -3 "$dir/postgres.log")"

  s3_port=$(free_port)
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$dir/moto.log" 2>&1 &
  echo $! >"$dir/moto.pid"
  wait_for curl -sf "http://127.0.0.1:$s3_port/" || skip "moto did not start: $(tail -3 "$dir/moto.log")"
  curl -sf -X PUT "http://127.0.0.1:$s3_port/gregor" >/dev/null || skip "moto refused to create a bucket"

  cat >"$dir/env" <<ENV
GREGOR_METADATA_URL=postgresql://postgres@127.0.0.1:$pg_port/postgres
GREGOR_S3_ENDPOINT=http://127.0.0.1:$s3_port
GREGOR_S3_BUCKET=gregor
ENV
  cat "$dir/env"
}

down() {
  local dir=$1 name pid
  for name in moto postgres; do
    [ -f "$dir/$name.pid" ] || continue
    pid=$(cat "$dir/$name.pid")
    # postgres: SIGINT is its fast shutdown.
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/$name.pid"
  done
}

case "${1:-}" in
  install) install ;;
  up) up "${2:?engines.sh up DIR}" ;;
  down) down "${2:?engines.sh down DIR}" ;;
  check) check ;;
  *) echo "usage: engines.sh install | up DIR | down DIR | check" >&2; exit 2 ;;
esac
