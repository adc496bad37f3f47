"""`make cluster CLUSTER_REDIS=single|sentinel|cluster` (issue 11, Deliver 4) before anything starts:
the ports each kind takes from the environment, the REDIS_URL every replica and node is given,
and the messages for a wrong value. tests/cluster/test_redis_kinds.py starts the real thing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis

from devcluster.ports import Ports
from devcluster.redis_topology import ClusterRedis, SentinelRedis, SingleRedis
from devcluster.topology import Cluster
from realtime.redis_url import parse
from tests.support.gateway import SECRETS
from tests.support.procs import ROOT


def cluster(tmp_path: Path, kind: str, ports: Ports | None = None) -> Cluster:
    """Built, not started (its environments read the PostgreSQL password a first start writes)."""
    (tmp_path / "pg").mkdir(exist_ok=True)
    (tmp_path / "pg" / "password").write_text("not-started")
    return Cluster(var_dir=tmp_path, ports=ports or Ports.free(redis=kind), env=SECRETS, redis=kind)


def test_issue11_item4_single_keeps_todays_ports_and_url(tmp_path: Path) -> None:
    ports = Ports.from_env({})
    assert (ports.redis, ports.sentinels, ports.redis_bus) == ((6390,), (), ())
    assert Ports.from_env({"CLUSTER_REDIS": "single"}) == ports
    made = cluster(tmp_path, "single", ports)
    assert isinstance(made.redis_topology, SingleRedis)
    assert made.gateway_env()["REDIS_URL"] == "redis://127.0.0.1:6390/0"
    assert made.replica_env(0)["REDIS_URL"] == made.node_env(1)["REDIS_URL"] == made.redis_url


def test_issue11_item4_sentinel_defaults_and_url(tmp_path: Path) -> None:
    ports = Ports.from_env({"CLUSTER_REDIS": "sentinel"})
    assert (ports.redis, ports.sentinels, ports.redis_bus) == ((6391, 6392), (26391, 26392, 26393), ())
    made = cluster(tmp_path, "sentinel", ports)
    assert isinstance(made.redis_topology, SentinelRedis)
    location = parse(made.node_env(0)["REDIS_URL"])
    assert (location.kind, location.master_name) == ("sentinel", "gateway")
    assert location.addresses == (("127.0.0.1", 26391), ("127.0.0.1", 26392), ("127.0.0.1", 26393))
    assert made.replica_env(1)["REDIS_URL"] == made.node_env(0)["REDIS_URL"]


def test_issue11_item4_cluster_defaults_bus_ports_and_url(tmp_path: Path) -> None:
    ports = Ports.from_env({"CLUSTER_REDIS": "cluster", "CLUSTER_REDIS_PORTS": "7101,7102,7103,7104,7105,7106"})
    assert ports.redis == (7101, 7102, 7103, 7104, 7105, 7106)
    # Fixed bus ports (redis-server's default, port + 10000): a restarted cluster finds its peers.
    assert ports.redis_bus == (17101, 17102, 17103, 17104, 17105, 17106)
    assert Ports.from_env({"CLUSTER_REDIS": "cluster"}).redis == (7001, 7002, 7003, 7004, 7005, 7006)
    made = cluster(tmp_path, "cluster", ports)
    assert isinstance(made.redis_topology, ClusterRedis)
    location = parse(made.replica_env(0)["REDIS_URL"])
    assert location.kind == "cluster"
    assert [port for _, port in location.addresses] == list(ports.redis)
    argv = made.redis_topology.servers[0].extra
    assert argv[argv.index("--cluster-port") + 1] == "17101"


def test_issue11_item4_the_default_ports_of_every_kind_are_distinct() -> None:
    every: list[int] = []
    for kind in ("single", "sentinel", "cluster"):
        ports = Ports.from_env({"CLUSTER_REDIS": kind})
        every += [*ports.redis, *ports.sentinels, *ports.redis_bus]
    others = Ports.from_env({})
    every += [others.nginx, others.admin, *others.nodes, *others.callbacks, others.postgres]
    assert len(every) == len(set(every))
    assert not {6379, 26379, 3000} & set(every), "make run's Redis and callbacks, a stock Sentinel"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CLUSTER_REDIS": "sentinels"}, "CLUSTER_REDIS must be single, sentinel or cluster, not 'sentinels'"),
        (
            {"CLUSTER_REDIS": "cluster", "CLUSTER_REDIS_PORTS": "7001,7002,7003"},
            "CLUSTER_REDIS_PORTS must list 6 ports for CLUSTER_REDIS=cluster, not 3",
        ),
        (
            {"CLUSTER_REDIS": "sentinel", "CLUSTER_SENTINEL_PORTS": "26391"},
            "CLUSTER_SENTINEL_PORTS must list 3 ports for CLUSTER_REDIS=sentinel, not 1",
        ),
        (
            {"CLUSTER_REDIS_PORTS": "6391,6392"},
            "CLUSTER_REDIS_PORTS is not used with CLUSTER_REDIS=single (see scripts/cluster.sh)",
        ),
        (
            {"CLUSTER_REDIS": "cluster", "CLUSTER_REDIS_PORTS": "57001,57002,57003,57004,57005,57006"},
            "CLUSTER_REDIS_PORTS must be below 55536 (a node's bus: its port + 10000)",
        ),
        (
            {"CLUSTER_REDIS": "sentinel", "CLUSTER_REDIS_PORTS": "8000,6392"},
            "the CLUSTER_*_PORT(S) variables name a port twice",
        ),
    ],
)
def test_issue11_item4_a_wrong_redis_setting_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SystemExit) as refused:
        Ports.from_env(env)
    assert str(refused.value).startswith(message)


def test_issue11_item4_make_cluster_refuses_an_unknown_kind_before_starting_anything(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", **SECRETS, "CLUSTER_DIR": str(tmp_path / "var"), "CLUSTER_REDIS": "cluser"}
    # Should the check ever be lost, fail fast instead of starting a cluster on the default ports:
    # PostgreSQL's initdb, the first thing started, is not there.
    env["PG_BIN"] = str(tmp_path / "no-postgres")
    result = subprocess.run(
        [sys.executable, "-m", "devcluster"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stderr) == (
        1,
        "CLUSTER_REDIS must be single, sentinel or cluster, not 'cluser'\n",
    )
    assert not (tmp_path / "var").exists()


def test_issue11_item4_ports_that_do_not_fit_the_kind_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Redis cluster runs 6 servers and 0 sentinels; the ports hold 1 and 0"):
        cluster(tmp_path, "cluster", Ports.free())


def test_issue11_item4_make_cluster_restarts_a_redis_cluster_on_its_own_files(tmp_path: Path) -> None:
    """A second `make cluster CLUSTER_REDIS=cluster` finds its nodes' files (nodes.conf, AOF): the
    nodes must come back on the same bus ports (their peers remember them) and must not be sent
    to `redis-cli --cluster create`, which refuses nodes that are not empty."""
    ports = Ports.free(redis="cluster")
    steps: list[str] = []

    def topology() -> ClusterRedis:
        return ClusterRedis(tmp_path, ports=ports.redis, bus_ports=ports.redis_bus, progress=steps.append)

    def holder(started: ClusterRedis) -> redis.Redis:
        slot = int(started.servers[0].client().execute_command("CLUSTER", "KEYSLOT", "{kept}"))
        owners = started.slot_owners(started.ports[0])
        return redis.Redis(port=owners[max(start for start in owners if start <= slot)], socket_timeout=5)

    first = topology().start()
    try:
        holder(first).set("{kept}", "before the restart")
        layout = sorted((n["port"], n["role"], tuple(n["slots"])) for n in first.nodes())
    finally:
        first.stop()
    assert [s for s in steps if s.startswith("Creating the cluster")], "the first start creates it"
    steps.clear()
    second = topology().start()
    try:
        assert steps == [], "no second create"
        assert all(n["connected"] for port in second.ports for n in second.nodes(port)), "every bus link is up"
        assert sorted((n["port"], n["role"], tuple(n["slots"])) for n in second.nodes()) == layout
        assert holder(second).get("{kept}") == b"before the restart"
    finally:
        second.stop()
