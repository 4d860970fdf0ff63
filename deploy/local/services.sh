#!/usr/bin/env bash
# The closeloop services as local background processes.
#
#   deploy/local/services.sh start|stop|status [NAME...]
#
# Services are listed in deploy/local/services.list, one per line: `name module health_url`
# (blank lines and # comments ignored). `start` runs `.venv/bin/python -m <module>` for each, in the
# background with the variables of <state>/env, pidfile <state>/run/<name>.pid and log
# <state>/logs/<name>.log, then waits until its health URL answers 2xx. Restrict to some services
# with arguments or CLOSELOOP_SERVICES="a b" (the Makefile's SERVICES variable).
#
# Each process carries `-X closeloop_state=<state>` on its command line (an inert interpreter
# option), so `stop` can find leftovers of this state folder.
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LIST="${CLOSELOOP_SERVICES_LIST:-$CL_LOCAL/services.list}"
START_TIMEOUT="${CLOSELOOP_SERVICE_START_TIMEOUT:-60}"
MARKER="closeloop_state=$STATE"
PATTERN="-X closeloop_state=$(ere_escape "$STATE")( |$)"

# Prints "name module health_url" lines, filtered by the requested names.
entries() {
  [[ -f "$LIST" ]] || return 0
  local wanted=("$@") name module url rest
  while read -r name module url rest || [[ -n "${name:-}" ]]; do
    [[ -z "${name:-}" || "$name" == \#* ]] && continue
    [[ -n "${module:-}" ]] || die "$LIST: line for '$name' lacks a module"
    if ((${#wanted[@]})); then
      local w hit=0
      for w in "${wanted[@]}"; do [[ "$w" == "$name" ]] && hit=1; done
      ((hit)) || continue
    fi
    echo "$name $module ${url:--}"
  done <"$LIST"
}

health_ok() {
  local url="$1"
  [[ "$url" == "-" ]] && return 0
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null
  else
    "$PY" - "$url" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if 200 <= r.status < 300 else 1)
PY
  fi
}

url_port() {
  local url="$1"
  [[ "$url" == "-" ]] && { echo "-"; return; }
  local hostport="${url#*://}"
  hostport="${hostport%%/*}"
  echo "$hostport"
}

svc_pid() {
  local name="$1" module="$2" pid
  pid="$(read_pid "$RUN/$name.pid")"
  if [[ -n "$pid" ]] && pid_alive "$pid" "$MARKER -m $module"; then
    echo "$pid"
    return 0
  fi
  return 1
}

start_one() {
  local name="$1" module="$2" url="$3" pid
  if pid="$(svc_pid "$name" "$module")"; then
    log "service $name: already running (pid $pid)"
    return 0
  fi
  [[ -f "$ENV_FILE" ]] || die "$ENV_FILE missing: run 'make up' first"
  local logf="$LOGS/$name.log"
  log "service $name: starting python -m $module, log $logf"
  echo "===== $(date -Is) starting $module =====" >>"$logf"
  (
    cd "$CL_ROOT"
    stack_env
    export CLOSELOOP_SERVICE_NAME="$name" PYTHONUNBUFFERED=1
    exec setsid nohup "$PY" -X "$MARKER" -m "$module" </dev/null >>"$logf" 2>&1 9>&-
  ) &
  pid=$!
  echo "$pid" >"$RUN/$name.pid"
}

wait_one() {
  local name="$1" module="$2" url="$3" pid
  local deadline=$((SECONDS + START_TIMEOUT))
  until health_ok "$url"; do
    if ! pid="$(svc_pid "$name" "$module")"; then
      fail_component "service $name" "$(url_port "$url")" "$LOGS/$name.log" "python -m $module exited during startup"
    fi
    if ((SECONDS >= deadline)); then
      fail_component "service $name" "$(url_port "$url")" "$LOGS/$name.log" "health check $url not OK after ${START_TIMEOUT}s"
    fi
    sleep 0.3
  done
  # A process that exits right after answering once is not healthy either.
  svc_pid "$name" "$module" >/dev/null ||
    fail_component "service $name" "$(url_port "$url")" "$LOGS/$name.log" "python -m $module exited"
  log "service $name: ready"
}

cmd_start() {
  ensure_state_dirs
  local lines name module url
  mapfile -t lines < <(entries "$@")
  ((${#lines[@]})) || return 0
  [[ -x "$PY" ]] || die "$PY missing: run 'make install'"
  for l in "${lines[@]}"; do
    read -r name module url <<<"$l"
    start_one "$name" "$module" "$url"
  done
  for l in "${lines[@]}"; do
    read -r name module url <<<"$l"
    wait_one "$name" "$module" "$url"
  done
}

cmd_stop() {
  local lines name module url pid
  mapfile -t lines < <(entries "$@")
  local pids=()
  for l in "${lines[@]}"; do
    read -r name module url <<<"$l"
    if pid="$(svc_pid "$name" "$module")"; then
      log "service $name: stopping (pid $pid)"
      pids+=("$pid")
    fi
  done
  ((${#pids[@]})) && stop_pids 20 TERM "${pids[@]}"
  for l in "${lines[@]}"; do
    read -r name module url <<<"$l"
    rm -f "$RUN/$name.pid"
  done
  # Leftovers of this state folder, including services no longer listed (only when stopping all).
  if (($# == 0)); then
    kill_pattern services "$PATTERN"
  fi
}

cmd_status() {
  local lines name module url pid rc=0
  mapfile -t lines < <(entries "$@")
  for l in "${lines[@]}"; do
    read -r name module url <<<"$l"
    if ! pid="$(svc_pid "$name" "$module")"; then
      printf '%-12s %-10s %-22s %s\n' "$name" stopped "$(url_port "$url")" "pid -"
      rc=1
    elif health_ok "$url"; then
      printf '%-12s %s%-10s%s %-22s %s\n' "$name" "$C_GRN" healthy "$C_OFF" "$(url_port "$url")" "pid $pid  (python -m $module, log $LOGS/$name.log)"
    else
      printf '%-12s %s%-10s%s %-22s %s\n' "$name" "$C_RED" unhealthy "$C_OFF" "$(url_port "$url")" "pid $pid  ($url not OK; log $LOGS/$name.log)"
      rc=1
    fi
  done
  return "$rc"
}

sub="${1:-}"
shift || true
if (($# == 0)) && [[ -n "${CLOSELOOP_SERVICES:-}" ]]; then
  # shellcheck disable=SC2086
  set -- $CLOSELOOP_SERVICES
fi
case "$sub" in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  *) die "usage: $0 start|stop|status [NAME...]" ;;
esac
