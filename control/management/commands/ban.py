from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from control import when
from control.management.commands._actor import command_actor
from control.services import DisconnectFailed, user_ban


def _argument(parse: Any) -> Any:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


class Command(BaseCommand):
    help = "Ban USER: close their connections on every node and refuse them until unbanned (or --for/--until)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="The user id (a token's `sub`, a session user's primary key).")
        end = parser.add_mutually_exclusive_group()
        end.add_argument("--for", dest="duration", type=_argument(when.duration), help="e.g. 30m, 2h, 7d.")
        end.add_argument(
            "--until", type=_argument(when.moment), help="ISO 8601 (UTC without an offset) or unix seconds."
        )
        parser.add_argument("--reason", default="", help="Why: in the audit trail and the close frame.")

    def handle(self, *args: Any, **options: Any) -> str:
        user = options["user"]
        until: dt.datetime | None = options["until"]
        if options["duration"] is not None:
            until = timezone.now() + options["duration"]
        try:
            user_ban(user=user, actor=command_actor("ban"), reason=options["reason"], until=until)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        except DisconnectFailed as exc:
            raise CommandError(
                f"{user!r} IS banned (every callback refuses them within RULES_POLL_INTERVAL), but their live "
                f"connections were not closed at once: {exc}. Each one ends at its next subscribe, publish, rpc "
                "or refresh, or run `manage.py disconnect` again when Centrifugo answers."
            ) from None
        end = f"until {until.isoformat(timespec='seconds')}" if until else "until unbanned"
        return f"banned {user!r} {end}; their connections on every node are closed"
