#!/usr/bin/env bash
# Compiles requirements.in and requirements-dev.in into the lock files requirements.txt and
# requirements-dev.txt: every transitive dependency pinned, with the sha256 of every file the index
# has for that version, so scripts/setup-python.sh and the Dockerfile install with --require-hashes.
# A version already in a lock file is kept unless its .in file or --upgrade-package says otherwise.
#
#   scripts/lock-requirements.sh                          after editing a .in file
#   scripts/lock-requirements.sh --upgrade-package NAME   NAME (even a transitive one) to its newest allowed version
#
# The lock tool (uv, pinned below) runs from a throwaway virtualenv: it is not a dependency of .venv.
set -o errexit -o pipefail -o nounset
source "$(dirname "$0")/lib.sh"

UV_VERSION=0.13.9
# The image's Python (Dockerfile: python:3.11.13-slim-bookworm): environment markers are resolved
# for it (e.g. redis-py needs async-timeout only before 3.11.3, so the lock leaves it out).
PYTHON_VERSION=3.11.13
PYTHON="${PYTHON:-python3}"

tool_dir="$(mktemp -d)"
trap 'rm -rf "$tool_dir"' EXIT
step "Installing uv $UV_VERSION into a throwaway virtualenv"
"$PYTHON" -m venv "$tool_dir/venv"
"$tool_dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"

cd "$ROOT"
lock() {
  local input="$1" output="$2"
  shift 2
  step "Locking $output (from $input)"
  "$tool_dir/venv/bin/uv" pip compile --quiet --generate-hashes --python-version "$PYTHON_VERSION" \
    --custom-compile-command "scripts/lock-requirements.sh" "$@" "$input" -o "$output"
}
lock requirements.in requirements.txt "$@"
# Second: requirements-dev.in is constrained by requirements.txt (-c), so a package both need has one version.
lock requirements-dev.in requirements-dev.txt "$@"
