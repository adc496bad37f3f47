"""supervisord.conf read by supervisor's own parser with the environment docker/entrypoint.sh gives it,
and centrifugo/config.json checked by Centrifugo itself through centrifugo/run.sh."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from tests.deploy.conftest import SECRETS, Entrypoint, clean_env, run
from tests.support.procs import ROOT

CONF = ROOT / "supervisord.conf"
RUN_SH = str(ROOT / "centrifugo" / "run.sh")


def parse(env: dict[str, str]) -> dict[str, object]:
    """Program name -> its config, as supervisord would build them from CONF under env."""
    options = ServerOptions()
    options.environ_expansions = {f"ENV_{name}": value for name, value in env.items()}
    options.configfile = str(CONF)
    options.process_config(do_usage=False)
    return {config.name: config for group in options.process_group_configs for config in group.process_configs}


@pytest.mark.parametrize(
    ("role", "started"),
    [("all", {"callback", "centrifugo"}), ("centrifugo", {"centrifugo"}), ("callback", {"callback"})],
)
def test_it_parses_with_the_image_environment(entrypoint: Entrypoint, role: str, started: set[str]) -> None:
    assert entrypoint.run(GATEWAY_ROLE=role, **SECRETS).returncode == 0
    call = entrypoint.supervisord_call()
    assert call is not None
    groups = parse(call["env"])
    assert groups.keys() == {"redis", "callback", "centrifugo", "exit_on_fatal"}
    assert groups["exit_on_fatal"].autostart  # the FATAL watcher runs in every role
    programs = {name: config for name, config in groups.items() if name != "exit_on_fatal"}
    assert {name for name, config in programs.items() if config.autostart} == started
    # Graceful stops: SIGTERM, with time to drain before supervisord escalates.
    for config in programs.values():
        assert config.stopsignal == 15
        assert config.stopwaitsecs >= 20


def test_the_entrypoint_sets_every_variable_it_uses(entrypoint: Entrypoint) -> None:
    used = set(re.findall(r"%\(ENV_(\w+)\)s", CONF.read_text()))
    assert {"VAR_DIR", "RUN_REDIS", "RUN_CALLBACK", "RUN_CENTRIFUGO"} <= used
    assert entrypoint.run(GATEWAY_ROLE="all", **SECRETS).returncode == 0
    call = entrypoint.supervisord_call()
    assert call is not None
    assert used - call["env"].keys() == set()


def test_it_refuses_to_parse_without_them() -> None:
    """The control for the tests above: a variable missing from the environment is an error."""
    with pytest.raises(ValueError, match="ENV_VAR_DIR"):
        parse({"RUN_REDIS": "false"})


def checkconfig(*args: str, **env: str) -> tuple[int, str]:
    base = {**SECRETS, "CENTRIFUGO_BIN": str(ROOT / "bin" / "centrifugo")}
    result = run([RUN_SH, "checkconfig", "--strict", *args], env=clean_env(**{**base, **env}))
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("engine", ["memory", "redis"])
def test_centrifugo_accepts_its_config(engine: str) -> None:
    assert checkconfig(CENTRIFUGO_ENGINE=engine, REDIS_URL="redis://redis:6379/0") == (0, "")


def test_centrifugo_checkconfig_catches_a_bad_setting() -> None:
    """The control: the check sees the environment run.sh builds (history needs both size and ttl)."""
    code, output = checkconfig(CENTRIFUGO_CHANNEL_WITHOUT_NAMESPACE_HISTORY_TTL="0s")
    assert code == 1
    assert "both history size and history ttl required" in output


@pytest.mark.parametrize(
    "missing", ["CENTRIFUGO_TOKEN_HMAC_SECRET_KEY", "CENTRIFUGO_PROXY_SECRET", "CENTRIFUGO_API_KEY"]
)
def test_run_sh_refuses_to_start_without_a_secret(missing: str) -> None:
    env = {name: value for name, value in SECRETS.items() if name != missing}
    result = run([RUN_SH, "checkconfig"], env=clean_env(**env, CENTRIFUGO_BIN=str(ROOT / "bin" / "centrifugo")))
    assert result.returncode != 0
    assert f"{missing}: must be set" in result.stderr


# --- SUBSCRIPTION_RECHECK_INTERVAL: one setting for the callbacks and Centrifugo ----------------------


def centrifugo_env(tmp_path: Path, **env: str) -> dict[str, str]:
    """The environment run.sh hands to Centrifugo (a stand-in binary prints it)."""
    fake = tmp_path / "centrifugo"
    fake.write_text("#!/bin/sh\nenv\n")
    fake.chmod(0o755)
    result = run([RUN_SH], env=clean_env(**SECRETS, CENTRIFUGO_BIN=str(fake), **env))
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def test_issue9_item6_run_sh_sets_centrifugos_presence_tick_to_the_recheck_interval(tmp_path: Path) -> None:
    default = centrifugo_env(tmp_path)
    assert default["CENTRIFUGO_CLIENT_PRESENCE_UPDATE_INTERVAL"] == "2s"  # realtime/settings/base.py's default
    assert default["CENTRIFUGO_CLIENT_EXPIRED_SUB_CLOSE_DELAY"] == "1ms"  # 0 would mean the library's 25 s
    assert (
        centrifugo_env(tmp_path, SUBSCRIPTION_RECHECK_INTERVAL="30")["CENTRIFUGO_CLIENT_PRESENCE_UPDATE_INTERVAL"]
        == "30s"
    )
    off = centrifugo_env(tmp_path, SUBSCRIPTION_RECHECK_INTERVAL="0")
    assert "CENTRIFUGO_CLIENT_PRESENCE_UPDATE_INTERVAL" not in off
    assert "CENTRIFUGO_CLIENT_EXPIRED_SUB_CLOSE_DELAY" not in off


@pytest.mark.parametrize("interval", ["0", "2", "30"])
def test_centrifugo_accepts_each_recheck_interval(interval: str) -> None:
    assert checkconfig(SUBSCRIPTION_RECHECK_INTERVAL=interval) == (0, "")


@pytest.mark.parametrize("interval", ["1", "31", "-2", "2s"])
def test_run_sh_and_the_settings_refuse_a_bad_recheck_interval(interval: str) -> None:
    env = clean_env(**SECRETS, CENTRIFUGO_BIN=str(ROOT / "bin" / "centrifugo"), SUBSCRIPTION_RECHECK_INTERVAL=interval)
    result = run([RUN_SH, "checkconfig"], env=env)
    assert result.returncode == 2
    assert f"SUBSCRIPTION_RECHECK_INTERVAL must be 0 (off) or 2..30, not '{interval}'" in result.stderr
    result = run([str(ROOT / ".venv" / "bin" / "python"), "-c", "import realtime.settings.test"], env=env)
    assert result.returncode == 1
    assert "ImproperlyConfigured: SUBSCRIPTION_RECHECK_INTERVAL must be" in result.stderr
