"""Every bench module imports against the code as it is now: `make bench` runs rarely, so a rename
in the gateway (a bench reusing one of its pieces) must fail here, not in the next person's bench
run. The servers' entry modules are left out: each is read by its own server process (the settings
need the environment the bench scripts set; the WSGI/ASGI modules set Django up again)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import bench

OWN_PROCESS = {"bench.gateway.settings", "bench.naive_drf.settings", "bench.gateway.asgi", "bench.gateway.wsgi",
               "bench.naive_drf.wsgi"}  # fmt: skip
MODULES = sorted(m.name for m in pkgutil.walk_packages(bench.__path__, "bench.") if m.name not in OWN_PROCESS)


def test_the_bench_has_modules_to_import() -> None:
    assert {"bench.gateway.views", "bench.workers", "bench.revocation", "bench.micro"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_bench_module_imports(name: str) -> None:
    importlib.import_module(name)
