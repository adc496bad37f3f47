"""The compose files: valid against the Compose Specification's JSON schema (the copy that the
check-jsonschema package vendors; there is no Docker engine or compose plugin here to ask), and the
deployment rules the schema cannot express. The Redis overrides (Sentinel, Cluster) are checked
merged into the multi-instance file, as `docker compose -f ... -f ...` merges them (merge()), and
in tests/deploy/test_compose_redis.py. .env.example documents every variable."""

from __future__ import annotations

import importlib.util
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from tests.deploy.conftest import clean_env, local_apps, run
from tests.support.procs import ROOT

DEV = "docker-compose.yml"
MULTI = "docker-compose.multi-instance.yml"
SENTINEL = "docker-compose.redis-sentinel.yml"
CLUSTER = "docker-compose.redis-cluster.yml"
OVERRIDES = [SENTINEL, CLUSTER]
# What can be run: a file, or the multi-instance file with a Redis override ("A + B": -f A -f B).
STACKS = [DEV, MULTI, *(f"{MULTI} + {override}" for override in OVERRIDES)]
ONE_SHOT = {"migrate", "redis-cluster-init"}  # jobs that exit when done: nothing to restart or watch
# Compose's merge (`-f base -f override`): mappings key by key, recursively; a scalar, and these
# sequences, replaced whole. Compose merges other sequences (ports, volumes, ...) by rules of their
# own, which merge() does not implement: test_issue11_item4_overrides_use_only_the_merge_rules_we_implement
# keeps the override files off them.
REPLACED_WHOLE = {"command", "entrypoint", "test"}
SECRET_NAME = re.compile(r"SECRET|KEY|PASSWORD|TOKEN", re.IGNORECASE)
INTERPOLATION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?:[:?-][^}]*)?\}")


