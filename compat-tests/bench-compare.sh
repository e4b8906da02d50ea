#!/usr/bin/env bash
# make bench-compare: the team harness (../shared/bench/kafka-bench.sh) against Gregor and
# against Apache Kafka (compat-tests/kafka), in one run on this machine, then one table with
# each figure for both and the ratio Gregor / Kafka. Kafka runs twice: with its defaults
# (acknowledged from the page cache) and with flush.messages=1 (log.flush.interval.messages,
# fsync before every acknowledgement, as Gregor does by default), so that durable is
# compared with durable.
# Knobs: everything kafka-bench.sh takes (N_1K, N_100B, LAT_RATES, LAT_SECS, CAP_S, ...),
# RUNS (default 1: rounds; targets alternate within a round, figures are medians),
# GREGOR_ARGS, TARGETS (default "gregor kafka kafka-flush1", plus "peer" when PEER_CMD is
# set), HARNESS, OUT (result file).
# PEER_CMD: a shell command that runs any other broker in the foreground on $PEER_ADDR
# (127.0.0.1:<free port>, set by this script) with its data under $PEER_DIR (fresh per run),
# e.g. PEER_CMD='tansu broker --listener-url tcp://$PEER_ADDR --storage-engine memory://'.
# It runs in its own process group, which is stopped after each run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
harness=${HARNESS:-../shared/bench/kafka-bench.sh}
[ -f "$harness" ] || { echo "bench-compare: no harness at $harness" >&2; exit 2; }
runs=${RUNS:-1}
targets=${TARGETS:-gregor kafka kafka-flush1${PEER_CMD:+ peer}}
out=${OUT:-compat-tests/.work/bench-compare.txt}
mkdir -p compat-tests/.work

src=$(python3 compat-tests/librdkafka/runner.py build | tail -n 1)
perf="$src/examples/rdkafka_performance"
[ -x "$perf" ] || make -C "$src/examples" rdkafka_performance >/dev/null
cargo build --release --quiet --bin gregor
compat-tests/kafka/kafka.sh fetch >/dev/null

dir=$(mktemp -d)
gpid=
peer_pgid=
stop_peer() {
  if [ -n "$peer_pgid" ]; then
    kill -TERM -- "-$peer_pgid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 -- "-$peer_pgid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$peer_pgid" 2>/dev/null || true
    wait "$peer_pgid" 2>/dev/null || true
    peer_pgid=
  fi
}
cleanup() {
  if [ -n "$gpid" ]; then kill -TERM "$gpid" 2>/dev/null; wait "$gpid" 2>/dev/null || true; fi
  stop_peer
  KAFKA_STATE=$dir/kafka compat-tests/kafka/kafka.sh stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

# One harness run against a fresh broker of `target`; RESULT lines tagged with the target.
run_one() {
  local target=$1 round=$2 addr pid
  case "$target" in
    gregor)
      # shellcheck disable=SC2086 # GREGOR_ARGS: extra broker arguments
      target/release/gregor serve -o http.listen=127.0.0.1:0 --listen 127.0.0.1:0 --data-dir "$dir/gregor" --log-level warn \
        ${GREGOR_ARGS:-} > "$dir/gregor.out" 2> "$dir/gregor.err" &
      gpid=$!
      for _ in $(seq 1 500); do grep -q "^gregor listening on" "$dir/gregor.out" 2>/dev/null && break; sleep 0.01; done
      addr=$(sed -n 's/^gregor listening on //p' "$dir/gregor.out")
      pid=$gpid ;;
    kafka|kafka-flush1)
      local extra=()
      [ "$target" = kafka-flush1 ] && extra=(flush.messages=1)
      addr=$(KAFKA_STATE=$dir/kafka compat-tests/kafka/kafka.sh start "${extra[@]}" | sed -n 's/^kafka listening on //p')
      pid=$(cat "$dir/kafka/pid") ;;
    peer)
      [ -n "${PEER_CMD:-}" ] || { echo "bench-compare: target peer needs PEER_CMD" >&2; exit 2; }
      local port
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
      addr=127.0.0.1:$port
      rm -rf "$dir/peer"; mkdir -p "$dir/peer"
      PEER_ADDR=$addr PEER_DIR=$dir/peer setsid bash -c "$PEER_CMD" > "$dir/peer.log" 2>&1 &
      peer_pgid=$!
      python3 - "$port" <<'PY' || { echo "bench-compare: the peer did not listen on $addr within 60 s (see $dir/peer.log)" >&2; exit 1; }
import socket, sys, time
deadline = time.time() + 60
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
PY
      pid=$(ss -ltnpH "sport = :$port" | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2) ;;
    *) echo "bench-compare: unknown target $target" >&2; exit 2 ;;
  esac
  echo "# bench-compare: round $round, $target on $addr" >&2
  echo "RESULT name=broker_idle_rss target=$target kB=$(awk '/VmRSS/{print $2}' /proc/$pid/status)"
  LD_LIBRARY_PATH="$src/src:$src/src-cpp" BROKER_PID=$pid OUTDIR="$dir/out-$target-$round" \
    bash "$harness" "$addr" "$perf" | sed "s/^RESULT name=\([^ ]*\)/RESULT name=\1 target=$target/"
  echo "RESULT name=broker_after_rss target=$target kB=$(awk '/VmRSS/{print $2}' /proc/$pid/status)"
  if [ "$target" = gregor ]; then
    kill -TERM "$gpid"; wait "$gpid" || true; gpid=
    rm -rf "$dir/gregor"
  elif [ "$target" = peer ]; then
    stop_peer
  else
    KAFKA_STATE=$dir/kafka compat-tests/kafka/kafka.sh stop
  fi
}

: > "$out"
for round in $(seq 1 "$runs"); do
  for target in $targets; do
    run_one "$target" "$round" | tee -a "$out"
  done
done
python3 compat-tests/bench_table.py "$out"
