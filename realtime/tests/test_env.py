from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from realtime.env import database_from_url, env_bool, env_int, env_secret, env_str


def test_env_bool_accepts_only_true_or_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAG", "TRUE")
    assert env_bool("FLAG", False) is True
    monkeypatch.setenv("FLAG", "yes")
    with pytest.raises(ImproperlyConfigured, match="FLAG must be 'true' or 'false', not 'yes'"):
        env_bool("FLAG", False)
    monkeypatch.delenv("FLAG")
    assert env_bool("FLAG", True) is True


def test_env_int_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("N", "abc")
    with pytest.raises(ImproperlyConfigured, match="N must be an integer, not 'abc'"):
        env_int("N", 1)
    monkeypatch.setenv("N", "0")
    with pytest.raises(ImproperlyConfigured, match="N must be >= 1, not 0"):
        env_int("N", 1, minimum=1)


def test_a_required_variable_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE", raising=False)
    with pytest.raises(ImproperlyConfigured, match="NOPE must be set in the environment"):
        env_str("NOPE")


def test_secrets_can_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "s").write_text("from-file\n")
    monkeypatch.setenv("S_FILE", str(tmp_path / "s"))
    assert env_secret("S") == "from-file"
    monkeypatch.setenv("S_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match=r"S_FILE=.* cannot be read"):
        env_secret("S")


def test_issue9_item11_name_and_name_file_both_set_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "s").write_text("from-file\n")
    monkeypatch.setenv("S_FILE", str(tmp_path / "s"))
    monkeypatch.setenv("S", "from-env")
    with pytest.raises(ImproperlyConfigured, match=r"^S and S_FILE are both set: set only one of them$"):
        env_secret("S")
    monkeypatch.setenv("S", "from-file")  # even when they agree: which one is meant is still a guess
    with pytest.raises(ImproperlyConfigured, match="S and S_FILE are both set"):
        env_secret("S")
    monkeypatch.setenv("S", "")  # empty counts as unset, as everywhere in realtime.env
    assert env_secret("S") == "from-file"


def test_database_urls(tmp_path: Path) -> None:
    assert database_from_url("D", "sqlite:///var/db.sqlite3", base_dir=tmp_path)["NAME"] == tmp_path / "var/db.sqlite3"
    assert database_from_url("D", "sqlite:////abs/db.sqlite3", base_dir=tmp_path)["NAME"] == Path("/abs/db.sqlite3")
    pg = database_from_url("D", "postgres://u:p%40ss@db:5433/gw", base_dir=tmp_path)
    assert (pg["ENGINE"], pg["NAME"], pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"]) == (
        "django.db.backends.postgresql", "gw", "u", "p@ss", "db", "5433",
    )  # fmt: skip
    with pytest.raises(ImproperlyConfigured, match="D must be a sqlite:/// or postgres:// URL"):
        database_from_url("D", "mysql://x/y", base_dir=tmp_path)


def test_issue9_item12_postgres_url_query_parameters_become_driver_options(tmp_path: Path) -> None:
    url = "postgres://u:p@db/gw?sslmode=require&connect_timeout=5&application_name=gateway%20a&options=-c%20x%3D1"
    options = database_from_url("DATABASE_URL", url, base_dir=tmp_path)["OPTIONS"]
    assert options == {
        "sslmode": "require", "connect_timeout": "5", "application_name": "gateway a", "options": "-c x=1",
    }  # fmt: skip
    assert database_from_url("DATABASE_URL", "postgres://u:p@db/gw", base_dir=tmp_path)["OPTIONS"] == {}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://db/gw?sslmod=require", "DATABASE_URL: 'sslmod' is not a PostgreSQL connection parameter"),
        ("postgres://db/gw?sslmode=requre", "DATABASE_URL: sslmode must be one of disable, allow, prefer, require"),
        ("postgres://db/gw?sslmode=require&sslmode=disable", "DATABASE_URL: 'sslmode' is given twice"),
        ("sqlite:///db.sqlite3?mode=ro", "DATABASE_URL: a sqlite:/// URL takes no query parameters, not 'mode=ro'"),
    ],
)
def test_issue9_item12_a_query_parameter_that_cannot_reach_the_driver_is_refused(
    tmp_path: Path, url: str, message: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        database_from_url("DATABASE_URL", url, base_dir=tmp_path)


@pytest.mark.parametrize(
    ("bind", "url"),
    [(None, "http://127.0.0.1:18123"), ("0.0.0.0", "http://127.0.0.1:18123"), ("10.1.2.3", "http://10.1.2.3:18123"),
     ("::", "http://127.0.0.1:18123"), ("fd00::5", "http://[fd00::5]:18123")],
)  # fmt: skip
def test_issue9_item13_centrifugo_api_url_follows_centrifugo_port_and_bind_address(
    monkeypatch: pytest.MonkeyPatch, bind: str | None, url: str
) -> None:
    from realtime.settings import base

    monkeypatch.setenv("CENTRIFUGO_PORT", "18123")
    if bind is None:
        monkeypatch.delenv("BIND_ADDRESS", raising=False)
    else:
        monkeypatch.setenv("BIND_ADDRESS", bind)
    assert base._local_centrifugo_api_url() == url
