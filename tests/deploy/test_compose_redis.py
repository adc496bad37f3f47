"""The Redis options of the multi-instance stack (issue 11, Deliver 4): docker-compose.redis-sentinel.yml
and docker-compose.redis-cluster.yml, merged into docker-compose.multi-instance.yml as compose
merges them (test_compose.merge), and the two scripts they run in the redis image, run here
against real redis-server processes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis

from devcluster.procs import free_port, wait_for
from devcluster.redis_topology import ClusterRedis, RedisServer, ping
from realtime.redis_url import parse
from tests.deploy.conftest import clean_env, run
from tests.deploy.test_compose import (
    CLUSTER,
    MULTI,
    OVERRIDES,
    REPLACED_WHOLE,
    SENTINEL,
    assert_durable_redis,
    environment,
    load,
    services,
)
from tests.support.procs import ROOT

SENTINEL_STACK, CLUSTER_STACK = f"{MULTI} + {SENTINEL}", f"{MULTI} + {CLUSTER}"
GATEWAY_SERVICES = ("centrifugo", "callback", "migrate")
SCRIPTS = ["docker/redis/sentinel.sh", "docker/redis/cluster-init.sh"]
MOUNT = "./docker/redis:/usr/local/etc/gateway-redis:ro"


def redis_servers(stack: str) -> dict[str, dict[str, Any]]:
    """The services that run redis-server itself (not a sentinel, not a one-shot)."""
    return {name: s for name, s in services(stack).items() if s.get("command", [""])[0] == "redis-server"}


def option(command: list[str], name: str) -> list[str]:
    at = command.index(name)
    return command[at + 1 : at + 3]


def redis_url(stack: str) -> str:
    urls = {environment(services(stack)[name])["REDIS_URL"] for name in GATEWAY_SERVICES}
    assert len(urls) == 1, f"the gateway services disagree on REDIS_URL: {urls}"
    return urls.pop()


# --- both overrides ------------------------------------------------------------------------------


def _walk(base: Any, override: Any, path: str) -> list[str]:
    if isinstance(override, dict) and isinstance(base, dict):
        return [p for key, value in override.items() for p in _walk(base.get(key), value, f"{path}/{key}")]
    if isinstance(base, list | dict) and path.rsplit("/", 1)[-1] not in REPLACED_WHOLE:
        return [path]
    return []


@pytest.mark.parametrize("override", OVERRIDES)
def test_issue11_item4_overrides_use_only_the_merge_rules_we_implement(override: str) -> None:
    """merge() replaces a sequence whole, as compose does for `command` and a health check's `test`
    only; an override that touched a base file's `volumes` or `ports` would be checked wrongly."""
    assert _walk(load(MULTI), load(override), "") == []


@pytest.mark.parametrize("stack", [SENTINEL_STACK, CLUSTER_STACK])
def test_issue11_item4_every_service_and_volume_referenced_exists(stack: str) -> None:
    merged = services(stack)
    named_volumes = set(load(MULTI)["volumes"]) | {
        name for override in OVERRIDES if override in stack for name in load(override)["volumes"]
    }
    for name, service in merged.items():
        assert service.get("image") or service.get("build"), f"{name}: no image (a typo in the override?)"
        for dependency in service.get("depends_on", {}):
            assert dependency in merged, f"{name} depends on {dependency}, which is no service"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source.startswith("./") or source in named_volumes, f"{name}: volume {source} is not declared"
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


@pytest.mark.parametrize("stack", [SENTINEL_STACK, CLUSTER_STACK])
def test_issue11_item4_every_redis_server_is_durable_and_pinned_like_the_base(stack: str) -> None:
    base_image = load(MULTI)["services"]["redis"]["image"]
    every_redis = [s for s in services(stack).values() if str(s.get("image", "")).startswith("redis:")]
    assert {s["image"] for s in every_redis} == {base_image}
    for name, server in redis_servers(stack).items():
        assert_durable_redis(server)
        assert option(server["command"], "--appendfsync")[0] == "everysec", name
        data = [v for v in server["volumes"] if v.endswith(":/data")]
        assert len(data) == 1, f"{name}: one volume for its data"
    data_volumes = [v for s in redis_servers(stack).values() for v in s["volumes"] if v.endswith(":/data")]
    assert len(set(data_volumes)) == len(data_volumes), "two servers share a data volume"


