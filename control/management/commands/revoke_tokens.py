from __future__ import annotations

import argparse
import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from control import services
from control.management.commands._actor import command_actor


def when(value: str) -> datetime.datetime:
    """ISO 8601 (a time without a zone is UTC) or unix seconds."""
    try:
        moment = datetime.datetime.fromtimestamp(float(value), tz=datetime.UTC)
    except ValueError:
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected ISO 8601 (2026-12-01T10:00:00Z) or unix seconds, got {value!r}"
            ) from None
    except (OverflowError, OSError):
        raise argparse.ArgumentTypeError(f"out of range: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


class Command(BaseCommand):
    help = "Revoke every token of USER issued before a time (default: now), then drop the user's connections."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="User id (the tokens' 'sub' claim).")
        parser.add_argument("--before", type=when, help="ISO 8601 or unix seconds (default: now).")
        parser.add_argument("--reason", default="", help="Why (kept in the audit trail).")

    def handle(self, *args: Any, **options: Any) -> str:
        user: str = options["user"]
        if not user.strip():
            raise CommandError("USER cannot be empty")
        try:
            before, marked = services.tokens_revoke(user=user, before=options["before"], reason=options["reason"],
                                                    actor=command_actor("revoke_tokens"))  # fmt: skip
        except services.TokenRevokeError as exc:
            raise CommandError(str(exc)) from None
        # The revocation is in force through the callbacks' checks already; this only makes it
        # immediate. Code 4104 lets the SDK reconnect: a token issued after the cutoff comes back.
        problem = services.user_connections_drop(user=user, code=services.DISCONNECT_RECONNECT_TOKENS_REVOKED,
                                                 reason="tokens revoked")  # fmt: skip
        if problem is not None:
            self.stderr.write(
                f"warning: Centrifugo did not drop {user!r}'s connections now ({problem}); the revocation is in "
                "force anyway: each connection is cut at its next check (README, Tokens)"
            )
        return f"revoked the tokens of user {user!r} issued before {before:%Y-%m-%dT%H:%M:%SZ} ({marked} recorded)"
