"""Samples for the message-log plot: how many entries each stream took, and each consumer group's
lag, every THROUGHPUT_SAMPLE_INTERVAL seconds, kept for an hour in a capped Redis list per stream.

Who samples: every callback worker's loop offers once per interval slot (floor(now / interval)), and
`SET <prefix>:throughput:slot:<n> NX` lets exactly one of them (of every replica) take it, so the
gateway writes one sample per interval whatever its size; the others skip. A worker that dies
leaves the next slot to the rest: no election to lose, no extra process.

A sample is one pipelined round trip, XINFO STREAM and XINFO GROUPS per partition (on a Redis
Cluster redis-py splits the pipeline over the masters; Sentinel and one server: one connection),
then RPUSH + LTRIM per stream: a few commands per partition per interval for the whole gateway,
nothing on the publish path. Redis 7's `entries-added` counts every XADD ever made to a partition,
trimming aside, so published per minute between two samples is their difference over their time
(join and leave entries count too: they are entries). Lag is XINFO GROUPS' `lag` summed over the
partitions (None when Redis cannot tell: a group that has read past a deleted entry).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import redis
from django.conf import settings

from partitions.store import rules_store
from realtime.redis import REDIS_ERRORS, Client, get_redis
from realtime.wsgi_bridge import run_blocking
from streams.catalog import StreamSpec, stream_specs_of

logger = logging.getLogger("streams")

WINDOW = 3600  # seconds the plot shows and the lists keep


class Sample(msgspec.Struct, frozen=True):
    t: float  # unix seconds when it was taken
    added: int  # entries ever added to the stream's partitions (XINFO STREAM entries-added, summed)
    lag: dict[str, int | None]  # group -> entries not yet delivered to it, summed over partitions


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Sample).decode


def samples_key(stream: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:throughput:{stream}"


def slot_key(slot: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:throughput:slot:{slot}"


def capacity(interval: int) -> int:
    """Samples kept per stream: an hour's, and one more for the first difference."""
    return math.ceil(WINDOW / interval) + 1


def take_samples(
    specs: Sequence[StreamSpec], *, client: Client | None = None, now: float | None = None
) -> list[Sample]:
    """One sample per stream of `specs` (blocking; raises a REDIS_ERRORS error)."""
    client = client or get_redis()
    now = time.time() if now is None else now
    keys = [key for spec in specs for key in spec.keys]
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.xinfo_stream(key)
        pipe.xinfo_groups(key)
    replies = pipe.execute(raise_on_error=False)
    added: dict[str, int] = {}
    lags: dict[str, dict[str, int | None]] = {}
    for i, key in enumerate(keys):
        info, groups = replies[2 * i], replies[2 * i + 1]
        if isinstance(info, redis.ResponseError):
            if "no such key" not in str(info):
                raise info
            continue  # nothing written to this partition yet
        added[key] = int(info.get("entries-added") or 0)
        lags[key] = {_text(g["name"]): g.get("lag") for g in groups}
    found = []
    for spec in specs:
        lag: dict[str, int | None] = {}
        for key in spec.keys:
            for group, value in lags.get(key, {}).items():
                before = lag.get(group, 0)
                lag[group] = None if before is None or value is None else before + int(value)
        found.append(Sample(t=now, added=sum(added.get(key, 0) for key in spec.keys), lag=lag))
    return found


def samples_store(specs: Sequence[StreamSpec], samples: Sequence[Sample], *, interval: int,
                  client: Client | None = None) -> None:  # fmt: skip
    client = client or get_redis()
    pipe = client.pipeline(transaction=False)
    for spec, sample in zip(specs, samples, strict=True):
        key = samples_key(spec.name)
        pipe.rpush(key, _encode(sample))
        pipe.ltrim(key, -capacity(interval), -1)
        pipe.expire(key, 2 * WINDOW)  # a stream no rule writes any more: its samples go
    pipe.execute()


def sample_once(*, interval: int, now: float | None = None) -> bool:
    """Take this slot's sample if no other worker has (blocking); whether this one did."""
    now = time.time() if now is None else now
    client = get_redis()
    if not client.set(slot_key(int(now // interval)), "1", nx=True, ex=2 * interval):
        return False
    specs = stream_specs_of(rules_store.current())
    samples_store(specs, take_samples(specs, client=client, now=now), interval=interval, client=client)
    return True


def samples_of(stream: str, *, client: Client | None = None, now: float | None = None) -> list[Sample]:
    """The last hour's samples of `stream`, oldest first (blocking)."""
    now = time.time() if now is None else now
    raw = (client or get_redis()).lrange(samples_key(stream), 0, -1)
    found = []
    for item in raw:
        try:
            sample = _decode(item)
        except msgspec.DecodeError:
            continue  # written by another version: skipped, not fatal for the page
        if now - sample.t <= WINDOW:
            found.append(sample)
    return found


@dataclass(frozen=True, slots=True)
class Series:
    """What the plot draws: published per minute between consecutive samples (at the later one's
    time; None where the count went back, i.e. the stream was deleted) and each group's lag."""

    times: list[float]
    published_per_minute: list[float | None]
    lag: dict[str, list[int | None]]


def series_of(samples: Sequence[Sample]) -> Series:
    times, rates = [], []
    groups = sorted({g for s in samples for g in s.lag})
    lag: dict[str, list[int | None]] = {g: [] for g in groups}
    for before, after in itertools.pairwise(samples):
        span = after.t - before.t
        if span <= 0:
            continue
        times.append(after.t)
        delta = after.added - before.added
        rates.append(delta * 60 / span if delta >= 0 else None)
        for g in groups:
            lag[g].append(after.lag.get(g))
    return Series(times, rates, lag)


class Sampler:
    async def run(self, interval: int) -> None:
        """Until cancelled: once per slot, at a random point of its first half (so the workers do
        not all ask at once, and a slot's sample is taken well before the next one's)."""
        failing = False
        while True:
            now = time.time()
            slot_start = (now // interval + 1) * interval
            await asyncio.sleep(slot_start - now + random.uniform(0, interval / 2))  # noqa: S311 - spreading
            try:
                await run_blocking(functools.partial(sample_once, interval=interval))
            except REDIS_ERRORS as exc:
                if not failing:
                    logger.warning("throughput sampler: Redis unavailable, the plot has a gap: %s", exc)
                failing = True
                continue
            except Exception:  # the rules cannot be read, say: the next slot tries again
                logger.exception("throughput sampler: sample failed")
                continue
            failing = False


_task: asyncio.Task[None] | None = None


def start_sampler() -> None:
    """On the worker's loop at start-up (callbacks.fastpath's lifespan); THROUGHPUT_SAMPLE_INTERVAL 0: none."""
    global _task
    if settings.THROUGHPUT_SAMPLE_INTERVAL > 0 and _task is None:
        _task = asyncio.get_running_loop().create_task(Sampler().run(settings.THROUGHPUT_SAMPLE_INTERVAL))


async def stop_sampler() -> None:
    global _task
    task, _task = _task, None
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
