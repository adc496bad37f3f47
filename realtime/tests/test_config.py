"""realtime/config.py is the one source of configuration (issue 10, part 3): the Django settings, the
shell entry points and the generated documents all follow it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from realtime import config
from tests.deploy.conftest import SECRETS, clean_env
from tests.support.procs import ROOT

PYTHON = str(ROOT / ".venv" / "bin" / "python")

# The shell entry points: each default they apply must come from docker/defaults.sh.
ENTRY_SCRIPTS = [
    "scripts/run-gateway.sh",
    "scripts/dev-secrets.sh",
    "docker/entrypoint.sh",
    "docker/secret-files.sh",
    "centrifugo/run.sh",
    "nginx/render.sh",
]


def run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=clean_env(**env), cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


# --- Generated files ------------------------------------------------------------------------------


def test_issue10_item3_docker_defaults_sh_is_what_the_declaration_generates() -> None:
    assert (ROOT / "docker" / "defaults.sh").read_text() == config.shell_defaults(), (
        "run: .venv/bin/python -m realtime.config write"
    )


def test_issue10_item3_env_example_is_what_the_declaration_generates() -> None:
    assert (ROOT / ".env.example").read_text() == config.env_example(), "run: .venv/bin/python -m realtime.config write"


def test_issue10_item3_readme_table_is_what_the_declaration_generates() -> None:
    readme = (ROOT / "README.md").read_text()
    assert config.readme_with_table(readme) == readme, "run: .venv/bin/python -m realtime.config write"
    assert readme.count(config.README_START) == 1
    for setting in config.SETTINGS:
        assert f"| `{setting.name}` |" in readme


def test_the_command_line_prints_each_document() -> None:
    result = run([PYTHON, "-m", "realtime.config", "shell-defaults"])
    assert (result.returncode, result.stdout) == (0, config.shell_defaults())
    result = run([PYTHON, "-m", "realtime.config", "nonsense"])
    assert result.returncode == 2
    assert "usage: python -m realtime.config" in result.stderr


# --- One place for each default ---------------------------------------------------------------------


def test_issue10_item3_no_entry_script_writes_a_default_of_its_own() -> None:
    """`${NAME:-literal}` is a second copy of a default; `${NAME:-$GW_DEFAULT_NAME}` is the declaration's."""
    literal = re.compile(r"\$\{([A-Z][A-Z0-9_]*):-([^}$]+)\}")
    found = {path: literal.findall((ROOT / path).read_text()) for path in ENTRY_SCRIPTS}
    assert {path: hits for path, hits in found.items() if hits} == {}


# What reads the environment: the settings, gunicorn's config, the entry points and supervisord.
READERS = [
    *(str(path.relative_to(ROOT)) for path in sorted((ROOT / "realtime" / "settings").glob("*.py"))),
    "realtime/gunicorn_conf.py",
    "realtime/asgi.py",
    "realtime/wsgi.py",
    "manage.py",
    "supervisord.conf",
    "centrifugo/config.json",
    # nginx/render.sh has no defaults (its usage names example ports: the literal-default test covers it).
    *(path for path in ENTRY_SCRIPTS if path != "nginx/render.sh"),
]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "3000"),
        ("CENTRIFUGO_PORT", "8000"),
        ("REDIS_PORT", "6379"),
        ("DJANGO_SETTINGS_MODULE", "realtime.settings.local"),
    ],
)
def test_issue10_item3_each_default_is_written_once(name: str, value: str) -> None:
    """The callback port's default was written in 8 files, Centrifugo's in 8, Redis's in 7: now only the
    declaration (and files generated from it) hold it; the readers take it from there."""
    assert config.BY_NAME[name].default == value
    word = re.compile(rf"(?<![\w.]){re.escape(value)}(?![\w])")
    comment = re.compile(r"^\s*[#;].*$", re.MULTILINE)  # a comment may name a value; code may not
    assert [path for path in READERS if word.search(comment.sub("", (ROOT / path).read_text()))] == []


