"""Product code uses the pinned packages' public APIs; the one exception, prometheus_client's
histogram cells, lives in realtime.histogram_cells with its own version test. A private name
of gunicorn, redis-py or prometheus_client anywhere else works until the next upgrade, then
breaks silently: this fails first, naming the place."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("callbacks", "partitions", "streams", "realtime")
PROJECT_PACKAGES = {*PRODUCT, "bench", "tests"}
ADAPTER = Path("realtime/histogram_cells.py")

# The private names issue 10 found in use, by package.
PRIVATE = {
    "prometheus_client histogram cells": re.compile(r"\._(sum|buckets|upper_bounds)\b"),
    "gunicorn asgi worker internals": re.compile(
        r"\bgasgi\b|\bASGIProtocol\b|_body_receiver|_keepalive_timeout|_awaiting_request"
    ),
    "redis-py connection internals": re.compile(r"\.(get_connection|send_command|read_response)\("),
}


def product_modules() -> list[Path]:
    return sorted(
        path.relative_to(ROOT)
        for package in PRODUCT
        for path in (ROOT / package).rglob("*.py")
        if "tests" not in path.relative_to(ROOT).parts
    )


def test_issue10_item2_no_private_name_of_a_pinned_package_outside_its_adapter() -> None:
    found = [
        f"{path}:{number}: {what}: {line.strip()}"
        for path in product_modules()
        if path != ADAPTER
        for number, line in enumerate((ROOT / path).read_text().splitlines(), start=1)
        for what, pattern in PRIVATE.items()
        if pattern.search(line)
    ]
    assert not found, (
        "use the public API, or isolate the private use in one adapter with a version test:\n" + "\n".join(found)
    )


def test_issue10_item2_no_module_global_of_an_installed_package_is_overwritten() -> None:
    """`some_package.NAME = ...` changes that package for everyone and survives no refactor of it."""
    found = []
    for path in product_modules():
        tree = ast.parse((ROOT / path).read_text())
        imported = {
            alias.asname or alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            and not (
                isinstance(node, ast.ImportFrom)
                and (node.level or (node.module or "").split(".")[0] in PROJECT_PACKAGES)
            )
            for alias in node.names
            if not (isinstance(node, ast.Import) and alias.name.split(".")[0] in PROJECT_PACKAGES)
        }
        for node in ast.walk(tree):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AugAssign | ast.AnnAssign)
                else []
            )
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id in imported
                ):
                    found.append(f"{path}:{node.lineno}: {ast.unparse(target)}")
    assert not found, "a package's module global is overwritten (use its public extension point):\n" + "\n".join(found)


def test_the_scan_sees_the_product_and_the_adapter() -> None:
    modules = product_modules()
    assert ADAPTER in modules
    assert Path("streams/writer.py") in modules
    assert Path("realtime/gunicorn_worker.py") in modules
