"""JWTs: the ones operators issue (connection and subscription tokens Centrifugo verifies itself)
and the check of a token a client sends in its connect data (the connect proxy verifies that one).
HS256 only: the algorithm is pinned on both sides, so a token cannot choose how it is verified."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings

ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    user: str
    expire_at: int
    info: Any
    meta: dict[str, Any]


class TokenRejected(Exception):
    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


def token_verify(token: str) -> VerifiedToken:
    try:
        claims = jwt.decode(
            token,
            settings.CENTRIFUGO_TOKEN_HMAC_SECRET_KEY,
            algorithms=[ALGORITHM],
            audience=settings.TOKEN_AUDIENCE,
            issuer=settings.TOKEN_ISSUER,
            options={"require": ["exp", "sub"], "verify_aud": settings.TOKEN_AUDIENCE is not None},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRejected("token expired", expired=True) from None
    except jwt.InvalidTokenError as exc:
        raise TokenRejected(f"invalid token: {exc}") from None
    user = claims["sub"]
    meta = claims.get("meta", {})
    if not isinstance(user, str):
        raise TokenRejected("invalid token: 'sub' must be a string")
    if not isinstance(meta, dict):
        raise TokenRejected("invalid token: 'meta' must be an object")
    return VerifiedToken(user=user, expire_at=int(claims["exp"]), info=claims.get("info"), meta=meta)


def connection_token_issue(*, user: str, ttl: int, info: Any = None, meta: dict[str, Any] | None = None) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user, "iat": now, "exp": now + ttl}
    if info is not None:
        claims["info"] = info
    if meta:
        claims["meta"] = meta
    if settings.TOKEN_AUDIENCE:
        claims["aud"] = settings.TOKEN_AUDIENCE
    if settings.TOKEN_ISSUER:
        claims["iss"] = settings.TOKEN_ISSUER
    return jwt.encode(claims, settings.CENTRIFUGO_TOKEN_HMAC_SECRET_KEY, algorithm=ALGORITHM)


def subscription_token_issue(*, user: str, channel: str, ttl: int) -> str:
    now = int(time.time())
    claims = {"sub": user, "channel": channel, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, settings.CENTRIFUGO_TOKEN_HMAC_SECRET_KEY, algorithm=ALGORITHM)
