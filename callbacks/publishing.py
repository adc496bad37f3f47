"""Accepting one publication: the decision and the write that the publish proxy and the server
API (`POST /api/publish`) share, so client and server messages pass the same checks and land in
the same log.

Order matters: permission, then size, then schema (cheap to expensive), then the rate limit (it
counts only publications that would otherwise be accepted), then the write.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from callbacks import protocol
from partitions.rules import Action, StreamTarget
from partitions.store import rules_store
from realtime.observability import STREAM_WRITES
from streams.writer import Appended, StreamUnavailable, rate_limit_hit, stream_append

logger = logging.getLogger("callbacks")

IDEMPOTENCY_FIELD = b'"_idempotency_key"'
MAX_IDEMPOTENCY_KEY = 128


class _IdempotencyKey(msgspec.Struct):
    _idempotency_key: str = ""


_decode_key = msgspec.json.Decoder(_IdempotencyKey).decode


@dataclass(frozen=True, slots=True)
class Accepted:
    target: StreamTarget
    appended: Appended | None  # None: the partition rule says "do not store"
    idempotency: str = ""

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

    def reply(self) -> bytes:
        return protocol.error(self.code, self.message, temporary=self.temporary)


def idempotency_key_of(data: bytes) -> str | Rejected:
    """The `_idempotency_key` field of a JSON-object publication, if any (a substring test first:
    most publications do not carry one and are not parsed)."""
    if IDEMPOTENCY_FIELD not in data:
        return ""
    try:
        key = _decode_key(data)._idempotency_key
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ""
    if len(key) > MAX_IDEMPOTENCY_KEY:
        return Rejected(protocol.BAD_REQUEST, f"_idempotency_key is longer than {MAX_IDEMPOTENCY_KEY} characters")
    return key


def publication_accept(
    *,
    channel: str,
    user: str,
    client: str,
    roles: Sequence[str],
    data: bytes,
    binary: bool = False,
    idempotency: str = "",
) -> Accepted | Rejected:
    ruleset = rules_store.current()
    decision = ruleset.decide(Action.PUBLISH, channel=channel, user=user, roles=roles)
    rule = decision.rule
    if not decision.allowed or rule is None:
        logger.info("publish denied: user=%r channel=%r: %s", user, channel, decision.reason)
        return Rejected(protocol.PERMISSION_DENIED, "permission denied")
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

    target = ruleset.target(channel=channel, user=user)
    try:
        if rule.rate_limit is not None and rate_limit_hit(
            rule_id=rule.id, who=user or f"client:{client}", limit=rule.rate_limit.count, window=rule.rate_limit.window
        ):
            limit = rule.rate_limit
            return Rejected(
                protocol.TOO_MANY_REQUESTS, f"rate limit: {limit.count} publications per {limit.window} s", True
            )
        if not target.store:
            return Accepted(target, None, idempotency)
        appended = stream_append(
            target=target, channel=channel, user=user, client=client, data=data, idempotency=idempotency, binary=binary
        )
    except StreamUnavailable as exc:
        STREAM_WRITES.labels("error").inc()
        logger.error("publish not stored, answered a temporary error: channel=%r: %s", channel, exc)
        return Rejected(protocol.STORE_UNAVAILABLE, "message store unavailable, retry later", temporary=True)
    STREAM_WRITES.labels("duplicate" if appended.duplicate else "ok").inc()
    return Accepted(target, appended, idempotency)
