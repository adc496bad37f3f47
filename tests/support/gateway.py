"""The whole gateway as it ships, started for a test: scripts/run-gateway.sh runs migrations and
then supervisord with the repository's supervisord.conf, which starts Redis, gunicorn (production
settings) and the real Centrifugo binary on free loopback ports."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.procs import ROOT, Process, free_port, http_status, wait_for

SECRETS = {
    "DJANGO_SECRET_KEY": "e2e-django-secret-key-0123456789abcdef-0123456789abcdef",
    "CENTRIFUGO_TOKEN_HMAC_SECRET_KEY": "e2e-hmac-secret-key-0123456789abcdef-0123456789abcdef-0123456789",
    "CENTRIFUGO_PROXY_SECRET": "e2e-proxy-secret-0123456789abcdef",
    "CENTRIFUGO_API_KEY": "e2e-api-key-0123456789abcdef-0123456789",
    "GATEWAY_API_KEY": "e2e-gateway-api-key-0123456789abcdef",
}


@dataclass
class Gateway:
    var_dir: Path
    port: int = field(default_factory=free_port)
    centrifugo_port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    process: Process | None = None
    shares_with: Gateway | None = None  # a replica: same database and Redis as this gateway
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. TOKEN_AUDIENCE for one test module

    def replica(self, var_dir: Path) -> Gateway:
        """Another callback service and Centrifugo node on the same database and Redis."""
        return Gateway(var_dir=var_dir, redis_port=self.redis_port, shares_with=self)

    @property
    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "CENTRIFUGO_", "REDIS_", "RULES_", "DATABASE_"))
        }
        env.update(SECRETS)
        # No CENTRIFUGO_API_URL: the settings derive it from CENTRIFUGO_PORT, as in a real deployment.
        env.update(
            {
                "VAR_DIR": str(self.var_dir),
                "PORT": str(self.port),
                "CENTRIFUGO_PORT": str(self.centrifugo_port),
                "REDIS_PORT": str(self.redis_port),
                "DJANGO_SETTINGS_MODULE": "realtime.settings.production",
                "DATABASE_URL": f"sqlite:///{(self.shares_with or self).var_dir / 'db.sqlite3'}",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "WEB_CONCURRENCY": "2",
                "RULES_POLL_INTERVAL": "0.2",
                # plain http on loopback: the production default (secure cookies) would never be sent back
                "SESSION_COOKIE_SECURE": "false",
                "CSRF_COOKIE_SECURE": "false",
                # The tests play nginx: X-Forwarded-For from loopback gives the admin login throttle its client.
                "TRUSTED_PROXIES": "127.0.0.1",
                "PATH": f"{ROOT / '.venv' / 'bin'}:{ROOT / 'bin'}:{os.environ.get('PATH', '')}",
            }
        )
        env.update(self.extra_env)
        if self.shares_with is not None:
            env["REDIS_URL"] = self.shares_with.redis_url  # set: run-gateway.sh starts no Redis of its own
        return env

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.centrifugo_port}/connection/websocket"

    @property
    def callback_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start(self) -> Gateway:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.process = Process(
            [str(ROOT / "scripts" / "run-gateway.sh")], env=self.env, log=self.var_dir / "gateway.log"
        )
        try:
            wait_for(lambda: self._healthy(), timeout=60, what="the gateway to report healthy")
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}\n--- gateway log ---\n{self.process.tail()}") from None
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if not self.process.alive():
            raise RuntimeError(f"the gateway exited\n--- gateway log ---\n{self.process.tail()}")
        return (
            http_status(f"{self.callback_url}/health") == 200
            and http_status(f"http://127.0.0.1:{self.centrifugo_port}/health") == 200
        )

    def stop(self) -> int | None:
        return self.process.stop(timeout=40) if self.process else None

    def supervisorctl(self, *args: str) -> str:
        result = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "supervisorctl"), "-c", str(ROOT / "supervisord.conf"), *args],
            env=self.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        return result.stdout + result.stderr

    def manage(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "DJANGO_SUPERUSER_PASSWORD": "operator-password-for-tests"}
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=env, capture_output=True, text=True, timeout=60, check=False, input=input,
        )  # fmt: skip

    def token(self, user: str, *extra: str) -> str:
        result = self.manage("issue_connection_token", user, *extra)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()
