#!/usr/bin/env bash
# The Java client scenarios and the differential runner (compat-tests/java, Maven).
#   run.sh build                               compile once (rebuilt when a source changes)
#   run.sh scenarios BOOTSTRAP quick|full [NAME...]
#   run.sh differential[-secure] KAFKA GREGOR KNOWN_TSV OUT_TSV
# Output of the scenarios: `PASS|FAIL|SKIP java NAME SECONDS` lines, then `N passed, ...`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=$here/../.work/java-target
stamp=$target/.built

build() {
  local newest
  newest=$(find "$here/src" "$here/pom.xml" -newer "$stamp" 2>/dev/null | head -n 1 || true)
  if [ -f "$stamp" ] && [ -z "$newest" ]; then
    return 0
  fi
  echo "# java: building the scenarios with Maven (kafka-clients and kafka-streams from Maven Central)" >&2
  mvn -q -B -Dstyle.color=never -f "$here/pom.xml" package -DskipTests >&2
  touch "$stamp"
}

run() {
  build
  exec java -Xmx1G -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -Dorg.slf4j.simpleLogger.log.org.apache.kafka=error \
    -cp "$target/classes:$target/libs/*" dev.gregor.compat.Main "$@"
}

case "${1:-}" in
  build) build ;;
  scenarios|differential|differential-secure) run "$@" ;;
  *) echo "usage: $0 build | scenarios BOOTSTRAP quick|full [NAME...] | differential[-secure] KAFKA GREGOR KNOWN OUT" >&2; exit 2 ;;
esac
