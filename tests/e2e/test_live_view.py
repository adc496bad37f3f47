"""Issue 13, item 4, acceptance "live view", through the real parts: a staff user in Debian's chromium
(Playwright) opens the admin's live view on a channel, a real client (centrifuge-python) joins and
publishes there, and its message, its join and the presence count appear on the page (centrifuge-js
from the project's own static files, Centrifugo verifying the tokens the admin issued); a signed-in
user who is not staff gets 403. Then the message-log page's throughput plot, from the samples one
callback worker takes. Screenshots of both go to the test's tmp_path (their paths are printed)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Browser, Page, expect

from tests.e2e import clients
from tests.e2e.test_admin_browser import PASSWORD, browser  # noqa: F401 - the module's chromium fixture
from tests.support.gateway import ROOT, Gateway
from tests.support.procs import wait_for

pytestmark = pytest.mark.e2e

CHANNEL = "room:lobby"
TOKEN_TTL = 30  # LIVE_VIEW_TOKEN_TTL's minimum
RULES = """
channel_rules:
  - pattern: "room:*"
    subscribe: {access: authenticated}
    publish: {access: authenticated}
    workers: {join_leave: true}
"""
MAKE_SESSION = """
from django.contrib.auth import get_user_model
from django.test import Client
user = get_user_model().objects.create_user("player-e2e", password="pw-for-tests-only")
client = Client()
client.force_login(user)
print("SESSION", client.session.session_key)
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(var_dir=tmp_path_factory.mktemp("gateway"))
    # The browser's page is on the callbacks' port, Centrifugo on its own: scripts/run-gateway.sh
    # admits that Origin by default (README, Live view), so nothing is set for it here. One
    # throughput sample a second, so the plot fills quickly; the shortest token lifetime, so one
    # test can outlive the page's first tokens.
    gw.extra_env.update({"THROUGHPUT_SAMPLE_INTERVAL": "1", "LIVE_VIEW_TOKEN_TTL": str(TOKEN_TTL)})
    gw.start()
    imported = gw.manage("import_rules", "-", input=RULES)
    assert imported.returncode == 0, imported.stderr
    created = gw.manage("createsuperuser", "--no-input", "--username", "operator", "--email", "ops@example.com")
    assert created.returncode == 0, created.stderr
    yield gw
    gw.stop()


def staff_page(browser: Browser, gateway: Gateway, path: str) -> Page:  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{gateway.callback_url}/admin/login/?next={path}")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"**{path}")
    return page


class Publisher:
    """A centrifuge-python client on its own thread (Playwright's sync API owns this one's loop):
    connects, subscribes to CHANNEL (a join in the log), publishes `text`, stays until stopped."""

    def __init__(self, gateway: Gateway, user: str) -> None:
        self.url, self.token = gateway.ws_url, gateway.token(user)
        self.published = threading.Event()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, text: str) -> None:
        self.text = text
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self.error = exc
            self.published.set()

    async def _main(self) -> None:
        client = await clients.connected(self.url, token=self.token)
        try:
            await clients.subscribed(client, CHANNEL)
            await client.publish(CHANNEL, {"text": self.text})
            self.published.set()
            while not self._stop.is_set():
                await asyncio.sleep(0.1)
        finally:
            await client.disconnect()


