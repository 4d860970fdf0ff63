#!/usr/bin/env bash
# pytest against the running local stack (make test brings it up first).
# Tests find the stack through $CLOSELOOP_STATE_DIR/env. Arguments go to pytest.
# "No tests collected" (pytest exit 5) counts as a failure.
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CL_ROOT"

export CLOSELOOP_STATE_DIR="$STATE"
[[ -f "$ENV_FILE" ]] || die "$ENV_FILE missing: run 'make up' first"

log "test: CLOSELOOP_STATE_DIR=$STATE $PY -m pytest $*"
set +e
"$PY" -m pytest "$@"
rc=$?
set -e
case "$rc" in
  0) log "test: pytest passed" ;;
  5) die "test: pytest collected no tests (exit 5); counted as a failure" ;;
  *)
    printf '%serror:%s test: pytest failed (exit %s); stack logs: make logs (in %s)\n' "$C_RED" "$C_OFF" "$rc" "$LOGS" >&2
    exit "$rc"
    ;;
esac
