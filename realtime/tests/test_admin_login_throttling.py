"""The admin login throttle (django-axes, settings in realtime/settings/base.py) through Django's test
client. The client address it counts by: test_client_ip.py."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "the-right-password-for-tests"
LIMIT = 5  # ADMIN_LOGIN_FAILURE_LIMIT's default


@pytest.fixture
def operator() -> User:
    return User.objects.create_superuser("operator", "ops@example.com", PASSWORD)


def login(client: Client, username: str, password: str, ip: str = "203.0.113.7") -> int:
    return client.post(
        "/admin/login/", {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=ip
    ).status_code


def test_issue9_item14_admin_login_locks_a_username_and_address_out_after_the_failure_limit(operator: User) -> None:
    User.objects.create_superuser("colleague", "colleague@example.com", PASSWORD)
    client = Client()
    # The login form again (200) for each wrong password below the limit, the lockout page (429) from
    # the limit on (the issue saw 150 in a row all answered 200).
    assert [login(client, "operator", "wrong") for _ in range(20)] == [200] * (LIMIT - 1) + [429] * (21 - LIMIT)
    response = client.post("/admin/login/", {"username": "operator", "password": PASSWORD}, REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 429, "the right password is refused while locked out"
    assert b"Too many failed logins" in response.content
    assert "_auth_user_id" not in client.session
    # Another username from that address, and that username from another address: unaffected.
    assert login(Client(), "colleague", PASSWORD) == 302
    assert login(Client(), "operator", PASSWORD, ip="198.51.100.9") == 302
    # An operator lifts the lockout.
    call_command("axes_reset_username", "operator")
    assert login(client, "operator", PASSWORD) == 302


def test_a_success_below_the_limit_starts_the_count_again(operator: User) -> None:
    client = Client()
    for _ in range(LIMIT - 1):
        assert login(client, "operator", "wrong") == 200
    assert login(client, "operator", PASSWORD) == 302
    client.logout()
    for _ in range(LIMIT - 1):
        assert login(client, "operator", "wrong") == 200
    assert login(client, "operator", PASSWORD) == 302
