"""The client's address behind reverse proxies, for the admin login throttle (django-axes).

X-Forwarded-For is believed only from TRUSTED_PROXIES: anyone can send the header, so taking it from
any peer would let an attacker pick a fresh address for every guess (and lock others out by theirs).
nginx appends the address it saw ($proxy_add_x_forwarded_for), so the client is the right-most entry
that is not one of our proxies; everything left of it was written by the client and is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _is_trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or when that is a trusted proxy the right-most X-Forwarded-For entry that is not."""
    proxies: Sequence[Network] = settings.TRUSTED_PROXIES
    address: str = request.META.get("REMOTE_ADDR", "")
    if not proxies or not _is_trusted(address, proxies):
        return address
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for hop in reversed(hops):
        if not hop:
            continue
        if not _is_trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return address  # not an address: the last proxy we trust is all we know
        address = hop
    return address
