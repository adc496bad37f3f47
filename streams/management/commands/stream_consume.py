from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from streams.catalog import UnknownStream, stream_specs
from streams.consumer import GroupConsumer, default_consumer_name, handler_load
from streams.management.commands import _args
from streams.process import blocking_redis, on_stop_signals


class Command(BaseCommand):
    help = "Consume every stream partition in a consumer group; ack each message after its handler returns."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--group", required=True, help="Consumer group; a new one starts at id 0 (all stored).")
        parser.add_argument("--consumer", default=default_consumer_name(), help="Name in the group (default host-pid).")
        parser.add_argument("--handler", default="streams.consumer.print_handler", help="Dotted path to f(Message).")
        parser.add_argument("--stream", action="append", metavar="NAME", help="Only this stream (repeatable).")
        parser.add_argument("--partitions", type=_args.positive, help="With --stream: this many, without the rules.")
        for flag, default, what in (
            ("--batch", 10, "Entries per read and partition"),
            ("--block-ms", 2000, "Longest wait for new entries"),
            ("--claim-idle-ms", 30_000, "Take over entries pending this long"),
            ("--max-deliveries", 5, "Dead-letter an entry the handler failed on after this many deliveries"),
        ):
            parser.add_argument(flag, type=_args.positive, default=default, help=f"{what} (%(default)s).")
        parser.add_argument("--max-messages", type=_args.positive, metavar="N", help="Stop after N messages.")

    def handle(self, *args: Any, **options: Any) -> None:
        names, partitions = options["stream"], options["partitions"]
        if partitions and not names:
            raise CommandError("--partitions needs --stream")

        def keys() -> list[str]:  # called again at every reclaim: the rules may add streams
            return [key for spec in stream_specs(names, partitions=partitions) for key in spec.keys]

        try:
            handler = handler_load(options["handler"])
            keys()  # an unknown --stream fails here, not later in the loop
        except (ImportError, TypeError, UnknownStream) as exc:
            raise CommandError(str(exc)) from exc
        client = blocking_redis(block_ms=options["block_ms"])
        tuning = {
            name: options[name] for name in ("batch", "block_ms", "claim_idle_ms", "max_messages", "max_deliveries")
        }
        consumer = GroupConsumer(
            client=client, group=options["group"], consumer=options["consumer"], keys=keys, handler=handler, **tuning
        )
        with on_stop_signals(consumer.stop):
            counts = consumer.run()
        client.close()
        self.stderr.write(counts.summary())
