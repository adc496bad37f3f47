from __future__ import annotations

from django.apps import AppConfig


class PartitionsConfig(AppConfig):
    name = "partitions"
    verbose_name = "Channel rules and stream partitions"
    default_auto_field = "django.db.models.BigAutoField"
