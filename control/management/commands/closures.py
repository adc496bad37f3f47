from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from control.management.commands._closures import closure_line
from control.models import ChannelClosure


class Command(BaseCommand):
    help = "List the channel closures in force (--all: lifted ones too), tab-separated."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="Include closures that were reopened.")

    def handle(self, *args: Any, **options: Any) -> None:
        closures = ChannelClosure.objects.all() if options["all"] else ChannelClosure.objects.filter(enabled=True)
        self.stdout.write("id\tpattern\tstate\tcloses\tupdated\tactor\treason")
        count = 0
        for closure in closures:
            self.stdout.write(closure_line(closure))
            count += 1
        self.stderr.write(f"{count} closure(s){'' if options['all'] else ' in force'}")
