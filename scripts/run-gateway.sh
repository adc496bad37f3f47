#!/usr/bin/env bash
# Runs the gateway in the foreground under supervisord (supervisord.conf): Redis when REDIS_URL is
# unset, gunicorn with the callbacks on PORT, Centrifugo on CENTRIFUGO_PORT. Ctrl-C stops all.
set -o errexit -o pipefail -o nounset
source "$(dirname "$0")/lib.sh"

export VAR_DIR="${VAR_DIR:-$ROOT/var}"
# NAME_FILE secrets first (NAME and NAME_FILE both set is refused), so var/dev.env fills only what is
# still unset and supervisord's programs all see the same plain NAME.
# shellcheck source=docker/secret-files.sh
source "$ROOT/docker/secret-files.sh"
resolve_secret_files || die "$SECRET_ERROR"
load_dev_env
export PATH="$ROOT/.venv/bin:$ROOT/bin:$PATH"
# Defaults from realtime/config.py (docker/defaults.sh, sourced by secret-files.sh above).
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-$GW_DEFAULT_DJANGO_SETTINGS_MODULE}"
export PORT="${PORT:-$GW_DEFAULT_PORT}" CENTRIFUGO_PORT="${CENTRIFUGO_PORT:-$GW_DEFAULT_CENTRIFUGO_PORT}"
export RUN_CALLBACK="${RUN_CALLBACK:-$GW_DEFAULT_RUN_CALLBACK}" RUN_CENTRIFUGO="${RUN_CENTRIFUGO:-$GW_DEFAULT_RUN_CENTRIFUGO}"
export REDIS_APPENDFSYNC="${REDIS_APPENDFSYNC:-$GW_DEFAULT_REDIS_APPENDFSYNC}" REDIS_PORT="${REDIS_PORT:-$GW_DEFAULT_REDIS_PORT}"
if [ -z "${REDIS_URL:-}" ]; then
  export RUN_REDIS=true REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
else
  export RUN_REDIS=false
fi
# A mistake in REDIS_URL stops here with what is wrong, not with a traceback from every process;
# what is logged below is the URL with its passwords hidden.
redis_shown="$(cd "$ROOT" && python -m realtime.redis_url "$REDIS_URL")" || exit 2
if [ -n "${CENTRIFUGO_REDIS_URL:-}" ]; then
  (cd "$ROOT" && python -m realtime.redis_url "$CENTRIFUGO_REDIS_URL" CENTRIFUGO_REDIS_URL >/dev/null) || exit 2
fi
mkdir -p "$VAR_DIR/redis"
# The admin's live view runs centrifuge-js on the admin's origin, and Centrifugo refuses a browser
# whose Origin it was not given: admit the local admin's (loopback only) unless set. The image
# (docker/entrypoint.sh) sets no default: deployments name their admin's origin (README, Live view).
export CENTRIFUGO_CLIENT_ALLOWED_ORIGINS="${CENTRIFUGO_CLIENT_ALLOWED_ORIGINS:-http://127.0.0.1:$PORT http://localhost:$PORT}"

if [ "$RUN_CALLBACK" = true ]; then
  step "Applying database migrations"
  python "$ROOT/manage.py" migrate --no-input -v 0
fi
step "Starting the gateway (Ctrl-C stops it)"
note "WebSocket: ws://127.0.0.1:$CENTRIFUGO_PORT/connection/websocket   callbacks: http://127.0.0.1:$PORT"
note "Redis: $redis_shown$([ "$RUN_REDIS" = true ] && echo " (local, data in ${VAR_DIR#"$ROOT"/}/redis)")"
note "A token: .venv/bin/python manage.py issue_connection_token alice"
exec supervisord -c "$ROOT/supervisord.conf"
