#!/usr/bin/env bash
# Apache Kafka as a reference broker beside Gregor (`make kafka`).
#
#   kafka.sh fetch              the pinned release's jars (pom.xml) into $KAFKA_HOME/libs, once,
#                               plus bin/ launchers for the command-line tools (KAFKA_PATH layout)
#   kafka.sh start [KEY=VALUE]  format a fresh single-node KRaft data dir (combined
#                               broker+controller) and start it on a free loopback port, with
#                               Gregor's defaults (auto-create, 1 partition, RF 1); extra
#                               server.properties settings may follow (e.g. flush.messages=1 is
#                               log.flush.interval.messages=1). Prints `kafka listening on ADDR`.
#   kafka.sh stop               stop the broker this script started (by its PID file) and
#                               remove its data dir
#   kafka.sh addr               the running broker's address
#
# Nothing from Kafka is committed: everything lives in compat-tests/.work/kafka (ignored),
# fetched again through Maven on a fresh machine. KAFKA_STATE names the run directory, so
# two brokers (say, default and flush-every-message) can run side by side.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export KAFKA_HOME=${KAFKA_HOME:-$root/compat-tests/.work/kafka}
state=${KAFKA_STATE:-$KAFKA_HOME/run}
# KAFKA_VERSION runs another release than the pinned one (its own KAFKA_HOME, say
# compat-tests/.work/kafka-4.2.1); the share group scenarios compare with 4.2, where share
# groups are GA and on by default.
version=${KAFKA_VERSION:-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")}

log() { echo "# kafka: $*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

fetch() {
  local stamp=$KAFKA_HOME/libs/.version
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ]; then
    return 0
  fi
  log "fetching Apache Kafka $version and its dependencies through Maven (once)"
  rm -rf "$KAFKA_HOME/libs"
  mkdir -p "$KAFKA_HOME/libs"
  mvn -q -B -Dstyle.color=never -f "$here/pom.xml" -Dkafka.version="$version" dependency:copy-dependencies \
    -DoutputDirectory="$KAFKA_HOME/libs" -DincludeScope=runtime >&2
  write_launchers
  echo "$version" > "$stamp"
}

# bin/ as librdkafka's suite expects under KAFKA_PATH: each tool is its main class on the
# fetched jars' class path. Written here, not taken from Kafka's distribution.
write_launchers() {
  mkdir -p "$KAFKA_HOME/bin" "$KAFKA_HOME/config"
  cat > "$KAFKA_HOME/config/tools-log4j2.yaml" <<'EOF'
Configuration:
  Appenders:
    Console:
      name: STDERR
      target: SYSTEM_ERR
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDERR
EOF
  cat > "$KAFKA_HOME/bin/kafka-run-class.sh" <<'EOF'
#!/usr/bin/env bash
# Runs a main class on the fetched Kafka jars (Gregor's compat-tests/kafka/kafka.sh wrote this).
home=$(cd "$(dirname "$0")/.." && pwd)
: "${KAFKA_LOG4J_OPTS:=-Dlog4j2.configurationFile=$home/config/tools-log4j2.yaml}"
: "${KAFKA_HEAP_OPTS:=-Xmx512M}"
# shellcheck disable=SC2086 # the option variables hold several words, as in Kafka's scripts
exec java $KAFKA_HEAP_OPTS $KAFKA_LOG4J_OPTS ${KAFKA_OPTS:-} -Djava.awt.headless=true \
  -cp "$home/libs/*${CLASSPATH:+:$CLASSPATH}" "$@"
EOF
  chmod +x "$KAFKA_HOME/bin/kafka-run-class.sh"
  local tool class
  while read -r tool class; do
    printf '#!/usr/bin/env bash\nexec "$(dirname "$0")/kafka-run-class.sh" %s "$@"\n' "$class" \
      > "$KAFKA_HOME/bin/$tool"
    chmod +x "$KAFKA_HOME/bin/$tool"
  done <<'EOF'
kafka-server-start.sh kafka.Kafka
kafka-storage.sh kafka.tools.StorageTool
kafka-topics.sh org.apache.kafka.tools.TopicCommand
kafka-configs.sh kafka.admin.ConfigCommand
kafka-acls.sh org.apache.kafka.tools.AclCommand
kafka-consumer-groups.sh org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
kafka-delete-records.sh org.apache.kafka.tools.DeleteRecordsCommand
kafka-transactions.sh org.apache.kafka.tools.TransactionsCommand
kafka-log-dirs.sh org.apache.kafka.tools.LogDirsCommand
kafka-get-offsets.sh org.apache.kafka.tools.GetOffsetShell
kafka-console-producer.sh org.apache.kafka.tools.ConsoleProducer
kafka-console-consumer.sh org.apache.kafka.tools.consumer.ConsoleConsumer
kafka-producer-perf-test.sh org.apache.kafka.tools.ProducerPerformance
EOF
}

start() {
  fetch
  if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
    log "already running (pid $(cat "$state/pid")) on $(cat "$state/addr")"
    echo "kafka listening on $(cat "$state/addr")"
    return 0
  fi
  rm -rf "$state"
  mkdir -p "$state/data"
  local port cport
  port=${KAFKA_PORT:-$(free_port)}
  cport=$(free_port)
  # KAFKA_SASL_PORT adds a SASL_PLAINTEXT listener there, KAFKA_SSL_PORT an SSL one (their
  # JAAS users, mechanisms and keystores come as KEY=VALUE settings).
  local sasl_listener=
  if [ -n "${KAFKA_SASL_PORT:-}" ]; then sasl_listener=",SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT"; fi
  if [ -n "${KAFKA_SSL_PORT:-}" ]; then sasl_listener="$sasl_listener,SSL://127.0.0.1:$KAFKA_SSL_PORT"; fi
  cat > "$state/server.properties" <<EOF
# Single-node KRaft, combined broker and controller, with Gregor's defaults.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport$sasl_listener
advertised.listeners=PLAINTEXT://127.0.0.1:$port$sasl_listener
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL
log.dirs=$state/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  local kv
  for kv in "$@"; do
    case "$kv" in
      flush.messages=*) echo "log.flush.interval.messages=${kv#*=}" >> "$state/server.properties" ;;
      *=*) echo "$kv" >> "$state/server.properties" ;;
      *) log "not KEY=VALUE: $kv"; exit 2 ;;
    esac
  done
  cat > "$state/log4j2.yaml" <<EOF
