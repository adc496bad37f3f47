#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

from __future__ import annotations

import os
import sys


def main() -> None:
    from realtime.config import BY_NAME

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", str(BY_NAME["DJANGO_SETTINGS_MODULE"].default))
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018 - load settings now, to report bad config in one line
    except ImproperlyConfigured as exc:
        hint = ""
        if os.environ["DJANGO_SETTINGS_MODULE"].endswith(".local"):
            hint = " (`make run` creates development secrets in var/dev.env on first use)"
        sys.exit(f"configuration error: {exc}{hint}")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
