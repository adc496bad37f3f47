"""Idempotency keys through the real gateway (Redis, gunicorn, Centrifugo): a key is one
publisher's retry, never a name another publisher can collide with; and a 1503 during a Redis
stall means "unknown", so only a retry with the same key is safe."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from centrifuge import Client, ReplyError

from tests.e2e import clients
from tests.support.gateway import Gateway
from tests.support.procs import wait_for

pytestmark = pytest.mark.e2e


def stored(gateway: Gateway, channel: str) -> list[tuple[str, dict[bytes, bytes]]]:
    """The entries of `channel` in the log, in id order (read only while Redis runs)."""
    store = redis.Redis.from_url(gateway.redis_url, socket_timeout=5)
    found = [
        (entry_id.decode(), fields)
        for key in store.scan_iter("rtgw:stream:*")
        for entry_id, fields in store.xrange(key)
        if fields[b"channel"] == channel.encode()
    ]
    return sorted(found, key=lambda e: tuple(int(x) for x in e[0].split("-")))


def test_issue9_item1_same_raw_key_from_two_users_on_one_channel_is_stored_and_delivered_twice(
    gateway: Gateway,
) -> None:
    alice_token, bob_token, reader_token = (gateway.token(u) for u in ("alice", "bob", "reader"))
    channel = "chat:idem-shared"

    async def scenario() -> tuple[list[tuple[object, str]], int, ReplyError]:
        reader = await clients.connected(gateway.ws_url, token=reader_token)
        _, events = await clients.subscribed(reader, channel)
        alice = await clients.connected(gateway.ws_url, token=alice_token)
        bob = await clients.connected(gateway.ws_url, token=bob_token)
        await alice.publish(channel, {"_idempotency_key": "K", "from": "alice"})
        await bob.publish(channel, {"_idempotency_key": "K", "from": "bob"})
        await alice.publish(channel, {"_idempotency_key": "K", "from": "alice"})  # her true retry
        with pytest.raises(ReplyError) as reused:
            await alice.publish(channel, {"_idempotency_key": "K", "from": "alice, edited"})
        got = []
        for _ in range(2):
            pub = await asyncio.wait_for(events.publications.get(), 10)
            got.append((pub.data, pub.tags["stream_id"]))
        await asyncio.sleep(0.3)  # anything more (the retry, the reuse) would have arrived by now
        extra = events.publications.qsize()
        for client in (reader, alice, bob):
            await client.disconnect()
        return got, extra, reused.value

    got, extra, reused = asyncio.run(asyncio.wait_for(scenario(), 60))
    entries = stored(gateway, channel)
    assert [(f[b"user"], f[b"idem"]) for _, f in entries] == [(b"alice", b"K"), (b"bob", b"K")]
    assert got == [
        ({"_idempotency_key": "K", "from": "alice"}, entries[0][0]),
        ({"_idempotency_key": "K", "from": "bob"}, entries[1][0]),
    ]
    assert extra == 0
    assert (reused.code, reused.temporary) == (1409, False)


@contextmanager
def redis_stalled(gateway: Gateway) -> Iterator[None]:
    """Redis frozen (SIGSTOP), not stopped: its socket still accepts what the gateway writes, and
    it executes those commands when it resumes (SIGCONT, always, even if the test fails)."""
    pid = int(gateway.supervisorctl("pid", "redis").strip())
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def publish_during_stall(gateway: Gateway, client: Client, channel: str, data: dict[str, object]) -> ReplyError:
    with redis_stalled(gateway), pytest.raises(ReplyError) as error:
        await client.publish(channel, data)
    return error.value


def test_issue9_item17_a_1503_during_a_redis_stall_may_be_stored_and_only_a_keyed_retry_is_safe(
    gateway: Gateway,
) -> None:
    writer_token, reader_token = gateway.token("staller"), gateway.token("stall-reader")
    keyed, unkeyed = "chat:stall-keyed", "chat:stall-unkeyed"
    with_key = {"_idempotency_key": "stall-1", "text": "keyed"}
    without_key = {"text": "unkeyed"}

    async def scenario() -> tuple[list[ReplyError], list[object], list[object]]:
        reader = await clients.connected(gateway.ws_url, token=reader_token)
        _, keyed_events = await clients.subscribed(reader, keyed)
        _, unkeyed_events = await clients.subscribed(reader, unkeyed)
        writer = await clients.connected(gateway.ws_url, token=writer_token)
        # A keyed publish first: the script is loaded (a first EVALSHA answered NOSCRIPT after the
        # stall would not be stored, which is not the case this test is about).
        await writer.publish("chat:stall-warm-up", {"_idempotency_key": "warm-up"})
        errors = []

        # With a key: answered 1503, stored anyway once Redis resumes, the retry is a duplicate.
        errors.append(await publish_during_stall(gateway, writer, keyed, with_key))
        await asyncio.to_thread(wait_for, lambda: len(stored(gateway, keyed)) == 1, timeout=20, what="the write")
        await writer.publish(keyed, with_key)

        # Without a key: answered 1503, stored anyway, and the retry stores it a second time.
        errors.append(await publish_during_stall(gateway, writer, unkeyed, without_key))
        await asyncio.to_thread(wait_for, lambda: len(stored(gateway, unkeyed)) == 1, timeout=20, what="the write")
        await writer.publish(unkeyed, without_key)

        keyed_got = [(await asyncio.wait_for(keyed_events.publications.get(), 10)).data]
        unkeyed_got = [(await asyncio.wait_for(unkeyed_events.publications.get(), 10)).data]
        await asyncio.sleep(0.3)
        keyed_got += [keyed_events.publications.get_nowait().data for _ in range(keyed_events.publications.qsize())]
        unkeyed_got += [
            unkeyed_events.publications.get_nowait().data for _ in range(unkeyed_events.publications.qsize())
        ]
        for client in (reader, writer):
            await client.disconnect()
        return errors, keyed_got, unkeyed_got

    errors, keyed_got, unkeyed_got = asyncio.run(asyncio.wait_for(scenario(), 120))
    message = "message store did not confirm the write (it may still be stored); retry with the same idempotency key"
    assert [(e.code, e.temporary, e.message) for e in errors] == [(1503, True, message)] * 2
    assert [f[b"idem"] for _, f in stored(gateway, keyed)] == [b"stall-1"]  # stored once
    assert keyed_got == [with_key]  # and delivered once (by the retry: the 1503 was never broadcast)
    assert len(stored(gateway, unkeyed)) == 2  # the documented hazard: stored twice...
    assert unkeyed_got == [without_key]  # ...though subscribers saw it once (only the retry was broadcast)
