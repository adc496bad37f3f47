"""Product code lives with the product, tests with tests (issue 10, part 4): nothing outside tests/
and the apps' tests/ folders imports from them, and `make cluster` runs a product module."""

from __future__ import annotations

import ast
import io
import os
import re
import subprocess
import sys
import tokenize
import tomllib
from collections.abc import Iterator
from pathlib import Path

from tests.support.gateway import SECRETS
from tests.support.procs import ROOT

# bench/ is left out: bench/subrefresh.py starts its gateway with the tests' harness
# (tests/support/gateway.py) on purpose, to measure what the tests run.
PRODUCT = ["devcluster", "realtime", "callbacks", "partitions", "streams", "workers", "control"]


def _imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_issue10_item4_product_code_imports_nothing_from_tests() -> None:
    offenders = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "tests" in path.relative_to(ROOT).parts:
                continue
            offenders += [
                f"{path.relative_to(ROOT)} imports {name}"
                for name in _imported_modules(path)
                if name == "tests" or name.startswith("tests.")
            ]
    assert (ROOT / "devcluster" / "topology.py").is_file(), "the topology runner belongs to the product"
    assert offenders == []


def test_issue10_item4_make_cluster_runs_the_product_module(tmp_path: Path) -> None:
    script = (ROOT / "scripts" / "cluster.sh").read_text()
    assert 'exec python -m devcluster "$@"' in script
    # The runner starts from the product alone: run it with tests/ out of reach (the working
    # directory is not the checkout; a folder holding the product packages only is on the path:
    # devcluster builds its REDIS_URL with realtime.redis_url), for a cluster that does not
    # exist, so it answers without starting anything.
    root_only = tmp_path / "root"
    root_only.mkdir()
    for package in PRODUCT:
        (root_only / package).symlink_to(ROOT / package)
    env = {**os.environ, **SECRETS, "CLUSTER_DIR": str(tmp_path / "none"), "PYTHONPATH": str(root_only)}
    result = subprocess.run(
        [sys.executable, "-m", "devcluster", "manage", "check"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert f"no cluster in {tmp_path / 'none'}: start it first (make cluster)" in result.stderr


# A benchmark figure: a number with a unit of time or rate, or a percentage.
FIGURE = re.compile(r"\b\d[\d,.]*\s?(?:us|µs|ms|k?/s|req/s|publishes/s|XADD/s)\b|\d\s?%", re.IGNORECASE)


def _docstrings_and_comments(path: Path) -> Iterator[tuple[int, str]]:
    source = path.read_text()
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node, clean=False)
            if docstring:
                yield getattr(node, "lineno", 1), docstring
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def test_issue10_item4_benchmark_figures_live_in_bench_results_not_in_docstrings() -> None:
    """Figures in docstrings go stale: they are kept, dated, in bench/RESULTS.md, and the code points there."""
    found = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if {"tests", "migrations"} & set(path.relative_to(ROOT).parts):
                continue
            for line, text in _docstrings_and_comments(path):
                found += [f"{path.relative_to(ROOT)}:{line}: {m[0]!r}" for m in FIGURE.finditer(text)]
    assert found == [], "move these figures to bench/RESULTS.md (dated, with the command) and refer to it"
    results = (ROOT / "bench" / "RESULTS.md").read_text()
    for module in ("callbacks/fastpath.py", "realtime/gunicorn_conf.py", "streams/idempotency.py"):
        assert "bench/RESULTS.md" in (ROOT / module).read_text()
    assert "python -m bench.micro" in results
    assert re.search(r"\b20\d\d-\d\d-\d\d\b", results)


def test_every_tests_folder_is_collected_by_make_test() -> None:
    """`make test` runs pytest's testpaths: an app whose tests/ folder is missing there has tests
    that CI never runs (workers/ and control/ were, until this test)."""
    testpaths = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["testpaths"]
    folders = {path.parent.parent.name for path in ROOT.glob("*/tests/__init__.py")}
    assert folders, "no app tests/ folder found: the glob is wrong"
    assert folders <= set(testpaths), f"tests folders pytest does not collect: {sorted(folders - set(testpaths))}"
    assert "tests" in testpaths
    assert set(PRODUCT) - {"devcluster"} <= folders | {"realtime"}
