#!/usr/bin/env bash
# Single-node Kafka (KRaft, combined broker+controller) from the official Maven Central artifacts.
#
#   deploy/local/kafka.sh fetch    resolve the jars into <state>/kafka/libs-<version> (cached)
#   deploy/local/kafka.sh start    format storage once, start the broker, wait for metadata
#   deploy/local/kafka.sh stop     stop it (SIGTERM, then SIGKILL after a timeout)
#   deploy/local/kafka.sh status   one line: kafka healthy|unhealthy|stopped port pid; exit 0 if healthy
#
# Settings: CLOSELOOP_KAFKA_VERSION (default in lib.sh), CLOSELOOP_KAFKA_PORT (9092),
# CLOSELOOP_KAFKA_CONTROLLER_PORT (9093), CLOSELOOP_KAFKA_HEAP (-Xms256m -Xmx512m).
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=deploy/local/kafka_tls.sh
source "$(dirname "${BASH_SOURCE[0]}")/kafka_tls.sh"

K_HOME="$STATE/kafka"
K_LIBS="$K_HOME/libs-$KAFKA_VERSION"
K_DATA="$K_HOME/data"
K_CONF="$K_HOME/server.properties"
K_LOG="$LOGS/kafka.log"
K_PIDFILE="$RUN/kafka.pid"
K_MARKER="-Dcloseloop.state=$STATE"
K_PATTERN="-Dcloseloop\\.state=$(ere_escape "$STATE")( |$)"
POM="$CL_LOCAL/kafka/pom.xml"

java_bin() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    echo "$JAVA_HOME/bin/java"
  else
    command -v java || die "java not found (run: make install)"
  fi
}

