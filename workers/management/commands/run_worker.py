from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from streams.catalog import UnknownStream, stream_specs
from streams.consumer import default_consumer_name
from streams.management.commands import _args
from streams.process import blocking_redis, on_stop_signals
from workers import metrics
from workers.runner import Runner
from workers.sdk import Worker


class Command(BaseCommand):
    help = "Run a backend worker (a workers.Worker subclass) on its share of its group's partitions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("worker", help="Dotted path to the Worker subclass, e.g. workers.examples.EchoWorker.")
        parser.add_argument("--name", default=default_consumer_name(), help="Worker name, unique in its group.")
        parser.add_argument("--concurrency", type=_args.positive, default=1, help="Partitions handled at once.")
        parser.add_argument("--partitions", type=_args.positive, help="Partitions per stream, without the rules.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            worker_class = import_string(options["worker"])
        except ImportError as exc:
            raise CommandError(str(exc)) from exc
        if not (isinstance(worker_class, type) and issubclass(worker_class, Worker)):
            raise CommandError(f"{options['worker']} is not a workers.Worker subclass")
        if not worker_class.group:
            raise CommandError(f"{options['worker']}.group is not set")
        try:
            specs = stream_specs(worker_class.streams, partitions=options["partitions"])
        except UnknownStream as exc:
            raise CommandError(str(exc)) from exc
        metrics.serve(settings.WORKER_METRICS_PORT)
        client = blocking_redis(block_ms=1000)
        runner = Runner(
            worker_class(name=options["name"]),
            client=client,
            keys=[key for spec in specs for key in spec.keys],
            lease_seconds=settings.WORKER_LEASE_SECONDS,
            max_deliveries=settings.WORKER_MAX_DELIVERIES,
            concurrency=options["concurrency"],
        )
        with on_stop_signals(runner.stop):
            counts = runner.run()
        client.close()
        self.stderr.write(counts.summary())
