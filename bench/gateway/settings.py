"""The production settings, plus bench-only URLs. BENCH_MIDDLEWARE=false drops every middleware, to
measure their cost on the Django-served variants (the fast path never runs them)."""

from __future__ import annotations

from realtime.env import env_bool
from realtime.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.gateway.urls"

if not env_bool("BENCH_MIDDLEWARE", True):
    MIDDLEWARE = []
    # The admin needs them; these benchmark processes never serve it.
    SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410"]
