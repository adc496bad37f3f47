"""JWTs: the ones operators issue (connection and subscription tokens Centrifugo verifies itself)
and the check of a token a client sends in its connect data (the connect proxy verifies that one).

A proxy-only connection token (`issue_connection_token --proxy-only`, TOKEN_PROXY_ONLY) is signed
with a key derived from CENTRIFUGO_TOKEN_HMAC_SECRET_KEY that Centrifugo does not have
(`proxy_only_key`) and carries the header `kid: rtgw-proxy-only`: Centrifugo refuses it in the
connect command's `token` field (invalid token, 3500: its HMAC verifier ignores `kid`), so it
connects only in the connect data, through the connect proxy, which refuses a revoked one at once.
The `kid` picks the key here: with it, only the derived key; without it (or any other `kid`), only
the main key, so neither key verifies the other kind's token.

The connect proxy accepts exactly what Centrifugo v6.9.1's HMAC verifier (internal/jwtverify)
accepts for a token in the connect command, so a token works the same in either place:
- HS256, HS384 or HS512 with CENTRIFUGO_TOKEN_HMAC_SECRET_KEY (a proxy-only token: with the
  derived key; the connect proxy only, that is the point). The algorithm family is pinned to
  HMAC: "none", RS* and ES* are refused, so a token cannot choose how it is verified.
- `exp` and `nbf` are checked when present, with no leeway; a token without `exp` never expires
  (Centrifugo's rule; the commands here always set one). `iat` is not checked.
- `aud` / `iss` must match TOKEN_AUDIENCE / TOKEN_ISSUER when those are set (Centrifugo gets the
  same values from centrifugo/run.sh).
- `sub` must be a non-empty string: centrifugo/config.json sets
  `client.disallow_anonymous_connection_tokens`, so Centrifugo refuses a token without a user too.
- A `channel` claim marks a subscription token, which both refuse as a connection token.
- `expire_at`, when present, replaces `exp` as the time the connection must be refreshed (0: never).
The one difference (README, Tokens): `meta` must be a JSON object here, since the rules read roles
from it; Centrifugo keeps any JSON value as meta, and the rules then see no roles."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
import msgspec
from django.conf import settings

from callbacks.enrichment import name_in_info

# What Centrifugo's verifier accepts with an HMAC key; tokens issued here use the first.
ALGORITHMS = ("HS256", "HS384", "HS512")
ISSUE_ALGORITHM = "HS256"
# The `kid` header of a proxy-only connection token, and what its key is derived with.
PROXY_ONLY_KID = "rtgw-proxy-only"
_PROXY_ONLY_LABEL = b"rtgw proxy-only connection tokens"


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    user: str
    expire_at: int
    info: Any
    meta: dict[str, Any]
    jti: str = ""  # "" when the token has none (or not a string): revocable by user cutoff only
    iat: int | None = None


class TokenRejected(Exception):
    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


@functools.lru_cache(maxsize=4)
def _derived_key(key: str) -> bytes:
    return hmac.new(key.encode(), _PROXY_ONLY_LABEL, hashlib.sha512).digest()


def proxy_only_key() -> bytes:
    """The key of proxy-only connection tokens: HMAC-SHA512(CENTRIFUGO_TOKEN_HMAC_SECRET_KEY, label),
    64 bytes (long enough for HS512). Centrifugo never gets it; it changes with the main key."""
    return _derived_key(settings.CENTRIFUGO_TOKEN_HMAC_SECRET_KEY)


_decode_header = msgspec.json.Decoder().decode


def _verification_key(token: str) -> str | bytes:
    """The derived key for a token whose header says `kid: rtgw-proxy-only`, else the main key. Read
    with the standard library and msgspec (a twentieth of PyJWT's get_unverified_header:
    bench/RESULTS.md; no PyJWT internals): a header that does not parse gets the main key, and
    PyJWT's decode then refuses it with its precise reason, as before."""
    segment = token.partition(".")[0]
    try:
        header = _decode_header(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, msgspec.DecodeError, RecursionError):  # not base64url (non-ASCII too), not JSON
        header = None
    if isinstance(header, dict) and header.get("kid") == PROXY_ONLY_KID:
        return proxy_only_key()
    key: str = settings.CENTRIFUGO_TOKEN_HMAC_SECRET_KEY
    return key


