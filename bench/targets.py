"""What the publish benchmark loads: our gateway (and bench-only variants of it) and the baselines."""

from __future__ import annotations

import importlib
import importlib.util
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.servers import Server, free_port

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "bench" / "node-baseline"
PUBLISH = "/centrifugo/publish"


@dataclass(frozen=True)
class Secrets:
    # token_urlsafe(48): 64 characters, past the production settings' minimums (32; Django's key 50).
    django: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    hmac: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    proxy: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    api: str = field(default_factory=lambda: secrets.token_urlsafe(48))


@dataclass(frozen=True)
class Context:
    """What every target of one run shares."""

    redis_url: str
    secrets: Secrets
    work_dir: Path  # throwaway: SQLite databases
    log_dir: Path
    run_dir: Path
    venv_bin: Path

    def base_env(self) -> dict[str, str]:
        # A fixed environment, not ours: a stray WEB_CONCURRENCY or REDIS_URL in the caller's shell
        # must not change what is measured.
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env["PATH"] = f"{self.venv_bin}:{env.get('PATH', '/usr/bin:/bin')}"
        # The caller's PYTHONPATH comes after the repo: a tool under trial (granian) can live outside .venv.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))
        return env

    def gateway_env(self, settings_module: str) -> dict[str, str]:
        return {
            **self.base_env(),
            "DJANGO_SETTINGS_MODULE": settings_module,
            "DJANGO_SECRET_KEY": self.secrets.django,
            "CENTRIFUGO_TOKEN_HMAC_SECRET_KEY": self.secrets.hmac,
            "CENTRIFUGO_PROXY_SECRET": self.secrets.proxy,
            "CENTRIFUGO_API_KEY": self.secrets.api,
            "DATABASE_URL": f"sqlite:///{self.gateway_db}",
            "REDIS_URL": self.redis_url,
            "DJANGO_DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "VAR_DIR": str(self.work_dir),
            "GUNICORN_GRACEFUL_TIMEOUT": "3",
        }

    @property
    def gateway_db(self) -> Path:
        return self.work_dir / "gateway.sqlite3"

    @property
    def naive_db(self) -> Path:
        return self.work_dir / "naive.sqlite3"


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # "gateway" | "node" | "naive-drf" | "granian"
    summary: str
    path: str = PUBLISH
    stores: bool = True  # one XADD per successful request
    settings: str = "realtime.settings.production"
    env: Mapping[str, str] = field(default_factory=dict)
    processes: str = ""
    args: tuple[str, ...] = ()  # extra gunicorn options; on the command line they override the config file
    app: str = ""  # the application to serve, when not the default for its settings
    tree: Path | None = None  # another checkout of the project to serve (`--before REV`), else this one
    # The body Centrifugo sends with the publish proxy's binary_encoding on (b64data), as it ships
    # now; False: data as raw JSON, what an older checkout's Centrifugo config sent.
    binary_encoding: bool = True

    def server(self, ctx: Context) -> Server:
        port = free_port()
        if self.kind == "gateway":
            argv = [
                str(ctx.venv_bin / "gunicorn"),
                "-c",
                "python:realtime.gunicorn_conf",
                *self.args,
                self.app
                or (
                    "bench.gateway.asgi:application"
                    if self.settings.startswith("bench.")
                    else "realtime.asgi:application"
                ),
            ]
            env = {**ctx.gateway_env(self.settings), "PORT": str(port), **self.env}
            if self.tree is not None:  # that checkout's code and config, this run's packages and Redis
                env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(self.tree), os.environ.get("PYTHONPATH"))))
        elif self.kind == "granian":
            # A Rust HTTP server hosting the same ASGI app (only when granian is installed; --tuning).
            argv = [
                str(ctx.venv_bin / "python"),
                "-m",
                "granian",
                "--interface",
                "asgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-ws",
                "--log-level",
                "warning",
                *self.args,
                "realtime.asgi:application",
            ]
            env = {**ctx.gateway_env(self.settings), **self.env}
        elif self.kind == "naive-drf":
            argv = [
                str(ctx.venv_bin / "gunicorn"),
                "-w",
                "2",
                "-b",
                f"127.0.0.1:{port}",
                "--no-control-socket",
                "bench.naive_drf.wsgi:application",
            ]
            env = {**ctx.base_env(), **naive_env(ctx), "PORT": str(port)}
        elif self.kind == "node":
            argv = ["node", str(NODE_DIR / "server.js")]
            env = {
                **ctx.base_env(),
                "PORT": str(port),
                "REDIS_URL": ctx.redis_url,
                "CENTRIFUGO_PROXY_SECRET": ctx.secrets.proxy,
                "NODE_ENV": "production",
                **self.env,
            }
        else:
            raise ValueError(f"unknown target kind {self.kind!r}")
        return Server(self.name, argv, env, port, ctx.log_dir, ctx.run_dir, self.tree or ROOT)


