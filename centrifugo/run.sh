#!/usr/bin/env bash
# Starts Centrifugo with centrifugo/config.json, mapping the gateway's environment onto Centrifugo's
# own variables so each port, URL and secret has one name everywhere (local, Docker, compose).
#
# config.json holds what never varies; every port, address, endpoint, level and engine comes from
# here (defaults: realtime/config.py), so it names none of them.
#
# Why namespace_boundary is "" in config.json: every channel then belongs to `without_namespace`,
# whose subscribe/publish proxies are on, so a pattern an operator adds in the admin (say `orders:*`)
# works at once. With namespaces, Centrifugo would answer 102 "unknown channel" until its config was
# edited and it restarted. The gateway's rules play the part namespaces would.
set -o errexit -o pipefail -o nounset

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Defaults, allowed values and the secrets Centrifugo requires: realtime/config.py, through this file.
# shellcheck source=docker/defaults.sh
source "$here/../docker/defaults.sh"
die() { echo "run.sh: $*" >&2; exit 2; }
for name in "${GW_REQUIRED_CENTRIFUGO[@]}"; do
  [ -n "${!name:-}" ] || die "$name: must be set (a secret shared with the callbacks)"
done
# one_of NAME VALUE: VALUE, when it is one of NAME's declared choices (GW_CHOICES_NAME); else exit 2.
one_of() {
  local choices="GW_CHOICES_$1"
  case "${!choices}" in *" $2 "*) printf '%s' "$2" ;; *) die "$1 must be one of${!choices% }, not '$2'" ;; esac
}

callback_url="${CALLBACK_URL:-http://127.0.0.1:${PORT:-$GW_DEFAULT_PORT}}"
callback_url="${callback_url%/}"

export CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY="$CENTRIFUGO_TOKEN_HMAC_SECRET_KEY"
export CENTRIFUGO_VAR_PROXY_SECRET="$CENTRIFUGO_PROXY_SECRET"
export CENTRIFUGO_HTTP_API_KEY="$CENTRIFUGO_API_KEY"
export CENTRIFUGO_HTTP_SERVER_PORT="${CENTRIFUGO_PORT:-$GW_DEFAULT_CENTRIFUGO_PORT}"
# Same listen address as gunicorn: loopback for local runs, 0.0.0.0 in the image (entrypoint).
export CENTRIFUGO_HTTP_SERVER_ADDRESS="${BIND_ADDRESS:-$GW_DEFAULT_BIND_ADDRESS}"
export CENTRIFUGO_CLIENT_PROXY_CONNECT_ENDPOINT="$callback_url/centrifugo/connect"
export CENTRIFUGO_CLIENT_PROXY_REFRESH_ENDPOINT="$callback_url/centrifugo/refresh"
export CENTRIFUGO_CHANNEL_PROXY_SUBSCRIBE_ENDPOINT="$callback_url/centrifugo/subscribe"
export CENTRIFUGO_CHANNEL_PROXY_PUBLISH_ENDPOINT="$callback_url/centrifugo/publish"
export CENTRIFUGO_CHANNEL_PROXY_SUB_REFRESH_ENDPOINT="$callback_url/centrifugo/sub_refresh"
export CENTRIFUGO_RPC_PROXY_ENDPOINT="$callback_url/centrifugo/rpc"
if [ -n "${TOKEN_AUDIENCE:-}" ]; then export CENTRIFUGO_CLIENT_TOKEN_AUDIENCE="$TOKEN_AUDIENCE"; fi
if [ -n "${TOKEN_ISSUER:-}" ]; then export CENTRIFUGO_CLIENT_TOKEN_ISSUER="$TOKEN_ISSUER"; fi

# Log level, read by Centrifugo itself from CENTRIFUGO_LOG_LEVEL. Keep it at warn or error in
# production: at info and below, Centrifugo logs every refused client command whole ("client command
# error"), with the publication data of a denied publish and the connect data (tokens in it
# included) of a refused connect.
CENTRIFUGO_LOG_LEVEL="$(one_of CENTRIFUGO_LOG_LEVEL "${CENTRIFUGO_LOG_LEVEL:-$GW_DEFAULT_CENTRIFUGO_LOG_LEVEL}")"
export CENTRIFUGO_LOG_LEVEL

# Live subscriptions are re-checked against the rules every SUBSCRIPTION_RECHECK_INTERVAL seconds
# (realtime/config.py declares its default and limits). Centrifugo looks at a subscription's
# expire_at only on the client's presence tick, so the tick runs at that interval, and the grace
# after expire_at is ~0: 1ms (0 would mean the library's default, 25 s; it is compared in whole
# seconds, so 1ms counts as 0). The callbacks answer expire_at 1-2 s ahead, so each tick calls
# sub_refresh once per subscription. 0: off, Centrifugo's defaults (27 s tick, 25 s grace).
recheck="${SUBSCRIPTION_RECHECK_INTERVAL:-$GW_DEFAULT_SUBSCRIPTION_RECHECK_INTERVAL}"
case "$recheck" in
  0) ;;
  [2-9] | [12][0-9] | 30)
    export CENTRIFUGO_CLIENT_PRESENCE_UPDATE_INTERVAL="${recheck}s"
    export CENTRIFUGO_CLIENT_EXPIRED_SUB_CLOSE_DELAY=1ms
    ;;
  *) die "SUBSCRIPTION_RECHECK_INTERVAL must be 0 (off) or 2..30, not '${recheck}'" ;;
esac

# memory: one node. redis: several nodes share PUB/SUB, history and presence through Redis.
CENTRIFUGO_ENGINE_TYPE="$(one_of CENTRIFUGO_ENGINE "${CENTRIFUGO_ENGINE:-$GW_DEFAULT_CENTRIFUGO_ENGINE}")"
export CENTRIFUGO_ENGINE_TYPE
if [ "$CENTRIFUGO_ENGINE_TYPE" = redis ]; then
  # REDIS_URL's forms are Centrifugo's own (realtime/redis_url.py: redis://, redis+sentinel://,
  # redis+cluster://, rediss+...), except one: Centrifugo v6.9.1 has no rediss+cluster:// scheme
  # and takes TLS to a cluster as tls_enabled=true (RedisLocation.centrifugo_address says the same).
  redis_address="${CENTRIFUGO_REDIS_URL:-${REDIS_URL:-$GW_DEFAULT_REDIS_URL}}"
  case "$redis_address" in
    rediss+cluster://*)
      redis_address="redis+cluster://${redis_address#rediss+cluster://}"
      case "$redis_address" in *\?*) redis_address+="&tls_enabled=true" ;; *) redis_address+="?tls_enabled=true" ;; esac
      ;;
  esac
  export CENTRIFUGO_ENGINE_REDIS_ADDRESS="$redis_address"
fi

bin="${CENTRIFUGO_BIN:-$GW_DEFAULT_CENTRIFUGO_BIN}"
# The gateway-level names above share Centrifugo's CENTRIFUGO_ prefix; drop them so Centrifugo
# neither warns about unknown variables nor holds secrets it was not meant to have.
unset CENTRIFUGO_TOKEN_HMAC_SECRET_KEY CENTRIFUGO_PROXY_SECRET CENTRIFUGO_API_KEY CENTRIFUGO_API_URL \
  CENTRIFUGO_PORT CENTRIFUGO_ENGINE CENTRIFUGO_REDIS_URL CENTRIFUGO_BIN
exec "$bin" --config "$here/config.json" "$@"
