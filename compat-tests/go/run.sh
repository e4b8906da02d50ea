#!/usr/bin/env bash
# The Go client scenarios (franz-go and IBM/sarama, compat-tests/go).
#   run.sh BOOTSTRAP quick|full [NAME...]
# Modules come from the Go module proxy (go.sum pins them); the binary is built into
# compat-tests/.work. Output: `PASS|FAIL|SKIP go NAME SECONDS` lines, then `N passed, ...`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/../.work/go-scenarios
(cd "$here" && GOFLAGS=-mod=readonly go build -o "$bin" .)
exec "$bin" "$@"
