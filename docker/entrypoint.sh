#!/usr/bin/env bash
# Entry point of the gateway image (run under tini, see Dockerfile). One image, three roles:
#   GATEWAY_ROLE=all (default)  Centrifugo + the callbacks in one container
#   GATEWAY_ROLE=centrifugo     Centrifugo only (set CALLBACK_URL to the callbacks' address)
#   GATEWAY_ROLE=callback       the callbacks (gunicorn) only
# It sets every %(ENV_...)s that supervisord.conf uses, then runs supervisord in the foreground.
#
#   entrypoint.sh               start the role under supervisord
#   entrypoint.sh healthcheck   exit 0 when /health of everything the role runs answers 200
#   entrypoint.sh CMD ARGS...   run CMD with the same environment (e.g. python manage.py migrate)
set -o errexit -o pipefail -o nounset

app="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { printf 'entrypoint: %s\n' "$*" >&2; exit 2; }
# Every default below comes from realtime/config.py, through this generated file.
# shellcheck source=docker/defaults.sh
source "$app/docker/defaults.sh"

role="${GATEWAY_ROLE:-$GW_DEFAULT_GATEWAY_ROLE}"
case "$role" in
  all) run_callback=true run_centrifugo=true ;;
  centrifugo) run_callback=false run_centrifugo=true ;;
  callback) run_callback=true run_centrifugo=false ;;
  *) die "GATEWAY_ROLE must be all, centrifugo or callback, not '$role'" ;;
esac
export GATEWAY_ROLE="$role" RUN_CALLBACK="$run_callback" RUN_CENTRIFUGO="$run_centrifugo"
export PORT="${PORT:-$GW_DEFAULT_PORT}" CENTRIFUGO_PORT="${CENTRIFUGO_PORT:-$GW_DEFAULT_CENTRIFUGO_PORT}"

if [ "${1:-}" = healthcheck ]; then
  urls=()
  if [ "$run_callback" = true ]; then urls+=("http://127.0.0.1:$PORT/health"); fi
  if [ "$run_centrifugo" = true ]; then urls+=("http://127.0.0.1:$CENTRIFUGO_PORT/health"); fi
  # urlopen raises on a refused connection, a timeout and any status >= 400 (the callbacks answer
  # 503 when the database or Redis is down), so the exit code is 0 only when every check is 200.
  exec python -c 'import sys, urllib.request
for url in sys.argv[1:]:
    urllib.request.urlopen(url, timeout=3).close()' "${urls[@]}"
fi

# Redis is a separate service in every container deployment: supervisord's redis program stays off.
# (REDIS_PORT and REDIS_APPENDFSYNC only fill that program's command line, which never runs.)
export RUN_REDIS=false REDIS_PORT="${REDIS_PORT:-$GW_DEFAULT_REDIS_PORT}"
export REDIS_APPENDFSYNC="${REDIS_APPENDFSYNC:-$GW_DEFAULT_REDIS_APPENDFSYNC}"
export VAR_DIR="${VAR_DIR:-$app/var}"
export BIND_ADDRESS="${BIND_ADDRESS:-$GW_IMAGE_DEFAULT_BIND_ADDRESS}"
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-$GW_IMAGE_DEFAULT_DJANGO_SETTINGS_MODULE}"
# CENTRIFUGO_API_URL, when unset, is derived by the settings from CENTRIFUGO_PORT and BIND_ADDRESS
# (realtime/settings/base.py), as for scripts/run-gateway.sh: right for GATEWAY_ROLE=all.

# Docker/Kubernetes secrets: NAME_FILE names a file holding NAME; both set is refused (one line naming
# both), here, before supervisord starts Centrifugo or the callbacks with different secrets.
# shellcheck source=docker/secret-files.sh
source "$app/docker/secret-files.sh"
resolve_secret_files || die "$SECRET_ERROR"

if [ "$#" -gt 0 ]; then exec "$@"; fi

# Fail here, with the variable's name, rather than in a supervisord retry loop that ends FATAL
# while the container keeps running. What each process requires is declared in realtime/config.py.
require() {
  local name
  for name in "$@"; do [ -n "${!name:-}" ] || die "$name must be set (or ${name}_FILE) for GATEWAY_ROLE=$role"; done
}
if [ "$run_callback" = true ]; then require "${GW_REQUIRED_CALLBACK[@]}"; fi
if [ "$run_centrifugo" = true ]; then require "${GW_REQUIRED_CENTRIFUGO[@]}"; fi

# A mistake in REDIS_URL stops here with what is wrong (realtime/redis_url.py, never the password),
# not with a traceback from each program supervisord would restart.
(cd "$app" && python -m realtime.redis_url "${REDIS_URL:-$GW_DEFAULT_REDIS_URL}" >/dev/null) || exit 2
if [ -n "${CENTRIFUGO_REDIS_URL:-}" ]; then
  (cd "$app" && python -m realtime.redis_url "$CENTRIFUGO_REDIS_URL" CENTRIFUGO_REDIS_URL >/dev/null) || exit 2
fi

mkdir -p "$VAR_DIR"
case "${MIGRATE_ON_START:-$GW_DEFAULT_MIGRATE_ON_START}" in
  true) python "$app/manage.py" migrate --no-input ;;
  false) ;;
  *) die "MIGRATE_ON_START must be 'true' or 'false', not '$MIGRATE_ON_START'" ;;
esac

exec supervisord -c "$app/supervisord.conf"
