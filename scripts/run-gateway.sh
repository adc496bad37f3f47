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
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-realtime.settings.local}"
export PORT="${PORT:-3000}" CENTRIFUGO_PORT="${CENTRIFUGO_PORT:-8000}"
export RUN_CALLBACK="${RUN_CALLBACK:-true}" RUN_CENTRIFUGO="${RUN_CENTRIFUGO:-true}"
export REDIS_APPENDFSYNC="${REDIS_APPENDFSYNC:-everysec}"
if [ -z "${REDIS_URL:-}" ]; then
  export RUN_REDIS=true REDIS_PORT="${REDIS_PORT:-6379}"
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
else
  export RUN_REDIS=false REDIS_PORT="${REDIS_PORT:-6379}"
fi
mkdir -p "$VAR_DIR/redis"

if [ "$RUN_CALLBACK" = true ]; then
  step "Applying database migrations"
  python "$ROOT/manage.py" migrate --no-input -v 0
fi
step "Starting the gateway (Ctrl-C stops it)"
note "WebSocket: ws://127.0.0.1:$CENTRIFUGO_PORT/connection/websocket   callbacks: http://127.0.0.1:$PORT"
note "Redis: $REDIS_URL$([ "$RUN_REDIS" = true ] && echo " (local, data in ${VAR_DIR#"$ROOT"/}/redis)")"
note "A token: .venv/bin/python manage.py issue_connection_token alice"
exec supervisord -c "$ROOT/supervisord.conf"
