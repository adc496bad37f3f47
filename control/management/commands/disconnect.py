from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from control.management.commands._actor import command_actor
from control.services import DISCONNECT_BY_OPERATOR, DisconnectFailed, user_disconnect


class Command(BaseCommand):
    help = "Close every connection of USER on every Centrifugo node now (the SDK reconnects; `ban` keeps them out)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="The user id (a token's `sub`, a session user's primary key).")
        parser.add_argument("--reason", default="", help="Why: in the audit trail and the close frame.")

    def handle(self, *args: Any, **options: Any) -> str:
        user = options["user"]
        try:
            user_disconnect(user=user, actor=command_actor("disconnect"), reason=options["reason"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        except DisconnectFailed as exc:
            raise CommandError(f"{user!r} was NOT disconnected: {exc}") from None
        return f"disconnected every connection of {user!r} (code {DISCONNECT_BY_OPERATOR}: the client may reconnect)"
