"""The admin login throttle through the real gateway: gunicorn (two workers, production settings),
the attempts in the shared database, the client address from X-Forwarded-For sent by a trusted proxy
(the fixture trusts loopback, as a deployment trusts its nginx)."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import IO

import pytest

from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e

PASSWORD = "operator-password-for-tests"  # Gateway.manage sets it as DJANGO_SUPERUSER_PASSWORD


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a successful login's 302 is the answer we look at


class Browser:
    """One client address with its own cookies (session and CSRF token), as a browser would."""

    def __init__(self, gateway: Gateway, address: str) -> None:
        self.url = f"{gateway.callback_url}/admin/login/"
        self.address = address
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect
        )

    def _open(self, data: bytes | None = None) -> tuple[int, str]:
        request = urllib.request.Request(self.url, data=data, headers={"X-Forwarded-For": self.address})
        try:
            response: IO[bytes] = self.opener.open(request, timeout=10)
            with response:
                return 200, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def login(self, username: str, password: str) -> tuple[int, str]:
        status, page = self._open()
        assert status == 200, page
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert match is not None, page
        form = {"csrfmiddlewaretoken": match[1], "username": username, "password": password, "next": "/admin/"}
        return self._open(urllib.parse.urlencode(form).encode())


def test_issue9_item14_admin_login_is_locked_after_repeated_failures(gateway: Gateway) -> None:
    for name in ("lockme", "bystander"):
        created = gateway.manage("createsuperuser", "--no-input", "--username", name, "--email", f"{name}@example.com")
        assert created.returncode == 0, created.stderr
    attacker = Browser(gateway, "198.51.100.66")

    statuses = [attacker.login("lockme", f"guess-{n}")[0] for n in range(20)]
    assert statuses == [200] * 4 + [429] * 16, "the 5th wrong password (ADMIN_LOGIN_FAILURE_LIMIT) locks"
    status, page = attacker.login("lockme", PASSWORD)
    assert status == 429, "the right password is refused while locked out"
    assert "Too many failed logins" in page
    # Another username from that address, and that username from another address, log in.
    assert Browser(gateway, "198.51.100.66").login("bystander", PASSWORD)[0] == 302
    assert Browser(gateway, "203.0.113.5").login("lockme", PASSWORD)[0] == 302
    # The operator's way out (README: "Locked out of the admin").
    reset = gateway.manage("axes_reset_username", "lockme")
    assert reset.returncode == 0, reset.stderr
    assert attacker.login("lockme", PASSWORD)[0] == 302
