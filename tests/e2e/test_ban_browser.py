"""A staff user bans a user from the admin's Users page in a real browser (Debian's chromium): the
user's live client (centrifuge-python) is closed with 4505 at once and refused when it connects
again; unbanned from the same page, it connects again (issue 13, item 2, in a browser)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, expect

from control.access import DISCONNECT_BANNED
from tests.e2e import clients
from tests.e2e.test_admin_browser import browser  # noqa: F401 - the module's chromium fixture
from tests.e2e.test_live_view import staff_page
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e
T = TypeVar("T")
USER = "victim-e2e"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(var_dir=tmp_path_factory.mktemp("gateway")).start()
    created = gw.manage("createsuperuser", "--no-input", "--username", "operator", "--email", "ops@example.com")
    assert created.returncode == 0, created.stderr
    yield gw
    gw.stop()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop on its own thread: Playwright's sync API owns this thread's loop, and the
    user's client has to stay connected while the browser acts."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop

    async def drain() -> None:  # the clients' background tasks end before the loop does
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(drain(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)


def run(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)


def test_issue13_item2_a_staff_user_bans_and_unbans_from_the_users_page_in_chromium(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
    loop: asyncio.AbstractEventLoop,
    tmp_path: Path,
) -> None:
    # The token in the connect data: every connect goes through the connect proxy, which checks bans.
    data = {"token": gateway.token(USER)}  # also lists the user on the Users page (an issued token)

    async def connect() -> tuple[Any, clients.ClientEvents]:
        client, events = clients.make_client(gateway.ws_url, data=data)
        await client.connect()
        await asyncio.wait_for(events.connected.wait(), 10)
        return client, events

    client, events = run(loop, connect())
    page = staff_page(browser, gateway, f"/admin/control/users/?q={USER}")
    try:
        row = page.locator(f'tr.user-row[data-user="{USER}"]')
        expect(row).to_have_count(1, timeout=10_000)
        row.locator("input[name=reason]").fill("spam wave")
        row.locator("button[value=ban]").click()
        expect(page.locator(".messagelist")).to_contain_text(f"Banned '{USER}' until unbanned", timeout=20_000)
        page.screenshot(path=str(tmp_path / "users-banned.png"), full_page=True)

        closed = run(loop, asyncio.wait_for(events.disconnected, 20))
        assert (closed.code, closed.reason) == (DISCONNECT_BANNED, "banned: spam wave")
        refused = run(loop, clients.connect_refused(gateway.ws_url, data=data))
        assert refused.code == DISCONNECT_BANNED

        row = page.locator(f'tr.user-row[data-user="{USER}"]')
        expect(row.locator("td.ban")).to_contain_text("banned")
        row.locator("button[value=unban]").click()
        expect(page.locator(".messagelist")).to_contain_text(f"Unbanned '{USER}'", timeout=20_000)
        page.screenshot(path=str(tmp_path / "users-unbanned.png"), full_page=True)
    finally:
        page.close()
        run(loop, client.disconnect())

    # Every callback process has the unban within RULES_POLL_INTERVAL: a connect refused before
    # that (4505, which the SDK does not retry) is tried again, for at most 30 s.
    async def connect_when_unbanned() -> None:
        for _ in range(60):
            client, events = clients.make_client(gateway.ws_url, data=data)
            await client.connect()
            connected = asyncio.ensure_future(events.connected.wait())
            await asyncio.wait([connected, events.disconnected], timeout=10, return_when=asyncio.FIRST_COMPLETED)
            await client.disconnect()
            if connected.done():
                return
            connected.cancel()
            await asyncio.sleep(0.5)
        raise AssertionError("the unbanned user was still refused after 30 s")

    run(loop, connect_when_unbanned(), timeout=60)
