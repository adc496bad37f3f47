"""realtime.gunicorn_conf without reuse_port (tuning: what the per-worker sockets buy)."""

from __future__ import annotations

from realtime.gunicorn_conf import *  # noqa: F403

reuse_port = False
