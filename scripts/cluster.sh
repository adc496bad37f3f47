#!/usr/bin/env bash
# The multi-instance topology of docker-compose.multi-instance.yml as plain processes on loopback,
# from the same config files: PostgreSQL, Redis, migrations once, 2 callback replicas and 2 Centrifugo
# nodes (docker/entrypoint.sh + supervisord.conf per role), nginx from nginx/templates in front.
# CLUSTER_REDIS picks the Redis (its REDIS_URL goes to every replica and node):
#   single    (default) one redis-server, AOF every second
#   sentinel  a master, a replica and 3 sentinels (quorum 2): failover after a master's loss
#   cluster   a Redis Cluster of 3 masters and 3 replicas: streams spread over the masters
# Runs in the foreground; Ctrl-C (or SIGTERM) stops everything. The topology itself is
# devcluster/topology.py (run by devcluster/__main__.py), which the tests in tests/cluster start too.
#
#   scripts/cluster.sh                   start (what `make cluster` runs)
#   scripts/cluster.sh manage ARGS...    manage.py against the running cluster (e.g. createsuperuser)
#
# Ports (defaults): CLUSTER_NGINX_PORT (8000), CLUSTER_ADMIN_PORT (8001), CLUSTER_NODE_PORTS
# (8101,8102), CLUSTER_CALLBACK_PORTS (3101,3102), CLUSTER_POSTGRES_PORT (5490); more ports in a
# list start more nodes or replicas. Redis: CLUSTER_REDIS_PORT (single: 6390), CLUSTER_REDIS_PORTS
# (sentinel: 6391,6392, master then replica; cluster: 7001,...,7006, each with its cluster bus on
# port + 10000), CLUSTER_SENTINEL_PORTS (sentinel: 26391,26392,26393); devcluster/ports.py.
# State and logs: CLUSTER_DIR (var/cluster).
set -o errexit -o pipefail -o nounset
source "$(dirname "$0")/lib.sh"

load_dev_env   # the secrets of var/dev.env (make secrets), unless set in the environment
export PATH="$ROOT/.venv/bin:$ROOT/bin:$PATH"
export PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"

if [ "${1:-}" != manage ]; then
  step "Checking what the cluster needs"
  for tool in "$ROOT/.venv/bin/python" "$ROOT/bin/centrifugo" "$PG_BIN/initdb" "$PG_BIN/postgres"; do
    [ -x "$tool" ] || die "$tool is missing: run \`make setup-test\` (Python packages, Centrifugo, nginx, PostgreSQL, Redis)"
  done
  for tool in nginx redis-server redis-cli; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || [ -x "/usr/bin/$tool" ] \
      || die "$tool is missing: run \`make setup-test\`"
  done
fi

cd "$ROOT"
exec python -m devcluster "$@"
