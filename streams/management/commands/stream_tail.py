from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from streams.catalog import UnknownStream, stream_specs
from streams.management.commands import _args
from streams.process import blocking_redis, on_stop_signals
from streams.tail import Tail, format_line, start_positions


class Command(BaseCommand):
    help = "Follow new messages in every stream partition, one line each: time, key, id, channel, user, data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("pattern", nargs="?", default="*", help="Channel glob, e.g. 'chat:*' (default: all).")
        start = parser.add_mutually_exclusive_group()
        start.add_argument("--since", type=_args.entry_id, metavar="ID", help="Start after this entry id.")
        start.add_argument("--from-start", action="store_true", help="Start at the oldest stored entry.")
        parser.add_argument("--stream", action="append", metavar="NAME", help="Only this stream (repeatable).")
        parser.add_argument("--count", type=_args.positive, metavar="N", help="Stop after N messages.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            keys = [key for spec in stream_specs(options["stream"]) for key in spec.keys]
        except UnknownStream as exc:
            raise CommandError(str(exc)) from exc
        client = blocking_redis(block_ms=500)
        since = "0-0" if options["from_start"] else options["since"]
        tail = Tail(client=client, positions=start_positions(client, keys, since), pattern=options["pattern"])
        tailed = 0
        with on_stop_signals(tail.stop):
            for message in tail.follow():
                self.stdout.write(format_line(message))
                self.stdout.flush()
                tailed += 1
                if tailed == options["count"]:
                    break
        client.close()
        self.stderr.write(f"tailed {tailed} messages")
