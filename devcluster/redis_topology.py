"""Redis as a deployment runs it, as local processes: one server, a Sentinel-monitored master with
a replica and three sentinels, or a 3-master / 3-replica Redis Cluster.

`make cluster CLUSTER_REDIS=single|sentinel|cluster` (devcluster.topology) and the tests start
these; each gives the REDIS_URL that reaches it (realtime.redis_url's forms) and the faults the
acceptance tests inflict: kill -9 of the master, `CLUSTER FAILOVER`, resharding a slot range.

Every server runs with the settings the compose files give Redis: AOF, fsync every second, no RDB.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from devcluster.procs import Process, free_port, wait_for, which
from realtime.redis_url import build

MASTER_NAME = "gateway"
# What the compose file's redis command line sets: AOF every second, no snapshots.
PERSISTENCE = ("--appendonly", "yes", "--appendfsync", "everysec", "--save", "")
# A replica syncs at once (Redis waits 5 s by default for more replicas to share one transfer).
REPLICATION = ("--repl-diskless-sync-delay", "0")


def _client(port: int, **kwargs: Any) -> Any:
    import redis

    options = {"socket_timeout": 2, "socket_connect_timeout": 1, **kwargs}
    return redis.Redis(host="127.0.0.1", port=port, **options)


def _link_up(port: int) -> bool:
    """A replica's replication link is up (it has its master's data and can take over)."""
    import redis

    try:
        return _client(port).info("replication").get("master_link_status") == "up"
    except redis.RedisError:
        return False


def ping(port: int) -> bool:
    import redis

    client = _client(port, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class RedisServer:
    """One redis-server on 127.0.0.1:port, its files in `directory`."""

    def __init__(self, directory: Path, port: int, *extra: str, log: Path, name: str) -> None:
        self.directory, self.port, self.extra, self.log, self.name = directory, port, extra, log, name
        self.process: Process | None = None

    def start(self, env: dict[str, str]) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [
            which("redis-server", "/usr/bin/redis-server"), "--bind", "127.0.0.1", "--port", str(self.port),
            "--dir", str(self.directory), *PERSISTENCE, *REPLICATION, *self.extra,
        ]  # fmt: skip
        self.process = Process(argv, env=env, log=self.log)
        return self

    def wait(self, timeout: float = 30) -> None:
        def ready() -> bool:
            if self.process is None or not self.process.alive():
                tail = self.process.tail() if self.process else ""
                raise RuntimeError(f"{self.name} (redis-server :{self.port}) exited\n{tail}")
            return ping(self.port)

        wait_for(ready, timeout=timeout, what=f"{self.name} on :{self.port}", interval=0.05)

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def kill(self) -> None:
        """kill -9: the machine is gone, with whatever was not yet fsynced or replicated."""
        if self.process is not None and self.process.alive():
            os.killpg(self.process.popen.pid, signal.SIGKILL)
            self.process.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=20)

    def client(self, **kwargs: Any) -> Any:
        return _client(self.port, **kwargs)


class RedisTopology:
    kind: str = ""

    def __init__(self, directory: Path, *, progress: Callable[[str], None] = lambda _: None) -> None:
        self.directory = directory
        self.logs = directory / "logs"
        self.progress = progress
        self.servers: list[RedisServer] = []

    @property
    def url(self) -> str:
        raise NotImplementedError

    def start(self, env: dict[str, str] | None = None) -> RedisTopology:
        env = dict(env if env is not None else os.environ)
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            self._start(env)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, env: dict[str, str]) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()

    def __enter__(self) -> RedisTopology:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _server(self, name: str, port: int, *extra: str) -> RedisServer:
        server = RedisServer(self.directory / name, port, *extra, log=self.logs / f"{name}.log", name=name)
        self.servers.append(server)
        return server

    def summary(self) -> list[str]:
        return [f"Redis ({self.kind}): {self.url}"]

    def processes(self) -> list[Process]:
        """Every process started so far (redis-servers, sentinels)."""
        return [server.process for server in self.servers if server.process is not None]


class SingleRedis(RedisTopology):
    kind = "single"

    def __init__(self, directory: Path, *, port: int | None = None, **kwargs: Any) -> None:
        super().__init__(directory, **kwargs)
        self.server = self._server("redis", port or free_port())

    @property
    def url(self) -> str:
        return build("single", [("127.0.0.1", self.server.port)])

    def _start(self, env: dict[str, str]) -> None:
        self.server.start(env).wait()


class SentinelRedis(RedisTopology):
    """A master, one replica, three sentinels (quorum 2) watching MASTER_NAME. Failover after the
    master has been unreachable for `down_after_ms` (the sentinels' down-after-milliseconds).

    `replicas=2` adds a second replica: after a failover the sentinels point it at the new master
    at once, so REDIS_ACK=replicated has a replica again without waiting for the old master (the
    acceptance tests measure both)."""

    kind = "sentinel"

    def __init__(
        self, directory: Path, *, ports: Sequence[int] = (), sentinel_ports: Sequence[int] = (),
        down_after_ms: int = 1000, replicas: int = 1, **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(directory, **kwargs)
        master_port, replica_port, *more = list(ports) or [free_port() for _ in range(1 + replicas)]
        self.down_after_ms = down_after_ms
        self.master = self._server("redis-a", master_port)
        self.replica = self._server("redis-b", replica_port, "--replicaof", "127.0.0.1", str(master_port))
        for i, port in enumerate(more):
            self._server(f"redis-{chr(ord('c') + i)}", port, "--replicaof", "127.0.0.1", str(master_port))
        self.sentinel_ports = list(sentinel_ports) or [free_port() for _ in range(3)]
        self.sentinels: list[Process] = []

    @property
    def url(self) -> str:
        return build("sentinel", [("127.0.0.1", port) for port in self.sentinel_ports], master_name=MASTER_NAME)

    def _start(self, env: dict[str, str]) -> None:
        for server in self.servers:
            server.start(env)
        for server in self.servers:
            server.wait()
        for i, port in enumerate(self.sentinel_ports):
            directory = self.directory / f"sentinel-{i + 1}"
            directory.mkdir(parents=True, exist_ok=True)
            conf = directory / "sentinel.conf"
            conf.write_text(
                f"bind 127.0.0.1\nport {port}\ndir {directory}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            argv = [which("redis-server", "/usr/bin/redis-server"), str(conf), "--sentinel"]
            self.sentinels.append(Process(argv, env=env, log=self.logs / f"sentinel-{i + 1}.log"))
        for port in self.sentinel_ports:
            wait_for(lambda port=port: ping(port), timeout=30, what=f"sentinel on :{port}")
        wait_for(self._replica_in_sync, timeout=30, what="the replica to sync with the master")
        # Every sentinel must have found the replica and its peers before a failover can happen.
        wait_for(self._sentinels_ready, timeout=30, what="the sentinels to see the replica and each other")

    def _replica_in_sync(self) -> bool:
        return all(_link_up(server.port) for server in self.servers[1:])

    def _sentinels_ready(self) -> bool:
        import redis

        for port in self.sentinel_ports:
            try:
                state = _client(port).sentinel_master(MASTER_NAME)
            except redis.RedisError:
                return False
            if int(state.get("num-slaves", 0)) < len(self.servers) - 1 or int(state.get("num-other-sentinels", 0)) < 2:
                return False
        return True

    def master_port(self) -> int | None:
        """The master's port as the sentinels see it now (None: none of them answers)."""
        import redis

        for port in self.sentinel_ports:
            with contextlib.suppress(redis.RedisError):
                found = _client(port).sentinel_get_master_addr_by_name(MASTER_NAME)
                if found:
                    return int(found[1])
        return None

    def server_on(self, port: int) -> RedisServer:
        return next(server for server in self.servers if server.port == port)

    def kill_master(self) -> RedisServer:
        """kill -9 the current master; returns it (restart it with .start() to rejoin as a replica)."""
        port = self.master_port()
        if port is None:
            raise RuntimeError("no sentinel knows the master")
        server = self.server_on(port)
        server.kill()
        return server

    def wait_promoted(self, old_port: int, timeout: float = 30) -> int:
        """Wait until the sentinels name a master other than `old_port` that answers as one."""

        def promoted() -> bool:
            port = self.master_port()
            if port is None or port == old_port:
                return False
            with contextlib.suppress(Exception):
                return bool(_client(port).info("replication").get("role") == "master")
            return False

        wait_for(promoted, timeout=timeout, what="the sentinels to promote the replica", interval=0.1)
        port = self.master_port()
        assert port is not None
        return port

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop(timeout=10)
        super().stop()

    def processes(self) -> list[Process]:
        return [*super().processes(), *self.sentinels]

    def summary(self) -> list[str]:
        master = self.master_port()
        roles = ", ".join(
            f":{server.port} {'master' if server.port == master else 'replica'}" for server in self.servers
        )
        return [*super().summary(), f"  {roles}; sentinels :{', :'.join(map(str, self.sentinel_ports))}"]


class ClusterRedis(RedisTopology):
    """`masters` masters with one replica each, joined by `redis-cli --cluster create`.

    `bus_ports`: each node's cluster bus port (default: free ones). Give fixed ones, as
    `make cluster` does, when the nodes' files outlive a run: a node restarted on another bus port
    is never found again by its peers, which remember the old one in their nodes.conf."""

    kind = "cluster"

    def __init__(
        self, directory: Path, *, ports: Sequence[int] = (), masters: int = 3, node_timeout_ms: int = 2000,
        bus_ports: Sequence[int] = (), **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(directory, **kwargs)
        ports = list(ports) or [free_port() for _ in range(masters * 2)]
        if len(ports) != masters * 2:
            raise ValueError(f"a {masters}-master cluster with one replica each needs {masters * 2} ports")
        bus_ports = list(bus_ports) or [free_port() for _ in ports]
        if len(bus_ports) != len(ports):
            raise ValueError(f"{len(ports)} nodes need {len(ports)} cluster bus ports, not {len(bus_ports)}")
        self.masters_count = masters
        self.node_timeout_ms = node_timeout_ms
        for i, (port, bus_port) in enumerate(zip(ports, bus_ports, strict=True)):
            self._server(
                f"node-{i + 1}", port, "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", str(node_timeout_ms), "--cluster-port", str(bus_port),
            )  # fmt: skip

    @property
    def ports(self) -> list[int]:
        return [server.port for server in self.servers]

    @property
    def url(self) -> str:
        return build("cluster", [("127.0.0.1", port) for port in self.ports])

    def _start(self, env: dict[str, str]) -> None:
        for server in self.servers:
            server.start(env)
        for server in self.servers:
            server.wait()
        # Nodes restarted on their own files (make cluster's second run) form the cluster again by
        # themselves, and `--cluster create` would refuse them ("not empty"): only create a new one.
        if self._known_nodes(self.ports[0]) <= 1:
            self.progress(
                f"Creating the cluster: redis-cli --cluster create ({self.masters_count} masters, 1 replica each)"
            )
            create = [
                which("redis-cli", "/usr/bin/redis-cli"), "--cluster", "create",
                *(f"127.0.0.1:{port}" for port in self.ports), "--cluster-replicas", "1", "--cluster-yes",
            ]  # fmt: skip
            done = subprocess.run(create, env=env, capture_output=True, text=True, timeout=60, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed:\n{done.stdout}\n{done.stderr}")
        self.wait_ok()

    def _known_nodes(self, port: int) -> int:
        return int(_client(port).cluster("info").get("cluster_known_nodes", 1))

    def _state(self, port: int) -> str:
        import redis

        try:
            info = _client(port).cluster("info")
        except redis.RedisError:
            return "unreachable"
        return str(info.get("cluster_state", "?"))

    def wait_ok(self, timeout: float = 60) -> None:
        """Every node up, the cluster state ok on each, every node agreeing on the slots, and every
        cluster bus link between live nodes connected (nodes restarted on their files report ok
        from nodes.conf before, or without, reaching their peers)."""

        def ok() -> bool:
            if not all(self._state(server.port) == "ok" for server in self.servers if server.alive()):
                return False
            live = set(self.live_ports())
            if not all(n["connected"] for port in live for n in self.nodes(port) if n["port"] in live):
                return False
            views = {tuple(sorted(self.slot_owners(port).items())) for port in self.live_ports()}
            replicas = [n for n in self.nodes() if n["role"] == "replica" and not n["failed"]]
            if len(views) != 1 or len(replicas) < len(self.live_ports()) - self.masters_count:
                return False
            return all(_link_up(n["port"]) for n in replicas)

        wait_for(ok, timeout=timeout, what="the Redis Cluster to be ok on every node", interval=0.2)

    def live_ports(self) -> list[int]:
        return [server.port for server in self.servers if server.alive()]

    def nodes(self, port: int | None = None) -> list[dict[str, Any]]:
        """CLUSTER NODES as a list: id, port, role (master/replica), master_id, slots [(start, end)],
        failed, connected (the bus link as node `port` sees it)."""
        raw = _client(port or self.live_ports()[0], decode_responses=True).execute_command("CLUSTER", "NODES")
        text = raw if isinstance(raw, str) else raw.decode()
        nodes = []
        for line in text.strip().splitlines():
            fields = line.split()
            address = fields[1].split("@")[0]
            flags = fields[2].split(",")
            slots = []
            for item in fields[8:]:
                if item.startswith("["):
                    continue  # a slot being migrated or imported
                start, _, end = item.partition("-")
                slots.append((int(start), int(end or start)))
            nodes.append({
                "id": fields[0], "port": int(address.rsplit(":", 1)[1]), "flags": flags,
                "role": "replica" if "slave" in flags or "replica" in flags else "master", "master_id": fields[3],
                "failed": "fail" in flags, "slots": slots, "connected": fields[7] == "connected",
            })  # fmt: skip
        return nodes

    def masters(self) -> list[dict[str, Any]]:
        return [n for n in self.nodes() if n["role"] == "master" and not n["failed"] and n["slots"]]

    def slot_owners(self, port: int) -> dict[int, int]:
        """First slot of each range → the owning master's port, as node `port` sees it."""
        return {start: n["port"] for n in self.nodes(port) if n["role"] == "master" for start, _ in n["slots"]}

    def replica_of(self, master_id: str) -> dict[str, Any]:
        return next(n for n in self.nodes() if n["role"] == "replica" and n["master_id"] == master_id)

    def failover(self, master_port: int, timeout: float = 30) -> int:
        """`CLUSTER FAILOVER` on the replica of the master on `master_port` (a planned failover:
        the master stops writes, the replica catches up, then takes over). Returns the new master's port."""
        master = next(n for n in self.nodes() if n["port"] == master_port)
        replica = self.replica_of(master["id"])
        _client(replica["port"]).execute_command("CLUSTER", "FAILOVER")

        def promoted() -> bool:
            node = next(n for n in self.nodes(replica["port"]) if n["id"] == replica["id"])
            return bool(node["role"] == "master")

        wait_for(promoted, timeout=timeout, what=f"the replica on :{replica['port']} to take over", interval=0.1)
        self.wait_ok(timeout)
        return int(replica["port"])

    def reshard(self, source_port: int, target_port: int, slots: int, timeout: float = 120) -> str:
        """Move `slots` slots from one master to another with `redis-cli --cluster reshard` (keys
        and all: MIGRATE, so clients meet ASK and then MOVED). Returns redis-cli's output."""
        by_port = {n["port"]: n for n in self.nodes()}
        argv = [
            which("redis-cli", "/usr/bin/redis-cli"), "--cluster", "reshard", f"127.0.0.1:{source_port}",
            "--cluster-from", by_port[source_port]["id"], "--cluster-to", by_port[target_port]["id"],
            "--cluster-slots", str(slots), "--cluster-yes", "--cluster-pipeline", "10",
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster reshard failed:\n{done.stdout[-2000:]}\n{done.stderr}")
        self.wait_ok()
        return done.stdout

    def summary(self) -> list[str]:
        """The URL, then each master with its slot ranges and its replicas."""
        nodes = self.nodes()
        lines = super().summary()
        for master in sorted((n for n in nodes if n["role"] == "master"), key=lambda n: n["port"]):
            ranges = ",".join(f"{a}-{b}" if a != b else str(a) for a, b in master["slots"]) or "no slots"
            replicas = [f":{n['port']}" for n in nodes if n["master_id"] == master["id"]]
            state = " (failed)" if master["failed"] else ""
            lines.append(f"  master :{master['port']}{state} slots {ranges}; replica {', '.join(replicas) or 'none'}")
        return lines


# `CLUSTER_REDIS`'s values.
TOPOLOGIES: dict[str, type[RedisTopology]] = {"single": SingleRedis, "sentinel": SentinelRedis, "cluster": ClusterRedis}


def start_topology(kind: str, directory: Path, *, env: dict[str, str] | None = None, **kwargs: Any) -> RedisTopology:
    """Start a topology of `kind` (one of TOPOLOGIES) in `directory`; it is stopped again if it fails to start."""
    if kind not in TOPOLOGIES:
        raise SystemExit(f"CLUSTER_REDIS must be single, sentinel or cluster, not {kind!r}")
    topology = TOPOLOGIES[kind](directory, **kwargs)
    started = time.monotonic()
    topology.start(env)
    topology.progress(f"Redis {kind} ready in {time.monotonic() - started:.1f} s: {topology.url}")
    return topology
