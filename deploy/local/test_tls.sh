#!/usr/bin/env bash
# The whole suite once through the local broker's TLS + SCRAM-SHA-512 listener, plus tests/tls (mTLS,
# SCRAM-SHA-256, PLAIN, refusals). Brings the stack up with CLOSELOOP_KAFKA_TLS=1 (restarting a broker
# that runs without the TLS listeners), then runs pytest with the client settings of <state>/env.tls.
# Arguments go to pytest; without any, tests/tls runs first and then the whole suite (two runs: pytest
# drops tests/tls when `tests` is named with it, since tests/tls is left out of the recursion).
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CL_ROOT"

export CLOSELOOP_KAFKA_TLS=1
CLOSELOOP_SERVICES=none "$CL_LOCAL/stack.sh" up
[[ -f "$STATE/env.tls" ]] || die "$STATE/env.tls missing: the broker did not start its TLS listeners"
set -a
# shellcheck disable=SC1090,SC1091
source "$ENV_FILE"
# shellcheck disable=SC1090,SC1091
source "$STATE/env.tls"
set +a
log "test-tls: Kafka clients use $CLOSELOOP_KAFKA_SECURITY_PROTOCOL $CLOSELOOP_KAFKA_SASL_MECHANISM at $CLOSELOOP_KAFKA_BOOTSTRAP"
if (($# == 0)); then
  "$CL_LOCAL/test.sh" tests/tls
  set -- tests
fi
exec "$CL_LOCAL/test.sh" "$@"
