#!/usr/bin/env bash
# Throwaway PostgreSQL cluster from the Debian packages, in the state folder.
#
#   deploy/local/postgres.sh start    initdb once, start, wait for pg_isready, create roles + database
#   deploy/local/postgres.sh stop     fast shutdown (SIGINT), SIGKILL after a timeout
#   deploy/local/postgres.sh status   one line: postgres healthy|unhealthy|stopped port pid
#   deploy/local/postgres.sh home     print the cluster folder (data/, run/ socket dir)
#   deploy/local/postgres.sh psql ... psql as the superuser over the unix socket
#
# Listens on 127.0.0.1:$CLOSELOOP_PG_PORT (55432) only. postgres refuses to run as root: as root the
# cluster belongs to an unprivileged system account ($CLOSELOOP_PG_OS_USER, default "closeloop"),
# created on first use. When that account cannot traverse the state folder (say a clone under a
# 0700 home or temp dir), the cluster folder moves to /var/lib/closeloop/pg-<id> and
# <state>/postgres.home records where it is.
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_LOG="$LOGS/postgres.log"
PG_PIDFILE="$RUN/postgres.pid"
PG_CLUSTER_NAME="closeloop-$STATE_ID"
PG_PATTERN="$PG_CLUSTER_NAME"
RUN_AS=()

pg_bindir() {
  local home="$1" v d
  if [[ -f "$home/data/PG_VERSION" ]]; then
    v="$(cat "$home/data/PG_VERSION")"
    if [[ -x "/usr/lib/postgresql/$v/bin/postgres" ]]; then
      echo "/usr/lib/postgresql/$v/bin"
      return 0
    fi
    die "the cluster in $home/data was made by PostgreSQL $v, whose binaries are missing (make clean, or install postgresql-$v)"
  fi
  d="$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n1)"
  [[ -n "$d" ]] || die "PostgreSQL server binaries not found under /usr/lib/postgresql (run: make install)"
  dirname "$d"
}

setup_os_user() {
  is_root || return 0
  if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
    log "postgres: creating system user $PG_OS_USER (postgres refuses to run as root)"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$PG_OS_USER"
  fi
  RUN_AS=(setpriv "--reuid=$PG_OS_USER" "--regid=$(id -g "$PG_OS_USER")" --clear-groups --)
}

# The folder holding data/ and run/ (socket). Prints it; records a non-default choice.
pg_home() {
  if [[ -s "$STATE/postgres.home" ]]; then
    cat "$STATE/postgres.home"
    return 0
  fi
  local home="$STATE/postgres"
  if is_root && ! "${RUN_AS[@]}" test -x "$STATE" 2>/dev/null; then
    home="/var/lib/closeloop/pg-$STATE_ID"
    warn "postgres: user $PG_OS_USER cannot traverse $STATE; keeping the cluster in $home"
    echo "$home" >"$STATE/postgres.home"
  fi
  echo "$home"
}

running_pid() {
  local pid home="$1"
  pid="$(read_pid "$PG_PIDFILE")"
  if [[ -n "$pid" ]] && pid_alive "$pid" "$PG_CLUSTER_NAME"; then
    echo "$pid"
    return 0
  fi
  if [[ -f "$home/data/postmaster.pid" ]]; then
    pid="$(head -n1 "$home/data/postmaster.pid" | tr -dc '0-9')"
    if [[ -n "$pid" ]] && pid_alive "$pid" "$PG_CLUSTER_NAME"; then
      echo "$pid" >"$PG_PIDFILE"
      echo "$pid"
      return 0
    fi
  fi
  return 1
}

