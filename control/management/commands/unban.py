from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from control.management.commands._actor import command_actor
from control.services import user_unban


class Command(BaseCommand):
    help = "End USER's ban now: their next connect is allowed (every process within RULES_POLL_INTERVAL)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="The user id, as banned.")
        parser.add_argument("--reason", default="", help="Why: in the audit trail.")

    def handle(self, *args: Any, **options: Any) -> str:
        user = options["user"]
        if not user_unban(user=user, actor=command_actor("unban"), reason=options["reason"]):
            raise CommandError(f"{user!r} is not banned: nothing changed")
        return f"unbanned {user!r}"
