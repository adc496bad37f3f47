#!/bin/sh
# The one-shot `redis-cluster-init` service of docker-compose.redis-cluster.yml, in the redis image
# (POSIX sh: alpine): joins the nodes into a Redis Cluster, one replica per master, then waits until
# the cluster reports ok. The gateway services start only after it exited 0.
#
#   cluster-init.sh HOST:PORT HOST:PORT ...    (six nodes: the first three become the masters)
#
# Nodes that already form a cluster (a restart on their volumes: each keeps nodes.conf) are left
# alone: `redis-cli --cluster create` refuses nodes that are not empty, and they rejoin by themselves.
set -o errexit -o nounset

[ "$#" -ge 6 ] || { echo "usage: cluster-init.sh HOST:PORT... (at least six nodes)" >&2; exit 2; }
first_host="${1%:*}"
first_port="${1##*:}"
cluster_info() { redis-cli -h "$first_host" -p "$first_port" cluster info; }

known="$(cluster_info | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p')"
if [ "${known:-0}" -le 1 ]; then
  # redis-cli resolves the hostnames itself before CLUSTER MEET (which takes addresses only).
  redis-cli --cluster create "$@" --cluster-replicas 1 --cluster-yes
else
  echo "cluster-init.sh: the nodes already form a cluster ($known known to $1): nothing to create"
fi

waited=0
until cluster_info | grep -q '^cluster_state:ok'; do
  if [ "$waited" -ge 60 ]; then
    echo "cluster-init.sh: the cluster is not ok after 60 s:" >&2
    cluster_info >&2
    exit 1
  fi
  sleep 1
  waited=$((waited + 1))
done
echo "cluster-init.sh: the cluster is ok"
