from __future__ import annotations

import argparse
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from callbacks.management.commands import _args
from callbacks.management.commands._summary import token_describe
from control import services
from control.management.commands._actor import command_actor


class Command(BaseCommand):
    help = "Print a connection JWT (HS256) for USER; Centrifugo verifies it without calling the backend."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", type=_args.non_empty, help="User id (the 'sub' claim).")
        parser.add_argument("--ttl", type=_args.ttl, default=3600, help="Lifetime in seconds (default 3600).")
        parser.add_argument("--info", type=_args.json_value, help="JSON shown to other clients (presence, join/leave).")
        parser.add_argument(
            "--meta",
            type=_args.json_object,
            help='Private JSON for the rules, e.g. \'{"roles": ["admin"]}\' (jti, iat, exp: set by the gateway).',
        )
        parser.add_argument(
            "--proxy-only",
            action=argparse.BooleanOptionalAction,
            default=None,
            help='Usable only in the connect data ({"token": ...}), never in the connect command\'s token field,'
            " so a revoked token is refused at connect (default: TOKEN_PROXY_ONLY).",
        )

    def handle(self, *args: Any, **options: Any) -> str:
        proxy_only = settings.TOKEN_PROXY_ONLY if options["proxy_only"] is None else options["proxy_only"]
        try:
            token = services.connection_token_issue(user=options["user"], ttl=options["ttl"], info=options["info"],
                                                    meta=options["meta"], actor=command_actor("issue_connection_token"),
                                                    proxy_only=proxy_only)  # fmt: skip
        except ValueError as exc:  # a reserved meta key
            raise CommandError(f"--meta: {exc}") from None
        # Only the token on stdout, so `TOKEN=$(manage.py issue_connection_token alice)` works.
        token_describe(token, stderr=self.stderr)
        if proxy_only:
            self.stderr.write(
                'proxy-only: put it in the connect data {"token": ...}; Centrifugo refuses it as a token\n'
            )
        return token
