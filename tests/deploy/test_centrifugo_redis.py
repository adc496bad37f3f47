"""centrifugo/run.sh hands REDIS_URL to Centrifugo's Redis engine in a form Centrifugo v6.9.1
accepts, and the real binary runs on a real Sentinel and a real Cluster (devcluster.redis_topology)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from realtime.redis import connect
from realtime.redis_url import parse
from tests.deploy.conftest import SECRETS, clean_env, run
from tests.support.procs import ROOT, Process, free_port, http_status, wait_for

RUN_SH = str(ROOT / "centrifugo" / "run.sh")


def engine_address(tmp_path: Path, url: str) -> str:
    """CENTRIFUGO_ENGINE_REDIS_ADDRESS as run.sh exports it (a stand-in binary prints the env)."""
    fake = tmp_path / "centrifugo"
    fake.write_text("#!/bin/sh\nenv\n")
    fake.chmod(0o755)
    env = clean_env(**SECRETS, CENTRIFUGO_BIN=str(fake), CENTRIFUGO_ENGINE="redis", REDIS_URL=url)
    result = run([RUN_SH], env=env)
    assert result.returncode == 0, result.stderr
    found = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return found["CENTRIFUGO_ENGINE_REDIS_ADDRESS"]


@pytest.mark.parametrize(
    "url",
    [
        "redis://:pw@h:6379/2",
        "rediss://h:6380",
        "redis+sentinel://h1:26379/0?sentinel_master_name=gateway&addr=h2:26379",
        "rediss+sentinel://h1:26379?sentinel_master_name=gateway",
        "redis+cluster://h1:7000?addr=h2:7001",
        "rediss+cluster://u:p@h1:7000",
        "rediss+cluster://h1:7000?addr=h2:7001",
    ],
)
def test_issue11_item1_run_sh_gives_centrifugo_the_same_address_as_redis_location(tmp_path: Path, url: str) -> None:
    assert engine_address(tmp_path, url) == parse(url).centrifugo_address()


def test_issue11_item1_run_sh_maps_rediss_cluster_to_tls_enabled(tmp_path: Path) -> None:
    assert engine_address(tmp_path, "rediss+cluster://h1:7000") == "redis+cluster://h1:7000?tls_enabled=true"
    assert (
        engine_address(tmp_path, "rediss+cluster://h1:7000?addr=h2:7001")
        == "redis+cluster://h1:7000?addr=h2:7001&tls_enabled=true"
    )


def _api(port: int, method: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/{method}", data=json.dumps(body).encode(),
        headers={"X-API-Key": SECRETS["CENTRIFUGO_API_KEY"], "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


@pytest.mark.parametrize("topology_fixture", ["sentinel_topology", "cluster_topology"])
def test_issue11_item1_centrifugo_runs_its_redis_engine_on_sentinel_and_cluster(
    topology_fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    topology = request.getfixturevalue(topology_fixture)
    port = free_port()
    env = clean_env(
        **SECRETS, CENTRIFUGO_PORT=str(port), CENTRIFUGO_BIN=str(ROOT / "bin" / "centrifugo"),
        CENTRIFUGO_ENGINE="redis", REDIS_URL=topology.url,
    )  # fmt: skip
    process = Process([RUN_SH], env=env, log=tmp_path / "centrifugo.log")
    try:
        wait_for(lambda: http_status(f"http://127.0.0.1:{port}/health") == 200, timeout=20, what="Centrifugo /health")
        channel = f"issue11:{topology_fixture}"
        assert "error" not in _api(port, "publish", {"channel": channel, "data": {"n": 1}})
        history = _api(port, "history", {"channel": channel, "limit": 10})
        assert [p["data"] for p in history["result"]["publications"]] == [{"n": 1}]
        # The history is in that Redis (Centrifugo's keys), not in the node's memory.
        client = connect(parse(topology.url), socket_timeout=5)
        try:
            keys = [k.decode() for k in client.scan_iter(match="centrifugo*", count=1000)]
        finally:
            client.close()
        assert any("history" in key or "stream" in key for key in keys), keys
    finally:
        process.stop(timeout=10)
