"""Connect with a Django session, through the shipped worker (gunicorn, the event-loop transport,
its thread pool, the session store): the handler gets the session key from the pipeline's `Call`,
not from a Django request (issue 10, item 1)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

from tests.support.gateway import ROOT, Gateway

MAKE_SESSION = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
user = get_user_model().objects.create_user("sess-e2e", password="pw-for-tests-only")
user.groups.add(Group.objects.get_or_create(name="editor")[0])
client = Client()
client.force_login(user)
print("SESSION", user.pk, client.session.session_key)
"""


def _connect(gateway: Gateway, cookie: str) -> dict[str, object]:
    body = json.dumps({"client": "c1", "transport": "websocket", "protocol": "json", "encoding": "json"}).encode()
    request = urllib.request.Request(
        f"{gateway.callback_url}/centrifugo/connect",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Centrifugo-Proxy-Secret": gateway.env["CENTRIFUGO_PROXY_SECRET"],
            "Cookie": cookie,
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_issue10_item1_a_session_connect_through_the_worker_reads_the_session_store(gateway: Gateway) -> None:
    made = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", MAKE_SESSION],
        env={**gateway.env, "REDIS_URL": gateway.redis_url},  # the session store's cache, as the worker has it
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    _, pk, session_key = next(line for line in made.stdout.splitlines() if line.startswith("SESSION ")).split()
    answer = _connect(gateway, f"theme=dark; sessionid={session_key}")
    result = answer["result"]
    assert isinstance(result, dict)
    assert (result["user"], result["meta"]) == (
        pk,
        {"roles": ["editor"], "auth": "session", "sid": session_key, "name": "sess-e2e"},
    )
    # A key the store does not know is no session: anonymous (as the settings allow) or refused.
    unknown = _connect(gateway, "sessionid=not-a-session")
    assert unknown.get("result", {}).get("user", "") == "" or "disconnect" in unknown  # type: ignore[union-attr]
