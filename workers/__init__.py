"""Backend workers: the SDK (workers.sdk), the runner that gives each worker process its share of
the partitions (workers.runner, workers.leases), `manage.py run_worker`."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # `workers.Worker` without importing Django-dependent modules when the app registry loads.
    if name in {"Worker", "Message", "Who", "PublishError"}:
        from workers import sdk

        return getattr(sdk, name)
    raise AttributeError(name)
