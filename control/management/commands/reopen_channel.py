from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from control import selectors, services
from control.management.commands._actor import command_actor
from control.management.commands._closures import closure_line


class Command(BaseCommand):
    help = "Lift a channel closure, named by its pattern or its id (#12); `closures` lists them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("closure", help="The closed pattern (exactly as closed), or the closure's id: 12 or #12.")
        parser.add_argument("--reason", default="", help="Why it is lifted, for the audit.")

    def handle(self, *args: Any, **options: Any) -> None:
        closure = selectors.closure_find(options["closure"])
        if closure is None:
            raise CommandError(
                f"no closure {options['closure']!r} is in force (a pattern must be given exactly as closed); "
                "`manage.py closures` lists them"
            )
        if not closure.enabled:
            raise CommandError(f"closure #{closure.pk} ({closure.pattern}) is not in force: nothing to reopen")
        closure = services.channel_reopen(
            closure=closure, actor=command_actor("reopen_channel"), reason=options["reason"]
        )
        self.stdout.write(closure_line(closure))