def test_issue13_item4_a_staff_user_watches_a_channel_live_in_chromium(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    page = staff_page(browser, gateway, f"/admin/live/?channel={CHANNEL}")
    vendor = page.request.get(f"{gateway.callback_url}/static/control/vendor/centrifuge.js")
    assert vendor.status == 200, "centrifuge-js is not served from the project's static files"
    expect(page.locator("#live-status")).to_have_text("live", timeout=20_000)
    expect(page.locator("#live-presence")).to_have_text("0 clients, 0 users", timeout=10_000)  # the watcher is not one

    publisher = Publisher(gateway, "alice")
    publisher.start("hello from alice")
    try:
        assert publisher.published.wait(30), "the client did not publish"
        assert publisher.error is None, publisher.error
        row = page.locator("#live-messages tbody tr", has_text="hello from alice")
        expect(row).to_have_count(1, timeout=10_000)
        assert row.locator("td").nth(1).inner_text() == "alice"
        assert row.locator("td").nth(2).inner_text() == '{"text":"hello from alice"}'
        expect(page.locator("#live-joinleave tbody tr", has_text="join")).to_have_count(1, timeout=10_000)
        expect(page.locator("#live-presence")).to_have_text("1 clients, 1 users", timeout=10_000)
        shot = tmp_path / "live-view.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"live view screenshot: {shot}")
    finally:
        publisher.stop()
        page.close()
    audit = gateway.manage("shell", "-c", "from control.models import AuditEntry as A; "
                           "print([(a.actor, a.action, a.target) for a in A.objects.all()])")  # fmt: skip
    assert f"('operator', 'liveview.opened', '{CHANNEL}')" in audit.stdout, audit.stderr


def test_issue13_item4_the_view_outlives_its_first_tokens(gateway: Gateway, browser: Browser) -> None:  # noqa: F811
    page = staff_page(browser, gateway, f"/admin/live/?channel={CHANNEL}")
    renewed: list[str] = []
    page.on("request", lambda r: renewed.append(r.post_data or "") if "/admin/live/token/" in r.url else None)
    expect(page.locator("#live-status")).to_have_text("live", timeout=20_000)

    # Past both tokens' expiry: the page fetched fresh ones (getToken) and is subscribed again.
    def both_renewed() -> bool:
        page.wait_for_timeout(250)  # Playwright delivers the page's events while it is called
        return any("kind=connection" in r for r in renewed) and any("kind=subscription" in r for r in renewed)

    wait_for(both_renewed, timeout=TOKEN_TTL + 30, what="the page to renew its connection and subscription tokens")
    expect(page.locator("#live-status")).to_have_text("live", timeout=20_000)
    publisher = Publisher(gateway, "carol")
    publisher.start("after the first tokens expired")
    try:
        assert publisher.published.wait(30), "the client did not publish"
        assert publisher.error is None, publisher.error
        row = page.locator("#live-messages tbody tr", has_text="after the first tokens expired")
        expect(row).to_have_count(1, timeout=10_000)
    finally:
        publisher.stop()
        page.close()


def test_issue13_item4_a_signed_in_user_who_is_not_staff_gets_403(gateway: Gateway, browser: Browser) -> None:  # noqa: F811
    made = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", MAKE_SESSION],
        env={**gateway.env, "REDIS_URL": gateway.redis_url},  # the session store's cache, as the workers have it
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    session_key = next(line for line in made.stdout.splitlines() if line.startswith("SESSION ")).split()[1]
    context = browser.new_context()
    try:
        context.add_cookies([{"name": "sessionid", "value": session_key, "url": gateway.callback_url}])
        page = context.new_page()
        response = page.goto(f"{gateway.callback_url}/admin/live/?channel={CHANNEL}")
        assert response is not None
        assert response.status == 403
        assert page.locator("#live-config").count() == 0  # no token reached the page
        # ...and a visitor who is not signed in at all is sent to the login page.
        anonymous = browser.new_page()
        anonymous.goto(f"{gateway.callback_url}/admin/live/?channel={CHANNEL}")
        assert "/admin/login/" in anonymous.url
        anonymous.close()
    finally:
        context.close()


def test_issue13_item4_the_message_log_page_plots_throughput_and_lag(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    publisher = Publisher(gateway, "bob")
    publisher.start("for the plot")
    try:
        assert publisher.published.wait(30), "the client did not publish"
        assert publisher.error is None, publisher.error
    finally:
        publisher.stop()
    # A consumer group that has read nothing: its lag is every entry of the stream.
    store = redis.Redis.from_url(gateway.redis_url)
    for key in store.scan_iter("rtgw:stream:{default:*"):
        store.xgroup_create(key, "billing", id="0")
    page = staff_page(browser, gateway, "/admin/streams/")

    def plotted() -> bool:
        page.reload()
        published, lag = (page.locator(f"#throughput-default path.{name}") for name in ("published", "lag"))
        if not (published.count() and lag.count()):  # no sample since the group was made yet
            return False
        # Two points at least: samples from one-second slots.
        return "L" in (published.get_attribute("d") or "") and "L" in (lag.get_attribute("d") or "")

    # Generous: under a full test run the one-second sampler (one callback worker's loop) is late.
    wait_for(plotted, timeout=60, what="the plot's first line")
    plot = page.locator("#throughput-default svg")
    assert "Published per minute" in plot.inner_html()
    assert "billing: " in plot.text_content()  # type: ignore[operator]  # the legend, with the lag
    shot = tmp_path / "throughput-plot.png"
    page.locator("#throughput-default").screenshot(path=str(shot))
    print(f"throughput plot screenshot: {shot}")
    page.close()
