"""What an idempotency key means: a retry of ONE publication by ONE publisher.

A publisher's key K is not a name in a shared space: Alice's K and Bob's K are different keys, and
Alice's K on `chat:a` is a different key from her K on `chat:b`. So the Redis key that records
"already stored" is derived from (user, channel, K) — for an anonymous publisher (user ""), from
its client id instead, as the rate limit counts them, so anonymous publishers cannot suppress each
other's messages either (a retry after a reconnect is a new client, then, and is stored again).
It remembers a digest of the data: a retry
with the same bytes gets the first entry id back (a duplicate), the same key with other bytes is a
conflict (an error, never a silent ok).

Centrifugo de-duplicates a publication's `idempotency_key` per channel only, so it is handed a key
derived from (user, channel, K, data digest) rather than K itself: two publishers' K on one channel
are two broadcasts, and a true retry is still broadcast once.

Cost: two SHA-256 of short inputs and one of the data (`PublicationKey.of` in bench/RESULTS.md),
and only for publications that carry a key; the common publication without one pays nothing
here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgspec

_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)  # not frozen: frozen dataclasses set each field through object.__setattr__
class PublicationKey:
    key: str  # as the publisher gave it (stored in the entry's `idem` field)
    scope: str  # hex SHA-256 of (user or anonymous client, channel, key): names the Redis key
    data_digest: str  # hex SHA-256 of the data (and whether it is binary): tells a retry from a reuse
    broadcast_key: str  # what Centrifugo is given as `idempotency_key`

    @classmethod
    def of(cls, *, user: str, client: str, channel: str, key: str, data: bytes, binary: bool) -> PublicationKey:
        # JSON of the tuple, not a separator join: no split of the parts can collide with another.
        publisher = (user, "") if user else ("", client)
        scope = hashlib.sha256(_encode((*publisher, channel, key))).digest()
        data_digest = hashlib.sha256(b"b" if binary else b"j")
        data_digest.update(data)
        digest = data_digest.digest()
        broadcast = hashlib.sha256(scope + digest).hexdigest()
        return cls(key, scope.hex(), digest.hex(), broadcast)
