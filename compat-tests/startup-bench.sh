#!/usr/bin/env bash
# make bench-startup: start-up time of a release Gregor (process spawn -> port accepting),
# empty and with a big data directory: PARTITIONS partitions holding GB gigabytes, written
# with librdkafka's rdkafka_performance. Measured after a clean shutdown, after kill -9
# (recovery from the checkpoints), and with the checkpoints removed (every segment
# rescanned), each with a warm page cache and, where the kernel allows, a cold one.
# Knobs: GB (default 10), PARTITIONS (default 1000), RUNS (default 3), DIR (default a
# temp dir under /tmp, removed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
GB=${GB:-10}
PARTITIONS=${PARTITIONS:-1000}
RUNS=${RUNS:-3}
TOPICS=10

src=$(python3 compat-tests/librdkafka/runner.py build | tail -n 1)
perf="$src/examples/rdkafka_performance"
[ -x "$perf" ] || make -C "$src/examples" rdkafka_performance >/dev/null
cargo build --release --quiet --bin gregor
bin=$PWD/target/release/gregor
dir=${DIR:-$(mktemp -d)}
data="$dir/data"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'if [ -n "${pid:-}" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi; [ -n "${DIR:-}" ] || rm -rf "$dir"' EXIT
startup() { python3 compat-tests/startup.py "$@"; }

startup startup_empty_ms "$RUNS" "$bin" "$port" "$dir/empty"

echo "writing $GB GB to $PARTITIONS partitions ($TOPICS topics)..."
"$bin" serve -o http.listen=127.0.0.1:0 --listen "127.0.0.1:$port" --data-dir "$data" --log-level warn \
  -o num.partitions=$((PARTITIONS / TOPICS)) > "$dir/out" 2> "$dir/err" &
pid=$!
python3 - "$port" <<'EOF'
import socket, sys, time
for _ in range(5000):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close(); break
    except OSError:
        time.sleep(0.01)
EOF
per_topic=$(( GB * 1024 * 1024 / TOPICS ))   # 1 KiB messages
t0=$(date +%s)
for t in $(seq 1 $TOPICS); do
  LD_LIBRARY_PATH="$src/src" "$perf" -P -t "startup-$t" -b "127.0.0.1:$port" -s 1024 \
    -c "$per_topic" -X acks=1 -X linger.ms=5 -X batch.size=1000000 -q > /dev/null 2>&1
done
echo "wrote in $(( $(date +%s) - t0 )) s; $(du -sh "$data" | cut -f1) on disk, $(ls -d "$data"/startup-* | wc -l) partitions"
kill -TERM "$pid"; wait "$pid" || true; pid=

cold() { sync && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; }
startup startup_clean_warm_ms "$RUNS" "$bin" "$port" "$data"
startup startup_after_kill9_warm_ms "$RUNS" "$bin" "$port" "$data" --kill9
# One clean start/stop so the next measurements begin from a clean state.
startup settle_ms 1 "$bin" "$port" "$data" > /dev/null
if cold; then
  times=()
  for _ in $(seq 1 "$RUNS"); do
    cold
    times+=("$(startup x 1 "$bin" "$port" "$data" | sed 's/.* ms=\([0-9.]*\).*/\1/')")
  done
  echo "RESULT startup_clean_cold_ms all=$(IFS=,; echo "${times[*]}")"
else
  echo "RESULT startup_clean_cold_ms skipped (cannot drop the page cache here)"
fi
# Worst case: no checkpoints and no clean marker, so every segment's CRCs are checked.
rm -f "$data"/recovery-point-offset-checkpoint "$data"/.kafka_cleanshutdown
startup startup_full_rescan_warm_ms 1 "$bin" "$port" "$data" --kill9
rm -f "$data"/recovery-point-offset-checkpoint
if cold; then
  startup startup_full_rescan_cold_ms 1 "$bin" "$port" "$data" --kill9
fi
