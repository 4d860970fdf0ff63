#!/usr/bin/env bash
# The local closeloop stack: Kafka (KRaft) + PostgreSQL + the services of services.list.
#
#   deploy/local/stack.sh up       start what is not running, run migrations and topic creation
#   deploy/local/stack.sh down     stop everything this state folder started; leaves no process
#   deploy/local/stack.sh status   one line per component; exit 0 only when all are healthy
#   deploy/local/stack.sh logs [C] tail of every log in <state>/logs (or of component C)
#   deploy/local/stack.sh clean    down, then delete the state folder
#   deploy/local/stack.sh env      write <state>/env (done by `up` too) and print its path
#   deploy/local/stack.sh exec CMD run CMD from the repository root with the variables of <state>/env
#
# State folder: $CLOSELOOP_STATE_DIR, default .closeloop/ at the repository root. Clients find the
# stack through <state>/env (KEY=VALUE lines, mode 600).
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

whsec() { printf 'whsec_%s' "$(rand_b64 32)"; }
hex32() { rand_hex 32; }
# service_dsn NAME: the DSN of the service's own database role (created by postgres/init.sql).
service_dsn() { printf 'postgresql://closeloop_%s:%s@%s:%s/%s' "$1" "$(secret "pg_$1_password" rand_hex 24)" "$PG_HOST" "$PG_PORT" "$PG_DB"; }

write_env() {
  ensure_state_dirs
  local mig app
  mig="$(secret pg_migrator_password rand_hex 24)"
  app="$(secret pg_app_password rand_hex 24)"
  secret audit_checkpoint_key rand_hex 32 >/dev/null
  local tmp="$ENV_FILE.tmp.$$"
  (
    umask 077
    cat >"$tmp" <<EOF
# Local closeloop stack, written by deploy/local/stack.sh ($(date -u +%Y-%m-%dT%H:%M:%SZ)).
# Dev-only secrets, generated once and kept in secrets/ next to this file.
CLOSELOOP_STATE_DIR=$STATE
CLOSELOOP_KAFKA_BOOTSTRAP=$KAFKA_HOST:$KAFKA_PORT
CLOSELOOP_DATABASE_URL=postgresql://$PG_APP_ROLE:$app@$PG_HOST:$PG_PORT/$PG_DB
CLOSELOOP_DATABASE_MIGRATE_URL=postgresql://$PG_MIGRATOR_ROLE:$mig@$PG_HOST:$PG_PORT/$PG_DB
CLOSELOOP_DATABASE_INTAKE_URL=$(service_dsn intake)
CLOSELOOP_DATABASE_CONNECTORS_URL=$(service_dsn connectors)
CLOSELOOP_DATABASE_PROVISIONING_URL=$(service_dsn provisioning)
CLOSELOOP_DATABASE_EXPIRY_URL=$(service_dsn expiry)
CLOSELOOP_AUDIT_CHECKPOINT_KEY_FILE=$SECRETS/audit_checkpoint_key
CLOSELOOP_AUDIT_CHECKPOINT_FILE=$STATE/audit/checkpoints.jsonl
CLOSELOOP_INTAKE_SERVICENOW_SECRET=$(secret intake_servicenow_secret whsec)
CLOSELOOP_INTAKE_GENERIC_SECRET=$(secret intake_generic_secret whsec)
CLOSELOOP_INTAKE_JIRA_SECRET=$(secret intake_jira_secret hex32)
CLOSELOOP_CONNECTORS_OKTA_SECRET=$(secret connectors_okta_secret hex32)
CLOSELOOP_CONNECTORS_HOOK_SECRET=$(secret connectors_hook_secret hex32)
CLOSELOOP_ALERTS_WEBHOOK_SECRET=$(secret alerts_webhook_secret whsec)
EOF
  )
  chmod 600 "$tmp"
  mv -f "$tmp" "$ENV_FILE"
}