# --- Django settings follow the declaration --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "attribute"),
    [
        ("REDIS_SOCKET_TIMEOUT", "REDIS_SOCKET_TIMEOUT"),
        ("REDIS_KEY_PREFIX", "REDIS_KEY_PREFIX"),
        ("CALLBACK_THREADS", "CALLBACK_THREADS"),
        ("CALLBACK_MAX_BODY", "CALLBACK_MAX_BODY"),
        ("BODY_BYTES_IN_FLIGHT", "BODY_BYTES_IN_FLIGHT"),
        ("SESSION_CONNECTION_TTL", "SESSION_CONNECTION_TTL"),
        ("STREAM_DEFAULT_PARTITIONS", "STREAM_DEFAULT_PARTITIONS"),
        ("SUBSCRIPTION_RECHECK_INTERVAL", "SUBSCRIPTION_RECHECK_INTERVAL"),
        ("IDEMPOTENCY_WINDOW", "IDEMPOTENCY_WINDOW"),
        ("SERVER_API_ROLES", "SERVER_API_ROLES"),
        ("ALLOW_ANONYMOUS", "ALLOW_ANONYMOUS"),
    ],
)
def test_issue10_item3_django_settings_take_the_declared_defaults(name: str, attribute: str) -> None:
    setting = config.BY_NAME[name]
    assert setting.default is not None
    assert getattr(settings, attribute) == config.read(name, environ={})


def settings_error(module: str, **env: str) -> str:
    """The one-line ImproperlyConfigured that importing `module` ends with, in a clean environment."""
    result = run([PYTHON, "-c", f"import {module}"], **env)
    assert result.returncode == 1, result.stderr
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("module", "env", "message"),
    [
        ("gunicorn_conf", {"PORT": "http"}, "PORT must be an integer, not 'http'"),
        ("gunicorn_conf", {"ACCESS_LOG": "yes"}, "ACCESS_LOG must be 'true' or 'false', not 'yes'"),
        ("settings.test", {"CENTRIFUGO_PORT": "70000"}, "CENTRIFUGO_PORT must be <= 65535, not 70000"),
        ("settings.test", {"LOG_FORMAT": "xml"}, "LOG_FORMAT must be one of json, plain, not 'xml'"),
        ("settings.test", {"SUBSCRIPTION_RECHECK_INTERVAL": "1"}, "SUBSCRIPTION_RECHECK_INTERVAL must be 0 (off) or 2..30, not 1"),
        ("settings.test", {"BODY_BYTES_IN_FLIGHT": "1000"}, "BODY_BYTES_IN_FLIGHT must be >= 2621440, not 1000"),
    ],
)  # fmt: skip
def test_issue10_item3_a_bad_value_is_refused_with_the_declared_rule(
    module: str, env: dict[str, str], message: str
) -> None:
    assert settings_error(f"realtime.{module}", **SECRETS, **env).endswith(f"ImproperlyConfigured: {message}")


def test_issue10_item3_centrifugo_api_key_is_required_by_the_settings() -> None:
    """It was "required" in the README yet defaulted to empty, so the callbacks started without it and
    every POST /api/publish failed at Centrifugo. Now it is declared required for the callbacks."""
    assert config.BY_NAME["CENTRIFUGO_API_KEY"].required_for == {"callback", "centrifugo"}
    env = {name: value for name, value in SECRETS.items() if name != "CENTRIFUGO_API_KEY"}
    message = settings_error("realtime.settings.production", **env)
    assert message.endswith("ImproperlyConfigured: CENTRIFUGO_API_KEY must be set in the environment")


@pytest.mark.parametrize("setting", [s for s in config.SETTINGS if s.secret], ids=lambda s: s.name)
def test_issue10_item3_production_refuses_each_short_secret_at_its_declared_length(setting: config.Setting) -> None:
    env = {**SECRETS, "GATEWAY_API_KEY": "g" * 40, setting.name: "a1b2c3d4e5" * 10}
    env[setting.name] = env[setting.name][: setting.min_length - 1]
    message = settings_error("realtime.settings.production", **env)
    assert f"{setting.name} is {setting.min_length - 1} characters; production needs at least {setting.min_length}" in (
        message
    )


def test_the_django_secret_key_minimum_is_djangos() -> None:
    from django.core.checks.security.base import SECRET_KEY_MIN_LENGTH

    assert config.BY_NAME["DJANGO_SECRET_KEY"].min_length == SECRET_KEY_MIN_LENGTH


def test_reading_the_declaration_needs_no_django() -> None:
    code = "import sys, realtime.config; assert 'django' not in sys.modules; print(realtime.config.read('PORT'))"
    result = run([PYTHON, "-c", code])
    assert (result.returncode, result.stdout, result.stderr) == (0, "3000\n", "")


