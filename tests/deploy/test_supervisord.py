"""supervisord.conf read by supervisor's own parser with the environment docker/entrypoint.sh gives it,
and centrifugo/config.json checked by Centrifugo itself through centrifugo/run.sh."""

from __future__ import annotations

import re

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
