"""docker-compose.multi-instance.yml as plain processes on loopback, from the files that ship.

PostgreSQL, Redis (Centrifugo's engine and the message streams: one server, a Sentinel-watched
master and replica, or a 3-master Redis Cluster, from devcluster.redis_topology), the compose `migrate` one-shot,
callback replicas and Centrifugo nodes (each one docker/entrypoint.sh, i.e. the image's supervisord.conf
in its GATEWAY_ROLE, with its own VAR_DIR), and nginx rendered by nginx/render.sh from
nginx/templates: ip_hash over the nodes for clients, round robin over the replicas for the admin.

Docker's DNS spreads a node's callbacks over every replica in compose. Here node i calls replica i
(mod the replica count), which also shows that every replica is reached: the admin server of
nginx/templates proxies /admin/ and /health only, so it cannot stand in for that DNS name.

`make cluster` (scripts/cluster.sh → devcluster/__main__.py) runs it until Ctrl-C;
tests/cluster/conftest.py starts the same class on free ports.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from devcluster.ports import REDIS_SERVERS, SENTINELS, Ports, redis_kind
from devcluster.postgres import Postgres
from devcluster.procs import ROOT, Process, http_status, wait_for, which
from devcluster.redis_topology import ClusterRedis, RedisTopology, SentinelRedis, SingleRedis

ENTRYPOINT = str(ROOT / "docker" / "entrypoint.sh")
SECRET_NAMES = (
    "DJANGO_SECRET_KEY",
    "CENTRIFUGO_TOKEN_HMAC_SECRET_KEY",
    "CENTRIFUGO_PROXY_SECRET",
    "CENTRIFUGO_API_KEY",
)
# The values docker-compose.multi-instance.yml gives nginx: one failed connect takes a node (or a
# replica) out for 5 s, and nginx retries the request on the next one.
UPSTREAM_OPTIONS = "max_fails=1 fail_timeout=5s"


def kill_session(sid: int) -> None:
    """SIGKILL every process of a session: supervisord puts each child in its own process group,
    so killing supervisord's group would leave Centrifugo or gunicorn running."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[3]) == sid:
                os.kill(int(stat.parent.name), signal.SIGKILL)


