"""The client address the admin login throttle counts by (realtime.client_ip): X-Forwarded-For is
believed only from TRUSTED_PROXIES."""

from __future__ import annotations

import ipaddress

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.test import RequestFactory
from django.test.utils import override_settings

from realtime.client_ip import Network, client_ip


def request(remote_addr: str, forwarded_for: str | None = None) -> HttpRequest:
    made = RequestFactory().post("/admin/login/", REMOTE_ADDR=remote_addr)
    if forwarded_for is not None:
        made.META["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return made


NGINX: list[Network] = [ipaddress.ip_network("10.0.0.0/8")]


@pytest.mark.parametrize(
    ("trusted", "remote_addr", "forwarded_for", "expected"),
    [
        ([], "10.0.0.2", "198.51.100.9", "10.0.0.2"),  # no trusted proxies: the header is ignored
        (NGINX, "203.0.113.7", "198.51.100.9", "203.0.113.7"),  # not from our proxy: ignored
        (NGINX, "10.0.0.2", "198.51.100.9", "198.51.100.9"),  # from nginx: the address it saw
        (NGINX, "10.0.0.2", "1.2.3.4, 198.51.100.9", "198.51.100.9"),  # left entries are the client's own
        (NGINX, "10.0.0.2", "198.51.100.9, 10.0.0.5", "198.51.100.9"),  # a chain of our proxies
        (NGINX, "10.0.0.2", None, "10.0.0.2"),
        (NGINX, "10.0.0.2", "not-an-address", "10.0.0.2"),
    ],
)
def test_the_client_address_believes_x_forwarded_for_only_from_trusted_proxies(
    trusted: list[Network], remote_addr: str, forwarded_for: str | None, expected: str
) -> None:
    with override_settings(TRUSTED_PROXIES=trusted):
        assert client_ip(request(remote_addr, forwarded_for)) == expected


def test_trusted_proxies_must_be_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    import realtime.settings.base as base

    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, nginx")
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXIES must list IP addresses or networks"):
        importlib.reload(base)
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1")
    assert [
        ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.0.2.1/32"),
    ] == importlib.reload(base).TRUSTED_PROXIES  # fmt: skip
