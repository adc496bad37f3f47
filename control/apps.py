from django.apps import AppConfig


class ControlConfig(AppConfig):
    """Operator controls: issued tokens and their revocation, bans, channel kill switches, and the
    audit trail of every such action (issue 13)."""

    name = "control"
    verbose_name = "Operator controls"
    default_auto_field = "django.db.models.BigAutoField"
