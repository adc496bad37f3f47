#!/bin/sh
# A Redis Sentinel for docker-compose.redis-sentinel.yml, in the redis image (POSIX sh: alpine).
# Writes the sentinel's config on its first start and then reuses it: a sentinel rewrites its own
# file as it learns (the current master after a failover, the replicas, the other sentinels), so
# the file must be writable and must not be regenerated on a restart, which would point the
# sentinel back at the master it started with.
#
# Hostnames everywhere (Redis's advice for Sentinel behind DNS): `resolve-hostnames` lets the
# config and the replicas name hosts; `announce-hostnames` makes the sentinels answer clients with
# those names (the compose service names), not container addresses that change on a re-create.
#
#   SENTINEL_ANNOUNCE_HOSTNAME   this sentinel's name for the others (required: its service name)
#   SENTINEL_MASTER_NAME (gateway), SENTINEL_MASTER_HOST (redis), SENTINEL_MASTER_PORT (6379),
#   SENTINEL_QUORUM (2), SENTINEL_DOWN_AFTER_MS (5000), SENTINEL_PORT (26379),
#   SENTINEL_CONF (/data/sentinel.conf)
set -o errexit -o nounset

: "${SENTINEL_ANNOUNCE_HOSTNAME:?must be set: the hostname of this sentinel (its compose service name)}"
conf="${SENTINEL_CONF:-/data/sentinel.conf}"
name="${SENTINEL_MASTER_NAME:-gateway}"

if [ ! -s "$conf" ]; then
  # resolve-hostnames must come before the first line that names a host.
  cat > "$conf" <<CONF
port ${SENTINEL_PORT:-26379}
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip ${SENTINEL_ANNOUNCE_HOSTNAME}
sentinel monitor ${name} ${SENTINEL_MASTER_HOST:-redis} ${SENTINEL_MASTER_PORT:-6379} ${SENTINEL_QUORUM:-2}
sentinel down-after-milliseconds ${name} ${SENTINEL_DOWN_AFTER_MS:-5000}
sentinel failover-timeout ${name} 60000
sentinel parallel-syncs ${name} 1
CONF
  echo "sentinel.sh: wrote $conf (monitoring ${name} at ${SENTINEL_MASTER_HOST:-redis}:${SENTINEL_MASTER_PORT:-6379})"
else
  echo "sentinel.sh: reusing $conf (what this sentinel learnt survives its restart)"
fi

# The image's entry point drops root (su-exec redis) and hands /data to that user; outside the
# image (tests) redis-server runs as is.
if command -v docker-entrypoint.sh >/dev/null 2>&1; then
  exec docker-entrypoint.sh redis-server "$conf" --sentinel
fi
exec redis-server "$conf" --sentinel