Configuration:
  Appenders:
    File:
      name: FILE
      fileName: "$state/server.log"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: FILE
EOF
  local cluster_id
  cluster_id=$("$KAFKA_HOME/bin/kafka-storage.sh" random-uuid)
  "$KAFKA_HOME/bin/kafka-storage.sh" format -t "$cluster_id" -c "$state/server.properties" >&2
  KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G} \
  KAFKA_LOG4J_OPTS="-Dlog4j2.configurationFile=$state/log4j2.yaml" \
  KAFKA_OPTS="-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 ${KAFKA_OPTS:-}" \
    setsid "$KAFKA_HOME/bin/kafka-server-start.sh" "$state/server.properties" \
    > "$state/stdout" 2>&1 < /dev/null &
  echo $! > "$state/pid"
  echo "127.0.0.1:$port" > "$state/addr"
  # Ready when it answers Metadata with a leader (the team harness's probe).
  local i
  for i in $(seq 1 240); do
    if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then
      log "broker exited; last lines of its log:"; tail -20 "$state/server.log" "$state/stdout" >&2 || true
      exit 1
    fi
    if python3 "$here/probe.py" "127.0.0.1:$port" 2>/dev/null; then
      log "Apache Kafka $version up after $((i / 4)) s (pid $(cat "$state/pid"), log $state/server.log)"
      echo "kafka listening on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.25
  done
  log "not answering after 60 s"; stop; exit 1
}

stop() {
  if [ -f "$state/pid" ]; then
    local pid
    pid=$(cat "$state/pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      local i
      for i in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
  fi
  rm -rf "$state"
}

case "${1:-}" in
  fetch) fetch; echo "$KAFKA_HOME" ;;
  start) shift; start "$@" ;;
  stop) stop ;;
  addr) cat "$state/addr" ;;
  *) echo "usage: $0 fetch|start [KEY=VALUE...]|stop|addr" >&2; exit 2 ;;
esac
