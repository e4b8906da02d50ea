#!/usr/bin/env bash
# make bench-compare: the team harness (../shared/bench/kafka-bench.sh) against Gregor and
# against Apache Kafka (compat-tests/kafka), in one run on this machine, then one table with
# each figure for both and the ratio Gregor / Kafka. Kafka runs twice: with its defaults
# (acknowledged from the page cache) and with flush.messages=1 (log.flush.interval.messages,
# fsync before every acknowledgement, as Gregor does by default), so that durable is
# compared with durable.
# Knobs: everything kafka-bench.sh takes (N_1K, N_100B, LAT_RATES, LAT_SECS, CAP_S, ...),
# RUNS (default 1: rounds; targets alternate within a round, figures are medians),
# GREGOR_ARGS, TARGETS (default "gregor kafka kafka-flush1"), HARNESS, OUT (result file).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
harness=${HARNESS:-../shared/bench/kafka-bench.sh}
[ -f "$harness" ] || { echo "bench-compare: no harness at $harness" >&2; exit 2; }
runs=${RUNS:-1}
targets=${TARGETS:-gregor kafka kafka-flush1}
out=${OUT:-compat-tests/.work/bench-compare.txt}
mkdir -p compat-tests/.work

src=$(python3 compat-tests/librdkafka/runner.py build | tail -n 1)
perf="$src/examples/rdkafka_performance"
[ -x "$perf" ] || make -C "$src/examples" rdkafka_performance >/dev/null
cargo build --release --quiet --bin gregor
compat-tests/kafka/kafka.sh fetch >/dev/null

dir=$(mktemp -d)
gpid=
cleanup() {
  if [ -n "$gpid" ]; then kill -TERM "$gpid" 2>/dev/null; wait "$gpid" 2>/dev/null || true; fi
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
      target/release/gregor serve --listen 127.0.0.1:0 --data-dir "$dir/gregor" --log-level warn \
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
