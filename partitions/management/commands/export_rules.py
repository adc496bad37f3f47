from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandParser

from partitions.rules_io import rules_dump


class Command(BaseCommand):
    help = "Write every channel and partition rule as YAML to FILE (default: stdout)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", default="-", help="Path, or - for stdout.")

    def handle(self, *args: Any, **options: Any) -> None:
        text = yaml.safe_dump(rules_dump(), sort_keys=False, allow_unicode=True, width=120)
        if options["file"] == "-":
            self.stdout.write(text, ending="")
        else:
            Path(options["file"]).write_text(text, encoding="utf-8")
            self.stderr.write(f"wrote {options['file']}")
