#!/usr/bin/env bash
# A Gregor cluster (docs/cluster.md) for the client suites: both engines (engines.sh) and
# N brokers on free loopback ports, each with its own data directory in DIR.
#   cluster.sh up DIR GREGOR [N] [-o KEY=VALUE...]  starts them; prints the bootstrap list
#                                                   (also in DIR/bootstrap); the extra
#                                                   settings go to every broker
#   cluster.sh down DIR                             stops the brokers (SIGTERM), then the
#                                                   engines, by the PIDs `up` wrote
# `up` exits 3 with the reason when the engines are not installed (make deps installs them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

up() {
  local dir=$1 gregor=$2 n=${3:-3} i addr boot=
  shift 3 || shift $#
  mkdir -p "$dir"
  chmod 755 "$dir"
  "$here/engines.sh" up "$dir/engines" >/dev/null
  # shellcheck disable=SC1091
  . "$dir/engines/env"
  for i in $(seq 1 "$n"); do
    "$gregor" serve --listen 127.0.0.1:0 --data-dir "$dir/b$i" --log-level "${GREGOR_LOG_LEVEL:-warn}" \
      -o http.listen=127.0.0.1:0 -o node.id="$i" -o gregor.storage=cluster \
      -o gregor.object.store.url="s3://$GREGOR_S3_BUCKET/gregor" \
      -o gregor.object.store.endpoint="$GREGOR_S3_ENDPOINT" \
      -o gregor.object.store.access.key.id=test -o gregor.object.store.secret.access.key=test \
      -o gregor.metadata.url="$GREGOR_METADATA_URL" "$@" \
      >"$dir/b$i.out" 2>"$dir/b$i.log" &
    echo $! >"$dir/b$i.pid"
    for _ in $(seq 1 300); do
      grep -q "^gregor listening on" "$dir/b$i.out" 2>/dev/null && break
      kill -0 "$(cat "$dir/b$i.pid")" 2>/dev/null || { echo "broker $i did not start: $(tail -3 "$dir/b$i.log")" >&2; down "$dir"; exit 1; }
      sleep 0.1
    done
    addr=$(sed -n 's/^gregor listening on //p' "$dir/b$i.out")
    [ -n "$addr" ] || { echo "broker $i did not start in 30 s" >&2; down "$dir"; exit 1; }
    boot="$boot${boot:+,}$addr"
  done
  echo "$boot" >"$dir/bootstrap"
  # Each broker learns of the others at its next heartbeat (broker.heartbeat.interval.ms).
  wait_listed "$dir" "$n"
  echo "$boot"
}

# Waits until PostgreSQL has all N brokers alive, then one heartbeat interval more, so
# that every broker's Metadata lists them all.
wait_listed() {
  local dir=$1 n=$2 live
  for _ in $(seq 1 100); do
    live=$(psql -qtA "$GREGOR_METADATA_URL" -c "SELECT count(*) FROM brokers WHERE alive" 2>/dev/null || echo 0)
    [ "$live" = "$n" ] && { sleep 2.5; return 0; }
    sleep 0.2
  done
  echo "only $live of $n brokers registered" >&2
  return 1
}

down() {
  local dir=$1 f pid
  for f in "$dir"/b*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill -TERM "$pid" 2>/dev/null || true
  done
  for f in "$dir"/b*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  "$here/engines.sh" down "$dir/engines"
}

case "${1:-}" in
  up) shift; up "${1:?cluster.sh up DIR GREGOR [N] [-o K=V...]}" "${2:?GREGOR}" "${3:-3}" "${@:4}" ;;
  down) down "${2:?cluster.sh down DIR}" ;;
  *) echo "usage: cluster.sh up DIR GREGOR [N] [-o KEY=VALUE...] | down DIR" >&2; exit 2 ;;
esac
