#!/usr/bin/env bash
# make bench: librdkafka's rdkafka_performance (built from the rdkafka-sys crate's bundled
# source, cached with the compat suite's build) against a release Gregor on a temp data dir,
# driven by the team harness ../shared/bench/kafka-bench.sh. Prints the harness's RESULT
# lines (figures, broker CPU and RSS) and the start-up time (spawn to first ApiVersions
# answer, median of 5, compat-tests/startup.py) and binary size.
# Knobs: everything kafka-bench.sh takes (N_1K, N_100B, LAT_RATES, ...), HARNESS=path,
# GREGOR_ARGS (extra broker arguments), GREGOR_BIN (a prebuilt broker, e.g. an older commit's
# for an A/B run; default: build this tree's release binary).
set -euo pipefail
cd "$(dirname "$0")/.."
harness=${HARNESS:-../shared/bench/kafka-bench.sh}
[ -x "$harness" ] || [ -f "$harness" ] || { echo "bench: no harness at $harness" >&2; exit 2; }

src=$(python3 compat-tests/librdkafka/runner.py build | tail -n 1)
perf="$src/examples/rdkafka_performance"
if [ ! -x "$perf" ]; then
  make -C "$src/examples" rdkafka_performance >/dev/null
fi
if [ -n "${GREGOR_BIN:-}" ]; then
  bin=$GREGOR_BIN
else
  cargo build --release --quiet --bin gregor
  bin=target/release/gregor
fi

# Brokers with an HTTP listener get it on a free port (older builds, for A/B runs, have none).
http_arg=
if "$bin" default-config | grep -q '^http.listen'; then http_arg="-o http.listen=127.0.0.1:0"; fi
export GREGOR_HTTP_ARG=$http_arg
dir=$(mktemp -d)
trap 'if [ -n "${pid:-}" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 compat-tests/startup.py startup_to_first_answer 5 "$bin" "$port" "$dir/startup"
# shellcheck disable=SC2086 # GREGOR_ARGS: extra broker arguments, e.g. "-o log.flush.interval.messages=10000"; http_arg: two words
"$bin" serve ${http_arg:-} --listen 127.0.0.1:0 --data-dir "$dir/data" --log-level warn ${GREGOR_ARGS:-} > "$dir/out" 2> "$dir/err" &
pid=$!
for _ in $(seq 1 500); do grep -q "^gregor listening on" "$dir/out" 2>/dev/null && break; sleep 0.01; done
addr=$(sed -n 's/^gregor listening on //p' "$dir/out")
echo "RESULT binary_size bytes=$(stat -c %s "$bin")"
echo "RESULT broker_idle_rss kB=$(awk '/VmRSS/{print $2}' /proc/$pid/status)"
export BENCH_PREFIX=${BENCH_PREFIX:-bench$(date +%s)}
LD_LIBRARY_PATH="$src/src:$src/src-cpp" BROKER_PID=$pid bash "$harness" "$addr" "$perf"

# The down-converting fetch (legacy.protocol.enable): the harness's 1 KiB partition read
# again by librdkafka as a Kafka 0.9 client (api.version.request=false), which fetches with
# Fetch v1, so every stored batch is converted to message format v0 on the way out. Compare
# with consume_1KiB_p1_from0 (Fetch v4+, stored bytes as they are).
if [[ " ${ONLY:-lat p1 p8 c1 c8 small} " == *" p1 "* ]] && [ "${LEGACY_FETCH:-1}" = 1 ]; then
  n=${N_1K:-2000000}
  log="$dir/legacy-fetch.log"
  t0=$(awk '{print $14 + $15}' /proc/$pid/stat)
  LD_LIBRARY_PATH="$src/src:$src/src-cpp" timeout 300 "$perf" -C -t "$BENCH_PREFIX-p1" -p 0 -b "$addr" \
    -o beginning -c "$n" -e -X enable.partition.eof=true \
    -X api.version.request=false -X broker.version.fallback=0.9.0 > "$log" 2>&1 || true
  t1=$(awk '{print $14 + $15}' /proc/$pid/stat)
  summary=$(grep -E '^% [0-9]+ messages \([0-9]+ bytes\) consumed' "$log" | tail -1 | sed -E \
    's/^% ([0-9]+) messages \(([0-9]+) bytes\) consumed in ([0-9]+)ms: ([0-9]+) msgs\/s \(([0-9.]+) MB\/s\).*/msgs=\1 bytes=\2 ms=\3 msgs_s=\4 MB_s=\5/')
  echo "RESULT name=consume_1KiB_p1_from0_fetch_v1_down_converted expected=$n ${summary:-error=no_summary} broker_cpu_s=$(awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')"
fi
echo "RESULT broker_after_rss kB=$(awk '/VmRSS/{print $2}' /proc/$pid/status)"
