"""Presence over HTTP through gunicorn's ASGI worker and the WSGI bridge (issue 12 item 5): the
channel in the path is decoded once by the real server ('#' as %23, ' ' as %20); a name that is
not ASCII (Centrifugo's rule for channel names) or not even UTF-8 is a 400, never a 5xx. Two nodes: tests/cluster/test_presence_http.py."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.e2e import clients
from tests.support.gateway import SECRETS, Gateway

pytestmark = pytest.mark.e2e


def api_get(gateway: Gateway, path: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{gateway.callback_url}{path}", headers={"Authorization": f"Api-Key {SECRETS['GATEWAY_API_KEY']}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_issue12_item5_the_real_server_decodes_the_channel_once(gateway: Gateway) -> None:
    token = gateway.token("ann", "--info", '{"name": "Ann"}')

    async def scenario() -> tuple[str, list[tuple[int, dict[str, Any]]]]:
        ann = await clients.connected(gateway.ws_url, token=token)
        try:
            await clients.subscribed(ann, "chat:room#1/$a b")
            answers = [
                await asyncio.to_thread(api_get, gateway, path)
                for path in (
                    "/api/channels/chat:room%231/$a%20b/presence",
                    "/api/channels/chat%3Aroom%231%2F%24a%20b/presence_stats",
                    "/api/channels/chat:%FF/presence",  # not UTF-8 (Django would keep it as '%FF')
                    "/api/channels/chat:%C3%A9/presence",  # UTF-8, not ASCII
                )
            ]
            return ann.client_id, answers
        finally:
            await ann.disconnect()

    client_id, answers = asyncio.run(asyncio.wait_for(scenario(), 60))
    presence, stats, not_utf8, not_ascii = answers
    assert presence == (
        200,
        {
            "result": {
                "channel": "chat:room#1/$a b",
                "presence": {
                    client_id: {"user": "ann", "client": client_id, "name": "Ann", "conn_info": {"name": "Ann"}}
                },
            }
        },
    )
    assert stats == (200, {"result": {"channel": "chat:room#1/$a b", "num_clients": 1, "num_users": 1}})
    assert not_utf8[0] == 400, not_utf8
    assert not_utf8[1]["error"]["code"] == 107
    assert not_ascii == (
        400,
        {
            "error": {
                "code": 107,
                "message": "channel is not ASCII: Centrifugo lets clients subscribe to ASCII channel names only: "
                "'chat:é'",
            }
        },
    )
