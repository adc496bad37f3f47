"""The Dockerfile and its build context: hadolint clean, pinned bases, no secret in the image config,
a non-root user, a health check, and a context that can hold nothing but the application."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.conftest import clean_env, local_apps, run
from tests.support.procs import ROOT

SECRET_NAME = re.compile(r"SECRET|KEY|PASSWORD|TOKEN|CREDENTIAL", re.IGNORECASE)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int  # index of the FROM that starts the stage it belongs to


def parse(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined; comment lines dropped (as Docker does)."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), " ".join(args.split()), stage))
    return instructions


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse(ROOT / "Dockerfile")


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def env_names(instruction: Instruction) -> list[str]:
    """Variable names of an ENV (NAME=value ...) or ARG (NAME[=default]) instruction."""
    return re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)(?:=|\s|$)", instruction.args)


def test_hadolint_reports_nothing() -> None:
    config = ROOT / ".hadolint.yaml"
    result = run(
        [str(ROOT / ".venv" / "bin" / "hadolint"), "--no-color", "--config", str(config), str(ROOT / "Dockerfile")],
        env=clean_env(),
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    # ...and not because findings were switched off: no rule ignored, every severity fails.
    settings = config.read_text()
    assert re.search(r"^failure-threshold:\s*style\s*$", settings, re.MULTILINE)
    assert not re.search(r"^ignored:", settings, re.MULTILINE)


def test_every_base_image_is_pinned_to_a_version(dockerfile: list[Instruction]) -> None:
    images = [i.args.split()[0] for i in dockerfile if i.keyword == "FROM"]
    assert len(images) >= 3  # centrifugo, build, runtime
    for image in images:
        tag = image.partition(":")[2]
        assert re.search(r"\d+\.\d+\.\d+", tag), f"{image} is not pinned to a version"


def test_centrifugo_comes_from_the_version_the_project_tests_against(dockerfile: list[Instruction]) -> None:
    pinned = re.search(r"^VERSION=(\S+)$", (ROOT / "scripts" / "install-centrifugo.sh").read_text(), re.MULTILINE)
    assert pinned
    assert f"centrifugo/centrifugo:v{pinned[1]} AS centrifugo" in [i.args for i in dockerfile if i.keyword == "FROM"]
    copies = [i.args for i in final_stage(dockerfile) if i.keyword == "COPY" and "--from=centrifugo" in i.args]
    assert copies == ["--from=centrifugo /usr/local/bin/centrifugo /usr/local/bin/centrifugo"]


def test_python_base_is_a_slim_311_patch_release(dockerfile: list[Instruction]) -> None:
    pythons = {i.args.split()[0] for i in dockerfile if i.keyword == "FROM" and i.args.startswith("python:")}
    assert len(pythons) == 1, "build and runtime stages must use the same Python image"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", pythons.pop())


def test_the_image_runs_as_a_non_root_user(dockerfile: list[Instruction]) -> None:
    users = [i.args for i in final_stage(dockerfile) if i.keyword == "USER"]
    assert users, "the final stage sets no USER, so it runs as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_no_secret_is_set_by_env_or_arg(dockerfile: list[Instruction]) -> None:
    for instruction in dockerfile:
        if instruction.keyword in ("ENV", "ARG"):
            secret_like = [name for name in env_names(instruction) if SECRET_NAME.search(name)]
            assert not secret_like, (
                f"{instruction.keyword} {secret_like}: secrets come from the environment at run time"
            )


def test_collectstatic_placeholders_live_only_on_its_run_line(dockerfile: list[Instruction]) -> None:
    (collect,) = [i for i in dockerfile if i.keyword == "RUN" and "collectstatic" in i.args]
    assert "DJANGO_SECRET_KEY=build-time-placeholder" in collect.args
    assert "DJANGO_SETTINGS_MODULE=realtime.settings.production" in [
        arg for i in final_stage(dockerfile) if i.keyword == "ENV" for arg in i.args.split()
    ]


def test_it_has_a_health_check_an_init_and_both_ports(dockerfile: list[Instruction]) -> None:
    stage = final_stage(dockerfile)
    (healthcheck,) = [i.args for i in stage if i.keyword == "HEALTHCHECK"]
    assert 'CMD ["/app/docker/entrypoint.sh", "healthcheck"]' in healthcheck
    (entrypoint,) = [i.args for i in stage if i.keyword == "ENTRYPOINT"]
    assert entrypoint == '["/usr/bin/tini", "--", "/app/docker/entrypoint.sh"]'
    assert any(re.search(r"\btini=\S+", i.args) for i in stage if i.keyword == "RUN"), "tini's version is not pinned"
    ports = {port for i in stage if i.keyword == "EXPOSE" for port in i.args.split()}
    assert ports == {"8000", "3000"}


# --- .dockerignore ---------------------------------------------------------------------------------


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(excludes, regex) per line of .dockerignore, in order; the last matching rule wins."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        rules.append((excludes, re.compile(regex)))
    return rules


def in_context(path: str) -> bool:
    """Whether a file reaches the build context: a rule that matches a path or one of its parent
    folders applies to it (Docker's semantics for folder patterns)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    included = True
    for excludes, regex in dockerignore_rules():
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            included = not excludes
    return included


@pytest.mark.parametrize(
    "path",
    [".env", ".venv/bin/python", "bin/centrifugo", "var/dev.env", "var/db.sqlite3", ".git/config",
     "node_modules/x/index.js", "staticfiles/admin/css/base.css", "tests/deploy/test_dockerfile.py",
     "callbacks/tests/test_views.py", "realtime/__pycache__/env.cpython-311.pyc", ".ruff_cache/x",
     ".pytest_cache/v", "docker-compose.yml", "nginx/render.sh", "bench/x.py", "devcluster/topology.py",
     "requirements.in", "requirements-dev.txt", "frontend/node_modules/centrifuge/dist/centrifuge.js",
     "control/static/control/vendor/centrifuge.js"],
)  # fmt: skip
def test_local_state_and_dev_files_stay_out_of_the_build_context(path: str) -> None:
    assert not in_context(path)


def test_everything_the_image_runs_is_in_the_build_context() -> None:
    needed = ["requirements.txt", "manage.py", "supervisord.conf", "docker/entrypoint.sh", "docker/secret-files.sh",
              "centrifugo/run.sh", "frontend/package.json", "frontend/package-lock.json",
              "centrifugo/config.json", "realtime/settings/production.py", "realtime/gunicorn_conf.py"]  # fmt: skip
    # Every project app in INSTALLED_APPS: a missing one would fail the build at collectstatic.
    apps = local_apps()
    assert {"realtime", "partitions", "callbacks"} <= set(apps)
    needed += [f"{app}/__init__.py" for app in apps]
    missing = [path for path in needed if not in_context(path)]
    assert not missing, f"add these to .dockerignore's allow-list: {missing}"
