from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from control import services
from control.management.commands._actor import command_actor
from control.management.commands._closures import closure_line, validation_text


class Command(BaseCommand):
    help = "Close channels matching PATTERN for publish (and subscribe with --subscribe) on every node at once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("pattern", help="A channel-rule pattern: chat:*, orders:*:eu, news:global.")
        parser.add_argument("--reason", required=True, help="Why; refused clients get it in their error message.")
        parser.add_argument(
            "--subscribe", action="store_true", help="Also refuse subscribes; live subscriptions end within seconds."
        )
        parser.add_argument(
            "--subscribe-only", action="store_true", help="Close subscribe but leave publish open (rarely wanted)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        subscribe = options["subscribe"] or options["subscribe_only"]
        try:
            closure = services.channel_close(
                pattern=options["pattern"],
                actor=command_actor("close_channel"),
                reason=options["reason"],
                subscribe=subscribe,
                publish=not options["subscribe_only"],
            )
        except ValidationError as exc:
            raise CommandError(f"channel not closed: {validation_text(exc)}") from None
        self.stdout.write(closure_line(closure))
