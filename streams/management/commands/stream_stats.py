from __future__ import annotations

from typing import Any

import msgspec
from django.core.management.base import BaseCommand, CommandParser

from streams.catalog import stream_specs
from streams.stats import stats_table, streams_info


class Command(BaseCommand):
    help = "Show each stream partition's length, first/last id, and its consumer groups' pending and lag."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stream", action="append", metavar="NAME", help="Only this stream (repeatable).")
        parser.add_argument("--json", action="store_true", help="One JSON document instead of a table.")

    def handle(self, *args: Any, **options: Any) -> str:
        streams = streams_info(stream_specs(options["stream"]))
        if options["json"]:
            return msgspec.json.encode(streams).decode()
        return stats_table(streams)
