"""A worker process's Prometheus metrics, served on WORKER_METRICS_PORT (0: off, and then every call
here is a no-op). Labels: `group`, and `partition` as `<stream>:<n>`.

    rtgw_worker_handled_total{group, partition}        entries whose handlers returned
    rtgw_worker_failed_total{group, partition}         handler failures (each try counts)
    rtgw_worker_dead_lettered_total{group, partition}  entries moved to the dead-letter stream
    rtgw_worker_lag{group, partition}                  entries of the partition not yet read by the group
    rtgw_worker_owned_partitions{group}                partitions this process holds a lease on
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from realtime.redis import REDIS_ERRORS, Client
from workers.leases import partition_tag

_registry: CollectorRegistry | None = None
_metrics: dict[str, Any] = {}
_children: dict[tuple[str, str], PartitionCounters] = {}


class _Nothing:
    def inc(self, amount: float = 1) -> None:
        pass


@dataclass(frozen=True, slots=True)
class PartitionCounters:
    handled: Any
    failed: Any
    dead: Any


_OFF = PartitionCounters(_Nothing(), _Nothing(), _Nothing())


def serve(port: int, *, addr: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from other hosts
    """Start the /metrics HTTP server (a daemon thread); port 0 leaves metrics off."""
    global _registry
    if not port or _registry is not None:
        return
    registry = CollectorRegistry()
    labels = ("group", "partition")
    _metrics.update(
        handled=Counter("rtgw_worker_handled", "Entries whose handlers returned", labels, registry=registry),
        failed=Counter("rtgw_worker_failed", "Handler failures (each try)", labels, registry=registry),
        dead=Counter("rtgw_worker_dead_lettered", "Entries moved to dead letters", labels, registry=registry),
        lag=Gauge("rtgw_worker_lag", "Entries not yet read by the group", labels, registry=registry),
        owned=Gauge("rtgw_worker_owned_partitions", "Partitions leased by this process", ("group",), registry=registry),
    )
    start_http_server(port, addr=addr, registry=registry)
    _registry = registry


def enabled() -> bool:
    return _registry is not None


def partition(group: str, stream_key: str) -> PartitionCounters:
    if _registry is None:
        return _OFF
    found = _children.get((group, stream_key))
    if found is None:
        tag = partition_tag(stream_key)
        found = _children[group, stream_key] = PartitionCounters(
            *(_metrics[name].labels(group, tag) for name in ("handled", "failed", "dead"))
        )
    return found


def owned(group: str, count: int) -> None:
    if _registry is not None:
        _metrics["owned"].labels(group).set(count)


def lag(client: Client, group: str, stream_key: str) -> None:
    """The group's lag on one partition (XINFO GROUPS; Redis >= 7 reports it)."""
    with contextlib.suppress(*REDIS_ERRORS):
        for info in client.xinfo_groups(stream_key):
            name = info.get("name")
            if (name.decode() if isinstance(name, bytes) else name) == group and info.get("lag") is not None:
                _metrics["lag"].labels(group, partition_tag(stream_key)).set(int(info["lag"]))