ready() { "$BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -d postgres -t 2 >/dev/null 2>&1; }

bootstrap_sql() {
  local home="$1"
  CLOSELOOP_PG_MIGRATOR_PASSWORD="$(secret pg_migrator_password rand_hex 24)" \
    CLOSELOOP_PG_APP_PASSWORD="$(secret pg_app_password rand_hex 24)" \
    CLOSELOOP_PG_INTAKE_PASSWORD="$(secret pg_intake_password rand_hex 24)" \
    CLOSELOOP_PG_CONNECTORS_PASSWORD="$(secret pg_connectors_password rand_hex 24)" \
    CLOSELOOP_PG_PROVISIONING_PASSWORD="$(secret pg_provisioning_password rand_hex 24)" \
    CLOSELOOP_PG_EXPIRY_PASSWORD="$(secret pg_expiry_password rand_hex 24)" \
    PGCONNECT_TIMEOUT=10 \
    "$BIN/psql" -X -q -h "$home/run" -p "$PG_PORT" -U postgres -d postgres \
    -f "$CL_LOCAL/postgres/init.sql" >>"$PG_LOG" 2>&1 ||
    fail_component postgres "$PG_PORT" "$PG_LOG" "creating roles/database (deploy/local/postgres/init.sql) failed"
}

start() {
  ensure_state_dirs
  setup_os_user
  local home pid
  home="$(pg_home)"
  BIN="$(pg_bindir "$home")"
  if pid="$(running_pid "$home")"; then
    local deadline=$((SECONDS + 60))
    until ready; do
      ((SECONDS < deadline)) || fail_component postgres "$PG_PORT" "$PG_LOG" "process $pid runs but pg_isready fails"
      sleep 0.3
    done
    bootstrap_sql "$home"
    log "postgres: already running (pid $pid, $PG_HOST:$PG_PORT)"
    return 0
  fi
  if port_open "$PG_PORT"; then
    fail_component postgres "$PG_PORT" "$PG_LOG" \
      "port $PG_PORT is already in use by another process ($(port_owner "$PG_PORT")); set CLOSELOOP_PG_PORT"
  fi

  mkdir -p "$home/data" "$home/run"
  chmod 700 "$home" "$home/data" "$home/run"
  if is_root; then
    chown "$PG_OS_USER:" "$home" "$home/data" "$home/run"
  fi
  touch "$PG_LOG"

  if [[ ! -f "$home/data/PG_VERSION" ]]; then
    log "postgres: initdb $home/data ($("$BIN/postgres" --version))"
    if ! (cd / && "${RUN_AS[@]}" "$BIN/initdb" -D "$home/data" -U postgres -E UTF8 --locale=C \
      --auth-local=trust --auth-host=scram-sha-256 --no-instructions -N) >>"$PG_LOG" 2>&1; then
      fail_component postgres "$PG_PORT" "$PG_LOG" "initdb failed"
    fi
    echo "include_if_exists = 'closeloop.conf'" >>"$home/data/postgresql.conf"
  fi
  install -m 600 "$CL_LOCAL/postgres/postgresql.conf" "$home/data/closeloop.conf"
  install -m 600 "$CL_LOCAL/postgres/pg_hba.conf" "$home/data/pg_hba.conf"
  if is_root; then
    chown "$PG_OS_USER:" "$home/data/closeloop.conf" "$home/data/pg_hba.conf"
  fi

  log "postgres: starting on $PG_HOST:$PG_PORT (socket dir $home/run), log $PG_LOG"
  echo "===== $(date -Is) starting PostgreSQL =====" >>"$PG_LOG"
  (
    cd /
    exec setsid nohup "${RUN_AS[@]}" "$BIN/postgres" -D "$home/data" \
      -c "port=$PG_PORT" -c "unix_socket_directories=$home/run" -c "cluster_name=$PG_CLUSTER_NAME" \
      </dev/null >>"$PG_LOG" 2>&1 9>&-
  ) &
  pid=$!
  echo "$pid" >"$PG_PIDFILE"
  local deadline=$((SECONDS + 60))
  until ready; do
    kill -0 "$pid" 2>/dev/null || fail_component postgres "$PG_PORT" "$PG_LOG" "postgres (pid $pid) exited during startup"
    if ((SECONDS >= deadline)); then
      stop_pids 20 INT "$pid"
      fail_component postgres "$PG_PORT" "$PG_LOG" "not accepting connections after 60s"
    fi
    sleep 0.2
  done
  bootstrap_sql "$home"
  log "postgres: ready (pid $pid)"
}

stop() {
  local home pid
  home="$(cat "$STATE/postgres.home" 2>/dev/null || echo "$STATE/postgres")"
  if pid="$(running_pid "$home")"; then
    log "postgres: stopping (pid $pid)"
    stop_pids 30 INT "$pid"
  fi
  kill_pattern postgres "$PG_PATTERN"
  rm -f "$PG_PIDFILE"
}

status() {
  local home pid
  home="$(cat "$STATE/postgres.home" 2>/dev/null || echo "$STATE/postgres")"
  if ! pid="$(running_pid "$home")"; then
    if port_open "$PG_PORT"; then
      printf '%-12s %-10s %-22s %s\n' postgres unhealthy "$PG_HOST:$PG_PORT" "pid -  (port taken by another process: $(port_owner "$PG_PORT"))"
    else
      printf '%-12s %-10s %-22s %s\n' postgres stopped "$PG_HOST:$PG_PORT" "pid -"
    fi
    return 1
  fi
  BIN="$(pg_bindir "$home")"
  if ready; then
    printf '%-12s %s%-10s%s %-22s %s\n' postgres "$C_GRN" healthy "$C_OFF" "$PG_HOST:$PG_PORT" "pid $pid  (PostgreSQL $(cat "$home/data/PG_VERSION"), log $PG_LOG)"
    return 0
  fi
  printf '%-12s %s%-10s%s %-22s %s\n' postgres "$C_RED" unhealthy "$C_OFF" "$PG_HOST:$PG_PORT" "pid $pid  (pg_isready fails; log $PG_LOG)"
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  home) cat "$STATE/postgres.home" 2>/dev/null || echo "$STATE/postgres" ;;
  psql)
    shift
    home="$(cat "$STATE/postgres.home" 2>/dev/null || echo "$STATE/postgres")"
    BIN="$(pg_bindir "$home")"
    exec "$BIN/psql" -X -h "$home/run" -p "$PG_PORT" -U postgres -d "$PG_DB" "$@"
    ;;
  *) die "usage: $0 start|stop|status|home|psql [args]" ;;
esac
