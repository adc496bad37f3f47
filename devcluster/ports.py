"""The cluster's loopback ports: free ones for the tests, CLUSTER_* variables for `make cluster`."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass

from devcluster.procs import free_port


@dataclass(frozen=True)
class Ports:
    nginx: int
    admin: int
    nodes: tuple[int, ...]
    callbacks: tuple[int, ...]
    redis: int
    postgres: int

    @classmethod
    def free(cls, *, nodes: int = 2, callbacks: int = 2) -> Ports:
        return cls(
            nginx=free_port(), admin=free_port(), nodes=tuple(free_port() for _ in range(nodes)),
            callbacks=tuple(free_port() for _ in range(callbacks)), redis=free_port(), postgres=free_port(),
        )  # fmt: skip

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Ports:
        """CLUSTER_*_PORT(S), with the defaults `make cluster` documents."""

        def ports(name: str, default: str) -> tuple[int, ...]:
            raw = env.get(name) or default
            try:
                values = tuple(int(item) for item in raw.split(","))
            except ValueError:
                raise SystemExit(f"{name} must be a comma-separated list of ports, not {raw!r}") from None
            if not all(0 < value < 65536 for value in values):
                raise SystemExit(f"{name} must hold ports between 1 and 65535, not {raw!r}")
            return values

        (nginx,), (admin,) = ports("CLUSTER_NGINX_PORT", "8000"), ports("CLUSTER_ADMIN_PORT", "8001")
        (redis,), (postgres,) = ports("CLUSTER_REDIS_PORT", "6390"), ports("CLUSTER_POSTGRES_PORT", "5490")
        nodes, callbacks = ports("CLUSTER_NODE_PORTS", "8101,8102"), ports("CLUSTER_CALLBACK_PORTS", "3101,3102")
        return cls(nginx, admin, nodes, callbacks, redis, postgres)

    def in_use(self) -> list[int]:
        """The ports something already listens on (a second cluster, `make run`, another service)."""
        taken = []
        for port in (self.nginx, self.admin, *self.nodes, *self.callbacks, self.redis, self.postgres):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    taken.append(port)
        return taken
