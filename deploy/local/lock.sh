#!/usr/bin/env bash
# Regenerates constraints.txt: installs the project with its dev extra, unconstrained, into a fresh
# throwaway venv and records `pip freeze` of it.
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CL_ROOT"

py="${PYTHON:-$(command -v python3.11 || command -v python3)}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
log "lock: fresh venv with $("$py" -V)"
"$py" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off -q -e '.[dev]'
{
  echo "# Full pinned dependency set (the lock). Regenerate with: make lock"
  "$tmp/venv/bin/python" -m pip freeze --disable-pip-version-check --exclude-editable | LC_ALL=C sort -f
} >constraints.txt.new
mv -f constraints.txt.new constraints.txt
log "lock: wrote constraints.txt ($(grep -vc '^#' constraints.txt) packages)"
