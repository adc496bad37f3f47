"""Development settings: `make run` and manual `manage.py` use. Reads var/dev.env for dev secrets."""

from __future__ import annotations

import os
from pathlib import Path

_dev_env = Path(os.environ.get("VAR_DIR", Path(__file__).resolve().parent.parent.parent / "var")) / "dev.env"
if _dev_env.is_file():
    # Created by `make run` on first use; real environment variables always win.
    for _line in _dev_env.read_text(encoding="utf-8").splitlines():
        _key, _sep, _value = _line.partition("=")
        _key = _key.strip()
        # A secret given as NAME_FILE is not also filled in as NAME (realtime.env.env_secret refuses both).
        if _sep and not _line.lstrip().startswith("#") and f"{_key}_FILE" not in os.environ:
            os.environ.setdefault(_key, _value.strip())

os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("LOG_FORMAT", "plain")

from realtime.settings.base import *  # noqa: E402,F403

# Served from the apps' folders by WhiteNoise (WHITENOISE_USE_FINDERS); collectstatic is for images.
STATIC_ROOT = None
