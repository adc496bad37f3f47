"""DATABASE_URL's query parameters reach psycopg: checked against a real local PostgreSQL (the one the
cluster tests start, devcluster/postgres.py), which has no SSL configured."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import ConnectionHandler
from pytest_django import DjangoDbBlocker

from devcluster.postgres import Postgres
from realtime.env import database_from_url
from tests.support.procs import free_port


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    # Not under pytest's temporary folder: that one is private to us, and PostgreSQL may run as another user.
    folder = Path(tempfile.mkdtemp(prefix="dburl-pg-"))
    server = Postgres(folder, port=free_port(), log=folder / "postgres.log")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    try:
        server.initdb(env)
        server.start(env)
        server.wait_ready(timeout=60)
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


Connect = Callable[[str], BaseDatabaseWrapper]


@pytest.fixture
def connect(django_db_blocker: DjangoDbBlocker) -> Iterator[Connect]:
    """connect(url): Django's own connection for DATABASE_URL=url, opened the way the gateway opens it."""
    opened: list[BaseDatabaseWrapper] = []

    def _connect(url: str) -> BaseDatabaseWrapper:
        handler = ConnectionHandler({"default": database_from_url("DATABASE_URL", url, base_dir=Path("."))})
        connection = handler["default"]
        opened.append(connection)
        connection.ensure_connection()
        return connection

    with django_db_blocker.unblock():
        yield _connect
        for connection in opened:
            connection.close()


def test_issue9_item12_sslmode_reaches_the_driver(postgres: Postgres, connect: Connect) -> None:
    url = postgres.url("postgres")
    with pytest.raises(OperationalError, match="server does not support SSL, but SSL was required"):
        connect(f"{url}?sslmode=require")
    connection = connect(f"{url}?sslmode=disable&application_name=gateway-test&connect_timeout=5")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT application_name, ssl FROM pg_stat_activity JOIN pg_stat_ssl USING (pid)"
            " WHERE pid = pg_backend_pid()"
        )
        assert cursor.fetchone() == ("gateway-test", False)
