"""Helpers for the deployment tests: the files that ship (Dockerfile, compose, nginx, supervisord,
the image's entry point) checked as far as this machine allows without a Docker engine — parsed,
linted, validated against their schemas, and run as plain processes on free loopback ports."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import ROOT, Process, free_port, http_status, wait_for

# Throwaway values, never used outside these tests.
SECRETS = {
    "DJANGO_SECRET_KEY": "deploy-test-django-secret-key-0123456789abcdef-0123456789",
    "CENTRIFUGO_TOKEN_HMAC_SECRET_KEY": "deploy-test-hmac-secret-key-0123456789abcdef-0123456789",
    "CENTRIFUGO_PROXY_SECRET": "deploy-test-proxy-secret-0123456789abcdef",
    "CENTRIFUGO_API_KEY": "deploy-test-api-key-0123456789abcdef",
}


def clean_env(**extra: str) -> dict[str, str]:
    """A minimal environment: the pytest process carries the test settings' variables, which must not
    leak into a process that is meant to see only what a container would."""
    env = {
        "PATH": f"{ROOT / '.venv' / 'bin'}:{ROOT / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
    }
    env.update(extra)
    return env


def local_apps() -> list[str]:
    """The project's own Django apps, in INSTALLED_APPS order (realtime/settings/base.py)."""
    base = (ROOT / "realtime" / "settings" / "base.py").read_text()
    installed = re.findall(r'^\s*"(\w+)",\s*$', base.split("INSTALLED_APPS")[1].split("]")[0], re.MULTILINE)
    return [app for app in installed if (ROOT / app / "__init__.py").is_file()]


def run(argv: list[str], *, env: Mapping[str, str], timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=dict(env), cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


class Centrifugo:
    """The real Centrifugo binary (bin/centrifugo) started through centrifugo/run.sh."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        env = clean_env(**SECRETS, CENTRIFUGO_PORT=str(self.port), CENTRIFUGO_BIN=str(ROOT / "bin" / "centrifugo"))
        self.process = Process([str(ROOT / "centrifugo" / "run.sh")], env=env, log=tmp / "centrifugo.log")
        try:
            wait_for(self._healthy, timeout=10, what="Centrifugo /health")
        except TimeoutError as exc:
            self.process.stop()
            raise RuntimeError(f"{exc}\n--- centrifugo log ---\n{self.process.tail()}") from None

    def _healthy(self) -> bool:
        if not self.process.alive():
            raise RuntimeError(f"Centrifugo exited\n--- log ---\n{self.process.tail()}")
        return http_status(f"http://127.0.0.1:{self.port}/health") == 200


@pytest.fixture(scope="module")
def centrifugo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Centrifugo]:
    node = Centrifugo(tmp_path_factory.mktemp("centrifugo"))
    yield node
    node.process.stop(timeout=10)


ENTRYPOINT = str(ROOT / "docker" / "entrypoint.sh")
STUB_SUPERVISORD = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["STUB_OUT"], "w") as out:
    json.dump({"argv": sys.argv[1:], "env": dict(os.environ)}, out)
"""


class Entrypoint:
    """docker/entrypoint.sh run on this machine with a stub `supervisord` first on PATH, which records
    the arguments and environment it was started with instead of starting anything."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        stub_bin = tmp / "stub-bin"
        stub_bin.mkdir()
        stub = stub_bin / "supervisord"
        stub.write_text(STUB_SUPERVISORD)
        stub.chmod(0o755)
        self.out = tmp / "supervisord-call.json"
        self.base_env = clean_env(VAR_DIR=str(tmp / "var"), STUB_OUT=str(self.out))
        self.base_env["PATH"] = f"{stub_bin}:{self.base_env['PATH']}"

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        self.out.unlink(missing_ok=True)
        return run([ENTRYPOINT, *args], env={**self.base_env, **env}, timeout=30)

    def supervisord_call(self) -> dict[str, Any] | None:
        """What the stub recorded, or None when supervisord was never started."""
        return json.loads(self.out.read_text()) if self.out.exists() else None


@pytest.fixture
def entrypoint(tmp_path: Path) -> Entrypoint:
    return Entrypoint(tmp_path)
