#!/usr/bin/env bash
# Everything the local stack needs on this machine, idempotent:
#   - Debian packages when missing: postgresql (server binaries), a Java runtime (17+), maven,
#     python3.11 venv support, docker-compose (to validate the compose file) (apt-get as root, or sudo -n);
#   - .venv with python3.11 and `pip install -c constraints.txt -e '.[dev]'`, redone only when
#     pyproject.toml or constraints.txt change (hash stamp in .venv).
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APT_UPDATED=0
apt_install() {
  local sudo=()
  if ! is_root; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      die "missing Debian packages: $*; install them (as root: apt-get install $*)"
    fi
  fi
  log "install: apt-get install $*"
  if ((!APT_UPDATED)); then
    "${sudo[@]}" apt-get update -qq
    APT_UPDATED=1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

have_pg_server() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

pick_python() {
  local c
  for c in ${PYTHON:-} python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1 &&
      [[ "$("$c" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" == 3.11 ]]; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

system_packages() {
  local missing=()
  local pg_was_missing=0
  if ! have_pg_server; then
    missing+=(postgresql)
    pg_was_missing=1
  fi
  command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  local py
  if ! py="$(pick_python)"; then
    missing+=(python3 python3-venv)
  elif [[ "$py" == /usr/bin/* ]] && ! "$py" -c 'import ensurepip' 2>/dev/null; then
    missing+=(python3-venv)
  fi
  command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
  # Validates docker-compose.yml offline in the tests (no Docker engine needed).
  if ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
    missing+=(docker-compose)
  fi
  ((${#missing[@]})) || return 0
  apt_install "${missing[@]}"
  if ((pg_was_missing)) && command -v pg_lsclusters >/dev/null 2>&1; then
    # The Debian package may create and start a default cluster on port 5432: we do not use it.
    local ver name
    while read -r ver name _; do
      log "install: stopping the packaged cluster $ver/$name (closeloop runs its own)"
      pg_ctlcluster "$ver" "$name" stop || true
    done < <(pg_lsclusters --no-header 2>/dev/null | awk '$4 == "online" {print $1, $2}')
  fi
  have_pg_server || die "postgresql installed but no /usr/lib/postgresql/*/bin/initdb found"
}

python_env() {
  local py
  py="$(pick_python)" || die "python 3.11 not found (PYTHON=... to choose an interpreter)"
  local stamp="$VENV/.closeloop-install.stamp" want
  want="$(cat "$CL_ROOT/pyproject.toml" "$CL_ROOT/constraints.txt" 2>/dev/null | sha256sum | cut -c1-32) $("$py" -V 2>&1)"
  if [[ -x "$PY" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  if [[ ! -x "$PY" ]]; then
    log "install: creating $VENV with $py"
    "$py" -m venv "$VENV"
  fi
  local constraints=()
  if [[ -f "$CL_ROOT/constraints.txt" ]]; then
    constraints=(-c "$CL_ROOT/constraints.txt")
  else
    warn "constraints.txt missing: installing unpinned"
  fi
  log "install: pip install ${constraints[*]:+-c constraints.txt} -e '.[dev]'"
  (cd "$CL_ROOT" && "$PY" -m pip install --disable-pip-version-check --progress-bar off -q \
    "${constraints[@]}" -e '.[dev]')
  echo "$want" >"$stamp"
}

check_tools() {
  local jv
  jv="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
  if [[ "${jv%%.*}" =~ ^[0-9]+$ ]] && ((${jv%%.*} < 17)); then
    die "Kafka 4 needs Java 17 or newer; 'java' is $jv (set JAVA_HOME or install openjdk-17-jre-headless)"
  fi
}

system_packages
check_tools
python_env
