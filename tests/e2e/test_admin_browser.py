"""An operator in a real browser (Debian's chromium, driven by Playwright) opens a new namespace in
the admin, and a client that was refused a moment before can now subscribe and publish there,
without any restart."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.e2e import clients
from tests.support.gateway import Gateway
from tests.support.procs import wait_for

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "operator-password-for-tests"
# The flags this machine needs: no sandbox as root, and no background calls to the outside world.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("chromium is not installed: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def subscribe_and_publish(url: str, token: str, channel: str) -> tuple[bool, bool]:
    """(subscribed, received own publication). Runs on its own thread: Playwright's sync API keeps
    an event loop on this one, where asyncio.run() is not allowed."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _subscribe_and_publish(url, token, channel)).result(timeout=30)


async def _subscribe_and_publish(url: str, token: str, channel: str) -> tuple[bool, bool]:
    client = await clients.connected(url, token=token)
    try:
        subscribed, events = await clients.try_subscribe(client, channel)
        if not subscribed:
            return False, False
        await client.publish(channel, {"move": "e4"})
        pub = await asyncio.wait_for(events.publications.get(), 10)
        return True, pub.data == {"move": "e4"}
    finally:
        await client.disconnect()


def test_an_operator_opens_a_new_namespace_in_the_admin(gateway: Gateway, browser: Browser, tmp_path: Path) -> None:
    created = gateway.manage("createsuperuser", "--no-input", "--username", "operator", "--email", "ops@example.com")
    assert created.returncode == 0, created.stderr
    token = gateway.token("player1")
    assert subscribe_and_publish(gateway.ws_url, token, "games:lobby") == (False, False)

    page = browser.new_page()
    page.goto(f"{gateway.callback_url}/admin/login/?next=/admin/partitions/channelrule/add/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/partitions/channelrule/add/")
    page.screenshot(path=str(tmp_path / "admin-add.png"), full_page=True)
    assert page.locator("#id_pattern").count() == 1, page.inner_text("#content")
    page.fill("#id_pattern", "games:*")
    page.select_option("#id_subscribe_access", "authenticated")
    page.select_option("#id_publish_access", "authenticated")
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/partitions/channelrule/")
    assert "games:*" in page.content()
    page.screenshot(path=str(tmp_path / "admin-after-save.png"), full_page=True)

    # The rule tester in the same session agrees with what the callbacks now do.
    page.goto(
        f"{gateway.callback_url}/admin/partitions/channelrule/tester/?user=player1&channel=games:lobby&action=publish"
    )
    assert page.inner_text("#decision h2") == "Allowed"
    assert page.inner_text(".stream-key").startswith("rtgw:stream:{default:")
    page.close()

    wait_for(
        lambda: subscribe_and_publish(gateway.ws_url, token, "games:lobby") == (True, True),
        timeout=5,
        what="the new rule to apply",
    )
