"""docker/entrypoint.sh, run as the image runs it but on this machine: GATEWAY_ROLE mapped onto
supervisord's switches, secrets checked before anything starts, migrations on request, and the
health check the Dockerfile and compose files use."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.conftest import ENTRYPOINT, SECRETS, Entrypoint, clean_env
from tests.support.procs import ROOT, Process, free_port, http_status, wait_for, wait_port_closed

ROLES = {"all": ("true", "true"), "centrifugo": ("false", "true"), "callback": ("true", "false")}


@pytest.mark.parametrize(("role", "switches"), ROLES.items())
def test_role_sets_what_supervisord_starts(entrypoint: Entrypoint, role: str, switches: tuple[str, str]) -> None:
    result = entrypoint.run(GATEWAY_ROLE=role, **SECRETS)
    assert result.returncode == 0, result.stderr
    call = entrypoint.supervisord_call()
    assert call is not None
    assert call["argv"] == ["-c", str(ROOT / "supervisord.conf")]
    env = call["env"]
    assert (env["RUN_CALLBACK"], env["RUN_CENTRIFUGO"]) == switches
    assert env["RUN_REDIS"] == "false", "Redis is a separate service in every container deployment"
    assert env["DJANGO_SETTINGS_MODULE"] == "realtime.settings.production"
    assert (env["BIND_ADDRESS"], env["PORT"], env["CENTRIFUGO_PORT"]) == ("0.0.0.0", "3000", "8000")
    assert (entrypoint.tmp / "var").is_dir()


def test_role_all_points_the_callbacks_at_the_local_centrifugo(entrypoint: Entrypoint) -> None:
    show = "import django; django.setup(); from django.conf import settings; print(settings.CENTRIFUGO_API_URL)"
    result = entrypoint.run("python", "-c", show, GATEWAY_ROLE="all", CENTRIFUGO_PORT="18123", **SECRETS)
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "http://127.0.0.1:18123\n")


def test_an_unknown_role_is_refused(entrypoint: Entrypoint) -> None:
    result = entrypoint.run(GATEWAY_ROLE="both", **SECRETS)
    assert result.returncode == 2
    assert "GATEWAY_ROLE must be all, centrifugo or callback, not 'both'" in result.stderr
    assert entrypoint.supervisord_call() is None


@pytest.mark.parametrize(
    ("role", "missing"),
    [("all", "DJANGO_SECRET_KEY"), ("callback", "CENTRIFUGO_PROXY_SECRET"), ("centrifugo", "CENTRIFUGO_API_KEY"),
     ("centrifugo", "CENTRIFUGO_TOKEN_HMAC_SECRET_KEY")],
)  # fmt: skip
def test_a_missing_secret_stops_the_start(entrypoint: Entrypoint, role: str, missing: str) -> None:
    secrets = {name: value for name, value in SECRETS.items() if name != missing}
    result = entrypoint.run(GATEWAY_ROLE=role, **secrets)
    assert result.returncode == 2
    assert f"{missing} must be set (or {missing}_FILE) for GATEWAY_ROLE={role}" in result.stderr
    assert entrypoint.supervisord_call() is None


@pytest.mark.parametrize("role", ["all", "callback", "centrifugo"])
def test_issue10_item3_every_role_requires_the_centrifugo_api_key(entrypoint: Entrypoint, role: str) -> None:
    """One truth (realtime/config.py): Centrifugo checks the key, the callbacks send it (POST /api/publish
    broadcasts through Centrifugo's API). The callback role used to start without it."""
    secrets = {name: value for name, value in SECRETS.items() if name != "CENTRIFUGO_API_KEY"}
    result = entrypoint.run(GATEWAY_ROLE=role, **secrets)
    assert (result.returncode, result.stderr) == (
        2,
        f"entrypoint: CENTRIFUGO_API_KEY must be set (or CENTRIFUGO_API_KEY_FILE) for GATEWAY_ROLE={role}\n",
    )
    assert entrypoint.supervisord_call() is None


def test_a_role_does_not_need_the_other_roles_secrets(entrypoint: Entrypoint) -> None:
    secrets = {name: value for name, value in SECRETS.items() if name != "DJANGO_SECRET_KEY"}
    assert entrypoint.run(GATEWAY_ROLE="centrifugo", **secrets).returncode == 0


def test_secrets_can_come_from_files(entrypoint: Entrypoint, tmp_path: Path) -> None:
    secret_file = tmp_path / "api_key"
    secret_file.write_text("from-a-file\n")
    secrets = {name: value for name, value in SECRETS.items() if name != "CENTRIFUGO_API_KEY"}
    result = entrypoint.run(GATEWAY_ROLE="centrifugo", CENTRIFUGO_API_KEY_FILE=str(secret_file), **secrets)
    assert result.returncode == 0, result.stderr
    call = entrypoint.supervisord_call()
    assert call is not None
    assert call["env"]["CENTRIFUGO_API_KEY"] == "from-a-file"
    assert "CENTRIFUGO_API_KEY_FILE" not in call["env"], "resolved once: the programs see only the plain NAME"


@pytest.mark.parametrize("name", ["DJANGO_SECRET_KEY", "CENTRIFUGO_PROXY_SECRET", "CENTRIFUGO_API_KEY"])
def test_issue9_item11_name_and_name_file_both_set_are_refused(
    entrypoint: Entrypoint, tmp_path: Path, name: str
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file-0123456789abcdef\n")
    env = {**SECRETS, f"{name}_FILE": str(secret_file)}  # and SECRETS sets the plain NAME too
    for args in [(), ("python", "manage.py", "migrate")]:
        result = entrypoint.run(*args, GATEWAY_ROLE="all", **env)
        assert result.returncode == 2
        assert result.stderr == f"entrypoint: {name} and {name}_FILE are both set: set only one of them\n"
        assert entrypoint.supervisord_call() is None


def test_issue9_item11_a_file_secret_is_the_same_for_centrifugo_and_django(
    entrypoint: Entrypoint, tmp_path: Path
) -> None:
    secret_file = tmp_path / "proxy_secret"
    secret_file.write_text("  from-a-file-0123456789abcdef-0123456789 \n\n")  # 32+: the production minimum
    secrets = {name: value for name, value in SECRETS.items() if name != "CENTRIFUGO_PROXY_SECRET"}
    show = (
        "import os, django; django.setup(); from django.conf import settings; "
        "print(os.environ['CENTRIFUGO_PROXY_SECRET'], settings.CENTRIFUGO_PROXY_SECRET)"
    )
    result = entrypoint.run(
        "python", "-c", show, GATEWAY_ROLE="all", CENTRIFUGO_PROXY_SECRET_FILE=str(secret_file), **secrets
    )
    assert (result.returncode, result.stderr) == (0, "")
    # What centrifugo/run.sh gets (the plain variable) and what Django reads: one value, stripped.
    assert result.stdout == "from-a-file-0123456789abcdef-0123456789 from-a-file-0123456789abcdef-0123456789\n"


def test_an_empty_secret_file_is_refused(entrypoint: Entrypoint, tmp_path: Path) -> None:
    secret_file = tmp_path / "empty"
    secret_file.write_text(" \n")
    secrets = {name: value for name, value in SECRETS.items() if name != "CENTRIFUGO_API_KEY"}
    result = entrypoint.run(GATEWAY_ROLE="all", CENTRIFUGO_API_KEY_FILE=str(secret_file), **secrets)
    assert result.returncode == 2
    assert f"CENTRIFUGO_API_KEY_FILE={secret_file} is empty" in result.stderr


def test_a_command_runs_in_the_role_environment_without_supervisord(entrypoint: Entrypoint) -> None:
    result = entrypoint.run(
        "python", "-c", "import os; print(os.environ['RUN_CALLBACK'], os.environ['RUN_CENTRIFUGO'])",
        GATEWAY_ROLE="callback",
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, "true false\n")
    assert entrypoint.supervisord_call() is None


def applied_migrations(database: Path) -> int:
    with sqlite3.connect(database) as db:
        return int(db.execute("SELECT count(*) FROM django_migrations").fetchone()[0])


def test_migrate_on_start_migrates_then_starts(entrypoint: Entrypoint, tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite3"
    env = {**SECRETS, "GATEWAY_ROLE": "callback", "DATABASE_URL": f"sqlite:///{database}"}
    assert entrypoint.run(**env).returncode == 0
    assert not database.exists(), "no migration without MIGRATE_ON_START=true"
    result = entrypoint.run(MIGRATE_ON_START="true", **env)
    assert result.returncode == 0, result.stderr
    assert applied_migrations(database) > 0
    assert entrypoint.supervisord_call() is not None


def test_migrate_on_start_accepts_only_true_or_false(entrypoint: Entrypoint) -> None:
    result = entrypoint.run(GATEWAY_ROLE="callback", MIGRATE_ON_START="yes", **SECRETS)
    assert result.returncode == 2
    assert "MIGRATE_ON_START must be 'true' or 'false', not 'yes'" in result.stderr
    assert entrypoint.supervisord_call() is None


def test_healthcheck_fails_when_nothing_answers(entrypoint: Entrypoint) -> None:
    result = entrypoint.run("healthcheck", GATEWAY_ROLE="centrifugo", CENTRIFUGO_PORT=str(free_port()))
    assert result.returncode == 1
    assert "Connection refused" in result.stderr


# --- the real thing: supervisord, gunicorn and Centrifugo, as the image starts them ---------------


@pytest.fixture
def gateway_all(tmp_path: Path, redis_server: tuple[Process, int]) -> Iterator[tuple[Process, dict[str, str]]]:
    env = clean_env(
        **SECRETS,
        GATEWAY_ROLE="all",
        MIGRATE_ON_START="true",
        VAR_DIR=str(tmp_path / "var"),
        PORT=str(free_port()),
        CENTRIFUGO_PORT=str(free_port()),
        BIND_ADDRESS="127.0.0.1",  # loopback only in tests; the image binds 0.0.0.0
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        REDIS_URL=f"redis://127.0.0.1:{redis_server[1]}/15",
        ALLOWED_HOSTS="127.0.0.1",
        WEB_CONCURRENCY="1",
    )
    process = Process([ENTRYPOINT], env=env, log=tmp_path / "gateway.log")
    yield process, env
    process.stop(timeout=40)


def test_role_all_starts_both_halves_healthy_and_stops_cleanly(gateway_all: tuple[Process, dict[str, str]]) -> None:
    process, env = gateway_all

    def healthcheck() -> bool:
        assert process.alive(), process.tail()
        return subprocess.run([ENTRYPOINT, "healthcheck"], env=env, capture_output=True, timeout=10).returncode == 0

    try:
        wait_for(healthcheck, timeout=40, what="the healthcheck to pass", interval=0.3)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n--- gateway log ---\n{process.tail()}") from None
    assert http_status(f"http://127.0.0.1:{env['CENTRIFUGO_PORT']}/health") == 200
    assert http_status(f"http://127.0.0.1:{env['PORT']}/health") == 200

    assert process.stop(timeout=40) == 0, process.tail()
    for port in (env["PORT"], env["CENTRIFUGO_PORT"]):
        wait_port_closed(int(port), timeout=5)
