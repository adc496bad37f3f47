"""Accepting one publication: the decision and the write that the publish proxy and the server
API (`POST /api/publish`) share, so client and server messages pass the same checks and land in
the same log.

Worker.publish (workers.sdk) is a server publication too. A channel an operator closed (the kill
switch, control.access) is refused here with CHANNEL_CLOSED and the operator's reason, on all three.

Order matters: permission, then JSON-or-binary, then size, then schema (cheap to expensive), then
the rate limit (it counts only publications that would otherwise be accepted), then the write.

JSON or binary: a publication is JSON when its bytes are one JSON value in valid UTF-8
(`streams.payload.is_json_text`), otherwise binary. Channels are JSON-only unless their rule sets
`allow_binary`: a JSON-protocol subscriber cannot receive raw bytes (Centrifugo puts them in its
JSON frame as they are and the client is disconnected).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, Unpack

import msgspec

from callbacks import protocol
from callbacks.enrichment import BINARY_REFUSED
from callbacks.json_checks import DECODE_ERRORS
from partitions.rules import Action, ChannelRule, StreamTarget, closure_of
from partitions.store import rules_store
from realtime.observability import count_stream_write
from streams.idempotency import PublicationKey
from streams.writer import (
    Appended,
    IdempotencyKeyReused,
    StreamUnavailable,
    rate_limit_hit,
    rate_limit_hit_async,
    stream_append,
    stream_append_async,
)

logger = logging.getLogger("callbacks")

IDEMPOTENCY_FIELD = b'"_idempotency_key"'
# A write Redis did not confirm in time may still be applied when Redis catches up: 1503 means
# "unknown", not "not stored", and only a retry with the same idempotency key is safe.
STORE_UNCONFIRMED = (
    "message store did not confirm the write (it may still be stored); retry with the same idempotency key"
)
MAX_IDEMPOTENCY_KEY = 128


class _IdempotencyKey(msgspec.Struct):
    _idempotency_key: str = ""


_decode_key = msgspec.json.Decoder(_IdempotencyKey).decode
JSON_ONLY = "this channel accepts JSON publications only"


@dataclass(slots=True)
class Accepted:
    target: StreamTarget
    appended: Appended | None  # None: the partition rule says "do not store"
    broadcast_key: str = ""  # Centrifugo's idempotency_key: the publisher's key scoped to them
    enrich: bool = False  # the channel rule's `enrich`: broadcast callbacks.enrichment's envelope

    def tags(self) -> dict[str, str]:
        if self.appended is None:
            return {}
        return {
            "stream": self.appended.key,
            "stream_id": self.appended.entry_id,
            "partition": str(self.target.partition),
        }


@dataclass(frozen=True, slots=True)
class Rejected:
    code: int
    message: str
    temporary: bool = False

    def reply(self) -> protocol.Reply:
        return protocol.error(self.code, self.message, temporary=self.temporary)


def idempotency_key_of(data: bytes) -> str | Rejected:
    """The `_idempotency_key` field of a JSON-object publication, if any (a substring test first:
    most publications do not carry one and are not parsed)."""
    if IDEMPOTENCY_FIELD not in data:
        return ""
    try:
        key = _decode_key(data)._idempotency_key
    except DECODE_ERRORS:
        return ""
    if len(key) > MAX_IDEMPOTENCY_KEY:
        return Rejected(protocol.BAD_REQUEST, f"_idempotency_key is longer than {MAX_IDEMPOTENCY_KEY} characters")
    return key


@dataclass(slots=True)  # not frozen: frozen dataclasses set each field through object.__setattr__
class _Write:
    """A publication that passed every check and is ready to be stored."""

    rule: ChannelRule
    target: StreamTarget
    channel: str
    user: str
    client: str
    data: bytes
    binary: bool
    idempotency: PublicationKey | None

    def append_kwargs(self) -> dict[str, Any]:
        return {
            "target": self.target, "channel": self.channel, "user": self.user, "client": self.client,
            "data": self.data, "idempotency": self.idempotency, "binary": self.binary,
        }  # fmt: skip

    def rate_kwargs(self) -> dict[str, Any] | None:
        limit = self.rule.rate_limit
        if limit is None:
            return None
        return {"rule_id": self.rule.id, "who": self.user or f"client:{self.client}", "limit": limit.count,
                "window": limit.window}  # fmt: skip

    def rate_limited(self) -> Rejected:
        limit = self.rule.rate_limit
        assert limit is not None
        return Rejected(
            protocol.TOO_MANY_REQUESTS, f"rate limit: {limit.count} publications per {limit.window} s", True
        )

    def stored(self, appended: Appended | None) -> Accepted:
        if appended is not None:
            count_stream_write("duplicate" if appended.duplicate else "ok")
        key = self.idempotency.broadcast_key if self.idempotency else ""
        return Accepted(self.target, appended, key, self.rule.options.get("enrich", False))

    def unavailable(self, exc: StreamUnavailable) -> Rejected:
        count_stream_write("error")
        _outage_log.failed(self.channel, exc)
        return Rejected(protocol.STORE_UNAVAILABLE, STORE_UNCONFIRMED, temporary=True)

    def key_reused(self) -> Rejected:
        count_stream_write("conflict")
        return Rejected(protocol.IDEMPOTENCY_KEY_REUSED, "idempotency key already used for a different publication")


class _OutageLog:
    """One error line per LOG_EVERY seconds while publishes cannot be stored, not one per publish:
    at thousands of publishes a second, a Redis outage would otherwise flood the logs (and the
    event loop that writes them). Every failure still counts in gateway_stream_writes_total{error}."""

    LOG_EVERY = 5.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logged_at = -float("inf")
        self._since = 0

    def failed(self, channel: str, exc: StreamUnavailable) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._logged_at < self.LOG_EVERY:
                self._since += 1
                return
            more, self._since, self._logged_at = self._since, 0, now
        logger.error(
            "publish not stored, answered a temporary error: channel=%r: %s%s",
            channel, exc, f" (and {more} more since the last report)" if more else "",
        )  # fmt: skip


_outage_log = _OutageLog()


def _check(
    *,
    channel: str,
    user: str,
    client: str,
    roles: Sequence[str],
    data: bytes,
    binary: bool = False,
    idempotency: str = "",
) -> _Write | Rejected:
    """Every decision that needs no I/O: permission, size, schema, the idempotency key, the target."""
    ruleset = rules_store.current()
    decision = ruleset.decide(Action.PUBLISH, channel=channel, user=user, roles=roles)
    rule = decision.rule
    if not decision.allowed or rule is None:
        logger.info("publish denied: user=%r channel=%r: %s", user, channel, decision.reason)
        closure = closure_of(decision)
        if closure is not None:  # the kill switch: say so (permanent), whoever publishes
            return Rejected(protocol.CHANNEL_CLOSED, closure.message())
        return Rejected(protocol.PERMISSION_DENIED, "permission denied")
    if binary and not rule.allow_binary:
        return Rejected(protocol.BAD_REQUEST, JSON_ONLY)
    if binary and rule.options.get("enrich"):
        return Rejected(protocol.BAD_REQUEST, BINARY_REFUSED)
    if rule.max_payload_bytes is not None and len(data) > rule.max_payload_bytes:
        return Rejected(
            protocol.LIMIT_EXCEEDED, f"publication data is {len(data)} bytes; the limit is {rule.max_payload_bytes}"
        )
    if rule.schema_check is not None:
        problem = "binary data cannot match the channel's schema" if binary else rule.schema_check(data)
        if problem is not None:
            return Rejected(protocol.BAD_REQUEST, problem)
    if not idempotency and not binary:
        found = idempotency_key_of(data)
        if isinstance(found, Rejected):
            return found
        idempotency = found
    key = None
    if idempotency:  # a retry of this publisher's publication on this channel, not a shared name
        key = PublicationKey.of(user=user, client=client, channel=channel, key=idempotency, data=data, binary=binary)
    target = ruleset.target(channel=channel, user=user)
    return _Write(rule, target, channel, user, client, data, binary, key)


class Publication(TypedDict):
    """One publication to decide and store, as `publication_accept` takes it."""

    channel: str
    user: str
    client: str
    roles: Sequence[str]
    data: bytes
    binary: NotRequired[bool]  # False: JSON (the default)
    idempotency: NotRequired[str]  # the publisher's idempotency key ("" or absent: none)


def publication_accept(**publication: Unpack[Publication]) -> Accepted | Rejected:
    """Decide and store one publication, blocking (redis-py): the server API, the DRF view."""
    # The same coroutine as on the event loop, with redis-py behind its two awaits: they never
    # suspend, so it runs to its end in one step.
    steps = publication_accept_async(_BLOCKING, **publication)
    try:
        steps.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the blocking publication path suspended")  # pragma: no cover


async def publication_accept_async(
    redis: tuple[Callable[..., Awaitable[bool]], Callable[..., Awaitable[Appended]]] | None = None,
    /,
    **publication: Unpack[Publication],
) -> Accepted | Rejected:
    """`publication_accept` on the event loop (the proxy fast path): the same checks, the same
    command, sent on the worker's auto-pipelined Redis connection (`redis`: the rate-limit check
    and the append to await; the worker's by default)."""
    write = _check(**publication)
    if isinstance(write, Rejected):
        return write
    rate_hit, append = redis or (rate_limit_hit_async, stream_append_async)
    try:
        rate = write.rate_kwargs()
        if rate is not None and await rate_hit(**rate):
            return write.rate_limited()
        if not write.target.store:
            return write.stored(None)
        return write.stored(await append(**write.append_kwargs()))
    except StreamUnavailable as exc:
        return write.unavailable(exc)
    except IdempotencyKeyReused:
        return write.key_reused()


async def _rate_limit_hit_now(**kwargs: Any) -> bool:
    return rate_limit_hit(**kwargs)


async def _stream_append_now(**kwargs: Any) -> Appended:
    return stream_append(**kwargs)


_BLOCKING = (_rate_limit_hit_now, _stream_append_now)
