#!/usr/bin/env bash
# Creates .venv and installs the locked requirements; skipped when the lock files have not changed.
set -o errexit -o pipefail -o nounset
source "$(dirname "$0")/lib.sh"

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python >= 3.11 is needed ($PYTHON is $("$PYTHON" --version 2>&1))"
stamp="$ROOT/.venv/.requirements.sha256"
digest="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then exit 0; fi
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  step "Creating the virtualenv at .venv"
  "$PYTHON" -m venv "$ROOT/.venv"
fi
step "Installing Python packages (locked with hashes in requirements*.txt)"
"$ROOT/.venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
# The lock files (scripts/lock-requirements.sh) pin every package, transitive ones too, with hashes.
"$ROOT/.venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
  -r "$ROOT/requirements.txt" -r "$ROOT/requirements-dev.txt"
echo "$digest" > "$stamp"
