#!/usr/bin/env bash
# ruff check and ruff format --check over the Python trees, then mypy (strict, per pyproject.toml) over the
# same trees. Trees that do not exist yet or hold no .py file are skipped, so this works on a fresh clone.
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CL_ROOT"

has_py() { [[ -d "$1" ]] && [[ -n "$(find "$1" -name '*.py' -print -quit)" ]]; }

ruff_dirs=() mypy_dirs=()
for d in services libs tests bench; do has_py "$d" && ruff_dirs+=("$d"); done
for d in services libs tests bench; do has_py "$d" && mypy_dirs+=("$d"); done

rc=0
if ((${#ruff_dirs[@]})); then
  log "lint: ruff check ${ruff_dirs[*]}"
  "$VENV/bin/ruff" check "${ruff_dirs[@]}" || rc=1
else
  log "lint: ruff skipped (no Python files yet)"
fi
if ((${#ruff_dirs[@]})); then
  log "lint: ruff format --check ${ruff_dirs[*]}"
  "$VENV/bin/ruff" format --check "${ruff_dirs[@]}" || rc=1
fi
if ((${#mypy_dirs[@]})); then
  log "lint: mypy ${mypy_dirs[*]}"
  "$VENV/bin/mypy" "${mypy_dirs[@]}" || rc=1
else
  log "lint: mypy skipped (no Python files yet)"
fi
((rc == 0)) || die "lint failed"
log "lint: ok"