fetch() {
  # The cache key is the Kafka version plus the pom's content, so a re-run is a stat() call.
  local key
  key="$KAFKA_VERSION $(sha256sum "$POM" | cut -c1-16)"
  if [[ -f "$K_LIBS/.complete" && "$(cat "$K_LIBS/.complete")" == "$key" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (run: make install)"
  log "kafka: resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central (cached in ~/.m2)"
  mkdir -p "$K_HOME"
  rm -rf "$K_LIBS.tmp"
  if ! mvn -q -B -Dstyle.color=never -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DoutputDirectory="$K_LIBS.tmp" >"$LOGS/kafka-fetch.log" 2>&1; then
    fail_component kafka "$KAFKA_PORT" "$LOGS/kafka-fetch.log" \
      "could not resolve Kafka $KAFKA_VERSION artifacts with Maven"
  fi
  ls "$K_LIBS.tmp"/kafka_2.13-*.jar >/dev/null 2>&1 ||
    fail_component kafka "$KAFKA_PORT" "$LOGS/kafka-fetch.log" "kafka_2.13 jar missing after resolve"
  echo "$key" >"$K_LIBS.tmp/.complete"
  rm -rf "$K_LIBS"
  mv "$K_LIBS.tmp" "$K_LIBS"
}

render_config() {
  mkdir -p "$K_DATA"
  sed -e "s|@PORT@|$KAFKA_PORT|g" \
    -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@DATA_DIR@|$K_DATA|g" \
    "$CL_LOCAL/kafka/server.properties.template" >"$K_CONF.tmp"
  if tls_enabled; then
    make_certs
    tls_config "$(secret kafka_sasl_password rand_hex 24)" >>"$K_CONF.tmp"
  fi
  mv -f "$K_CONF.tmp" "$K_CONF"
}

format_storage() {
  # Formatting is one-off: meta.properties marks a formatted log dir.
  [[ -f "$K_DATA/meta.properties" ]] && return 0
  local java cluster_id
  java="$(java_bin)"
  if [[ ! -s "$K_HOME/cluster.id" ]]; then
    "$java" -cp "$K_LIBS/*" kafka.tools.StorageTool random-uuid 2>>"$LOGS/kafka-format.log" |
      tail -n1 >"$K_HOME/cluster.id"
  fi
  cluster_id="$(cat "$K_HOME/cluster.id")"
  [[ -n "$cluster_id" ]] || fail_component kafka "$KAFKA_PORT" "$LOGS/kafka-format.log" "random-uuid failed"
  log "kafka: formatting storage (cluster id $cluster_id)"
  if ! "$java" -Dlog4j2.configurationFile="$CL_LOCAL/kafka/log4j2.properties" -cp "$K_LIBS/*" \
    kafka.tools.StorageTool format -t "$cluster_id" -c "$K_CONF" --ignore-formatted \
    >>"$LOGS/kafka-format.log" 2>&1; then
    fail_component kafka "$KAFKA_PORT" "$LOGS/kafka-format.log" "storage format failed"
  fi
}

running_pid() {
  local pid
  pid="$(read_pid "$K_PIDFILE")"
  if [[ -n "$pid" ]] && pid_alive "$pid" "$K_MARKER"; then
    echo "$pid"
    return 0
  fi
  # Pidfile lost but the broker of this state dir runs: adopt it.
  pid="$(pgrep -f -- "$K_PATTERN" | head -n1 || true)"
  if [[ -n "$pid" ]]; then
    echo "$pid" >"$K_PIDFILE"
    echo "$pid"
    return 0
  fi
  return 1
}

probe() {
  local wait="${1:-0}" pid="${2:-}"
  if [[ -x "$PY" ]] && "$PY" -c 'import aiokafka' 2>/dev/null; then
    "$PY" "$CL_LOCAL/kafka_probe.py" --bootstrap "$KAFKA_HOST:$KAFKA_PORT" --wait "$wait" ${pid:+--pid "$pid"}
  else
    # No venv yet: fall back to "the port accepts connections".
    local deadline=$((SECONDS + ${wait%.*}))
    until port_open "$KAFKA_PORT"; do
      ((SECONDS < deadline)) || return 1
      sleep 0.5
    done
  fi
}

start() {
  ensure_state_dirs
  local pid
  if pid="$(running_pid)"; then
    if tls_enabled && ! port_open "$KAFKA_SASL_SSL_PORT"; then
      log "kafka: running without the TLS listeners; restarting with them (CLOSELOOP_KAFKA_TLS=1)"
      stop
    elif probe 60 "$pid"; then
      log "kafka: already running (pid $pid, $KAFKA_HOST:$KAFKA_PORT)"
      return 0
    else
      fail_component kafka "$KAFKA_PORT" "$K_LOG" "process $pid runs but does not answer metadata requests"
    fi
  fi
  if pid="$(running_pid)"; then
    fail_component kafka "$KAFKA_PORT" "$K_LOG" "process $pid did not stop for the restart"
  fi
  local p ports=("$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT")
  if tls_enabled; then ports+=("$KAFKA_SASL_SSL_PORT" "$KAFKA_MTLS_PORT"); fi
  for p in "${ports[@]}"; do
    if port_open "$p"; then
      fail_component kafka "$p" "$K_LOG" \
        "port $p is already in use by another process ($(port_owner "$p")); set CLOSELOOP_KAFKA_PORT / CLOSELOOP_KAFKA_CONTROLLER_PORT"
    fi
  done
  local java
  java="$(java_bin)"
  local jv
  jv="$("$java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
  if [[ "${jv%%.*}" =~ ^[0-9]+$ ]] && ((${jv%%.*} < 17)); then
    die "Kafka $KAFKA_VERSION needs Java 17 or newer; $java is $jv"
  fi

  fetch
  render_config
  format_storage

  log "kafka: starting $KAFKA_VERSION on $KAFKA_HOST:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT), log $K_LOG"
  {
    echo
    echo "===== $(date -Is) starting Kafka $KAFKA_VERSION ====="
  } >>"$K_LOG"
  # shellcheck disable=SC2086  # KAFKA_HEAP is a list of JVM options
  setsid nohup "$java" $KAFKA_HEAP \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true \
    -Dkafka.logs.dir="$LOGS" \
    -Dlog4j2.configurationFile="$CL_LOCAL/kafka/log4j2.properties" \
    "$K_MARKER" \
    -cp "$K_LIBS/*" kafka.Kafka "$K_CONF" \
    </dev/null >>"$K_LOG" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$K_PIDFILE"
  if ! probe 120 "$pid"; then
    if kill -0 "$pid" 2>/dev/null; then
      stop_pids 20 TERM "$pid"
      fail_component kafka "$KAFKA_PORT" "$K_LOG" "broker did not answer a metadata request within 120s"
    fi
    fail_component kafka "$KAFKA_PORT" "$K_LOG" "broker process $pid exited during startup"
  fi
  if tls_enabled; then
    local password
    password="$(secret kafka_sasl_password rand_hex 24)"
    add_scram_user "$java" "$password"
    write_tls_env "$password"
    log "kafka: SASL_SSL on $KAFKA_HOST:$KAFKA_SASL_SSL_PORT, mTLS on $KAFKA_HOST:$KAFKA_MTLS_PORT (clients: $STATE/env.tls)"
  fi
  log "kafka: ready (pid $pid)"
}

stop() {
  local pid
  if pid="$(running_pid)"; then
    log "kafka: stopping (pid $pid)"
    stop_pids 45 TERM "$pid"
  fi
  kill_pattern kafka "$K_PATTERN"
  rm -f "$K_PIDFILE"
}

status() {
  local pid
  if ! pid="$(running_pid)"; then
    if port_open "$KAFKA_PORT"; then
      printf '%-12s %-10s %-22s %s\n' kafka unhealthy "$KAFKA_HOST:$KAFKA_PORT" "pid -  (port taken by another process: $(port_owner "$KAFKA_PORT"))"
    else
      printf '%-12s %-10s %-22s %s\n' kafka stopped "$KAFKA_HOST:$KAFKA_PORT" "pid -"
    fi
    return 1
  fi
  if probe 0 "$pid" >/dev/null 2>&1; then
    printf '%-12s %s%-10s%s %-22s %s\n' kafka "$C_GRN" healthy "$C_OFF" "$KAFKA_HOST:$KAFKA_PORT" "pid $pid  (Kafka $KAFKA_VERSION, log $K_LOG)"
    return 0
  fi
  printf '%-12s %s%-10s%s %-22s %s\n' kafka "$C_RED" unhealthy "$C_OFF" "$KAFKA_HOST:$KAFKA_PORT" "pid $pid  (no metadata answer; log $K_LOG)"
  return 1
}

case "${1:-}" in
  fetch) ensure_state_dirs && fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 fetch|start|stop|status" ;;
esac