def naive_env(ctx: Context) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "bench.naive_drf.settings",
        "DJANGO_SECRET_KEY": ctx.secrets.django,
        "NAIVE_DB_PATH": str(ctx.naive_db),
        "REDIS_URL": ctx.redis_url,
        "CENTRIFUGO_PROXY_SECRET": ctx.secrets.proxy,
    }


def shipped_layout() -> str:
    """The process layout realtime.gunicorn_conf picks on this machine (its defaults, not the
    caller's WEB_CONCURRENCY, which the servers never see: see Context.base_env)."""
    saved = {name: os.environ.pop(name) for name in ("WEB_CONCURRENCY",) if name in os.environ}
    try:
        conf = importlib.import_module("realtime.gunicorn_conf")
        return f"{conf.workers}w uvicorn"
    finally:
        os.environ.update(saved)


# No WEB_CONCURRENCY: the config's own defaults are what ships.
OURS = Target(
    "ours",
    "gateway",
    "gateway as shipped: gunicorn -c realtime.gunicorn_conf (its defaults), realtime.asgi, production settings",
    processes=shipped_layout(),
)
OURS_NOOP = Target(
    "ours-noop",
    "gateway",
    "same stack, fast path and rule decision, no XADD (bench/gateway NoopPublishHandler)",
    path="/centrifugo/publish-noop",
    stores=False,
    settings="bench.gateway.settings",
    env=OURS.env,
    processes=OURS.processes,
)
NODE = Target(
    "node-express",
    "node",
    "Express 5 + express.json() + ioredis, single process (as the replaced service ran)",
    env={"NODE_WORKERS": "1"},
    processes="1 proc",
)
NODE_CLUSTER = Target(
    "node-express-x2",
    "node",
    "same, node:cluster with 2 workers",
    env={"NODE_WORKERS": "2"},
    processes="2 procs",
)
NAIVE = Target(
    "naive-drf",
    "naive-drf",
    "DRF defaults + Serializer + json.dumps + XADD, gunicorn sync -w 2 (no keep-alive)",
    processes="2w sync",
)

MAIN = (OURS, OURS_NOOP, NODE, NODE_CLUSTER, NAIVE)


def before(tree: Path, rev: str) -> Target:
    """The gateway as shipped at an earlier commit, exported to `tree`: a change's cost, measured
    in the same run as the change (`python -m bench --before REV`). It gets the body its own
    Centrifugo config made Centrifugo send (b64data only if that config had binary_encoding)."""
    config = (tree / "centrifugo" / "config.json").read_text()
    return Target(
        BEFORE,
        "gateway",
        f"the gateway as shipped at {rev} (same packages, settings and Redis)",
        processes=OURS.processes,
        tree=tree,
        binary_encoding='"binary_encoding": true' in config,
    )


BEFORE = "ours-before"


# Second phase: what would make ours faster. The same gateway code under other process layouts, and
# bench-only routes (bench/gateway): the publish view through Django + DRF (what the fast path skips),
# the same handle() in a plain Django view, and the path without the XADD.
def _variant(
    name: str,
    summary: str,
    *,
    workers: int | None = None,
    args: tuple[str, ...] = (),
    path: str = PUBLISH,
    processes: str = "",
    app: str = "",
) -> Target:
    env = {"WEB_CONCURRENCY": str(workers)} if workers is not None else {}
    return Target(
        name,
        "gateway",
        summary,
        path=path,
        settings="bench.gateway.settings",
        env=env,
        processes=processes or (f"{workers}w uvicorn" if workers else OURS.processes),
        args=args,
        app=app,
    )


TUNING = (
    OURS,
    *(_variant(f"ours-w{w}", f"asgi, {w} worker processes", workers=w) for w in (1, 3, 4)),
    _variant(
        "ours-shared-socket",
        "the shipped layout without reuse_port: all workers accept from one socket",
        args=("-c", "python:bench.gateway.gunicorn_shared_socket"),
    ),
    _variant(
        "gthread-django",
        "before: gthread 2 workers x 4 threads, plain Django WSGI (the DRF view, no fast path)",
        workers=2,
        args=("--worker-class", "gthread", "--threads", "4"),
        app="bench.gateway.wsgi:application",
        processes="2w x 4t",
    ),
    _variant(
        "ours-django-drf",
        "the DRF view (PublishHandler) through the bridge and Django's request cycle",
        path="/centrifugo/publish-drf",
    ),
    _variant(
        "ours-plain-django",
        "the same handle() in a plain Django view, through the bridge",
        path="/centrifugo/publish-plain",
    ),
    OURS_NOOP,
    _variant(
        "ours-gunicorn-asgi",
        "the shipped layout under gunicorn's own asgi worker on uvloop (the worker before issue 10)",
        args=("--worker-class", "asgi", "--asgi-loop", "uvloop", "--asgi-lifespan", "on"),
    ),
)
if importlib.util.find_spec("granian") is not None:
    TUNING += (
        Target(
            "granian-w2",
            "granian",
            "the same ASGI app under granian --interface asgi, 2 workers",
            args=("--workers", "2"),
            processes="2w",
        ),
    )
