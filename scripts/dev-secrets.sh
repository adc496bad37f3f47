#!/usr/bin/env bash
# First run only: writes random development secrets to var/dev.env for the ones not set in the
# environment. Both the Django settings (realtime.settings.local) and run-gateway.sh read it, so
# Centrifugo and the callbacks always agree. Never used by the production settings.
set -o errexit -o pipefail -o nounset
source "$(dirname "$0")/lib.sh"

file="${VAR_DIR:-$ROOT/var}/dev.env"
[ -f "$file" ] && exit 0
mkdir -p "$(dirname "$file")"
rand() { "$ROOT/.venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(48))'; }
umask 077
{
  echo "# Development secrets created by scripts/dev-secrets.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)."
  echo "# Delete this file to rotate them. Variables set in the environment take precedence."
  # shellcheck source=docker/defaults.sh
  source "$ROOT/docker/defaults.sh"
  # The secrets the callbacks require (realtime/config.py); Centrifugo's are among them.
  for name in "${GW_REQUIRED_CALLBACK[@]}"; do
    echo "$name=$(rand)"
  done
} > "$file"
step "Created development secrets in ${file#"$ROOT"/}"
