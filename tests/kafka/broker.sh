#!/usr/bin/env bash
# Provisions and runs Apache Kafka 4.4.0 (KRaft) from Maven Central jars for tests, CI and
# benchmarks. No Docker, no tarball.
#
#   broker.sh provision                 copy the jars into .kafka/libs (cached in ~/.m2)
#   broker.sh run DIR [WATCH_PID]       run the node configured by DIR/server.properties in the
#                                       foreground: format DIR/data on first use, write the java
#                                       pid to DIR/broker.pid; when WATCH_PID exits, kill the node
#   broker.sh single DIR PORT CTRL      write DIR/server.properties for a one-node cluster
#   broker.sh ready DIR [SECONDS]       wait until the node in DIR has started (default 90 s)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
libs="${STOAT_KAFKA_LIBS:-$root/.kafka/libs}"

provision() {
  if [ -f "$libs/.complete" ]; then echo "$libs"; return; fi
  mkdir -p "$libs"
  mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs" >&2
  touch "$libs/.complete"
  echo "$libs"
}

single() {
  local dir="$1" port="$2" ctrl="$3"
  mkdir -p "$dir"
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$ctrl
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctrl
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctrl
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.num.partitions=1
offsets.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=4
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=2097152
PROPS
  echo "--standalone" > "$dir/format-flags"
}

run() {
  local dir="$1" watch="${2:-}"
  provision >/dev/null
  local cp="$libs/*"
  mkdir -p "$dir/logs"
  if [ ! -f "$dir/data/meta.properties" ]; then
    local cid
    cid="${STOAT_KAFKA_CLUSTER_ID:-$(java -cp "$cp" kafka.tools.StorageTool random-uuid)}"
    # Word-split the flags, but do not glob them (`--add-scram NAME=[name=..,password=..]`).
    set -f
    # shellcheck disable=SC2046
    java -cp "$cp" kafka.tools.StorageTool format $(cat "$dir/format-flags" 2>/dev/null) \
      -t "$cid" -c "$dir/server.properties" > "$dir/logs/format.log" 2>&1
    set +f
  fi
  # Tests: a small heap and a quick JIT warm-up. Benchmarks set STOAT_KAFKA_HEAP="-Xms1g -Xmx1g"
  # and STOAT_KAFKA_JIT="" (never the shortened JIT when measuring).
  # shellcheck disable=SC2086
  java ${STOAT_KAFKA_HEAP--Xms256m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 ${STOAT_KAFKA_JIT--XX:TieredStopAtLevel=1} \
    -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true \
    -Dlog4j2.configurationFile="$here/log4j2.properties" -Dkafka.logs.dir="$dir/logs" \
    -cp "$cp" kafka.Kafka "$dir/server.properties" < /dev/null > "$dir/logs/stdout.log" 2>&1 &
  local pid=$!
  echo "$pid" > "$dir/broker.pid"
  trap 'kill -9 "$pid" 2>/dev/null || true' TERM INT
  while kill -0 "$pid" 2>/dev/null; do
    if [ -n "$watch" ] && ! kill -0 "$watch" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.5
  done
  wait "$pid" 2>/dev/null || true
}

ready() {
  local dir="$1" secs="${2:-90}"
  for _ in $(seq 1 $((secs * 5))); do
    if grep -q "Kafka Server started" "$dir/logs/server.log" 2>/dev/null; then return 0; fi
    if [ -f "$dir/broker.pid" ] && ! kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null; then
      echo "the broker in $dir died while starting; see $dir/logs" >&2; return 1
    fi
    sleep 0.2
  done
  echo "the broker in $dir did not start within $secs s; see $dir/logs" >&2
  return 1
}

cmd="${1:-}"
shift || true
case "$cmd" in
  provision) provision ;;
  run) run "$@" ;;
  single) single "$@" ;;
  ready) ready "$@" ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