# --- Sentinel ------------------------------------------------------------------------------------


def test_issue11_item4_sentinel_url_names_the_three_sentinels_and_the_master_they_watch() -> None:
    stack = services(SENTINEL_STACK)
    location = parse(redis_url(SENTINEL_STACK))
    assert (location.kind, location.master_name, location.db) == ("sentinel", "gateway", 0)
    sentinels = [host for host, _ in location.addresses]
    assert sentinels == ["sentinel-1", "sentinel-2", "sentinel-3"]
    assert {port for _, port in location.addresses} == {26379}
    for name in sentinels:
        sentinel = stack[name]
        assert sentinel["command"] == ["sh", "/usr/local/etc/gateway-redis/sentinel.sh"]
        assert MOUNT in sentinel["volumes"]
        assert any(v.endswith(":/data") for v in sentinel["volumes"]), f"{name}: its rewritten config survives"
        assert environment(sentinel) == {"SENTINEL_ANNOUNCE_HOSTNAME": name}
        assert "-p 26379 ping" in sentinel["healthcheck"]["test"][1]
        assert stack[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    for gateway in ("centrifugo", "callback"):
        depends = stack[gateway]["depends_on"]
        assert {name: depends[name]["condition"] for name in sentinels} == dict.fromkeys(sentinels, "service_healthy")


def test_issue11_item4_sentinel_master_and_replica_announce_their_service_names() -> None:
    servers = redis_servers(SENTINEL_STACK)
    assert sorted(servers) == ["redis", "redis-replica"]
    for name, server in servers.items():
        assert option(server["command"], "--replica-announce-ip")[0] == name
    assert option(servers["redis-replica"]["command"], "--replicaof") == ["redis", "6379"]
    assert "--replicaof" not in servers["redis"]["command"]


# --- Cluster -------------------------------------------------------------------------------------


def test_issue11_item4_cluster_init_joins_all_six_nodes_before_the_gateway_starts() -> None:
    stack = services(CLUSTER_STACK)
    nodes = redis_servers(CLUSTER_STACK)
    assert sorted(nodes) == ["redis", "redis-2", "redis-3", "redis-4", "redis-5", "redis-6"]
    for name, node in nodes.items():
        command = node["command"]
        assert option(command, "--cluster-enabled")[0] == "yes"
        # MOVED/ASK and CLUSTER SLOTS name the service, which every container resolves.
        assert option(command, "--cluster-announce-hostname")[0] == name
        assert option(command, "--cluster-preferred-endpoint-type")[0] == "hostname"
        assert node["healthcheck"]["test"], name
    init = stack["redis-cluster-init"]
    assert init["command"][:2] == ["sh", "/usr/local/etc/gateway-redis/cluster-init.sh"]
    assert init["command"][2:] == [f"{name}:6379" for name in nodes]
    assert MOUNT in init["volumes"]
    assert init["restart"] == "no"
    assert {name: dep["condition"] for name, dep in init["depends_on"].items()} == dict.fromkeys(
        nodes, "service_healthy"
    )
    for gateway in ("centrifugo", "callback"):
        assert stack[gateway]["depends_on"]["redis-cluster-init"]["condition"] == "service_completed_successfully"


def test_issue11_item4_cluster_url_seeds_every_node() -> None:
    location = parse(redis_url(CLUSTER_STACK))
    assert location.kind == "cluster"
    assert sorted(host for host, _ in location.addresses) == sorted(redis_servers(CLUSTER_STACK))
    assert {port for _, port in location.addresses} == {6379}


# --- the scripts, run ----------------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS)
def test_issue11_item4_redis_scripts_are_strict_posix_sh(script: str) -> None:
    """The redis image is alpine: sh, no bash."""
    path = ROOT / script
    lines = path.read_text().splitlines()
    assert lines[0] == "#!/bin/sh"
    assert "set -o errexit -o nounset" in lines
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    shellcheck = run([str(ROOT / ".venv" / "bin" / "shellcheck"), "--shell=sh", script], env=clean_env())
    assert (shellcheck.returncode, shellcheck.stdout + shellcheck.stderr) == (0, "")
    assert run(["sh", "-n", script], env=clean_env()).returncode == 0


def test_issue11_item4_sentinel_script_writes_a_hostname_config_once_and_keeps_what_it_learnt(
    tmp_path: Path,
) -> None:
    master = RedisServer(tmp_path / "master", free_port(), log=tmp_path / "master.log", name="master")
    master.start(clean_env()).wait()
    port, conf = free_port(), tmp_path / "sentinel" / "sentinel.conf"
    conf.parent.mkdir()
    env = clean_env(
        SENTINEL_ANNOUNCE_HOSTNAME="localhost", SENTINEL_MASTER_HOST="localhost", SENTINEL_MASTER_PORT=str(master.port),
        SENTINEL_PORT=str(port), SENTINEL_QUORUM="1", SENTINEL_CONF=str(conf),
    )  # fmt: skip

    def sentinel() -> subprocess.Popen[str]:
        argv = ["sh", str(ROOT / "docker" / "redis" / "sentinel.sh")]
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    first = sentinel()
    try:
        wait_for(lambda: ping(port), timeout=10, what="the sentinel")
        # Hostnames in, hostnames out: clients are told the name, not an address.
        asked = redis.Redis(port=port, decode_responses=True, socket_timeout=5)
        assert asked.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "gateway") == [
            "localhost",
            str(master.port),
        ]
        text = conf.read_text()
        for line in ("sentinel resolve-hostnames yes", "sentinel announce-hostnames yes"):
            assert line in text
        assert text.index("resolve-hostnames") < text.index("sentinel monitor gateway localhost")
        assert "Generated by CONFIG REWRITE" in text, "the sentinel rewrote its file: it must be writable"
    finally:
        first.terminate()
        output = first.communicate(timeout=10)[0]
    assert f"sentinel.sh: wrote {conf}" in output
    identity = re.findall(r"^sentinel myid \w+$", conf.read_text(), re.MULTILINE)
    assert len(identity) == 1
    second = sentinel()
    try:
        wait_for(lambda: ping(port), timeout=10, what="the restarted sentinel")
    finally:
        second.terminate()
        output = second.communicate(timeout=10)[0]
        master.stop()
    assert f"sentinel.sh: reusing {conf}" in output
    assert identity[0] in conf.read_text().splitlines(), "a regenerated file would have made it a new sentinel"


