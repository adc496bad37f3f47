from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from control import services
from control.management.commands._actor import command_actor
from control.models import IssuedToken


class Command(BaseCommand):
    help = "Revoke one issued token by its jti: its connections are cut and it cannot connect again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("jti", help="The token's jti (the 'jti' claim; listed on the admin's Tokens page).")
        parser.add_argument("--reason", default="", help="Why (kept in the audit trail).")

    def handle(self, *args: Any, **options: Any) -> str:
        try:
            token = services.token_revoke(jti=options["jti"], actor=command_actor("revoke_token"),
                                          reason=options["reason"])  # fmt: skip
        except services.TokenRevokeError as exc:
            raise CommandError(str(exc)) from None
        if token.kind == IssuedToken.KIND_SUBSCRIPTION:
            # Centrifugo verifies a subscription token itself and never shows it to the backend:
            # end its live subscriptions now (README, Tokens: what a revoked subscription token can still do).
            problem = services.subscriptions_end(user=token.user, channel=token.channel)
            if problem is not None:
                self.stderr.write(f"warning: could not end {token.user!r}'s subscriptions to {token.channel!r} "
                                  f"now (Centrifugo: {problem})")  # fmt: skip
        return f"revoked {token.kind} token {token.jti} of user {token.user!r}"
