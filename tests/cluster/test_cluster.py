"""The multi-instance topology (devcluster/topology.py, what `make cluster` runs) behaves as one
gateway: publications, presence and history cross nodes; both callback replicas serve; a rule
changed on one replica applies on the other; a client of a dead node reconnects through nginx.

Node i sends its callbacks to replica i, so a client on node 2 exercises replica 2 only."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request

import jwt
import pytest

from devcluster.topology import Cluster
from tests.e2e import clients
from tests.support.gateway import SECRETS
from tests.support.procs import http_status, wait_for

pytestmark = pytest.mark.cluster


def token(user: str) -> str:
    claims = {"sub": user, "exp": int(time.time()) + 600}
    return jwt.encode(claims, SECRETS["CENTRIFUGO_TOKEN_HMAC_SECRET_KEY"], algorithm="HS256")


def metric(url: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text page; 0 when absent (a counter not incremented yet)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        page = response.read().decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{name}(?:\{{{re.escape(wanted)}\}})? (\S+)$" if wanted else rf"^{name} (\S+)$"
    found = re.search(pattern, page, re.MULTILINE)
    return float(found[1]) if found else 0.0


def connects(cluster: Cluster, node: int) -> float:
    """Connections a node has accepted so far (a counter, updated at once, unlike the gauges)."""
    url = f"http://127.0.0.1:{cluster.ports.nodes[node]}"
    return metric(url, "centrifugo_client_command_duration_seconds_count", channel_namespace="", method="connect")


async def can_subscribe(url: str, user: str, channel: str) -> bool:
    client = await clients.connected(url, token=token(user))
    try:
        return (await clients.try_subscribe(client, channel))[0]
    finally:
        await client.disconnect()


def test_a_client_on_node_1_receives_what_a_client_on_node_2_publishes(cluster: Cluster) -> None:
    async def scenario() -> None:
        alice = await clients.connected(cluster.node_ws_url(0), token=token("alice"))
        bob = await clients.connected(cluster.node_ws_url(1), token=token("bob"))
        try:
            _, events = await clients.subscribed(alice, "chat:across")
            await bob.publish("chat:across", {"text": "from node 2"})
            pub = await asyncio.wait_for(events.publications.get(), 5)
            assert pub.data == {"text": "from node 2"}
            assert pub.tags["stream_id"], "replica 2 stored it and tagged it with the entry id"
        finally:
            await asyncio.gather(alice.disconnect(), bob.disconnect())

    asyncio.run(scenario())


def test_presence_and_history_are_shared_between_nodes(cluster: Cluster) -> None:
    async def scenario() -> None:
        alice = await clients.connected(cluster.node_ws_url(0), token=token("alice"))
        bob = await clients.connected(cluster.node_ws_url(1), token=token("bob"))
        try:
            await clients.subscribed(alice, "chat:shared")
            await alice.publish("chat:shared", {"n": 1})
            bob_sub, _ = await clients.subscribed(bob, "chat:shared")
            presence = await bob_sub.presence(timeout=5)
            assert sorted(info.user for info in presence.clients.values()) == ["alice", "bob"]
            history = await bob_sub.history(limit=10, timeout=5)
            assert [pub.data for pub in history.publications] == [{"n": 1}]
        finally:
            await asyncio.gather(alice.disconnect(), bob.disconnect())

    asyncio.run(scenario())


def test_callbacks_and_the_admin_reach_both_replicas(cluster: Cluster) -> None:
    replicas = [cluster.callback_url(i) for i in range(len(cluster.ports.callbacks))]
    published = dict(kind="publish", outcome="result")
    time.sleep(1.5)  # earlier calls reach the metric files within a second: count from after them
    before = [metric(url, "gateway_callbacks_total", **published) for url in replicas]

    async def publish_on_every_node() -> None:
        for i in range(len(cluster.ports.nodes)):
            client = await clients.connected(cluster.node_ws_url(i), token=token(f"user{i}"))
            try:
                await client.publish("chat:replicas", {"node": i})
            finally:
                await client.disconnect()

    asyncio.run(publish_on_every_node())

    def counted() -> list[float]:
        after = [metric(url, "gateway_callbacks_total", **published) for url in replicas]
        return [b - a for a, b in zip(before, after, strict=True)]

    # Each worker writes what its event loop counted once a second (realtime/observability.py).
    wait_for(lambda: counted() == [1.0, 1.0], timeout=5, what="each replica to count one publish")
    time.sleep(1.5)
    assert counted() == [1.0, 1.0]

    # The admin's entry point: nginx, round robin over the replicas (their access logs show who served).
    admin = f"http://127.0.0.1:{cluster.ports.admin}/admin/login/?probe=round-robin"
    assert [http_status(admin) for _ in range(4)] == [200] * 4
    for i in range(len(replicas)):
        log = cluster.logs / f"callback-{i + 1}.log"
        wait_for(lambda log=log: "/admin/login/?probe=round-robin" in log.read_text(), timeout=5, what=f"{log.name}")


def test_an_imported_rule_applies_on_replica_2_within_a_poll(cluster: Cluster) -> None:
    node_of_replica_2 = next(i for i in range(len(cluster.ports.nodes)) if cluster.replica_of_node(i) == 1)
    url = cluster.node_ws_url(node_of_replica_2)
    assert asyncio.run(can_subscribe(url, "carol", "ledger:eu")) is False, "no rule for ledger:* yet"

    # Like `docker compose exec callback manage.py import_rules -`: the same database, another process.
    rules = 'channel_rules:\n  - pattern: "ledger:*"\n    subscribe: {access: authenticated}\n'
    result = cluster.manage("import_rules", "-", input=rules)
    assert result.returncode == 0, result.stderr
    assert "create channel rule 'ledger:*'" in result.stdout

    # Each replica polls the rule version every RULES_POLL_INTERVAL (0.2 s here), each on its own
    # clock: replica 1 may see the change a poll after replica 2 did (a CI run caught exactly that).
    wait_for(lambda: asyncio.run(can_subscribe(url, "carol", "ledger:eu")), timeout=5, what="replica 2 to allow")
    wait_for(
        lambda: asyncio.run(can_subscribe(cluster.node_ws_url(0), "carol", "ledger:eu")),
        timeout=5,
        what="replica 1 to allow",
    )


def test_a_client_of_a_killed_node_reconnects_through_nginx_and_carries_on(cluster: Cluster) -> None:
    """Runs last: it leaves one node dead (teardown stops the rest)."""

    async def scenario() -> int:
        nodes = range(len(cluster.ports.nodes))
        before = [connects(cluster, i) for i in nodes]
        client, events = clients.make_client(cluster.ws_url, token=token("dora"))
        await client.connect()
        await asyncio.wait_for(events.connected.wait(), 10)
        sub, publications = await clients.subscribed(client, "chat:failover")
        # ip_hash sends every loopback client to the same node: find it, and kill it.
        landed = [connects(cluster, i) - before[i] for i in nodes].index(1.0)
        survivor = 1 - landed
        before = [connects(cluster, i) for i in nodes]
        events.connected.clear()
        cluster.kill_node(landed)

        await asyncio.wait_for(events.connected.wait(), 15)
        await sub.ready(timeout=10)
        assert connects(cluster, survivor) == before[survivor] + 1, "reconnected to the surviving node"
        assert http_status(f"http://127.0.0.1:{cluster.ports.nginx}/health") == 200
        witness = await clients.connected(cluster.node_ws_url(survivor), token=token("eve"))
        try:
            _, seen = await clients.subscribed(witness, "chat:failover")
            await client.publish("chat:failover", {"after": "failover"})
            assert (await asyncio.wait_for(seen.publications.get(), 5)).data == {"after": "failover"}
            await witness.publish("chat:failover", {"to": "dora"})
            received = [(await asyncio.wait_for(publications.publications.get(), 5)).data for _ in range(2)]
            assert received == [{"after": "failover"}, {"to": "dora"}]
        finally:
            await asyncio.gather(client.disconnect(), witness.disconnect())
        return landed

    landed = asyncio.run(scenario())
    # nginx tried the dead node, failed, and moved on (max_fails=1 marks it down for fail_timeout).
    error_log = (cluster.var_dir / "nginx" / "logs" / "error.log").read_text()
    assert "connect() failed (111: Connection refused)" in error_log
    assert f'upstream: "http://127.0.0.1:{cluster.ports.nodes[landed]}/connection/websocket"' in error_log