# run_module NAME MODULE PORT: python -m MODULE with the stack's variables, if its source exists.
run_module() {
  local name="$1" module="$2" port="$3"
  local src="$CL_ROOT/libs/${module//.//}.py"
  if [[ ! -f "$src" ]]; then
    log "$name: skipped (${src#"$CL_ROOT"/} does not exist yet)"
    return 0
  fi
  local logf="$LOGS/$name.log"
  log "$name: python -m $module (log $logf)"
  echo "===== $(date -Is) python -m $module =====" >>"$logf"
  if ! (
    cd "$CL_ROOT"
    stack_env
    "$PY" -m "$module"
  ) >>"$logf" 2>&1; then
    fail_component "$name" "$port" "$logf" "python -m $module failed"
  fi
}

cmd_up() {
  local t0=$SECONDS
  [[ -x "$PY" ]] || die "$PY missing: run 'make install' first"
  write_env
  "$CL_LOCAL/postgres.sh" start
  "$CL_LOCAL/kafka.sh" start
  run_module migrations closeloop.db.migrate "$PG_PORT"
  run_module topics closeloop.topics "$KAFKA_PORT"
  CLOSELOOP_SERVICES="${CLOSELOOP_SERVICES:-}" "$CL_LOCAL/services.sh" start
  log "stack up in $((SECONDS - t0))s; clients read $ENV_FILE"
}

# Every process started for this state folder carries one of these markers.
any_pattern() { printf '%s' "(-Dcloseloop\\.state=|closeloop_state=)$(ere_escape "$STATE")( |$)|closeloop-$STATE_ID"; }

cmd_down() {
  CLOSELOOP_SERVICES='' "$CL_LOCAL/services.sh" stop
  "$CL_LOCAL/kafka.sh" stop
  "$CL_LOCAL/postgres.sh" stop
  # Final check: nothing carrying this state folder's markers may survive.
  local left
  left="$(pgrep -af -- "$(any_pattern)" || true)"
  if [[ -n "$left" ]]; then
    warn "processes still running after down:"
    printf '%s\n' "$left" >&2
    return 1
  fi
  log "stack down"
}

cmd_status() {
  local rc=0
  "$CL_LOCAL/kafka.sh" status || rc=1
  "$CL_LOCAL/postgres.sh" status || rc=1
  CLOSELOOP_SERVICES='' "$CL_LOCAL/services.sh" status || rc=1
  return "$rc"
}

cmd_logs() {
  local c="${1:-}" n="${LINES_PER_LOG:-50}" f found=0
  [[ -d "$LOGS" ]] || die "no logs yet ($LOGS does not exist)"
  shopt -s nullglob
  local files=("$LOGS"/*.log)
  if [[ -n "$c" ]]; then
    files=("$LOGS/$c"-*.log "$LOGS/$c".log)
    n="${LINES_PER_LOG:-200}"
  fi
  for f in "${files[@]}"; do
    [[ -f "$f" ]] || continue
    found=1
    printf '%s==> %s <==%s\n' "$C_DIM" "$f" "$C_OFF"
    tail -n "$n" "$f"
    echo
  done
  if ((!found)); then
    die "no log for '${c:-any component}' in $LOGS (have: $(find "$LOGS" -maxdepth 1 -name '*.log' -printf '%f ' 2>/dev/null))"
  fi
}

cmd_clean() {
  cmd_down
  local pg_home
  pg_home="$(cat "$STATE/postgres.home" 2>/dev/null || true)"
  if [[ -n "$pg_home" && "$pg_home" == /var/lib/closeloop/pg-* ]]; then
    rm -rf -- "$pg_home"
  fi
  rm -rf -- "$STATE"
  log "removed $STATE"
}

case "${1:-}" in
  up) with_lock cmd_up ;;
  down)
    if [[ -d "$STATE" ]]; then
      with_lock cmd_down
    else
      kill_pattern "$STATE" "$(any_pattern)"
      log "nothing to stop ($STATE does not exist)"
    fi
    ;;
  status) cmd_status ;;
  logs)
    shift
    cmd_logs "${1:-}"
    ;;
  clean)
    if [[ -d "$STATE" ]]; then with_lock cmd_clean; else log "nothing to clean"; fi
    ;;
  env)
    write_env
    echo "$ENV_FILE"
    ;;
  exec)
    shift
    [[ -f "$ENV_FILE" ]] || die "$ENV_FILE missing: run 'make up' first"
    cd "$CL_ROOT"
    stack_env
    exec "$@"
    ;;
  *) die "usage: $0 up|down|status|logs [component]|clean|env|exec CMD..." ;;
esac
