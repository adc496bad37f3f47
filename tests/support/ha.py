"""What the Redis failover tests (tests/cluster/test_redis_ha.py) share: real centrifuge-python
publishers that record every attempt, and an audit of the streams against what was acknowledged.

Each publisher owns one channel and publishes {"seq": 1}, {"seq": 2}, ... one at a time. An attempt
that fails (1503: the write's outcome is unknown) is recorded and NOT retried: the next attempt
carries the next number, so a number stored twice can only be a silent retry somewhere below.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from centrifuge import Client
from centrifuge.exceptions import CentrifugeError, OperationTimeoutError, ReplyError

from tests.e2e import clients
from tests.support.gateway import SECRETS

KEY_PREFIX = "rtgw"  # REDIS_KEY_PREFIX's default
OK = "ok"


def token(user: str) -> str:
    claims = {"sub": user, "exp": int(time.time()) + 3600}
    return jwt.encode(claims, SECRETS["CENTRIFUGO_TOKEN_HMAC_SECRET_KEY"], algorithm="HS256")


def stream_key(stream: str, partition: int) -> str:
    """streams.writer.stream_key, with the default prefix (the test process has no gateway settings)."""
    return f"{KEY_PREFIX}:stream:{{{stream}:{partition}}}"


@dataclass(frozen=True, slots=True)
class Attempt:
    seq: int
    sent: float  # time.monotonic()
    done: float
    outcome: str  # "ok", an error code ("1503"), "timeout", or the exception's name


@dataclass
class Publisher:
    channel: str
    url: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def acked(self) -> list[int]:
        return [a.seq for a in self.attempts if a.outcome == OK]

    def longest_gap(self) -> float:
        """The longest time between two acknowledgements in a row: how long publishing stalled."""
        acks = [a.done for a in self.attempts if a.outcome == OK]
        return max((b - a for a, b in itertools.pairwise(acks)), default=0.0)

    def first_ack_sent_after(self, moment: float) -> Attempt | None:
        return next((a for a in self.attempts if a.outcome == OK and a.sent >= moment), None)

    async def run(self, *, stop: asyncio.Event, count: int | None = None, pause: float = 0.0) -> None:
        """Publish until `stop` is set or `count` attempts were made."""
        client = await clients.connected(self.url, token=token(f"pub-{self.channel}"))
        try:
            seq = 0
            while not stop.is_set() and (count is None or seq < count):
                seq += 1
                sent = time.monotonic()
                outcome = await self._publish(client, seq)
                self.attempts.append(Attempt(seq, sent, time.monotonic(), outcome))
                if outcome != OK:
                    await asyncio.sleep(0.02)  # a failing store: do not spin
                elif pause:
                    await asyncio.sleep(pause)
        finally:
            await client.disconnect()

    async def _publish(self, client: Client, seq: int) -> str:
        try:
            await asyncio.wait_for(client.publish(self.channel, {"seq": seq}, timeout=5), 10)
        except ReplyError as exc:
            return str(exc.code)
        except (OperationTimeoutError, TimeoutError):
            return "timeout"
        except CentrifugeError as exc:
            return type(exc).__name__
        return OK


def outcomes(publishers: Iterable[Publisher]) -> Counter[str]:
    return Counter(a.outcome for p in publishers for a in p.attempts)


@dataclass
class Audit:
    """Acknowledged publishes against the stream entries, by (channel, seq)."""

    acked: set[tuple[str, int]]
    stored: Counter[tuple[str, int]]
    order_broken: dict[str, list[int]]  # channel -> its seqs in stream order, where not increasing

    @property
    def missing(self) -> set[tuple[str, int]]:
        return self.acked - set(self.stored)

    @property
    def duplicates(self) -> dict[tuple[str, int], int]:
        return {k: n for k, n in self.stored.items() if n > 1}

    @property
    def stored_unacknowledged(self) -> int:
        """Writes that landed although the publisher got an error (1503 means "outcome unknown")."""
        return len(set(self.stored) - self.acked)

    def summary(self) -> str:
        return (
            f"acknowledged {len(self.acked)}, stored {sum(self.stored.values())} entries, "
            f"acknowledged but missing {len(self.missing)}, stored twice {len(self.duplicates)}, "
            f"stored after an error reply {self.stored_unacknowledged}, channels out of order {len(self.order_broken)}"
        )


def audit(publishers: Sequence[Publisher], entries: Iterable[tuple[bytes, dict[bytes, bytes]]]) -> Audit:
    """`entries`: (id, fields) of every entry of every partition, each partition in id order."""
    ours = {p.channel for p in publishers}
    stored: Counter[tuple[str, int]] = Counter()
    order: dict[str, list[int]] = {channel: [] for channel in ours}
    for _, fields in entries:
        channel = fields[b"channel"].decode()
        if channel not in ours:
            continue
        seq = int(json.loads(fields[b"data"])["seq"])
        stored[channel, seq] += 1
        order[channel].append(seq)
    broken = {ch: seqs for ch, seqs in order.items() if any(b <= a for a, b in itertools.pairwise(seqs))}
    acked = {(p.channel, seq) for p in publishers for seq in p.acked}
    return Audit(acked=acked, stored=stored, order_broken=broken)


def read_streams(client: Any, pattern: str = f"{KEY_PREFIX}:stream:*") -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Every entry of every stream key one Redis server holds (a Cluster master: its own slots)."""
    entries: list[tuple[bytes, dict[bytes, bytes]]] = []
    for key in sorted(client.scan_iter(match=pattern, count=1000)):
        entries.extend(client.xrange(key))
    return entries
