"""A bad REDIS_URL stops the start scripts with one readable line (no traceback, no password),
and what they log about Redis never shows a password (realtime/redis_url.py's `main`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.conftest import SECRETS, Entrypoint, clean_env, run
from tests.support.procs import ROOT

BAD = "redis+cluster://:hunter2-secret@h1:7000,h2:7001"
BAD_MESSAGE = "REDIS_URL: name one host before the path and the others as `addr` parameters"


def test_issue11_item1_entrypoint_refuses_a_bad_redis_url_in_one_line(entrypoint: Entrypoint) -> None:
    result = entrypoint.run(GATEWAY_ROLE="all", REDIS_URL=BAD, **SECRETS)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {BAD_MESSAGE}")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert entrypoint.supervisord_call() is None


def test_issue11_item1_entrypoint_names_a_bad_centrifugo_redis_url(entrypoint: Entrypoint) -> None:
    result = entrypoint.run(GATEWAY_ROLE="centrifugo", CENTRIFUGO_REDIS_URL="redis+sentinel://h:26379", **SECRETS)
    assert result.returncode == 2
    assert result.stderr.startswith("error: CENTRIFUGO_REDIS_URL: a sentinel URL needs the master's name")
    assert entrypoint.supervisord_call() is None


def test_issue11_item1_entrypoint_accepts_sentinel_and_cluster_urls(entrypoint: Entrypoint) -> None:
    for url in ("redis+sentinel://:pw@h:26379/0?sentinel_master_name=m", "rediss+cluster://h1:7000?addr=h2:7001"):
        result = entrypoint.run(GATEWAY_ROLE="all", REDIS_URL=url, MIGRATE_ON_START="false", **SECRETS)
        assert result.returncode == 0, result.stderr
        assert entrypoint.supervisord_call() is not None


def test_issue11_item1_run_gateway_refuses_a_bad_redis_url_before_starting_anything(tmp_path: Path) -> None:
    env = clean_env(VAR_DIR=str(tmp_path / "var"), REDIS_URL=BAD, **SECRETS)
    result = run([str(ROOT / "scripts" / "run-gateway.sh")], env=env)
    assert result.returncode == 2
    assert f"error: {BAD_MESSAGE}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert not (tmp_path / "var" / "redis").exists()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://app:hunter2@h:6379", "redis://app:***@h:6379"),
        (
            "redis+sentinel://:hunter2@h:26379?sentinel_master_name=m&sentinel_password=hunter3",
            "redis+sentinel://:***@h:26379?sentinel_master_name=m&sentinel_password=***",
        ),
    ],
)
def test_issue11_item1_what_the_scripts_log_hides_passwords(url: str, shown: str) -> None:
    result = run([str(ROOT / ".venv" / "bin" / "python"), "-m", "realtime.redis_url", url], env=clean_env())
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{shown}\n", "")
    assert 'note "Redis: $redis_shown' in (ROOT / "scripts" / "run-gateway.sh").read_text()
