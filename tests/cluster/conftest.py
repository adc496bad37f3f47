"""The cluster, started once per module: the topology `make cluster` runs, on free loopback ports,
with throwaway secrets and its PostgreSQL in a fresh temporary folder. `started_cluster` serves
modules that need another Redis kind (CLUSTER_REDIS: sentinel, cluster)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devcluster.ports import Ports
from devcluster.topology import Cluster
from tests.support.gateway import SECRETS


@contextmanager
def started_cluster(var_dir: Path, *, redis: str = "single", **env_extra: str) -> Iterator[Cluster]:
    """`env_extra`: settings for every process of the cluster (e.g. REDIS_ACK="replicated")."""
    # The pytest process carries the test settings' variables; the cluster must see only its own.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "CENTRIFUGO_", "REDIS_", "RULES_", "DATABASE_", "GATEWAY_"))
    }
    env.update(SECRETS, WEB_CONCURRENCY="1", RULES_POLL_INTERVAL="0.2", ACCESS_LOG="true", **env_extra)
    # Not under pytest's temporary folder: that one is private to us, and PostgreSQL runs as another user.
    pg_dir = Path(tempfile.mkdtemp(prefix="cluster-pg-"))
    topology = Cluster(var_dir=var_dir, ports=Ports.free(redis=redis), env=env, pg_dir=pg_dir, redis=redis)
    try:
        yield topology.start()
    finally:
        topology.stop()
        shutil.rmtree(pg_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with started_cluster(tmp_path_factory.mktemp("cluster")) as topology:
        yield topology
