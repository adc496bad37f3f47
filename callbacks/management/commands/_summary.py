"""What an issued token carries and which settings decided it, for the token commands' stderr (stdout
holds only the token). A token the server would refuse is worse than no token: say what it holds."""

from __future__ import annotations

import datetime

import jwt
from django.conf import settings
from django.core.management.base import OutputWrapper


def token_describe(token: str, *, stderr: OutputWrapper) -> None:
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    expires = datetime.datetime.fromtimestamp(claims["exp"], tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    settings_module = str(getattr(settings, "SETTINGS_MODULE", ""))
    stderr.write(
        f"{header['alg']} token for sub={claims['sub']!r}"
        + (f" channel={claims['channel']!r}" if "channel" in claims else "")
        + f", expires {expires} (--ttl {claims['exp'] - claims['iat']} s),"
        + f" aud={claims.get('aud')!r} (TOKEN_AUDIENCE), iss={claims.get('iss')!r} (TOKEN_ISSUER);"
        + f" settings {settings_module}\n"
    )
    if settings_module.endswith(".production") and not (settings.TOKEN_AUDIENCE and settings.TOKEN_ISSUER):
        unset = " and ".join(name for name in ("TOKEN_AUDIENCE", "TOKEN_ISSUER") if not getattr(settings, name))
        stderr.write(
            f"warning: {unset} unset in this shell: if the gateway sets either, Centrifugo and the connect"
            " proxy refuse this token. Run this command with the gateway's environment.\n"
        )
