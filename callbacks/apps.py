from __future__ import annotations

from django.apps import AppConfig


class CallbacksConfig(AppConfig):
    name = "callbacks"
    verbose_name = "Centrifugo proxy callbacks"
