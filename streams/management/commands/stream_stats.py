from __future__ import annotations

from typing import Any

import msgspec
from django.core.management.base import BaseCommand, CommandParser

from realtime.redis import get_redis
from streams.catalog import stream_specs
from streams.groups import live_workers
from streams.stats import groups_table, stats_table, streams_info


class Command(BaseCommand):
    help = "Show each stream partition's length, first/last id, and its consumer groups' pending and lag."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stream", action="append", metavar="NAME", help="Only this stream (repeatable).")
        shape = parser.add_mutually_exclusive_group()
        shape.add_argument("--json", action="store_true", help="One JSON document instead of a table.")
        shape.add_argument(
            "--groups", action="store_true",
            help="One row per consumer group and partition: owner (worker lease), lag, last acked, dead letters.",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> str:
        streams = streams_info(stream_specs(options["stream"]))
        if options["json"]:
            return msgspec.json.encode(streams).decode()
        if options["groups"]:
            names = {g for stream in streams for g in stream.group_names}
            return groups_table(streams, {name: live_workers(get_redis(), name) for name in names})
        return stats_table(streams)
