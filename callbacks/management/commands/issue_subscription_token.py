from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from callbacks.management.commands import _args
from callbacks.management.commands._summary import token_describe
from control import services
from control.management.commands._actor import command_actor


class Command(BaseCommand):
    help = "Print a subscription JWT for USER on CHANNEL; Centrifugo accepts it without the subscribe proxy."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", type=_args.non_empty, help="User id; must match the connection's user.")
        parser.add_argument("channel", type=_args.non_empty, help="Exact channel name.")
        parser.add_argument("--ttl", type=_args.ttl, default=3600, help="Lifetime in seconds (default 3600).")

    def handle(self, *args: Any, **options: Any) -> str:
        channel: str = options["channel"]
        if "*" in channel or "{" in channel:
            raise CommandError(f"CHANNEL must be an exact channel name, not a pattern: {channel!r}")
        token = services.subscription_token_issue(user=options["user"], channel=channel, ttl=options["ttl"],
                                                  actor=command_actor("issue_subscription_token"))  # fmt: skip
        token_describe(token, stderr=self.stderr)  # stdout: only the token
        return token
