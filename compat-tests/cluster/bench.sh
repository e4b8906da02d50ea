#!/usr/bin/env bash
# make bench-cluster: cluster mode (docs/cluster.md) with 1 and then 3 release brokers on the
# engines of engines.sh (PostgreSQL, moto's S3 server), driven by the team harness
# ../shared/bench/kafka-bench.sh with the bootstrap list of every broker. Prints the
# harness's RESULT lines for each size, then one RESULT line per size with what the engines
# did during the run: objects written, PostgreSQL transactions and the rates of both.
# Knobs: BROKERS (default "1 3"), everything kafka-bench.sh takes (defaults here are smaller
# than the single-broker bench: N_1K=200000, N_100B=500000, LAT_RATES=1000, LAT_SECS=10),
# CLUSTER_ARGS (extra -o settings for every broker, e.g. "-o gregor.produce.buffer.ms=50").
set -euo pipefail
cd "$(dirname "$0")/../.."
harness=${HARNESS:-../shared/bench/kafka-bench.sh}
[ -f "$harness" ] || { echo "bench-cluster: no harness at $harness" >&2; exit 2; }
compat-tests/cluster/engines.sh install >/dev/null

src=$(python3 compat-tests/librdkafka/runner.py build | tail -n 1)
perf="$src/examples/rdkafka_performance"
[ -x "$perf" ] || make -C "$src/examples" rdkafka_performance >/dev/null
cargo build --release --quiet --bin gregor
bin=target/release/gregor
export N_1K=${N_1K:-200000} N_100B=${N_100B:-500000} LAT_RATES=${LAT_RATES:-1000} LAT_SECS=${LAT_SECS:-10}

dir=$(mktemp -d)
chmod 755 "$dir"  # PostgreSQL runs as nobody under it
pids=()
stop() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap 'stop; compat-tests/cluster/engines.sh down "$dir/engines"; rm -rf "$dir"' EXIT

for n in ${BROKERS:-1 3}; do
  # The previous size's engines stop first (down reads their PID files), then go.
  compat-tests/cluster/engines.sh down "$dir/engines" 2>/dev/null || true
  rm -rf "$dir/engines" "$dir"/b*
  compat-tests/cluster/engines.sh up "$dir/engines" >/dev/null
  set -a; . "$dir/engines/env"; set +a
  boot=
  for i in $(seq 1 "$n"); do
    # shellcheck disable=SC2086 # CLUSTER_ARGS: extra "-o KEY=VALUE" words
    "$bin" serve --listen 127.0.0.1:0 --data-dir "$dir/b$i" --log-level warn \
      -o http.listen=127.0.0.1:0 -o node.id="$i" -o gregor.storage=cluster \
      -o gregor.object.store.url="s3://$GREGOR_S3_BUCKET/bench" \
      -o gregor.object.store.endpoint="$GREGOR_S3_ENDPOINT" \
      -o gregor.object.store.access.key.id=bench -o gregor.object.store.secret.access.key=bench \
      -o gregor.metadata.url="$GREGOR_METADATA_URL" ${CLUSTER_ARGS:-} \
      > "$dir/b$i.out" 2> "$dir/b$i.err" &
    pids+=($!)
    for _ in $(seq 1 600); do grep -q "^gregor listening on" "$dir/b$i.out" 2>/dev/null && break; sleep 0.05; done
    boot="$boot${boot:+,}$(sed -n 's/^gregor listening on //p' "$dir/b$i.out")"
  done
  sleep 1  # every broker's next heartbeat lists the others
  sql() { psql -qtA "$GREGOR_METADATA_URL" -c "$1"; }
  objects0=$(sql "SELECT count(*) FROM objects"); xacts0=$(sql "SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'")
  t0=$(date +%s.%N)
  echo "# $n broker(s): $boot" >&2
  LD_LIBRARY_PATH="$src/src:$src/src-cpp" BROKER_PID=${pids[0]} BENCH_PREFIX="cluster$n" \
    bash "$harness" "${boot%%,*}" "$perf" | sed "s/^RESULT name=/RESULT brokers=$n name=/"
  t1=$(date +%s.%N)
  objects1=$(sql "SELECT count(*) FROM objects"); xacts1=$(sql "SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'")
  bytes=$(sql "SELECT coalesce(sum(size), 0) FROM objects")
  awk -v n="$n" -v o="$((objects1 - objects0))" -v x="$((xacts1 - xacts0))" -v b="$bytes" -v t0="$t0" -v t1="$t1" 'BEGIN {
    s = t1 - t0
    printf "RESULT brokers=%d name=cluster_engines wall_s=%.1f objects=%d objects_per_s=%.1f object_MB=%.1f mean_object_KB=%.0f pg_xacts=%d pg_xacts_per_s=%.1f\n",
      n, s, o, o / s, b / 1e6, (o > 0 ? b / o / 1000 : 0), x, x / s }'
  echo "RESULT brokers=$n name=broker_rss_after kB=$(awk '/VmRSS/{print $2}' "/proc/${pids[0]}/status")"
  stop
done