def token_verify(token: str) -> VerifiedToken:
    try:
        claims = jwt.decode(
            token,
            _verification_key(token),
            algorithms=list(ALGORITHMS),
            audience=settings.TOKEN_AUDIENCE,
            issuer=settings.TOKEN_ISSUER,
            options={"require": ["sub"], "verify_aud": settings.TOKEN_AUDIENCE is not None, "verify_iat": False},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRejected("token expired", expired=True) from None
    except jwt.ImmatureSignatureError:
        # Centrifugo answers a token that is not valid yet (nbf) like an expired one.
        raise TokenRejected("token not valid yet", expired=True) from None
    except jwt.InvalidTokenError as exc:
        raise TokenRejected(f"invalid token: {exc}") from None
    user = claims["sub"]
    meta = claims.get("meta", {})
    if not isinstance(user, str) or not user:
        raise TokenRejected("invalid token: 'sub' must be a non-empty string")
    if not isinstance(meta, dict):
        raise TokenRejected("invalid token: 'meta' must be an object")
    if claims.get("channel"):
        raise TokenRejected("invalid token: a connection token cannot carry a 'channel' claim")
    jti, iat = claims.get("jti"), claims.get("iat")
    return VerifiedToken(
        user=user,
        expire_at=_expire_at(claims),
        info=claims.get("info"),
        meta=meta,
        jti=jti if isinstance(jti, str) else "",
        iat=int(iat) if isinstance(iat, int | float) and not isinstance(iat, bool) else None,
    )


def _expire_at(claims: dict[str, Any]) -> int:
    """When the connection must be refreshed, as Centrifugo reads it: `expire_at` if present
    (0 or less: never), else `exp`, else never."""
    value = claims.get("expire_at", claims.get("exp"))
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRejected("invalid token: 'expire_at' must be a number")
    return max(int(value), 0)


def token_claims_common(*, user: str, ttl: int) -> dict[str, Any]:
    """The claims every issued token carries: the user, its lifetime, and the audience/issuer
    Centrifugo checks when TOKEN_AUDIENCE/TOKEN_ISSUER are set (for both kinds of token: without
    `client.subscription_token` in its config, Centrifugo verifies subscription tokens with the
    connection-token settings)."""
    now = int(time.time())
    # `jti`: what `manage.py revoke_token` names (control.IssuedToken records it, never the token).
    claims: dict[str, Any] = {"sub": user, "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex}
    if settings.TOKEN_AUDIENCE:
        claims["aud"] = settings.TOKEN_AUDIENCE
    if settings.TOKEN_ISSUER:
        claims["iss"] = settings.TOKEN_ISSUER
    return claims


# Meta keys the gateway sets in a connection token's `meta` claim: an operator's meta may not.
RESERVED_META = frozenset({"jti", "iat", "exp"})


def connection_token_claims(
    *, user: str, ttl: int, info: Any = None, meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The claims of a connection token. Its `meta` carries the token's jti, iat and exp: Centrifugo
    verifies this token itself and keeps the meta claim as the connection's meta, which is how
    every callback (and the refresh proxy) can tell a revoked token's connection."""
    reserved = RESERVED_META & set(meta or ())
    if reserved:
        raise ValueError(f"meta may not set {', '.join(sorted(reserved))}: the gateway sets them")
    claims = token_claims_common(user=user, ttl=ttl)
    if info is not None:
        claims["info"] = info
        name = name_in_info(info)
        if name is not None and not (meta and "name" in meta):
            # Centrifugo does not send a connection's info to the publish proxy, only its meta:
            # the name there is what enriched publications carry (callbacks.enrichment).
            meta = {**(meta or {}), "name": name}
    claims["meta"] = {**(meta or {}), "jti": claims["jti"], "iat": claims["iat"], "exp": claims["exp"]}
    return claims


def token_encode(claims: dict[str, Any], *, proxy_only: bool = False) -> str:
    """`proxy_only`: a connection token only the connect proxy accepts (module docstring)."""
    if proxy_only:
        return jwt.encode(claims, proxy_only_key(), algorithm=ISSUE_ALGORITHM, headers={"kid": PROXY_ONLY_KID})
    return jwt.encode(claims, settings.CENTRIFUGO_TOKEN_HMAC_SECRET_KEY, algorithm=ISSUE_ALGORITHM)


def connection_token_issue(
    *, user: str, ttl: int, info: Any = None, meta: dict[str, Any] | None = None, proxy_only: bool = False
) -> str:
    return token_encode(connection_token_claims(user=user, ttl=ttl, info=info, meta=meta), proxy_only=proxy_only)


def subscription_token_claims(
    *, user: str, channel: str, ttl: int, override: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`override`: Centrifugo's per-subscription options, e.g. {"presence": {"value": False}}."""
    claims = {**token_claims_common(user=user, ttl=ttl), "channel": channel}
    if override:
        claims["override"] = override
    return claims


def subscription_token_issue(*, user: str, channel: str, ttl: int, override: dict[str, Any] | None = None) -> str:
    return token_encode(subscription_token_claims(user=user, channel=channel, ttl=ttl, override=override))
