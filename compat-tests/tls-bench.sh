#!/usr/bin/env bash
# make bench-tls: a release Gregor with a PLAINTEXT and an SSL listener (a throwaway CA and
# certificate made by openssl), and compat-tests/tls_bench.py driving both with
# confluent-kafka. RECORDS= changes the count (default 500000).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(pwd)/compat-tests/.work
venv=$work/venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import confluent_kafka' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r compat-tests/python/requirements.txt
fi
if [ -n "${GREGOR_BIN:-}" ]; then bin=$GREGOR_BIN; else cargo build --release --quiet --bin gregor; bin=target/release/gregor; fi
dir=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; fi; rm -rf "$dir"' EXIT
(
  cd "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=bench-ca -keyout ca.key -out ca.pem 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout b.key -out b.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
  openssl x509 -req -in b.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile san.ext -out b.crt 2>/dev/null
  cat b.key b.crt > broker.pem
)
"$bin" serve -o http.listen=127.0.0.1:0 --data-dir "$dir/data" --log-level warn \
  -o "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0" -o "ssl.keystore.location=$dir/broker.pem" \
  > "$dir/out" 2> "$dir/err" &
pid=$!
for _ in $(seq 1 100); do grep -q "^gregor listening on" "$dir/out" && break; sleep 0.1; done
plain=$(sed -n 's/^gregor listener PLAINTEXT listening on //p' "$dir/out")
tls=$(sed -n 's/^gregor listener SSL listening on //p' "$dir/out")
"$venv/bin/python" compat-tests/tls_bench.py "$plain" "$tls" "$dir/ca.pem" "${RECORDS:-500000}"