def test_issue11_item4_sentinel_script_refuses_to_start_without_its_own_name(tmp_path: Path) -> None:
    result = run(["sh", "docker/redis/sentinel.sh"], env=clean_env(SENTINEL_CONF=str(tmp_path / "s.conf")))
    assert result.returncode != 0
    assert "SENTINEL_ANNOUNCE_HOSTNAME" in result.stderr
    assert not (tmp_path / "s.conf").exists()


def test_issue11_item4_cluster_init_creates_the_cluster_once_and_then_leaves_it_alone(tmp_path: Path) -> None:
    """Six real nodes, as the compose file starts them (hostnames, preferred endpoint type hostname)."""
    topology = ClusterRedis(tmp_path)
    topology.logs.mkdir()
    for server in topology.servers:
        server.extra += ("--cluster-announce-hostname", "localhost", "--cluster-preferred-endpoint-type", "hostname")
        server.start(clean_env())
    try:
        for server in topology.servers:
            server.wait()
        argv = ["sh", "docker/redis/cluster-init.sh", *(f"localhost:{port}" for port in topology.ports)]
        created = run(argv, env=clean_env(), timeout=90)
        assert created.returncode == 0, created.stdout + created.stderr
        assert created.stdout.rstrip().endswith("cluster-init.sh: the cluster is ok")
        topology.wait_ok()
        masters = topology.masters()
        assert sorted(n["port"] for n in masters) == sorted(topology.ports[:3])
        assert sum(end - start + 1 for n in masters for start, end in n["slots"]) == 16384
        # A redirect names the host as announced (a MOVED for the keys node 1 does not own).
        client = topology.servers[0].client()
        redirects = [str(exc) for key in "abcdefgh" for exc in _moved(client, key)]
        assert redirects, "node 1 owns a third of the slots: some of eight keys are elsewhere"
        assert all(text.split()[-1].startswith("localhost:") for text in redirects), redirects

        again = run(argv, env=clean_env(), timeout=90)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "the nodes already form a cluster (6 known to localhost:" in again.stdout
        assert "Performing hash slots allocation" not in again.stdout
    finally:
        topology.stop()


def _moved(client: Any, key: str) -> list[Exception]:
    try:
        client.set(key, "1")
    except redis.ResponseError as exc:  # MOVED <slot> <host>:<port>
        return [exc]
    return []
