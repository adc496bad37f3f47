"""The production settings as an operator meets them: `manage.py` in a clean environment."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def readme_production_values() -> dict[str, str]:
    """The block after `<!-- production-values -->` in the README, each <secret> a fresh secret."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- production-values -->\n```sh\n(.*?)\n```", readme, re.DOTALL)
    assert block, "README lost its production-values block"
    values = {}
    for line in block.group(1).splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            values[name] = secrets.token_urlsafe(48) if value == "<secret>" else value
    return values


def manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "VAR_DIR": str(tmp_path), **env}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=clean, capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip


def test_issue9_item9_check_deploy_with_the_readme_values_warns_only_about_preload(tmp_path: Path) -> None:
    values = readme_production_values()
    assert values["DJANGO_SETTINGS_MODULE"] == "realtime.settings.production"
    result = manage(tmp_path, "check", "--deploy", **values)
    assert result.returncode == 0, result.stderr
    # The README explains the one warning left: HSTS preload is opt-in (it is slow to undo).
    assert set(re.findall(r"\((security\.\w+)\)", result.stdout + result.stderr)) == {"security.W021"}, result.stderr


@pytest.mark.parametrize(
    ("name", "minimum"),
    [
        ("CENTRIFUGO_TOKEN_HMAC_SECRET_KEY", 32),
        ("CENTRIFUGO_PROXY_SECRET", 32),
        ("CENTRIFUGO_API_KEY", 32),
        ("GATEWAY_API_KEY", 32),
        ("DJANGO_SECRET_KEY", 50),
    ],
)
def test_issue9_item9_a_short_secret_stops_the_production_settings(tmp_path: Path, name: str, minimum: int) -> None:
    values = readme_production_values()
    values[name] = "k" * (minimum - 1)
    result = manage(tmp_path, "check", **values)
    assert result.returncode != 0
    assert f"{name} is {minimum - 1} characters; production needs at least {minimum}" in result.stderr


def test_issue9_item9_a_django_secret_key_of_few_different_characters_is_refused(tmp_path: Path) -> None:
    result = manage(tmp_path, "check", **{**readme_production_values(), "DJANGO_SECRET_KEY": "abcd" * 20})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must have at least 5 different characters" in result.stderr


def test_the_readme_values_pass_the_minimum_exactly_at_it(tmp_path: Path) -> None:
    values = {**readme_production_values(), "CENTRIFUGO_PROXY_SECRET": secrets.token_urlsafe(48)[:32]}
    assert manage(tmp_path, "check", **values).returncode == 0


def test_ssl_redirect_sends_the_admin_to_https_and_spares_the_internal_paths(tmp_path: Path) -> None:
    script = (
        "from django.test import Client\n"
        "c = Client(raise_request_exception=False)\n"
        "for path in ('/admin/', '/health', '/metrics', '/centrifugo/connect', '/api/publish'):\n"
        "    r = c.post(path) if path.startswith(('/centrifugo', '/api')) else c.get(path)\n"
        "    print(path, r.status_code, r.get('Location', ''))\n"
    )
    values = {**readme_production_values(), "ALLOWED_HOSTS": "testserver", "REDIS_URL": "redis://127.0.0.1:1"}
    result = manage(tmp_path, "shell", "-c", script, **values)
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if line.startswith("/"))
    assert lines["/admin/"] == "301 https://testserver/admin/", result.stdout + result.stderr
    for path in ("/health", "/metrics", "/centrifugo/connect", "/api/publish"):
        assert not lines[path].startswith("301"), (path, lines[path])