class Cluster:
    """`redis`: single, sentinel or cluster (CLUSTER_REDIS); `ports` must hold that kind's Redis
    ports (Ports.free(redis=...) or Ports.from_env). `redis_topology` is the running Redis, for
    the tests' faults (kill_master, failover, reshard)."""

    def __init__(
        self, *, var_dir: Path, ports: Ports, env: Mapping[str, str], pg_dir: Path | None = None,
        progress: Callable[[str], None] = lambda _: None, redis: str = "single",
    ) -> None:  # fmt: skip
        missing = [name for name in SECRET_NAMES if not env.get(name)]
        if missing:
            raise RuntimeError(f"the cluster needs these secrets in its environment: {', '.join(missing)}")
        self.redis_kind = redis_kind(redis)
        if (len(ports.redis), len(ports.sentinels)) != (REDIS_SERVERS[redis], SENTINELS[redis]):
            raise ValueError(
                f"Redis {redis} runs {REDIS_SERVERS[redis]} servers and {SENTINELS[redis]} sentinels; the ports "
                f"hold {len(ports.redis)} and {len(ports.sentinels)} (Ports.free(redis={redis!r}))"
            )
        self.var_dir, self.ports, self.progress = var_dir, ports, progress
        self.logs = var_dir / "logs"
        self.base_env = {k: v for k, v in env.items() if k not in ("CENTRIFUGO_REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")}
        self.base_env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{ROOT / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        self.postgres = Postgres(pg_dir or var_dir / "pg", port=ports.postgres, log=self.logs / "postgres.log")
        # Its servers' files in var_dir (redis/, or redis-a/ redis-b/ sentinel-N/, or node-N/),
        # its logs with the others in var_dir/logs.
        self.redis_topology = self._redis_topology()
        self.replicas: list[Process] = []
        self.nodes: list[Process] = []
        self.nginx: Process | None = None

    def _redis_topology(self) -> RedisTopology:
        p, progress = self.ports, self.progress
        if self.redis_kind == "sentinel":
            return SentinelRedis(self.var_dir, ports=p.redis, sentinel_ports=p.sentinels, progress=progress)
        if self.redis_kind == "cluster":
            return ClusterRedis(self.var_dir, ports=p.redis, bus_ports=p.redis_bus, progress=progress)
        return SingleRedis(self.var_dir, port=p.redis[0], progress=progress)

    # --- addresses ---------------------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        """REDIS_URL of every replica and node (realtime.redis_url's forms; no password)."""
        return self.redis_topology.url

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ports.nginx}/connection/websocket"

    def node_ws_url(self, index: int) -> str:
        return f"ws://127.0.0.1:{self.ports.nodes[index]}/connection/websocket"

    def callback_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports.callbacks[index]}"

    def replica_of_node(self, index: int) -> int:
        return index % len(self.ports.callbacks)

    # --- environments ------------------------------------------------------------------------

    def gateway_env(self) -> dict[str, str]:
        """What both roles share (compose's x-gateway-env), for loopback and plain http."""
        return {
            **self.base_env,
            "DJANGO_SETTINGS_MODULE": "realtime.settings.production",
            "DATABASE_URL": self.postgres.url(),
            "REDIS_URL": self.redis_url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "BIND_ADDRESS": "127.0.0.1",
            # The production default (secure cookies) would never come back over plain http.
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
        }

    def replica_env(self, index: int) -> dict[str, str]:
        return {
            **self.gateway_env(),
            "GATEWAY_ROLE": "callback",
            "MIGRATE_ON_START": "false",
            "VAR_DIR": str(self.var_dir / f"callback-{index + 1}"),
            "PORT": str(self.ports.callbacks[index]),
            "CENTRIFUGO_API_URL": f"http://127.0.0.1:{self.ports.nodes[index % len(self.ports.nodes)]}",
        }

    def node_env(self, index: int) -> dict[str, str]:
        return {
            **self.gateway_env(),
            "GATEWAY_ROLE": "centrifugo",
            "CENTRIFUGO_ENGINE": "redis",
            "VAR_DIR": str(self.var_dir / f"centrifugo-{index + 1}"),
            "CENTRIFUGO_PORT": str(self.ports.nodes[index]),
            # Docker's DNS spreads a node's callbacks over the replicas; here node i calls replica i.
            "CALLBACK_URL": self.callback_url(self.replica_of_node(index)),
        }

    # --- start and stop ----------------------------------------------------------------------

    def start(self) -> Cluster:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        taken = self.ports.in_use()
        if taken:
            raise RuntimeError(f"ports already in use on 127.0.0.1: {', '.join(map(str, taken))} (CLUSTER_*_PORT(S))")
        self.logs.mkdir(parents=True, exist_ok=True)
        env = self.base_env
        if self.postgres.initdb(env):
            self.progress(f"Created a PostgreSQL cluster in {self.postgres.data}")
            if self.postgres.relocated_from is not None:
                self.progress(
                    f"(not in {self.postgres.relocated_from}: PostgreSQL's user cannot traverse the folders above it)"
                )
        self.progress("Starting PostgreSQL")
        self.postgres.start(env)
        self._start_redis(env)
        self.postgres.wait_ready(timeout=30)
        self.postgres.create_database()
        self.progress("Applying migrations (the compose file's one-shot migrate service)")
        migrate = self.manage("migrate", "--no-input", "-v", "0")
        if migrate.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{migrate.stdout}{migrate.stderr}")
        self._start_gateways()
        self._start_nginx()

    def _start_redis(self, env: dict[str, str]) -> None:
        """The compose file's Redis settings (AOF every second, no RDB) on every server."""
        servers, sentinels = (", :".join(map(str, ports)) for ports in (self.ports.redis, self.ports.sentinels))
        what = {
            "single": f"one server on :{servers}",
            "sentinel": f"a master and a replica on :{servers}, 3 sentinels on :{sentinels}",
            "cluster": f"6 nodes (3 masters, 3 replicas) on :{servers}",
        }[self.redis_kind]
        self.progress(f"Starting Redis ({self.redis_kind}): {what}")
        started = time.monotonic()
        self.redis_topology.start(env)
        self.progress(f"Redis {self.redis_kind} ready in {time.monotonic() - started:.1f} s: {self.redis_url}")

    def _start_gateways(self) -> None:
        self.progress(
            f"Starting {len(self.ports.callbacks)} callback replicas and {len(self.ports.nodes)} Centrifugo nodes"
        )
        for i in range(len(self.ports.callbacks)):
            self.replicas.append(self._entrypoint(self.replica_env(i), f"callback-{i + 1}"))
        for i in range(len(self.ports.nodes)):
            self.nodes.append(self._entrypoint(self.node_env(i), f"centrifugo-{i + 1}"))
        for proc, port in [
            *zip(self.replicas, self.ports.callbacks, strict=True),
            *zip(self.nodes, self.ports.nodes, strict=True),
        ]:
            self._wait_http(proc, f"http://127.0.0.1:{port}/health", proc.log_path.stem)

    def _start_nginx(self) -> None:
        self.progress("Starting nginx (nginx/render.sh, nginx/templates)")
        out = self.var_dir / "nginx"
        render_env = {
            "PATH": self.base_env["PATH"],
            "NGINX_LISTEN": f"127.0.0.1:{self.ports.nginx}",
            "NGINX_ADMIN_LISTEN": f"127.0.0.1:{self.ports.admin}",
            "CENTRIFUGO_UPSTREAMS": " ".join(f"server 127.0.0.1:{p} {UPSTREAM_OPTIONS};" for p in self.ports.nodes),
            "CALLBACK_UPSTREAMS": " ".join(f"server 127.0.0.1:{p} {UPSTREAM_OPTIONS};" for p in self.ports.callbacks),
        }
        rendered = subprocess.run(
            [str(ROOT / "nginx" / "render.sh"), str(out)], env=render_env, capture_output=True, text=True, check=False
        )
        if rendered.returncode != 0:
            raise RuntimeError(f"nginx/render.sh failed:\n{rendered.stderr}")
        nginx = [which("nginx", "/usr/sbin/nginx"), "-e", "stderr", "-p", str(out), "-c", str(out / "nginx.conf")]
        self.nginx = Process(nginx, env=render_env, log=self.logs / "nginx.log")
        self._wait_http(self.nginx, f"http://127.0.0.1:{self.ports.nginx}/health", "nginx → Centrifugo")
        self._wait_http(self.nginx, f"http://127.0.0.1:{self.ports.admin}/health", "nginx → callbacks")

    def _entrypoint(self, env: dict[str, str], name: str) -> Process:
        Path(env["VAR_DIR"]).mkdir(parents=True, exist_ok=True)
        return Process([ENTRYPOINT], env=env, log=self.logs / f"{name}.log")

    def _wait_http(self, proc: Process, url: str, what: str) -> None:
        self._wait(proc, lambda: http_status(url) == 200, what)

    def _wait(self, proc: Process, ready: Callable[[], bool], what: str) -> None:
        def alive_and_ready() -> bool:
            if not proc.alive():
                raise RuntimeError(f"{what} exited\n--- {proc.log_path} ---\n{proc.tail()}")
            return ready()

        try:
            wait_for(alive_and_ready, timeout=60, what=what, interval=0.1)
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}\n--- {proc.log_path} ---\n{proc.tail()}") from None

    def processes(self) -> list[Process]:
        """Every long-running process started so far."""
        return [*self.vital_processes(), *(self.redis_topology.processes() if self.redis_kind != "single" else [])]

    def vital_processes(self) -> list[Process]:
        """The processes the cluster cannot lose. A Redis server of a sentinel or cluster kind is
        not one of them: surviving its loss (a failover) is what those kinds are for."""
        redis = self.redis_topology.processes() if self.redis_kind == "single" else []
        return [p for p in (self.nginx, *self.nodes, *self.replicas, *redis, self.postgres.process) if p]

    def stop(self) -> None:
        """Tier by tier, each tier signalled at once; every session swept afterwards; Redis last."""
        for tier in ([self.nginx], self.nodes, self.replicas):
            procs = [p for p in tier if p is not None]
            for proc in procs:
                if proc.alive():
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.popen.pid, signal.SIGTERM)
            for proc in procs:
                proc.stop(timeout=40)
                kill_session(proc.popen.pid)
        self.postgres.stop()
        self.redis_topology.stop()

    def kill_node(self, index: int) -> None:
        """A node's machine dies: supervisord and Centrifugo get SIGKILL, with no goodbye to clients."""
        kill_session(self.nodes[index].popen.pid)
        self.nodes[index].popen.wait(timeout=10)

    def manage(
        self, *args: str, input: str | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """manage.py through the image's entry point with the callbacks' environment, like the compose
        file's migrate service or `docker compose exec callback python manage.py ...`. `env`: more
        variables (e.g. CENTRIFUGO_API_URL, for a command that calls a node's server API)."""
        full = {
            **self.gateway_env(),
            "GATEWAY_ROLE": "callback",
            "VAR_DIR": str(self.var_dir / "manage"),
            **(env or {}),
        }
        return subprocess.run(
            [ENTRYPOINT, "python", str(ROOT / "manage.py"), *args],
            env=full, cwd=ROOT, input=input, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    def summary(self) -> list[str]:
        p = self.ports
        lines = [
            f"clients (nginx, ip_hash over the nodes): {self.ws_url}",
            f"admin (nginx, round robin over the replicas): http://127.0.0.1:{p.admin}/admin/",
        ]
        for i in range(len(p.nodes)):
            lines.append(f"centrifugo-{i + 1}: {self.node_ws_url(i)} → callback-{self.replica_of_node(i) + 1}")
        for i, port in enumerate(p.callbacks):
            lines.append(f"callback-{i + 1}: http://127.0.0.1:{port} (/health, /metrics, /admin/)")
        lines += [
            *self.redis_topology.summary(),
            f"PostgreSQL: 127.0.0.1:{p.postgres} (data in {self.postgres.data})",
            f"logs: {self.logs}/",
        ]
        return lines
