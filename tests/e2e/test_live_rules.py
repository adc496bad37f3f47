"""Rules change under running gateways: an import on one replica applies on every replica, through
real Centrifugo, with no restart; the per-rule checks reach the client as precise errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from centrifuge import ReplyError

from tests.e2e import clients
from tests.support.gateway import Gateway
from tests.support.procs import wait_for

pytestmark = pytest.mark.e2e

RULES = """
channel_rules:
  - pattern: "orders:*"
    subscribe: {access: roles, roles: [ops]}
    publish: {access: roles, roles: [ops]}
    max_payload_bytes: 64
    publish_schema: {type: object, required: [sku], properties: {sku: {type: string}}}
"""


@pytest.fixture(scope="module")
def replica(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    second = gateway.replica(Path(tmp_path_factory.mktemp("replica"))).start()
    yield second
    second.stop()


async def can_subscribe(url: str, token: str, channel: str) -> bool:
    client = await clients.connected(url, token=token)
    try:
        return (await clients.try_subscribe(client, channel))[0]
    finally:
        await client.disconnect()


def test_an_imported_rule_for_a_new_namespace_works_at_once_on_both_replicas(
    gateway: Gateway, replica: Gateway
) -> None:
    ops = gateway.token("olga", "--meta", '{"roles": ["ops"]}')
    # Before: no rule for orders:* — denied on both replicas.
    assert asyncio.run(can_subscribe(gateway.ws_url, ops, "orders:eu")) is False
    assert asyncio.run(can_subscribe(replica.ws_url, ops, "orders:eu")) is False

    result = gateway.manage("import_rules", "-", input=RULES)
    assert result.returncode == 0, result.stderr
    assert "create channel rule 'orders:*'" in result.stdout

    # The import ran in its own process: each gunicorn worker of each replica sees the new version
    # row on its next poll (RULES_POLL_INTERVAL is 0.2 s here, 0.5 s by default).
    for gw in (gateway, replica):
        wait_for(
            lambda gw=gw: asyncio.run(can_subscribe(gw.ws_url, ops, "orders:eu")),
            timeout=3,
            what=f"{gw.ws_url} to allow",
        )
    viewer = gateway.token("vic", "--meta", '{"roles": ["viewer"]}')
    assert asyncio.run(can_subscribe(replica.ws_url, viewer, "orders:eu")) is False


def test_schema_and_size_rejections_reach_the_client_precisely(gateway: Gateway, replica: Gateway) -> None:
    ops = gateway.token("olga", "--meta", '{"roles": ["ops"]}')
    gateway.manage("import_rules", "-", input=RULES)

    async def publish(data: object) -> ReplyError | None:
        client = await clients.connected(replica.ws_url, token=ops)
        try:
            await client.publish("orders:eu", data)
        except ReplyError as error:
            return error
        finally:
            await client.disconnect()
        return None

    wait_for(lambda: asyncio.run(publish({"sku": "A1"})) is None, timeout=5, what="the rule on replica 2")
    error = asyncio.run(publish({"qty": 1}))
    assert error is not None
    assert (error.code, error.message) == (
        107,
        "data does not match the channel's schema at $: 'sku' is a required property",
    )
    error = asyncio.run(publish({"sku": "x" * 100}))
    assert error is not None
    assert (error.code, error.message) == (
        106,
        "publication data is 111 bytes; the limit is 64",
    )  # {"sku": "x...x"} as the client sent it (binary_encoding: not compacted by Centrifugo)
