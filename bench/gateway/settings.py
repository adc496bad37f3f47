"""The production settings, plus bench-only URLs. BENCH_MIDDLEWARE=false drops every middleware, to
measure their cost on the Django-served variants (the fast path never runs them)."""

from __future__ import annotations

import sys

from realtime.env import env_bool, env_float
from realtime.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.gateway.urls"

if not env_bool("BENCH_MIDDLEWARE", True):
    MIDDLEWARE = []
    # The admin needs them; these benchmark processes never serve it.
    SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410"]

# Experiment knob: CPython's GIL switch interval (default 0.005 s). A thread back from Redis waits up
# to this long for the GIL while another thread runs Python code.
_switch_interval = env_float("BENCH_SWITCH_INTERVAL", 0.0)
if _switch_interval:
    sys.setswitchinterval(_switch_interval)