# --- The shell entry points follow the declaration -------------------------------------------------


def test_issue10_item3_the_image_entry_point_applies_the_declared_defaults(tmp_path: Path) -> None:
    stub = tmp_path / "bin" / "supervisord"
    stub.parent.mkdir()
    stub.write_text('#!/bin/sh\nenv > "$STUB_OUT"\n')
    stub.chmod(0o755)
    out = tmp_path / "env"
    env = clean_env(**SECRETS, VAR_DIR=str(tmp_path / "var"), STUB_OUT=str(out))
    env["PATH"] = f"{stub.parent}:{env['PATH']}"
    result = subprocess.run(
        [str(ROOT / "docker" / "entrypoint.sh")], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    seen = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    for name in ("PORT", "CENTRIFUGO_PORT", "REDIS_PORT", "REDIS_APPENDFSYNC", "GATEWAY_ROLE"):
        assert seen[name] == config.BY_NAME[name].default, name
    for name in ("BIND_ADDRESS", "DJANGO_SETTINGS_MODULE"):
        assert seen[name] == config.BY_NAME[name].image_default, name


def test_issue10_item3_run_sh_applies_the_declared_defaults(tmp_path: Path) -> None:
    fake = tmp_path / "centrifugo"
    fake.write_text("#!/bin/sh\nenv\n")
    fake.chmod(0o755)
    result = run([str(ROOT / "centrifugo" / "run.sh")], **SECRETS, CENTRIFUGO_BIN=str(fake), CENTRIFUGO_ENGINE="redis")
    assert result.returncode == 0, result.stderr
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    declared = {name: config.BY_NAME[name].default for name in config.BY_NAME}
    assert seen["CENTRIFUGO_HTTP_SERVER_PORT"] == declared["CENTRIFUGO_PORT"]
    assert seen["CENTRIFUGO_HTTP_SERVER_ADDRESS"] == declared["BIND_ADDRESS"]
    assert seen["CENTRIFUGO_CLIENT_PROXY_CONNECT_ENDPOINT"] == f"http://127.0.0.1:{declared['PORT']}/centrifugo/connect"
    assert seen["CENTRIFUGO_LOG_LEVEL"] == declared["CENTRIFUGO_LOG_LEVEL"]
    assert seen["CENTRIFUGO_ENGINE_REDIS_ADDRESS"] == declared["REDIS_URL"]
    assert seen["CENTRIFUGO_CLIENT_PRESENCE_UPDATE_INTERVAL"] == f"{declared['SUBSCRIPTION_RECHECK_INTERVAL']}s"


@pytest.mark.parametrize("name", ["CENTRIFUGO_LOG_LEVEL", "CENTRIFUGO_ENGINE"])
def test_run_sh_refuses_a_value_outside_the_declared_choices(tmp_path: Path, name: str) -> None:
    result = run([str(ROOT / "centrifugo" / "run.sh")], **SECRETS, CENTRIFUGO_BIN="/bin/true", **{name: "loud"})
    choices = " ".join(config.BY_NAME[name].choices)
    assert (result.returncode, result.stderr) == (2, f"run.sh: {name} must be one of {choices}, not 'loud'\n")


def test_issue10_item3_dev_secrets_are_the_ones_the_callbacks_require(tmp_path: Path) -> None:
    result = run([str(ROOT / "scripts" / "dev-secrets.sh")], VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "dev.env").read_text().splitlines()
    written = [line.split("=", 1)[0] for line in lines if not line.startswith("#")]
    assert written == [s.name for s in config.SETTINGS if "callback" in s.required_for]
    assert set(written) >= {s.name for s in config.SETTINGS if "centrifugo" in s.required_for}


def test_the_secret_names_the_scripts_resolve_are_the_declared_secrets() -> None:
    result = run(["bash", "-c", 'source docker/secret-files.sh && echo "${SECRET_NAMES[*]}"'])
    assert result.stdout.split() == [s.name for s in config.SETTINGS if s.secret]


def test_every_setting_is_in_a_declared_section() -> None:
    """A setting whose section is not in SECTIONS is left out of .env.example and the README table
    (a merge once dropped the "Backend workers" section while six settings still named it)."""
    from realtime.config import SECTIONS, SETTINGS

    assert sorted({s.section for s in SETTINGS} - set(SECTIONS)) == []
