"""The cluster's loopback ports: free ones for the tests, CLUSTER_* variables for `make cluster`.

Redis takes as many ports as its kind (CLUSTER_REDIS) runs servers: `single` one (CLUSTER_REDIS_PORT),
`sentinel` a master and a replica (CLUSTER_REDIS_PORTS) plus three sentinels (CLUSTER_SENTINEL_PORTS),
`cluster` six nodes (CLUSTER_REDIS_PORTS), each with its cluster bus on its port + 10000, as
redis-server does by default (a fixed bus port lets a restarted cluster find its peers again)."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass

from devcluster.procs import free_port

REDIS_KINDS = ("single", "sentinel", "cluster")
# Servers per kind (sentinel: master + replica; cluster: 3 masters + 3 replicas), and sentinels.
REDIS_SERVERS = {"single": 1, "sentinel": 2, "cluster": 6}
SENTINELS = {"single": 0, "sentinel": 3, "cluster": 0}
BUS_OFFSET = 10000  # redis-server's default cluster bus port: the node's port + 10000
# `make cluster`'s defaults: apart from each other, from `make run` (8000, 3000, 6379) and from a
# stock Redis (6379) or Sentinel (26379) on this machine.
DEFAULT_REDIS_PORTS = {"single": "6390", "sentinel": "6391,6392", "cluster": "7001,7002,7003,7004,7005,7006"}
DEFAULT_SENTINEL_PORTS = "26391,26392,26393"


def redis_kind(value: str | None) -> str:
    """CLUSTER_REDIS's value (unset or empty: single), or SystemExit naming the choices."""
    kind = value or "single"
    if kind not in REDIS_KINDS:
        raise SystemExit(f"CLUSTER_REDIS must be single, sentinel or cluster, not {kind!r}")
    return kind


@dataclass(frozen=True)
class Ports:
    nginx: int
    admin: int
    nodes: tuple[int, ...]
    callbacks: tuple[int, ...]
    redis: tuple[int, ...]  # the redis-server processes: 1 (single), 2 (sentinel) or 6 (cluster)
    postgres: int
    sentinels: tuple[int, ...] = ()
    redis_bus: tuple[int, ...] = ()  # cluster only: each node's cluster bus port

    @classmethod
    def free(cls, *, nodes: int = 2, callbacks: int = 2, redis: str = "single") -> Ports:
        kind = redis_kind(redis)
        return cls(
            nginx=free_port(), admin=free_port(), nodes=tuple(free_port() for _ in range(nodes)),
            callbacks=tuple(free_port() for _ in range(callbacks)),
            redis=tuple(free_port() for _ in range(REDIS_SERVERS[kind])), postgres=free_port(),
            sentinels=tuple(free_port() for _ in range(SENTINELS[kind])),
            redis_bus=tuple(free_port() for _ in range(REDIS_SERVERS[kind] if kind == "cluster" else 0)),
        )  # fmt: skip

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Ports:
        """CLUSTER_*_PORT(S), with the defaults `make cluster` documents, for CLUSTER_REDIS's kind."""

        def ports(name: str, default: str) -> tuple[int, ...]:
            raw = env.get(name) or default
            try:
                values = tuple(int(item) for item in raw.split(","))
            except ValueError:
                raise SystemExit(f"{name} must be a comma-separated list of ports, not {raw!r}") from None
            if not all(0 < value < 65536 for value in values):
                raise SystemExit(f"{name} must hold ports between 1 and 65535, not {raw!r}")
            return values

        def count(name: str, values: tuple[int, ...], wanted: int) -> tuple[int, ...]:
            if len(values) != wanted:
                raise SystemExit(f"{name} must list {wanted} ports for CLUSTER_REDIS={kind}, not {len(values)}")
            return values

        kind = redis_kind(env.get("CLUSTER_REDIS"))
        # A variable the chosen kind does not read is a mistake worth naming, not a silent no-op.
        unused = ["CLUSTER_REDIS_PORTS", "CLUSTER_SENTINEL_PORTS"] if kind == "single" else ["CLUSTER_REDIS_PORT"]
        if kind == "cluster":
            unused.append("CLUSTER_SENTINEL_PORTS")
        for name in unused:
            if env.get(name):
                raise SystemExit(f"{name} is not used with CLUSTER_REDIS={kind} (see scripts/cluster.sh)")
        (nginx,), (admin,) = ports("CLUSTER_NGINX_PORT", "8000"), ports("CLUSTER_ADMIN_PORT", "8001")
        (postgres,) = ports("CLUSTER_POSTGRES_PORT", "5490")
        nodes, callbacks = ports("CLUSTER_NODE_PORTS", "8101,8102"), ports("CLUSTER_CALLBACK_PORTS", "3101,3102")
        if kind == "single":
            redis = count("CLUSTER_REDIS_PORT", ports("CLUSTER_REDIS_PORT", DEFAULT_REDIS_PORTS[kind]), 1)
        else:
            redis = count(
                "CLUSTER_REDIS_PORTS", ports("CLUSTER_REDIS_PORTS", DEFAULT_REDIS_PORTS[kind]), REDIS_SERVERS[kind]
            )
        sentinels = (
            count("CLUSTER_SENTINEL_PORTS", ports("CLUSTER_SENTINEL_PORTS", DEFAULT_SENTINEL_PORTS), 3)
            if kind == "sentinel"
            else ()
        )
        bus = tuple(port + BUS_OFFSET for port in redis) if kind == "cluster" else ()
        if any(port >= 65536 for port in bus):
            raise SystemExit(
                f"CLUSTER_REDIS_PORTS must be below {65536 - BUS_OFFSET} (a node's bus: its port + {BUS_OFFSET})"
            )
        every = (nginx, admin, *nodes, *callbacks, *redis, postgres, *sentinels, *bus)
        if len(set(every)) != len(every):
            raise SystemExit(f"the CLUSTER_*_PORT(S) variables name a port twice: {sorted(every)}")
        return cls(nginx, admin, nodes, callbacks, redis, postgres, sentinels, bus)

    def in_use(self) -> list[int]:
        """The ports something already listens on (a second cluster, `make run`, another service)."""
        taken = []
        every = (
            self.nginx, self.admin, *self.nodes, *self.callbacks, *self.redis, self.postgres,
            *self.sentinels, *self.redis_bus,
        )  # fmt: skip
        for port in every:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    taken.append(port)
        return taken