def load(name: str | Path) -> dict[str, Any]:
    # YAML 1.2, as compose reads it (YAML 1.1 loaders turn a bare `no` into false).
    return YAML(typ="safe").load(ROOT / name)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` merged into `base` as compose merges a second -f file (see REPLACED_WHOLE)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def config(stack: str) -> dict[str, Any]:
    """A compose file, or "A + B": B merged into A."""
    first, *overrides = stack.split(" + ")
    merged = load(first)
    for name in overrides:
        merged = merge(merged, load(name))
    return merged


def services(name: str) -> dict[str, dict[str, Any]]:
    return config(name)["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: str(value) for key, value in env.items()}


@cache
def compose_schema() -> jsonschema.protocols.Validator:
    """The schema `check-jsonschema --builtin-schema vendor.compose-spec` checks against, read from
    the package's data (found without importing the package, whose CLI pulls in an HTTP stack)."""
    spec = importlib.util.find_spec("check_jsonschema")
    assert spec is not None, "check-jsonschema is not installed (requirements-dev.txt)"
    assert spec.origin
    schema = json.loads((Path(spec.origin).parent / "builtin_schemas" / "vendor" / "compose-spec.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def schema_errors(path_or_config: Path | dict[str, Any]) -> list[str]:
    data = load(path_or_config) if isinstance(path_or_config, Path) else path_or_config
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in compose_schema().iter_errors(data)
    ]


@pytest.mark.parametrize("name", [*STACKS, *OVERRIDES])
def test_it_is_valid_against_the_compose_specification(name: str) -> None:
    assert compose_schema().schema["title"] == "Compose Specification"
    assert schema_errors(config(name)) == []


def test_the_schema_check_rejects_a_misspelt_key(tmp_path: Path) -> None:
    """The control for the test above: the validator does see the file."""
    broken = tmp_path / "compose.yml"
    broken.write_text((ROOT / DEV).read_text().replace("start_period:", "start_periode:", 1))
    errors = schema_errors(broken)
    assert "services/gateway/healthcheck: 'start_periode' does not match any of the regexes: '^x-'" in errors


@pytest.mark.parametrize("name", STACKS)
def test_every_service_restarts_and_reports_its_health(name: str) -> None:
    for service_name, service in services(name).items():
        if service.get("restart") == "no":  # a one-shot job: exits when done, nothing to watch
            assert service_name in ONE_SHOT
            continue
        assert service.get("restart") in ("unless-stopped", "always"), f"{service_name}: restart policy"
        healthcheck = service.get("healthcheck") or {}
        assert not healthcheck.get("disable"), f"{service_name}: health check disabled"
        assert healthcheck.get("test"), f"{service_name}: no health check"
        assert {"interval", "timeout", "retries"} <= healthcheck.keys(), f"{service_name}: health check timing"


@pytest.mark.parametrize("name", STACKS)
def test_every_image_is_pinned(name: str) -> None:
    for service_name, service in services(name).items():
        image = service.get("image", "")
        if "build" in service:
            assert image == "realtime-gateway:local", f"{service_name}: the locally built image"
            continue
        _, _, tag = image.partition(":")
        assert re.fullmatch(r"\d+\.\d+(\.\d+)?-alpine", tag), f"{service_name}: {image!r} is not pinned to a version"


@pytest.mark.parametrize("name", STACKS)
def test_no_secret_is_written_in_the_file(name: str) -> None:
    for service_name, service in services(name).items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                assert INTERPOLATION.fullmatch(value), f"{service_name}: {key} must come from .env, not the file"
            # a password inside a URL (postgres://user:password@host) too
            for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value):
                assert INTERPOLATION.fullmatch(password), f"{service_name}: {key} embeds a literal password"
        if service.get("build"):
            assert service.get("env_file") == ".env", f"{service_name}: secrets come from .env"


def test_dev_stack_runs_the_whole_gateway_in_one_container() -> None:
    gateway, redis = services(DEV)["gateway"], services(DEV)["redis"]
    env = environment(gateway)
    assert env["GATEWAY_ROLE"] == "all"
    assert env["MIGRATE_ON_START"] == "true"
    assert env["DJANGO_DEBUG"] == "false"
    assert env["DATABASE_URL"] == "sqlite:////app/var/db.sqlite3"
    assert "gateway-var:/app/var" in gateway["volumes"], "the SQLite file must outlive the container"
    assert env["REDIS_URL"].startswith("redis://redis:")
    assert sorted(port.rsplit(":", 2)[-1] for port in gateway["ports"]) == ["3000", "8000"]
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
    assert_durable_redis(redis)


def test_multi_instance_roles_and_start_order() -> None:
    stack = services(MULTI)
    centrifugo, callback, migrate = environment(stack["centrifugo"]), environment(stack["callback"]), stack["migrate"]
    assert centrifugo["GATEWAY_ROLE"] == "centrifugo"
    assert centrifugo["CENTRIFUGO_ENGINE"] == "redis"
    assert centrifugo["CALLBACK_URL"] == "http://callback:3000"
    assert callback["GATEWAY_ROLE"] == "callback"
    assert callback["MIGRATE_ON_START"] == "false", "replicas must not race each other migrating"
    assert callback["DATABASE_URL"].startswith("postgres://")
    # Centrifugo's proxy calls carry Host "callback"; the health check's 127.0.0.1.
    assert {"callback", "127.0.0.1"} <= set(callback["ALLOWED_HOSTS"].split(","))
    assert migrate["command"] == ["python", "manage.py", "migrate", "--no-input"]
    assert environment(migrate)["DATABASE_URL"] == callback["DATABASE_URL"]
    assert stack["callback"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert stack["callback"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert stack["nginx"]["depends_on"]["centrifugo"]["condition"] == "service_healthy"
    assert_durable_redis(stack["redis"])
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in stack["postgres"]["volumes"])


@pytest.mark.parametrize("scaled", ["centrifugo", "callback"])
def test_scaled_services_have_no_fixed_name_or_host_port(scaled: str) -> None:
    service = services(MULTI)[scaled]
    assert "container_name" not in service
    assert "ports" not in service


def test_nginx_gets_every_template_variable_and_substitutes_only_those() -> None:
    nginx = services(MULTI)["nginx"]
    assert "./nginx/templates:/etc/nginx/templates:ro" in nginx["volumes"]
    assert "8000:8000" in nginx["ports"]
    templates = (ROOT / "nginx" / "templates").glob("*.template")
    used = {name for path in templates for name in re.findall(r"\$\{(\w+)\}", path.read_text())}
    env = environment(nginx)
    assert used
    assert used <= env.keys()
    # The image's entry point matches names against this filter (an awk ERE; `$$` is compose's `$`).
    name_filter = re.compile(env["NGINX_ENVSUBST_FILTER"].replace("$$", "$"))
    assert {name for name in env if name_filter.search(name)} == used


def assert_durable_redis(redis: dict[str, Any]) -> None:
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


# --- .env.example ----------------------------------------------------------------------------------


def variables_the_gateway_reads() -> set[str]:
    names: set[str] = set()
    for app in local_apps():
        for path in (ROOT / app).rglob("*.py"):
            if "tests" not in path.parts:
                text = path.read_text()
                names.update(re.findall(r"\b(?:env|setting)_(?:\w+)\(\s*[\"']([A-Z_][A-Z0-9_]*)", text))
    # centrifugo/run.sh's inputs (its CENTRIFUGO_BIN is for local runs: the image has it on PATH).
    run_sh = (ROOT / "centrifugo" / "run.sh").read_text()
    names.update(re.findall(r"\$\{([A-Z][A-Z0-9_]*)[:}]", run_sh))
    names -= {"CENTRIFUGO_BIN"}
    # The image's own knobs, and what the compose files interpolate.
    names |= {"GATEWAY_ROLE", "MIGRATE_ON_START", "DJANGO_SETTINGS_MODULE"}
    for name in (DEV, MULTI, *OVERRIDES):
        names.update(INTERPOLATION.findall((ROOT / name).read_text()))
    return names


def test_env_example_documents_every_variable() -> None:
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?([A-Z_][A-Z0-9_]*)=", example, re.MULTILINE))
    missing = sorted(variables_the_gateway_reads() - listed)
    assert not missing, f"add to .env.example: {missing}"


def test_env_example_commits_no_secret_value() -> None:
    for line in (ROOT / ".env.example").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#") and SECRET_NAME.search(name):
            assert value == "", f"{name} must be left empty in .env.example"


def test_the_real_env_file_cannot_be_committed() -> None:
    result = run(["git", "check-ignore", "-q", ".env"], env=clean_env())
    assert result.returncode == 0, ".env is not git-ignored"
