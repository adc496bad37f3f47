from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from partitions.rules_io import RulesFileError, rules_import


class Command(BaseCommand):
    help = "Create or update rules from a YAML FILE (- for stdin), atomically; --dry-run shows the changes only."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="Path, or - for stdin.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Validate and print what would change; change nothing."
        )
        parser.add_argument(
            "--prune", action="store_true", help="Also delete rules of a listed section that the file omits."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["file"]
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
            document = yaml.safe_load(text)
            plan = rules_import(document, actor="import_rules", dry_run=options["dry_run"], prune=options["prune"])
        except OSError as exc:
            raise CommandError(f"cannot read {name}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise CommandError(f"{name} is not valid YAML: {exc}") from None
        except RulesFileError as exc:
            raise CommandError(f"{exc} — nothing was changed") from None
        for line in plan.changes:
            self.stdout.write(("would " if options["dry_run"] else "") + line)
        verb = "would change" if options["dry_run"] else "changed"
        self.stdout.write(
            f"{len(plan.changes)} rule(s) {verb}" if plan else "rules already match the file; nothing to do"
        )
