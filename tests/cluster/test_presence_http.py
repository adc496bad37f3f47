"""Presence over HTTP on the multi-instance topology (issue 12 item 5): two Centrifugo nodes on the
Redis engine, two callback replicas, clients connected to different nodes. What
`GET /api/channels/<channel>/presence` answers, through either replica (each asks its own node),
equals what a subscribed client's own `presence()` returns; `/presence_stats` equals its
`presence_stats()`; neither answers without the server API key."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import jwt
import pytest

from devcluster.topology import Cluster
from tests.e2e import clients
from tests.support.gateway import SECRETS

pytestmark = pytest.mark.cluster

CHANNEL = "chat:room/presence$1"  # '/' and '$' in the name; the URL carries it percent-encoded


def token(user: str, info: Any = None) -> str:
    claims: dict[str, Any] = {"sub": user, "exp": int(time.time()) + 600}
    if info is not None:
        claims["info"] = info
    return jwt.encode(claims, SECRETS["CENTRIFUGO_TOKEN_HMAC_SECRET_KEY"], algorithm="HS256")


def api_get(base: str, path: str, key: str | None = SECRETS["GATEWAY_API_KEY"]) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Api-Key {key}"} if key is not None else {}
    request = urllib.request.Request(f"{base}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_issue12_item5_presence_over_http_equals_a_clients_presence_on_two_nodes(cluster: Cluster) -> None:
    replicas = [cluster.callback_url(i) for i in range(len(cluster.ports.callbacks))]
    path = f"/api/channels/{urllib.parse.quote(CHANNEL, safe='')}"

    async def scenario() -> tuple[dict[str, Any], Any, Any, list[tuple[int, dict[str, Any]]]]:
        alice = await clients.connected(cluster.node_ws_url(0), token=token("alice", {"name": "Alice"}))
        bob = await clients.connected(cluster.node_ws_url(1), token=token("bob"))
        bob_again = await clients.connected(cluster.node_ws_url(0), token=token("bob"))  # a second tab
        try:
            await clients.subscribed(alice, CHANNEL)
            await clients.subscribed(bob_again, CHANNEL)
            bob_sub, _ = await clients.subscribed(bob, CHANNEL)
            own = await bob_sub.presence(timeout=5)
            own_stats = await bob_sub.presence_stats(timeout=5)
            answers = [await asyncio.to_thread(api_get, url, f"{path}/presence") for url in replicas]
            answers += [await asyncio.to_thread(api_get, url, f"{path}/presence_stats") for url in replicas]
            ids = {"alice": alice.client_id, "bob": bob.client_id, "bob_again": bob_again.client_id}
            return ids, own, own_stats, answers
        finally:
            await asyncio.gather(alice.disconnect(), bob.disconnect(), bob_again.disconnect())

    ids, own, own_stats, answers = asyncio.run(asyncio.wait_for(scenario(), 60))
    presence_answers, stats_answers = answers[: len(replicas)], answers[len(replicas) :]
    expected = {
        client: {"user": info.user, "client": info.client, "conn_info": info.conn_info}
        for client, info in own.clients.items()
    }
    assert sorted(info.user for info in own.clients.values()) == ["alice", "bob", "bob"]
    assert set(expected) == set(ids.values())
    for status, body in presence_answers:  # through replica 1 (node 1) and replica 2 (node 2) alike
        assert status == 200, body
        assert body["result"]["channel"] == CHANNEL
        got = body["result"]["presence"]
        assert {c: {k: m.get(k) for k in ("user", "client", "conn_info")} for c, m in got.items()} == expected
        assert got[ids["alice"]]["name"] == "Alice"  # from the token's info, as Centrifugo returns it
        assert got[ids["bob"]]["name"] is None
    assert (own_stats.num_clients, own_stats.num_users) == (3, 2)
    for status, body in stats_answers:
        assert (status, body) == (200, {"result": {"channel": CHANNEL, "num_clients": 3, "num_users": 2}})


def test_issue12_item5_presence_over_http_needs_the_key_and_a_known_channel(cluster: Cluster) -> None:
    base = cluster.callback_url(0)
    for key, message in [(None, "send 'Authorization: Api-Key <key>'"), ("wrong", "wrong API key")]:
        for endpoint in ("presence", "presence_stats"):
            assert api_get(base, f"/api/channels/chat:x/{endpoint}", key=key) == (
                401,
                {"error": {"code": 107, "message": message}},
            )
    status, body = api_get(base, "/api/channels/nowhere:x/presence")
    assert (status, body["error"]["code"]) == (400, 102)
