# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts that source this
# Shared helpers for the local stack scripts. Sourced, never executed.
#
# Everything the stack writes lives in one state folder: $CLOSELOOP_STATE_DIR, default .closeloop/ at
# the repository root. Every process the stack starts carries a marker derived from that folder in its
# command line, so `down` can find leftovers of *this* stack (and only this one) with pgrep.

set -euo pipefail

CL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CL_LOCAL="$CL_ROOT/deploy/local"

STATE="$(realpath -m "${CLOSELOOP_STATE_DIR:-$CL_ROOT/.closeloop}")"
export CLOSELOOP_STATE_DIR="$STATE"
LOGS="$STATE/logs"
RUN="$STATE/run"
SECRETS="$STATE/secrets"
ENV_FILE="$STATE/env"

VENV="${CLOSELOOP_VENV:-$CL_ROOT/.venv}"
PY="$VENV/bin/python"

KAFKA_VERSION="${CLOSELOOP_KAFKA_VERSION:-4.4.0}"
KAFKA_HOST=127.0.0.1
KAFKA_PORT="${CLOSELOOP_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${CLOSELOOP_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP="${CLOSELOOP_KAFKA_HEAP:--Xms256m -Xmx512m}"

PG_HOST=127.0.0.1
PG_PORT="${CLOSELOOP_PG_PORT:-55432}"
PG_DB=closeloop
PG_APP_ROLE=closeloop_app
PG_MIGRATOR_ROLE=closeloop_migrator
# Unprivileged OS account that owns and runs the cluster when we are root (postgres refuses root).
PG_OS_USER="${CLOSELOOP_PG_OS_USER:-closeloop}"

# Short, stable id of this state folder: used in process markers and the PostgreSQL cluster_name.
STATE_ID="$(printf '%s' "$STATE" | sha256sum | cut -c1-10)"

if [[ -t 1 ]]; then
  C_RED=$'\e[31m' C_GRN=$'\e[32m' C_YEL=$'\e[33m' C_DIM=$'\e[2m' C_OFF=$'\e[0m'
else
  C_RED='' C_GRN='' C_YEL='' C_DIM='' C_OFF=''
fi

log() { printf '%s==>%s %s\n' "$C_DIM" "$C_OFF" "$*"; }
warn() { printf '%swarning:%s %s\n' "$C_YEL" "$C_OFF" "$*" >&2; }
die() {
  printf '%serror:%s %s\n' "$C_RED" "$C_OFF" "$*" >&2
  exit 1
}

# fail_component NAME PORT LOGFILE MESSAGE: report a component that did not come up, with its log tail.
fail_component() {
  local name="$1" port="$2" logfile="$3" msg="$4"
  {
    printf '%serror:%s %s failed: %s\n' "$C_RED" "$C_OFF" "$name" "$msg"
    printf '  component: %s\n  port:      %s\n  log file:  %s\n' "$name" "$port" "$logfile"
    if [[ -f "$logfile" ]]; then
      printf '  ---- last 40 lines of %s ----\n' "$logfile"
      tail -n 40 "$logfile" | sed 's/^/  | /'
      printf '  ----\n'
    else
      printf '  (log file does not exist)\n'
    fi
  } >&2
  exit 1
}

ensure_state_dirs() {
  mkdir -p "$STATE" "$LOGS" "$RUN"
  # Other accounts (the PostgreSQL one) may need to traverse the state folder.
  chmod 755 "$STATE" 2>/dev/null || true
  mkdir -p "$SECRETS"
  chmod 700 "$SECRETS"
}

is_root() { [[ "$(id -u)" == 0 ]]; }

# Escape a string for use inside an extended regular expression (pgrep -f).
ere_escape() { printf '%s' "$1" | sed 's/[][\\.*^$+?(){}|]/\\&/g'; }

# pid_alive PID MARKER: true when PID runs and its command line contains MARKER (guards against PID reuse).
pid_alive() {
  local pid="$1" marker="$2"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ -n "$cmd" && "$cmd" == *"$marker"* ]]
}

read_pid() { if [[ -f "$1" ]]; then tr -dc '0-9' <"$1"; fi; }

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# port_owner PORT: best-effort description of the process listening on PORT.
port_owner() {
  if command -v ss >/dev/null 2>&1; then
    ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -n1
  fi
}

# stop_pids TIMEOUT_SECONDS SIGNAL PID...: send SIGNAL, wait up to TIMEOUT for exit, then SIGKILL.
stop_pids() {
  local timeout="$1" sig="$2"
  shift 2
  local pids=() p
  for p in "$@"; do [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null && pids+=("$p"); done
  ((${#pids[@]})) || return 0
  kill "-$sig" "${pids[@]}" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.2
  done
  warn "pids ${pids[*]} still alive after ${timeout}s (SIG$sig); sending SIGKILL"
  kill -KILL "${pids[@]}" 2>/dev/null || true
  sleep 0.5
}

# kill_pattern NAME ERE: stop every process whose command line matches ERE (scoped to this state dir).
kill_pattern() {
  local name="$1" pattern="$2" pids
  pids="$(pgrep -f -- "$pattern" || true)"
  [[ -n "$pids" ]] || return 0
  warn "$name: stopping leftover processes ${pids//$'\n'/ }"
  # shellcheck disable=SC2086
  stop_pids 15 TERM $pids
}

# stack_env: export the variables of <state>/env for a process the stack runs. Kafka security settings a
# caller exported for its own clients (make test-tls exports those of <state>/env.tls) are dropped: the
# stack's migrations, topic creation and services talk to the broker as <state>/env says.
stack_env() {
  local v
  for v in $(compgen -v CLOSELOOP_KAFKA_); do
    case "$v" in CLOSELOOP_KAFKA_SECURITY_PROTOCOL | CLOSELOOP_KAFKA_SASL_* | CLOSELOOP_KAFKA_SSL_*) unset "$v" ;; esac
  done
  set -a
  # shellcheck disable=SC1090
  source "$ENV_FILE"
  set +a
}

# rand_hex BYTES / rand_b64 BYTES: random material from the kernel CSPRNG, coreutils only.
rand_hex() { head -c "$1" /dev/urandom | od -An -v -tx1 | tr -d ' \n'; }
rand_b64() { head -c "$1" /dev/urandom | base64 -w0; }

# secret NAME GENERATOR...: print the secret stored in $SECRETS/NAME, creating it once.
secret() {
  local name="$1"
  shift
  local f="$SECRETS/$name"
  if [[ ! -s "$f" ]]; then
    (
      umask 077
      "$@" >"$f.tmp"
      mv -f "$f.tmp" "$f"
    )
  fi
  chmod 600 "$f"
  cat "$f"
}

# with_lock CMD...: serialise stack operations on one state folder (engineers share a checkout).
with_lock() {
  ensure_state_dirs
  exec 9>"$RUN/stack.lock"
  if ! flock -w 600 9; then
    die "could not take $RUN/stack.lock within 600s (another up/down running?)"
  fi
  "$@"
}
