"""One pipeline for every transport (issue 10, item 1): a handler sees a typed struct and a
`Call`, never a transport's request; a kind is one handler and one routing line; both transports
keep the same request-id bound."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.urls import clear_url_caches

from callbacks.handlers import ConnectHandler
from callbacks.pipeline import Call
from callbacks.protocol import ConnectRequest
from callbacks.tests.conftest import BASE
from realtime.observability import REQUEST_ID_MAX
from tests.support.asgi import asgi_request, in_test_thread

pytestmark = pytest.mark.django_db
SECRET = {"X-Centrifugo-Proxy-Secret": settings.CENTRIFUGO_PROXY_SECRET}


def both(client: Client, path: str, body: dict[str, object], app: object = None, **headers: str) -> list[object]:
    """[(status, answer, X-Request-Id)] through the DRF view (Django's test client) and the ASGI app."""
    raw = json.dumps({**BASE, **body}).encode()
    drf = client.post(path, raw, content_type="application/json", headers={**SECRET, **headers})
    sent = {**SECRET, "Content-Type": "application/json", "Content-Length": str(len(raw)), **headers}
    asgi = asgi_request(path, raw, headers=sent, app=app)
    return [
        (drf.status_code, json.loads(drf.content), drf.headers.get("X-Request-Id")),
        (asgi.status, json.loads(asgi.body), asgi.headers.get("x-request-id")),
    ]


@pytest.fixture
def custom_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The project with callbacks/tests/custom_urls.py as its URLconf, and the ASGI app built on it."""
    from callbacks.fastpath import ProxyFastPath
    from realtime.asgi import django_application
    from realtime.wsgi_bridge import WsgiInThreads

    with override_settings(ROOT_URLCONF="callbacks.tests.custom_urls"), in_test_thread(monkeypatch):
        clear_url_caches()
        try:
            yield ProxyFastPath(WsgiInThreads(django_application))
        finally:
            clear_url_caches()


def test_issue10_item1_a_new_callback_kind_is_one_handler_and_one_route(client: Client, custom_app: object) -> None:
    from callbacks.fastpath import ProxyFastPath

    assert isinstance(custom_app, ProxyFastPath)
    assert "/centrifugo/echo" in custom_app.handlers  # served on the loop, not handed to Django
    answers = both(client, "/centrifugo/echo", {"user": "42", "word": "hello"}, app=custom_app)
    assert [a[:2] for a in answers] == [(200, {"result": {"word": "hello", "user": "42"}})] * 2
    # The pipeline's checks come with it: a body that is not the kind's struct is a 107 on both.
    bad = both(client, "/centrifugo/echo", {"user": "42"}, app=custom_app)
    assert [a[1]["error"]["code"] for a in bad] == [107, 107]  # type: ignore[index]


def test_issue10_item1_the_readme_custom_rpc_method_answers_on_both_transports(
    client: Client, custom_app: object, redis_url: str
) -> None:
    from callbacks.fastpath import ProxyFastPath
    from callbacks.tests.custom_urls import ServerTimeRpc

    assert isinstance(custom_app, ProxyFastPath)
    assert isinstance(custom_app.handlers["/centrifugo/rpc"], ServerTimeRpc)  # the first route wins, as in Django
    answers = both(client, "/centrifugo/rpc", {"user": "42", "method": "server_time"}, app=custom_app)
    assert [(status, type(answer["result"]["data"]["unix"])) for status, answer, _ in answers] == [(200, int)] * 2  # type: ignore[index]
    # The shipped methods still answer through the override.
    shipped = both(client, "/centrifugo/rpc", {"user": "42", "method": "nope"}, app=custom_app)
    assert [a[1]["error"]["code"] for a in shipped] == [104, 104]  # type: ignore[index]


def test_issue10_item1_connect_reads_the_session_from_its_typed_input_not_a_request(client: Client) -> None:
    user = User.objects.create_user("typed", password="pw-for-tests-only")
    client.force_login(user)
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    handler = ConnectHandler()
    answer = json.loads(handler.handle(ConnectRequest(client="c"), Call(session_key=session_key)))
    assert (answer["result"]["user"], answer["result"]["meta"]["auth"]) == (str(user.pk), "session")
    assert json.loads(handler.handle(ConnectRequest(client="c"), Call(session_key="nope")))["result"]["user"] == ""


def test_issue10_item1_the_request_id_is_capped_alike_on_both_transports(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    with in_test_thread(monkeypatch):
        answers = both(
            client, "/centrifugo/subscribe", {"user": "42", "channel": "chat:1"}, **{"X-Request-Id": "r" * 500}
        )
    assert [a[2] for a in answers] == ["r" * REQUEST_ID_MAX] * 2
